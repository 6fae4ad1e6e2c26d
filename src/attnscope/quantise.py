"""Attention weights in [0, 1] as small integers: the one quantiser of the views' payload, the API's
responses and the index's attention store.

A weight ``w`` is stored as ``round(w * levels)`` with ``levels = 2**bits - 1`` and read back as
``code / levels``, so a read weight is within ``0.5 / levels`` of the model's: 1/510 at 8 bits (the views
and the API, `SCALE` 255), 1/254 at 7 bits (the index's default). Below the views, the server and the
index, so each of them imports it from here.
"""

from __future__ import annotations

import numpy as np

SCALE = 255
"""The views' and the API's scale (8 bits): a weight ``w`` in [0, 1] is the byte ``round(w * 255)``."""
MAX_ERROR = 1 / (2 * SCALE)
"""Largest absolute difference between a weight and its decoded byte at 8 bits (1/510)."""


def levels(bits: int) -> int:
    """The largest code of ``bits`` bits: weight 1 is stored as this (255 at 8 bits, 127 at 7)."""
    return 2**bits - 1


def error_bound(bits: int) -> float:
    """Largest difference between a weight stored with ``bits`` bits and the model's."""
    return 0.5 / levels(bits)


def quantise(weights: np.ndarray, bits: int = 8) -> np.ndarray:
    """Weights in [0, 1] (values outside are clipped) as uint8 ``round(w * (2**bits - 1))``, same shape.

    Computed in float64 one leading slice at a time, so memory stays near the uint8 result's size.
    """
    top = levels(bits)
    weights = np.asarray(weights)
    out = np.empty(weights.shape, dtype=np.uint8)
    for index in np.ndindex(weights.shape[:1] if weights.ndim > 2 else ()):
        part = np.clip(np.asarray(weights[index], dtype=np.float64), 0.0, 1.0)
        np.multiply(part, top, out=part)
        out[index] = np.rint(part, out=part)
    return out


def dequantise(codes: np.ndarray, bits: int = 8, dtype: type = np.float32) -> np.ndarray:
    """Stored codes back as weights: ``code / (2**bits - 1)`` in ``dtype``."""
    return np.asarray(codes).astype(dtype) / dtype(levels(bits))
