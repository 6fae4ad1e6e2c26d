"""V1/V5/V7: the head view's payload: BertViz-style inputs, validation before rendering, uint8 precision."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
import torch

import attnscope
from attnscope.analysis.aggregate import combine_heads, rollout
from attnscope.errors import InputError
from attnscope.views import MAX_ERROR, payload_from_arrays, payload_from_capture, quantise

from .conftest import PUB


def softmax_layers(layers: int = 3, heads: int = 4, n: int = 5, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """BertViz's input: one (batch=1, heads, query, key) tensor per layer, rows summing to 1."""
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.softmax(torch.randn(1, heads, n, n, generator=g), dim=-1) for _ in range(layers))


def test_quantisation_error_is_at_most_one_510th():
    w = np.random.default_rng(0).random((4, 6, 50, 50))
    decoded = quantise(w).astype(np.float64) / 255
    assert np.abs(decoded - w).max() <= MAX_ERROR + 1e-12
    assert MAX_ERROR == pytest.approx(1 / 510)
    assert quantise(np.array([0.0, 1.0, 0.5, 1 / 510 - 1e-9]))[...].tolist() == [0, 255, 128, 0]


def test_capture_payload_holds_uint8_layers_in_base64(default_model):
    cap = attnscope.capture(default_model, PUB)
    payload = payload_from_capture(cap)
    assert payload.stacks["encoder"].dtype == np.uint8
    layers = payload.layers_base64()["encoder"]
    assert len(layers) == cap.attentions.shape[0]
    raw = np.frombuffer(base64.b64decode(layers[2]), dtype=np.uint8).reshape(cap.attentions.shape[1:])
    assert np.abs(raw / 255 - cap.attentions[2]).max() <= MAX_ERROR + 1e-6
    header = payload.header()
    assert header["sequences"]["encoder"]["tokens"] == cap.tokens.display
    assert header["sequences"]["encoder"]["special"] == cap.tokens.special
    assert header["stacks"][0]["causal"] is False
    assert header["encoding"] == {
        "dtype": "uint8",
        "scale": 255,
        "layout": "(heads, query, key) row-major",
        "sparse": False,
    }
    # The header carries no weights: it stays small whatever the layer count.
    assert len(json.dumps(header)) < 2000


def test_payload_is_one_byte_per_weight(default_model):
    cap = attnscope.capture(default_model, PUB)
    assert payload_from_capture(cap, aggregations=[]).nbytes() == cap.attentions.size
    layers, heads, n, _ = cap.attentions.shape  # a carried rollout adds one byte per weight of one "head" a layer
    assert payload_from_capture(cap, aggregations=["rollout"]).nbytes() == cap.attentions.size + layers * n * n


def test_bertviz_arguments_with_torch_tensors_and_sentence_pair():
    attention = softmax_layers(n=6)
    tokens = ["[CLS]", "a", "[SEP]", "Ġb", "▁c", "[SEP]"]
    payload = payload_from_arrays(attention, tokens, sentence_b_start=3, layer=2, heads=[1, 3])
    header = payload.header()
    assert header["sequences"]["encoder"]["tokens"] == ["[CLS]", "a", "[SEP]", "b", "c", "[SEP]"]
    assert header["sequences"]["encoder"]["sentence_b_start"] == 3
    assert header["selection"] == {"stack": "encoder", "layer": 2, "heads": [1, 3], "aggregation": "raw"}
    expected = np.rint(attention[1][0].numpy().astype(np.float64) * 255)
    assert (payload.stacks["encoder"][1] == expected).all()


def test_causal_attention_is_flagged_as_decoder():
    att = [np.tril(np.ones((1, 2, 4, 4))) / np.arange(1, 5)[:, None]]
    payload = payload_from_arrays(att, ["a", "b", "c", "d"])
    assert list(payload.stacks) == ["decoder"]
    assert payload.header()["stacks"][0]["causal"] is True


def test_encoder_decoder_arguments_make_three_stacks():
    enc, dec = softmax_layers(n=5), softmax_layers(n=3, seed=1)
    cross = tuple(torch.softmax(torch.randn(1, 4, 3, 5), -1) for _ in range(3))
    payload = payload_from_arrays(
        encoder_attention=enc,
        decoder_attention=dec,
        cross_attention=cross,
        encoder_tokens=list("abcde"),
        decoder_tokens=list("xyz"),
    )
    stacks = {s["role"]: s for s in payload.header()["stacks"]}
    assert list(stacks) == ["encoder", "decoder", "cross"]
    assert (stacks["cross"]["query_tokens"], stacks["cross"]["key_tokens"]) == ("decoder", "encoder")
    assert (stacks["cross"]["query"], stacks["cross"]["key"]) == (3, 5)


def test_include_layers_keeps_model_layer_numbers():
    payload = payload_from_arrays(softmax_layers(layers=4), list("abcde"), include_layers=[1, 3], layer=3)
    assert payload.header()["stacks"][0]["layer_labels"] == [1, 3]
    assert payload.selection["layer"] == 3
    assert payload.stacks["encoder"].shape[0] == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(tokens=list("abcd")), "encoder attention has 5 query positions but 4 encoder tokens were given"),
        (dict(tokens=list("abcde"), layer=7), "layer 7 is out of range: the encoder attention has layers 0-2"),
        (dict(tokens=list("abcde"), heads=[0, 4]), "head 4 is out of range: the encoder attention has heads 0-3"),
        (
            dict(tokens=list("abcde"), batch_index=1),
            "batch_index 1 is out of range: attention (batch size 1) has only batch index 0",
        ),
        (
            dict(tokens=list("abcde"), sentence_b_start=9),
            "sentence_b_start 9 is out of range: the encoder sequence of 5 tokens has token positions 0-4",
        ),
        (dict(tokens=[]), "tokens are empty"),
        (dict(tokens="abcde"), "tokens is one string ('abcde'): pass one string per token"),
        (dict(tokens=list("abcde"), include_layers=[0, 5]), "layer 5 is out of range"),
        (dict(tokens=list("abcde"), threshold=1.5), "threshold must be a number in [0, 1)"),
    ],
)
def test_bad_arguments_raise_input_errors(kwargs, message):
    with pytest.raises(InputError) as err:
        attnscope.head_view(softmax_layers(n=5), **kwargs)
    assert message in str(err.value)


def test_nan_negative_and_unnormalised_weights_are_refused():
    att = [a.clone() for a in softmax_layers(n=4)]
    att[1][0, 2, 1, 3] = float("nan")
    with pytest.raises(
        InputError, match=r"NaN or infinite weights, first at \(layer, head, query, key\) = \(1, 2, 1, 3\)"
    ):
        payload_from_arrays(att, list("abcd"))
    att = [a.clone() for a in softmax_layers(n=4)]
    att[0][0, 0, 0, 0] = -0.5
    with pytest.raises(InputError, match="negative weights"):
        payload_from_arrays(att, list("abcd"))
    scores = [torch.randn(1, 4, 4, 4) * 10 for _ in range(2)]
    with pytest.raises(InputError, match="weights above 1"):
        payload_from_arrays([s.abs() for s in scores], list("abcd"))


def test_wrong_dimensions_and_empty_attention_are_refused():
    with pytest.raises(InputError, match=r"layer 0 has 3 dimensions"):
        payload_from_arrays([np.full((2, 4, 4), 0.25)], list("abcd"))
    with pytest.raises(InputError, match="layer 1 has shape"):
        payload_from_arrays([np.full((1, 2, 4, 4), 0.25), np.full((1, 3, 4, 4), 0.25)], list("abcd"))
    with pytest.raises(InputError, match=r"attention is an empty tuple\. If it is outputs\[-1\]"):
        payload_from_arrays((), list("abcd"))
    with pytest.raises(InputError, match="attention is None: the model ran without attention weights"):
        payload_from_arrays(None, list("abcd"))
    with pytest.raises(InputError, match="no attention given"):
        payload_from_arrays(None, None)
    with pytest.raises(InputError, match="is empty"):
        payload_from_arrays([np.zeros((1, 0, 4, 4))], list("abcd"))


def test_capture_view_checks_layer_and_head_against_the_model(default_model):
    cap = attnscope.capture(default_model, PUB)
    with pytest.raises(InputError, match="layer 6 is out of range: the encoder attention has layers 0-5"):
        attnscope.head_view(cap, layer=6)
    with pytest.raises(InputError, match="head 12 is out of range: the encoder attention has heads 0-11"):
        attnscope.head_view(cap, heads=[12])
    with pytest.raises(InputError, match="stack 'cross' is not in this view"):
        attnscope.head_view(cap, stack="cross")


def test_html_export_is_self_contained_and_escapes_tokens(tmp_path):
    tokens = ["<img src=x onerror=alert(1)>", "</script>", "&amp;", "b", "c"]
    view = attnscope.head_view(softmax_layers(n=5), tokens)
    html = view.to_html()
    assert "</script><" not in html.split('type="application/json"')[1].split("</script>")[0]
    assert "<img" not in html
    assert set(re.findall(r"https?://[^\s\"'`]+", html)) == {"http://www.w3.org/2000/svg"}  # a namespace, not a fetch
    assert "require(" not in html
    path = view.save(tmp_path / "view.html")
    saved = path.read_text(encoding="utf-8")
    assert saved.startswith("<!DOCTYPE html>") and saved.endswith("</html>\n")
    assert path.stat().st_size > 10_000
    assert list(tmp_path.iterdir()) == [path]  # the temporary file was renamed, not left behind


def test_sparse_layers_decode_to_the_weights_above_the_threshold():
    layers = softmax_layers(layers=2, heads=3, n=40, seed=5)
    dense = payload_from_arrays(layers, [f"t{i}" for i in range(40)])
    sparse = payload_from_arrays(layers, [f"t{i}" for i in range(40)], sparse=True, threshold=0.05)
    assert sparse.header()["encoding"]["sparse"] is True and sparse.header()["encoding"]["index_bytes"] == 2
    raw = sparse.layer_bytes("encoder", 1)
    rows = 3 * 40
    starts = np.frombuffer(raw, dtype="<u4", count=rows + 1)
    count = int(starts[-1])
    keys = np.frombuffer(raw, dtype="<u2", count=count, offset=4 * (rows + 1))
    values = np.frombuffer(raw, dtype=np.uint8, count=count, offset=4 * (rows + 1) + 2 * count)
    assert len(raw) == 4 * (rows + 1) + 3 * count
    rebuilt = np.zeros((rows, 40), dtype=np.uint8)
    for r in range(rows):
        rebuilt[r, keys[starts[r] : starts[r + 1]]] = values[starts[r] : starts[r + 1]]
    expected = dense.stacks["encoder"][1].reshape(rows, 40).copy()
    expected[expected / 255 <= 0.05] = 0
    assert np.array_equal(rebuilt, expected) and count == int((expected > 0).sum())


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda w: np.full_like(w, np.nan), r"attention holds NaN or infinite weights, first at .* = \(0, 0, 0, 0\)"),
        (lambda w: -w, r"attention holds negative weights \(min -"),
        (lambda w: np.where(np.triu(np.ones(w.shape[-2:]), 1) > 0, np.nan, w), r"attention holds NaN or infinite"),
        (lambda w: np.where(np.triu(np.ones(w.shape[-2:]), 1) > 0, -np.inf, w), r"attention holds NaN or infinite"),
    ],
)
def test_invalid_bertviz_weights_are_named_by_their_argument_not_a_guessed_stack(make, expected):
    """The field report: an encoder's weights with NaN or negative values were called "decoder attention"
    (their upper triangle holds no positive weight, so they looked causal), while the same input's other
    errors said "encoder attention"."""
    valid = np.stack(
        [layer.numpy() for layer in softmax_layers(n=4)]
    )  # (layers, batch, heads, query, key), an encoder's
    with pytest.raises(InputError, match="^encoder attention has 4 query positions but 3 encoder tokens were given"):
        payload_from_arrays(list(valid), list("abc"))
    for tokens in (list("abcd"), list("abc")):
        with pytest.raises(InputError, match="^" + expected) as error:
            payload_from_arrays(list(make(valid)), tokens)
        assert "decoder" not in str(error.value) and "encoder" not in str(error.value)


def test_a_valid_causal_stack_is_still_read_as_a_decoder():
    causal = np.tril(np.ones((4, 4)))
    weights = causal / causal.sum(axis=-1, keepdims=True)
    payload = payload_from_arrays([weights[None, None]], list("abcd"))
    assert list(payload.stacks) == ["decoder"]
    with pytest.raises(InputError, match="^decoder attention has 4 query positions but 3 decoder tokens were given"):
        payload_from_arrays([weights[None, None]], list("abc"))
    with pytest.raises(InputError, match="^encoder attention holds NaN"):
        payload_from_arrays(encoder_attention=[np.full((1, 1, 4, 4), np.nan)], encoder_tokens=list("abcd"))


def test_quantise_rounds_float32_weights_as_float64_would_at_every_rounding_boundary():
    """Weights are widened before they are scaled: float32 products round some weights just off a boundary
    (k + 0.5) / 255 onto it, and rint's half-to-even would then move them a byte (0.5 / 255 in float32 is one)."""
    bounds = np.concatenate([(np.arange(256) + 0.5) / 255, np.arange(256) / 255]).astype(np.float32)
    up, down, near = bounds, bounds, [bounds]
    for _ in range(3):  # every float32 within 3 ulps of each boundary
        up, down = np.nextafter(up, np.float32(2)), np.nextafter(down, np.float32(-1))
        near += [up, down]
    weights = np.unique(np.concatenate(near)).astype(np.float32)
    widened = np.rint(np.clip(weights.astype(np.float64), 0, 1) * 255).astype(np.uint8)
    in_float32 = np.rint(np.clip(weights * np.float32(255), 0, 255)).astype(np.uint8)
    assert (in_float32 != widened).any()  # the trap is real: this input tells the two apart
    assert np.array_equal(quantise(weights), widened)
    assert quantise(np.float32(0.5) / np.float32(255)).tolist() == 1
    # shapes: several chunks per (query, key) matrix, strided input, 7 bits, values clipped
    rng = np.random.default_rng(2)
    large = rng.random((3, 1100, 1500), dtype=np.float32)  # codes past 4 MB: an anonymous map, not numpy's memory
    codes = quantise(large)
    assert codes.flags.writeable and codes.dtype == np.uint8 and codes.shape == large.shape
    strided = rng.random((3, 8, 9))[:, ::2, ::3] * 1.4 - 0.2
    for array in (large, rng.random((2, 3, 70, 1000), dtype=np.float32), strided):
        for bits in (8, 7):
            top = 2**bits - 1
            assert np.array_equal(quantise(array, bits), np.rint(np.clip(array.astype(np.float64), 0, 1) * top))


def test_sparse_rows_keep_exactly_the_bytes_that_decode_above_the_threshold():
    """A byte is kept when byte / 255 > threshold, compared as the browser decodes it: a threshold that is a
    byte's own value keeps only the bytes above it; threshold 0 keeps every non-zero byte."""
    layers = softmax_layers(layers=2, heads=3, n=70, seed=7)
    tokens = [f"t{i}" for i in range(70)]
    for threshold in (0.0, 2 / 255, 0.01, 0.05, 0.999):
        payload = payload_from_arrays(layers, tokens, sparse=True, threshold=threshold)
        for layer in range(2):
            dense = payload.stacks["encoder"][layer].reshape(-1, 70)
            kept = dense.astype(np.float64) / 255 > threshold
            starts = np.zeros(dense.shape[0] + 1, dtype="<u4")
            np.cumsum(kept.sum(axis=1), out=starts[1:])
            expected = starts.tobytes() + np.nonzero(kept)[1].astype("<u2").tobytes() + dense[kept].tobytes()
            assert payload.layer_bytes("encoder", layer) == expected, (threshold, layer)


def test_bertviz_tensors_are_read_a_layer_at_a_time_with_the_same_payload_as_one_array():
    layers = softmax_layers(layers=3, heads=4, n=9, seed=4)
    tokens = [f"t{i}" for i in range(9)]
    stacked = np.stack([layer.numpy() for layer in layers])  # (layers, batch, heads, query, key)
    for options in ({}, {"include_layers": [2, 0], "include_heads": [3, 1]}, {"sparse": True, "threshold": 0.1}):
        from_tensors = payload_from_arrays(layers, tokens, **options)
        from_array = payload_from_arrays(stacked, tokens, **options)
        assert np.array_equal(from_tensors.stacks["encoder"], from_array.stacks["encoder"])
        assert np.array_equal(from_tensors.aggregated["encoder/rollout"], from_array.aggregated["encoder/rollout"])
        assert from_tensors.header() == from_array.header()
        assert from_tensors.layers_base64() == from_array.layers_base64()
    whole = payload_from_arrays(layers, tokens)
    assert np.array_equal(whole.stacks["encoder"], quantise(stacked[:, 0]))
    # rollout of the heads' mean, taken a layer at a time: the same bytes as from the whole stack at once
    assert np.array_equal(whole.aggregated["encoder/rollout"], quantise(rollout(combine_heads(stacked[:, 0])))[:, None])


def test_weights_out_of_range_are_located_in_the_layer_that_holds_them():
    att = [a.clone() for a in softmax_layers(layers=3, n=4)]
    att[2][0, 1, 3, 2] = -0.25
    att[1][0, 3, 0, 1] = -0.5
    with pytest.raises(InputError, match=r"negative weights \(min -0\.5 at \(1, 3, 0, 1\)\)"):
        payload_from_arrays(att, list("abcd"))
    att = [a.clone() for a in softmax_layers(layers=3, n=4)]
    att[2][0, 0, 2, 3] = 1.5
    with pytest.raises(InputError, match=r"weights above 1 \(max 1\.5 at \(2, 0, 2, 3\)\)"):
        payload_from_arrays(att, list("abcd"))
    att[0][0, 2, 1, 1] = float("inf")
    with pytest.raises(
        InputError, match=r"NaN or infinite weights, first at \(layer, head, query, key\) = \(0, 2, 1, 1\)"
    ):
        payload_from_arrays(att, list("abcd"))
