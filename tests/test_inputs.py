"""C4: texts, text pairs, masking, token display forms and offsets, and clear errors for bad input."""

from __future__ import annotations

import warnings

import pytest

import attnscope
from attnscope.errors import InputError, MaskingWarning
from attnscope.index import Query

from .conftest import PUB


def test_default_model_tokens_of_the_pub_sentence(default_model):
    tokens = attnscope.encode(default_model, PUB)
    assert tokens.display == [
        "[CLS]",
        "the",
        "girl",
        "ran",
        "to",
        "a",
        "local",
        "pub",
        "to",
        "escape",
        "the",
        "din",
        "of",
        "her",
        "city",
        ".",
        "[SEP]",
    ]
    assert tokens.special == [True] + [False] * 15 + [True]
    assert tokens.offsets[9] == (31, 37) and PUB[31:37] == "escape"
    assert tokens.word_ids[:4] == [None, 0, 1, 2]
    assert tokens.sentence_b_start is None


def test_masking_position_9_replaces_escape_with_mask_token(default_model):
    with pytest.warns(MaskingWarning):  # the default model has no masked-LM head (see below)
        cap = attnscope.capture(default_model, PUB, mask=[9])
    assert cap.tokens.display[9] == "[MASK]"
    assert cap.tokens.ids[9] == default_model.tokenizer.mask_token_id
    assert cap.tokens.original == {9: "escape"}
    assert cap.tokens.masked == (9,)
    unmasked = attnscope.capture(default_model, PUB)
    assert unmasked.tokens.display[9] == "escape"
    assert not (cap.attentions == unmasked.attentions).all()  # the model saw a different input


def test_text_pair_has_segments_and_sentence_b_start(default_model):
    tokens = attnscope.encode(default_model, "The cat sat.", "It was unbelievably tired.")
    b = tokens.sentence_b_start
    assert tokens.display[b - 1] == "[SEP]" and tokens.display[b] == "it"
    assert tokens.segments == [0] * b + [1] * (len(tokens) - b)
    assert tokens.display[-1] == "[SEP]"
    # word ids keep counting through sentence B; subwords share their word's id
    pieces = [i for i, w in enumerate(tokens.word_ids) if w == tokens.word_ids[b + 2]]
    assert [tokens.raw[i] for i in pieces] == ["un", "##bel", "##ie", "##va", "##bly"]
    assert [tokens.display[i] for i in pieces] == ["un", "bel", "ie", "va", "bly"]
    assert tokens.word_ids[b] == max(w for w in tokens.word_ids[:b] if w is not None) + 1
    assert tokens.offsets[pieces[1]] == (9, 12)  # offsets are within sentence B's own text


def test_byte_level_bpe_markers_are_removed_for_display(tiny):
    tokens = attnscope.encode(tiny("gpt2"), "The girl ran home")
    assert any(r.startswith("Ġ") for r in tokens.raw)
    assert not any("Ġ" in d for d in tokens.display)
    assert "".join(tokens.raw).replace("Ġ", " ") == "The girl ran home"


def test_sentencepiece_markers_are_removed_for_display(tiny):
    tokens = attnscope.encode(tiny("t5"), "The girl ran home")
    assert any(r.startswith("▁") for r in tokens.raw)
    assert not any("▁" in d for d in tokens.display)
    assert tokens.display[-1] == "</s>" and tokens.special[-1]


def test_roberta_pair_marks_special_tokens_and_segments(tiny):
    tokens = attnscope.encode(tiny("roberta"), "The girl ran.", "She left.")
    b = tokens.sentence_b_start
    assert tokens.raw[0] == "<s>" and tokens.raw[b - 2 : b] == ["</s>", "</s>"]
    assert tokens.special[b - 1] and not tokens.special[b]


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_empty_text_is_refused(default_model, text):
    with pytest.raises(InputError, match="text is empty"):
        attnscope.capture(default_model, text)


def test_binary_text_is_refused(default_model):
    with pytest.raises(InputError, match="NUL character"):
        attnscope.encode(default_model, "abc\x00def")
    with pytest.raises(InputError, match="must be a string"):
        attnscope.encode(default_model, b"bytes")  # type: ignore[arg-type]


def test_overlong_text_is_refused_or_truncated_explicitly(default_model):
    long_text = "word " * 600
    with pytest.raises(InputError, match=r"602 tokens long; model .* takes at most 512.*truncate"):
        attnscope.capture(default_model, long_text)
    cap = attnscope.capture(default_model, long_text, truncate=True, fields=["attentions"])
    assert len(cap.tokens) == 512 and cap.tokens.truncated == 90
    assert cap.tokens.display[-1] == "[SEP]"
    assert cap.attentions.shape[-1] == 512


@pytest.mark.parametrize(
    "position,message",
    [
        (17, r"mask position 17 is out of range: this input of 17 tokens has mask positions 0-16"),
        (-1, r"mask position -1 is out of range"),
        (0, r"mask position 0 is the special token '\[CLS\]'"),
        (16, r"mask position 16 is the special token '\[SEP\]'"),
    ],
)
def test_bad_mask_positions_are_refused(default_model, position, message):
    with pytest.raises(InputError, match=message):
        attnscope.capture(default_model, PUB, mask=[position])


def test_masking_a_model_without_mask_token_is_refused(tiny):
    """What the README says: a causal decoder has no mask token, masking is refused there and says why
    (``masking_caveat`` is None, since there is nothing to caveat)."""
    gpt2, t5 = tiny("gpt2"), tiny("t5")
    with pytest.raises(InputError) as error:
        attnscope.capture(gpt2, "The girl ran.", mask=[1])
    assert str(error.value) == (
        f"model {gpt2.name!r} has no mask token, so positions cannot be masked: a causal "
        "decoder predicts the next token and is never trained on a mask token, so masking is "
        "not meaningful there; masking is for masked-language models such as BERT and "
        "RoBERTa, trained to predict a hidden word"
    )
    with pytest.raises(InputError) as error:
        attnscope.capture(t5, "The girl ran.", mask=[1])
    assert str(error.value) == (
        f"model {t5.name!r} has no mask token, so positions cannot be masked: masking is for "
        "masked-language models such as BERT and RoBERTa, trained to predict a hidden word"
    )
    assert attnscope.masking_caveat(gpt2) is None and attnscope.masking_caveat(t5) is None


def test_bad_options_are_refused(default_model):
    with pytest.raises(InputError, match="unknown field"):
        attnscope.capture(default_model, PUB, fields=["weights"])
    with pytest.raises(InputError, match="dtype 'int8' is not supported"):
        attnscope.capture(default_model, PUB, dtype="int8")
    with pytest.raises(InputError, match="no inputs given"):
        attnscope.capture_batch(default_model, [])
    with pytest.raises(InputError, match="layer 6 is out of range: the encoder stack has layers 0-5"):
        attnscope.capture(default_model, PUB, fields="all").main.scores(6)


def test_masking_with_a_model_without_masked_lm_head_warns_and_says_why(default_model):
    with pytest.warns(MaskingWarning) as record:
        cap = attnscope.capture(default_model, PUB, mask=[9])
    caveat = attnscope.masking_caveat(default_model)
    assert cap.masking_caveat == caveat == str(record[0].message)
    assert record[0].filename == __file__  # the warning points at the user's call
    assert caveat.startswith(
        "model 'sentence-transformers/all-MiniLM-L6-v2' has no masked-language-model head, "
        "so its mask token [MASK] was not trained to stand for a word"
    )
    assert "Masking is meaningful with a checkpoint that has a masked-language-model head" in caveat
    assert "BERT, RoBERTa" in caveat and "ELECTRA's generator" in caveat
    assert cap.summary()["masking_caveat"] == caveat
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert attnscope.capture(default_model, PUB).masking_caveat is None  # nothing masked: no caveat
        quiet = attnscope.capture(default_model, PUB, mask=[9], warn=False)  # callers that show it themselves
    assert quiet.masking_caveat == caveat


def test_masking_with_a_masked_lm_head_needs_no_caveat(tiny):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cap = attnscope.capture(tiny("bert"), PUB, mask=[9])
    assert attnscope.masking_caveat(tiny("bert")) is None and cap.masking_caveat is None
    assert attnscope.masking_caveat(tiny("roberta")) is None and attnscope.masking_caveat(tiny("bart")) is None
    assert "has no masked-language-model head" in attnscope.masking_caveat(tiny("bert", head=False))


def test_masking_caveat_of_decoders_and_models_without_mask_token(tiny):
    assert attnscope.masking_caveat(tiny("llama")) is None  # no mask token: masking is refused outright
    assert attnscope.masking_caveat(tiny("t5")) is None
    decoder = attnscope.wrap(tiny("gpt2").model, tiny("roberta").tokenizer, name="gpt2-with-mask")
    assert attnscope.masking_caveat(decoder).startswith(
        "model 'gpt2-with-mask' is a causal decoder: it never saw the mask token <mask> in training"
    )


def test_a_masked_batch_warns_once(default_model):
    with pytest.warns(MaskingWarning) as record:
        caps = attnscope.capture_batch(
            default_model, [attnscope.CaptureInput(PUB, mask=(9,)), PUB, attnscope.CaptureInput(PUB, mask=(3,))]
        )
    assert len(record) == 1 and record[0].filename == __file__
    assert [c.masking_caveat is not None for c in caps] == [True, False, True]


def test_a_masked_corpus_search_warns_unless_the_caller_shows_the_caveat(small_index, default_model):
    query = Query("embedding", 5, top=3)
    with pytest.warns(MaskingWarning, match="has no masked-language-model head"):
        small_index.query(default_model, "Dogs bark at night.", 2, query, mask=[2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = small_index.query(default_model, "Dogs bark at night.", 2, query, mask=[2], warn=False)
    assert result.token_text == "[MASK]"
