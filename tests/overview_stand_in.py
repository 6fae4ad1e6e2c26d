"""A loop-based stand-in for ``attnscope.analysis.long.pooled_overview`` (engineer reduce's), used only until that
module is merged: `install` registers it as ``attnscope.analysis.long`` when the real one is missing. It follows
the shared contract (max and mean per block × block cell, mean over the cell's real positions), one head's
rows at a time through the public LazyAttention API."""

from __future__ import annotations

import importlib
import sys
import types
from dataclasses import dataclass

import numpy as np


@dataclass
class Overview:
    shape: tuple[int, int, int, int]
    layers: list[int]
    heads: list[int]
    block: int
    maximum: np.ndarray
    mean: np.ndarray

    def describe(self) -> str:
        return f"each cell: max and mean of a {self.block} x {self.block}-token block"


def pooled_overview(attentions, block=None, *, cells=128, layers=None, heads=None) -> Overview:
    n_layers, n_heads, queries, keys = attentions.shape
    layers = list(range(n_layers)) if layers is None else list(layers)
    heads = list(range(n_heads)) if heads is None else list(heads)
    block = block or max(1, -(-max(queries, keys) // cells))
    down, across = -(-queries // block), -(-keys // block)
    maximum = np.zeros((len(layers), len(heads), down, across), dtype=np.float32)
    mean = np.zeros_like(maximum)
    for i, layer in enumerate(layers):
        for j, head in enumerate(heads):
            weights = np.asarray(attentions[layer, head], dtype=np.float32)
            for r in range(down):
                for c in range(across):
                    cell = weights[r * block : (r + 1) * block, c * block : (c + 1) * block]
                    maximum[i, j, r, c] = cell.max()
                    mean[i, j, r, c] = cell.sum(dtype=np.float64) / cell.size
    return Overview((n_layers, n_heads, queries, keys), layers, heads, block, maximum, mean)


def install() -> None:
    """Register the stand-in as ``attnscope.analysis.long`` unless the real module exists."""
    try:
        importlib.import_module("attnscope.analysis.long")
    except ModuleNotFoundError:
        module = types.ModuleType("attnscope.analysis.long")
        module.Overview = Overview  # type: ignore[attr-defined]
        module.pooled_overview = pooled_overview  # type: ignore[attr-defined]
        sys.modules["attnscope.analysis.long"] = module
