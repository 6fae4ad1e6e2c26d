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
    indices, checked by the caller. Memory: one band of whole cells' rows on the region's keys, about
    ``band_bytes`` of float32 (at least one cell high), plus the result.
    """
    _, _, queries, keys = attentions.shape
    rows, cols = snap(rows.start, rows.stop, block, queries), snap(cols.start, cols.stop, block, keys)
    heights, widths = cell_sizes(rows, block), cell_sizes(cols, block)
    maximum = np.zeros((len(heights), len(widths)), dtype=np.float32)
    sums = np.zeros((len(heights), len(widths)), dtype=np.float64)
    band_cells = max(1, band_bytes // (block * len(cols) * 4))
    padded_cols = len(widths) * block
    for first in range(0, len(heights), band_cells):
        last = min(len(heights), first + band_cells)
        band = range(rows.start + first * block, min(rows.stop, rows.start + last * block))
        weights = np.zeros(((last - first) * block, padded_cols), dtype=np.float32)  # zero padding: never a max
        weights[: len(band), : len(cols)] = exact_weights(attentions, layer, head, band, cols)
        cells = weights.reshape(last - first, block, len(widths), block)
        maximum[first:last] = cells.max(axis=(1, 3))
        sums[first:last] = cells.sum(axis=(1, 3), dtype=np.float64)
    mean = (sums / np.outer(heights, widths)).astype(np.float32)
    return PooledRegion(rows, cols, block, maximum, mean)
