"""Positional attention patterns of each head (previous/next token, self, special tokens, broad).

Pure numpy: takes self-attention weights ``(layers, heads, query, key)`` and says, for each head, how
much attention goes where. Used by ``attnscope inspect`` and, later, by the head atlas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

PATTERNS = ("previous", "next", "self", "special", "broad", "mixed")
"""Labels a head can get: a positional target, "broad" (spread out), or "mixed" (none dominates)."""


@dataclass(frozen=True)
class PatternScores:
    """Per-head shares of attention, each (layers, heads), averaged over ordinary query tokens.

    ``previous``/``next``/``self``: weight on the key one before, one after, or at the query position;
    ``special``: total weight on special tokens; ``entropy``: row entropy divided by the log of the
    number of visible keys (1.0 = uniform). ``labels[l][h]`` is the head's dominant pattern.
    """

    previous: np.ndarray
    next: np.ndarray
    self: np.ndarray
    special: np.ndarray
    entropy: np.ndarray
    labels: list[list[str]]

    def score(self, layer: int, head: int) -> float:
        """The share that earned the head its label (the entropy for "broad", the best share for "mixed")."""
        label = self.labels[layer][head]
        if label == "broad":
            return float(self.entropy[layer, head])
        if label == "mixed":
            return float(max(getattr(self, p)[layer, head] for p in PATTERNS[:4]))
        return float(getattr(self, label)[layer, head])


def pattern_scores(
    attentions: np.ndarray,
    special: Sequence[bool],
    *,
    allowed: np.ndarray | None = None,
    threshold: float = 0.5,
    broad_entropy: float = 0.75,
) -> PatternScores:
    """Score every head of a self-attention stack; label it by the share that reaches ``threshold``.

    ``allowed`` (query, key) or (layers, query, key) marks the keys each query may see (causal and
    sliding-window masks); entropy is normalised by that count. A head none of whose positional
    shares reaches ``threshold`` is "broad" when its normalised entropy is at least
    ``broad_entropy``, else "mixed".
    """
    weights = np.asarray(attentions, dtype=np.float64)
    if weights.ndim != 4 or weights.shape[-1] != weights.shape[-2]:
        raise ValueError(f"attentions must be (layers, heads, n, n) self-attention, got shape {weights.shape}")
    n = weights.shape[-1]
    is_special = np.asarray(special, dtype=bool)
    rows = np.flatnonzero(~is_special)
    if rows.size == 0:
        rows = np.arange(n)

    def diagonal_share(offset: int) -> np.ndarray:
        valid = rows[(rows + offset >= 0) & (rows + offset < n)]
        if valid.size == 0:
            return np.zeros(weights.shape[:2])
        return weights[:, :, valid, valid + offset].mean(axis=-1)

    previous, following, itself = diagonal_share(-1), diagonal_share(1), diagonal_share(0)
    on_special = weights[:, :, rows][..., is_special].sum(axis=-1).mean(axis=-1)
    visible = np.ones((n, n), dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
    visible = np.broadcast_to(visible, (weights.shape[0], n, n))[:, None, rows]  # (layers, 1, rows, key)
    entropy = _normalised_entropy(weights[:, :, rows], visible.sum(axis=-1))
    labels = []
    shares = np.stack([previous, following, itself, on_special])  # (4, layers, heads)
    for layer in range(weights.shape[0]):
        row = []
        for head in range(weights.shape[1]):
            best = int(np.argmax(shares[:, layer, head]))
            if shares[best, layer, head] >= threshold:
                row.append(PATTERNS[best])
            elif entropy[layer, head] >= broad_entropy:
                row.append("broad")
            else:
                row.append("mixed")
        labels.append(row)
    return PatternScores(previous, following, itself, on_special, entropy, labels)


def _normalised_entropy(rows: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Mean over query rows of H(row) / log(visible keys), skipping rows that see a single key."""
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(rows > 0, rows * np.log(rows), 0.0).sum(axis=-1)
        normalised = np.where(visible > 1, entropy / np.log(np.maximum(visible, 2)), np.nan)
    means = np.nanmean(np.where(np.isnan(normalised).all(axis=-1, keepdims=True), 0.0, normalised), axis=-1)
    return np.nan_to_num(means)
