"""Which aggregations (B1) a view offers besides each head's attention, and their layers for the payload.

"mean" (of the heads shown) is computed in the browser from the raw layers, since the user picks the
heads there; "rollout", "value_norm" and "value_norm_sum" are computed here by `analysis.aggregate`
and travel like raw layers, one byte a weight, under the data key ``"<role>/<method>"``. Value norms
are lengths, not probabilities: each row is scaled to sum to 1 for display (`normalise_rows`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..analysis.aggregate import aggregate, combine_heads, normalise_rows, rollout
from ..analysis.methods import BY_NAME, NORM_METHODS, PER_HEAD
from ..capture.result import Capture
from ..errors import InputError
from .bertviz_inputs import StackedLayers

VIEW_AGGREGATIONS = tuple(method.name for method in BY_NAME.values() if method.in_views)
"""What a view's aggregation control offers (`analysis.methods`): each head, the mean of the shown heads, then
`CARRIED`."""
CARRIED = tuple(name for name in VIEW_AGGREGATIONS if name not in ("raw", "mean"))
"""Aggregations computed in Python and carried by the payload as extra layers."""
COMBINING = tuple(name for name in CARRIED if name not in PER_HEAD)
"""The `CARRIED` aggregations that combine the heads into one per layer (a payload's ``combine_heads``)."""
NOTES = {
    "rollout": "every head combined",
    **{name: "value norms, each row scaled to sum to 1" for name in NORM_METHODS},
}
"""What a view says beside its aggregation control while one of these is shown."""
AUTO_MAX_TOKENS = 512
"""``aggregations="auto"`` carries every available aggregation up to this many tokens, none above
(rollout costs layers × tokens³, value norms double the payload); name them to carry them anyway."""


def data_key(role: str, method: str) -> str:
    """The key a stack's layers of ``method`` travel under: the role itself for raw attention."""
    return role if method == "raw" else f"{role}/{method}"


def offered(heads: int, carried: Sequence[str]) -> list[dict[str, object]]:
    """What a stack's aggregation control offers, for the payload header (the browser's labels come from
    here): raw, the mean when the stack has several heads, and the ``carried`` methods; each with its
    ``name``, ``label``, ``about`` (a tooltip), ``note`` and ``per_head``."""
    names = [n for n in VIEW_AGGREGATIONS if n == "raw" or (n == "mean" and heads > 1) or n in carried]
    return [
        {
            "name": n,
            "label": BY_NAME[n].label,
            "about": BY_NAME[n].about,
            "note": NOTES.get(n, ""),
            "per_head": n in PER_HEAD,
        }
        for n in names
    ]


def unavailable(method: str, role: str, capture: Capture | None) -> str | None:
    """Why ``method`` cannot be carried for stack ``role``, or None when it can."""
    if method == "rollout":
        return "rollout needs self-attention, not the cross stack" if role == "cross" else None
    if capture is None:
        return "value norms need a Capture with values: attnscope.capture(model, text, fields='all')"
    stack = capture.stacks[role]
    if stack.values is None:
        return "this capture holds no values: capture with fields='all' (or fields=[..., 'values'])"
    if stack.output_projection is None:
        return capture.missing.get("output_projection", "the output projection was not found")
    return None


def choose(
    aggregations: str | Sequence[str], initial: str, roles: Sequence[str], tokens: int, capture: Capture | None
) -> list[str]:
    """The `CARRIED` methods a view carries: those named, or for "auto" every available one up to
    `AUTO_MAX_TOKENS` tokens (and the ``initial`` one at any length)."""
    if isinstance(aggregations, str):
        if aggregations != "auto":
            raise InputError(f"aggregations must be 'auto' or a list of {', '.join(CARRIED)}; got {aggregations!r}")
        wanted = list(CARRIED) if tokens <= AUTO_MAX_TOKENS else [m for m in CARRIED if m == initial]
        return [m for m in wanted if any(unavailable(m, r, capture) is None for r in roles)]
    names = list(aggregations)
    unknown = [m for m in names if m not in VIEW_AGGREGATIONS]
    if unknown:
        raise InputError(
            f"aggregations names {unknown[0]!r}: choose from {', '.join(CARRIED)} (raw and mean are always offered)"
        )
    for method in names:
        if method in CARRIED and all(unavailable(method, r, capture) for r in roles):
            raise InputError(f"aggregation {method!r} cannot be shown: {unavailable(method, roles[0], capture)}")
    return [m for m in CARRIED if m in names]


def check_initial(initial: str, carried: dict[str, list[str]], capture: Capture | None) -> str:
    """``initial`` if the view offers it for some stack (``carried``: role -> methods); else an error saying why."""
    if initial not in VIEW_AGGREGATIONS:
        raise InputError(f"aggregation must be one of {', '.join(VIEW_AGGREGATIONS)}; got {initial!r}")
    if initial in ("raw", "mean") or any(initial in methods for methods in carried.values()):
        return initial
    reasons = [unavailable(initial, role, capture) for role in carried]
    reason = next((r for r in reasons if r), "the aggregations option leaves it out")
    raise InputError(f"aggregation {initial!r} is not in this view: {reason}")


def carried_layers(
    method: str, role: str, weights: np.ndarray | StackedLayers, heads: list[int], capture: Capture | None
) -> np.ndarray:
    """One stack's layers of a `CARRIED` method, ``(layers, heads', query, key)`` in [0, 1], made of the model's
    ``heads``: heads' is ``len(heads)`` for "value_norm", 1 for the combinations (`COMBINING`), which combine
    ``heads``. ``weights`` is the stack's raw attention, all its heads (used for rollout without a capture);
    value norms are scaled per row to sum to 1."""
    if capture is not None:
        result = aggregate(capture, method, stack=role, heads=heads).weights
    else:  # the heads' mean one layer at a time (weights[l]): the stack is never copied whole
        result = rollout(np.stack([combine_heads(np.asarray(weights[n])[heads]) for n in range(len(weights))]))
    if method in NORM_METHODS:
        result = normalise_rows(result)
    return result if result.ndim == 4 else result[:, None]
