"""What each reduction of `analysis.long` does with one block of weights (`capture.blocks.WeightBlock`).

`TopK` keeps each row's strongest keys, `Pool` the max and sum of each ``block × block`` cell, `Entropy` each
row's entropy. Each ``feed`` writes only its block's rows of its results, or takes a lock, so chunks may be
fed from several threads at once. Shapes: a block's weights are (heads, rows, keys of its span), float32.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from ..capture.blocks import WeightBlock

CHUNK = 128  # keys per chunk in `TopK`'s first stage


class TopK:
    """Each row's ``k`` largest weights, strongest first, ties to the lower key (see `TopKeys`).

    Long rows go in two stages: the ``k`` chunks of `CHUNK` keys with the largest maxima hold every one of
    the row's ``k`` largest weights (each of those lies in a chunk whose maximum is at least as large), so
    only their keys are ranked. A tie at either stage's edge sends the row to a full ranking."""

    def __init__(self, heads: int, rows: int, k: int):
        self.k = k
        self.indices = np.full((heads, rows, k), -1, dtype=np.int32)
        self.weights = np.zeros((heads, rows, k), dtype=np.float32)

    def feed(self, block: WeightBlock) -> None:
        weights = block.weights
        k = min(self.k, weights.shape[-1])
        if weights.shape[-1] // CHUNK >= 2 * (k + 1):
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


def chunk_align(k: int, keys: int) -> int:
    """Where block spans should start and end for `TopK`: at whole chunks when rows are long enough to be
    ranked in chunks (the extra keys are hidden ones, weight 0), else anywhere."""
    return CHUNK if keys // CHUNK >= 2 * (k + 1) else 1


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
    whole = span // CHUNK * CHUNK
    chunks = weights[..., :whole].view(heads, rows, -1, CHUNK)
    chunk_max, chunk = torch.topk(chunks.amax(dim=-1), k + 1, dim=-1)
    kept = torch.sort(chunk[..., :k], dim=-1).values  # candidates in key order, so ties go to the lower key
    if whole == span:  # the chunks are rows of one contiguous (heads · rows · chunks, CHUNK) matrix
        first = (torch.arange(heads * rows) * chunks.shape[2]).view(heads, rows, 1)
        candidates = chunks.reshape(-1, CHUNK).index_select(0, (kept + first).flatten()).view(heads, rows, -1)
    else:
        candidates = torch.gather(chunks, 2, kept[..., None].expand(heads, rows, k, CHUNK)).view(heads, rows, -1)
    if whole < span:
        candidates = torch.cat([candidates, weights[..., whole:]], dim=-1)
    values, picked = _top(candidates, k)
    inside = k * CHUNK  # candidates past this are the keys after the last whole chunk
    start = np.take_along_axis(kept.numpy(), np.minimum(picked // CHUNK, k - 1), axis=-1) * CHUNK
    index = np.where(picked < inside, start + picked % CHUNK, whole + picked - inside)
    left_tied = ((chunk_max[..., k] == chunk_max[..., k - 1]) & (chunk_max[..., k - 1] > 0)).numpy()
    for where in map(tuple, np.argwhere(left_tied)):
        values[where], index[where] = (part[0] for part in _top(weights[where][None], k))
    return values, index


class Pool:
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


class Entropy:
    """Each row's ``-Σ w·ln w``: float32 terms (``ln w`` from log-softmax, not a log per weight), summed in
    float32 over runs of `CHUNK` keys and in float64 across runs. Float32 weights carry a relative error of
    about 6e-8 each, which moves the entropy by up to about ``6e-8 · (H + 1)`` nats."""

    def __init__(self, heads: int, rows: int):
        self.values = np.zeros((heads, rows), dtype=np.float64)

    def feed(self, block: WeightBlock) -> None:
        terms = block.log_weights().mul_(block.weights)
        heads, rows, span = terms.shape
        whole = span // CHUNK * CHUNK
        total = terms[..., :whole].view(heads, rows, -1, CHUNK).sum(dim=-1).sum(dim=-1, dtype=torch.float64)
        if whole < span:
            total += terms[..., whole:].sum(dim=-1, dtype=torch.float64)
        stop = block.first + len(block.positions)
        self.values[block.slots, block.first : stop] = -total.numpy()
