"""Analysis of captured attention: pure numpy functions, no I/O."""

from .aggregate import METHODS, Aggregation, aggregate
from .patterns import PATTERNS, PatternScores, pattern_scores

__all__ = ["METHODS", "PATTERNS", "Aggregation", "PatternScores", "aggregate", "pattern_scores"]
