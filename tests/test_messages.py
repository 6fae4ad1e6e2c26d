"""R1: errors read as sentences: ranges name their unit in good English, and attention that a model ran
without (SDPA) says so and how to get it."""

from __future__ import annotations

import pytest
import torch
import transformers

import attnscope
from attnscope.capture.loading import default_model_path
from attnscope.errors import InputError, allowed_range, check_range, plural


@pytest.mark.parametrize(("noun", "many"), [
    ("layer", "layers"), ("head", "heads"), ("mask position", "mask positions"), ("batch index", "batch indices"),
    ("token position", "token positions"), ("entry", "entries"), ("key", "keys"), ("box", "boxes"),
])
def test_plural_of_the_units_ranges_are_given_in(noun, many):
    assert plural(noun) == many


def test_ranges_in_words():
    assert allowed_range("layer", 12) == "layers 0-11"
    assert allowed_range("head", 1) == "only head 0"
    assert allowed_range("position", 0) == "no positions"


def test_the_field_reports_messages_are_sentences():
    """BertViz arguments from the field report: a batch of 2 and a sentence B start past the tokens."""
    attention = tuple(torch.full((2, 2, 4, 4), 0.25) for _ in range(2))
    with pytest.raises(InputError) as error:
        attnscope.head_view(attention, list("abcd"), batch_index=2)
    assert str(error.value) == "batch_index 2 is out of range: attention (batch size 2) has batch indices 0-1"
    with pytest.raises(InputError) as error:
        attnscope.head_view(attention, list("abcd"), sentence_b_start=4)
    assert str(error.value) == ("sentence_b_start 4 is out of range: "
                                "the encoder sequence of 4 tokens has token positions 0-3")
    with pytest.raises(InputError) as error:
        check_range("sentence_b_start", 17, 17, "the encoder sequence of 17 tokens", unit="token position")
    assert "has token positions 0-16" in str(error.value) and "starts" not in str(error.value)


def test_no_message_pluralises_a_parameter_name(default_model):
    cap = attnscope.capture(default_model, "The girl ran.", fields="all")
    view = attnscope.neuron_view(cap)
    with pytest.raises(Exception) as error:
        view.token = {"side": "query", "index": 99}
    assert "query position 99 is out of range: the encoder stack's query of 6 tokens has query positions 0-5" in str(
        error.value)


@pytest.fixture(scope="module")
def sdpa_run():
    """The default model loaded as transformers loads it by default (SDPA), run with output_attentions."""
    path = default_model_path()
    model = transformers.AutoModel.from_pretrained(path, attn_implementation="sdpa").eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    inputs = tokenizer("The girl ran.", return_tensors="pt")
    with torch.no_grad():
        plain, asked = model(**inputs), model(**inputs, output_attentions=True)
    return plain, asked, tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])


@pytest.mark.parametrize("view", [attnscope.head_view, attnscope.model_view])
def test_attention_from_a_model_run_under_sdpa_says_how_to_get_weights(sdpa_run, view):
    plain, asked, tokens = sdpa_run
    assert plain.attentions is None and len(asked.attentions) == 0  # what transformers returns under SDPA
    for attention, given in ((plain.attentions, "None"), (asked.attentions, "an empty tuple"),
                             ((None,) * 6, "a tuple of 6 Nones, one per layer")):
        with pytest.raises(InputError) as error:
            view(attention, tokens)
        message = str(error.value)
        assert message.startswith(f"attention is {given}: the model ran without attention weights")
        assert "attnscope.capture(handle, text)" in message and "attnscope.wrap(model, tokenizer)" in message
        assert 'attn_implementation="eager"' in message and "output_attentions=True" in message
    with pytest.raises(InputError, match="encoder_attention is an empty tuple: the model ran without"):
        view(encoder_attention=(), encoder_tokens=tokens)


def test_wrapping_the_sdpa_model_captures_its_weights(sdpa_run):
    """What the message advises works: a model loaded with SDPA is captured through attnscope.wrap."""
    path = default_model_path()
    model = transformers.AutoModel.from_pretrained(path, attn_implementation="sdpa").eval()
    handle = attnscope.wrap(model, transformers.AutoTokenizer.from_pretrained(path))
    cap = attnscope.capture(handle, "The girl ran.")
    assert cap.attentions.shape == (6, 12, 6, 6)
    assert model.config._attn_implementation == "sdpa"
