"""Analysis of captured attention: pure numpy functions, no I/O."""

from .patterns import PATTERNS, PatternScores, pattern_scores

__all__ = ["PATTERNS", "PatternScores", "pattern_scores"]
