"""One head's attention pooled over block × block cells in a region, exactly.

The model view at long context (views/overview.py) shows every head pooled (`analysis.long.pooled_overview`)
and zooms into a region of one head: `pool_region` computes that region's cells from the exact float32
weights, a band of query rows at a time (a `LazyAttention` computes each row over all its keys, so a weight
is its row's, never a renormalised piece).

Cells sit on the global grid of their block: cell ``(i, j)`` of block ``b`` covers query positions
``i·b … min((i+1)·b, queries) − 1`` and key positions ``j·b … min((j+1)·b, keys) − 1``; a region is widened
outward to whole cells (`snap`). A cell's maximum is its largest weight; its mean is the sum of its weights
over its real positions (the last row and column of cells may be cut short by the matrix's edge), masked
keys counting as 0, the rule of `pooled_overview`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..capture.lazy import LazyAttention

BAND_BYTES = 64 * 2**20
"""Scratch memory for one band of query rows' weights on the region's keys, which sets how many rows at once."""


@dataclass
class PooledRegion:
    """Cells of one head over a region: ``rows`` and ``cols`` are the query and key positions covered (whole
    cells of ``block``); ``maximum`` and ``mean`` are float32 ``(cells down, cells across)``."""

    rows: range
    cols: range
    block: int
    maximum: np.ndarray
    mean: np.ndarray


def snap(start: int, stop: int, block: int, size: int) -> range:
    """Positions ``start:stop`` widened outward to whole cells of ``block`` on a side of ``size`` positions."""
    return range((start // block) * block, min(size, -(-stop // block) * block))


def cell_sizes(positions: range, block: int) -> np.ndarray:
    """How many real positions each cell of ``block`` along ``positions`` (cell-aligned) holds: (cells,) int64."""
    starts = np.arange(positions.start, positions.stop, block, dtype=np.int64)
    return np.minimum(starts + block, positions.stop) - starts


def exact_weights(attentions: Any, layer: int, head: int, rows: range, cols: range) -> np.ndarray:
    """The exact float32 weights of query positions ``rows`` on key positions ``cols``: (rows, cols)."""
    if isinstance(attentions, LazyAttention):
        return attentions.tile(layer, head, rows, cols)
    return np.asarray(attentions[layer][head][rows.start : rows.stop, cols.start : cols.stop], dtype=np.float32)


def pool_region(
    attentions: Any, layer: int, head: int, rows: range, cols: range, block: int, *, band_bytes: int = BAND_BYTES
) -> PooledRegion:
    """Head ``head`` of ``layer`` pooled over ``block`` × ``block`` cells on query positions ``rows`` and key
    positions ``cols`` (each widened to whole cells, `snap`), from the exact weights.

    ``attentions`` is a `LazyAttention` or a dense ``(layers, heads, query, key)`` array; layer and head are its
    indices, checked by the caller. A `LazyAttention` computes the rows chunk by chunk over only the keys they
    see (`LazyAttention.blocks`); a dense array is read a band of whole cells' rows at a time (about
    ``band_bytes`` of float32). Memory beyond that: the result, and one chunk's cells.
    """
    _, _, queries, keys = attentions.shape
    rows, cols = snap(rows.start, rows.stop, block, queries), snap(cols.start, cols.stop, block, keys)
    heights, widths = cell_sizes(rows, block), cell_sizes(cols, block)
    maximum = np.zeros((len(heights), len(widths)), dtype=np.float32)
    sums = np.zeros((len(heights), len(widths)), dtype=np.float64)
    if isinstance(attentions, LazyAttention):
        for chunk in attentions.blocks(layer, [head], rows):
            lo, hi = max(chunk.key_start, cols.start), min(chunk.key_stop, cols.stop)
            if hi > lo:  # keys outside a chunk's span weigh exactly 0: nothing to add
                part = chunk.weights[0][:, lo - chunk.key_start : hi - chunk.key_start]
                _add(maximum, sums, part, int(chunk.positions[0]) - rows.start, lo - cols.start, block)
    else:
        band = max(1, band_bytes // (block * len(cols) * 4)) * block
        for start in range(rows.start, rows.stop, band):
            stop = min(rows.stop, start + band)
            part = torch.from_numpy(exact_weights(attentions, layer, head, range(start, stop), cols))
            _add(maximum, sums, part, start - rows.start, 0, block)
    mean = (sums / np.outer(heights, widths)).astype(np.float32)
    return PooledRegion(rows, cols, block, maximum, mean)


def _add(maximum: np.ndarray, sums: np.ndarray, part: torch.Tensor, row: int, col: int, block: int) -> None:
    """Pool ``part`` (weights whose first row and column sit ``row`` and ``col`` positions into the region) into
    the region's cell ``maximum`` and ``sums``, padding it with zeros to whole cells."""
    top, left = row % block, col % block
    height, width = top + part.shape[0], left + part.shape[1]
    padded = torch.nn.functional.pad(part, (left, (-width) % block, top, (-height) % block))
    down, across = padded.shape[0] // block, padded.shape[1] // block
    cells = padded.reshape(down, block, across, block)
    where = np.s_[row // block : row // block + down, col // block : col // block + across]
    np.maximum(maximum[where], cells.amax(dim=3).amax(dim=1).numpy(), out=maximum[where])
    sums[where] += cells.sum(dim=3).sum(dim=1, dtype=torch.float64).numpy()  # a cell's row in float32, then float64
