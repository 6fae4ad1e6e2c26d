"""Standalone pages carry their layers deflated: exactly the layer bytes once inflated, and the header says so.

The widget's buffers and the server's ``/api/attention`` layers stay plain bytes (no ``compression`` in their
header); a page (``to_html``, a notebook's static copy, an atlas page) carries raw DEFLATE, which the browser
inflates with ``DecompressionStream("deflate-raw")`` (tests/browser/test_app_head_view_parity.py draws both).
"""

from __future__ import annotations

import base64
import json
import re
import zlib

import numpy as np
import pytest
import torch

import attnscope
from attnscope.views.compression import COMPRESSION, compressed_header, deflate, inflate, to_base64

from .conftest import PUB


def softmax_layers(layers: int = 3, heads: int = 4, n: int = 5, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """BertViz's input: one (batch=1, heads, query, key) tensor per layer, rows summing to 1."""
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.softmax(torch.randn(1, heads, n, n, generator=g) * 3, dim=-1) for _ in range(layers))


def page_state(html: str) -> dict:
    """The one view state a page carries (its JSON data script)."""
    (script,) = re.findall(r'<script type="application/json" id="[^"]+-data">(.*?)</script>', html, re.S)
    return json.loads(script)


@pytest.mark.parametrize(("view", "encoding"), [("head_view", "dense"), ("head_view", "sparse"), ("model_view", None)])
def test_a_pages_layers_inflate_to_exactly_the_layer_bytes_and_its_header_names_the_compression(view, encoding):
    tokens = [f"t{i}" for i in range(40)]
    options = {"encoding": encoding} if encoding else {}  # the model view is always dense
    shown = getattr(attnscope, view)(
        softmax_layers(n=40), tokens, aggregations=["rollout"], html_action="return", **options
    )
    payload = shown.payload
    state = page_state(shown.to_html())
    assert state["header"]["encoding"] == {**payload.encoding(), "compression": "deflate-raw"}
    assert payload.sparse is (encoding == "sparse")
    assert list(state["layers"]) == payload.data_keys() == ["encoder", "encoder/rollout"]
    for key in payload.data_keys():
        for i, text in enumerate(state["layers"][key]):
            packed = base64.b64decode(text)
            assert zlib.decompress(packed, -15) == payload.layer_bytes(key, i)  # raw DEFLATE, no zlib header
            assert len(packed) < len(payload.layer_bytes(key, i))


def test_the_widget_and_the_server_send_plain_bytes(default_model):
    """The kernel's buffers and the API's layers are read as they are: no compression in their headers."""
    cap = attnscope.capture(default_model, PUB)
    view = attnscope.head_view(cap)
    assert "compression" not in view.header["encoding"]
    assert view.layers["encoder"][0] == view.payload.layer_bytes("encoder", 0)
    assert (
        view.payload.layers_base64()["encoder"][2] == base64.b64encode(view.payload.layer_bytes("encoder", 2)).decode()
    )
    assert view.html_state()["header"]["encoding"]["compression"] == COMPRESSION


def test_a_neuron_views_page_carries_its_arrays_deflated(default_model):
    view = attnscope.neuron_view(default_model, PUB)
    state = page_state(view.to_html())
    assert state["header"]["encoding"]["compression"] == "deflate-raw"
    assert "compression" not in view.header["encoding"]
    stack = state["header"]["stacks"][0]
    for layer, text in enumerate(state["arrays"][stack["role"]]):
        blob = inflate(base64.b64decode(text), "deflate-raw")
        assert blob == view.neuron.layer_bytes(stack["role"], layer)
        assert len(blob) == stack["layer_bytes"]


def test_deflate_and_inflate_round_trip_and_unknown_compressions_are_refused():
    data = np.random.default_rng(0).integers(0, 8, 10_000, dtype=np.uint8).tobytes()
    assert inflate(deflate(data), "deflate-raw") == data
    assert inflate(data, None) == data
    assert base64.b64decode(to_base64(data, None)) == data
    assert zlib.decompress(base64.b64decode(to_base64(data)), -15) == data
    with pytest.raises(ValueError, match="unknown compression 'gzip': layers are plain \\(None\\) or 'deflate-raw'"):
        inflate(data, "gzip")
    with pytest.raises(ValueError, match="unknown compression 'zstd'"):
        to_base64(data, "zstd")
    header = {"version": 1, "encoding": {"dtype": "uint8"}}
    assert compressed_header(header) == {"version": 1, "encoding": {"dtype": "uint8", "compression": "deflate-raw"}}
    assert header == {"version": 1, "encoding": {"dtype": "uint8"}}  # a copy: the widget's header is left as it is
    assert compressed_header(header, None) is header


def test_a_page_of_128_tokens_is_at_least_twice_smaller_than_with_plain_layers():
    """The issue's input shape at 128 tokens (12 layers x 12 heads, softmax of spread scores): the deflated
    layers are under half the plain ones (measured 34%: views/compression.py)."""
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((12, 1, 12, 128, 128)) * rng.uniform(1.0, 3.5, size=(12, 1, 12, 1, 1))
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    shown = attnscope.head_view(list(weights), [f"w{i}" for i in range(128)], aggregations=[], html_action="return")
    plain = sum(len(shown.payload.layer_bytes("encoder", i)) for i in range(12))
    state = page_state(shown.to_html())
    deflated = sum(len(base64.b64decode(text)) for text in state["layers"]["encoder"])
    assert deflated < plain / 2
