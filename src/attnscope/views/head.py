"""The head view (V1): one layer's attention as lines from query tokens to key tokens, a colour per head.

``head_view`` takes a `Capture` or BertViz's arguments, so a BertViz notebook ports by changing its import.
Only the selected layer crosses to the browser at first in a notebook; other layers follow on demand.
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
from .long_payload import capture_payload
from .long_requests import ROWS_MESSAGE, WEIGHTS_MESSAGE, answer_rows, answer_weights
from .payload import DEFAULT_TOP_SHARE, Payload, check_top_share, payload_from_inputs
from .widget import PayloadWidget

ENCODINGS = {"auto": None, "dense": False, "sparse": True}


class HeadView(PayloadWidget):
    """The head view widget: traits ``stack``, ``layer``, ``heads``, ``filter`` and ``token`` follow the user;
    ``top_share`` (in (0, 1], 1: off) keeps each query row's strongest lines up to that share of its weight;
    ``mean_heads`` draws the mean of the shown heads as one set of lines (for the raw weights and per-head
    value norms), ``head_thumbnails`` draws each head's lines into its button, ``shade_keys`` shades each key
    by its weight from the focused query (when one set of lines is drawn). The explorer app sets all three."""

    module = "head_view"
    kind = "head view"
    _esm = bundle("head_view")
    _css = static_text("head_view.css")
    top_share = traitlets.Float(DEFAULT_TOP_SHARE).tag(sync=True)
    mean_heads = traitlets.Bool(False).tag(sync=True)
    head_thumbnails = traitlets.Bool(False).tag(sync=True)
    shade_keys = traitlets.Bool(False).tag(sync=True)

    def __init__(self, payload: Payload, **kwargs: Any) -> None:
        super().__init__(payload, **kwargs)
        role = payload.selection["stack"]
        self._prefetch_near(role, [payload.layer_labels[role].index(payload.selection["layer"])])

    def _answer(self, widget: Any, content: Any, buffers: Any) -> None:
        """Exact weights (`WEIGHTS_MESSAGE`) and bands of rows (`ROWS_MESSAGE`) asked for by the module are answered
        here. At long context a layer asked for is answered once the worker thread has computed it (the kernel
        meanwhile answers rows and hovers), and the layers beside it are computed ahead; otherwise as every view."""
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == WEIGHTS_MESSAGE:
            self.send(answer_weights(self.payload, content))
            return
        if kind == ROWS_MESSAGE:
            reply, data = answer_rows(self.payload, content)
            self.send(reply, buffers=data)
            return
        request = getattr(self.payload, "request", None)
        if kind != self.message or request is None:
            super()._answer(widget, content, buffers)
            return
        role, indices = content.get("role"), content.get("indices")
        count = self.layer_count(role) if isinstance(role, str) else None
        if not isinstance(role, str) or count is None or not isinstance(indices, list):
            return
        wanted = [i for i in indices if isinstance(i, int) and not isinstance(i, bool) and 0 <= i < count]
        for index in wanted:
            request(role, index, lambda data, error, i=index: self._send_layer(role, i, data, error))
        self._prefetch_near(role, wanted)

    def _send_layer(self, role: str, index: int, data: bytes | None, error: str) -> None:
        """Send a layer computed on the worker thread, or say why it could not be (no buffer: the module shows it)."""
        if data is None:  # as a rows reply: the layers' store of the module takes every layer reply for bytes
            self.send({"type": ROWS_MESSAGE, "role": role, "layer": index, "error": error})
        else:
            self.send({"type": self.message, "role": role, "indices": [index]}, buffers=[data])

    def _prefetch_near(self, role: str, indices: list[int]) -> None:
        """Compute the layers next to ``indices`` ahead, when the payload computes its layers (long context)."""
        prefetch = getattr(self.payload, "prefetch", None)
        if prefetch is not None and role in self.payload.stacks:
            prefetch(role, [j for i in indices for j in (i + 1, i - 1)])

    @traitlets.validate("merge_subwords")
    def _valid_merge(self, proposal: dict[str, Any]) -> bool:
        if proposal["value"] and getattr(self.payload, "top_k", None) is not None:
            raise InputError(
                "merge_subwords merges every weight of a row, and at long context each query's strongest keys "
                "are carried instead: it stays off"
            )
        return bool(proposal["value"])

    @traitlets.validate("top_share")
    def _valid_top_share(self, proposal: dict[str, Any]) -> float:
        return check_top_share(proposal["value"])

    def html_state(self) -> dict[str, Any]:
        options = {name: getattr(self, name) for name in ("top_share", "mean_heads", "head_thumbnails", "shade_keys")}
        return {**super().html_state(), **options}


def head_view(
    attention: Any = None,
    tokens: Sequence[str] | None = None,
    sentence_b_start: int | None = None,
    prettify_tokens: bool = True,
    layer: int | None = None,
    heads: Sequence[int] | None = None,
    encoder_attention: Any = None,
    decoder_attention: Any = None,
    cross_attention: Any = None,
    encoder_tokens: Sequence[str] | None = None,
    decoder_tokens: Sequence[str] | None = None,
    include_layers: Sequence[int] | None = None,
    html_action: str = "view",
    *,
    batch_index: int = 0,
    threshold: float | None = None,
    top_share: float = DEFAULT_TOP_SHARE,
    stack: str | None = None,
    encoding: str = "auto",
    aggregation: str = "raw",
    aggregations: str | Sequence[str] = "auto",
    mean_heads: bool = False,
    head_thumbnails: bool = False,
    shade_keys: bool = False,
    top_k: int | None = None,
    summary: Any = None,
) -> HeadView | DiffView:
    """The head view (V1) of a `Capture` or of BertViz-style attention.

    ``head_view(cap)`` shows every stack the capture holds; ``head_view(attention, tokens,
    sentence_b_start)`` takes a tuple of per-layer ``(batch, heads, query, key)`` tensors or arrays as
    ``model(..., output_attentions=True)`` returns them (``encoder_attention``/``decoder_attention``/
    ``cross_attention`` with ``encoder_tokens``/``decoder_tokens`` for encoder-decoders). ``layer`` and
    ``heads`` choose what is shown first; lines with weight <= ``threshold`` are not drawn (default
    `DEFAULT_THRESHOLD`; 0 at long context). ``top_share``
    in (0, 1] draws, per query row, only the fewest strongest of those lines whose weights add up to at least
    that share of the row's weight on the shown keys (1, the default: all of them); a control changes it.
    Returns a `HeadView` widget: it displays in notebooks (a static copy where widgets do not run),
    ``to_html()`` and ``save(path)`` export it, and its ``selection`` follows what the user picks.
    Called with BertViz's arguments (anything but a `Capture` as ``attention``) and ``html_action="view"``
    (the default), the view is also displayed where the call is made, as BertViz does: in a function or a
    loop too, and not again as the cell's value. ``html_action="return"`` only returns it (its ``.data``
    is the page's HTML, as BertViz's returned object has); ``head_view(cap)`` displays only as a cell's
    value, like any widget. ``encoding`` is how weights travel:
    "dense" (every weight, one byte each), "sparse" (only those above ``threshold``, with their key
    positions) or "auto" (sparse exactly when it is sure to be smaller: long inputs).
    ``aggregation`` is what is shown first, and a control switches it: "raw" (each head), "mean" (of the
    heads shown), "rollout", "value_norm" (‖α·f(x)‖ per head) or "value_norm_sum" (‖Σ_h α·f(x)‖), the
    value norms scaled per row to sum to 1. ``aggregations`` lists the ones carried besides raw and mean
    ("auto": every one the input allows, up to 512 tokens; value norms need a capture with values).
    ``mean_heads`` draws the raw weights (and per-head value norms) as the mean of the shown heads, one set of
    lines; ``head_thumbnails`` draws each head's lines into its button; ``shade_keys`` shades each key by its
    weight from the focused query. The explorer app shows its attention this way.

    Long context: a capture computed on demand (``attention="on_demand"``) too large for every weight
    (`long_payload.LONG_PAYLOAD_BYTES`), or any capture with ``top_k`` given, draws each query's ``top_k``
    strongest keys per head (default 8), computed when a layer is shown (or taken from ``summary``, what
    `analysis.long.summarise` computed for the capture's stack: no layer computed again); the view then scrolls
    through its query rows, and a hovered token's weights are asked of Python exactly (see `long_payload`).

    Given a `Comparison` (`attnscope.compare`), it is the diff view's head layout (`diff.diff_view`): head
    ``layer``-``heads[0]`` of A (0-0 by default) beside its matched head of B and their A − B.
    """
    if isinstance(attention, Comparison):
        if heads is not None and len(heads) > 1:
            raise InputError(f"the diff view opens one head of A at a time; got heads {list(heads)}")
        return diff_view(attention, layout="head", layer=layer, head=heads[0] if heads else None)
    if html_action not in ("view", "return"):
        raise InputError(f"html_action must be 'view' or 'return', got {html_action!r}")
    if encoding not in ENCODINGS:
        raise InputError(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}")
    top_share = check_top_share(top_share)
    options: dict[str, Any] = dict(
        layer=layer,
        heads=heads,
        include_layers=include_layers,
        stack=stack,
        sparse=ENCODINGS[encoding],
        aggregation=aggregation,
        aggregations=aggregations,
    )
    if threshold is not None:  # else the payload's default: DEFAULT_THRESHOLD, or 0 for each query's top keys
        options["threshold"] = threshold
    if top_k is not None:
        options["top_k"] = top_k
    if summary is not None:
        options["summary"] = summary
    payload = payload_from_inputs(
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
        from_capture=capture_payload,
        **options,
    )
    return present(
        HeadView(
            payload, top_share=top_share, mean_heads=mean_heads, head_thumbnails=head_thumbnails, shade_keys=shade_keys
        ),
        html_action,
        bertviz_style=not isinstance(attention, Capture),
    )
