"""The notebook widget each view is: anywidget's ES module + synced traits, a static-HTML fallback, HTML export.

Every view (head, model, neuron) is an `AttentionWidget` subclass. In JupyterLab, Notebook 7, VS Code
and Colab it displays as a widget whose traits (layer, heads, token, ...) follow what the user
selects, so Python can read the selection back (V8). Its display bundle also carries a static HTML
copy of the view, which front ends without a widget manager (nbviewer, GitHub, exported notebooks)
show instead. `to_html` and `save` write the same view as one self-contained file. A BertViz-style
call displays its view where it is made (`display.present`); the widget then skips being shown again
as that cell's value.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any, ClassVar

import anywidget
import traitlets

from ..errors import InputError
from ..selection import check_choice, check_choices
from .aggregated import VIEW_AGGREGATIONS, data_key
from .compression import COMPRESSION, compressed_header
from .display import already_displayed, repeated_as_cell_value
from .html import page, view_fragment, write_atomically
from .payload import Payload
from .sequences import check_filter_name

LAYER_MESSAGE = "attnscope-layers"
"""The custom message a view sends to ask for layers, and the reply's type (with one buffer per layer)."""


class AttentionWidget(anywidget.AnyWidget):
    """Base of every view: ``header`` is the view's JSON description; subclasses set ``module``, ``_esm``, ``_css``."""

    module: ClassVar[str] = ""
    kind: ClassVar[str] = "view"
    message: ClassVar[str] = LAYER_MESSAGE
    """The custom message type the module asks for layers with (the reply has the same type)."""
    header = traitlets.Dict().tag(sync=True)

    def __init__(self, *, static_fallback: bool = True, **kwargs: Any) -> None:
        self.static_fallback = static_fallback
        super().__init__(**kwargs)
        self.on_msg(self._answer)

    def layer_count(self, role: Any) -> int | None:
        """How many layers ``role`` has in this view, or None when it names no stack of the view."""
        return None

    def layer_buffer(self, role: str, index: int) -> bytes:
        """The bytes of one layer of ``role``, as the module decodes them."""
        raise NotImplementedError

    def _answer(self, _widget: Any, content: Any, _buffers: Any) -> None:
        """Send the layers the module asked for, one buffer each; requests naming no real layer are ignored."""
        if not isinstance(content, dict) or content.get("type") != self.message:
            return
        role, indices = content.get("role"), content.get("indices")
        count = self.layer_count(role) if isinstance(role, str) else None
        if not isinstance(role, str) or count is None or not isinstance(indices, list):
            return
        wanted = [i for i in indices if isinstance(i, int) and not isinstance(i, bool) and 0 <= i < count]
        if wanted:
            self.send(
                {"type": self.message, "role": role, "indices": wanted},
                buffers=[self.layer_buffer(role, i) for i in wanted],
            )

    def html_state(self) -> dict[str, Any]:
        """The values the module reads with ``model.get`` in a page without a kernel (binary as base64)."""
        raise NotImplementedError

    def fragment(self) -> str:
        """The view, in its current selection, as an HTML fragment to place in a larger page."""
        return view_fragment(self.module, self.html_state())

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        if self.static_fallback:
            data = {**data, "text/html": self.fragment()}
        return data, metadata

    @property
    def _ipython_display_(self) -> Any:
        """IPython's hook for objects that display themselves, present only to skip the displayhook's
        repeat of a view a BertViz-style call displayed in the same cell run (`display.present`).
        Otherwise None, and IPython shows `_repr_mimebundle_` as for any widget."""
        return already_displayed if repeated_as_cell_value(self) else None

    def title(self) -> str:
        model = self.header.get("model")
        return f"attnscope {self.kind}: {model}" if model else f"attnscope {self.kind}"

    def to_html(self) -> str:
        """A complete, self-contained HTML document (no network needed to display it)."""
        return page([self.fragment()], title=html.escape(self.title()))

    @property
    def data(self) -> str:
        """The complete HTML document, as ``.data`` of what BertViz returns with ``html_action="return"``."""
        return self.to_html()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write `to_html` to ``path`` atomically (never a half-written file) and return the path."""
        return write_atomically(path, self.to_html())


class PayloadWidget(AttentionWidget):
    """A view of a `Payload` (head and model views): uint8 layers as binary buffers, selection as traits.

    ``layers`` holds ``{data key: [bytes or None per layer]}``, a data key being a role or a role and a
    carried aggregation (``"encoder/rollout"``). With ``eager = False`` only the selected layer (raw,
    and the selected aggregation's) is sent at first; the module asks for others when they are shown.
    ``aggregation`` is what the view shows: "raw", "mean" (of the shown heads) or a carried aggregation.

    Layers cross the kernel channel as plain bytes, while a page without a kernel (`html_state`) carries them
    deflated (`compression`). Measured with bench/views.py's attention (12 heads): deflating one layer takes
    about 2 ms at 128 tokens (dense, to 34%) and 20 ms for a 2,048-token sparse layer (1.26 MB, to 68%) or a
    512-token dense one (to 20%), and the page must then inflate it asynchronously. The widget sends one
    layer at a time, as it is viewed, so deflating would save a request 0.4 MB at 2,048 tokens for that
    time on both ends; plain buffers keep the exchange synchronous and cost nothing to pack.
    """

    eager: ClassVar[bool] = False
    layers = traitlets.Dict().tag(sync=True)
    stack = traitlets.Unicode().tag(sync=True)
    layer = traitlets.Int(allow_none=True).tag(sync=True)
    heads = traitlets.List(traitlets.Int()).tag(sync=True)
    filter = traitlets.Unicode("all").tag(sync=True)
    token = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)
    threshold = traitlets.Float().tag(sync=True)
    hide_special = traitlets.Bool(False).tag(sync=True)
    merge_subwords = traitlets.Bool(False).tag(sync=True)
    rows = traitlets.List(traitlets.Int(), allow_none=True, default_value=None).tag(sync=True)
    columns = traitlets.List(traitlets.Int(), allow_none=True, default_value=None).tag(sync=True)
    aggregation = traitlets.Unicode("raw").tag(sync=True)

    def __init__(self, payload: Payload, **kwargs: Any) -> None:
        self.payload = payload
        selection = payload.selection
        kwargs = {
            "layer": selection["layer"],
            "heads": list(selection["heads"]),
            "aggregation": selection.get("aggregation", "raw"),
            **kwargs,
        }
        super().__init__(
            header=payload.header(),
            layers=self._initial_layers(),
            stack=selection["stack"],
            threshold=payload.threshold,
            **kwargs,
        )

    def _initial_layers(self) -> dict[str, list[bytes | None]]:
        selection = self.payload.selection
        role = selection["stack"]
        index = self.payload.layer_labels[role].index(selection["layer"])
        chosen = {(role, index), (data_key(role, selection.get("aggregation", "raw")), index)}
        return {
            key: [
                self.payload.layer_bytes(key, i) if self.eager or (key, i) in chosen else None
                for i in range(self.payload.data(key).shape[0])
            ]
            for key in self.payload.data_keys()
        }

    def layer_count(self, role: Any) -> int | None:
        return int(self.payload.data(role).shape[0]) if role in self.payload.data_keys() else None

    def layer_buffer(self, role: str, index: int) -> bytes:
        return self.payload.layer_bytes(role, index)

    @traitlets.validate("stack")
    def _valid_stack(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if value not in self.payload.stacks:
            raise InputError(f"stack {value!r} is not in this view: it has {', '.join(self.payload.stacks)}")
        return value

    @traitlets.validate("aggregation")
    def _valid_aggregation(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        offered = [
            m
            for m in VIEW_AGGREGATIONS
            if m in ("raw", "mean") or any(m in self.payload.aggregations_of(r) for r in self.payload.stacks)
        ]
        if value not in offered:
            raise InputError(f"aggregation {value!r} is not in this view: it offers {', '.join(offered)}")
        return value

    @traitlets.validate("filter")
    def _valid_filter(self, proposal: dict[str, Any]) -> str:
        return check_filter_name(proposal["value"])

    @traitlets.validate("layer")
    def _valid_layer(self, proposal: dict[str, Any]) -> int | None:
        role = self.stack or self.payload.selection["stack"]
        value, labels = proposal["value"], self.payload.layer_labels[role]
        if value is None:
            return None
        return check_choice(
            "layer", value, len(labels), f"the {role} attention", kept=_subset(labels), kept_by="include_layers"
        )

    @traitlets.validate("heads")
    def _valid_heads(self, proposal: dict[str, Any]) -> list[int]:
        role = self.stack or self.payload.selection["stack"]
        labels = self.payload.heads_of(role)
        return check_choices(
            "heads",
            proposal["value"],
            len(labels),
            f"the {role} attention",
            unit="head",
            kept=_subset(labels),
            kept_by="include_heads",
            allow_empty=True,
            merge_repeats=True,
        )

    @property
    def selection(self) -> dict[str, Any]:
        """What the user has selected in the view: stack, layer, heads, sentence filter, token, aggregation."""
        return {
            "stack": self.stack,
            "layer": self.layer,
            "heads": list(self.heads),
            "filter": self.filter,
            "token": dict(self.token) if self.token else None,
            "merge_subwords": self.merge_subwords,
            "hide_special": self.hide_special,
            "aggregation": self.aggregation,
        }

    def html_state(self) -> dict[str, Any]:
        names = (
            "stack",
            "layer",
            "heads",
            "filter",
            "threshold",
            "hide_special",
            "merge_subwords",
            "rows",
            "columns",
            "aggregation",
            "token",
        )
        return {
            "header": compressed_header(self.header),
            "layers": self.payload.layers_base64(COMPRESSION),
            **{name: getattr(self, name) for name in names},
        }


def _subset(labels: list[int]) -> list[int] | None:
    """The model's numbers a view keeps, when an include option left some out (None when it shows them all)."""
    return None if labels == list(range(len(labels))) else labels
