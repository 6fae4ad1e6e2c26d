"""Porting a BertViz notebook to transformers 5: what its idioms hand a view by mistake is named, with the
replacement to write (issue 14, item 2), and a layer or head left out by include_layers/include_heads is
said to be left out (item 4)."""

from __future__ import annotations

import pytest
import torch
import transformers

import attnscope
from attnscope.capture.loading import default_model_path
from attnscope.errors import InputError

TEXT = "The cat sat on the mat."


@pytest.fixture(scope="module")
def bert_run():
    """The default model loaded and run as BertViz's head_view notebook does (eager, output_attentions)."""
    path = default_model_path()
    model = transformers.AutoModel.from_pretrained(path, output_attentions=True).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    inputs = tokenizer(TEXT, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
    return model, tokenizer, inputs, outputs


def error_of(view, *args, **kwargs) -> str:
    with pytest.raises(InputError) as error:
        view(*args, **kwargs)
    return str(error.value)


@pytest.mark.parametrize("view", [attnscope.head_view, attnscope.model_view])
def test_outputs_last_item_of_an_encoder_is_named_and_outputs_attentions_works(bert_run, view):
    """BertViz's notebooks pass outputs[-1]; under transformers 5 that is BERT's empty cross_attentions."""
    _, tokenizer, inputs, outputs = bert_run
    tokens = tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])
    assert outputs[-1] == () and len(outputs.attentions) == 6  # what transformers 5 returns
    message = error_of(view, outputs[-1], tokens)
    assert message.startswith(
        "attention is an empty tuple. If it is outputs[-1], as BertViz's notebooks "
        "(written for transformers 4) pass it: under transformers 5 that is the model's "
        "cross_attentions, empty for a model without cross-attention; pass outputs.attentions "
        "(outputs = model(**inputs, output_attentions=True)). If it is outputs.attentions, "
        "the model ran without attention weights"
    )
    shown = view(outputs.attentions, tokens, html_action="return")
    assert shown.header["sequences"]["encoder"]["tokens"][:3] == ["[CLS]", "the", "cat"]


def test_the_whole_output_and_a_cache_say_what_to_pass(bert_run, tiny_path):
    model, tokenizer, inputs, outputs = bert_run
    tokens = tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])
    assert error_of(attnscope.head_view, outputs, tokens) == (
        "attention is the model's whole output (BaseModelOutputWithPoolingAndCrossAttentions): pass outputs.attentions"
    )
    with torch.no_grad():
        pooled = model(**inputs, output_attentions=False)[-1]  # the pooler output, (1, 384)
    assert error_of(attnscope.head_view, pooled, tokens) == (
        "attention must be a tuple or list with one (batch, heads, query, key) array per layer (or one (layers, "
        "batch, heads, query, key) array); got an array of shape (1, 384). outputs[-1] is not the attention "
        "under transformers 5: pass outputs.attentions (outputs = model(**inputs, output_attentions=True))"
    )

    gpt2 = transformers.AutoModel.from_pretrained(tiny_path("gpt2", head=False)).eval()
    gpt2_tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_path("gpt2", head=False))
    ids = gpt2_tokenizer("the cat sat", return_tensors="pt")
    with torch.no_grad():
        plain = gpt2(**ids)  # BertViz's GPT-2 notebook with output_attentions forgotten: outputs[-1] is the cache
    assert error_of(attnscope.head_view, plain[-1], list("abc")) == (
        "attention is a DynamicCache, the model's past_key_values: outputs[-1] is not the attention under "
        "transformers 5. Pass outputs.attentions (outputs = model(**inputs, output_attentions=True))"
    )


def test_the_whole_output_of_an_encoder_decoder_names_its_three_stacks(tiny_path):
    path = tiny_path("bart", head=False)
    model = transformers.AutoModel.from_pretrained(path, output_attentions=True).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    inputs = tokenizer("the cat sat", return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs, decoder_input_ids=inputs["input_ids"])
    tokens = tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])
    assert error_of(attnscope.model_view, encoder_attention=outputs, encoder_tokens=tokens) == (
        "encoder_attention is the model's whole output (Seq2SeqModelOutput): pass its attentions, "
        "encoder_attention=outputs.encoder_attentions, decoder_attention=outputs.decoder_attentions, "
        "cross_attention=outputs.cross_attentions"
    )
    view = attnscope.model_view(
        encoder_attention=outputs.encoder_attentions,
        decoder_attention=outputs.decoder_attentions,
        cross_attention=outputs.cross_attentions,
        encoder_tokens=tokens,
        decoder_tokens=tokens,
    )
    assert list(view.payload.stacks) == ["encoder", "decoder", "cross"]


def test_tokens_that_are_not_token_strings_say_how_to_get_them(bert_run):
    _, tokenizer, inputs, outputs = bert_run
    how = 'tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])'
    cases = [
        (
            inputs["input_ids"][0],
            f"tokens must be strings, one per token; tokens[0] is token ids: convert the ids with {how}",
        ),
        (
            inputs["input_ids"][0].tolist(),
            f"tokens must be strings, one per token; tokens[0] is token ids: convert the ids with {how}",
        ),
        (inputs, f"tokens is the tokenizer's output (BatchEncoding): pass the token strings, {how}"),
        (TEXT, f"tokens is one string ('The cat sat on the mat.'): pass one string per token, {how}"),
        (
            [tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])],
            f"tokens holds a batch of 1 sequence: pass one sequence's tokens (tokens[0], or {how})",
        ),
        (None, f"tokens are missing: pass one string per token, {how}"),
    ]
    for tokens, message in cases:
        assert error_of(attnscope.head_view, outputs.attentions, tokens) == message


@pytest.mark.parametrize("view", [attnscope.head_view, attnscope.model_view])
def test_a_layer_or_head_left_out_by_include_is_named_as_left_out(bert_run, view):
    """include_layers=[0, 1] keeps layers that also read as range(2): layer 4 is still a model layer, left out."""
    _, tokenizer, inputs, outputs = bert_run
    tokens = tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])
    if view is attnscope.head_view:
        assert error_of(view, outputs.attentions, tokens, layer=4, include_layers=[0, 1]) == (
            "layer 4 is not among the included layers: include_layers keeps layers 0, 1; pass one of them as layer"
        )
        assert error_of(view, outputs.attentions, tokens, layer=1, include_layers=[3, 5]) == (
            "layer 1 is not among the included layers: include_layers keeps layers 3, 5; pass one of them as layer"
        )
        assert view(outputs.attentions, tokens, layer=5, include_layers=[3, 5], html_action="return").layer == 5
    # a layer the model does not have is still out of the model's range
    assert error_of(view, outputs.attentions, tokens, include_layers=[0, 6]) == (
        "layer 6 is out of range: the encoder attention has layers 0-5"
    )
