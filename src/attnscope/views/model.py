"""The model view (V2): every layer × head of an attention stack as a thumbnail; click one to enlarge it.

``model_view`` takes a `Capture` or BertViz's arguments (``include_layers``, ``include_heads`` and
``display_mode`` included), so a BertViz notebook ports by changing its import. Thumbnails are drawn
as lines (BertViz's style) or as heatmaps; "auto" picks lines up to 64 tokens and heatmaps above.
Every layer is shown at once, so every layer crosses to the browser with the view (one byte a weight).
At long context (attention computed on demand) the view is the pooled overview instead (`overview`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import traitlets

from ..analysis.comparison import Comparison
from ..capture.result import Capture
from ..errors import InputError
from .diff import DiffView, diff_view
from .display import present
from .html import bundle, static_text
from .overview import OVERVIEW_CELLS, ModelOverview
from .overview_inputs import is_lazy, overview_from_arrays, overview_from_capture
from .payload import DEFAULT_THRESHOLD, Payload, payload_from_inputs
from .widget import PayloadWidget

STYLES = ("auto", "lines", "matrix")
"""Thumbnail styles: query→key lines, a query × key heatmap, or "auto" (lines up to 64 tokens)."""
THEMES = ("auto", "dark", "light")
"""Colour themes: "auto" follows the page's prefers-color-scheme."""


def _choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise InputError(f"{name} must be one of {', '.join(repr(a) for a in allowed)}; got {value!r}")
    return value


class ModelView(PayloadWidget):
    """The model view widget. ``layer`` and ``heads`` name the enlarged thumbnail (model numbers; ``None``
    and ``[]`` when none is open), ``token`` the token hovered in it; ``stack``, ``thumbnails``, ``filter``,
    ``hide_special``, ``threshold`` and ``theme`` follow the controls, both ways.
    """

    module = "model_view"
    kind = "model view"
    eager = True  # the grid shows every layer at once
    _esm = bundle("model_view")
    _css = static_text("model_view.css")
    thumbnails = traitlets.Unicode("auto").tag(sync=True)  # not "style": ipywidgets views reserve it
    theme = traitlets.Unicode("auto").tag(sync=True)

    def __init__(
        self, payload: Payload, *, style: str = "auto", hide_special: bool = False, theme: str = "auto", **kwargs: Any
    ) -> None:
        # Nothing is enlarged until the user (or Python, through layer and heads) opens a thumbnail.
        super().__init__(
            payload,
            thumbnails=style,
            hide_special=bool(hide_special),
            theme=theme,
            **{"layer": None, "heads": [], **kwargs},
        )

    @traitlets.validate("thumbnails")
    def _valid_style(self, proposal: dict[str, Any]) -> str:
        return _choice("style", proposal["value"], STYLES)

    @traitlets.validate("theme")
    def _valid_theme(self, proposal: dict[str, Any]) -> str:
        return _choice("theme", proposal["value"], THEMES)

    @traitlets.validate("heads")
    def _valid_heads(self, proposal: dict[str, Any]) -> list[int]:
        heads = super()._valid_heads(proposal)
        if len(heads) > 1:
            raise InputError(f"the model view enlarges one head at a time; got heads {heads}")
        return heads

    def html_state(self) -> dict[str, Any]:
        return {
            **super().html_state(),
            "thumbnails": self.thumbnails,
            "hide_special": self.hide_special,
            "theme": self.theme,
        }


def model_view(
    attention: Any = None,
    tokens: Sequence[str] | None = None,
    sentence_b_start: int | None = None,
    prettify_tokens: bool = True,
    display_mode: str | None = None,
    encoder_attention: Any = None,
    decoder_attention: Any = None,
    cross_attention: Any = None,
    encoder_tokens: Sequence[str] | None = None,
    decoder_tokens: Sequence[str] | None = None,
    include_layers: Sequence[int] | None = None,
    include_heads: Sequence[int] | None = None,
    html_action: str = "view",
    *,
    batch_index: int = 0,
    threshold: float = DEFAULT_THRESHOLD,
    stack: str | None = None,
    style: str = "auto",
    hide_special: bool = False,
    aggregation: str = "raw",
    aggregations: str | Sequence[str] = "auto",
    overview: bool | None = None,
    cells: int = OVERVIEW_CELLS,
) -> ModelView | ModelOverview | DiffView:
    """The model view (V2) of a `Capture` or of BertViz-style attention.

    ``model_view(cap)`` shows every stack the capture holds (a selector switches between encoder,
    decoder and cross attention); ``model_view(attention, tokens, sentence_b_start)`` takes a tuple of
    per-layer ``(batch, heads, query, key)`` tensors or arrays as ``model(..., output_attentions=True)``
    returns them (``encoder_attention``/``decoder_attention``/``cross_attention`` with
    ``encoder_tokens``/``decoder_tokens`` for encoder-decoders). ``include_layers``/``include_heads``
    keep only those layers/heads (labelled with the model's numbers). ``display_mode`` is "dark" or
    "light"; unlike BertViz (always dark by default) the default, ``None``, follows the page's
    light or dark preference. ``style`` is "lines", "matrix" or "auto"; weights <= ``threshold`` are
    not drawn; ``hide_special`` starts with special tokens hidden. ``html_action`` as in `head_view`:
    with BertViz's arguments, "view" (the default) also displays the view where the call is made, once;
    "return" only returns it; ``model_view(cap)`` displays only as a cell's value. ``aggregation`` is what the
    thumbnails show first, and a control switches it: "raw" (a thumbnail per head), "mean" (of the heads
    shown, one per layer), "rollout", "value_norm" (‖α·f(x)‖ per head) or "value_norm_sum" (‖Σ_h α·f(x)‖,
    one per layer), value norms scaled per row to sum to 1; ``aggregations`` as in `head_view`.
    Returns a `ModelView` widget: it displays in notebooks (a static copy where widgets do not run),
    ``to_html()`` and ``save(path)`` export it, and its ``selection`` follows what the user enlarges.

    At long context (M3) the view is the overview instead (`overview.ModelOverview`): every head pooled over
    blocks, at most ``cells`` × ``cells`` per head, a click zooming into any region down to single tokens,
    computed in Python when asked. ``overview=None`` (the default) shows it for a capture whose attention is
    computed on demand (``attention="on_demand"``, a `LazyAttention`) and today's view otherwise; ``True``
    shows it for any input, ``False`` never (on-demand attention is then computed whole, within its memory
    limit). ``include_layers``, ``include_heads``, ``stack``, ``display_mode`` and ``html_action`` apply to it;
    the thumbnail options (``style``, ``threshold``, ``hide_special``, aggregations) do not and are refused.

    Given a `Comparison` (`attnscope.compare`), it is the diff view (`diff.diff_view`): every head as A, B or
    A − B, the per-head distances beside them, a click opening a head against its matched head of B.
    """
    if isinstance(attention, Comparison):
        return diff_view(attention, layout="model")
    if html_action not in ("view", "return"):
        raise InputError(f"html_action must be 'view' or 'return', got {html_action!r}")
    theme = _choice("display_mode", display_mode or "auto", THEMES)
    _choice("style", style, STYLES)
    if overview not in (None, True, False):
        raise InputError(f"overview must be True, False or None (automatic), got {overview!r}")
    if overview or (overview is None and is_lazy(attention)):
        _refuse_thumbnail_options(style, threshold, hide_special, aggregation, aggregations)
        options = {"cells": cells, "include_layers": include_layers, "include_heads": include_heads}
        if isinstance(attention, Capture):
            if tokens is not None or sentence_b_start is not None:
                raise InputError("a Capture carries its own tokens and sentence_b_start: pass only the capture")
            data = overview_from_capture(attention, **options)
        else:
            data = overview_from_arrays(
                attention,
                tokens,
                sentence_b_start,
                encoder_attention=encoder_attention,
                decoder_attention=decoder_attention,
                cross_attention=cross_attention,
                encoder_tokens=encoder_tokens,
                decoder_tokens=decoder_tokens,
                batch_index=batch_index,
                prettify_tokens=prettify_tokens,
                **options,
            )
        shown = ModelOverview(data, stack=stack, theme=theme)
        return present(shown, html_action, bertviz_style=not isinstance(attention, Capture))
    payload = payload_from_inputs(
        attention,
        tokens,
        sentence_b_start,
        prettify_tokens=prettify_tokens,
        encoder_attention=encoder_attention,
        decoder_attention=decoder_attention,
        cross_attention=cross_attention,
        encoder_tokens=encoder_tokens,
        decoder_tokens=decoder_tokens,
        batch_index=batch_index,
        include_layers=include_layers,
        include_heads=include_heads,
        threshold=threshold,
        stack=stack,
        aggregation=aggregation,
        aggregations=aggregations,
    )
    view = ModelView(payload, style=style, hide_special=hide_special, theme=theme)
    return present(view, html_action, bertviz_style=not isinstance(attention, Capture))


def _refuse_thumbnail_options(
    style: str, threshold: float, hide_special: bool, aggregation: str, aggregations: Any
) -> None:
    """The overview pools every weight and draws no thumbnails: options of the thumbnails are refused, named."""
    given = {
        "style": style != "auto",
        "threshold": threshold != DEFAULT_THRESHOLD,
        "hide_special": bool(hide_special),
        "aggregation": aggregation != "raw",
        "aggregations": aggregations != "auto",
    }
    named = [name for name, set_ in given.items() if set_]
    if named:
        raise InputError(
            f"{', '.join(named)} {'does' if len(named) == 1 else 'do'} not apply to the overview (the model view of "
            "attention computed on demand, pooled over blocks): leave them out, or pass overview=False for "
            "today's thumbnails (the whole attention is then computed, within its memory limit)"
        )
