"""The ways to combine attention (B1), defined once: each method's name, label and what it computes.

`aggregate` computes them, the views offer them in their aggregation control (labels carried to the
browser in the payload header), and the API takes the names of those the payload carries
(``POST /api/attention``'s ``aggregations``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    """One aggregation method: ``name`` (as the API, `aggregate` and the views spell it), ``label`` (a
    control's short text), ``about`` (what it computes, with its source), ``per_head`` (its result keeps
    a head axis), ``norm`` (a vector length, not a probability) and ``in_views`` (offered by the views)."""

    name: str
    label: str
    about: str
    per_head: bool = False
    norm: bool = False
    in_views: bool = True


ALL = (
    Method("raw", "Attention", "each head's attention weights α", per_head=True),
    Method("mean", "Mean of heads", "the mean of the chosen heads' weights"),
    Method(
        "weighted",
        "Weighted heads",
        "the chosen heads' weights combined by head_weights (scaled to sum to 1)",
        in_views=False,
    ),
    Method(
        "rollout",
        "Rollout",
        "attention rollout (Abnar & Zuidema 2020): per layer the heads' mean with the "
        "residual, 0.5·A + 0.5·I, multiplied up through the layers",
    ),
    Method(
        "value_norm",
        "‖αf(x)‖ per head",
        "‖α·f(x)‖ per head (Kobayashi et al. 2020): each weight times the norm "
        "of the value vector the head writes, f(x_j) = v_j·W_O^h",
        per_head=True,
        norm=True,
    ),
    Method(
        "value_norm_sum",
        "‖Σαf(x)‖ of heads",
        "‖Σ_h α^h·f^h(x)‖ over the chosen heads (Kobayashi et al. 2020): "
        "the norm of what the heads together move from each key to each query",
        norm=True,
    ),
)
"""Every method, in the order controls list them."""
BY_NAME = {method.name: method for method in ALL}
NAMES = tuple(BY_NAME)
METHODS: dict[str, str] = {method.name: method.about for method in ALL}
"""Every method `aggregate` takes, with what it computes."""
PER_HEAD = tuple(method.name for method in ALL if method.per_head)
"""Methods whose result keeps a head axis; the others combine the chosen heads into one."""
NORM_METHODS = tuple(method.name for method in ALL if method.norm)
"""Methods whose result is a vector norm (units of the hidden state), not a probability."""
