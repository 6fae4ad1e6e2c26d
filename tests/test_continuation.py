"""A continuation captured from the forward passes that generated it (capture/continuation.py): the prompt runs
once, and the joined capture equals one forward pass over prompt plus continuation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attnscope
from attnscope.capture import continuation
from attnscope.capture.lazy import LazyAttention
from attnscope.capture.recorder import LayerCall

PROMPT = "The girl ran to a local pub to"
FIELDS = ("attentions", "queries", "keys", "values", "head_outputs", "bias", "allowed", "hidden_states")


def assert_same_capture(joined, one) -> None:
    """Every field of two captures of the same ids equal within float rounding: weights 1e-5, queries, keys...
    1e-5 relative, hidden states 1e-6 of their largest value."""
    assert joined.tokens.ids == one.tokens.ids and joined.tokens.display == one.tokens.display
    assert joined.attention_mode == one.attention_mode == "eager"
    assert joined.missing == one.missing and joined.eager_modules == one.eager_modules
    assert set(joined.stacks) == set(one.stacks)
    for role, stack in one.stacks.items():
        mine = joined.stacks[role]
        for name in (*FIELDS, "scaling", "kv_head_of", "output_projection"):
            expected, got = getattr(stack, name), getattr(mine, name)
            assert (expected is None) == (got is None), f"{role}.{name}"
            if expected is not None:
                assert got.shape == expected.shape and got.dtype == expected.dtype, f"{role}.{name}"
                # the residual stream holds values in the hundreds: its rounding is relative to its largest
                atol = 1e-6 * float(np.abs(expected).max()) if name == "hidden_states" else 1e-5
                rtol = 0 if name in ("attentions", "hidden_states") else 1e-5  # queries, keys... reach tens
                np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg=f"{role}.{name}")
    assert joined.predictions is not None and one.predictions is not None
    np.testing.assert_array_equal(joined.predictions.token_ids, one.predictions.token_ids)
    np.testing.assert_allclose(joined.predictions.probabilities, one.predictions.probabilities, atol=1e-5)
    assert joined.predictions.tokens == one.predictions.tokens


def passes_run(handle) -> list[int]:
    """A list that fills with the number of tokens of each forward pass of the base model (a hook on it)."""
    sizes: list[int] = []
    hook = handle.model.base_model.register_forward_hook(lambda m, a, out: sizes.append(out.last_hidden_state.shape[1]))
    return sizes, hook


@pytest.mark.parametrize("family", ["smollm2", "gpt2"])
@pytest.mark.parametrize("sampling", [{}, {"do_sample": True, "seed": 5, "temperature": 0.8}])
def test_the_joined_capture_equals_one_pass_over_the_generated_ids(tiny, family, sampling):
    handle = tiny(family)  # smollm2: a tiny Llama (rotary, grouped key/value heads); gpt2: learned positions
    joined = attnscope.generate(handle, PROMPT, max_new_tokens=7, fields="all", **sampling)
    one = attnscope.capture(handle, input_ids=joined.tokens.ids, fields="all", top_k=5)
    assert len(joined.tokens.generated) == 7
    assert_same_capture(joined, one)


def test_the_prompt_runs_once_and_each_new_token_once(tiny):
    handle = tiny("smollm2")
    prompt = len(attnscope.encode(handle, PROMPT).ids)
    sizes, hook = passes_run(handle)
    try:
        cap = attnscope.generate(handle, PROMPT, max_new_tokens=6)
    finally:
        hook.remove()
    assert sizes == [prompt] + [1] * 6  # generate's prefill, its 5 steps, and the last token's row
    assert cap.tokens.generated == tuple(range(prompt, prompt + 6))


def test_float16_fields_of_a_joined_capture(tiny):
    handle = tiny("smollm2")
    joined = attnscope.generate(handle, PROMPT, max_new_tokens=4, fields=["attentions", "values"], dtype="float16")
    one = attnscope.capture(handle, input_ids=joined.tokens.ids, fields=["attentions", "values"], dtype="float16")
    assert joined.attentions.dtype == np.float16 and joined.main.values.dtype == np.float16
    np.testing.assert_allclose(joined.attentions, one.attentions, atol=1e-3)
    np.testing.assert_allclose(joined.main.values, one.main.values, atol=1e-3)


@pytest.mark.parametrize(
    ("family", "why"),
    [("mistral", "a sliding window of 4 keys"), ("gemma2", "softcapped final logits")],
)
def test_passes_that_cannot_be_joined_are_captured_in_one_pass(tiny, family, why):
    handle = tiny(family)
    sizes, hook = passes_run(handle)
    try:
        cap = attnscope.generate(handle, PROMPT, max_new_tokens=4, fields="all")
    finally:
        hook.remove()
    assert sizes[-1] == len(cap.tokens.ids), why  # one more pass over prompt and continuation
    one = attnscope.capture(handle, input_ids=cap.tokens.ids, fields="all", top_k=5)
    np.testing.assert_array_equal(np.asarray(cap.attentions), np.asarray(one.attentions))


def assert_same_on_demand(joined, one) -> None:
    """Two on-demand captures of the same ids: every layer's weights within 1e-5, queries and keys 1e-5 relative."""
    assert joined.tokens.ids == one.tokens.ids
    assert joined.attention_mode == one.attention_mode == "on_demand" and joined.eager_modules == one.eager_modules
    assert isinstance(joined.attentions, LazyAttention) and joined.attentions.shape == one.attentions.shape
    for layer in range(joined.attentions.shape[0]):
        np.testing.assert_allclose(joined.attentions.layer(layer), one.attentions.layer(layer), rtol=0, atol=1e-5)
    for name in ("queries", "keys", "values", "allowed"):
        np.testing.assert_allclose(getattr(joined.main, name), getattr(one.main, name), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(joined.predictions.token_ids, one.predictions.token_ids)


@pytest.mark.parametrize("family", ["smollm2", "gpt2"])
def test_an_on_demand_continuation_is_joined_from_queries_and_keys(tiny, family):
    handle = tiny(family)
    fields = ["attentions", "queries", "keys", "values", "allowed"]
    sizes, hook = passes_run(handle)
    try:
        joined = attnscope.generate(handle, PROMPT, max_new_tokens=6, fields=fields, attention="on_demand")
    finally:
        hook.remove()
    assert max(sizes[1:]) == 1  # the prompt ran once
    one = attnscope.capture(handle, input_ids=joined.tokens.ids, fields=fields, top_k=5, attention="on_demand")
    assert_same_on_demand(joined, one)


def test_auto_past_the_eager_limit_joins_on_demand(tiny, monkeypatch):
    from attnscope.capture import engine

    handle = tiny("smollm2")
    monkeypatch.setattr(continuation, "EAGER_LIMIT_BYTES", 1000)  # any continuation is past it
    monkeypatch.setattr(engine, "EAGER_LIMIT_BYTES", 1000)
    joined = attnscope.generate(
        handle, PROMPT, max_new_tokens=5, fields=["attentions", "queries", "keys", "values", "allowed"]
    )
    one = attnscope.capture(
        handle, input_ids=joined.tokens.ids, fields=["attentions", "queries", "keys", "values", "allowed"], top_k=5
    )
    assert_same_on_demand(joined, one)


def test_only_causal_decoders_loaded_with_eager_attention_are_joined(tiny):
    assert continuation.joinable(tiny("smollm2")) and continuation.joinable(tiny("gpt2"))
    assert not continuation.joinable(tiny("bart"))  # encoder-decoders: one pass over the decoder ids


def test_layer_calls_of_passes_that_saw_other_keys_are_not_joined():
    def call(rows: int, keys: int, name: str = "layers.0.attn") -> LayerCall:
        c = LayerCall("decoder", name, 0.125, None, 2, 2)
        c.tensors = {"attentions": torch.zeros((1, 2, rows, keys)), "queries": torch.zeros((1, 2, rows, 8))}
        return c

    assert continuation.join_layer([(0, 5, call(5, 5)), (5, 6, call(1, 6))], 6) is not None
    assert continuation.join_layer([(0, 5, call(5, 5)), (5, 6, call(1, 4))], 6) is None  # a window dropped keys
    assert continuation.join_layer([(0, 5, call(5, 5)), (5, 6, call(1, 6, "layers.1.attn"))], 6) is None


def test_smollm2_continuation_equals_one_pass(smollm2):
    text = "The girl ran to a local pub to watch the game with her friends, and"
    joined = attnscope.generate(smollm2, text, max_new_tokens=8, fields=["attentions", "values", "hidden_states"])
    ids = torch.tensor([attnscope.encode(smollm2, text).ids])
    with torch.inference_mode():
        expected = smollm2.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=8, do_sample=False)
    assert joined.tokens.ids == expected[0].tolist()
    one = attnscope.capture(
        smollm2, input_ids=joined.tokens.ids, fields=["attentions", "values", "hidden_states"], top_k=5
    )
    assert_same_capture(joined, one)


def test_a_continuation_that_ends_early_is_joined_up_to_its_end(tiny_path):
    handle = attnscope.load(str(tiny_path("smollm2")))  # a handle of its own: its end-of-text token is changed
    free = attnscope.generate(handle, PROMPT, max_new_tokens=6)
    prompt = len(attnscope.encode(handle, PROMPT).ids)
    handle.model.generation_config.eos_token_id = free.tokens.ids[prompt + 2]  # the third new token ends the text
    sizes, hook = passes_run(handle)
    try:
        ended = attnscope.generate(handle, PROMPT, max_new_tokens=6)
    finally:
        hook.remove()
    assert ended.tokens.ids == free.tokens.ids[: prompt + 3]
    assert sizes == [prompt, 1, 1, 1]
    assert_same_capture(ended, attnscope.capture(handle, input_ids=ended.tokens.ids, top_k=5))


def test_auto_within_the_eager_limit_once_ended_early_is_eager(tiny_path, monkeypatch):
    from attnscope.capture import engine

    handle = attnscope.load(str(tiny_path("smollm2")))  # a handle of its own: its end-of-text token is changed
    prompt = len(attnscope.encode(handle, PROMPT).ids)
    free = attnscope.generate(handle, PROMPT, max_new_tokens=6)
    handle.model.generation_config.eos_token_id = free.tokens.ids[prompt + 2]
    per_square = 2 * 4 * 4  # layers × heads × float32 bytes of the tiny Llama
    limit = per_square * (prompt + 4) ** 2  # prompt + 3 tokens fit eager capture, prompt + 6 would not
    monkeypatch.setattr(continuation, "EAGER_LIMIT_BYTES", limit)
    monkeypatch.setattr(engine, "EAGER_LIMIT_BYTES", limit)
    ended = attnscope.generate(handle, PROMPT, max_new_tokens=6, fields="all")
    assert len(ended.tokens.ids) == prompt + 3 and ended.attention_mode == "eager"
    assert_same_capture(ended, attnscope.capture(handle, input_ids=ended.tokens.ids, fields="all", top_k=5))


def test_smollm2_on_demand_continuation_equals_one_pass(smollm2):
    text = "The girl ran to a local pub to watch the game with her friends, and"
    fields = ["attentions", "queries", "keys", "values", "allowed"]
    joined = attnscope.generate(smollm2, text, max_new_tokens=8, fields=fields, attention="on_demand")
    one = attnscope.capture(smollm2, input_ids=joined.tokens.ids, fields=fields, top_k=5, attention="on_demand")
    assert_same_on_demand(joined, one)
