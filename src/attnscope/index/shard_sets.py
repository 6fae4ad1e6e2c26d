"""Several shards' vector sets searched as one set (fan-out): each shard searched, the top-k merged.

A sharded build writes one vector set per shard and (kind, layer); shard ``i`` holds the global rows
``first_i .. first_i + count_i - 1``, the shards together every row once, in order. `ShardedSet` has
the interface `Index` uses of a `vectors.VectorSet` (``count``, ``dim``, ``nbytes``, ``approximate``,
``search``, ``decoded``), so the index searches the shards as it searches one set. Its results equal
one set's holding the same codes: the same scores and rows, equal scores in row order (each shard's
search orders its ties by row, `vectors.ties_by_row`, and so does the merge). For IVF shards built
against one shared trained quantizer (`ivf_shards`), scanning ``probes`` clusters of every shard scans
exactly the clusters one merged index would, so fan-out equals the merged index too.

A shard's set numbers its rows either from 0 (an exact set, or an IVF of local ids) or by global row
(an IVF shard made by `ivf_shards.add_shard`): `Shard.global_ids` says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from .vectors import ordered


@dataclass(frozen=True)
class Shard:
    """One shard's searchable set (a `vectors.VectorSet`, or anything with its interface), the global row
    of its first row, and whether the set's own ids are global rows (True) or 0..count-1 (False)."""

    vectors: Any
    first: int
    global_ids: bool = False

    @property
    def end(self) -> int:
        return self.first + int(self.vectors.count)


class ShardedSet:
    """Shards searched as one set of ``count`` rows (the shards' counts summed). Raises `InputError`
    when the shards do not cover rows 0..count-1 once each, in order, or differ in width or kind
    (exact vs approximate)."""

    def __init__(self, shards: Sequence[Shard]):
        if not shards:
            raise InputError("a sharded vector set needs at least one shard")
        shards = sorted(shards, key=lambda s: s.first)
        expected = 0
        for number, shard in enumerate(shards):
            if shard.first != expected:
                raise InputError(
                    f"shard {number} starts at row {shard.first}, expected {expected}: "
                    "the shards must cover rows 0..count-1 once each"
                )
            expected = shard.end
        widths = {int(s.vectors.dim) for s in shards}
        kinds = {bool(s.vectors.approximate) for s in shards}
        if len(widths) > 1 or len(kinds) > 1:
            raise InputError(
                f"the shards differ: widths {sorted(widths)}, approximate {sorted(kinds)}; "
                "every shard of one set must hold vectors of one width, all exact or all approximate"
            )
        self.shards, self.count, self.dim, self.approximate = list(shards), expected, widths.pop(), kinds.pop()

    @property
    def nbytes(self) -> int:
        """Memory the shards' codes take."""
        return sum(int(s.vectors.nbytes) for s in self.shards)

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None, probes: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """As `vectors.VectorSet.search`: top-``k`` inner products per query row, (scores, global rows)
        best first, equal scores in row order, rows -1 where fewer than ``k`` rows are allowed.
        ``allowed`` is a (count,) bool mask over global rows or None."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if allowed is not None and len(allowed) != self.count:
            raise InputError(f"allowed has {len(allowed)} rows; this set has {self.count}")
        k = max(1, min(k, self.count))
        found_scores, found_rows = [], []
        for shard in self.shards:
            mask = None
            if allowed is not None:
                if not allowed[shard.first : shard.end].any():
                    continue
                mask = allowed[: shard.end] if shard.global_ids else allowed[shard.first : shard.end]
            scores, rows = shard.vectors.search(queries, k, mask, probes)
            if not shard.global_ids:
                rows = np.where(rows >= 0, rows + shard.first, -1)
            found_scores.append(scores)
            found_rows.append(rows.astype(np.int64))
        return merged_top(found_scores, found_rows, k, len(queries))

    def decoded(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Float32 vectors of global ``rows`` (all when None), as search sees them, in the order given."""
        wanted = np.arange(self.count) if rows is None else np.asarray(rows, dtype=np.int64)
        out = np.zeros((len(wanted), self.dim), dtype=np.float32)
        if len(wanted) and (wanted.min() < 0 or wanted.max() >= self.count):
            raise InputError(f"rows must be within 0-{self.count - 1}")
        for shard in self.shards:
            inside = np.flatnonzero((wanted >= shard.first) & (wanted < shard.end))
            if len(inside):
                local = wanted[inside] if shard.global_ids else wanted[inside] - shard.first
                out[inside] = shard.vectors.decoded(local)
        return out


def merged_top(
    found_scores: Sequence[np.ndarray], found_rows: Sequence[np.ndarray], k: int, queries: int
) -> tuple[np.ndarray, np.ndarray]:
    """The top ``k`` of several parts' results (each (queries, n) scores and global rows, rows -1 for none):
    (queries, k) best first, equal scores in row order, padded with rows -1 where fewer than ``k`` were
    found (no parts at all: nothing was allowed anywhere)."""
    if not found_scores:
        return np.full((queries, k), -np.finfo(np.float32).max, np.float32), np.full((queries, k), -1)
    scores, rows = ordered(np.concatenate(found_scores, axis=1), np.concatenate(found_rows, axis=1), k)
    if scores.shape[1] < k:  # every part smaller than k: pad as one set would not need to
        pad = k - scores.shape[1]
        scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.finfo(np.float32).max)
        rows = np.pad(rows, ((0, 0), (0, pad)), constant_values=-1)
    return scores, rows
