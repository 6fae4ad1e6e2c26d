"""A `Comparison` as the diff view's payload: a JSON header plus both models' aligned attention as uint8 bytes.

Each side's attention over the aligned units crosses as one byte a weight per layer, ``(heads, u, u)`` row-major,
quantised as every view's (`attnscope.quantise`: ``round(w * 255)``); the view computes A − B from the two bytes,
``(byte_a - byte_b) / 255``, within 1/255 of `Comparison.difference`. No float crosses as JSON but the per-head
distances (layers × heads numbers).

The difference is coloured on a diverging scale that is white at zero: blue where B attends more (A − B < 0),
orange where A attends more (A − B > 0), darker with the size of the difference up to ``±limit`` (`DIVERGING`).
Blue against orange stays apart for the red–green colour-blind (deuteranopes and protanopes see a blue–yellow
axis), and the two ends also differ in lightness. ``limit`` is, by default, the largest |A − B| of the pairs the
grid shows, so the strongest change is the darkest; it travels as a byte count (``limit_code``: limit × 255) so
that Python (`diverging_rgb`) and the page compute every colour with the same arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..analysis.comparison import Comparison
from ..errors import InputError
from ..quantise import SCALE, quantise
from .compression import to_base64

DIVERGING: list[tuple[float, tuple[int, int, int]]] = [
    (-1.0, (30, 80, 160)),
    (-0.5, (125, 170, 215)),
    (0.0, (255, 255, 255)),
    (0.5, (245, 170, 95)),
    (1.0, (175, 75, 10)),
]
"""The A − B scale: (position in [-1, 1] of ``±limit``, RGB), linear between stops: blue, white at 0, orange."""
SEQUENTIAL: list[tuple[float, tuple[int, int, int]]] = [(0.0, (255, 255, 255)), (1.0, (8, 48, 107))]
"""The scale of one model's weights (0 to 1) and of the per-head distances (0 to the largest): white to dark blue."""
MODES = ("a", "b", "diff")
"""What the grid shows: model A's heads, model B's, or A − B of each head of A against its pair in B."""


@dataclass
class DiffPayload:
    """What the diff view draws: ``header`` (JSON-ready) and the uint8 layers of each side, ``codes_a``
    ``(layers_a, heads_a, u, u)`` and ``codes_b`` ``(layers_b, heads_b, u, u)``."""

    header: dict[str, Any]
    codes_a: np.ndarray
    codes_b: np.ndarray

    def layer_bytes(self, side: str, index: int) -> bytes:
        """One layer of ``side`` ("a" or "b"): ``(heads, u, u)`` uint8, row-major."""
        return (self.codes_a if side == "a" else self.codes_b)[index].tobytes()

    def layers(self) -> dict[str, list[bytes]]:
        """Every layer of both sides as bytes, keyed "a" and "b" (the widget's ``layers`` trait)."""
        return {side: [self.layer_bytes(side, i) for i in range(len(codes))] for side, codes in self._sides()}

    def layers_base64(self) -> dict[str, list[str]]:
        """Every layer deflated and as base64, as a page without a kernel carries them (`compression`)."""
        return {
            side: [to_base64(self.layer_bytes(side, i)) for i in range(len(codes))] for side, codes in self._sides()
        }

    def _sides(self) -> list[tuple[str, np.ndarray]]:
        return [("a", self.codes_a), ("b", self.codes_b)]


def diff_payload(comparison: Comparison, limit: float | None = None) -> DiffPayload:
    """The payload of ``comparison``; ``limit`` (in (0, 1]) is the |A − B| drawn darkest (default: the largest
    difference of the pairs the grid shows). Raises `InputError` for a limit outside (0, 1]."""
    codes_a, codes_b = quantise(comparison.attention_a), quantise(comparison.attention_b)
    pairs, pairing = grid_pairs(comparison)
    if limit is None:
        code = max(1, _largest_difference(codes_a, codes_b, pairs))
    elif isinstance(limit, bool) or not isinstance(limit, (int, float)) or not 0 < limit <= 1:
        raise InputError(f"limit must be a number in (0, 1] (the |A − B| drawn darkest), got {limit!r}")
    else:
        code = int(min(SCALE, max(1, round(limit * SCALE))))
    return DiffPayload(_header(comparison, pairs, pairing, code), codes_a, codes_b)


def grid_pairs(comparison: Comparison) -> tuple[np.ndarray, str]:
    """For each head of A, the head of B its A − B thumbnail uses, ``(layers_a, heads_a, 2)``, and how it was
    chosen: "same place" when the stacks have one shape, else "matched" (the matching's pair, or the nearest
    head for a head the matching left out)."""
    la, ha = comparison.shape_a
    if comparison.distances is not None:
        places = np.stack(np.meshgrid(np.arange(la), np.arange(ha), indexing="ij"), axis=-1)
        return places.astype(np.int64), "same place"
    pairs = comparison.nearest[:, :, 0, :].copy()
    for m in comparison.matching:
        pairs[m.layer_a, m.head_a] = (m.layer_b, m.head_b)
    return pairs, "matched"


def _largest_difference(codes_a: np.ndarray, codes_b: np.ndarray, pairs: np.ndarray) -> int:
    """The largest |byte_a − byte_b| over every head of A against its pair (bytes, 0-255)."""
    largest = 0
    for layer in range(codes_a.shape[0]):
        for head in range(codes_a.shape[1]):
            lb, hb = pairs[layer, head]
            a, b = codes_a[layer, head].astype(np.int16), codes_b[lb, hb].astype(np.int16)
            largest = max(largest, int(np.abs(a - b).max(initial=0)))
    return largest


def _pair_distances(comparison: Comparison, pairs: np.ndarray) -> list[list[float]]:
    """The distance of each head of A to its grid pair, in bits, rounded to 6 places."""
    if comparison.distances is not None:
        return np.round(comparison.distances, 6).tolist()
    matched = {(m.layer_a, m.head_a): m.distance for m in comparison.matching}
    la, ha = comparison.shape_a
    return [
        [
            round(float(matched.get((layer, head), comparison.nearest_distances[layer, head, 0])), 6)
            for head in range(ha)
        ]
        for layer in range(la)
    ]


def _header(comparison: Comparison, pairs: np.ndarray, pairing: str, limit_code: int) -> dict[str, Any]:
    alignment = comparison.alignment
    summary = comparison.to_dict()
    return {
        "version": 1,
        "view": "diff",
        "model_a": comparison.model_a,
        "model_b": comparison.model_b,
        "stacks": summary["stacks"],
        "shape_a": summary["shape_a"],
        "shape_b": summary["shape_b"],
        "level": alignment.level,
        "units": list(alignment.labels),
        "rows": [bool(r) for r in comparison.rows],
        "unaligned_a": _unaligned(alignment.unaligned_a, alignment.tokens_a),
        "unaligned_b": _unaligned(alignment.unaligned_b, alignment.tokens_b),
        "method": comparison.method,
        "distances": summary["distances"],
        "matching": [[m.layer_a, m.head_a, m.layer_b, m.head_b, round(m.distance, 6)] for m in comparison.matching],
        "nearest": comparison.nearest.tolist(),
        "nearest_distances": np.round(comparison.nearest_distances, 6).tolist(),
        "pairs": pairs.tolist(),
        "pairing": pairing,
        "pair_distances": _pair_distances(comparison, pairs),
        "limit_code": limit_code,
        "diverging": [[at, *rgb] for at, rgb in DIVERGING],
        "sequential": [[at, *rgb] for at, rgb in SEQUENTIAL],
        "encoding": {"dtype": "uint8", "scale": SCALE},
    }


def _unaligned(positions: list[int], tokens: list[str]) -> list[dict[str, Any]]:
    return [{"position": p, "token": tokens[p] if p < len(tokens) else ""} for p in positions]


def ramp_rgb(values: np.ndarray, stops: list[tuple[float, tuple[int, int, int]]]) -> np.ndarray:
    """``values`` in the stops' range (clipped) as uint8 RGB, ``values.shape + (3,)``, linear between stops and
    rounded half up: the arithmetic the page's ``ramp`` (static/diff_palette.js) does, colour for colour."""
    t = np.clip(np.asarray(values, dtype=np.float64), stops[0][0], stops[-1][0])
    out = np.zeros(t.shape + (3,), dtype=np.float64)
    for (at0, c0), (at1, c1) in zip(stops, stops[1:]):
        inside = (t >= at0) & (t <= at1)
        f = (t[inside] - at0) / (at1 - at0)
        for channel in range(3):
            out[..., channel][inside] = np.floor(c0[channel] + (c1[channel] - c0[channel]) * f + 0.5)
    return out.astype(np.uint8)


def diverging_rgb(byte_difference: np.ndarray, limit_code: int) -> np.ndarray:
    """The A − B colour of byte differences ``byte_a - byte_b`` (ints) on the scale ``±limit_code / 255``."""
    return ramp_rgb(np.asarray(byte_difference, dtype=np.float64) / limit_code, DIVERGING)
