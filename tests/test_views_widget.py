"""V4/V8: every view is a notebook widget: binary layers sent lazily, the selection readable and
validated in Python, a static HTML copy in the display bundle, and BertViz's ``.data``."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import attnscope
from attnscope.errors import InputError
from attnscope.views.widget import LAYER_MESSAGE

from .conftest import PUB

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def pub_capture(default_model):
    return attnscope.capture(default_model, PUB)


class Sent:
    """Records what the widget sends to the front end (the comm is the transport, not the logic)."""

    def __init__(self, widget) -> None:
        self.messages: list[tuple[dict, list[bytes]]] = []
        widget.send = lambda content, buffers=None: self.messages.append((content, list(buffers or [])))


def state_of(html: str) -> dict:
    """The data a page hands to its view module."""
    return json.loads(re.search(r'<script type="application/json"[^>]*>(.*?)</script>', html, re.S).group(1))


def test_only_the_selected_layer_crosses_at_first(pub_capture):
    view = attnscope.head_view(pub_capture, layer=3)
    layers = view.layers["encoder"]
    assert [i for i, b in enumerate(layers) if b is not None] == [3]
    assert layers[3] == view.payload.layer_bytes("encoder", 3)
    assert len(layers[3]) == 12 * len(pub_capture.tokens) ** 2  # one byte per weight


def test_front_end_requests_are_answered_with_one_buffer_per_layer(pub_capture):
    view = attnscope.head_view(pub_capture)
    sent = Sent(view)
    view._handle_custom_msg({"type": LAYER_MESSAGE, "role": "encoder", "indices": [1, 4]}, [])
    ((content, buffers),) = sent.messages
    assert content == {"type": LAYER_MESSAGE, "role": "encoder", "indices": [1, 4]}
    for index, buffer in zip([1, 4], buffers):
        decoded = np.frombuffer(buffer, dtype=np.uint8).reshape(pub_capture.attentions.shape[1:]) / 255
        assert np.abs(decoded - pub_capture.attentions[index]).max() <= attnscope.views.MAX_ERROR + 1e-6


@pytest.mark.parametrize(
    "content",
    [
        {"type": LAYER_MESSAGE, "role": "decoder", "indices": [0]},
        {"type": LAYER_MESSAGE, "role": "encoder", "indices": [6, -1, True, "2"]},
        {"type": "something-else", "role": "encoder", "indices": [0]},
        ["not", "a", "dict"],
    ],
)
def test_requests_naming_no_real_layer_are_ignored(pub_capture, content):
    view = attnscope.head_view(pub_capture)
    sent = Sent(view)
    view._handle_custom_msg(content, [])
    assert sent.messages == []


def test_selection_traits_are_validated_and_readable(pub_capture):
    view = attnscope.head_view(pub_capture, layer=2, heads=[0, 5])
    assert view.selection["layer"] == 2 and view.selection["heads"] == [0, 5]
    view.layer = 4
    view.heads = [7, 3, 3]
    assert view.selection["layer"] == 4 and view.selection["heads"] == [3, 7]
    with pytest.raises(InputError, match="layer 6 is out of range: the encoder attention has layers 0-5"):
        view.layer = 6
    with pytest.raises(InputError, match="head 12 is out of range: the encoder attention has heads 0-11"):
        view.heads = [1, 12]
    with pytest.raises(InputError, match="stack 'decoder' is not in this view: it has encoder"):
        view.stack = "decoder"
    assert view.selection["layer"] == 4 and view.selection["heads"] == [3, 7]


def test_display_bundle_has_the_widget_and_a_static_copy(pub_capture):
    view = attnscope.head_view(pub_capture)
    data, _ = view._repr_mimebundle_()
    assert data[WIDGET_MIME]["model_id"] == view.model_id
    assert '<script type="module">' in data["text/html"] and "createStaticModel" in data["text/html"]
    urls = set(re.findall(r"https?://[^\s\"'`]+", data["text/html"]))
    assert urls == {"http://www.w3.org/2000/svg"}  # only the SVG namespace: nothing is fetched
    quiet = attnscope.views.HeadView(view.payload, static_fallback=False)
    assert "text/html" not in quiet._repr_mimebundle_()[0]


def test_exported_html_keeps_the_current_selection(pub_capture, tmp_path):
    view = attnscope.head_view(pub_capture)
    view.layer, view.heads, view.merge_subwords = 5, [2], True
    html = view.to_html()
    assert '"layer":5' in html and '"heads":[2]' in html and '"merge_subwords":true' in html
    assert state_of(view.data) == state_of(html)  # BertViz's html_action="return" object offers .data
    path = view.save(tmp_path / "view.html")
    saved = path.read_text(encoding="utf-8")
    assert saved.startswith("<!DOCTYPE html>") and saved.endswith("</html>\n")
    assert state_of(saved)["layer"] == 5
    assert [p.name for p in tmp_path.iterdir()] == ["view.html"]  # no temporary file left behind


def test_word_units_follow_the_tokenizer(default_model):
    cap = attnscope.capture(default_model, "Unbelievably, the girl ran.")
    seq = attnscope.head_view(cap).header["sequences"]["encoder"]
    assert seq["tokens"][:6] == ["[CLS]", "un", "bel", "ie", "va", "bly"]
    assert seq["words"][:7] == [None, 0, 0, 0, 0, 0, 1]
    assert seq["word_labels"] == ["Unbelievably", ",", "the", "girl", "ran", "."]


def test_word_units_from_bertviz_style_tokens():
    tokens = ["<|endoftext|>", "The", "Ġgirl", "Ġesc", "aped", ".", "Ġdon", "'t"]
    att = [np.tril(np.ones((1, 2, 8, 8))) / np.arange(1, 9)[:, None]]
    seq = attnscope.head_view(att, tokens).header["sequences"]["decoder"]
    assert seq["special"] == [True] + [False] * 7
    assert seq["words"] == [None, 0, 1, 2, 2, 3, 4, 4]
    assert seq["word_labels"] == ["The", "girl", "escaped", ".", "don't"]


def test_no_view_trait_takes_a_name_ipywidgets_views_reserve():
    import ipywidgets

    # DOMWidgetView treats these as references to other widgets (a "style" string broke JupyterLab).
    reserved = {"style", "layout", "tooltip", "tabbable", "_dom_classes", "description", "value"}
    base = set(ipywidgets.DOMWidget.class_trait_names(sync=True))
    for cls in (attnscope.HeadView, attnscope.ModelView, attnscope.NeuronView):
        own = set(cls.class_trait_names(sync=True)) - base
        assert own and not own & reserved, (cls.__name__, own & reserved)


def test_the_sentence_filter_of_the_head_and_model_views_is_one_of_the_five():
    """The widget's filter trait takes the five sentence filters the views draw, as the neuron view's does."""
    attention = tuple(np.full((1, 2, 4, 4), 0.25) for _ in range(2))
    for view in (attnscope.head_view, attnscope.model_view):
        widget = view(attention, ["[CLS]", "a", "[SEP]", "b"], sentence_b_start=3, html_action="return")
        widget.filter = "BA"
        assert widget.selection["filter"] == "BA"
        for bad in ("xx", "ab", ""):
            with pytest.raises(InputError) as error:
                widget.filter = bad
            assert str(error.value) == (
                f"filter {bad!r} is not a sentence filter: it is one of 'all', 'AA', 'AB', "
                "'BA', 'BB' (the first letter is the queries' sentence, the second the keys')"
            )
        assert widget.filter == "BA"


def test_top_share_is_an_option_and_a_validated_trait_apart_from_the_threshold(pub_capture):
    view = attnscope.head_view(pub_capture, top_share=0.9)
    assert view.top_share == 0.9 and view.threshold == 0.01  # two names, two meanings
    assert attnscope.head_view(pub_capture).top_share == 1.0  # off by default: every line above the threshold
    assert view.html_state()["top_share"] == 0.9  # the exported page starts where the widget is
    for bad in (0, 1.5, -0.1, "0.9", True):
        with pytest.raises(InputError, match=r"top_share must be a number in \(0, 1\]"):
            attnscope.head_view(pub_capture, top_share=bad)
    with pytest.raises(Exception, match=r"top_share must be a number in \(0, 1\]"):
        view.top_share = 0.0
    view.top_share = 0.5
    assert view.top_share == 0.5
