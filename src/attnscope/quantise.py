"""Attention weights in [0, 1] as small integers: the one quantiser of the views' payload, the API's
responses and the index's attention store.

A weight ``w`` is stored as ``round(w * levels)`` with ``levels = 2**bits - 1`` and read back as
``code / levels``, so a read weight is within ``0.5 / levels`` of the model's: 1/510 at 8 bits (the views
and the API, `SCALE` 255), 1/254 at 7 bits (the index's default). Below the views, the server and the
index, so each of them imports it from here.
"""

from __future__ import annotations

import mmap

import numpy as np

SCALE = 255
"""The views' and the API's scale (8 bits): a weight ``w`` in [0, 1] is the byte ``round(w * 255)``."""
MAX_ERROR = 1 / (2 * SCALE)
"""Largest absolute difference between a weight and its decoded byte at 8 bits (1/510)."""
CHUNK = 1 << 17
"""How many weights `quantise` scales at once: its scratch (two 512 kB float32 buffers, or 1 MB of float64) stays
in a CPU's cache (measured on a 2,048-token layer: 2**16 to 2**18 weights all within 15% of each other)."""


def levels(bits: int) -> int:
    """The largest code of ``bits`` bits: weight 1 is stored as this (255 at 8 bits, 127 at 7)."""
    return 2**bits - 1


def error_bound(bits: int) -> float:
    """Largest difference between a weight stored with ``bits`` bits and the model's."""
    return 0.5 / levels(bits)


def empty_codes(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised uint8 array of ``shape`` for codes, in ordinary 4 kB pages when it is large.

    numpy asks the kernel for transparent huge pages for every array of 4 MB or more (``madvise``), and
    under Linux's default ``defrag=madvise`` a fault in such an array may first compact memory. Measured
    here (2 CPUs, other programs running) for the 600 MB of codes of a 2,048-token head view (12 x 12
    heads): 1.3-1.5 s of system time in huge pages, 0.25-0.3 s in 4 kB pages from an anonymous map.
    """
    size = int(np.prod(shape, dtype=np.int64))
    if size < _PLAIN_PAGES_FROM:
        return np.empty(shape, dtype=np.uint8)
    return np.frombuffer(mmap.mmap(-1, size), dtype=np.uint8).reshape(shape)


_PLAIN_PAGES_FROM = 1 << 22  # numpy's threshold for asking for huge pages


def quantise(weights: np.ndarray, bits: int = 8, *, out: np.ndarray | None = None) -> np.ndarray:
    """Weights in [0, 1] (values outside are clipped) as uint8 ``round(w * (2**bits - 1))``, same shape.

    Every code is the one float64 arithmetic gives, ``rint(clip(w, 0, 1) * levels)`` (half to even). The work
    goes through a scratch of `CHUNK` weights (a few query rows at a time) that stays in the CPU's cache, so no
    widened copy of the input is made and memory stays at the uint8 result (``out``, when given: a uint8
    array of ``weights``'s shape to write into). float32 weights are scaled in float32 (`_float32_codes`).
    """
    weights = np.asarray(weights)
    if out is None:
        out = empty_codes(weights.shape)
    matrices = weights.reshape(1, 1, -1) if weights.ndim < 2 else weights
    targets = out.reshape(matrices.shape) if weights.ndim < 2 else out
    step = max(1, CHUNK // max(1, matrices.shape[-1]))
    scratch = _Scratch(min(step, matrices.shape[-2]), matrices.shape[-1], levels(bits), matrices.dtype)
    for index in np.ndindex(matrices.shape[:-2]):  # each (query, key) matrix, a few rows at a time
        matrix, target = matrices[index], targets[index]
        for start in range(0, matrix.shape[0], step):
            target[start : start + step] = scratch.codes(matrix[start : start + step])
    return out


class _Scratch:
    """Cache-sized buffers for `quantise`: codes of up to ``rows`` rows of ``keys`` weights at a time."""

    def __init__(self, rows: int, keys: int, top: int, dtype: np.dtype) -> None:
        self.top64, self.top32 = np.float64(top), np.float32(top)
        self.single = dtype == np.float32
        self.scaled = np.empty((rows, keys), dtype=np.float32 if self.single else np.float64)
        self.rounded = np.empty((rows, keys), dtype=np.float32)

    def codes(self, rows: np.ndarray) -> np.ndarray:
        """``rint(clip(rows, 0, 1) * top)`` as float64 would give it, as floats (whole numbers in [0, top])."""
        if self.single:
            return self._float32_codes(rows)
        part = np.multiply(rows, self.top64, out=self.scaled[: rows.shape[0]], dtype=np.float64)
        np.clip(part, 0.0, self.top64, out=part)
        return np.rint(part, out=part)

    def _float32_codes(self, rows: np.ndarray) -> np.ndarray:
        """The codes of float32 weights, scaled in float32 (faster than widening each weight first).

        ``w * top`` is exact in float64 (24 + 8 bits) but rounded in float32; that rounding never carries a
        product across a half-integer (k + 0.5 is a float32 and rounding is monotonic), only onto one, where
        rint's half-to-even could then move the code by one: 0.5 / 255 in float32 times 255 is exactly 0.5 in
        float32, 0.50000001 in float64. So every product that lands on a half is rounded again in float64."""
        n = rows.shape[0]
        scaled, rounded = self.scaled[:n], self.rounded[:n]
        np.multiply(rows, self.top32, out=scaled)
        np.rint(scaled, out=rounded)
        np.subtract(scaled, rounded, out=scaled)  # -0.5 or 0.5 exactly where the product is a half
        if scaled.max() >= 0.5 or scaled.min() <= -0.5:
            halves = np.abs(scaled) == 0.5
            rounded[halves] = np.rint(rows[halves].astype(np.float64) * self.top64)
        return np.clip(rounded, 0, self.top32, out=rounded)


def dequantise(codes: np.ndarray, bits: int = 8, dtype: type = np.float32) -> np.ndarray:
    """Stored codes back as weights: ``code / (2**bits - 1)`` in ``dtype``."""
    return np.asarray(codes).astype(dtype) / dtype(levels(bits))
