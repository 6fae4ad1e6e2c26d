"""C4: every token is shown by the text it stands for, in every tokenizer family; unknown tokens are ordinary.

The field report's input, "naïve café 😀 東京", through each family's tiny tokenizer (tests/tiny_models.py):
byte-level BPE (GPT-2, RoBERTa, Llama-3-style SmolLM2), SentencePiece BPE with byte fallback (Llama-2),
unigram (T5) and WordPiece (the default model). Whole characters read as themselves; a token holding
part of a character reads as its bytes, ``\\xf0``, the same in every family, and its offsets span the
character it is part of.
"""

from __future__ import annotations

import numpy as np
import pytest

import attnscope
from attnscope.capture.inputs import special_token_ids
from attnscope.capture.token_text import byte_alphabet, display_form, readable, scheme_of, token_bytes
from attnscope.corpus import open_corpus
from attnscope.corpus.align import word_of_tokens
from attnscope.corpus.sentence import AnnotatedSentence, Word
from attnscope.index import Index, build_index
from attnscope.views.payload import payload_from_capture
from attnscope.views.sequences import sequence_from_strings, sequence_from_tokens

TEXT = "naïve café 😀 東京"
EMOJI = [r"\xf0", r"\x9f", r"\x98", r"\x80"]
EAST = [r"\xe6", r"\x9d", r"\xb1"]  # 東 in three byte-level tokens
BYTE_LEVEL = ["n", "a", "ïve", "café", "␣", *EMOJI, "␣", *EAST, "京"]

EXPECTED = {
    "gpt2": BYTE_LEVEL,
    "smollm2": BYTE_LEVEL,
    "roberta": ["<s>", *BYTE_LEVEL, "</s>"],
    "llama": ["<s>", "naïve", "café", "␣", *EMOJI, "東", "京"],
    "t5": ["n", "a", "<unk>", "ve", "c", "a", "f", "é", "␣", "<unk>", "␣", "<unk>", "</s>"],
}


def _capture(handle, text=TEXT):
    return attnscope.capture(handle, text, fields=["attentions"], top_k=0)


@pytest.mark.parametrize("arch", sorted(EXPECTED))
def test_issue_text_reads_as_its_characters_in_every_family(tiny, arch):
    tokens = _capture(tiny(arch)).tokens
    assert tokens.display == EXPECTED[arch]
    for i, shown in enumerate(tokens.display):
        if shown in EMOJI:  # a piece of 😀 keeps the offsets of the whole character
            a, b = tokens.offsets[i]
            assert TEXT[a:b] == "😀"
    mojibake = {chr(c) for c in range(0xC0, 0x100)} - set("ïéü") | {chr(c) for c in range(0x100, 0x144)}
    assert not any(set(shown) & mojibake for shown in tokens.display)


def test_wordpiece_default_model_reads_the_issue_text(default_model):
    tokens = _capture(default_model).tokens
    assert tokens.display == ["[CLS]", "naive", "cafe", "[UNK]", "東", "京", "[SEP]"]


@pytest.mark.parametrize("arch", ["gpt2", "smollm2", "llama"])
def test_bytes_of_the_tokens_join_back_into_the_text(tiny, arch):
    handle = tiny(arch)
    tokens = attnscope.encode(handle, TEXT)
    scheme = scheme_of(handle.tokenizer)
    joined = b"".join(token_bytes(r, scheme) for r, sp in zip(tokens.raw, tokens.special) if not sp)
    assert joined.decode("utf-8").strip() == TEXT


def test_display_form_does_not_depend_on_the_space_marker(tiny):
    tokenizer = tiny("gpt2").tokenizer
    assert display_form("cafÃ©", tokenizer, False) == display_form("ĠcafÃ©", tokenizer, False) == "café"
    assert display_form("æĿ±", tokenizer, False) == "東"
    assert display_form("æĿ", tokenizer, False) == r"\xe6\x9d"
    assert display_form("Ċ", tokenizer, False) == "↵"
    assert display_form("ĠĠ", tokenizer, False) == "␣␣"
    assert display_form("<|endoftext|>", tokenizer, True) == "<|endoftext|>"


def test_byte_fallback_tokens_read_as_bytes(tiny):
    tokenizer = tiny("llama").tokenizer
    assert display_form("<0xE6>", tokenizer, False) == r"\xe6"
    assert display_form("▁東", tokenizer, False) == "東"
    assert display_form("<0x0A>", tokenizer, False) == "↵"


def test_readable_notation():
    assert readable("東".encode()) == "東"
    assert readable(b"\xe6\x9d") == r"\xe6\x9d"
    assert readable(b" caf\xc3") == r"caf\xc3"
    assert readable(b"a\tb\x00") == r"a⇥b\x00"
    assert readable(b" \n") == "␣↵"
    assert len(byte_alphabet()) == 256 and byte_alphabet()["Ġ"] == 0x20 and byte_alphabet()["Ċ"] == 0x0A


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_views_label_tokens_and_words_with_their_text(tiny, arch):
    cap = _capture(tiny(arch))
    header = payload_from_capture(cap).header()
    sequence = header["sequences"][cap.kind if cap.kind == "decoder" else "encoder"]
    assert sequence["tokens"] == EXPECTED[arch]
    assert [w for w in sequence["word_labels"]] == ["naïve", "café", "😀", "東京"]


@pytest.mark.parametrize("arch", ["gpt2", "smollm2", "llama"])
def test_bertviz_style_token_strings_read_like_captured_tokens(tiny, arch):
    """head_view(attention, tokens) with tokenizer.convert_ids_to_tokens strings shows the capture's labels."""
    cap = _capture(tiny(arch))
    sequence = sequence_from_strings(cap.tokens.raw, None, tidy=True)
    assert sequence.tokens == EXPECTED[arch]
    assert sequence.special == cap.tokens.special
    words = {sequence.word_labels[w] for w in sequence.words if w is not None}
    assert {"café", "😀"} <= words
    view = attnscope.head_view(tuple(layer[None] for layer in cap.attentions), cap.tokens.raw)
    assert view.payload.header()["sequences"][cap.kind]["tokens"] == EXPECTED[arch]


def test_predictions_are_labelled_with_their_text(tiny):
    cap = attnscope.capture(tiny("gpt2"), TEXT, fields=["attentions"], top_k=50)
    labels = {t for row in cap.predictions.tokens for t in row}
    shifted = {chr(c) for c in range(0x100, 0x144)}  # byte-level stand-ins (Ġ, Ċ, Ł...) never show
    assert labels and not any(set(t) & shifted for t in labels)


def test_unknown_token_is_an_ordinary_token_with_offsets(default_model):
    tokens = attnscope.encode(default_model, TEXT)
    unknown = tokens.raw.index("[UNK]")
    assert tokens.special == [True, False, False, False, False, False, True]
    assert tokens.offsets[unknown] == (11, 12) and TEXT[11:12] == "😀"
    assert tokens.word_ids[unknown] == 2
    assert default_model.tokenizer.unk_token_id not in special_token_ids(default_model.tokenizer)
    sequence = sequence_from_tokens(tokens)
    assert sequence.special[unknown] is False
    assert sequence.word_labels[sequence.words[unknown]] == "😀"


def test_unknown_token_can_be_masked_and_is_kept_by_hide_special(default_model):
    cap = attnscope.capture(default_model, TEXT, mask=[3], top_k=0, warn=False)
    assert cap.tokens.original == {3: "[UNK]"} and cap.tokens.display[3] == "[MASK]"
    cap = attnscope.capture(default_model, TEXT, fields=["attentions"], top_k=0)
    header = payload_from_capture(cap).header()
    assert header["sequences"]["encoder"]["special"] == [True, False, False, False, False, False, True]


def test_unknown_token_that_is_also_another_special_stays_special(tiny):
    tokenizer = tiny("gpt2").tokenizer  # <|endoftext|> is GPT-2's unknown, start and end token at once
    assert tokenizer.unk_token_id in special_token_ids(tokenizer)


def test_unknown_token_is_aligned_to_its_word_and_indexed(default_model, tmp_path):
    words = (Word(form="I", start=0, end=1), Word(form="love", start=2, end=6), Word(form="😀", start=7, end=8))
    sentence = AnnotatedSentence("emoji-1", "I love 😀", words, "test", 1)
    tokens = attnscope.encode(default_model, sentence.text)
    assert tokens.raw == ["[CLS]", "i", "love", "[UNK]", "[SEP]"]
    assert word_of_tokens(sentence, tokens) == [None, 0, 1, 2, None]
    conllu = tmp_path / "emoji.conllu"
    conllu.write_text(
        "# sent_id = emoji-1\n# text = I love 😀\n"
        "1\tI\tI\tPRON\t_\t_\t2\tnsubj\t_\t_\n"
        "2\tlove\tlove\tVERB\t_\t_\t0\troot\t_\t_\n"
        "3\t😀\t😀\tSYM\t_\t_\t2\tobj\t_\t_\n\n",
        encoding="utf-8",
    )
    build_index(open_corpus(conllu), default_model, tmp_path / "index")
    table = Index.open(tmp_path / "index").tables.tokens
    assert list(table["token"]) == ["i", "love", "[UNK]"]
    assert list(table["form"]) == ["I", "love", "😀"] and list(table["upos"]) == ["PRON", "VERB", "SYM"]
    assert (int(table["start"][2]), int(table["end"][2])) == (7, 8)


def test_bertviz_unknown_and_byte_tokens_are_not_special():
    sequence = sequence_from_strings(["[CLS]", "hi", "[UNK]", "<unk>", "<0xF0>", "[SEP]"], None, tidy=True)
    assert sequence.special == [True, False, False, False, False, True]
    assert sequence.tokens == ["[CLS]", "hi", "[UNK]", "<unk>", r"\xf0", "[SEP]"]
    assert np.count_nonzero([w is not None for w in sequence.words]) == 4
