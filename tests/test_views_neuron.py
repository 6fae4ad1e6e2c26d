"""V3/V5/V7/V8: the neuron view's data: three ways in, errors before rendering, exact float32 q and k.

Encoding under test: per stack and layer, one little-endian blob of float32 queries (heads, query,
head_dim), float32 keys (kv_heads, key, head_dim), float32 bias (heads, query, key) when the model adds
one, and uint8 allowed (query, key).
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

import attnscope
from attnscope.capture.loading import wrap
from attnscope.errors import AttnscopeError, InputError
from attnscope.views.compression import inflate
from attnscope.views.neuron import NEURON_MESSAGE, NeuronView, neuron_view, show
from attnscope.views.neuron_data import CAPTURE_FIELDS, decode_layer

from .conftest import PUB


@pytest.fixture(scope="module")
def pub(default_model):
    return attnscope.capture(default_model, PUB, fields=CAPTURE_FIELDS)


def shipped(view: NeuronView, role: str, layer: int) -> dict[str, np.ndarray]:
    """A layer as the browser decodes it from the static page's base64 (inflated, as its header says)."""
    state = view.html_state()
    stack = next(s for s in state["header"]["stacks"] if s["role"] == role)
    blob = base64.b64decode(state["arrays"][role][layer])
    return decode_layer(stack, inflate(blob, state["header"]["encoding"].get("compression")))


def test_a_handle_and_text_capture_what_the_view_needs(default_model, pub):
    view = neuron_view(default_model, PUB)
    assert view.selection == {
        "stack": "encoder",
        "layer": 0,
        "head": 0,
        "query": 1,
        "filter": "all",
    }  # first non-special token
    assert view.header["sequences"]["encoder"]["tokens"] == pub.tokens.display
    for layer in (0, 5):
        layer_data = shipped(view, "encoder", layer)
        assert np.array_equal(layer_data["queries"], pub.main.queries[layer])  # bit-exact float32
        assert np.array_equal(layer_data["keys"], pub.main.keys[layer])
        assert np.array_equal(layer_data["allowed"].astype(bool), pub.main.allowed[layer])
        assert "bias" not in layer_data


def test_a_capture_is_taken_as_is_and_ships_the_same_bytes(default_model, pub):
    full = attnscope.capture(default_model, PUB, fields="all")
    a, b = neuron_view(full, layer=3, head=7, query=9), neuron_view(default_model, PUB)
    assert a.selection == {"stack": "encoder", "layer": 3, "head": 7, "query": 9, "filter": "all"}
    assert a.html_state()["arrays"] == b.html_state()["arrays"]


def test_payload_size_of_the_default_model_on_17_tokens(pub):
    view = neuron_view(pub)
    stack = view.header["stacks"][0]
    assert [(p["name"], p["shape"]) for p in stack["layout"]] == [
        ("queries", [12, 17, 32]),
        ("keys", [12, 17, 32]),
        ("allowed", [17, 17]),
    ]
    assert stack["layer_bytes"] == 2 * 12 * 17 * 32 * 4 + 17 * 17 == 52_513
    assert view.neuron.nbytes() == 6 * 52_513 == 315_078
    assert len(json.dumps(view.header)) < 4000  # the header carries no arrays
    # the widget sends only the selected layer at first; the static page carries all of them
    assert [b is not None for b in view.arrays["encoder"]] == [True] + [False] * 5
    assert all(isinstance(s, str) for s in view.html_state()["arrays"]["encoder"])


def test_other_layers_are_sent_when_the_module_asks(pub, monkeypatch):
    view = neuron_view(pub)
    sent = []
    monkeypatch.setattr(view, "send", lambda content, buffers=None: sent.append((content, buffers)))
    view._answer(view, {"type": NEURON_MESSAGE, "role": "encoder", "indices": [2, 99, True, -1]}, [])
    view._answer(view, {"type": "attnscope-layers", "role": "encoder", "indices": [3]}, [])  # the head view's
    view._answer(view, {"type": NEURON_MESSAGE, "role": "cross", "indices": [0]}, [])
    assert len(sent) == 1
    content, buffers = sent[0]
    assert content == {"type": NEURON_MESSAGE, "role": "encoder", "indices": [2]}
    assert buffers == [view.neuron.layer_bytes("encoder", 2)]


def test_grouped_keys_ship_once_per_key_value_head(tiny):
    cap = attnscope.capture(tiny("llama"), "The girl ran to a local pub.", fields=CAPTURE_FIELDS)
    view = neuron_view(cap)
    stack = view.header["stacks"][0]
    assert stack["heads"] == 4 and stack["kv_heads"] == 2 and stack["kv_head_of"] == [0, 0, 1, 1]
    layer = shipped(view, "decoder", 1)
    assert np.array_equal(layer["keys"][stack["kv_head_of"]], cap.main.keys[1])
    assert view.selection["query"] == len(cap.tokens) - 1  # causal: the last token sees every key


def test_t5_ships_its_bias_and_every_stack(tiny):
    view = neuron_view(tiny("t5"), "The girl ran.", target="She ran home.")
    assert [s["role"] for s in view.header["stacks"]] == ["encoder", "decoder", "cross"]
    assert all(s["has_bias"] for s in view.header["stacks"])
    cross = view.header["stacks"][2]
    assert (cross["query_tokens"], cross["key_tokens"]) == ("decoder", "encoder")
    assert "bias" in shipped(view, "encoder", 0)


def test_softcap_and_sinks_travel_in_the_header(tiny):
    gemma = neuron_view(tiny("gemma2"), "The girl ran.").header["stacks"][0]
    oss = neuron_view(tiny("gpt_oss"), "The girl ran.").header["stacks"][0]
    assert gemma["softcap"] == [0.5, 0.5] and gemma["sinks"] is None
    assert oss["sinks"] is not None and len(oss["sinks"]) == 2 and len(oss["sinks"][0]) == 4


def test_bertviz_show_arguments_with_a_transformers_model_and_tokenizer(default_model):
    hf, tok = default_model.model, default_model.tokenizer
    view = neuron_view(hf, "bert", tok, "The girl ran.", "She left.", "light", 2, 3)
    assert view.selection["layer"] == 2 and view.selection["head"] == 3 and view.display_mode == "light"
    assert view.header["sequences"]["encoder"]["sentence_b_start"] is not None
    same = show(hf, "bert", tok, "The girl ran.", layer=1, head=0)
    assert same.display_mode == "dark" and same.selection["layer"] == 1  # BertViz's default mode
    by_keyword = neuron_view(hf, model_type="bert", tokenizer=tok, sentence_a="The girl ran.")
    assert by_keyword.header["sequences"]["encoder"]["tokens"] == same.header["sequences"]["encoder"]["tokens"]


def test_wrap_describes_a_model_the_caller_loaded(default_model, tiny):
    handle = wrap(default_model.model, default_model.tokenizer)
    assert handle.kind == "encoder" and handle.stacks == default_model.stacks
    gpt2 = tiny("gpt2")
    assert wrap(gpt2.model, gpt2.tokenizer).kind == "decoder" and wrap(gpt2.model, gpt2.tokenizer).has_lm_head
    with pytest.raises(AttnscopeError, match="expected a transformers model"):
        wrap(object(), default_model.tokenizer)
    with pytest.raises(AttnscopeError, match="expected the model's transformers tokenizer"):
        wrap(default_model.model, None)


def test_a_capture_without_queries_and_keys_is_refused_with_how_to_capture(default_model):
    cap = attnscope.capture(default_model, PUB)  # the default fields: attentions and hidden states
    with pytest.raises(InputError, match=r"needs queries, keys, allowed .* fields=\["):
        neuron_view(cap)


def test_a_t5_capture_without_its_bias_is_refused(tiny):
    cap = attnscope.capture(
        tiny("t5"), "The girl ran.", target="She", fields=["attentions", "queries", "keys", "allowed"]
    )
    with pytest.raises(InputError, match="do not rebuild its attention .* include the bias"):
        neuron_view(cap)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(layer=6), "layer 6 is out of range: the encoder stack has layers 0-5"),
        (dict(head=12), "head 12 is out of range: the encoder stack has heads 0-11"),
        (dict(query=17), "query position 17 is out of range"),
        (dict(layer=-1), "layer -1 is out of range"),
        (dict(stack="cross"), "stack 'cross' is not in this capture: it has encoder"),
        (dict(display_mode="sepia"), "display_mode must be 'dark', 'light' or None"),
    ],
)
def test_bad_selections_are_refused_before_anything_is_drawn(pub, options, message):
    with pytest.raises(InputError, match=message):
        neuron_view(pub, **options)


def test_bad_call_shapes_are_refused(default_model, pub):
    with pytest.raises(InputError, match="a Capture carries its own text"):
        neuron_view(pub, "more text")
    with pytest.raises(InputError, match="needs text"):
        neuron_view(default_model, "  ")
    with pytest.raises(InputError, match="given more than once"):
        neuron_view(default_model, "a", text="b")
    with pytest.raises(InputError, match="too many positional arguments"):
        neuron_view(default_model.model, *range(8))
    with pytest.raises(InputError, match="takes a ModelHandle .* got str"):
        neuron_view("bert-base-uncased", "text")
    with pytest.raises(InputError, match="html_action"):
        neuron_view(pub, html_action="show")


def test_selection_traits_are_validated_and_follow_stack_changes(tiny):
    view = neuron_view(
        tiny("bart"), "The girl ran to a local pub.", target="She went home.", stack="decoder", layer=2, head=3
    )
    with pytest.raises(InputError, match="layer 3 is out of range: the decoder stack has layers 0-2"):
        view.layer = 3
    with pytest.raises(InputError, match="query position 99 is out of range"):
        view.token = {"side": "query", "index": 99}
    with pytest.raises(InputError, match="stack 'middle' is not in this view"):
        view.stack = "middle"
    view.stack = "encoder"  # two layers only: the selection moves inside the new stack
    assert view.selection["stack"] == "encoder" and view.layer == 1 and view.head == 3
    assert view.selection["query"] < len(view.header["sequences"]["encoder"]["tokens"])


def test_the_widget_state_carries_one_binary_buffer_and_a_static_fallback(default_model):
    from ipywidgets.widgets.widget import _remove_buffers

    view = neuron_view(default_model, PUB, layer=2)
    state, paths, buffers = _remove_buffers(view.get_state())
    assert paths == [["arrays", "encoder", 2]] and [len(b) for b in buffers] == [52_513]
    assert state["token"] == {"side": "query", "index": 1} and state["display_mode"] == "auto"
    data, _ = view._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    assert 'class="attnscope-host"' in data["text/html"] and ".attnscope-nv {" in data["text/html"]
