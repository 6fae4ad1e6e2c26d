"""What the model view shows at long context: every head pooled over blocks, at one or two block sizes.

`overview_stack` pools every kept head of one attention stack (`analysis.long.pooled_overview`) at the
overview's block ``b0`` (the smallest that makes a head at most ``cells`` × ``cells``) and one finer block
``b1`` (``b0`` divided by its smallest prime factor: 64 → 32); both come from one pass over the weights (the
finer grid is computed, the overview derived from it with `analysis.pooled_region.coarser`). The finer level
answers zooms in Python at once and is what the standalone HTML carries for zooming offline.

On the wire (`OverviewLevel.wire`) a level is two uint8 planes ``(layers, heads, cells down, cells across)``
row-major: ``max`` is each cell's largest weight as ``round(w · 255)`` (decoded ``byte / 255``, within 1/510),
``mean`` each cell's mean scaled per head to its largest mean cell, ``round(mean / scale · 255)`` with
``mean_scale`` per (layer, head) in the level's description (decoded ``byte / 255 · scale``, within
scale/510 ≤ 1/510): a head's means are small (about 1/keys), so an unscaled byte would be 0 almost everywhere.
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..analysis.long import pooled_overview
from ..analysis.pooled_region import coarser
from ..quantise import quantise

PLANES = ("max", "mean")
"""The pooled planes of a cell: its largest weight, its mean weight."""


@dataclass
class OverviewLevel:
    """Every kept head pooled over ``block`` × ``block`` cells: ``maximum`` and ``mean`` float32
    ``(layers, heads, cells down, cells across)`` (exact: pooled from float32 weights)."""

    block: int
    maximum: np.ndarray
    mean: np.ndarray

    @property
    def cells(self) -> tuple[int, int]:
        return int(self.maximum.shape[2]), int(self.maximum.shape[3])

    def mean_scale(self) -> np.ndarray:
        """Each head's largest mean cell: (layers, heads) float64; the mean plane's bytes are relative to it."""
        return self.mean.max(axis=(2, 3)).astype(np.float64)

    def planes(self) -> dict[str, np.ndarray]:
        """The uint8 planes as sent (see the module's docstring), (layers, heads, cells down, cells across)."""
        scale = self.mean_scale()
        safe = np.where(scale > 0, scale, 1.0)[:, :, None, None]
        return {"max": quantise(self.maximum), "mean": quantise(self.mean / safe)}

    def wire(self, planes: tuple[str, ...] = PLANES, *, base64_text: bool = False) -> dict[str, Any]:
        """The level as the view's module reads it: block, cells, mean scales and the named planes' bytes
        (None for a plane left out), as bytes (the widget) or base64 text (a page)."""
        quantised = self.planes()
        data: dict[str, Any] = {
            "block": self.block,
            "rows": self.cells[0],
            "cols": self.cells[1],
            "mean_scale": [float(x) for x in self.mean_scale().ravel()],
        }
        for name in PLANES:
            raw = quantised[name].tobytes() if name in planes else None
            data[name] = base64.b64encode(raw).decode("ascii") if base64_text and raw is not None else raw
        return data

    def nbytes(self, planes: tuple[str, ...] = PLANES) -> int:
        """Bytes of the named uint8 planes."""
        return int(self.maximum.size) * len(planes)


@dataclass
class OverviewStack:
    """One stack's attention for the overview: ``attentions`` (a `LazyAttention` or a dense array,
    (layers, heads, query, key)) for zooms, the kept ``layers`` and ``heads`` (the model's numbers), and
    ``levels``, coarsest first: the overview, then the finer level (absent when the overview's block is 1).
    ``description`` says how the overview's cells are pooled (`Overview.describe`)."""

    role: str
    attentions: Any
    query_tokens: str
    key_tokens: str
    causal: bool
    layers: list[int]
    heads: list[int]
    levels: list[OverviewLevel]
    description: str

    @property
    def shape(self) -> tuple[int, int, int, int]:
        layers, heads, queries, keys = self.attentions.shape
        return int(layers), int(heads), int(queries), int(keys)

    def header(self) -> dict[str, Any]:
        _, _, queries, keys = self.shape
        return {
            "role": self.role,
            "layers": len(self.layers),
            "heads": len(self.heads),
            "query": queries,
            "key": keys,
            "layer_labels": self.layers,
            "head_labels": self.heads,
            "query_tokens": self.query_tokens,
            "key_tokens": self.key_tokens,
            "causal": self.causal,
            "block": self.levels[0].block,
            "describe": self.description,
        }


def overview_block(queries: int, keys: int, cells: int) -> int:
    """The smallest block that makes a ``queries`` × ``keys`` head at most ``cells`` × ``cells``."""
    return max(1, -(-max(queries, keys) // cells))


def finer_block(block: int) -> int | None:
    """``block`` divided by its smallest prime factor (64 → 32, 9 → 3, 7 → 1), or None for a block of 1."""
    if block <= 1:
        return None
    factor = next((f for f in range(2, int(block**0.5) + 1) if block % f == 0), block)
    return block // factor


def overview_stack(
    role: str,
    attentions: Any,
    *,
    cells: int,
    layers: list[int],
    heads: list[int],
    query_tokens: str,
    key_tokens: str,
    causal: bool,
) -> OverviewStack:
    """Pool every kept head of one stack (layers and heads: the model's numbers, checked by the caller) at
    the overview's block and one finer block, in one pass over the weights (see the module's docstring)."""
    _, _, queries, keys = attentions.shape
    block = overview_block(int(queries), int(keys), cells)
    finer = finer_block(block)
    pooled = pooled_overview(attentions, finer or block, layers=layers, heads=heads)
    levels = [OverviewLevel(pooled.block, pooled.maximum, pooled.mean)]
    if finer is not None:
        maximum, mean = coarser(pooled.maximum, pooled.mean, pooled.block, block // finer, int(queries), int(keys))
        levels.insert(0, OverviewLevel(block, maximum, mean))
    description = dataclasses.replace(pooled, block=block, maximum=levels[0].maximum, mean=levels[0].mean).describe()
    return OverviewStack(
        role, attentions, query_tokens, key_tokens, causal, list(layers), list(heads), levels, description
    )
