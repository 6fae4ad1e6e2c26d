"""Analysis of captured attention: pure numpy functions, no I/O."""

from .aggregate import Aggregation, aggregate
from .methods import METHODS
from .patterns import PATTERNS, SHARES, PatternScores, PatternSums, label_heads, pattern_scores, pattern_sums

__all__ = [
    "METHODS",
    "PATTERNS",
    "SHARES",
    "Aggregation",
    "PatternScores",
    "PatternSums",
    "aggregate",
    "label_heads",
    "pattern_scores",
    "pattern_sums",
]
