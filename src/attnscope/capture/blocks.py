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

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from ..worker_threads import on_worker_threads
from .mask_structure import MaskStructure
from .position_bias import PositionBias

SCRATCH_PER_WEIGHT = 4 * 4  # float32 scores and weights, one float32 temporary of a reduction, bool masks
BIAS_SCRATCH_PER_WEIGHT = 4  # a position bias's slice, one head at a time (counted per weight: a group may be 1 head)
_HIDDEN = torch.finfo(torch.float32).min  # a hidden key's score: exp() gives exactly 0 as -inf does, and 0 · it is 0
_TINY = torch.finfo(torch.float32).tiny


@dataclass
class LazyLayer:
    """What one layer of one input needs to compute its weights.

    ``queries`` (heads, query, head_dim) and ``keys`` (kv_heads, key, head_dim), float32, after rotary
    embeddings; ``scale`` multiplies q·k; ``softcap``: scores become ``tanh(s / cap) · cap``; ``sinks``:
    (heads,) logits of an extra softmax column that is then dropped; ``structure``: the mask; ``bias``: a
    position bias added to the scores (after scale and softcap), kept per head in O(tokens). Or ``dense``
    (heads, query, key): the weights themselves, for a layer whose terms are not kept (``eager_reason``
    says why; it also names layers that ran eager attention but keep their terms).
    """

    queries: np.ndarray | None = None
    keys: np.ndarray | None = None
    scale: float = 1.0
    softcap: float | None = None
    sinks: np.ndarray | None = None
    structure: MaskStructure | None = None
    dense: np.ndarray | None = None
    eager_reason: str | None = None
    bias: PositionBias | None = None

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays this layer holds (shared arrays counted for each layer that holds them)."""
        held = (self.queries, self.keys, self.sinks, self.dense)
        mask = None if self.structure is None else self.structure.key_valid
        return sum(int(a.nbytes) for a in (*held, mask) if a is not None) + (self.bias.nbytes if self.bias else 0)


class LayeredAttention(Protocol):
    """What `weight_blocks` reads of a stack (a `lazy.LazyAttention`): its layers' terms, its shape
    (layers, heads, query, key), the key head each query head reads and the scratch budget of a block."""

    layers: list[LazyLayer]
    shape: tuple[int, int, int, int]
    kv_head_of: np.ndarray
    block_bytes: int


@dataclass
class WeightBlock:
    """Weights of some query heads of one layer on a chunk of query rows, over the keys those rows can see.

    ``slots``: where each head sits in the list of heads asked for (``heads[i]`` is the model's number of
    ``slots[i]``); ``first`` and ``positions``: the chunk is entries ``first:first + len(positions)`` of the
    rows asked for, at query positions ``positions``; ``key_start:key_stop``: the key positions the block
    spans (every weight outside it is exactly 0). ``weights``: (len(heads), len(positions), key_stop -
    key_start) float32 torch tensor, each row normalised over all its keys (less than 1 with attention sinks);
    it may share memory with a dense stack's array, so read it, do not change it in place.
    """

    heads: list[int]
    slots: list[int]
    first: int
    positions: np.ndarray
    key_start: int
    key_stop: int
    weights: torch.Tensor
    _logits: torch.Tensor | None = field(default=None, repr=False)
    _empty: torch.Tensor | None = field(default=None, repr=False)
    _keys: int = field(default=0, repr=False)

    def log_weights(self) -> torch.Tensor:
        """The natural log of ``weights``, same shape, float32: ``log_softmax`` of the block's scores (no log of
        each weight); finite where a weight is 0, so ``weights · log_weights`` is 0 there."""
        if self._logits is None:  # weights held dense
            return torch.log(self.weights.clamp_min(_TINY))
        logs = torch.log_softmax(self._logits, dim=-1)
        if logs.shape[-1] > self.weights.shape[-1]:  # the sink column
            logs = logs[..., :-1]
        if self._empty is not None:
            logs[:, self._empty] = float(np.log(np.float32(1.0 / self._keys)))
        return logs


def weight_blocks(
    attentions: LayeredAttention,
    layer: int,
    heads: list[int],
    rows: np.ndarray,
    *,
    key_align: int = 1,
    block_bytes: int | None = None,
) -> Iterator[WeightBlock]:
    """The weights of ``heads`` (model head numbers) on query positions ``rows`` of ``layer``, block by block,
    in this thread.

    Row chunks come in order; within a chunk, one block per key/value head's group of the heads asked for.
    ``key_align``: each span starts at a multiple of it and ends at one (or at the last key), for pooling.
    ``block_bytes`` (default: the attentions'): the scratch budget that sets a chunk's height. Arguments are
    trusted (checked by the caller).
    """
    plan = _Plan(attentions, layer, heads, rows, key_align, block_bytes or attentions.block_bytes)
    for first, positions in plan.chunks():
        yield from plan.blocks(first, positions)


def for_each_chunk(
    attentions: LayeredAttention,
    layer: int,
    heads: list[int],
    rows: np.ndarray,
    consume: Callable[[list[WeightBlock]], None],
    *,
    key_align: int = 1,
) -> None:
    """Compute the blocks of `weight_blocks` and hand each chunk's (every head group of it) to ``consume``, on
    as many worker threads as torch has intra-op threads, each computing its chunks on one thread
    (`worker_threads.on_worker_threads` says why). ``consume`` is called from
    several threads at once for different chunks; the chunks' scratch together stays within
    ``attentions.block_bytes``. Chunk heights are multiples of ``key_align`` when they can be, so pooled rows
    belong to one chunk. Torch's thread count is restored afterwards.
    """
    workers = max(1, torch.get_num_threads())
    plan = _Plan(attentions, layer, heads, rows, key_align, attentions.block_bytes // workers)

    def work(chunk: tuple[int, np.ndarray]) -> None:
        with torch.inference_mode():
            consume(plan.blocks(*chunk))

    on_worker_threads(work, plan.chunks(), "attnscope-blocks")


class _Plan:
    """How one layer is cut into blocks: the chunks of rows, the head groups, each key head's keys."""

    def __init__(
        self, attentions: LayeredAttention, layer: int, heads: list[int], rows: np.ndarray, key_align: int, budget: int
    ):
        self.part = attentions.layers[layer]
        self.keys = attentions.shape[3]
        self.heads, self.rows, self.key_align = heads, rows, key_align
        dense = self.part.dense is not None
        self.groups = _groups(heads, None if dense else attentions.kv_head_of)
        widest = max(len(slots) for slots in self.groups)
        per_weight = SCRATCH_PER_WEIGHT + (BIAS_SCRATCH_PER_WEIGHT if self.part.bias is not None else 0)
        height = max(1, budget // (widest * self.keys * per_weight))
        self.height = height // key_align * key_align if height >= key_align else height
        self.key_heads: dict[int, torch.Tensor] = {}  # each key head's keys, made contiguous once
        if not dense:
            assert self.part.keys is not None
            for slots in self.groups:
                kv = int(attentions.kv_head_of[heads[slots[0]]])
                self.key_heads[kv] = torch.from_numpy(np.ascontiguousarray(self.part.keys[kv]))
        self.kv_head_of = attentions.kv_head_of

    def chunks(self) -> list[tuple[int, np.ndarray]]:
        """Each chunk as (its first entry in ``rows``, its query positions)."""
        return [(first, self.rows[first : first + self.height]) for first in range(0, len(self.rows), self.height)]

    def blocks(self, first: int, positions: np.ndarray) -> list[WeightBlock]:
        """The chunk's blocks: one per head group (one for dense weights)."""
        part = self.part
        if part.dense is not None:
            return [_dense_block(part.dense, self.heads, positions, first)]
        assert part.structure is not None
        start, stop = _span(part.structure, positions, self.keys, self.key_align, part.sinks is not None)
        found = []
        for slots in self.groups:
            chosen = [self.heads[s] for s in slots]
            key_head = self.key_heads[int(self.kv_head_of[chosen[0]])]
            logits, weights, empty = _softmax_block(part, key_head, chosen, positions, start, stop, self.keys)
            found.append(WeightBlock(chosen, slots, first, positions, start, stop, weights, logits, empty, self.keys))
        return found


def _groups(heads: list[int], kv_head_of: np.ndarray | None) -> list[list[int]]:
    """Slots of ``heads`` grouped by the key/value head they read (one group for dense weights)."""
    if kv_head_of is None:
        return [list(range(len(heads)))]
    groups: dict[int, list[int]] = {}
    for slot, head in enumerate(heads):
        groups.setdefault(int(kv_head_of[head]), []).append(slot)
    return list(groups.values())


def _dense_block(dense: np.ndarray, heads: list[int], positions: np.ndarray, first: int) -> WeightBlock:
    """Heads ``heads`` of a dense layer (heads, query, key) at ``positions``, over every key (only what is asked is
    copied)."""
    every_head = heads == list(range(dense.shape[0]))
    if _is_run(positions):
        chosen = dense[:, int(positions[0]) : int(positions[-1]) + 1]  # a view
        chosen = chosen if every_head else chosen[heads]
    else:
        chosen = dense[np.ix_(np.asarray(heads), positions)]
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
    key_head: torch.Tensor,
    heads: list[int],
    positions: np.ndarray,
    start: int,
    stop: int,
    keys: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """softmax(scale · q·kᵀ, softcap, position bias, mask) of ``heads`` (sharing one key head) on ``positions``
    over keys ``start:stop``: (len(heads), len(positions), stop - start) float32, the operations of
    `LazyAttention._weights` in its order, all heads in one matmul (``key_head``: (key, head_dim) the keys
    they share). A scale that is a power of two (1/8 for head_dim 64) multiplies the queries instead of the
    scores: the same numbers bit for bit, one pass over the block fewer. Returns the logits the softmax
    took (with the sink column, if any), the weights, and which rows see no key (None if none)."""
    assert part.queries is not None and part.structure is not None
    q = _queries(part.queries, heads, positions)  # (heads, rows, head_dim), a copy
    count, rows = len(heads), len(positions)
    exact = math.frexp(part.scale)[0] == 0.5
    with torch.inference_mode():
        if exact:
            q.mul_(part.scale)
        scores = torch.matmul(q.reshape(count * rows, -1), key_head[start:stop].T).view(count, rows, stop - start)
        if not exact:
            scores.mul_(part.scale)
        if part.softcap:
            scores.div_(part.softcap).tanh_().mul_(part.softcap)
        if part.bias is not None:
            part.bias.add_to(scores, heads, positions, start, stop)
        _hide(scores, part.structure, positions, start, stop)
        if part.sinks is not None:
            sink = torch.from_numpy(np.asarray(part.sinks, dtype=np.float32)[heads]).view(count, 1, 1)
            joined = torch.cat([scores, sink.expand(count, rows, 1)], dim=-1)
            return joined, torch.softmax(joined, dim=-1)[..., :-1].contiguous(), None
        weights = torch.softmax(scores, dim=-1)
        empty = None
        if part.structure.key_valid is not None:
            empty = torch.from_numpy(_visible(part.structure, positions, keys) == 0)
            if bool(empty.any()):  # eager's additive mask makes a row that sees no key uniform
                weights[:, empty] = 1.0 / keys
            else:
                empty = None
        return scores, weights, empty


def _queries(queries: np.ndarray, heads: list[int], positions: np.ndarray) -> torch.Tensor:
    """Queries of ``heads`` at ``positions``: (heads, rows, head_dim), a contiguous copy."""
    q = torch.from_numpy(queries)
    h0, p0 = heads[0], int(positions[0])
    if _is_run(positions):
        q = q[:, p0 : p0 + len(positions)]  # a view: only the chosen rows are copied below
    else:
        q = q[:, torch.from_numpy(positions)]
    chosen = q[h0 : h0 + len(heads)] if heads == list(range(h0, h0 + len(heads))) else q[torch.tensor(heads)]
    return chosen.clone(memory_format=torch.contiguous_format)


def _is_run(positions: np.ndarray) -> bool:
    """Whether ``positions`` are consecutive and increasing (a slice can take them)."""
    return len(positions) == int(positions[-1]) - int(positions[0]) + 1 and bool((np.diff(positions) == 1).all())


def _hide(scores: torch.Tensor, structure: MaskStructure, positions: np.ndarray, start: int, stop: int) -> None:
    """Set the scores (heads, rows, stop - start) of keys the mask hides from ``positions`` to the lowest
    float32, in place (softmax gives them exactly 0, as -inf does, and log-softmax a finite number).

    Only the columns a row could lose are compared: right of the first row for causal, left of the last
    row's window for a sliding window; padding hides whole columns."""
    rows = torch.from_numpy(positions)[:, None]
    if structure.causal:
        low = max(start, int(positions.min()) + 1)
        if low < stop:
            cols = torch.arange(low, stop)[None, :]
            scores[..., low - start :].masked_fill_(cols > rows, _HIDDEN)
        if structure.window is not None:
            high = min(stop, int(positions.max()) - structure.window + 1)
            if high > start:
                cols = torch.arange(start, high)[None, :]
                scores[..., : high - start].masked_fill_(rows - cols >= structure.window, _HIDDEN)
    if structure.key_valid is not None:
        hidden = torch.from_numpy(~structure.key_valid[start:stop])
        if bool(hidden.any()):
            scores.masked_fill_(hidden, _HIDDEN)
