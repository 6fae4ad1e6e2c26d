"""C2/C3: captured attention is exactly the model's, and rebuilds from the captured parts, on every family."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

import attnscope

from .conftest import PUB
from .tiny_models import ARCHITECTURES

SHORT = "The girl ran to a local pub."
TARGET = "She went home."


def _capture(handle, text=SHORT, **kw):
    target = TARGET if handle.kind == "encoder-decoder" else None
    return attnscope.capture(handle, text, target=target, fields="all", **kw)


def _reference_outputs(handle, cap):
    """The model's own eager forward with output_attentions / output_hidden_states on the same ids."""
    model = handle.model
    kwargs = {"input_ids": torch.tensor([cap.tokens.ids])}
    if handle.kind == "encoder-decoder":
        kwargs["decoder_input_ids"] = torch.tensor([cap.decoder_tokens.ids])
    with torch.no_grad():
        return model(**kwargs, output_attentions=True, output_hidden_states=True)


def _own_attentions(handle, outputs) -> dict[str, list]:
    if handle.kind == "encoder-decoder":
        return {
            "encoder": outputs.encoder_attentions,
            "decoder": outputs.decoder_attentions,
            "cross": outputs.cross_attentions,
        }
    return {handle.main_stack: outputs.attentions}


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_captured_attention_equals_models_own_output_attentions(tiny, arch):
    handle = tiny(arch)
    cap = _capture(handle)
    own = _own_attentions(handle, _reference_outputs(handle, cap))
    assert set(cap.stacks) == set(own)
    for role, layers in own.items():
        stack = cap.stacks[role]
        assert stack.layers == len(layers) == handle.stacks[role].layers
        expected = np.stack([layer[0].numpy() for layer in layers])
        assert stack.attentions.shape == expected.shape
        np.testing.assert_allclose(stack.attentions, expected, atol=1e-6)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_softmax_of_rebuilt_scores_equals_attention(tiny, arch):
    cap = _capture(tiny(arch))
    for role, stack in cap.stacks.items():
        for layer in range(stack.layers):
            np.testing.assert_allclose(
                stack.rebuilt_attentions(layer),
                stack.attentions[layer],
                atol=2e-6,
                err_msg=f"{arch} {role} layer {layer}",
            )


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_head_outputs_equal_attention_times_values(tiny, arch):
    cap = _capture(tiny(arch))
    for stack in cap.stacks.values():
        expected = np.einsum("lhqk,lhkd->lhqd", stack.attentions, stack.values)
        np.testing.assert_allclose(stack.head_outputs, expected, atol=1e-5)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_hidden_states_equal_models_own_output_hidden_states(tiny, arch):
    handle = tiny(arch)
    cap = _capture(handle)
    outputs = _reference_outputs(handle, cap)
    if handle.kind == "encoder-decoder":
        own = {"encoder": outputs.encoder_hidden_states, "decoder": outputs.decoder_hidden_states}
    else:
        own = {handle.main_stack: outputs.hidden_states}
    for role, layers in own.items():
        expected = np.stack([h[0].numpy() for h in layers])
        assert cap.stacks[role].hidden_states.shape == (handle.stacks[role].layers + 1,) + expected.shape[1:]
        np.testing.assert_allclose(cap.stacks[role].hidden_states, expected, atol=1e-5)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_batch_with_padding_equals_single_runs(tiny, arch):
    handle = tiny(arch)
    texts = [SHORT, "Yes.", "A much longer sentence that needs more tokens than the others do."]
    target = TARGET if handle.kind == "encoder-decoder" else None
    items = [attnscope.CaptureInput(t, target=target) for t in texts]
    batch = attnscope.capture_batch(handle, items, fields="all")
    for text, together in zip(texts, batch):
        alone = attnscope.capture(handle, text, target=target, fields="all")
        assert together.tokens.ids == alone.tokens.ids
        for role, stack in alone.stacks.items():
            for name in attnscope.ALL_FIELDS:
                a, b = getattr(stack, name), getattr(together.stacks[role], name)
                assert (a is None) == (b is None), f"{arch} {role} {name}"
                if a is not None:
                    np.testing.assert_allclose(b, a, atol=2e-5, err_msg=f"{arch} {role} {name}")


def test_grouped_query_heads_are_expanded_with_their_mapping(tiny):
    handle = tiny("llama")
    stack = _capture(handle).main
    assert handle.stacks["decoder"].kv_heads == 2
    assert stack.kv_head_of.tolist() == [0, 0, 1, 1]
    assert stack.keys.shape[1] == stack.queries.shape[1] == 4
    np.testing.assert_array_equal(stack.keys[:, 0], stack.keys[:, 1])
    np.testing.assert_array_equal(stack.values[:, 2], stack.values[:, 3])
    assert not np.allclose(stack.keys[:, 0], stack.keys[:, 2])


def test_sliding_window_mask_is_captured(tiny):
    stack = _capture(tiny("mistral"), PUB).main
    n = stack.allowed.shape[-1]
    i, j = np.indices((n, n))
    assert n > 8
    np.testing.assert_array_equal(stack.allowed[0], (j <= i) & (i - j < 4))
    assert np.all(stack.attentions[0][:, ~stack.allowed[0]] == 0)


def test_causal_mask_hides_future_tokens(tiny):
    stack = _capture(tiny("gpt2")).main
    n = stack.allowed.shape[-1]
    np.testing.assert_array_equal(stack.allowed[1], np.tril(np.ones((n, n), dtype=bool)))
    assert np.all(np.triu(stack.attentions[1], k=1) == 0)


def test_t5_relative_position_bias_is_captured_per_stack(tiny):
    cap = _capture(tiny("t5"))
    encoder, cross = cap.stacks["encoder"], cap.stacks["cross"]
    assert encoder.bias is not None and np.abs(encoder.bias).max() > 0
    # T5 computes the bias in layer 0 and reuses it in every later layer of the stack
    np.testing.assert_array_equal(encoder.bias[0], encoder.bias[1])
    assert float(encoder.scaling[0]) == 1.0  # T5 does not scale q·k
    assert cross.attentions.shape == (3, 4, len(cap.decoder_tokens), len(cap.tokens))


def test_models_without_bias_report_none(default_model):
    cap = attnscope.capture(default_model, SHORT, fields="all")
    assert cap.main.bias is None
    assert cap.main.allowed.all()


def test_encoder_decoder_stacks_have_their_own_depths(tiny):
    cap = _capture(tiny("bart"))
    assert (cap.stacks["encoder"].layers, cap.stacks["decoder"].layers, cap.stacks["cross"].layers) == (2, 3, 3)
    assert cap.decoder_tokens.display[-1] != "" and len(cap.decoder_tokens) > 1


def test_only_requested_fields_are_kept(default_model):
    cap = attnscope.capture(default_model, SHORT, fields=["attentions"])
    assert cap.main.attentions is not None
    assert cap.main.queries is None and cap.main.hidden_states is None
    with pytest.raises(attnscope.AttnscopeError, match="capture it with fields"):
        cap.main.require("queries")


def test_float16_on_request_halves_the_bytes(default_model):
    full = attnscope.capture(default_model, SHORT, fields="all")
    half = attnscope.capture(default_model, SHORT, fields="all", dtype="float16")
    assert half.main.attentions.dtype == np.float16
    assert half.main.queries.nbytes * 2 == full.main.queries.nbytes
    np.testing.assert_allclose(half.main.attentions, full.main.attentions, atol=1e-3)


def test_default_model_capture_equals_its_output_attentions(default_model):
    cap = attnscope.capture(default_model, PUB, fields="all")
    own = _own_attentions(default_model, _reference_outputs(default_model, cap))["encoder"]
    np.testing.assert_allclose(cap.attentions, np.stack([a[0].numpy() for a in own]), atol=1e-6)
    assert cap.attentions.shape == (6, 12, 17, 17)
    assert cap.main.queries.shape == (6, 12, 17, 32)
    assert cap.hidden_states.shape == (7, 17, 384)
    for layer in range(6):
        np.testing.assert_allclose(cap.main.rebuilt_attentions(layer), cap.attentions[layer], atol=2e-6)


def test_gemma2_logit_softcap_is_part_of_the_rebuilt_scores(tiny):
    stack = _capture(tiny("gemma2"), PUB).main
    assert stack.softcap == [0.5, 0.5]
    scores = stack.scores(0)
    assert np.nanmax(np.abs(np.where(np.isfinite(scores), scores, np.nan))) <= 0.5
    # without the cap the rebuild would not match: the cap really is captured and used
    uncapped = AttentionStackCopy(stack, softcap=[None, None])
    assert not np.allclose(uncapped.rebuilt_attentions(0), stack.attentions[0], atol=1e-6)


def test_gpt_oss_attention_sinks_are_captured(tiny):
    stack = _capture(tiny("gpt_oss")).main
    assert stack.sinks is not None and stack.sinks.shape == (2, 4)
    row_sums = stack.attentions.sum(axis=-1)
    assert np.all(row_sums < 1.0)  # the sink takes its share, then is dropped
    np.testing.assert_allclose(stack.rebuilt_attentions(1), stack.attentions[1], atol=2e-6)


def AttentionStackCopy(stack, **changes):
    import dataclasses

    return dataclasses.replace(stack, **changes)


def _bert2bert(tie: bool) -> tuple:
    """An in-memory BERT2BERT (EncoderDecoderModel); ``tie`` shares each encoder layer's parameters with the
    decoder layer of the same depth, as ``tie_encoder_decoder=True`` means."""
    from .tiny_models import SMALL, wordpiece

    tokenizer = wordpiece()
    encoder = transformers.BertConfig(vocab_size=len(tokenizer), **SMALL)
    decoder = transformers.BertConfig(
        vocab_size=len(tokenizer),
        is_decoder=True,
        add_cross_attention=True,
        **dict(SMALL, num_hidden_layers=2 if tie else 3),
    )
    config = transformers.EncoderDecoderConfig.from_encoder_decoder_configs(
        encoder,
        decoder,
        tie_encoder_decoder=tie,
        decoder_start_token_id=tokenizer.cls_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(1)
    model = transformers.EncoderDecoderModel(config=config).eval()
    if tie:
        for mine, theirs in zip(model.encoder.encoder.layer, model.decoder.bert.encoder.layer):
            for name, parameter in mine.named_parameters():
                owner, _, leaf = name.rpartition(".")
                setattr(theirs.get_submodule(owner), leaf, parameter)
    return model, tokenizer


@pytest.mark.parametrize("tie", [False, True], ids=["untied", "tied"])
def test_bert2bert_encoder_decoder_model_is_captured_exactly(tie):
    model, tokenizer = _bert2bert(tie)
    handle = attnscope.wrap(model, tokenizer, name="bert2bert")
    depth = 2 if tie else 3
    assert handle.kind == "encoder-decoder" and handle.has_lm_head
    assert {r: (s.layers, s.heads) for r, s in handle.stacks.items()} == {
        "encoder": (2, 4),
        "decoder": (depth, 4),
        "cross": (depth, 4),
    }
    cap = _capture(handle)  # the model runs SDPA as built: the capture switches it for its own run only
    assert cap.decoder_tokens.ids[0] == tokenizer.cls_token_id
    model.set_attn_implementation("eager")  # so that the reference returns its weights
    own = _own_attentions(handle, _reference_outputs(handle, cap))
    assert set(cap.stacks) == {"encoder", "decoder", "cross"}
    for role, layers in own.items():
        stack = cap.stacks[role]
        expected = np.stack([layer[0].numpy() for layer in layers])
        assert stack.attentions.shape == expected.shape == (handle.stacks[role].layers, 4) + expected.shape[2:]
        np.testing.assert_allclose(stack.attentions, expected, atol=1e-6, err_msg=role)
        for layer in range(stack.layers):
            np.testing.assert_allclose(stack.rebuilt_attentions(layer), stack.attentions[layer], atol=2e-6)
    decoder = cap.stacks["decoder"].attentions
    assert np.allclose(np.triu(decoder[0, 0], 1), 0)  # the decoder's self-attention is causal
    assert cap.stacks["cross"].attentions.shape[-2:] == (len(cap.decoder_tokens), len(cap.tokens))
    if tie:
        np.testing.assert_array_equal(
            model.encoder.encoder.layer[0].attention.self.query.weight.detach(),
            model.decoder.bert.encoder.layer[0].attention.self.query.weight.detach(),
        )
