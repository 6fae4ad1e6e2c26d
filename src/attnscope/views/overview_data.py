"""What the model view shows at long context: every head pooled over blocks, at one or two block sizes.

`overview_stack` pools every kept head of one attention stack (`analysis.long.pooled_overview`) at the
overview's block (the smallest that makes a head at most ``cells`` × ``cells``). `OverviewStack.finer` pools
it once more, at a finer block (the overview's divided by its smallest prime factor: 64 → 32), when first
asked: another pass over every weight, which the standalone HTML pays to carry a level for zooming offline
(and which then answers zooms in Python at once too).

On the wire (`OverviewLevel.wire`) a level is two uint8 planes ``(layers, heads, cells down, cells across)``
row-major: ``max`` is each cell's largest weight as ``round(w · 255)`` (decoded ``byte / 255``, within 1/510),
``mean`` each cell's mean scaled per head to its largest mean cell, ``round(mean / scale · 255)`` with
``mean_scale`` per (layer, head) in the level's description (decoded ``byte / 255 · scale``, within
scale/510 ≤ 1/510): a head's means are small (about 1/keys), so an unscaled byte would be 0 almost everywhere.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..analysis.long import pooled_overview
from ..quantise import quantise
from .compression import deflate

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

    def wire(
        self, planes: tuple[str, ...] = PLANES, *, base64_text: bool = False, deflated: bool = False
    ) -> dict[str, Any]:
        """The level as the view's module reads it: block, cells, mean scales and the named planes' bytes
        (None for a plane left out), as bytes (the widget) or base64 text (a page); ``deflated``: each plane
        raw DEFLATE (views/compression.py), as a page whose header names the compression carries them."""
        quantised = self.planes()
        data: dict[str, Any] = {
            "block": self.block,
            "rows": self.cells[0],
            "cols": self.cells[1],
            "mean_scale": [float(x) for x in self.mean_scale().ravel()],
        }
        for name in PLANES:
            raw = quantised[name].tobytes() if name in planes else None
            if deflated and raw is not None:
                raw = deflate(raw)
            data[name] = base64.b64encode(raw).decode("ascii") if base64_text and raw is not None else raw
        return data

    def nbytes(self, planes: tuple[str, ...] = PLANES) -> int:
        """Bytes of the named uint8 planes."""
        return int(self.maximum.size) * len(planes)


@dataclass
class OverviewStack:
    """One stack's attention for the overview: ``attentions`` (a `LazyAttention` or a dense array,
    (layers, heads, query, key)) for zooms, the kept ``layers`` and ``heads`` (the model's numbers), and
    ``levels``, coarsest first: the overview, then the finer level once `finer` computed it.
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

    def finer_block(self) -> int | None:
        """The finer level's block (None when the overview's is 1: it shows single tokens already)."""
        return finer_block(self.levels[0].block)

    def finer_nbytes(self, planes: tuple[str, ...] = PLANES) -> int:
        """Bytes of the named uint8 planes of the finer level (0 without one), before computing it."""
        block = self.finer_block()
        if block is None:
            return 0
        _, _, queries, keys = self.shape
        return len(self.layers) * len(self.heads) * -(-queries // block) * -(-keys // block) * len(planes)

    def finer(self) -> OverviewLevel | None:
        """The finer level, pooled from the exact weights on first use (one pass over every kept head)."""
        block = self.finer_block()
        if block is None:
            return None
        if len(self.levels) == 1:
            pooled = pooled_overview(self.attentions, block, layers=self.layers, heads=self.heads)
            self.levels.append(OverviewLevel(pooled.block, pooled.maximum, pooled.mean))
        return self.levels[1]

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
    the overview's block: at most ``cells`` × ``cells`` per head."""
    pooled = pooled_overview(attentions, cells=cells, layers=layers, heads=heads)
    level = OverviewLevel(pooled.block, pooled.maximum, pooled.mean)
    return OverviewStack(
        role, attentions, query_tokens, key_tokens, causal, list(layers), list(heads), [level], pooled.describe()
    )
