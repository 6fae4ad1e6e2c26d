"""B1 in the views' Python side: which aggregations a view carries, how their layers travel (one byte a
weight, lazily in the head view), the synced ``aggregation`` trait, the heads the combining ones combine
(``combine_heads``), and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import attnscope
from attnscope.analysis.aggregate import combine_heads, normalise_rows, rollout
from attnscope.errors import FieldError, InputError
from attnscope.views import MAX_ERROR, payload_from_arrays, payload_from_capture
from attnscope.views import payload as payload_module
from attnscope.views.aggregated import AUTO_MAX_TOKENS
from attnscope.views.widget import LAYER_MESSAGE

from .conftest import PUB
from .test_views_widget import Sent, state_of


@pytest.fixture(scope="module")
def full_capture(default_model):
    return attnscope.capture(default_model, PUB, fields="all")


def softmax_arrays(n: int, layers: int = 1, heads: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    e = np.exp(rng.normal(size=(layers, 1, heads, n, n)))
    return list(e / e.sum(-1, keepdims=True))


def test_a_full_capture_carries_rollout_and_value_norms_within_a_byte(full_capture):
    view = attnscope.head_view(full_capture)
    payload = view.payload
    assert payload.header()["stacks"][0]["aggregations"] == {"rollout": 1, "value_norm": 12, "value_norm_sum": 1}
    for method in ("rollout", "value_norm", "value_norm_sum"):
        expected = attnscope.aggregate(full_capture, method).weights
        if method != "rollout":
            expected = normalise_rows(expected)  # value norms are shown with each row scaled to sum to 1
        expected = expected if expected.ndim == 4 else expected[:, None]
        assert np.abs(payload.decoded(f"encoder/{method}") - expected).max() <= MAX_ERROR + 1e-6, method


def test_only_the_shown_aggregation_layer_crosses_at_first_and_others_are_answered(full_capture):
    view = attnscope.head_view(full_capture, layer=2, aggregation="rollout")
    assert view.aggregation == "rollout" and view.selection["aggregation"] == "rollout"
    sent_now = {key: [i for i, b in enumerate(layers) if b is not None] for key, layers in view.layers.items()}
    assert sent_now == {"encoder": [2], "encoder/rollout": [2], "encoder/value_norm": [], "encoder/value_norm_sum": []}
    sent = Sent(view)
    view._handle_custom_msg({"type": LAYER_MESSAGE, "role": "encoder/value_norm", "indices": [1, 4]}, [])
    ((content, buffers),) = sent.messages
    assert content["role"] == "encoder/value_norm" and content["indices"] == [1, 4]
    expected = normalise_rows(attnscope.aggregate(full_capture, "value_norm", layers=[1, 4]).weights)
    for buffer, layer in zip(buffers, expected):
        got = np.frombuffer(buffer, dtype=np.uint8).reshape(layer.shape) / 255
        assert np.abs(got - layer).max() <= MAX_ERROR + 1e-6
    view._handle_custom_msg({"type": LAYER_MESSAGE, "role": "encoder/nothing", "indices": [0]}, [])
    assert len(sent.messages) == 1  # a key naming no carried aggregation is ignored


def test_the_aggregation_trait_is_validated_and_exported(full_capture):
    view = attnscope.head_view(full_capture)
    assert view.aggregation == "raw"
    view.aggregation = "value_norm_sum"
    assert state_of(view.to_html())["aggregation"] == "value_norm_sum"
    with pytest.raises(InputError, match="aggregation 'max' is not in this view: it offers raw, mean, rollout"):
        view.aggregation = "max"
    assert view.aggregation == "value_norm_sum"


def test_the_model_view_sends_every_carried_layer_with_the_kept_heads(full_capture):
    view = attnscope.model_view(full_capture, include_heads=[0, 5], include_layers=[2, 3])
    assert all(b is not None for layers in view.layers.values() for b in layers)
    assert view.header["stacks"][0]["aggregations"] == {"rollout": 1, "value_norm": 2, "value_norm_sum": 1}
    summed = normalise_rows(attnscope.aggregate(full_capture, "value_norm_sum", heads=[0, 5]).weights[[2, 3]])
    assert np.abs(view.payload.decoded("encoder/value_norm_sum")[:, 0] - summed).max() <= MAX_ERROR + 1e-6


def test_auto_carries_nothing_extra_past_the_token_limit_unless_asked():
    long = softmax_arrays(AUTO_MAX_TOKENS + 1)
    tokens = [f"t{i}" for i in range(AUTO_MAX_TOKENS + 1)]
    assert attnscope.head_view(long, tokens).payload.data_keys() == ["encoder"]
    asked = attnscope.head_view(long, tokens, aggregation="rollout").payload
    assert asked.data_keys() == ["encoder", "encoder/rollout"]
    short = softmax_arrays(8)
    assert attnscope.head_view(short, [f"t{i}" for i in range(8)], aggregations=[]).payload.data_keys() == ["encoder"]


def test_bad_aggregation_options_say_what_is_allowed(default_model):
    arrays, tokens = softmax_arrays(4), ["a", "b", "c", "d"]
    with pytest.raises(
        InputError, match="aggregation 'value_norm' is not in this view: value norms need a Capture with values"
    ):
        attnscope.head_view(arrays, tokens, aggregation="value_norm")
    with pytest.raises(
        InputError, match="aggregation must be one of raw, mean, rollout, value_norm, value_norm_sum; got 'max'"
    ):
        attnscope.model_view(arrays, tokens, aggregation="max")
    with pytest.raises(InputError, match="aggregations names 'max': choose from rollout, value_norm, value_norm_sum"):
        attnscope.head_view(arrays, tokens, aggregations=["max"])
    with pytest.raises(InputError, match="aggregations must be 'auto' or a list of rollout, value_norm"):
        attnscope.head_view(arrays, tokens, aggregations="all")
    with pytest.raises(
        InputError, match="aggregation 'rollout' is not in this view: the aggregations option leaves it out"
    ):
        attnscope.head_view(arrays, tokens, aggregations=[], aggregation="rollout")
    plain = attnscope.capture(default_model, "The girl ran.")
    with pytest.raises(InputError, match="aggregation 'value_norm_sum' cannot be shown: this capture holds no values"):
        attnscope.model_view(plain, aggregations=["value_norm_sum"])
    assert attnscope.head_view(plain).payload.data_keys() == ["encoder", "encoder/rollout"]


def test_combine_heads_picks_the_heads_of_the_combined_aggregations_and_value_norms_keep_the_kept_heads(full_capture):
    payload = payload_from_capture(full_capture, include_heads=[2, 5, 7], combine_heads=[2, 7])
    stack = payload.header()["stacks"][0]
    assert (stack["head_labels"], stack["combined_heads"]) == ([2, 5, 7], [2, 7])
    assert stack["aggregations"] == {"rollout": 1, "value_norm": 3, "value_norm_sum": 1}
    for method, heads in (("rollout", [2, 7]), ("value_norm_sum", [2, 7]), ("value_norm", [2, 5, 7])):
        result = attnscope.aggregate(full_capture, method, heads=heads).weights
        expected = result if method == "rollout" else normalise_rows(result)
        expected = expected if expected.ndim == 4 else expected[:, None]
        assert np.abs(payload.decoded(f"encoder/{method}") - expected).max() <= MAX_ERROR + 1e-6, method
    every_kept = payload_from_capture(full_capture, include_heads=[2, 5, 7])
    assert every_kept.header()["stacks"][0]["combined_heads"] == [2, 5, 7]  # the default: all kept heads
    assert np.abs(every_kept.decoded("encoder/rollout") - payload.decoded("encoder/rollout")).max() > 0.05


def test_combine_heads_of_arrays_rolls_out_the_mean_of_those_heads():
    arrays, tokens = softmax_arrays(6, layers=3, heads=4), [f"t{i}" for i in range(6)]
    payload = payload_from_arrays(arrays, tokens, aggregations=["rollout"], combine_heads=[0, 3])
    weights = np.stack([np.asarray(layer)[0] for layer in arrays])  # (layers, heads, query, key)
    expected = rollout(combine_heads(weights[:, [0, 3]]))[:, None]
    assert np.abs(payload.decoded("encoder/rollout") - expected).max() <= MAX_ERROR + 1e-6
    assert payload.header()["stacks"][0]["combined_heads"] == [0, 3]


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        (dict(combine_heads=[12]), "combine_heads.0", "head 12 is out of range: the encoder attention has heads 0-11"),
        (
            dict(include_heads=[0, 1], combine_heads=[1, 5]),
            "combine_heads.1",
            "head 5 is not among the included heads: include_heads keeps heads 0, 1; pass one of them as combine_heads",
        ),
        (dict(combine_heads=[3, 3]), "combine_heads.1", "combine_heads names head 3 more than once"),
        (dict(combine_heads=[]), "combine_heads", "combine_heads is empty: name at least one head"),
        (dict(combine_heads=2), "combine_heads", "combine_heads must be a list of head numbers, got 2"),
    ],
)
def test_bad_combine_heads_are_refused_by_the_head_validator_before_anything_is_computed(
    full_capture, monkeypatch, options, field, message
):
    computed: list[str] = []
    monkeypatch.setattr(payload_module, "quantise", lambda *args: computed.append("quantise"))
    monkeypatch.setattr(payload_module, "carried_layers", lambda *args: computed.append("aggregate"))
    with pytest.raises(FieldError) as error:
        payload_from_capture(full_capture, **options)
    assert error.value.field == field and message in str(error.value)
    assert computed == []


def test_the_header_names_the_masked_positions_of_a_capture(default_model):
    masked = attnscope.capture(default_model, PUB, mask=[2, 4], warn=False)
    assert payload_from_capture(masked).header()["sequences"]["encoder"]["masked"] == [2, 4]
    typed = attnscope.capture(default_model, "The [MASK] ran.", warn=False)
    assert payload_from_capture(typed).header()["sequences"]["encoder"]["masked"] == [2]
    plain = payload_from_arrays(softmax_arrays(4), ["a", "b", "c", "d"])
    assert plain.header()["sequences"]["encoder"]["masked"] == []
