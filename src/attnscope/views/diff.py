"""The diff view (B5): two models' attention over one text, as A, B and A − B, with per-head distances.

`diff_view(comparison)` (and `head_view` / `model_view` given a `Comparison`) shows:

- a grid of every head as a heatmap over the aligned units (tokens or words), switchable between model A,
  model B and A − B (each head of A against the same head of B when the stacks have one shape, else against its
  matched head); A − B on a diverging blue–white–orange scale, white at zero, readable by the red–green
  colour-blind (`diff_payload.DIVERGING`);
- beside it the per-head distances (mean row Jensen–Shannon divergence, bits) as a layers × heads grid: A's head
  against the same head of B, or, when the shapes differ, against its matched head;
- on a click of a head, that head of A, its matched head of B (`Comparison.matching`, or the nearest one), and
  their A − B side by side, full size, labelled with the units; B's nearest heads and, for equal shapes, the head
  at the same place are buttons that switch the pair. A note names the positions that could not be aligned.

The widget's ``mode`` ("a", "b", "diff"), ``layer`` and ``head`` (the open head of A, None when none is open),
``partner`` (``[layer, head]`` of B it is set against) and ``theme`` follow the view both ways; ``layout``
"model" shows the grids and the open head, "head" the open head alone with layer and head selectors. The view
saves PNG and SVG files of what it shows, and ``to_html()`` / ``save(path)`` write it as one offline page.
"""

from __future__ import annotations

from typing import Any

import traitlets

from ..analysis.comparison import Comparison
from ..errors import InputError, check_range
from .compression import compressed_header
from .diff_payload import MODES, DiffPayload, diff_payload
from .html import bundle, static_text
from .widget import AttentionWidget

LAYOUTS = ("model", "head")
""""model": the grids with the open head beside them; "head": the open head alone, with selectors."""
THEMES = ("auto", "dark", "light")


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InputError(f"{name} must be one of {', '.join(repr(a) for a in allowed)}; got {value!r}")
    return value


class DiffView(AttentionWidget):
    """The diff view widget (see the module docstring for its traits)."""

    module = "diff_view"
    kind = "model diff"
    _esm = bundle("diff_view")
    _css = static_text("diff_view.css")
    layers = traitlets.Dict().tag(sync=True)
    mode = traitlets.Unicode("diff").tag(sync=True)
    layer = traitlets.Int(allow_none=True, default_value=None).tag(sync=True)
    head = traitlets.Int(allow_none=True, default_value=None).tag(sync=True)
    partner = traitlets.List(traitlets.Int(), allow_none=True, default_value=None).tag(sync=True)
    layout = traitlets.Unicode("model").tag(sync=True)
    theme = traitlets.Unicode("auto").tag(sync=True)

    def __init__(self, payload: DiffPayload, **kwargs: Any) -> None:
        self.payload = payload
        super().__init__(header=payload.header, layers=payload.layers(), **kwargs)

    def title(self) -> str:
        return f"attnscope model diff: {self.header['model_a']} − {self.header['model_b']}"

    def layer_count(self, role: Any) -> int | None:
        return {"a": len(self.payload.codes_a), "b": len(self.payload.codes_b)}.get(role)

    def layer_buffer(self, role: str, index: int) -> bytes:
        return self.payload.layer_bytes(role, index)

    @traitlets.validate("mode")
    def _valid_mode(self, proposal: dict[str, Any]) -> str:
        return _choice("mode", proposal["value"], MODES)

    @traitlets.validate("layout")
    def _valid_layout(self, proposal: dict[str, Any]) -> str:
        return _choice("layout", proposal["value"], LAYOUTS)

    @traitlets.validate("theme")
    def _valid_theme(self, proposal: dict[str, Any]) -> str:
        return _choice("theme", proposal["value"], THEMES)

    @traitlets.validate("layer")
    def _valid_layer(self, proposal: dict[str, Any]) -> int | None:
        value = proposal["value"]
        return None if value is None else check_range("layer", value, self.header["shape_a"][0], "model A")

    @traitlets.validate("head")
    def _valid_head(self, proposal: dict[str, Any]) -> int | None:
        value = proposal["value"]
        return None if value is None else check_range("head", value, self.header["shape_a"][1], "model A")

    @traitlets.validate("partner")
    def _valid_partner(self, proposal: dict[str, Any]) -> list[int] | None:
        value = proposal["value"]
        if value is None:
            return None
        if len(value) != 2:
            raise InputError(f"partner must be [layer, head] of model B, got {value!r}")
        lb, hb = self.header["shape_b"]
        return [
            check_range("partner layer", value[0], lb, "model B"),
            check_range("partner head", value[1], hb, "model B"),
        ]

    @property
    def selection(self) -> dict[str, Any]:
        """What the user has open: mode, layer and head of A, and the head of B it is set against."""
        return {"mode": self.mode, "layer": self.layer, "head": self.head, "partner": self.partner}

    def html_state(self) -> dict[str, Any]:
        return {
            "header": compressed_header(self.header),
            "layers": self.payload.layers_base64(),
            **{name: getattr(self, name) for name in ("mode", "layer", "head", "partner", "layout", "theme")},
        }


def diff_view(
    comparison: Comparison,
    *,
    mode: str = "diff",
    layer: int | None = None,
    head: int | None = None,
    layout: str = "model",
    theme: str = "auto",
    limit: float | None = None,
) -> DiffView:
    """The diff view of ``comparison`` (`attnscope.analysis.comparison.compare` or `compare_models`).

    ``mode`` is what the grid shows first: "diff" (A − B), "a" or "b"; ``layer`` and ``head`` open that head of A
    (with ``layout="head"`` the first head opens when none is given); ``limit`` the |A − B| drawn darkest
    (default: the largest in the grid). Raises `InputError` for a value outside its range.
    """
    if not isinstance(comparison, Comparison):
        raise InputError(f"diff_view takes a Comparison (attnscope.compare(...)), got {type(comparison).__name__}")
    _choice("layout", layout, LAYOUTS)
    if (layer is None) != (head is None) and layout == "model":
        raise InputError("give both layer and head to open a head of A, or neither")
    if layout == "head":
        layer, head = layer or 0, head or 0
    return DiffView(diff_payload(comparison, limit), mode=mode, layer=layer, head=head, layout=layout, theme=theme)
