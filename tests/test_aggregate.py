"""B1 aggregations (analysis/aggregate.py): hand-computed head combinations, rollout, value norms and word
merging, then value norms from real captures checked against the models' own modules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import attnscope
from attnscope.analysis.aggregate import (
    aggregate,
    check_head_weights,
    combine_heads,
    merge_units,
    merge_words,
    rollout,
    value_norms,
    value_norms_summed,
    words_of,
)
from attnscope.capture.inputs import Tokens
from attnscope.capture.result import AttentionStack, Capture
from attnscope.errors import InputError, UnavailableFieldError

from .conftest import PUB

# Two heads over two tokens, used by the head-combination and capture-level tests.
HEAD_0 = np.array([[1.0, 0.0], [0.5, 0.5]])
HEAD_1 = np.array([[0.0, 1.0], [0.25, 0.75]])

# Value norms by hand: 2 heads, head_dim 1, hidden 2, 2 keys, 2 queries.
VALUES = np.array([[[1.0], [2.0]], [[3.0], [-1.0]]])  # (heads, key, head_dim)
W_O = np.array([[[1.0, 0.0]], [[1.0, 1.0]]])  # (heads, head_dim, hidden)
# f^0(x_0) = [1, 0], f^0(x_1) = [2, 0]; f^1(x_0) = [3, 3], f^1(x_1) = [-1, -1]
ALPHA = np.array([[[0.5, 0.5], [1.0, 0.0]], [[0.25, 0.75], [0.0, 1.0]]])  # (heads, query, key)


def hand_capture(
    attentions: np.ndarray,
    values: np.ndarray | None = None,
    projection: np.ndarray | None = None,
    words: list[int | None] | None = None,
) -> Capture:
    """A capture of one encoder stack built from hand-made arrays (no model)."""
    n = attentions.shape[-1]
    words = list(range(n)) if words is None else words
    tokens = Tokens(
        ids=list(range(n)),
        raw=[f"t{i}" for i in range(n)],
        display=[f"t{i}" for i in range(n)],
        offsets=[None] * n,
        word_ids=words,
        special=[w is None for w in words],
        segments=[0] * n,
        texts=("",),
    )
    stack = AttentionStack(
        "encoder",
        attentions.shape[0],
        attentions.shape[1],
        attentions=attentions,
        values=values,
        output_projection=projection,
    )
    return Capture("hand", "encoder", tokens, {"encoder": stack})


def test_mean_of_heads_is_the_elementwise_mean() -> None:
    combined = combine_heads(np.stack([HEAD_0, HEAD_1]))
    np.testing.assert_allclose(combined, [[0.5, 0.5], [0.375, 0.625]])


def test_weighted_heads_use_the_weights_scaled_to_sum_to_one() -> None:
    weights = check_head_weights([1, 3], [0, 1])
    np.testing.assert_allclose(weights, [0.25, 0.75])
    combined = combine_heads(np.stack([HEAD_0, HEAD_1]), weights)
    np.testing.assert_allclose(combined, [[0.25, 0.75], [0.3125, 0.6875]])  # 0.25·A0 + 0.75·A1


def test_aggregate_combines_only_the_chosen_heads_with_their_weights() -> None:
    att = np.stack([HEAD_0, HEAD_1, np.full((2, 2), 0.5)])[None]  # (1 layer, 3 heads, 2, 2)
    cap = hand_capture(att)
    result = aggregate(cap, "weighted", heads=[2, 0], head_weights=[1.0, 1.0])
    assert result.weights.shape == (1, 2, 2) and result.axes == ("layer", "query", "key")
    assert result.heads == (2, 0) and result.head_weights == (0.5, 0.5) and result.unit == "probability"
    np.testing.assert_allclose(result.weights[0], [[0.75, 0.25], [0.5, 0.5]])
    mean = aggregate(cap, "mean", heads=[0, 1])
    np.testing.assert_allclose(mean.weights[0], [[0.5, 0.5], [0.375, 0.625]])
    raw = aggregate(cap, "raw", heads=[1])
    assert raw.weights.shape == (1, 1, 2, 2) and raw.per_head
    np.testing.assert_allclose(raw.weights[0, 0], HEAD_1)


@pytest.mark.parametrize(
    "head_weights, message",
    [
        ([1.0], r"head_weights has 1 number but 2 heads are chosen \(0, 1\): give one weight >= 0 per chosen head"),
        ([1.0, -0.5], r"head_weights must be finite numbers >= 0: got -0.5 for head 1"),
        ([1.0, float("nan")], r"must be finite numbers >= 0: got nan for head 1"),
        ([0, 0], r"head_weights are all zero: give at least one chosen head a weight above 0"),
        (["a", "b"], r"head_weights must be numbers, one per chosen head"),
    ],
)
def test_bad_head_weights_are_refused_with_the_allowed_range(head_weights, message) -> None:
    cap = hand_capture(np.stack([HEAD_0, HEAD_1])[None])
    with pytest.raises(InputError, match=message):
        aggregate(cap, "weighted", head_weights=head_weights)


def test_bad_methods_heads_and_layers_are_refused() -> None:
    cap = hand_capture(np.stack([HEAD_0, HEAD_1])[None])
    with pytest.raises(InputError, match="unknown aggregation method 'max': choose one of raw, mean, weighted"):
        aggregate(cap, "max")
    with pytest.raises(InputError, match="method 'weighted' needs head_weights: one number >= 0 for each of the 2"):
        aggregate(cap, "weighted")
    with pytest.raises(InputError, match="head_weights apply to the 'weighted' and 'rollout' methods only, not 'mean'"):
        aggregate(cap, "mean", head_weights=[1, 1])
    with pytest.raises(InputError, match="head 2 is out of range: the encoder stack has heads 0-1"):
        aggregate(cap, "mean", heads=[0, 2])
    with pytest.raises(InputError, match="layer 1 is out of range: the encoder stack has only layer 0"):
        aggregate(cap, "mean", layers=[1])
    with pytest.raises(InputError, match="heads names head 1 more than once: name each head once"):
        aggregate(cap, "mean", heads=[1, 1])
    with pytest.raises(InputError, match="no 'cross' attention in this capture"):
        aggregate(cap, "mean", stack="cross")


def test_rollout_of_two_layers_by_hand() -> None:
    first = np.array([[1.0, 0.0], [0.5, 0.5]])  # with the residual: [[1, 0], [0.25, 0.75]]
    second = np.array([[0.0, 1.0], [1.0, 0.0]])  # with the residual: [[0.5, 0.5], [0.5, 0.5]]
    rolled = rollout(np.stack([first, second]))
    np.testing.assert_allclose(rolled[0], [[1.0, 0.0], [0.25, 0.75]])
    np.testing.assert_allclose(rolled[1], [[0.625, 0.375], [0.625, 0.375]])  # Â_1 · R_0


def test_rollout_keeps_a_causal_mask_and_rows_summing_to_one() -> None:
    first = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    second = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    rolled = rollout(np.stack([first, second]))
    np.testing.assert_allclose(rolled[0], [[1, 0, 0], [0.25, 0.75, 0], [0.1, 0.15, 0.75]])
    # Â_1 = [[1, 0, 0], [0.5, 0.5, 0], [0, 0.25, 0.75]]; row 2 = 0.25·row 1 + 0.75·row 2 of R_0
    np.testing.assert_allclose(rolled[1], [[1, 0, 0], [0.625, 0.375, 0], [0.1375, 0.3, 0.5625]])
    np.testing.assert_allclose(rolled.sum(axis=-1), 1.0)


def test_rollout_renormalises_rows_that_sum_to_less_than_one() -> None:
    sinks = np.array([[[0.5, 0.0], [0.2, 0.2]]])  # an attention sink took the rest of each row
    np.testing.assert_allclose(rollout(sinks)[0], [[1.0, 0.0], [1 / 7, 6 / 7]])  # [[0.75, 0], [0.1, 0.6]] scaled


def test_rollout_through_aggregate_uses_the_mean_of_heads_and_returns_the_layers_asked() -> None:
    layer_0 = np.stack([HEAD_0, HEAD_0])  # mean: HEAD_0
    layer_1 = np.stack([np.array([[0.0, 1.0], [1.0, 0.0]])] * 2)
    cap = hand_capture(np.stack([layer_0, layer_1]))
    result = aggregate(cap, "rollout", layers=[1])
    assert result.layers == (1,) and result.weights.shape == (1, 2, 2)
    np.testing.assert_allclose(result.weights[0], [[0.625, 0.375], [0.625, 0.375]])


def test_value_norms_per_head_by_hand() -> None:
    norms = value_norms(ALPHA[None], VALUES[None], W_O[None])[0]
    # ‖f^0(x)‖ = [1, 2], ‖f^1(x)‖ = [3√2, √2]
    np.testing.assert_allclose(norms[0], [[0.5, 1.0], [1.0, 0.0]])
    np.testing.assert_allclose(norms[1], [[0.75 * math.sqrt(2), 0.75 * math.sqrt(2)], [0.0, math.sqrt(2)]])


def test_value_norms_summed_over_heads_by_hand() -> None:
    summed = value_norms_summed(ALPHA[None], VALUES[None], W_O[None])[0]
    # q0,k0: 0.5·[1, 0] + 0.25·[3, 3] = [1.25, 0.75]; q0,k1: 0.5·[2, 0] + 0.75·[-1, -1] = [0.25, -0.75]
    # q1,k0: [1, 0]; q1,k1: [-1, -1]
    np.testing.assert_allclose(summed, [[math.sqrt(2.125), math.sqrt(0.625)], [1.0, math.sqrt(2)]])


def test_value_norm_aggregations_of_a_hand_made_capture() -> None:
    cap = hand_capture(ALPHA[None], VALUES[None], W_O[None])
    per_head = aggregate(cap, "value_norm", heads=[1])
    assert per_head.unit == "norm" and per_head.weights.shape == (1, 1, 2, 2)
    np.testing.assert_allclose(per_head.weights[0, 0], [[0.75 * math.sqrt(2)] * 2, [0.0, math.sqrt(2)]])
    only_head_1 = aggregate(cap, "value_norm_sum", heads=[1])  # one head: the sum is that head's norm
    np.testing.assert_allclose(only_head_1.weights[0], per_head.weights[0, 0])
    with pytest.raises(UnavailableFieldError, match="the encoder stack holds no 'values': capture it with fields"):
        aggregate(hand_capture(ALPHA[None]), "value_norm")
    with pytest.raises(InputError, match="value-norm attention needs the encoder stack's output projection"):
        aggregate(hand_capture(ALPHA[None], VALUES[None]), "value_norm_sum")


def test_merge_words_sums_columns_and_averages_rows() -> None:
    # tokens: [CLS] play ##ing well [SEP]; words: 0 = "playing" (tokens 1, 2), 1 = "well" (token 3)
    w = np.array(
        [
            [0.5, 0.1, 0.1, 0.1, 0.2],
            [0.2, 0.2, 0.4, 0.1, 0.1],
            [0.0, 0.6, 0.0, 0.4, 0.0],
            [0.1, 0.3, 0.3, 0.2, 0.1],
            [0.2, 0.2, 0.2, 0.2, 0.2],
        ]
    )
    merged = merge_words(w[None], [None, 0, 0, 1, None])
    assert merged.unit_word == [None, 0, 1, None]
    assert merged.unit_tokens == [[0], [1, 2], [3], [4]]
    expected = np.array(
        [
            [0.5, 0.2, 0.1, 0.2],
            [0.1, 0.6, 0.25, 0.05],  # mean of rows 1 and 2: (0.2+0.0)/2, (0.6+0.6)/2, (0.1+0.4)/2, (0.1+0)/2
            [0.1, 0.6, 0.2, 0.1],
            [0.2, 0.4, 0.2, 0.2],
        ]
    )
    np.testing.assert_allclose(merged.weights[0], expected)
    np.testing.assert_allclose(merged.weights.sum(axis=-1), 1.0)
    assert merged.unit_of_word(1) == 2


def test_merge_words_rejects_a_mismatched_shape() -> None:
    with pytest.raises(ValueError, match=r"end in \(3, 3\)"):
        merge_words(np.zeros((2, 4, 4)), [None, 0, None])


def test_merge_units_handles_different_query_and_key_words() -> None:
    w = np.array([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]])  # 2 query tokens of one word; keys: word 0 = tokens 1, 2
    merged, query_units, key_units = merge_units(w, [0, 0], [None, 0, 0])
    assert query_units == [[0, 1]] and key_units == [[0], [1, 2]]
    np.testing.assert_allclose(merged, [[0.4, 0.6]])  # rows averaged: [0.4, 0.2, 0.4]; keys 1+2 summed


def test_words_merge_after_aggregating() -> None:
    att = np.stack([np.stack([HEAD_0, HEAD_1])])  # one layer
    three = np.zeros((1, 2, 3, 3))
    three[..., :2, :2] = att
    three[..., 2, 2] = 1.0
    cap = hand_capture(three, words=[None, 0, 0])
    result = aggregate(cap, "mean", words=True)
    token_level = aggregate(cap, "mean").weights
    expected, _, _ = merge_units(token_level, [None, 0, 0], [None, 0, 0])
    np.testing.assert_allclose(result.weights, expected)
    assert result.query_units == [[0], [1, 2]] and result.describe()["words"] is True


# --- real captures against the models' own modules -----------------------------------------------


def _direct(alpha: np.ndarray, per_head_f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-head ‖α·f‖ and ‖Σ_h α·f‖ straight from the definition: alpha (heads, q, k), f (heads, k, hidden)."""
    contributions = alpha[:, :, :, None] * per_head_f[:, None, :, :]  # (heads, q, k, hidden)
    return np.linalg.norm(contributions, axis=-1), np.linalg.norm(contributions.sum(axis=0), axis=-1)


def check_value_norms(handle, layers, value_module, transformed) -> attnscope.Capture:
    """Compare ``aggregate``'s value norms of PUB with the definition, computed from the model's own modules.

    ``value_module(model, layer)`` is the module whose output holds the values; ``transformed(model,
    layer, output)`` turns that output (tokens, features) into f(x) per head, (heads, key, hidden),
    with the layer's output projection read straight from the model.
    """
    cap = attnscope.capture(handle, PUB, fields="all")
    model = handle.model
    inputs = dict(handle.tokenizer(PUB, return_tensors="pt"))
    for layer in layers:
        seen: list[torch.Tensor] = []
        hook = value_module(model, layer).register_forward_hook(
            lambda _m, _i, out, seen=seen: seen.append(out.detach()[0])
        )
        try:
            with torch.no_grad():
                alpha = model(**inputs, output_attentions=True).attentions[layer][0].numpy().astype(np.float64)
        finally:
            hook.remove()
        f = transformed(model, layer, seen[0].numpy().astype(np.float64))
        head, summed = _direct(alpha, f)
        np.testing.assert_allclose(aggregate(cap, "value_norm", layers=[layer]).weights[0], head, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(
            aggregate(cap, "value_norm_sum", layers=[layer]).weights[0], summed, rtol=1e-4, atol=1e-5
        )
    return cap


def per_head(values: np.ndarray, weight_in_out: np.ndarray, heads: int) -> np.ndarray:
    """f^h(x) = v^h · W_O^h from values (heads, key, head_dim) and an (in, out) projection weight."""
    d = values.shape[-1]
    return np.stack([values[h] @ weight_in_out[h * d : (h + 1) * d] for h in range(heads)])


def test_value_norms_of_the_default_model_match_its_modules(default_model) -> None:
    def transformed(model, layer, v):  # BERT: values from attention.self.value, W_O in attention.output.dense
        v = v.reshape(len(v), 12, 32).transpose(1, 0, 2)
        return per_head(v, model.encoder.layer[layer].attention.output.dense.weight.detach().numpy().T, 12)

    check_value_norms(
        default_model, (0, 3, 5), lambda m, layer: m.encoder.layer[layer].attention.self.value, transformed
    )


def test_value_norms_of_a_tiny_llama_with_grouped_kv_heads_and_rope(tiny) -> None:
    def transformed(model, layer, v):  # 4 query heads read 2 key/value heads of 8 dimensions
        v = np.repeat(v.reshape(len(v), 2, 8).transpose(1, 0, 2), 2, axis=0)  # query head h reads kv head h // 2
        return per_head(v, model.model.layers[layer].self_attn.o_proj.weight.detach().numpy().T, 4)

    check_value_norms(tiny("llama"), range(2), lambda m, layer: m.model.layers[layer].self_attn.v_proj, transformed)


def test_value_norms_of_a_tiny_gpt2_read_its_conv1d_projection(tiny) -> None:
    def transformed(model, layer, qkv):  # c_attn's output is q | k | v; Conv1D weights are (in, out) already
        v = qkv[:, 64:].reshape(len(qkv), 4, 8).transpose(1, 0, 2)
        return per_head(v, model.transformer.h[layer].attn.c_proj.weight.detach().numpy(), 4)

    cap = check_value_norms(tiny("gpt2"), range(2), lambda m, layer: m.transformer.h[layer].attn.c_attn, transformed)
    rolled = aggregate(cap, "rollout").weights
    np.testing.assert_allclose(rolled.sum(axis=-1), 1.0, atol=1e-5)
    assert np.abs(np.triu(rolled, k=1)).max() == 0  # causal: nothing flows back from later tokens


def test_projection_heads_sum_to_the_attention_output(default_model) -> None:
    """Σ_h head_outputs^h · W_O^h is what the output projection computes, less its bias."""
    cap = attnscope.capture(default_model, PUB, fields="all")
    stack = cap.main
    model = default_model.model
    dense = model.encoder.layer[2].attention.output.dense
    seen: list[torch.Tensor] = []
    hook = dense.register_forward_hook(lambda _m, _i, out: seen.append(out.detach()[0]))
    try:
        with torch.no_grad():
            model(**dict(default_model.tokenizer(PUB, return_tensors="pt")))
    finally:
        hook.remove()
    ours = np.einsum("hqd,hde->qe", stack.head_outputs[2].astype(np.float64), stack.output_projection[2])
    np.testing.assert_allclose(ours, (seen[0] - dense.bias.detach()).numpy(), atol=1e-4)
    assert not stack.output_projection.flags.writeable


def test_captures_share_one_read_only_projection(default_model) -> None:
    first = attnscope.capture(default_model, "The girl ran.", fields="all")
    second = attnscope.capture(default_model, "She escaped.", fields=["attentions", "values"])
    assert first.main.output_projection is second.main.output_projection
    assert attnscope.capture(default_model, "The girl ran.").main.output_projection is None  # no values, none kept


def test_a_model_without_a_findable_projection_says_so(default_model, monkeypatch) -> None:
    from attnscope.capture import projection

    monkeypatch.setattr(projection, "OWN_NAMES", ("nothing_here",))
    monkeypatch.setattr(projection, "SIBLING_PATH", ("nowhere",))
    cap = attnscope.capture(default_model, "The girl ran.", fields="all")
    assert cap.main.output_projection is None and cap.main.values is not None
    assert (
        "no output projection with 384 inputs was found for encoder.layer.0.attention.self"
        in cap.missing["output_projection"]
    )
    with pytest.raises(
        InputError,
        match="value-norm attention needs the encoder stack's output projection: "
        "encoder stack: no output projection with 384 inputs",
    ):
        aggregate(cap, "value_norm")


def test_encoder_decoder_stacks_aggregate_with_their_own_tokens(tiny) -> None:
    cap = attnscope.capture(tiny("bart"), "The girl ran to a local pub.", target="She escaped.", fields="all")
    cross = aggregate(cap, "value_norm_sum", stack="cross", words=True)
    assert cross.weights.shape[1:] == (len(cross.query_units), len(cross.key_units))
    assert sum(len(u) for u in cross.query_units) == len(cap.decoder_tokens)
    assert sum(len(u) for u in cross.key_units) == len(cap.tokens)
    assert aggregate(cap, "rollout", stack="decoder").weights.shape == cap.stacks["decoder"].attentions[:, 0].shape
    with pytest.raises(InputError, match="rollout follows attention through self-attention layers: the cross stack"):
        aggregate(cap, "rollout", stack="cross")


def test_word_merging_of_a_real_capture_uses_the_tokenizers_words(default_model) -> None:
    cap = attnscope.capture(default_model, "Unbelievably, the girl ran.", "She escaped.")
    merged = aggregate(cap, "rollout", words=True)
    assert merged.query_units[1] == [1, 2, 3, 4, 5]  # un bel ie va bly
    expected, _, _ = merge_units(aggregate(cap, "rollout").weights, words_of(cap.tokens), words_of(cap.tokens))
    np.testing.assert_allclose(merged.weights, expected, rtol=1e-6)
    np.testing.assert_allclose(merged.weights.sum(axis=-1), 1.0, atol=1e-5)
    # sentence B's first word is a unit of its own, not merged with sentence A's first word
    b = cap.tokens.sentence_b_start
    assert [b] in merged.query_units
