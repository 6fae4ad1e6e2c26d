"""Reductions of attention at long context, computed block by block so no ``query × key`` matrix is held.

At 8,192 tokens one layer of SmolLM2 is 9 heads × 8,192² weights (2.4 GB in float32); the whole model 30
times that. What a view needs is smaller: each query's strongest keys (`top_keys`, the head view's lines),
every head pooled over ``block × block`` cells (`pooled_overview`, the model view), each row's entropy
(`row_entropy`), rollout for chosen query rows (`rollout_rows`). Each is computed from the weights one
block of query rows at a time (`LazyAttention.blocks`: a block is computed once, for all query heads of a
key/value head in one matmul, over only the keys its rows can see), and `summarise` feeds the overview, the
top keys and the entropy of every layer from one pass.

``attentions`` is a `LazyAttention` (``cap.attentions`` of ``capture(..., attention="on_demand")``) or a
dense (layers, heads, query, key) numpy array or torch tensor (a short capture's ``cap.attentions``); both
give the same numbers. Weights are float32 and equal eager attention's within float32 rounding. Bad
arguments raise `InputError` (a `FieldError` naming the parameter) with the allowed range.
"""

from __future__ import annotations

import math
import numbers
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from ..capture.blocks import WeightBlock, for_each_chunk
from ..capture.lazy import LazyAttention, LazyLayer
from ..errors import FieldError, InputError, check_range
from .aggregate import check_heads

__all__ = [
    "Overview",
    "Summary",
    "TopKeys",
    "pooled_overview",
    "rollout_rows",
    "row_entropy",
    "summarise",
    "top_keys",
]

Attentions = Any  # a LazyAttention, or a (layers, heads, query, key) numpy array or torch tensor


@dataclass
class TopKeys:
    """Each query row's ``k`` strongest keys in one layer, per head, with their exact float32 weights.

    ``heads``: the model's head numbers, in the order asked for; ``rows``: the query positions asked for, in
    that order (None: every query, 0 to query - 1).
    ``indices``: (len(heads), len(rows), k) int32 key positions, strongest first, ties broken by the lower
    key position; -1 where fewer than ``k`` keys have a weight above 0 (the mask hides them, or the weight
    underflows float32). ``weights``: (len(heads), len(rows), k) float32, 0 where the index is -1.
    """

    layer: int
    heads: list[int]
    indices: np.ndarray
    weights: np.ndarray
    rows: range | Sequence[int] | None = None


@dataclass
class Overview:
    """Every head's weights pooled over ``block × block`` cells (query × key), for drawing a whole model.

    ``shape``: the stack's (layers, heads, query, key); ``layers``, ``heads``: the model's numbers of what
    is pooled. ``maximum`` and ``mean``: (len(layers), len(heads), ceil(query / block), ceil(key / block))
    float32: the largest weight of each block and the mean over its cells inside the matrix (the last row
    and column of cells may cover fewer tokens), keys the mask hides counting as 0.
    """

    shape: tuple[int, int, int, int]
    layers: list[int]
    heads: list[int]
    block: int
    maximum: np.ndarray
    mean: np.ndarray

    def describe(self) -> str:
        """How a cell was pooled, in words, to be written beside the overview."""
        if self.block == 1:
            return "each cell: one weight (no pooling)"
        _, _, queries, keys = self.shape
        uneven = queries % self.block or keys % self.block
        edge = "; the last row or column of cells covers fewer tokens" if uneven else ""
        return f"each cell: max and mean of a {self.block} × {self.block}-token block (query × key){edge}"


@dataclass
class Summary:
    """What `summarise` computes in one pass: the ``overview``, ``top`` keys of each of its layers (in
    ``overview.layers`` order) and ``entropy`` (len(layers), len(heads), query) float64 in nats."""

    overview: Overview
    top: list[TopKeys]
    entropy: np.ndarray


def top_keys(
    attentions: Attentions,
    layer: int,
    k: int = 8,
    *,
    heads: Sequence[int] | None = None,
    rows: range | Sequence[int] | None = None,
) -> TopKeys:
    """Each query row's ``k`` strongest keys in ``layer`` for ``heads`` (default all), exact weights.

    ``rows``: the query positions (default all), a range or a list. Returns `TopKeys`. Raises `InputError`
    for a layer, head, row or ``k`` (1 to the number of keys) out of range.
    """
    lazy = as_lazy(attentions)
    layer = _check_layer(layer, lazy)
    chosen = check_heads(heads, lazy.shape[1])
    positions = _rows("rows", rows, lazy.shape[2])
    top = _TopK(len(chosen), len(positions), _check_k(k, lazy.shape[3]))
    _run(lazy, layer, chosen, positions, [top], key_align=_chunk_align(k, lazy.shape[3]))
    return top.result(layer, chosen, rows)


def pooled_overview(
    attentions: Attentions,
    block: int | None = None,
    *,
    cells: int = 128,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
) -> Overview:
    """Every chosen head of every chosen layer (default all) pooled over ``block × block`` cells.

    ``block`` None: the smallest block that makes the grid at most ``cells × cells``. Returns `Overview`.
    Raises `InputError` for ``block`` or ``cells`` below 1, ``block`` above the longer side, or layers
    and heads out of range.
    """
    lazy = as_lazy(attentions)
    chosen_layers, chosen = _check_layers(layers, lazy), check_heads(heads, lazy.shape[1])
    size = _check_block(block, cells, lazy.shape)
    pools = []
    for layer in chosen_layers:
        pool = _Pool(len(chosen), lazy.shape, size)
        _run(lazy, layer, chosen, np.arange(lazy.shape[2]), [pool], key_align=size)
        pools.append(pool)
    return _overview(lazy, chosen_layers, chosen, size, pools)


def row_entropy(attentions: Attentions, layer: int, *, heads: Sequence[int] | None = None) -> np.ndarray:
    """The entropy of each query row's weights in ``layer``, ``-Σ w·ln w`` with ``0·ln 0 = 0``, in nats:
    (len(heads), query) float64. Rows that sum to less than 1 (attention sinks) are taken as they are."""
    lazy = as_lazy(attentions)
    layer = _check_layer(layer, lazy)
    chosen = check_heads(heads, lazy.shape[1])
    entropy = _Entropy(len(chosen), lazy.shape[2])
    _run(lazy, layer, chosen, np.arange(lazy.shape[2]), [entropy])
    return entropy.values


def summarise(
    attentions: Attentions,
    *,
    k: int = 8,
    block: int | None = None,
    cells: int = 128,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
) -> Summary:
    """The overview (`pooled_overview`), every chosen layer's top keys (`top_keys`, all rows) and the
    entropy (`row_entropy`) from one pass over each layer's weights: the cost of the overview alone plus
    the reductions' own work. Arguments and errors as those functions'."""
    lazy = as_lazy(attentions)
    chosen_layers, chosen = _check_layers(layers, lazy), check_heads(heads, lazy.shape[1])
    size = _check_block(block, cells, lazy.shape)
    k = _check_k(k, lazy.shape[3])
    queries = lazy.shape[2]
    pools, tops, entropy = [], [], np.empty((len(chosen_layers), len(chosen), queries))
    for i, layer in enumerate(chosen_layers):
        pool, top, rows_entropy = (
            _Pool(len(chosen), lazy.shape, size),
            _TopK(len(chosen), queries, k),
            _Entropy(len(chosen), queries),
        )
        align = math.lcm(size, _chunk_align(k, lazy.shape[3]))
        _run(lazy, layer, chosen, np.arange(queries), [pool, top, rows_entropy], key_align=align)
        pools.append(pool)
        tops.append(top.result(layer, chosen, None))
        entropy[i] = rows_entropy.values
    return Summary(_overview(lazy, chosen_layers, chosen, size, pools), tops, entropy)


def rollout_rows(
    attentions: Attentions, rows: Sequence[int] | range, *, layer: int | None = None, heads: Sequence[int] | None = None
) -> np.ndarray:
    """Rows ``rows`` of attention rollout (Abnar & Zuidema 2020) after ``layer`` (default: the last) of the
    heads' mean: (len(rows), key) float64, each row summing to 1.

    The same numbers as ``analysis.aggregate.rollout`` of the mean of ``heads`` (``R_l = Â_l · R_{l-1}``,
    ``Â = 0.5·A + 0.5·I`` with rows renormalised), computed as row vectors times each layer's matrix from
    ``layer`` down to 0, block by block: ``layer + 1`` passes over a layer's weights (for a causal model
    only the rows up to the last one asked), never an ``n × n`` product. Needs a self-attention stack
    (as many queries as keys); raises `InputError` otherwise, or for rows, a layer or heads out of range.
    """
    lazy = as_lazy(attentions)
    layers, head_count, queries, keys = lazy.shape
    if queries != keys:
        raise InputError(
            f"rollout follows attention through self-attention layers: this stack has {queries:,} queries "
            f"but {keys:,} keys (cross attention); pass an encoder or decoder stack's attentions"
        )
    last = layers - 1 if layer is None else _check_layer(layer, lazy)
    chosen = check_heads(heads, head_count)
    positions = _rows("rows", rows, queries, required=True)
    vectors = np.zeros((len(positions), keys))
    vectors[np.arange(len(positions)), positions] = 1.0
    for current in range(last, -1, -1):
        vectors = _times_layer(lazy, current, chosen, vectors)
    return vectors


def as_lazy(attentions: Attentions) -> LazyAttention:
    """``attentions`` as a `LazyAttention`: itself, or a dense (layers, heads, query, key) array's layers
    held as they are (one key/value head per head). `InputError` for anything else."""
    if isinstance(attentions, LazyAttention):
        return attentions
    if isinstance(attentions, torch.Tensor):
        attentions = attentions.detach().cpu().to(torch.float32).numpy()  # numpy has no bfloat16
    if not isinstance(attentions, np.ndarray) or attentions.ndim != 4:
        shape = getattr(attentions, "shape", None)
        raise InputError(
            "attentions must be a LazyAttention (cap.attentions of an on-demand capture) or a (layers, heads, "
            f"query, key) array, got {type(attentions).__name__}{'' if shape is None else f' of shape {shape}'}"
        )
    layers, heads, queries, keys = attentions.shape
    parts = [LazyLayer(dense=attentions[layer]) for layer in range(layers)]
    return LazyAttention(parts, heads, queries, keys, np.arange(heads))


class _Reduction(Protocol):
    def feed(self, block: WeightBlock) -> None: ...


def _run(
    lazy: LazyAttention,
    layer: int,
    heads: list[int],
    rows: np.ndarray,
    reductions: Sequence[_Reduction],
    *,
    key_align: int = 1,
) -> None:
    """Feed every block of ``layer`` to every reduction, computing each block once (`for_each_chunk`: chunks
    on worker threads; a reduction's ``feed`` writes only its block's rows, or takes a lock)."""

    def consume(blocks: list[WeightBlock]) -> None:
        for block in blocks:
            for reduction in reductions:
                reduction.feed(block)

    for_each_chunk(lazy, layer, heads, rows, consume, key_align=key_align)


_CHUNK = 128  # keys per chunk in `_TopK`'s first stage


class _TopK:
    """Each row's ``k`` largest weights, strongest first, ties to the lower key (see `TopKeys`).

    Long rows go in two stages: the ``k`` chunks of `_CHUNK` keys with the largest maxima hold every one of
    the row's ``k`` largest weights (each of those lies in a chunk whose maximum is at least as large), so
    only their keys are ranked. A tie at either stage's edge sends the row to a full ranking."""

    def __init__(self, heads: int, rows: int, k: int):
        self.k = k
        self.indices = np.full((heads, rows, k), -1, dtype=np.int32)
        self.weights = np.zeros((heads, rows, k), dtype=np.float32)

    def feed(self, block: WeightBlock) -> None:
        weights = block.weights
        k = min(self.k, weights.shape[-1])
        if weights.shape[-1] // _CHUNK >= 2 * (k + 1):
            values, index = _top_in_chunks(weights, k)
        else:
            values, index = _top(weights, k)
        order = np.lexsort((index, -values), axis=-1)
        values = np.take_along_axis(values, order, axis=-1)
        index = np.take_along_axis(index, order, axis=-1) + block.key_start
        index[values == 0] = -1
        stop = block.first + len(block.positions)
        self.indices[block.slots, block.first : stop, :k] = index
        self.weights[block.slots, block.first : stop, :k] = values

    def result(self, layer: int, heads: list[int], rows: range | Sequence[int] | None) -> TopKeys:
        return TopKeys(layer, heads, self.indices, self.weights, rows)


def _chunk_align(k: int, keys: int) -> int:
    """Where block spans should start and end for `_TopK`: at whole chunks when rows are long enough to be
    ranked in chunks (the extra keys are hidden ones, weight 0), else anywhere."""
    return _CHUNK if keys // _CHUNK >= 2 * (k + 1) else 1


def _top(weights: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest of each row of (..., keys) ``weights`` as (values, key indices), in any order; of keys
    tied at the ``k``-th value, the lowest."""
    span = weights.shape[-1]
    values_t, index_t = torch.topk(weights, min(k + 1, span), dim=-1)
    values, index = values_t.numpy(), index_t.numpy()
    if k == span:
        return values, index
    # the k-th and (k+1)-th largest are equal: which tied keys came in depends on topk; take the lowest
    tied = np.argwhere((values[..., k] == values[..., k - 1]) & (values[..., k - 1] > 0))
    values, index = values[..., :k].copy(), index[..., :k].copy()
    for where in map(tuple, tied):
        index[where], values[where] = _lowest_ties(weights[where].numpy(), values[where][-1], k)
    return values, index


def _lowest_ties(row: np.ndarray, threshold: float, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest of ``row`` given its ``k``-th largest value: all above it, then the lowest tied keys."""
    above = np.flatnonzero(row > threshold)
    chosen = np.concatenate([above, np.flatnonzero(row == threshold)[: k - len(above)]])
    return chosen, row[chosen]


def _top_in_chunks(weights: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """`_top` for long rows: rank the keys of the ``k`` chunks with the largest maxima (and the keys after
    the last whole chunk); rows where a chunk left out ties with one kept are ranked in full."""
    heads, rows, span = weights.shape
    whole = span // _CHUNK * _CHUNK
    chunks = weights[..., :whole].view(heads, rows, -1, _CHUNK)
    chunk_max, chunk = torch.topk(chunks.amax(dim=-1), k + 1, dim=-1)
    kept = torch.sort(chunk[..., :k], dim=-1).values  # candidates in key order, so ties go to the lower key
    if whole == span:  # the chunks are rows of one contiguous (heads · rows · chunks, _CHUNK) matrix
        first = (torch.arange(heads * rows) * chunks.shape[2]).view(heads, rows, 1)
        candidates = chunks.reshape(-1, _CHUNK).index_select(0, (kept + first).flatten()).view(heads, rows, -1)
    else:
        candidates = torch.gather(chunks, 2, kept[..., None].expand(heads, rows, k, _CHUNK)).view(heads, rows, -1)
    if whole < span:
        candidates = torch.cat([candidates, weights[..., whole:]], dim=-1)
    values, picked = _top(candidates, k)
    inside = k * _CHUNK  # candidates past this are the keys after the last whole chunk
    start = np.take_along_axis(kept.numpy(), np.minimum(picked // _CHUNK, k - 1), axis=-1) * _CHUNK
    index = np.where(picked < inside, start + picked % _CHUNK, whole + picked - inside)
    left_tied = ((chunk_max[..., k] == chunk_max[..., k - 1]) & (chunk_max[..., k - 1] > 0)).numpy()
    for where in map(tuple, np.argwhere(left_tied)):
        values[where], index[where] = (part[0] for part in _top(weights[where][None], k))
    return values, index


class _Pool:
    """Max and sum of each ``block × block`` cell of every head; blocks' key spans start at a multiple of it."""

    def __init__(self, heads: int, shape: tuple[int, int, int, int], block: int):
        _, _, queries, keys = shape
        self.block, self.queries, self.keys = block, queries, keys
        grid = (heads, -(-queries // block), -(-keys // block))
        self.maximum = torch.zeros(grid, dtype=torch.float32)
        self.total = torch.zeros(grid, dtype=torch.float64)
        self.lock = threading.Lock()  # chunks shorter than a block share its cells

    def feed(self, block: WeightBlock) -> None:
        size, weights = self.block, block.weights
        heads, rows, span = weights.shape
        whole = span // size * size
        maxima, sums = [], []
        if whole:
            cells = weights[..., :whole].view(heads, rows, whole // size, size)
            maxima.append(cells.amax(dim=-1))
            sums.append(cells.sum(dim=-1))
        if whole < span:
            maxima.append(weights[..., whole:].amax(dim=-1, keepdim=True))
            sums.append(weights[..., whole:].sum(dim=-1, keepdim=True))
        row_max, row_sum = torch.cat(maxima, dim=-1), torch.cat(sums, dim=-1)  # (heads, rows, key cells)
        first = int(block.positions[0])  # the overview's rows are a run of positions
        lead, trail = first % size, -(first + rows) % size
        padded_max = torch.nn.functional.pad(row_max, (0, 0, lead, trail))
        padded_sum = torch.nn.functional.pad(row_sum, (0, 0, lead, trail))
        grid_rows = (lead + rows + trail) // size
        pooled_max = padded_max.view(heads, grid_rows, size, -1).amax(dim=2)
        pooled_sum = padded_sum.view(heads, grid_rows, size, -1).sum(dim=2, dtype=torch.float64)
        row0, col0 = first // size, block.key_start // size
        where = (torch.tensor(block.slots), slice(row0, row0 + grid_rows), slice(col0, col0 + row_max.shape[-1]))
        with self.lock:
            self.maximum[where] = torch.maximum(self.maximum[where], pooled_max)
            self.total[where] += pooled_sum

    def mean(self) -> np.ndarray:
        """Each cell's sum over the number of its cells inside the matrix: (heads, rows, cols) float32."""
        size = self.block
        rows = np.minimum(size, self.queries - np.arange(0, self.queries, size))
        cols = np.minimum(size, self.keys - np.arange(0, self.keys, size))
        return (self.total.numpy() / np.outer(rows, cols)).astype(np.float32)


def _overview(lazy: LazyAttention, layers: list[int], heads: list[int], size: int, pools: list[_Pool]) -> Overview:
    maximum = np.stack([pool.maximum.numpy() for pool in pools])
    mean = np.stack([pool.mean() for pool in pools])
    return Overview(lazy.shape, layers, heads, size, maximum, mean)


class _Entropy:
    """Each row's ``-Σ w·ln w``: float32 terms (``ln w`` from log-softmax, not a log per weight), summed in
    float32 over runs of `_CHUNK` keys and in float64 across runs. Float32 weights carry a relative error of
    about 6e-8 each, which moves the entropy by up to about ``6e-8 · (H + 1)`` nats."""

    def __init__(self, heads: int, rows: int):
        self.values = np.zeros((heads, rows), dtype=np.float64)

    def feed(self, block: WeightBlock) -> None:
        terms = block.log_weights().mul_(block.weights)
        heads, rows, span = terms.shape
        whole = span // _CHUNK * _CHUNK
        total = terms[..., :whole].view(heads, rows, -1, _CHUNK).sum(dim=-1).sum(dim=-1, dtype=torch.float64)
        if whole < span:
            total += terms[..., whole:].sum(dim=-1, dtype=torch.float64)
        stop = block.first + len(block.positions)
        self.values[block.slots, block.first : stop] = -total.numpy()


def _times_layer(lazy: LazyAttention, layer: int, heads: list[int], vectors: np.ndarray) -> np.ndarray:
    """``vectors · Â`` for ``Â`` = rows renormalised of ``0.5 · mean of heads + 0.5 · I`` (`aggregate.rollout`),
    over the rows of ``Â`` the vectors weigh, one chunk of rows (all heads) at a time."""
    used = np.flatnonzero(vectors.any(axis=0))
    positions = np.arange(used.min(), used.max() + 1)
    out = np.zeros_like(vectors)
    lock = threading.Lock()

    def consume(chunk: list[WeightBlock]) -> None:
        _add_chunk(chunk, len(heads), vectors, out, lock)

    for_each_chunk(lazy, layer, heads, positions, consume)
    return out


def _add_chunk(
    chunk: list[WeightBlock], heads: int, vectors: np.ndarray, out: np.ndarray, lock: threading.Lock
) -> None:
    """Add the chunk's rows of ``Â`` weighed by ``vectors`` to ``out``; ``chunk``: its blocks (every head)."""
    start, stop, positions = chunk[0].key_start, chunk[0].key_stop, chunk[0].positions
    total = sum(block.weights.sum(dim=0, dtype=torch.float64) for block in chunk)
    assert isinstance(total, torch.Tensor)
    mean = (total / heads).to(torch.float32).to(torch.float64).numpy()  # as `combine_heads`: float64 mean, float32
    half = np.multiply(mean, 0.5, out=mean)
    sums = half.sum(axis=1) + 0.5  # each row of 0.5·A + 0.5·I
    weighed = vectors[:, positions] / sums[None, :]
    product = weighed @ half
    with lock:
        out[:, start:stop] += product
        out[:, positions] += 0.5 * weighed


def _check_layer(layer: Any, lazy: LazyAttention) -> int:
    try:
        return check_range("layer", layer, lazy.shape[0], "this stack")
    except InputError as error:
        raise FieldError(str(error), "layer") from None


def _check_layers(layers: Sequence[int] | None, lazy: LazyAttention) -> list[int]:
    from ..selection import check_choices

    return check_choices("layers", layers, lazy.shape[0], "this stack", unit="layer")


def _whole(value: Any) -> int | None:
    """``value`` as an int if it is a whole number (not a bool), else None."""
    return int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else None


def _check_k(k: Any, keys: int) -> int:
    number = _whole(k)
    if number is None or not 1 <= number <= keys:
        raise FieldError(f"k must be a whole number from 1 to {keys:,} (the number of keys), got {k!r}", "k")
    return number


def _check_block(block: Any, cells: Any, shape: tuple[int, int, int, int]) -> int:
    longest = max(shape[2], shape[3])
    if block is None:
        number = _whole(cells)
        if number is None or number < 1:
            raise FieldError(f"cells must be a whole number of at least 1, got {cells!r}", "cells")
        return max(1, math.ceil(longest / number))
    number = _whole(block)
    if number is None or not 1 <= number <= longest:
        raise FieldError(
            f"block must be a whole number of tokens from 1 to {longest:,} (the longer side), got {block!r}", "block"
        )
    return number


def _rows(name: str, rows: Any, queries: int, *, required: bool = False) -> np.ndarray:
    """Query positions ``rows`` (None: all unless ``required``) as an int64 array, each checked."""
    if rows is None and not required:
        return np.arange(queries, dtype=np.int64)
    if rows is None or isinstance(rows, (str, bytes, numbers.Number)) or not hasattr(rows, "__iter__"):
        raise FieldError(f"{name} must be a range or list of query positions 0-{queries - 1}, got {rows!r}", name)
    positions = list(rows)
    if not positions:
        raise FieldError(f"{name} is empty: name at least one query position (0-{queries - 1})", name)
    for i, position in enumerate(positions):
        number = _whole(position)
        if number is None or not 0 <= number < queries:
            raise FieldError(
                f"{name} holds {position!r}, out of range: query positions are 0-{queries - 1}", f"{name}.{i}"
            )
    return np.asarray(positions, dtype=np.int64)
