"""Attention weights computed when asked for, from what determines them, in memory linear in tokens.

A capture with ``attention="on_demand"`` keeps, per layer, the queries and keys after rotary embeddings,
the scale, any softcap or attention sinks, a position bias per head (`PositionBias`: T5's relative
buckets, ALiBi) and the mask's structure (`MaskStructure`), instead of ``heads × query × key`` weights.
`LazyAttention` is what ``cap.attentions`` (and each stack's ``attentions``) is then: any layer, head,
row block or tile is ``softmax(scale · q·kᵀ + bias + mask)`` computed exactly in float32, one block of
query rows at a time (each row's maximum and sum over *all* its keys, so a tile is its rows' weights, not
a renormalised piece). Layers whose attention could not be kept this way (a bias that is neither a
function of key − query nor of the key alone, a mask that is not a pattern) hold their eager weights
(`LazyLayer.dense`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from ..errors import InputError, check_range, count
from .blocks import LazyLayer, WeightBlock, weight_blocks  # noqa: F401 - LazyLayer is re-exported: it lived here

DEFAULT_BLOCK_BYTES = 64 * 2**20
"""Scratch memory for one block of query rows (scores, exponentials, mask), which sets the block's height."""
DEFAULT_MAX_DENSE_BYTES = 2 * 2**30
"""The largest array `LazyAttention` materialises at once (a layer, rows, a tile, or the whole)."""
_SCRATCH_PER_WEIGHT = 3 * 4 + 1  # float32 scores, exponentials and result, and the bool mask, per weight


class LazyAttention:
    """A stack's attention weights, (layers, heads, query, key), computed on demand.

    ``layer(l)`` -> (heads, query, key); ``rows(l, h, start, stop)`` -> (stop - start, key);
    ``tile(l, h, rows, cols)`` -> (len(rows), len(cols)) with ``rows``/``cols`` ranges or index
    sequences; ``np.asarray(attentions)`` -> the whole array. All float32, equal to eager attention.
    Any result larger than ``max_dense_bytes`` is refused with an `InputError` giving its size, before
    anything is allocated. ``block_bytes`` bounds the scratch memory of one block of query rows.
    ``kv_head_of`` (heads,): the key head each query head reads (grouped-query attention).
    Indexing: ``a[l]`` is ``layer(l)``, ``a[l, h]`` head ``h``'s rows, ``a[l, h, q]`` one row; other
    indexes materialise the whole array first (within ``max_dense_bytes``).
    """

    def __init__(
        self,
        layers: Sequence[LazyLayer],
        heads: int,
        queries: int,
        keys: int,
        kv_head_of: np.ndarray,
        *,
        block_bytes: int = DEFAULT_BLOCK_BYTES,
        max_dense_bytes: int = DEFAULT_MAX_DENSE_BYTES,
    ):
        self.layers = list(layers)
        self.shape = (len(self.layers), heads, queries, keys)
        self.kv_head_of = np.asarray(kv_head_of)
        self.block_bytes = block_bytes
        self.max_dense_bytes = max_dense_bytes

    dtype = np.dtype(np.float32)
    ndim = 4

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        layers, heads, queries, keys = self.shape
        return f"LazyAttention({layers} layers × {heads} heads, {queries:,} queries × {keys:,} keys, on demand)"

    @property
    def eager_layers(self) -> dict[int, str]:
        """Layers that ran eager attention, with the reason (their weights are held dense where ``dense`` is)."""
        return {i: layer.eager_reason for i, layer in enumerate(self.layers) if layer.eager_reason}

    @property
    def nbytes(self) -> int:
        """Bytes the whole array would take in float32 (what ``np.asarray`` would allocate)."""
        return int(np.prod(self.shape, dtype=np.int64)) * 4

    @property
    def block_rows(self) -> int:
        """Query rows computed at once: as many as ``block_bytes`` of scratch allows, at least 1."""
        return max(1, self.block_bytes // (self.shape[3] * _SCRATCH_PER_WEIGHT))

    def layer(self, layer: int) -> np.ndarray:
        """Every head's weights of ``layer``: (heads, query, key) float32."""
        self._check_layer(layer)
        _, heads, queries, keys = self.shape
        self._check_fits(heads * queries * keys, f"layer {layer}'s {count(heads, 'head')}", "rows or a tile")
        out = np.empty((heads, queries, keys), dtype=np.float32)
        for head in range(heads):
            self._fill(layer, head, np.arange(queries), None, out[head])
        return out

    def rows(self, layer: int, head: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Query rows ``start:stop`` of one head: (stop - start, key) float32, each row summing to 1
        (less with attention sinks)."""
        self._check_layer(layer)
        self._check_head(head)
        queries = self.shape[2]
        stop = queries if stop is None else stop
        if not (isinstance(start, int) and isinstance(stop, int) and 0 <= start < stop <= queries):
            raise InputError(f"rows {start}:{stop} are out of range: query rows are 0-{queries - 1}, start < stop")
        keys = self.shape[3]
        self._check_fits((stop - start) * keys, f"{count(stop - start, 'row')} of head {head}", "fewer rows or a tile")
        out = np.empty((stop - start, keys), dtype=np.float32)
        self._fill(layer, head, np.arange(start, stop), None, out)
        return out

    def tile(self, layer: int, head: int, rows: range | Sequence[int], cols: range | Sequence[int]) -> np.ndarray:
        """The weights of query positions ``rows`` on key positions ``cols`` of one head: (rows, cols)
        float32, each normalised over all of its row's keys."""
        self._check_layer(layer)
        self._check_head(head)
        row_ids = self._positions("rows", rows, self.shape[2], "query")
        col_ids = self._positions("cols", cols, self.shape[3], "key")
        self._check_fits(len(row_ids) * len(col_ids), "this tile", "a smaller tile")
        out = np.empty((len(row_ids), len(col_ids)), dtype=np.float32)
        self._fill(layer, head, row_ids, col_ids, out)
        return out

    def blocks(
        self, layer: int, heads: Sequence[int] | None = None, rows: Sequence[int] | None = None, *, key_align: int = 1
    ) -> Iterator[WeightBlock]:
        """``layer``'s weights of ``heads`` (default all) on query positions ``rows`` (default all), block by
        block: every weight computed once, the heads that share a key/value head in one matmul, only the keys
        each row block can see (`capture.blocks.weight_blocks`, whose `WeightBlock` says where each block
        lies). Scratch memory per block stays within ``block_bytes``."""
        self._check_layer(layer)
        chosen = list(range(self.shape[1])) if heads is None else [self._check_head(h) for h in heads]
        positions = np.arange(self.shape[2]) if rows is None else self._positions("rows", rows, self.shape[2], "query")
        return weight_blocks(self, layer, chosen, positions.astype(np.int64), key_align=key_align)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        layers, heads, queries, keys = self.shape
        self._check_fits(
            layers * heads * queries * keys,
            f"dense attention of {count(layers, 'layer')} × {count(heads, 'head')}",
            "one layer (layer(l)), a head's rows (rows(l, h, start, stop)) or a tile (tile(l, h, rows, cols))",
        )
        out = np.empty(self.shape, dtype=np.float32)
        for layer in range(layers):
            for head in range(heads):
                self._fill(layer, head, np.arange(queries), None, out[layer, head])
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getitem__(self, index: Any) -> np.ndarray:
        parts = index if isinstance(index, tuple) else (index,)
        if all(isinstance(p, (int, np.integer)) for p in parts) and 1 <= len(parts) <= 3:
            layer = _in_range("layer", int(parts[0]), self.shape[0])
            if len(parts) == 1:
                return self.layer(layer)
            head = _in_range("head", int(parts[1]), self.shape[1])
            if len(parts) == 2:
                return self.rows(layer, head)
            query = _in_range("query position", int(parts[2]), self.shape[2])
            return self.rows(layer, head, query, query + 1)[0]
        return np.asarray(self)[index]

    def _fill(self, layer: int, head: int, rows: np.ndarray, cols: np.ndarray | None, out: np.ndarray) -> None:
        """Write head ``head``'s weights of query positions ``rows`` (on keys ``cols``, or all) into ``out``."""
        part = self.layers[layer]
        if part.dense is not None:
            chosen = part.dense[head][rows]
            out[...] = chosen if cols is None else chosen[:, cols]
            return
        step = self.block_rows
        for start in range(0, len(rows), step):
            block = rows[start : start + step]
            weights = self._weights(part, head, block)
            out[start : start + len(block)] = weights if cols is None else weights[:, cols]

    def _weights(self, part: LazyLayer, head: int, rows: np.ndarray) -> np.ndarray:
        """softmax over all keys of the query positions ``rows`` of one head: (len(rows), key) float32.

        The operations of eager attention in its order (q·kᵀ times the scale, softcap, bias, mask, softmax with
        each row's maximum subtracted) on the same float32 values, so weights agree to float32 rounding."""
        assert part.queries is not None and part.keys is not None and part.structure is not None
        q = torch.from_numpy(np.ascontiguousarray(part.queries[head, rows]))
        k = torch.from_numpy(part.keys[int(self.kv_head_of[head])])
        with torch.inference_mode():
            scores = torch.matmul(q, k.T) * part.scale
            if part.softcap:
                scores = torch.tanh(scores / part.softcap) * part.softcap
            if part.bias is not None:
                part.bias.add_to(scores.unsqueeze(0), [head], rows, 0, k.shape[0])
            seen = torch.from_numpy(part.structure.allowed(rows, k.shape[0]))
            scores = scores.masked_fill_(~seen, -torch.inf)
            empty = ~seen.any(dim=-1)  # a row that sees no key: eager's additive mask makes it uniform
            if part.sinks is not None:
                sink = torch.full((len(rows), 1), float(part.sinks[head]), dtype=scores.dtype)
                weights = torch.softmax(torch.cat([scores, sink], dim=-1), dim=-1)[:, :-1]
            else:
                weights = torch.softmax(scores, dim=-1)
            if bool(empty.any()) and part.sinks is None:
                weights[empty] = 1.0 / k.shape[0]
            return weights.contiguous().numpy()

    def _check_fits(self, weights: int, what: str, instead: str) -> None:
        needed = weights * 4
        if needed > self.max_dense_bytes:
            _, _, queries, keys = self.shape
            raise InputError(
                f"{what} at {queries:,} × {keys:,} tokens needs {needed / 2**30:,.1f} GiB in float32, over the "
                f"{self.max_dense_bytes / 2**30:,.1f} GiB allowed (max_dense_bytes): ask for {instead} instead"
            )

    def _check_layer(self, layer: int) -> None:
        check_range("layer", layer, self.shape[0], "this stack")

    def _check_head(self, head: int) -> int:
        return check_range("head", head, self.shape[1], "this stack")

    @staticmethod
    def _positions(name: str, given: range | Sequence[int], size: int, what: str) -> np.ndarray:
        ids = np.arange(given.start, given.stop, given.step) if isinstance(given, range) else np.asarray(given)
        if ids.ndim != 1 or len(ids) == 0 or not np.issubdtype(ids.dtype, np.integer):
            raise InputError(f"{name} must be a non-empty range or sequence of {what} positions, got {given!r:.60}")
        if ids.min() < 0 or ids.max() >= size:
            raise InputError(f"{name} holds {what} positions outside 0-{size - 1}: {given!r:.60}")
        return ids


def _in_range(name: str, value: int, size: int) -> int:
    return check_range(name, value, size, "this stack")
