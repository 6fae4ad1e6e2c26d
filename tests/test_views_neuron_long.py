"""M3: the neuron view of a capture on demand. Its queries and keys are what the weights are computed from, so the
view ships them as they are (no ``query × key`` mask: each layer's mask structure in the header), any query row's
terms give the model's eager attention, and a page too large for every layer carries the selected one and says so."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

import attnscope
from attnscope.capture.lazy import LazyAttention
from attnscope.views import neuron_data as neuron_data_module
from attnscope.views.compression import inflate
from attnscope.views.neuron_data import decode_layer, neuron_data

from .conftest import PUB
from .long_context import on_demand

TEXT = " ".join([PUB] * 6)  # past the tiny models' 128 positions: truncated to them


def softmax_row(stack: dict, arrays: dict, layer: int, head: int, query: int) -> np.ndarray:
    """One row's softmax from a layer's shipped queries and keys and the header's mask, as the browser computes it
    (float64 from float32 q and k)."""
    q = arrays["queries"][head, query].astype(np.float64)
    k = arrays["keys"][stack["kv_head_of"][head]].astype(np.float64)
    scores = (k @ q) * stack["scaling"][layer]
    cap = stack["softcap"][layer]
    if cap:
        scores = np.tanh(scores / cap) * cap
    mask = stack["mask"][layer]
    keys = np.arange(len(scores))
    seen = (keys <= query) & ((query - keys < mask["window"]) if mask["window"] else True) if mask["causal"] else True
    scores = np.where(seen, scores, -np.inf)
    sink = None if stack["sinks"] is None else stack["sinks"][layer][head]
    top = max(scores.max(), sink if sink is not None else -np.inf)
    e = np.exp(scores - top)
    return e / (e.sum() + (np.exp(sink - top) if sink is not None else 0.0))


@pytest.mark.parametrize("arch", ["llama", "mistral", "gemma2", "gpt_oss"])
def test_a_capture_on_demand_ships_queries_keys_and_mask_structure_and_rebuilds_eager_rows(tiny, arch, monkeypatch):
    handle = tiny(arch)
    eager = attnscope.capture(handle, TEXT, truncate=True)
    lazy = on_demand(handle, TEXT, truncate=True)  # fields: attentions only

    def refuse(*_args, **_kwargs):
        raise AssertionError("the stack was materialised")

    monkeypatch.setattr(LazyAttention, "__array__", refuse)
    monkeypatch.setattr(LazyAttention, "layer", refuse)
    data = neuron_data(lazy)
    (stack,) = data.header()["stacks"]
    assert [part["name"] for part in stack["layout"]] == ["queries", "keys"]  # no query × key mask
    layers, heads, queries, keys = lazy.attentions.shape
    assert stack["layer_bytes"] == 4 * (heads * queries + stack["kv_heads"] * keys) * stack["head_dim"]
    assert all(m["causal"] for m in stack["mask"])
    for layer in range(layers):
        arrays = decode_layer(stack, data.layer_bytes("decoder", layer))
        for head in range(heads):
            for query in (0, 7, queries // 2, queries - 1):
                row = softmax_row(stack, arrays, layer, head, query)
                np.testing.assert_allclose(row, eager.attentions[layer, head, query], atol=1e-6, rtol=0, err_msg=arch)


def test_a_page_over_its_budget_carries_the_selected_layer_and_says_so(tiny, monkeypatch):
    lazy = on_demand(tiny("llama"), TEXT, truncate=True)
    view = attnscope.neuron_view(lazy, layer=1, head=2, query=40)
    state = json.loads(re.search(r'<script type="application/json"[^>]*>(.*?)</script>', view.to_html(), re.S)[1])
    assert all(state["arrays"]["decoder"]) and state["carried"] == ""
    monkeypatch.setattr(neuron_data_module, "HTML_BUDGET", 1000)
    state = json.loads(re.search(r'<script type="application/json"[^>]*>(.*?)</script>', view.to_html(), re.S)[1])
    assert state["arrays"]["decoder"][0] is None
    compression = state["header"]["encoding"]["compression"]
    carried_bytes = inflate(base64.b64decode(state["arrays"]["decoder"][1]), compression)
    assert carried_bytes == view.neuron.layer_bytes("decoder", 1)
    carried = r"this page carries the decoder stack's layer 1 only: every layer would take \d+ MB"
    assert re.match(carried, state["carried"])
