"""M2: position biases on demand. T5's relative buckets and ALiBi (as a ``position_bias`` argument, relative
or by key, or folded into the additive mask) are kept per head as vectors linear in tokens, not as dense
weights; every weight computed from them (layer, rows, tile, one row, each query's strongest keys) equals
eager attention within 1e-6 in float32 at lengths past one row block. A bias of no kept form keeps the
layer's dense weights and says why."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attnscope
from attnscope.analysis import long
from attnscope.capture.lazy import LazyAttention
from attnscope.capture.mask_structure import MaskStructure
from attnscope.capture.position_bias import position_bias_of, split_mask

from .alibi_models import alibi_model
from .conftest import PUB

LONG = " ".join([PUB] * 6)  # past the tiny models' 128 positions: truncated to them
TARGET = f"{PUB} She went home to the city. {PUB}"
EXACT = 1e-6
NOT_KEPT = "neither a function of key − query nor of the key alone"


@pytest.fixture(scope="module")
def alibi(tiny_path, tiny):
    """``alibi(form)``: a handle on the tiny Llama turned into an ALiBi decoder of that form (`alibi_models`)."""
    cache: dict[str, attnscope.ModelHandle] = {}

    def make(form: str) -> attnscope.ModelHandle:
        if form not in cache:
            model = alibi_model(tiny_path("llama"), form)
            cache[form] = attnscope.wrap(model, tiny("llama").tokenizer, name=f"alibi-{form}")
        return cache[form]

    return make


def _pair(handle: attnscope.ModelHandle, text: str = LONG):
    """The same input captured eagerly and on demand, the lazy stacks' row blocks made 4 rows high."""
    target = TARGET if handle.kind == "encoder-decoder" else None
    eager = attnscope.capture(handle, text, target=target, fields=["attentions"], truncate=True, attention="eager")
    lazy = attnscope.capture(handle, text, target=target, fields=["attentions"], truncate=True, attention="on_demand")
    for stack in lazy.stacks.values():
        assert isinstance(stack.attentions, LazyAttention)
        stack.attentions.block_bytes = stack.attentions.shape[3] * 13 * 4
    return eager, lazy


def _assert_every_weight_equals(weights: LazyAttention, expected: np.ndarray, what: str) -> None:
    """layer(), rows, a tile, one row and each query's strongest keys of ``weights`` equal ``expected``."""
    layers, heads, queries, keys = expected.shape
    assert weights.shape == expected.shape and queries > 4 * weights.block_rows, what
    for layer in range(layers):
        np.testing.assert_allclose(weights.layer(layer), expected[layer], atol=EXACT, rtol=0, err_msg=what)
        for head in range(heads):
            dense = expected[layer, head]
            np.testing.assert_allclose(weights.rows(layer, head, 3, queries - 2), dense[3:-2], atol=EXACT, rtol=0)
            rows, cols = [queries - 1, 0, 7, 5], range(1, keys, 3)
            tile = weights.tile(layer, head, rows, cols)
            np.testing.assert_allclose(tile, dense[np.ix_(rows, list(cols))], atol=EXACT, rtol=0, err_msg=what)
            np.testing.assert_allclose(weights[layer, head, queries // 2], dense[queries // 2], atol=EXACT, rtol=0)
        top = long.top_keys(weights, layer, 4)
        chosen = np.take_along_axis(expected[layer], np.maximum(top.indices, 0).astype(np.int64), axis=-1)
        np.testing.assert_allclose(top.weights, np.where(top.indices >= 0, chosen, 0), atol=EXACT, rtol=0)
        strongest = np.sort(expected[layer], axis=-1)[..., ::-1][..., :4]
        np.testing.assert_allclose(top.weights, strongest, atol=EXACT, rtol=0, err_msg=what)


def test_t5_bias_is_kept_per_head_and_every_weight_equals_eager(tiny):
    eager, lazy = _pair(tiny("t5"))
    assert set(lazy.stacks) == {"encoder", "decoder", "cross"}
    for role, stack in eager.stacks.items():
        weights = lazy.stacks[role].attentions
        assert isinstance(weights, LazyAttention)
        _, heads, queries, keys = weights.shape
        for part in weights.layers:
            assert part.dense is None, role
            if role == "cross":  # T5's cross attention adds a bias of zeros: nothing to keep
                assert part.bias is None
            else:  # one vector of queries + keys - 1 values per head, shared by the stack's layers
                assert (
                    part.bias is not None and part.bias.relative and part.bias.values.shape == (1, heads, 2 * keys - 1)
                )
        _assert_every_weight_equals(weights, stack.attentions, f"t5 {role}")
        np.testing.assert_allclose(np.asarray(weights), stack.attentions, atol=EXACT, rtol=0)


@pytest.mark.parametrize("form", ["by_key", "relative", "folded"])
def test_alibi_is_kept_per_head_and_every_weight_equals_eager(alibi, form):
    eager, lazy = _pair(alibi(form))
    weights = lazy.attentions
    assert isinstance(weights, LazyAttention)
    for part in weights.layers:
        assert part.dense is None and part.bias is not None
        assert part.bias.relative == (form == "relative")
        assert part.bias.values.shape == (1, 4, 2 * weights.shape[3] - 1 if form == "relative" else weights.shape[3])
    # a bias argument makes the module run its eager attention (SDPA would drop it); a folded mask goes to SDPA
    assert set(lazy.eager_modules.values()) == (
        set() if form == "folded" else {"it adds a position bias (kept per head)"}
    )
    _assert_every_weight_equals(weights, eager.attentions, f"alibi {form}")


def _held_bytes(cap) -> int:
    return sum(part.nbytes for stack in cap.stacks.values() for part in stack.attentions.layers)


@pytest.mark.parametrize("model", ["t5", "by_key", "relative", "folded"])
def test_bytes_held_for_a_bias_grow_linearly_with_tokens(tiny, alibi, model):
    handle = tiny("t5") if model == "t5" else alibi(model)
    ids = handle.tokenizer(LONG, add_special_tokens=False)["input_ids"]
    held = []
    for n in (48, 96):
        target = {"target_ids": ids[:n]} if model == "t5" else {}
        cap = attnscope.capture(handle, input_ids=ids[:n], **target, fields=["attentions"], attention="on_demand")
        assert all(part.dense is None for s in cap.stacks.values() for part in s.attentions.layers)
        held.append(_held_bytes(cap))
    assert held[1] < 2.1 * held[0], held


def test_a_bias_of_no_kept_form_keeps_dense_weights_and_says_why(alibi):
    eager, lazy = _pair(alibi("content"))
    weights = lazy.attentions
    assert isinstance(weights, LazyAttention)
    assert all(part.dense is not None and part.bias is None for part in weights.layers)
    assert len(lazy.eager_modules) == 2 and all(NOT_KEPT in r for r in lazy.eager_modules.values())
    assert all(NOT_KEPT in r for r in weights.eager_layers.values())
    np.testing.assert_allclose(np.asarray(weights), eager.attentions, atol=EXACT, rtol=0)


@pytest.mark.parametrize("model", ["t5", "folded"])
def test_padded_batch_with_a_bias_equals_single_eager_captures(tiny, alibi, model):
    handle = tiny("t5") if model == "t5" else alibi(model)
    target = TARGET if handle.kind == "encoder-decoder" else None
    texts = [LONG, "Yes.", PUB]
    items = [attnscope.CaptureInput(t, target=target) for t in texts]
    batch = attnscope.capture_batch(handle, items, fields=["attentions"], truncate=True, attention="on_demand")
    for text, together in zip(texts, batch):
        alone = attnscope.capture(handle, text, target=target, fields=["attentions"], truncate=True, attention="eager")
        for role, stack in alone.stacks.items():
            weights = together.stacks[role].attentions
            assert isinstance(weights, LazyAttention) and all(p.dense is None for p in weights.layers)
            weights.block_bytes = weights.shape[3] * 13 * 3
            np.testing.assert_allclose(np.asarray(weights), stack.attentions, atol=EXACT, err_msg=f"{model} {role}")


def _causal_bias(values: torch.Tensor, n: int) -> torch.Tensor:
    """(1, heads, n, n) with ``values`` (heads, 2n - 1) on each diagonal key - query, garbage above it."""
    distance = torch.arange(n)[None, :] - torch.arange(n)[:, None] + n - 1
    bias = values[:, distance][None].clone()
    above = distance > n - 1
    bias[..., above] = 1e3 * torch.arange(n * n, dtype=torch.float32).view(n, n)[above]  # keys a row does not see
    return bias


def test_bias_forms_are_read_only_where_they_rebuild_every_seen_value():
    n, causal = 6, MaskStructure(causal=True)
    values = torch.randn(2, 2 * n - 1, generator=torch.Generator().manual_seed(0))
    bias = _causal_bias(values, n)
    ok, found = position_bias_of(bias, causal, n, n)
    assert ok and found is not None and found.relative and found.offset == n - 1
    np.testing.assert_array_equal(found.values[0, :, :n], values[:, :n].numpy())  # the diagonals rows see
    assert position_bias_of(bias, MaskStructure(causal=False), n, n) == (False, None)  # garbage seen: not kept
    changed = bias.clone()
    changed[0, 1, 4, 2] += 1e-3  # one seen value off its diagonal
    assert position_bias_of(changed, causal, n, n) == (False, None)
    by_key = torch.arange(n, dtype=torch.float32).expand(1, 2, n, n) * torch.tensor([0.5, 0.25])[None, :, None, None]
    ok, found = position_bias_of(by_key, MaskStructure(causal=False), n, n)
    assert ok and found is not None and not found.relative and found.values.shape == (1, 2, n)
    assert position_bias_of(torch.zeros(1, 2, n, n), causal, n, n) == (True, None)
    assert position_bias_of(torch.zeros(1, 2, n, n - 1), causal, n, n) == (False, None)


def test_split_mask_separates_a_folded_bias_from_the_pattern():
    seen = torch.ones(4, 4, dtype=torch.bool).tril()[None, None]
    low = torch.finfo(torch.float32).min
    alibi = torch.tensor([0.5, 0.25])[:, None, None] * torch.arange(4.0)
    folded = torch.where(seen, 0.0, low) + alibi[None]  # (1, 2, 4, 4)
    pattern, term = split_mask(folded)
    assert torch.equal(pattern, seen) and term is not None
    assert torch.equal(term, torch.where(seen, alibi[None], 0.0))
    pattern, term = split_mask(torch.where(seen, 0.0, low))
    assert torch.equal(pattern, seen) and term is None
    uneven = folded.clone()
    uneven[0, 1, 3, 0] = low  # the heads hide different keys: not one pattern
    assert split_mask(uneven) is None


def test_alibi_model_outside_the_attention_interface_stays_dense_and_says_why(tiny):
    """Bloom (transformers 5) adds its ALiBi inside its own attention module: no attention function sees it,
    so on demand its weights come from output_attentions, held dense, with the reason."""
    import transformers

    from .tiny_models import gpt2_tokenizer

    tokenizer = gpt2_tokenizer()
    config = transformers.BloomConfig(vocab_size=len(tokenizer), hidden_size=32, n_head=4, n_layer=2)
    torch.manual_seed(0)
    handle = attnscope.wrap(transformers.BloomForCausalLM(config).eval(), tokenizer, name="tiny-bloom")
    eager = attnscope.capture(handle, PUB, fields=["attentions"], attention="eager")
    lazy = attnscope.capture(handle, PUB, fields=["attentions"], attention="on_demand")
    assert isinstance(lazy.attentions, np.ndarray) and lazy.attentions.shape == (
        2,
        4,
        len(lazy.tokens),
        len(lazy.tokens),
    )
    (reason,) = lazy.eager_modules.values()
    assert "not through transformers' AttentionInterface" in reason and "held dense" in reason
    assert eager.eager_modules == {}
    np.testing.assert_allclose(lazy.attentions, eager.attentions, atol=EXACT, rtol=0)


@pytest.mark.parametrize("model", ["t5", "folded", "by_key"])
def test_allowed_and_bias_fields_on_demand_equal_the_eager_capture(tiny, alibi, model):
    """A bias folded into the mask is split into ``allowed`` and ``bias`` on demand as in eager mode."""
    handle = tiny("t5") if model == "t5" else alibi(model)
    target = TARGET if handle.kind == "encoder-decoder" else None
    fields = ["attentions", "allowed", "bias"]
    eager = attnscope.capture(handle, PUB, target=target, fields=fields, attention="eager")
    lazy = attnscope.capture(handle, PUB, target=target, fields=fields, attention="on_demand")
    for role, stack in eager.stacks.items():
        np.testing.assert_array_equal(lazy.stacks[role].allowed, stack.allowed, err_msg=f"{model} {role}")
        assert stack.bias is not None and lazy.stacks[role].bias is not None
        np.testing.assert_allclose(lazy.stacks[role].bias, stack.bias, atol=EXACT, rtol=0, err_msg=f"{model} {role}")
