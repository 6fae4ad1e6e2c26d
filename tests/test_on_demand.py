"""M2: attention on demand. The model runs SDPA attention, the capture keeps queries, keys and the mask's
structure, and every weight computed from them equals the eager capture's, on every tiny architecture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attnscope
from attnscope.capture.lazy import LazyAttention, LazyLayer
from attnscope.capture.mask_structure import MaskStructure, structure_of

from .conftest import PUB
from .tiny_models import ARCHITECTURES

LONG = " ".join([PUB] * 6)  # past the tiny models' 128 positions: truncated to them
TARGET = f"{PUB} She went home to the city. {PUB}"
EAGER_MODULES = {"gemma2": "its scores are softcapped", "gpt_oss": "it has attention sinks", "t5": "position bias"}


def _pair(handle, fields=("attentions", "hidden_states"), text=LONG):
    """The same input captured eagerly and on demand; the lazy stacks' blocks made 4 rows high."""
    target = TARGET if handle.kind == "encoder-decoder" else None
    eager = attnscope.capture(handle, text, target=target, fields=fields, truncate=True)
    lazy = attnscope.capture(handle, text, target=target, fields=fields, truncate=True, attention="on_demand")
    for stack in lazy.stacks.values():
        if isinstance(stack.attentions, LazyAttention):
            stack.attentions.block_bytes = stack.attentions.shape[3] * 13 * 4
    return eager, lazy


def _lazy(stack) -> LazyAttention:
    assert isinstance(stack.attentions, LazyAttention)
    return stack.attentions


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_weight_on_demand_equals_eager_capture(tiny, arch):
    eager, lazy = _pair(tiny(arch))
    assert lazy.attention_mode == "on_demand" and eager.attention_mode == "eager"
    assert set(lazy.stacks) == set(eager.stacks)
    for role, stack in eager.stacks.items():
        expected = stack.attentions
        weights = _lazy(lazy.stacks[role])
        layers, heads, queries, keys = expected.shape
        assert weights.shape == expected.shape and queries > 4 * weights.block_rows, (arch, role)
        for layer in range(layers):
            np.testing.assert_allclose(weights.layer(layer), expected[layer], atol=1e-6, rtol=0, err_msg=arch)
            for head in range(heads):
                np.testing.assert_allclose(
                    weights.rows(layer, head, 3, queries - 2), expected[layer, head, 3:-2], atol=1e-6
                )
                rows, cols = [queries - 1, 0, 7, 5], range(1, keys, 3)
                np.testing.assert_allclose(
                    weights.tile(layer, head, rows, cols), expected[layer, head][np.ix_(rows, list(cols))], atol=1e-6
                )
        everything = np.asarray(weights)
        assert everything.dtype == np.float32
        np.testing.assert_allclose(everything, expected, atol=1e-6, rtol=0, err_msg=f"{arch} {role}")


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_sdpa_forward_leaves_hidden_states_and_predictions_as_eager(tiny, arch):
    eager, lazy = _pair(tiny(arch))
    for role, stack in eager.stacks.items():
        if stack.hidden_states is not None:
            np.testing.assert_allclose(lazy.stacks[role].hidden_states, stack.hidden_states, atol=1e-5, err_msg=arch)
    if eager.predictions is not None:
        assert lazy.predictions is not None
        np.testing.assert_array_equal(lazy.predictions.token_ids[:, :3], eager.predictions.token_ids[:, :3])
        np.testing.assert_allclose(lazy.predictions.probabilities, eager.predictions.probabilities, atol=1e-5)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_modules_sdpa_cannot_compute_run_eager_and_say_why(tiny, arch):
    _, lazy = _pair(tiny(arch))
    reasons = set(lazy.eager_modules.values())
    if arch in EAGER_MODULES:
        assert reasons and all(EAGER_MODULES[arch] in r for r in reasons), reasons
        assert len(lazy.eager_modules) == sum(s.layers for s in lazy.stacks.values())
    else:
        assert lazy.eager_modules == {}
    # softcap, sinks and T5's bias are recorded terms (weights computed on demand): no layer is held dense
    assert not any(layer.dense is not None for s in lazy.stacks.values() for layer in _lazy(s).layers)


@pytest.mark.parametrize("arch", ["llama", "mistral", "gpt2", "bert", "bart"])
def test_padded_batch_on_demand_equals_single_eager_captures(tiny, arch):
    handle = tiny(arch)
    target = TARGET if handle.kind == "encoder-decoder" else None
    texts = [LONG, "Yes.", PUB]
    items = [attnscope.CaptureInput(t, target=target) for t in texts]
    batch = attnscope.capture_batch(handle, items, fields="all", truncate=True, attention="on_demand")
    for text, together in zip(texts, batch):
        alone = attnscope.capture(handle, text, target=target, fields="all", truncate=True)
        for role, stack in alone.stacks.items():
            weights = _lazy(together.stacks[role])
            weights.block_bytes = weights.shape[3] * 13 * 3
            np.testing.assert_allclose(np.asarray(weights), stack.attentions, atol=1e-6, err_msg=f"{arch} {role}")
            np.testing.assert_array_equal(together.stacks[role].allowed, stack.allowed)
            if stack.hidden_states is not None:
                np.testing.assert_allclose(together.stacks[role].hidden_states, stack.hidden_states, atol=1e-5)


def test_sliding_window_and_padding_are_read_as_structure(tiny):
    handle = tiny("mistral")  # sliding_window=4
    batch = attnscope.capture_batch(handle, [LONG, PUB], truncate=True, attention="on_demand")
    structure = _lazy(batch[0].main).layers[0].structure
    assert structure == MaskStructure(causal=True, window=4, key_valid=None)
    short = _lazy(batch[1].main)
    assert short.shape[2:] == (len(batch[1].tokens),) * 2 and short.layers[0].structure.key_valid is None


def test_structure_of_refuses_masks_that_are_not_patterns():
    causal = torch.tril(torch.ones(6, 6, dtype=torch.bool))[None, None]
    assert structure_of(causal, False) == MaskStructure(causal=True)
    padded = causal.repeat(2, 1, 1, 1)
    padded[1, :, :, 4:] = False
    found = structure_of(padded, False)
    assert found is not None and found.causal and found.key_valid.tolist()[1] == [True] * 4 + [False] * 2
    odd = causal.clone()
    odd[0, 0, 5, 2] = False  # a hole no pattern makes
    assert structure_of(odd, False) is None
    biased = torch.where(causal, torch.full((), 0.5), torch.finfo(torch.float32).min)  # a finite additive term
    assert structure_of(biased, False) is None
    assert structure_of(None, True) == MaskStructure(causal=True)


def test_dense_request_over_the_limit_is_refused_with_its_size_before_allocating():
    # SmolLM2's shape at 32,768 tokens: 30 layers × 9 heads; nothing is recorded, so anything computed would fail
    weights = LazyAttention([LazyLayer() for _ in range(30)], 9, 32768, 32768, np.arange(9) // 3)
    with pytest.raises(attnscope.InputError) as refused:
        np.asarray(weights)
    message = str(refused.value)
    assert "dense attention of 30 layers × 9 heads at 32,768 × 32,768 tokens needs 1,080.0 GiB" in message
    assert "rows(l, h, start, stop)" in message and "tile(l, h, rows, cols)" in message
    with pytest.raises(attnscope.InputError, match=r"layer 2's 9 heads at 32,768 × 32,768 tokens needs 36.0 GiB"):
        weights.layer(2)
    with pytest.raises(attnscope.InputError, match="needs 4.0 GiB"):
        weights.rows(0, 0)


def test_limit_applies_to_small_inputs_too_and_can_be_raised(tiny):
    eager, lazy = _pair(tiny("llama"))
    weights = _lazy(lazy.main)
    weights.max_dense_bytes = weights.nbytes - 1
    with pytest.raises(attnscope.InputError, match="over the 0.0 GiB allowed"):
        np.asarray(weights)
    weights.max_dense_bytes = weights.nbytes
    np.testing.assert_allclose(np.asarray(weights), eager.attentions, atol=1e-6)
    np.testing.assert_allclose(weights[1, 2, 9], eager.attentions[1, 2, 9], atol=1e-6)
    np.testing.assert_allclose(weights[1][:, 3:], eager.attentions[1][:, 3:], atol=1e-6)


def test_bad_requests_name_the_range(tiny):
    _, lazy = _pair(tiny("llama"))
    weights = _lazy(lazy.main)
    queries = weights.shape[2]
    with pytest.raises(attnscope.InputError, match="layer 2 is out of range"):
        weights.layer(2)
    with pytest.raises(attnscope.InputError, match=f"query rows are 0-{queries - 1}"):
        weights.rows(0, 0, 5, queries + 1)
    with pytest.raises(attnscope.InputError, match=f"key positions outside 0-{queries - 1}"):
        weights.tile(0, 0, [0], [queries])
    with pytest.raises(attnscope.InputError, match="'eager', 'on_demand'"):
        attnscope.capture(tiny("llama"), PUB, attention="flash")


def test_nothing_query_by_key_is_kept_per_layer(tiny):
    _, lazy = _pair(tiny("llama"), fields=("attentions",))
    for layer in _lazy(lazy.main).layers:
        assert layer.dense is None and layer.queries is not None and layer.keys is not None
        assert layer.queries.shape == (4, len(lazy.tokens), 8) and layer.keys.shape == (2, len(lazy.tokens), 8)


def test_smollm2_at_1024_tokens_on_demand_equals_eager(smollm2):
    """Each on-demand weight equals the model's own eager attention function run on the same queries and keys
    within 1e-6. Against a separate eager capture the forward passes themselves differ (SDPA's layer outputs
    vs eager's feed the next layer), which moves a few weights of deeper layers by a few 1e-6 (measured: at most
    4.4e-6 in layer 18), within the 1e-5 the layer outputs agree to."""
    from attnscope.capture.recorder import eager_function_for

    ids = smollm2.tokenizer(" ".join([PUB] * 80), add_special_tokens=False)["input_ids"][:1024]
    eager = attnscope.capture(smollm2, input_ids=ids, fields=["attentions"], top_k=0, attention="eager")
    lazy = attnscope.capture(smollm2, input_ids=ids, fields=["attentions"], top_k=0, attention="on_demand")
    weights = _lazy(lazy.main)
    assert weights.shape == eager.attentions.shape == (30, 9, 1024, 1024) and lazy.eager_modules == {}
    weights.block_bytes = 1024 * 13 * 100
    assert weights.block_rows == 100  # a layer is computed in 11 row blocks
    causal = torch.tril(torch.ones(1024, 1024, dtype=torch.bool))
    mask = torch.where(causal, 0.0, torch.finfo(torch.float32).min)[None, None]
    for layer in range(30):
        module = smollm2.model.model.layers[layer].self_attn
        part = weights.layers[layer]
        q, k = torch.from_numpy(part.queries)[None], torch.from_numpy(part.keys)[None]
        with torch.inference_mode():
            _, own = eager_function_for(type(module))(module, q, k, torch.zeros_like(k), mask, scaling=part.scale)
        computed = weights.layer(layer)
        np.testing.assert_allclose(computed, own[0].numpy(), atol=1e-6, rtol=0, err_msg=f"layer {layer}")
        np.testing.assert_allclose(computed, eager.attentions[layer], atol=1e-5, rtol=0, err_msg=f"layer {layer}")
    np.testing.assert_allclose(
        weights.tile(29, 8, range(1000, 1024), range(0, 1024, 7)), eager.attentions[29, 8, 1000:, ::7], atol=1e-5
    )


def test_auto_captures_on_demand_only_past_the_dense_limit(tiny, monkeypatch):
    """The default mode ("auto") keeps eager weights while every stack's dense float32 attention fits in
    EAGER_LIMIT_BYTES and switches to on demand past it, with the same weights either way."""
    from attnscope.capture import engine

    handle = tiny("llama")
    shape = handle.stacks["decoder"]
    explicit = attnscope.capture(handle, LONG, truncate=True, fields=["attentions"], attention="on_demand")
    n = explicit.attentions.shape[2]
    needed = shape.layers * shape.heads * n * n * 4
    monkeypatch.setattr(engine, "EAGER_LIMIT_BYTES", needed)  # exactly at the limit: still eager
    short = attnscope.capture(handle, LONG, truncate=True, fields=["attentions"])
    assert short.attention_mode == "eager" and isinstance(short.attentions, np.ndarray)
    monkeypatch.setattr(engine, "EAGER_LIMIT_BYTES", needed - 1)
    long = attnscope.capture(handle, LONG, truncate=True, fields=["attentions"])
    assert long.attention_mode == "on_demand" and isinstance(long.attentions, LazyAttention)
    np.testing.assert_allclose(np.asarray(long.attentions), short.attentions, atol=1e-6, rtol=0)


def test_dense_attention_bytes_counts_every_stack_and_the_batch(tiny):
    from attnscope.capture.engine import dense_attention_bytes
    from attnscope.capture.inputs import decoder_tokens, encode

    handle = tiny("bart")
    encoded = [encode(handle, PUB), encode(handle, "A short one.")]
    decoded = [decoder_tokens(handle, "She went home."), decoder_tokens(handle, PUB)]
    n, m = max(len(t.ids) for t in encoded), max(len(t.ids) for t in decoded)
    s = handle.stacks
    expected = (
        2
        * 4
        * (
            s["encoder"].layers * s["encoder"].heads * n * n
            + s["decoder"].layers * s["decoder"].heads * m * m
            + s["cross"].layers * s["cross"].heads * m * n
        )
    )
    assert dense_attention_bytes(handle, encoded, decoded) == expected


def test_unknown_capture_mode_names_the_modes(tiny):
    with pytest.raises(attnscope.InputError, match="'auto', 'eager', 'on_demand'"):
        attnscope.capture(tiny("llama"), PUB, attention="flash")


@pytest.mark.parametrize("top_k", [0, 3])
def test_language_model_head_runs_on_the_last_position_only_without_predictions(tiny, top_k):
    """Without predictions (top_k=0) a causal model's head computes logits for one position, not
    tokens × vocabulary; with them, for every position."""
    handle = tiny("llama")
    seen = []
    hook = handle.model.lm_head.register_forward_hook(lambda _m, args, _out: seen.append(tuple(args[0].shape)))
    try:
        cap = attnscope.capture(handle, PUB, top_k=top_k, fields=["attentions"])
    finally:
        hook.remove()
    n = len(cap.tokens.ids)
    assert seen == [(1, 1 if top_k == 0 else n, handle.model.config.hidden_size)]
    assert (cap.predictions is None) == (top_k == 0)
