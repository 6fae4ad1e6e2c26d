"""Positional attention patterns of each head (previous/next token, self, first token, special tokens, broad).

Pure numpy: takes self-attention weights ``(layers, heads, query, key)`` and says, for each head, how
much attention goes where. `pattern_scores` scores one input (``attnscope inspect``); the head atlas
adds `pattern_sums` over a corpus and divides once, so every query token weighs the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PATTERNS = ("previous", "next", "self", "first", "special", "broad", "mixed")
"""Labels a head can get: a positional target, "broad" (spread out), or "mixed" (none dominates)."""
SHARES = ("previous", "next", "self", "first", "special")
"""The shares of attention a head is scored on, besides its entropy."""


@dataclass(frozen=True)
class PatternScores:
    """Per-head shares of attention, each (layers, heads), averaged over ordinary query tokens.

    ``previous``/``next``/``self``: weight on the key one before, one after, or at the query position;
    ``first``: weight on the input's first token (``[CLS]``, ``<s>``, or the first word where the
    tokenizer adds nothing), from every query but the first; ``special``: total weight on special
    tokens (the first one included when it is special); ``entropy``: row entropy divided by the log of
    the number of visible keys (1.0 = uniform). ``labels[l][h]`` is the head's dominant pattern.
    """

    previous: np.ndarray
    next: np.ndarray
    self: np.ndarray
    first: np.ndarray
    special: np.ndarray
    entropy: np.ndarray
    labels: list[list[str]]

    def score(self, layer: int, head: int) -> float:
        """The share that earned the head its label (the entropy for "broad", the best share for "mixed")."""
        label = self.labels[layer][head]
        if label == "broad":
            return float(self.entropy[layer, head])
        if label == "mixed":
            return float(max(getattr(self, p)[layer, head] for p in SHARES))
        return float(getattr(self, label)[layer, head])


@dataclass
class PatternSums:
    """What corpus-wide pattern scores are means of: per-head sums over query rows, and the rows counted.

    ``totals[name]`` is (layers, heads) for each of `SHARES` and "entropy"; ``counts[name]`` the rows
    it was summed over: every scored row for self and special, the rows with a key one before, one
    after, or at position 0 (other than themselves) for previous, next and first, and per layer
    ((layers, 1)) the rows that see more than one key for the entropy. Sums of two inputs add with ``+``.
    """

    totals: dict[str, np.ndarray]
    counts: dict[str, int | np.ndarray]

    @property
    def rows(self) -> int:
        """How many query rows were scored."""
        return int(self.counts["self"])

    def __add__(self, other: PatternSums) -> PatternSums:
        return PatternSums(
            {k: v + other.totals[k] for k, v in self.totals.items()},
            {k: v + other.counts[k] for k, v in self.counts.items()},
        )

    def scores(self, *, threshold: float = 0.5, broad_entropy: float = 0.75) -> PatternScores:
        """Means over the counted rows (0 where none were counted), labelled by `label_heads`."""
        means = {}
        for name, total in self.totals.items():
            count = np.broadcast_to(self.counts[name], total.shape)
            means[name] = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
        labels = label_heads(means, means["entropy"], threshold=threshold, broad_entropy=broad_entropy)
        return PatternScores(**means, labels=labels)


def label_heads(
    shares: dict[str, np.ndarray], entropy: np.ndarray, *, threshold: float = 0.5, broad_entropy: float = 0.75
) -> list[list[str]]:
    """Each head's dominant pattern, from its `SHARES` (each (layers, heads)) and normalised entropy.

    In order: the largest of previous/next/self when it reaches ``threshold`` and no first-token or
    special share is larger; else "first" when the first token alone gets ``threshold`` (a sink:
    ``[CLS]``, ``<s>``, or the first word); else "special" when special tokens together do (``[SEP]``
    and other delimiters); else "broad" when the entropy is at least ``broad_entropy``; else "mixed".
    """
    positional = np.stack([shares["previous"], shares["next"], shares["self"]])  # (3, layers, heads)
    best = positional.max(axis=0)
    label = np.select(
        [
            (best >= threshold) & (best >= shares["first"]) & (best >= shares["special"]),
            shares["first"] >= threshold,
            shares["special"] >= threshold,
            entropy >= broad_entropy,
        ],
        [np.array(PATTERNS)[positional.argmax(axis=0)], "first", "special", "broad"],
        "mixed",
    )
    return label.tolist()


def pattern_sums(attentions: np.ndarray, special: Sequence[bool], *, allowed: np.ndarray | None = None) -> PatternSums:
    """Sums over the query rows of one self-attention stack ``(layers, heads, n, n)``; see `PatternSums`.

    Rows are the non-special query tokens (all of them when every token is special). ``allowed``
    (query, key) or (layers, query, key) marks the keys each query may see (causal and sliding-window
    masks); the entropy of a row is normalised by that count.
    """
    weights = np.asarray(attentions, dtype=np.float64)
    if weights.ndim != 4 or weights.shape[-1] != weights.shape[-2]:
        raise ValueError(f"attentions must be (layers, heads, n, n) self-attention, got shape {weights.shape}")
    n = weights.shape[-1]
    is_special = np.asarray(special, dtype=bool)
    if is_special.shape != (n,):
        raise ValueError(f"special must have one flag per token ({n}), got {is_special.shape[0]}")
    rows = np.flatnonzero(~is_special)
    if rows.size == 0:
        rows = np.arange(n)

    def diagonal(offset: int) -> tuple[np.ndarray, int]:
        valid = rows[(rows + offset >= 0) & (rows + offset < n)]
        return weights[:, :, valid, valid + offset].sum(axis=-1), int(valid.size)

    (previous, previous_rows), (following, next_rows), (itself, _) = diagonal(-1), diagonal(1), diagonal(0)
    later = rows[rows > 0]
    first = weights[:, :, later, 0].sum(axis=-1)
    on_special = weights[:, :, rows][..., is_special].sum(axis=(-2, -1))
    visible = np.ones((n, n), dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
    visible = np.broadcast_to(visible, (weights.shape[0], n, n))[:, rows].sum(axis=-1)  # (layers, rows)
    seen = visible > 1
    with np.errstate(divide="ignore", invalid="ignore"):
        scored = weights[:, :, rows]
        entropy = -np.where(scored > 0, scored * np.log(scored), 0.0).sum(axis=-1)  # (layers, heads, rows)
        normalised = np.where(seen[:, None], entropy / np.log(np.maximum(visible, 2))[:, None], 0.0)
    totals = {
        "previous": previous,
        "next": following,
        "self": itself,
        "first": first,
        "special": on_special,
        "entropy": normalised.sum(axis=-1),
    }
    counts = {
        "previous": previous_rows,
        "next": next_rows,
        "self": int(rows.size),
        "first": int(later.size),
        "special": int(rows.size),
        "entropy": seen.sum(axis=-1, keepdims=True),
    }
    return PatternSums(totals, counts)


def pattern_scores(
    attentions: np.ndarray,
    special: Sequence[bool],
    *,
    allowed: np.ndarray | None = None,
    threshold: float = 0.5,
    broad_entropy: float = 0.75,
) -> PatternScores:
    """Score every head of a self-attention stack ``(layers, heads, n, n)`` on one input; see `label_heads`.

    ``allowed`` (query, key) or (layers, query, key) marks the keys each query may see; entropy is
    normalised by that count.
    """
    sums = pattern_sums(attentions, special, allowed=allowed)
    return sums.scores(threshold=threshold, broad_entropy=broad_entropy)
