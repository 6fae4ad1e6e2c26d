"""M3: the head view at long context. A capture computed on demand becomes a payload of each query's strongest
keys, computed layer by layer without materialising the stack; a hovered weight is answered exactly from Python;
short captures keep today's dense payload."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

import attnscope
from attnscope.analysis.long import summarise
from attnscope.capture.lazy import LazyAttention
from attnscope.errors import InputError
from attnscope.quantise import quantise
from attnscope.views import long_payload
from attnscope.views.compression import inflate
from attnscope.views.long_payload import TopKeysPayload, capture_payload, sparse_rows
from attnscope.views.long_requests import ROWS_MESSAGE, WEIGHTS_MESSAGE
from attnscope.views.payload import payload_from_capture
from attnscope.views.widget import LAYER_MESSAGE

from .conftest import PUB
from .long_context import decode_top_layer, on_demand, top_keys

TEXT = " ".join([PUB] * 6)  # past the tiny models' 128 positions: truncated to them


@pytest.fixture(scope="module")
def llama(tiny):
    return tiny("llama")


@pytest.fixture
def lazy(llama):
    cap = on_demand(llama, TEXT, truncate=True)
    assert cap.attentions.shape[2] > 4 * cap.attentions.block_rows  # many blocks of rows
    return cap


@pytest.fixture(scope="module")
def eager(llama):
    return attnscope.capture(llama, TEXT, truncate=True)


class Sent:
    """What the widget sends to the front end."""

    def __init__(self, widget) -> None:
        self.messages: list[tuple[dict, list[bytes]]] = []
        widget.send = lambda content, buffers=None: self.messages.append((content, list(buffers or [])))


def refuse_materialising(cap, monkeypatch) -> None:
    """Any materialisation of the whole stack, or of one whole layer, raises (tiles of a few rows still fit)."""
    attentions = cap.attentions
    attentions.max_dense_bytes = 4 * attentions.shape[3] * 16

    def refuse(*_args, **_kwargs):
        raise AssertionError("the stack was materialised")

    monkeypatch.setattr(LazyAttention, "__array__", refuse)
    monkeypatch.setattr(LazyAttention, "layer", refuse)


def test_a_lazy_layer_is_each_query_top_keys_as_sparse_rows(lazy):
    payload = capture_payload(lazy, top_k=5)
    assert isinstance(payload, TopKeysPayload)
    _, heads, queries, _ = lazy.attentions.shape
    for layer in range(lazy.attentions.shape[0]):
        found = top_keys(lazy.attentions, layer, 5)
        rows = decode_top_layer(payload.layer_bytes("decoder", layer), heads, queries)
        for h in range(heads):
            for q in range(queries):
                keys, codes, _ = rows[h * queries + q]
                wanted = found.indices[h, q]
                order = np.argsort(wanted[wanted >= 0])
                assert list(keys) == list(wanted[wanted >= 0][order]), (layer, h, q)
                assert list(codes) == list(quantise(found.weights[h, q][wanted >= 0][order]))
                assert len(keys) == min(5, q + 1)  # a causal row sees q + 1 keys


def test_the_header_says_what_the_lines_are_and_what_is_offered(lazy):
    header = attnscope.head_view(lazy, top_k=6).header
    lines = header["lines"]
    assert lines["kind"] == "top_keys" and lines["k"] == 6
    assert lines["text"] == "each query's 6 strongest keys per head"
    assert "not carried and not drawn" in lines["not_drawn"]
    assert lines["model_shape"] == {"decoder": list(lazy.attentions.shape)}
    assert set(lines["not_offered"]) == {"mean", "rollout", "value_norm", "value_norm_sum"}
    (stack,) = header["stacks"]
    assert [m["name"] for m in stack["aggregation_methods"]] == ["raw"]
    assert (stack["layers"], stack["heads"], stack["query"], stack["key"]) == lazy.attentions.shape
    assert header["encoding"]["sparse"] and header["encoding"]["top_k"] == 6
    assert header["threshold"] == 0  # every carried key is drawn, not those above a threshold


def test_a_lazy_payload_never_materialises_the_stack(lazy, monkeypatch):
    refuse_materialising(lazy, monkeypatch)
    view = attnscope.head_view(lazy)  # auto: the stack is over its max_dense_bytes
    assert isinstance(view.payload, TopKeysPayload) and view.payload.top_k == long_payload.DEFAULT_TOP_K
    assert view.layers["decoder"][0] is not None and view.layers["decoder"][1] is None
    sent = Sent(view)
    view._handle_custom_msg({"type": LAYER_MESSAGE, "role": "decoder", "indices": [1]}, [])
    view.payload.settle()  # a layer is answered from the worker thread once computed
    assert sent.messages[0][1] == [view.payload.layer_bytes("decoder", 1)]
    view._handle_custom_msg({"type": WEIGHTS_MESSAGE, "id": 1, "role": "decoder", "layer": 1, "cells": [[0, 9, 3]]}, [])
    assert "weights" in sent.messages[1][0]
    _, layers = page_layers(view.to_html())  # every layer computed for the page, none materialised
    assert len(layers["decoder"]) == 2 and all(layers["decoder"])


def test_exact_hover_replies_equal_eager_attention(lazy, eager):
    view = attnscope.head_view(lazy, top_k=4, include_layers=[1], heads=[0, 2])
    sent = Sent(view)
    queries = lazy.attentions.shape[2]
    cells = [[h, q, k] for h in (0, 1, 3) for q in (0, 5, queries - 1) for k in (0, q // 2, q)]
    view._handle_custom_msg({"type": WEIGHTS_MESSAGE, "id": 7, "role": "decoder", "layer": 0, "cells": cells}, [])
    ((reply, buffers),) = sent.messages
    assert reply["type"] == WEIGHTS_MESSAGE and reply["id"] == 7 and buffers == []
    assert reply["cells"] == cells and "error" not in reply
    expected = [float(eager.attentions[1, h, q, k]) for h, q, k in cells]
    np.testing.assert_allclose(reply["weights"], expected, atol=1e-6, rtol=0)
    assert json.loads(json.dumps(reply))["weights"] == reply["weights"]  # float32 values travel as they are


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"role": "encoder", "layer": 0, "cells": [[0, 1, 1]]}, "role must be one of decoder"),
        ({"role": "decoder", "layer": 2, "cells": [[0, 1, 1]]}, "layer 2 is out of range"),
        ({"role": "decoder", "layer": True, "cells": [[0, 1, 1]]}, "layer must be an integer"),
        ({"role": "decoder", "layer": 0, "cells": []}, "cells must be a list of 1 to 4096"),
        ({"role": "decoder", "layer": 0, "cells": "0,1,1"}, "cells must be a list"),
        ({"role": "decoder", "layer": 0, "cells": [[0, 1]]}, r"cells.0 must be a \[head, query, key\] triple"),
        ({"role": "decoder", "layer": 0, "cells": [[0, 1, 1], [4, 1, 1]]}, "cells.1 head 4 is out of range"),
        ({"role": "decoder", "layer": 0, "cells": [[0, -1, 1]]}, "cells.0 query position -1 is out of range"),
        ({"role": "decoder", "layer": 0, "cells": [[0, 1, 1.5]]}, "cells.0 key position must be an integer"),
        ({"role": "decoder", "layer": 0, "cells": [[0, 0, 0]] * 4097}, "cells must be a list of 1 to 4096"),
    ],
)
def test_bad_weight_requests_are_answered_with_an_error(lazy, content, message):
    view = attnscope.head_view(lazy, top_k=4)
    sent = Sent(view)
    view._handle_custom_msg({"type": WEIGHTS_MESSAGE, "id": 3, **content}, [])
    ((reply, _),) = sent.messages
    assert reply["id"] == 3 and "weights" not in reply
    assert re.search(message, reply["error"]), reply["error"]


def test_a_dense_view_answers_weight_requests_with_an_error(eager):
    view = attnscope.head_view(eager)
    sent = Sent(view)
    view._handle_custom_msg({"type": WEIGHTS_MESSAGE, "id": "x", "role": "decoder", "layer": 0, "cells": []}, [])
    ((reply, _),) = sent.messages
    assert reply["id"] is None and "carries every weight" in reply["error"]


def test_a_short_capture_on_demand_keeps_the_dense_payload(lazy, eager):
    short, dense = payload_from_capture(lazy), payload_from_capture(eager)
    assert type(short) is type(dense) and short.header() == dense.header()
    for layer in range(eager.attentions.shape[0]):
        a = np.frombuffer(short.layer_bytes("decoder", layer), np.uint8).astype(int)
        b = np.frombuffer(dense.layer_bytes("decoder", layer), np.uint8).astype(int)
        assert np.abs(a - b).max() <= 1  # weights within 1e-6: a byte may round the other way at a half


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"aggregation": "rollout"}, "aggregation 'rollout' is not offered at long context: rollout multiplies"),
        ({"aggregation": "mean"}, "aggregation 'mean' is not offered at long context"),
        ({"aggregations": ["value_norm"]}, "aggregations 'value_norm' is not offered at long context"),
        ({"encoding": "dense"}, "a dense encoding needs every weight"),
        ({"top_k": 0}, "top_k must be a positive integer"),
        ({"top_k": True}, "top_k must be a positive integer"),
        ({"layer": 5}, "layer 5 is out of range"),
    ],
)
def test_options_a_long_view_cannot_honour_are_refused(lazy, options, message):
    with pytest.raises(InputError, match=message):
        attnscope.head_view(lazy, **{"top_k": 8, **options})


def test_top_k_needs_a_capture():
    weights = np.full((1, 1, 1, 2, 2), 0.5)
    with pytest.raises(InputError, match="top_k and summary .* apply to a Capture"):
        attnscope.head_view(list(weights), ["a", "b"], top_k=3, html_action="return")


def page_layers(html: str) -> tuple[dict, dict]:
    """A page's header and its layers' bytes (inflated when the header says they are deflated)."""
    state = json.loads(re.search(r'<script type="application/json"[^>]*>(.*?)</script>', html, re.S).group(1))
    compression = state["header"]["encoding"].get("compression")
    layers = {
        key: [None if text is None else inflate(base64.b64decode(text), compression) for text in texts]
        for key, texts in state["layers"].items()
    }
    return state["header"], layers


def test_a_page_carries_exact_weights_within_its_budget_and_says_so_past_it(lazy, eager, monkeypatch):
    _, heads, queries, _ = lazy.attentions.shape
    header, layers = page_layers(attnscope.head_view(lazy, top_k=3).to_html())
    assert header["encoding"]["exact"] == "float32" and header["lines"]["exact"]["in_html"]
    assert header["encoding"]["compression"] == "deflate-raw"
    for layer, data in enumerate(layers["decoder"]):
        rows = decode_top_layer(data, heads, queries, exact=True)
        for h in range(heads):
            keys, _, weights = rows[h * queries + queries - 1]
            np.testing.assert_allclose(weights, eager.attentions[layer, h, queries - 1, keys], atol=1e-6)
    monkeypatch.setattr(long_payload, "HTML_EXACT_BUDGET", 1000)
    view = attnscope.head_view(lazy, top_k=3)
    header, layers = page_layers(view.to_html())
    assert header["encoding"]["exact"] is None and not header["lines"]["exact"]["in_html"]
    estimate = header["lines"]["exact"]["html_bytes"]  # the rows seeing fewer than 3 keys carry fewer
    plain = sum(4 * -(-len(data) // 3) for data in layers["decoder"])  # base64 of the bytes before deflating
    assert 0 <= estimate - plain <= 2 * 4 * 3 * 3 * 4 // 3 + 8
    decode_top_layer(layers["decoder"][0], heads, queries, exact=False)


def test_computed_layers_are_kept_within_the_cache_bound(lazy, monkeypatch):
    monkeypatch.setattr(long_payload, "LAYER_CACHE", 1)
    payload = capture_payload(lazy, top_k=2)
    first = payload.layer_bytes("decoder", 0)
    payload.layer_bytes("decoder", 1)
    assert list(payload._cache) == [("decoder", 1)]
    assert payload.layer_bytes("decoder", 0) == first


def test_layers_beside_the_shown_one_are_computed_ahead_once(lazy, monkeypatch):
    payload = capture_payload(lazy, top_k=3)
    calls = []
    real = long_payload.top_keys
    monkeypatch.setattr(long_payload, "top_keys", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    futures = payload.prefetch("decoder", [1, 2, -1])  # layers 2 and -1 are not in this stack
    assert len(futures) == 1 and payload.prefetch("decoder", [1]) == []  # on its way: not asked twice
    data, _ = futures[0].result()
    assert payload.layer_bytes("decoder", 1) == data and calls == [1]  # from the cache, not computed again
    wanted = sparse_rows(top_keys(lazy.attentions, 1, 3).indices, top_keys(lazy.attentions, 1, 3).weights, True)[0]
    assert data == wanted


def test_a_widget_computes_the_next_layer_ahead(lazy):
    view = attnscope.head_view(lazy, top_k=3, layer=0)
    pending = list(view.payload._pending.values())
    for future in pending:
        future.result()
    assert ("decoder", 1) in view.payload._cache


def test_a_summary_gives_the_lines_without_computing_them_again(lazy, monkeypatch):
    summary = summarise(lazy.attentions, k=4)
    monkeypatch.setattr(long_payload, "top_keys", lambda *a, **k: pytest.fail("top keys computed again"))
    view = attnscope.head_view(lazy, summary=summary)
    assert view.payload.top_k == 4 and view.header["lines"]["k"] == 4
    for layer, top in enumerate(summary.top):
        assert view.payload.layer_bytes("decoder", layer) == sparse_rows(top.indices, top.weights, True)[0]


def test_a_summary_of_another_stack_is_refused(lazy, tiny):
    other = on_demand(tiny("mistral"), PUB)
    with pytest.raises(
        InputError,
        match=r"summary is of a stack of shape \(2, 4, 29, 29\), and this capture.s stacks are decoder \(2, 4, 128, 1",
    ):
        attnscope.head_view(lazy, summary=summarise(other.attentions, k=2))
    with pytest.raises(InputError, match="summary must be what attnscope.analysis.long.summarise returns, got dict"):
        attnscope.head_view(lazy, summary={})


def test_words_mode_stays_off_at_long_context(lazy):
    view = attnscope.head_view(lazy, top_k=2)
    with pytest.raises(InputError, match="merge_subwords merges every weight of a row, and at long context"):
        view.merge_subwords = True
    assert view.merge_subwords is False


def test_a_band_of_rows_is_answered_at_once(lazy):
    view = attnscope.head_view(lazy, top_k=4, heads=[1])
    sent = Sent(view)
    view._handle_custom_msg({"type": ROWS_MESSAGE, "role": "decoder", "layer": 1, "start": 40, "stop": 60}, [])
    ((reply, buffers),) = sent.messages
    assert reply == {"type": ROWS_MESSAGE, "role": "decoder", "layer": 1, "start": 40, "stop": 60}
    found = top_keys(lazy.attentions, 1, 4, rows=range(40, 60))
    assert buffers == [sparse_rows(found.indices, found.weights, True)[0]]
    heads = lazy.attentions.shape[1]
    rows = decode_top_layer(buffers[0], heads, 20)
    assert all(len(keys) == 4 for keys, _, _ in rows)


def test_a_layer_asked_for_is_answered_when_the_worker_has_computed_it(lazy):
    view = attnscope.head_view(lazy, top_k=4, layer=1)
    sent = Sent(view)
    view._handle_custom_msg({"type": LAYER_MESSAGE, "role": "decoder", "indices": [0, 5]}, [])
    view.payload.settle()
    ((reply, buffers),) = sent.messages
    assert reply == {"type": LAYER_MESSAGE, "role": "decoder", "indices": [0]}
    found = top_keys(lazy.attentions, 0, 4)
    assert buffers == [sparse_rows(found.indices, found.weights, True)[0]]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"role": "cross", "layer": 0, "start": 0, "stop": 4}, "role must be one of decoder"),
        ({"role": "decoder", "layer": 3, "start": 0, "stop": 4}, "layer 3 is out of range"),
        ({"role": "decoder", "layer": 0, "start": -1, "stop": 4}, "start -1 is out of range"),
        ({"role": "decoder", "layer": 0, "start": 8, "stop": 8}, "stop must be an integer from 9 to 128"),
        ({"role": "decoder", "layer": 0, "start": 0, "stop": "4"}, "stop must be an integer from 1 to 128"),
    ],
)
def test_bad_rows_requests_are_answered_with_an_error(lazy, content, message):
    view = attnscope.head_view(lazy, top_k=4)
    sent = Sent(view)
    view._handle_custom_msg({"type": ROWS_MESSAGE, **content}, [])
    ((reply, buffers),) = sent.messages
    assert buffers == [] and re.search(message, reply["error"]), reply
