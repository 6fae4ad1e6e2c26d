"""A layer's attention weights as a sequence of blocks, each computed once, for reductions that need every weight.

`weight_blocks` walks one layer of a `LazyAttention` in chunks of query rows. Each block holds, for the query
heads that share one key/value head (grouped-query attention), the weights of those rows on the span of keys
the rows can see (`MaskStructure`: a causal row block sees keys up to its last row, a sliding window only the
last ``window`` of those), computed in one matmul with the operations of `LazyAttention` in its order, so
each weight agrees with eager attention to float32 rounding. Keys outside a block's span have weight exactly
0. A layer held dense (`LazyLayer.dense`) is cut into blocks of its stored weights over every key.

Memory: a block's scratch (scores, softmax, and what a reduction derives from them) is bounded by
``block_bytes``, as `LazyAttention.rows` is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from .mask_structure import MaskStructure

if TYPE_CHECKING:
    from .lazy import LazyAttention, LazyLayer

SCRATCH_PER_WEIGHT = 4 * 4  # float32 scores and weights, one float32 temporary of a reduction, bool masks


@dataclass
class WeightBlock:
    """Weights of some query heads of one layer on a chunk of query rows, over the keys those rows can see.

    ``slots``: where each head sits in the list of heads asked for (``heads[i]`` is the model's number of
    ``slots[i]``); ``first`` and ``positions``: the chunk is entries ``first:first + len(positions)`` of the
    rows asked for, at query positions ``positions``; ``key_start:key_stop``: the key positions the block
    spans (every weight outside it is exactly 0). ``weights``: (len(heads), len(positions), key_stop -
    key_start) float32 torch tensor, each row normalised over all its keys (less than 1 with attention sinks).
    """

    heads: list[int]
    slots: list[int]
    first: int
    positions: np.ndarray
    key_start: int
    key_stop: int
    weights: torch.Tensor


def weight_blocks(
    attentions: LazyAttention,
    layer: int,
    heads: list[int],
    rows: np.ndarray,
    *,
    key_align: int = 1,
    block_bytes: int | None = None,
) -> Iterator[WeightBlock]:
    """The weights of ``heads`` (model head numbers) on query positions ``rows`` of ``layer``, block by block.

    Row chunks come in order; within a chunk, one block per key/value head's group of the heads asked for.
    ``key_align``: each span starts at a multiple of it and ends at one (or at the last key), for pooling.
    ``block_bytes`` (default: the attentions'): the scratch budget that sets a chunk's height. Arguments are
    trusted (checked by the caller).
    """
    part = attentions.layers[layer]
    keys = attentions.shape[3]
    groups = _groups(heads, None if part.dense is not None else attentions.kv_head_of)
    widest = max(len(slots) for slots in groups)
    budget = attentions.block_bytes if block_bytes is None else block_bytes
    height = max(1, budget // (widest * keys * SCRATCH_PER_WEIGHT))
    for first in range(0, len(rows), height):
        positions = rows[first : first + height]
        if part.dense is not None:
            yield _dense_block(part.dense, heads, positions, first)
            continue
        assert part.structure is not None
        start, stop = _span(part.structure, positions, keys, key_align, part.sinks is not None)
        for slots in groups:
            chosen = [heads[s] for s in slots]
            weights = _softmax_block(part, attentions.kv_head_of, chosen, positions, start, stop, keys)
            yield WeightBlock(chosen, slots, first, positions, start, stop, weights)


def _groups(heads: list[int], kv_head_of: np.ndarray | None) -> list[list[int]]:
    """Slots of ``heads`` grouped by the key/value head they read (one group for dense weights)."""
    if kv_head_of is None:
        return [list(range(len(heads)))]
    groups: dict[int, list[int]] = {}
    for slot, head in enumerate(heads):
        groups.setdefault(int(kv_head_of[head]), []).append(slot)
    return list(groups.values())


def _dense_block(dense: np.ndarray, heads: list[int], positions: np.ndarray, first: int) -> WeightBlock:
    chosen = dense[heads][:, positions] if len(heads) < dense.shape[0] else dense[:, positions]
    weights = torch.from_numpy(np.ascontiguousarray(chosen, dtype=np.float32))
    return WeightBlock(list(heads), list(range(len(heads))), first, positions, 0, dense.shape[2], weights)


def _span(structure: MaskStructure, positions: np.ndarray, keys: int, align: int, sinks: bool) -> tuple[int, int]:
    """The keys query ``positions`` can see, as ``start, stop`` (widened to multiples of ``align``).

    A row that sees no key at all gets eager attention's uniform weights over every key (unless a sink
    column takes its weight), so a chunk holding one spans every key."""
    low, high = int(positions.min()), int(positions.max())
    start, stop = 0, keys
    if structure.causal:
        stop = min(keys, high + 1)
        if structure.window is not None:
            start = max(0, low - structure.window + 1)
    if structure.key_valid is not None and not sinks and bool((_visible(structure, positions, keys) == 0).any()):
        return 0, keys
    start = start // align * align
    stop = min(keys, -(-stop // align) * align)
    return start, stop


def _visible(structure: MaskStructure, positions: np.ndarray, keys: int) -> np.ndarray:
    """How many keys each query position sees: (len(positions),) int."""
    valid = np.ones(keys, dtype=bool) if structure.key_valid is None else structure.key_valid[:keys]
    before = np.concatenate([[0], np.cumsum(valid)])  # before[j]: valid keys among 0..j-1
    stop = np.minimum(positions + 1, keys) if structure.causal else np.full(len(positions), keys)
    start = np.zeros(len(positions), dtype=np.int64)
    if structure.causal and structure.window is not None:
        start = np.maximum(0, positions - structure.window + 1)
    return before[stop] - before[np.minimum(start, stop)]


def _softmax_block(
    part: LazyLayer,
    kv_head_of: np.ndarray,
    heads: list[int],
    positions: np.ndarray,
    start: int,
    stop: int,
    keys: int,
) -> torch.Tensor:
    """softmax(scale · q·kᵀ, softcap, mask) of ``heads`` (sharing one key head) on ``positions`` over keys
    ``start:stop``: (len(heads), len(positions), stop - start) float32, the operations of
    `LazyAttention._weights` in its order, all heads in one matmul."""
    assert part.queries is not None and part.keys is not None and part.structure is not None
    q = _queries(part.queries, heads, positions)  # (heads, rows, head_dim)
    k = torch.from_numpy(part.keys[int(kv_head_of[heads[0]])])[start:stop]
    count, rows = len(heads), len(positions)
    with torch.inference_mode():
        scores = torch.matmul(q.reshape(count * rows, -1), k.T).view(count, rows, stop - start)
        scores.mul_(part.scale)
        if part.softcap:
            scores.div_(part.softcap).tanh_().mul_(part.softcap)
        _hide(scores, part.structure, positions, start, stop)
        if part.sinks is not None:
            sink = torch.from_numpy(np.asarray(part.sinks, dtype=np.float32)[heads]).view(count, 1, 1)
            joined = torch.cat([scores, sink.expand(count, rows, 1)], dim=-1)
            return torch.softmax(joined, dim=-1)[..., :-1].contiguous()
        weights = torch.softmax(scores, dim=-1)
        if part.structure.key_valid is not None:
            empty = torch.from_numpy(_visible(part.structure, positions, keys) == 0)
            if bool(empty.any()):  # eager's additive mask makes a row that sees no key uniform
                weights[:, empty] = 1.0 / keys
        return weights


def _queries(queries: np.ndarray, heads: list[int], positions: np.ndarray) -> torch.Tensor:
    """Queries of ``heads`` at ``positions``: (heads, rows, head_dim), a view when both are runs."""
    q = torch.from_numpy(queries)
    h0, p0 = heads[0], int(positions[0])
    head_run = heads == list(range(h0, h0 + len(heads)))
    row_run = len(positions) == int(positions[-1]) - p0 + 1 and bool((np.diff(positions) == 1).all())
    chosen = q[h0 : h0 + len(heads)] if head_run else q[torch.tensor(heads)]
    chosen = chosen[:, p0 : p0 + len(positions)] if row_run else chosen[:, torch.from_numpy(positions)]
    return chosen.contiguous()


def _hide(scores: torch.Tensor, structure: MaskStructure, positions: np.ndarray, start: int, stop: int) -> None:
    """Set to -inf, in place, the scores (heads, rows, stop - start) of keys the mask hides from ``positions``.

    Only the columns a row could lose are compared: right of the first row for causal, left of the last
    row's window for a sliding window; padding hides whole columns."""
    rows = torch.from_numpy(positions)[:, None]
    if structure.causal:
        low = max(start, int(positions.min()) + 1)
        if low < stop:
            cols = torch.arange(low, stop)[None, :]
            scores[..., low - start :].masked_fill_(cols > rows, -torch.inf)
        if structure.window is not None:
            high = min(stop, int(positions.max()) - structure.window + 1)
            if high > start:
                cols = torch.arange(start, high)[None, :]
                scores[..., : high - start].masked_fill_(rows - cols >= structure.window, -torch.inf)
    if structure.key_valid is not None:
        hidden = torch.from_numpy(~structure.key_valid[start:stop])
        if bool(hidden.any()):
            scores.masked_fill_(hidden, -torch.inf)
