"""The neuron view (V3): how one head's attention row is computed from its query and key neurons.

For a chosen stack, layer, head and query token it shows q, every k, the elementwise q×k, q·k, the
scaled q·k (and Gemma 2's softcap), any additive bias, the mask, GPT-OSS's attention sink and the
softmax, recomputed in the browser from float32 q and k; it equals the model's attention row.

``neuron_view`` takes a `ModelHandle` and text, a `Capture` holding queries and keys, or BertViz's
``show(model, model_type, tokenizer, sentence_a, sentence_b, display_mode, layer, head)`` arguments
with a transformers model and tokenizer (`show` is that function under BertViz's name).
"""

from __future__ import annotations

from typing import Any

import traitlets

from ..capture.engine import capture
from ..capture.loading import ModelHandle, wrap
from ..capture.result import Capture
from ..errors import InputError, check_range
from ..errors import count as count_of
from .compression import COMPRESSION, compressed_header
from .display import present
from .html import bundle, static_text
from .neuron_data import CAPTURE_FIELDS, NeuronData, check_filter, check_query_in_filter, default_query, neuron_data
from .widget import AttentionWidget

NEURON_MESSAGE = "attnscope-neuron-layers"
"""The custom message the module sends to ask for layers, and the reply's type (one buffer per layer)."""
DISPLAY_MODES = ("auto", "dark", "light")


class NeuronView(AttentionWidget):
    """The neuron view widget; traits ``stack``, ``layer``, ``head``, ``token`` and ``filter`` follow the user.

    ``filter`` is the sentence filter of a pair ("all", "AA", "AB", "BA", "BB": the queries' sentence, then
    the keys'): it limits the query tokens that can be chosen and the key rows shown; the softmax shown
    stays the model's, over every key. Setting it moves a query outside its sentence to that sentence's
    `default_query`; a query outside it is refused.

    ``arrays`` holds ``{role: [bytes or None per layer]}`` (see `neuron_data` for the encoding).
    Only the selected layer is sent when the widget is displayed (52 KB a layer for all-MiniLM-L6-v2
    on 17 tokens, 1.5 MB for BERT-base on 512); the module asks for another layer with a
    ``NEURON_MESSAGE`` when the user selects it, so a long input never sends every layer up front.
    A saved HTML page has no kernel to ask, so `html_state` holds every layer, or past
    `neuron_data.HTML_BUDGET` (long inputs) the selected one, and the page says so.
    """

    module = "neuron_view"
    kind = "neuron view"
    message = NEURON_MESSAGE
    _esm = bundle("neuron_view")
    _css = static_text("neuron_view.css")
    arrays = traitlets.Dict().tag(sync=True)
    stack = traitlets.Unicode().tag(sync=True)
    layer = traitlets.Int().tag(sync=True)
    head = traitlets.Int().tag(sync=True)
    token = traitlets.Dict().tag(sync=True)
    display_mode = traitlets.Unicode("auto").tag(sync=True)
    filter: traitlets.TraitType[Any, Any] = traitlets.TraitType("all").tag(
        sync=True
    )  # any value reaches `_valid_filter`, None included

    def __init__(self, data: NeuronData, display_mode: str | None = None, **kwargs: Any) -> None:
        self.neuron = data
        sel = data.selection
        super().__init__(
            header=data.header(),
            arrays=self._initial_arrays(),
            stack=sel["stack"],
            layer=sel["layer"],
            head=sel["head"],
            token={"side": "query", "index": sel["query"]},
            filter=sel["filter"],
            display_mode=check_display_mode(display_mode),
            **kwargs,
        )

    def _initial_arrays(self) -> dict[str, list[bytes | None]]:
        chosen = (self.neuron.selection["stack"], self.neuron.selection["layer"])
        return {
            role: [s.layer_bytes(i) if (role, i) == chosen else None for i in range(s.layers)]
            for role, s in self.neuron.stacks.items()
        }

    def layer_count(self, role: Any) -> int | None:
        return self.neuron.stacks[role].layers if role in self.neuron.stacks else None

    def layer_buffer(self, role: str, index: int) -> bytes:
        return self.neuron.layer_bytes(role, index)

    def _current(self) -> Any:
        return self.neuron.stacks[self.stack or self.neuron.selection["stack"]]

    @traitlets.validate("stack")
    def _valid_stack(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if value not in self.neuron.stacks:
            raise InputError(f"stack {value!r} is not in this view: it has {', '.join(self.neuron.stacks)}")
        return value

    @traitlets.observe("stack")
    def _fit_stack(self, change: dict[str, Any]) -> None:
        """Keep layer, head, filter and query inside the new stack's ranges (stacks differ in depth and
        tokens; only a stack of a sentence pair keeps a pair filter)."""
        s = self.neuron.stacks[change["new"]]
        with self.hold_trait_notifications():
            self.layer = min(self.layer, s.layers - 1)
            self.head = min(self.head, s.heads - 1)
            if self.neuron.pair_start(s.role) is None:
                self.filter = "all"
            self.token = {
                "side": "query",
                "index": self._query_in_filter(
                    min(int((self.token or {}).get("index", 0)), int(s.queries.shape[2]) - 1)
                ),
            }

    def _query_in_filter(self, index: int) -> int:
        """``index`` if the filter shows it, else the query the filter's sentence starts on."""
        role = self._current().role
        if self.filter == "all" or index in self.neuron.sentence_positions(role, self.filter[0]):
            return index
        return default_query(self.neuron, role, self.filter[0])

    @traitlets.validate("filter")
    def _valid_filter(self, proposal: dict[str, Any]) -> str:
        return check_filter(self.neuron, self._current().role, proposal["value"])

    @traitlets.observe("filter")
    def _fit_filter(self, change: dict[str, Any]) -> None:
        """Move the query into the new filter's query sentence when it is outside."""
        index = self._query_in_filter(self.query)
        if index != self.query:
            self.token = {"side": "query", "index": index}

    @traitlets.validate("layer")
    def _valid_layer(self, proposal: dict[str, Any]) -> int:
        s = self._current()
        return check_range("layer", proposal["value"], s.layers, f"the {s.role} stack")

    @traitlets.validate("head")
    def _valid_head(self, proposal: dict[str, Any]) -> int:
        s = self._current()
        return check_range("head", proposal["value"], s.heads, f"the {s.role} stack")

    @traitlets.validate("token")
    def _valid_token(self, proposal: dict[str, Any]) -> dict[str, Any]:
        value, s = proposal["value"], self._current()
        if not isinstance(value, dict) or value.get("side") != "query":
            raise InputError(f"token must be {{'side': 'query', 'index': i}}, got {value!r}")
        count = int(s.queries.shape[2])
        index = check_range(
            "query position", value.get("index"), count, f"the {s.role} stack's query of {count_of(count, 'token')}"
        )
        return {"side": "query", "index": check_query_in_filter(self.neuron, s.role, self.filter, index)}

    @traitlets.validate("display_mode")
    def _valid_mode(self, proposal: dict[str, Any]) -> str:
        return check_display_mode(proposal["value"])

    @property
    def query(self) -> int:
        """The selected query position."""
        return int(self.token["index"])

    @property
    def selection(self) -> dict[str, Any]:
        """What the user has selected: stack, layer, head, query position and sentence filter."""
        return {"stack": self.stack, "layer": self.layer, "head": self.head, "query": self.query, "filter": self.filter}

    def html_state(self) -> dict[str, Any]:
        arrays, carried = self.neuron.page_layers(self.stack, self.layer, COMPRESSION)
        return {
            "header": compressed_header(self.header),
            "arrays": arrays,
            "carried": carried,
            "stack": self.stack,
            "layer": self.layer,
            "head": self.head,
            "token": dict(self.token),
            "filter": self.filter,
            "display_mode": self.display_mode,
        }


def check_display_mode(mode: str | None) -> str:
    """``"dark"``, ``"light"``, or ``"auto"`` (None: follow the page's colour scheme)."""
    mode = "auto" if mode is None else mode
    if mode not in DISPLAY_MODES:
        raise InputError(f"display_mode must be 'dark', 'light' or None (follow the page), got {mode!r}")
    return mode


# BertViz's positional order after the model: show(model, model_type, tokenizer, sentence_a, sentence_b,
# display_mode, layer, head).
_BERTVIZ_ORDER = ("model_type", "tokenizer", "sentence_a", "sentence_b", "display_mode", "layer", "head")


def _bertviz_arguments(args: tuple[Any, ...], given: dict[str, Any]) -> dict[str, Any]:
    """Merge BertViz-style positional ``args`` with keywords, refusing a name given twice."""
    if len(args) > len(_BERTVIZ_ORDER):
        raise InputError(f"too many positional arguments: BertViz's order is (model, {', '.join(_BERTVIZ_ORDER)})")
    merged = dict(given)
    for name, value in zip(_BERTVIZ_ORDER, args):
        if merged.get(name) is not None:
            raise InputError(f"{name} was given both by position and by keyword")
        merged[name] = value
    return merged


def neuron_view(
    source: Any,
    *args: Any,
    text: str | None = None,
    text_pair: str | None = None,
    target: str | None = None,
    layer: int | None = None,
    head: int | None = None,
    query: int | None = None,
    stack: str | None = None,
    display_mode: str | None = None,
    filter: str | None = None,
    model_type: str | None = None,
    tokenizer: Any = None,
    sentence_a: str | None = None,
    sentence_b: str | None = None,
    html_action: str = "view",
) -> NeuronView:
    """The neuron view (V3) of one head's attention for one query token.

    Three ways in:

    - ``neuron_view(handle, text, text_pair=None, target=None)``: a `ModelHandle` from `attnscope.load`;
      runs the model, keeping queries, keys, attention, bias and mask (``target`` is the decoder's
      text for encoder-decoders).
    - ``neuron_view(cap)``: a `Capture` holding queries, keys and the mask (``fields="all"``).
    - ``neuron_view(model, model_type, tokenizer, sentence_a, sentence_b=None, display_mode, layer,
      head)``: BertViz's ``show`` arguments, with any transformers model and its tokenizer
      (``model_type`` is accepted and not needed).

    ``stack`` ("encoder", "decoder", "cross"), ``layer``, ``head`` and ``query`` (a token position)
    choose what is shown first; ``display_mode`` is "dark", "light" or None (follow the page).
    ``filter`` (keyword only; BertViz's ``show`` has no such argument) is the sentence filter of a pair:
    "all" (None), "AA", "AB", "BA" or "BB", the sentence of the queries shown, then of the keys shown.
    The softmax shown stays the model's, over every key; the view says what share of it the shown keys hold.
    Everything is validated before anything is drawn: bad input raises `InputError`. Returns a
    `NeuronView` widget (``save(path)``/``to_html()`` export it; ``selection`` follows the user).
    With BertViz's arguments and ``html_action="view"`` (the default) the view is also displayed where
    the call is made, as BertViz's ``show`` does (in a function or a loop too; not again as the cell's
    value); ``html_action="return"`` only returns it. The first two ways display it only as a cell's value.
    """
    if html_action not in ("view", "return"):
        raise InputError(f"html_action must be 'view' or 'return', got {html_action!r}")
    options: dict[str, Any] = dict(stack=stack, layer=layer, head=head, query=query, filter=filter)
    if isinstance(source, Capture):
        if args or any(v is not None for v in (text, text_pair, target, tokenizer, sentence_a, sentence_b)):
            raise InputError("a Capture carries its own text and tokens: pass only the capture and options")
        return NeuronView(neuron_data(source, **options), display_mode)
    if isinstance(source, ModelHandle):
        if len(args) > 2:
            raise InputError("with a ModelHandle, pass at most the text and text_pair by position")
        text, text_pair = (
            _one_of(args, 0, text, sentence_a, "text"),
            _one_of(args, 1, text_pair, sentence_b, "text_pair"),
        )
        handle = source
    else:
        if not hasattr(source, "config"):
            raise InputError(
                f"neuron_view takes a ModelHandle (attnscope.load), a Capture, or a transformers model with its "
                f"tokenizer; got {type(source).__name__}"
            )
        given = dict(
            model_type=model_type,
            tokenizer=tokenizer,
            sentence_a=sentence_a,
            sentence_b=sentence_b,
            display_mode=display_mode,
            layer=layer,
            head=head,
        )
        merged = _bertviz_arguments(args, given)
        if merged["model_type"] is not None and not isinstance(merged["model_type"], str):
            raise InputError(
                f"model_type must be a string such as 'bert' (it is not needed), got {merged['model_type']!r}"
            )
        handle = wrap(source, merged["tokenizer"])
        text = text if text is not None else merged["sentence_a"]
        text_pair = text_pair if text_pair is not None else merged["sentence_b"]
        display_mode = merged["display_mode"]
        options.update(layer=merged["layer"], head=merged["head"])
    if not isinstance(text, str) or not text.strip():
        raise InputError("the neuron view needs text to run the model on: pass a non-empty string")
    check_display_mode(display_mode)
    cap = capture(handle, text, text_pair or None, target=target, fields=CAPTURE_FIELDS, top_k=0)
    view = NeuronView(neuron_data(cap, **options), display_mode)
    return present(view, html_action, bertviz_style=not isinstance(source, ModelHandle))


def _one_of(args: tuple[Any, ...], index: int, keyword: Any, alias: Any, name: str) -> Any:
    """A value given by position, by keyword or by BertViz's name, refusing two of them at once."""
    given = [v for v in ((args[index] if index < len(args) else None), keyword, alias) if v is not None]
    if len(given) > 1:
        raise InputError(f"{name} was given more than once")
    return given[0] if given else None


def show(
    model: Any,
    model_type: str | None,
    tokenizer: Any,
    sentence_a: str,
    sentence_b: str | None = None,
    display_mode: str | None = "dark",
    layer: int | None = None,
    head: int | None = None,
    html_action: str = "view",
    *,
    filter: str | None = None,
) -> NeuronView:
    """BertViz's ``neuron_view.show`` under its own name and signature: ``from attnscope.views.neuron
    import show`` ports a BertViz notebook. Works with any transformers model (see `neuron_view`).
    ``filter`` (keyword only, attnscope's own) chooses the sentence filter shown first. With
    ``html_action="view"`` it displays the view where it is called, and returns it."""
    return neuron_view(
        model,
        model_type,
        tokenizer,
        sentence_a,
        sentence_b,
        display_mode,
        layer,
        head,
        html_action=html_action,
        filter=filter,
    )
