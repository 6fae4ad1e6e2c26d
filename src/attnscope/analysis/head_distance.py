"""Distances between attention heads over the same rows: Jensen–Shannon divergence per query row, averaged.

A head's attention over one input is a set of probability distributions, one per query row. Two heads (of one
model or of two) are compared row by row with the Jensen–Shannon divergence (Lin 1991, "Divergence measures
based on the Shannon entropy") in bits, and the rows' divergences are averaged:

    JSD(p, q) = H((p + q) / 2) - (H(p) + H(q)) / 2,    0 <= JSD <= 1 bit.

Why JSD: it is symmetric (a comparison has no preferred side), finite where one head gives a key zero weight
and the other does not (a causal row, a hard head; KL divergence is infinite there), bounded by 1 bit so
distances read the same at any length, and its square root is a metric (Endres & Schindelin 2003). Why a mean
over rows: every query counts once, as in the head view, whatever its attention looks like.

Comparing every head of A with every head of B exactly costs a logarithm per weight per pair (at 512 tokens
and 144 × 144 heads, 5.4e9 of them). It is avoided with the squared Hellinger distance ``h² = 1 - Σ√(pq)``,
whose row means for all pairs at once are one matrix product of the square-rooted weights, and which brackets
the JSD in bits term by term:

    h²(p, q) <= JSD(p, q) <= h²(p, q) / ln 2

(each term ``½ p log₂(2p/(p+q)) + ½ q log₂(2q/(p+q))`` lies between ``½(√p − √q)²`` and that over ln 2: both
are homogeneous of degree one, equal at ``p = 0`` and tend to the ratio 1/ln 2 as ``p → q``; the tests check
the inequality on a grid). The closest heads and the one-to-one matching are then found exactly: exact
divergences are computed in order of the lower bound until no bound can beat the distances found, and the
assignment (which sums the square roots, see `PairDistances.assignment`) is re-solved until every pair it uses
is exact (a lower bound elsewhere can only make other assignments look cheaper, never the chosen one).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from ..worker_threads import on_worker_threads

BOUND_MARGIN = 2e-4
"""Slack taken off the float32 lower bounds (bits), so rounding in the matrix product never prunes a pair whose
exact divergence is smaller: it costs a few extra exact pairs, never a wrong answer."""


@dataclass(frozen=True)
class HeadMatch:
    """One pair of the one-to-one matching: head ``(layer_a, head_a)`` of A with ``(layer_b, head_b)`` of B, at
    ``distance`` bits (mean row JSD)."""

    layer_a: int
    head_a: int
    layer_b: int
    head_b: int
    distance: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": [self.layer_a, self.head_a],
            "b": [self.layer_b, self.head_b],
            "distance": round(self.distance, 6),
        }


def row_jsd(p: np.ndarray | torch.Tensor, q: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Jensen–Shannon divergence in bits of each row: ``p`` and ``q`` are ``(..., key)`` distributions (rows
    summing to 1, zeros allowed), broadcast against each other; returns ``(...)`` float64, 0 for equal rows
    exactly, clipped at 0 against rounding."""
    p64 = torch.as_tensor(p).to(torch.float64)
    q64 = torch.as_tensor(q).to(torch.float64)
    return _jsd_bits(_neg_entropy(p64), _neg_entropy(q64), _neg_entropy((p64 + q64) / 2))


def _jsd_bits(neg_p: torch.Tensor, neg_q: torch.Tensor, neg_m: torch.Tensor) -> torch.Tensor:
    """Row JSD in bits from the rows' Σ x log x of both sides and of their mixture ``m = (p + q) / 2``:
    ``(Σ p log p + Σ q log q) / 2 − Σ m log m``, clipped at 0 against rounding."""
    return torch.clamp(((neg_p + neg_q) / 2 - neg_m) / math.log(2), min=0.0)


def _neg_entropy(x: torch.Tensor) -> torch.Tensor:
    return torch.special.xlogy(x, x).sum(dim=-1)


def _row_mean(per_row: torch.Tensor, rows: np.ndarray | None) -> np.ndarray:
    if rows is None:
        return per_row.mean(dim=-1).numpy()
    keep = torch.as_tensor(np.asarray(rows, dtype=bool))
    return (per_row[..., keep].sum(dim=-1) / max(int(keep.sum()), 1)).numpy()


def hellinger_bounds(a: np.ndarray, b: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds in bits on the mean row JSD of every head of ``a`` against every head of ``b``.

    ``a`` is ``(heads_a, query, key)``, ``b`` ``(heads_b, query, key)`` (heads flattened across layers), ``rows``
    an optional ``(query,)`` bool array of the rows that count (all when None). Returns two
    ``(heads_a, heads_b)`` arrays: the mean squared Hellinger distance less `BOUND_MARGIN` (at least 0), and that
    over ln 2 plus the margin. One float32 matrix product of the square-rooted weights: the mean over rows of
    ``Σ_k √(p q)`` is the sum over all (row, key) cells over the number of rows.
    """
    keep = np.ones(a.shape[1], dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    n = max(int(keep.sum()), 1)
    roots_a, roots_b = _roots(a, keep), _roots(b, keep)
    overlap = roots_a @ roots_b.T / n
    squared = (1.0 - overlap.double()).clamp(min=0.0).numpy()
    return np.maximum(squared - BOUND_MARGIN, 0.0), squared / math.log(2) + BOUND_MARGIN


def _roots(heads: np.ndarray, keep: np.ndarray) -> torch.Tensor:
    """``(heads, kept rows × key)`` float32 square roots of the kept rows' weights, one head per worker call."""
    out = torch.empty((len(heads), int(keep.sum()) * heads.shape[-1]), dtype=torch.float32)

    def root(h: int) -> None:
        out[h] = torch.as_tensor(np.ascontiguousarray(heads[h][keep]), dtype=torch.float32).clamp(min=0).sqrt().ravel()

    on_worker_threads(root, range(len(heads)))
    return out


class PairDistances:
    """Exact mean row JSD between heads of two flattened stacks, computed on request and remembered.

    ``a`` is ``(heads_a, query, key)``, ``b`` ``(heads_b, query, key)``; ``lower`` / ``upper`` from
    `hellinger_bounds`. `exact` holds what has been computed (NaN elsewhere).

    B's heads are kept as float64 with each row's ``Σ q log q``, computed once (``8 × heads_b × query × key``
    bytes), so a pair costs one pass over its mixture ``(p + q) / 2``; the values are those of `row_jsd`, bit
    for bit (the same operations in the same order)."""

    CHUNK = 1 << 22
    """Weights of B's heads (float64) a request mixes at once, so its scratch stays near 32 MB."""

    def __init__(self, a: np.ndarray, b: np.ndarray, rows: np.ndarray | None = None) -> None:
        self.a, self.b, self.rows = a, b, rows
        self.lower, self.upper = hellinger_bounds(a, b, rows)
        self.exact = np.full(self.lower.shape, np.nan)
        self._b64 = torch.as_tensor(b).to(torch.float64)
        self._neg_b = torch.zeros(self._b64.shape[:2], dtype=torch.float64)  # (heads_b, query)

        def entropies(j: int) -> None:
            self._neg_b[j] = _neg_entropy(self._b64[j])

        on_worker_threads(entropies, range(len(b)))
        self._last = threading.local()  # per thread: the last head of A it asked for

    def _a64(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Head ``i`` of A as float64 ``(1, query, key)`` and its rows' ``Σ p log p``, kept for the next request
        (`nearest` asks for one head several times in a row)."""
        last = getattr(self._last, "head", None)
        if last is None or last[0] != i:
            p64 = torch.as_tensor(self.a[i][None]).to(torch.float64)
            last = self._last.head = (i, p64, _neg_entropy(p64))
        return last[1], last[2]

    def get(self, i: int, js: np.ndarray | list[int]) -> np.ndarray:
        """Exact distances of head ``i`` of A to heads ``js`` of B."""
        js = np.asarray(js, dtype=np.int64)
        todo = js[np.isnan(self.exact[i, js])]
        if len(todo):
            p64, neg_p = self._a64(i)
            step = max(1, self.CHUNK // max(1, int(np.prod(self.b.shape[1:]))))
            for start in range(0, len(todo), step):
                part = torch.as_tensor(todo[start : start + step])
                mixture = self._b64[part]  # a copy: mixed in place, as (p + q) / 2 rounds
                mixture.add_(p64).mul_(0.5)
                neg_m = torch.special.xlogy(mixture, mixture, out=mixture).sum(dim=-1)
                per_row = _jsd_bits(neg_p, self._neg_b[part], neg_m)
                self.exact[i, todo[start : start + step]] = _row_mean(per_row, self.rows)
        return self.exact[i, js]

    def all_nearest(self, k: int, same_place: bool) -> tuple[np.ndarray, np.ndarray]:
        """`nearest` for every head of A, ``(heads_a, k)`` indices and distances, on worker threads (see
        `on_worker_threads`); with ``same_place`` each head's distance to B's head of the same index first
        (stacks of one shape)."""
        k = min(k, self.lower.shape[1])
        found = np.zeros((len(self.a), k), dtype=np.int64)
        distances = np.zeros((len(self.a), k))

        def one(i: int) -> None:  # each call writes row i only
            if same_place:
                self.get(i, [i])
            found[i], distances[i] = self.nearest(i, k)

        on_worker_threads(one, range(len(self.a)))
        return found, distances

    def nearest(self, i: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` heads of B closest to head ``i`` of A (ties by index) and their exact distances, found by
        computing exact distances in order of the lower bound until the next bound is above the k-th found."""
        k = min(k, self.lower.shape[1])
        order = np.argsort(self.lower[i], kind="stable")
        done = 0
        while True:
            step = max(k, 4)
            self.get(i, order[done : done + step])
            done = min(done + step, len(order))
            known = order[:done]
            found = known[np.lexsort((known, self.exact[i, known]))][:k]
            if done == len(order) or self.exact[i, found[-1]] <= self.lower[i, order[done]]:
                return found, self.exact[i, found]

    def assignment(self) -> list[tuple[int, int]]:
        """The one-to-one matching of A's heads to B's (Kuhn–Munkres through `scipy.optimize.linear_sum_assignment`;
        with more heads in A than in B some of A's stay unmatched).

        It minimises the total Jensen–Shannon *distance*, the square root of the mean divergence: a metric (the
        root mean square of the rows' JS distances, each a metric, Endres & Schindelin 2003). Summing divergences
        instead would trade unchanged heads away: with head x the same in A and B and head y changed, pairing A's
        y with B's x and A's x with B's y can cost less in divergence than y with y; in distance it never can, by
        the triangle inequality ``d(A_y, B_y) <= d(A_y, B_x) + d(B_x, B_y) = d(A_y, B_x) + d(A_x, B_y)``.
        """
        while True:
            cost = np.sqrt(np.where(np.isnan(self.exact), self.lower, self.exact))
            rows, cols = linear_sum_assignment(cost)
            missing = [(int(i), int(j)) for i, j in zip(rows, cols) if np.isnan(self.exact[i, j])]
            if not missing:
                return [(int(i), int(j)) for i, j in zip(rows, cols)]
            for i, j in missing:
                self.get(i, [j])
