"""M4: a capture of token ids as given, never re-tokenised; tokens, texts, offsets and words derived from them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attnscope
from attnscope.capture.from_ids import tokens_from_ids
from attnscope.errors import InputError

from .conftest import PUB

TOKEN_FIELDS = ("ids", "raw", "display", "offsets", "word_ids", "special", "segments", "texts", "masked")


def test_split_pieces_that_retokenise_as_one_token_are_kept_exactly(tiny):
    handle = tiny("smollm2")
    tok = handle.tokenizer
    whole = attnscope.encode(handle, "The girl ran").ids
    ids = tok.convert_tokens_to_ids(["The", "Ġ", "g", "i", "r", "l", "Ġ", "r", "a", "n"])
    assert attnscope.encode(handle, tok.decode(ids)).ids == whole != ids  # the text would tokenise otherwise
    cap = attnscope.capture(handle, input_ids=ids)
    assert cap.tokens.ids == ids
    assert cap.tokens.display == ["The", "␣", "g", "i", "r", "l", "␣", "r", "a", "n"]
    assert cap.tokens.texts == ("The girl ran",)
    assert cap.tokens.offsets == [(0, 3), *((i, i + 1) for i in range(3, 12))]
    assert cap.tokens.word_ids == [0, None, 1, 1, 1, 1, None, 2, 2, 2]
    assert cap.attentions.shape == (2, 4, 10, 10)


def test_generated_ids_that_decode_to_other_tokens_are_kept_exactly(tiny):
    """The issue's example: 35 generated ids whose decoded text re-tokenises to other tokens."""
    handle = tiny("gpt2")
    prompt = handle.tokenizer(PUB, return_tensors="pt")
    torch.manual_seed(3)
    sequence = handle.model.generate(**prompt, max_new_tokens=35, min_new_tokens=35, do_sample=True, pad_token_id=0)[
        0
    ].tolist()
    again = attnscope.encode(handle, handle.tokenizer.decode(sequence)).ids
    assert again != sequence  # re-tokenising the text would silently change the tokens
    cap = attnscope.capture(handle, input_ids=sequence)
    assert cap.tokens.ids == sequence
    assert cap.attentions.shape == (2, 4, len(sequence), len(sequence))
    assert cap.tokens.texts == (handle.tokenizer.decode(sequence, clean_up_tokenization_spaces=False),)


@pytest.mark.parametrize("family", ["gpt2", "llama", "smollm2", "t5", "bert"])
def test_ids_whose_text_encodes_back_to_them_give_what_encode_gives(tiny, family):
    """Tokens from ids equal `encode`'s tokens of their decoded text wherever that text gives the same ids."""
    handle = tiny(family)
    compared = 0
    for text in (PUB, "a naïve café in Zürich, 東京 and 😀 here", "The cat sat.\nIt was  tired."):
        ids = attnscope.encode(handle, text).ids
        from_ids = tokens_from_ids(handle, ids)
        again = attnscope.encode(handle, from_ids.texts[0])
        if again.ids != ids:  # the tokenizer's text is lossy here (an unknown token, a lower-cased letter)
            continue
        compared += 1
        for name in TOKEN_FIELDS:
            assert getattr(from_ids, name) == getattr(again, name), name
    assert compared >= 2


def test_ids_and_pair_ids_capture_what_the_text_pair_captures(default_model):
    by_text = attnscope.capture(default_model, "The cat sat.", "It was tired.")
    b = by_text.tokens.sentence_b_start
    ids = by_text.tokens.ids
    by_ids = attnscope.capture(default_model, input_ids=ids[:b], input_ids_pair=ids[b:])
    assert by_ids.tokens.ids == ids
    assert by_ids.tokens.segments == by_text.tokens.segments
    assert by_ids.tokens.sentence_b_start == b
    assert by_ids.tokens.word_ids == by_text.tokens.word_ids
    assert by_ids.tokens.texts == ("the cat sat.", "it was tired.")
    np.testing.assert_array_equal(by_ids.attentions, by_text.attentions)


def test_byte_tokens_of_a_character_all_span_it_when_ids_do_not_retokenise(tiny):
    handle = tiny("gpt2")
    tok = handle.tokenizer
    face = attnscope.encode(handle, " 😀").raw  # Ġ and the emoji's four byte tokens
    assert len(face) == 5
    ids = tok.convert_tokens_to_ids(["c", "a", "f", "e", *face])  # "cafe" spelled letter by letter
    tokens = tokens_from_ids(handle, ids)
    assert tokens.texts == ("cafe 😀",)
    assert tokens.offsets == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (5, 6), (5, 6), (5, 6)]
    assert tokens.display[5:] == ["\\xf0", "\\x9f", "\\x98", "\\x80"]
    assert tokens.word_ids == [0, 0, 0, 0, None, 1, 1, 1, 1]


def test_bytes_that_form_no_character_read_as_replacement_characters(tiny):
    handle = tiny("gpt2")
    face = handle.tokenizer.convert_tokens_to_ids(attnscope.encode(handle, "😀").raw)
    tokens = tokens_from_ids(handle, face[::-1] + handle.tokenizer.convert_tokens_to_ids(["Ġ", "a"]))
    assert tokens.texts == ("\ufffd" * 4 + " a",)  # four stray bytes: four characters, as Python decodes them
    assert tokens.offsets == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6)]


def test_a_mask_token_among_the_ids_is_a_masked_position(default_model):
    ids = attnscope.encode(default_model, "The girl [MASK] home.").ids
    tokens = tokens_from_ids(default_model, ids)
    assert tokens.masked == (3,) and not tokens.special[3] and tokens.display[3] == "[MASK]"


def test_decoder_input_ids_of_an_encoder_decoder_are_kept(tiny):
    handle = tiny("bart")
    by_text = attnscope.capture(handle, "The cat sat.", target="A cat")
    assert by_text.decoder_tokens is not None
    target_ids = by_text.decoder_tokens.ids
    by_ids = attnscope.capture(handle, input_ids=by_text.tokens.ids, target_ids=target_ids)
    assert by_ids.decoder_tokens is not None and by_ids.decoder_tokens.ids == target_ids
    for role in ("encoder", "decoder", "cross"):
        np.testing.assert_array_equal(by_ids.stack(role).attentions, by_text.stack(role).attentions)


def test_ids_may_be_a_tensor_an_array_or_a_batch_of_one(tiny):
    handle = tiny("gpt2")
    ids = attnscope.encode(handle, PUB).ids
    for given in (torch.tensor(ids), np.array(ids), torch.tensor([ids]), [ids], tuple(ids)):
        assert attnscope.capture(handle, input_ids=given, fields="attentions", top_k=0).tokens.ids == ids


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_ids": []}, "input_ids is empty: give at least one token id"),
        ({"input_ids": [5, 10**6]}, "input_ids[1] is 1000000, outside the vocabulary of model"),
        ({"input_ids": [5, -1]}, "input_ids[1] is -1, outside the vocabulary"),
        ({"input_ids": [5, 7, "the"]}, "input_ids[2] is 'the', not a token id: ids are ints 0-"),
        ({"input_ids": [5, 7.0]}, "input_ids[1] is 7.0, not a token id"),
        ({"input_ids": "The girl"}, "input_ids must be a list of token ids (ints), got str"),
        ({"input_ids": [[5, 6], [7, 8]]}, "input_ids holds a batch of 2 sequences: pass one sequence's ids"),
        ({"input_ids": [5] * 129}, "input_ids holds 129 tokens; model"),
        ({"input_ids": [5], "input_ids_pair": [9, 10**6]}, "input_ids_pair[1] is 1000000"),
        ({"input_ids": [5] * 100, "input_ids_pair": [6] * 29}, "takes at most 128 positions"),
        ({"text": "The girl", "input_ids": [5]}, "pass either text (and text_pair) or input_ids"),
        ({"input_ids_pair": [5]}, "input_ids_pair is sentence B after input_ids: pass input_ids too"),
        ({"input_ids": [5], "target_ids": [5]}, "target_ids is the decoder's input of an encoder-decoder model"),
        ({}, "no input given: pass a text, or input_ids"),
    ],
)
def test_bad_ids_are_refused_naming_the_position_and_range(tiny, kwargs, message):
    handle = tiny("gpt2")
    with pytest.raises(InputError) as caught:
        attnscope.capture(handle, **kwargs)
    assert message in str(caught.value)
    if "outside the vocabulary" in message:
        assert f"token ids are 0-{len(handle.tokenizer) - 1}" in str(caught.value)
