"""Comparing the attention of two models (or two checkpoints) over one text: A − B, a distance per head, and
which head of B each head of A became.

`compare` takes two captures of the same text (any two models: depths, head counts and tokenizers may differ),
aligns their positions (`alignment.align`: tokens when the tokenisations are equal, else words joined through
character spans), and measures every head of A against the heads of B with the mean row Jensen–Shannon
divergence in bits (`head_distance`, which says why that distance). It keeps:

- ``distances``: A's head against B's head at the same (layer, head), when both stacks have the same shape;
- for every head of A its ``nearest`` heads of B, and a one-to-one ``matching`` (least total distance,
  Kuhn–Munkres), so a head that moved (2-8 of the base is 3-1 of the fine-tuned model) is found as well as one
  that stayed;
- the aligned attention of both sides, from which `Comparison.difference` gives A − B of any pair of heads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..capture.engine import capture
from ..capture.inputs import Tokens
from ..capture.loading import ModelHandle
from ..capture.result import Capture
from ..errors import InputError, check_range
from .alignment import Alignment, align, merged
from .head_distance import HeadMatch, PairDistances

NEAREST = 3
"""Closest heads of B kept for each head of A."""
METHOD = "mean over query rows of the Jensen-Shannon divergence, in bits (0 = the same, 1 = disjoint)"


@dataclass
class Comparison:
    """Two models' attention over one text, aligned, with distances between their heads.

    Shapes (``u`` = aligned units, tokens or words; see ``alignment``):

    - ``attention_a``: (layers_a, heads_a, u, u) float32, rows renormalised over the aligned units;
      ``attention_b`` likewise (layers_b, heads_b, u, u)
    - ``kept_a`` / ``kept_b``: (layers, heads, u) the share of each row's weight that fell on aligned units
      (1 at the token level)
    - ``rows``: (u,) bool, the query rows every distance averages over (rows with weight left on both sides)
    - ``distances``: (layers_a, heads_a) A's head against B's head at the same place, in bits; None when the
      stacks differ in shape
    - ``nearest``: (layers_a, heads_a, k, 2) int, (layer, head) of B's k closest heads, closest first (ties by
      layer then head); ``nearest_distances``: (layers_a, heads_a, k) their distances
    - ``matching``: one `HeadMatch` per matched head of A, in A's order (all of A's heads when B has at least
      as many)
    """

    model_a: str
    model_b: str
    role_a: str
    role_b: str
    alignment: Alignment
    attention_a: np.ndarray
    attention_b: np.ndarray
    kept_a: np.ndarray
    kept_b: np.ndarray
    rows: np.ndarray
    distances: np.ndarray | None
    nearest: np.ndarray
    nearest_distances: np.ndarray
    matching: list[HeadMatch] = field(default_factory=list)
    method: str = METHOD

    @property
    def shape_a(self) -> tuple[int, int]:
        return int(self.attention_a.shape[0]), int(self.attention_a.shape[1])

    @property
    def shape_b(self) -> tuple[int, int]:
        return int(self.attention_b.shape[0]), int(self.attention_b.shape[1])

    def difference(self, layer: int, head: int, layer_b: int | None = None, head_b: int | None = None) -> np.ndarray:
        """A − B for head ``(layer, head)`` of A against ``(layer_b, head_b)`` of B (the same place by default),
        ``(u, u)`` float32 in [-1, 1]. Raises `InputError` for a place outside either stack."""
        la, ha = self.shape_a
        lb, hb = self.shape_b
        layer = check_range("layer", layer, la, f"model A ({self.model_a!r})")
        head = check_range("head", head, ha, f"model A ({self.model_a!r})")
        layer_b = check_range("layer_b", layer if layer_b is None else layer_b, lb, f"model B ({self.model_b!r})")
        head_b = check_range("head_b", head if head_b is None else head_b, hb, f"model B ({self.model_b!r})")
        return self.attention_a[layer, head] - self.attention_b[layer_b, head_b]

    def matched(self, layer: int, head: int) -> HeadMatch | None:
        """The matching's pair for head ``(layer, head)`` of A; None when it is unmatched (B has fewer heads)."""
        return next((m for m in self.matching if (m.layer_a, m.head_a) == (layer, head)), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: models, level, units, ``distances`` (a layers × heads list, or None), ``matching``,
        ``nearest`` and the unaligned positions; no attention arrays."""
        return {
            "model_a": self.model_a,
            "model_b": self.model_b,
            "stacks": [self.role_a, self.role_b],
            "shape_a": list(self.shape_a),
            "shape_b": list(self.shape_b),
            "level": self.alignment.level,
            "units": list(self.alignment.labels),
            "unaligned_a": list(self.alignment.unaligned_a),
            "unaligned_b": list(self.alignment.unaligned_b),
            "method": self.method,
            "distances": None if self.distances is None else np.round(self.distances, 6).tolist(),
            "matching": [m.to_dict() for m in self.matching],
            "nearest": [
                [
                    [{"b": [int(x) for x in place], "distance": round(float(d), 6)} for place, d in zip(places, ds)]
                    for places, ds in zip(layer_places, layer_ds)
                ]
                for layer_places, layer_ds in zip(self.nearest, self.nearest_distances)
            ],
        }


def compare(
    a: Capture,
    b: Capture,
    *,
    level: str = "auto",
    stack_a: str | None = None,
    stack_b: str | None = None,
    nearest: int = NEAREST,
) -> Comparison:
    """Compare two captures of the same text (see the module docstring).

    ``level`` as `alignment.align`; ``stack_a`` / ``stack_b`` name the stacks compared ("encoder", "decoder",
    "cross"; each capture's main self-attention stack by default); ``nearest`` how many closest heads of B to
    keep per head of A (at least 1). Raises `InputError` when the texts differ, when a self-attention stack is
    set against a cross-attention stack, when a stack is missing, or when no position can be aligned.
    """
    if isinstance(nearest, bool) or not isinstance(nearest, int) or nearest < 1:
        raise InputError(f"nearest must be a positive integer (closest heads kept per head), got {nearest!r}")
    role_a = stack_a or ("decoder" if a.kind == "decoder" else "encoder")
    role_b = stack_b or ("decoder" if b.kind == "decoder" else "encoder")
    if (role_a == "cross") != (role_b == "cross"):
        raise InputError(
            f"stack {role_a!r} of A and stack {role_b!r} of B cannot be compared: cross-attention (decoder queries "
            "over encoder keys) is only comparable with cross-attention; pick two self-attention stacks or two "
            "cross stacks"
        )
    if role_a == "cross":
        raise InputError(
            "comparing cross-attention stacks is not supported: compare the 'encoder' or 'decoder' self-attention "
            "stacks (stack_a=, stack_b=)"
        )
    tokens_a, tokens_b = _stack_tokens(a, role_a), _stack_tokens(b, role_b)
    alignment = align(tokens_a, tokens_b, level)
    weights_a, kept_a = _aligned(a, role_a, alignment, "a", len(tokens_a))
    weights_b, kept_b = _aligned(b, role_b, alignment, "b", len(tokens_b))
    rows = np.asarray((kept_a > 0).all(axis=(0, 1)) & (kept_b > 0).all(axis=(0, 1)))
    if not rows.any():
        raise InputError("no query row keeps attention on aligned positions in both models: nothing to compare")
    return _measured(a.model, b.model, role_a, role_b, alignment, weights_a, weights_b, kept_a, kept_b, rows, nearest)


def _stack_tokens(cap: Capture, role: str) -> Tokens:
    """The tokens a self-attention stack reads: the decoder's for a "decoder" stack of an encoder-decoder."""
    cap.stack(role)  # the clear error when the capture has no such stack
    if role == "decoder" and cap.decoder_tokens is not None:
        return cap.decoder_tokens
    return cap.tokens


def _aligned(cap: Capture, role: str, alignment: Alignment, side: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The stack's attention on the aligned units, float32, and the kept mass per row."""
    stack = cap.stack(role)
    if stack.attentions is None:
        raise InputError(f"the {role} stack of {cap.model!r} holds no attention weights: capture with 'attentions'")
    if alignment.level == "token":
        weights = np.asarray(stack.attentions, dtype=np.float32)
        return weights, np.ones(weights.shape[:-1], dtype=np.float64)
    members = alignment.members(side, n)
    layers = [merged(np.asarray(stack.attentions[layer]), members) for layer in range(stack.layers)]
    return np.stack([w for w, _ in layers]).astype(np.float32), np.stack([k for _, k in layers])


def _measured(
    model_a: str,
    model_b: str,
    role_a: str,
    role_b: str,
    alignment: Alignment,
    weights_a: np.ndarray,
    weights_b: np.ndarray,
    kept_a: np.ndarray,
    kept_b: np.ndarray,
    rows: np.ndarray,
    k: int,
) -> Comparison:
    (la, ha), (lb, hb) = weights_a.shape[:2], weights_b.shape[:2]
    flat_a = weights_a.reshape(la * ha, *weights_a.shape[2:])
    flat_b = weights_b.reshape(lb * hb, *weights_b.shape[2:])
    pairs = PairDistances(flat_a, flat_b, rows)
    same_shape = (la, ha) == (lb, hb)
    js, found = pairs.all_nearest(k, same_place=same_shape)
    same = np.diagonal(pairs.exact).reshape(la, ha).copy() if same_shape else None
    k = js.shape[1]
    places = np.stack([js // hb, js % hb], axis=-1)
    matching = [
        HeadMatch(i // ha, i % ha, j // hb, j % hb, float(pairs.exact[i, j])) for i, j in sorted(pairs.assignment())
    ]
    return Comparison(
        model_a, model_b, role_a, role_b, alignment, weights_a, weights_b, kept_a, kept_b, rows, same,
        places.reshape(la, ha, k, 2), found.reshape(la, ha, k), matching,
    )  # fmt: skip


def compare_models(
    handle_a: ModelHandle, handle_b: ModelHandle, text: str, *, level: str = "auto", nearest: int = NEAREST
) -> Comparison:
    """Capture ``text`` with both models (attention only) and `compare` them.

    Raises `InputError` as `attnscope.capture` does for the text and as `compare` does for the comparison.
    """
    cap_a = capture(handle_a, text, fields=["attentions"])
    cap_b = capture(handle_b, text, fields=["attentions"])
    return compare(cap_a, cap_b, level=level, nearest=nearest)
