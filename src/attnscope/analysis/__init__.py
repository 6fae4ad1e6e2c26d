"""Analysis of captured attention: pure numpy functions, no I/O."""

from .patterns import PATTERNS, SHARES, PatternScores, PatternSums, label_heads, pattern_scores, pattern_sums

__all__ = ["PATTERNS", "SHARES", "PatternScores", "PatternSums", "label_heads", "pattern_scores", "pattern_sums"]
