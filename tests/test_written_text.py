"""Tokens read as the text is written, for every tokenizer family (`capture.written`): each character once,
spaces where the text has them, whitespace-only tokens in no word, and one rule for what a word reads in the
app, the notebook views and the search (issue 13 field report, items 1-3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import attnscope
from attnscope.capture.written import blank_tokens, joined, token_pieces, words_text, written_pieces
from attnscope.index.query import query_positions
from attnscope.views.sequences import sequence_from_tokens

FAMILIES = ["bert", "gpt2", "roberta", "bart", "smollm2", "llama", "t5", "albert"]
"""WordPiece, byte-level BPE (GPT-2, RoBERTa, BART, Llama-3-style SmolLM2), SentencePiece BPE with byte
fallback (Llama) and unigram SentencePiece (T5, ALBERT)."""

REPRO = (
    'I love the café in Zürich 😀.\nTokyo (東京) is big.\n\nThe naïve dog barked at me.\nHe said "hello" and left!!!'
)

WORDS = [
    "café",
    "naïve",
    "Zürich",
    "😀",
    "東京",
    "京都",
    "don't",
    "e-mail",
    "York's",
    "!!!",
    "?!",
    "(",
    ")",
    '"hello"',
    "...",
    "hello",
    "THE",
    "a",
    "—",
    "ß",
    "İstanbul",
    "👍🏽",
    "12,5",
    "x",
    "Ünïcödé",
    "100%",
    "@",
    "http://example.org/a?b=c",
    "ﬁ",
    "٣",
]
SEPARATORS = [" ", " ", " ", "", "  ", "\n", "\t", " \n "]


def _normal(text: str) -> str:
    return " ".join(text.split())


def ordinary(tokens) -> dict[int, list[int]]:
    """The ordinary (non-special) positions of each segment."""
    out: dict[int, list[int]] = {}
    for p, (segment, special) in enumerate(zip(tokens.segments, tokens.special)):
        if not special:
            out.setdefault(segment, []).append(p)
    return out


texts = (
    st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), min_size=1, max_size=12)
    .map(lambda parts: "".join(w + s for w, s in parts).strip())
    .filter(bool)
)


@pytest.mark.parametrize("family", FAMILIES)
def test_pieces_give_back_the_text_each_character_once(tiny, family):
    handle = tiny(family)

    @settings(max_examples=40)
    @given(text=texts)
    def check(text):
        tokens = attnscope.encode(handle, text)
        pieces = token_pieces(tokens, ordinary(tokens)[0])
        assert _normal(joined(pieces)) == _normal(text)  # spaces where the text has them, nowhere else
        shown = "".join(piece.text for piece in pieces)
        assert shown == "".join(text.split())  # each character exactly once
        for piece in pieces:
            assert piece.text == piece.text.strip()
            assert piece.text == text[piece.start : piece.end]

    check()


@pytest.mark.parametrize("family", FAMILIES)
def test_the_reported_text_reads_as_written_in_every_family(tiny, family):
    tokens = attnscope.encode(tiny(family), REPRO)
    positions = ordinary(tokens)[0]
    pieces = token_pieces(tokens, positions)
    assert joined(pieces) == _normal(REPRO)
    blank = blank_tokens(tokens)
    for p, piece in zip(positions, pieces):
        if blank[p]:  # a token that stands for whitespace only: no text, in no word
            assert piece.text == "" and tokens.word_ids[p] is None and set(tokens.display[p]) <= set("␣↵⇥␍")
    sequence = sequence_from_tokens(tokens)
    for label in sequence.word_labels:  # every word reads as written: no leading space, no repeated character
        assert label == label.strip() and label in REPRO
    assert "Zürich" in sequence.word_labels and "love" in sequence.word_labels


def test_byte_level_pieces_of_one_character_show_it_once_and_leading_spaces_become_space_before(tiny):
    tokens = attnscope.encode(tiny("gpt2"), REPRO)
    pieces = token_pieces(tokens, ordinary(tokens)[0])
    by_token = [(tokens.display[p], piece.text, piece.space_before) for p, piece in enumerate(pieces)]
    emoji = next(i for i, (_, text, _) in enumerate(by_token) if text == "😀")
    assert by_token[emoji : emoji + 4] == [
        ("\\xf0", "😀", True),
        ("\\x9f", "", False),
        ("\\x98", "", False),
        ("\\x80", "", False),
    ]
    love = next(i for i, (display, _, _) in enumerate(by_token) if display == "l")
    assert tokens.offsets[love] == (1, 3) and by_token[love] == ("l", "l", True)  # the span is " l"
    assert [t for t, _, _ in by_token].count("␣") >= 1 and all(text == "" for d, text, _ in by_token if d == "␣")
    assert "Züürich" not in joined(pieces) and "andlef" not in joined(pieces)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_word_reads_as_written_without_the_space_token_before_it(tiny, family):
    text = "I love the café in Zürich 😀 today"
    tokens = attnscope.encode(tiny(family), text)
    for written in ("love", "Zürich", "😀", "today"):
        start = text.index(written)
        first = next(
            p for p, o in enumerate(tokens.offsets) if o and o[0] <= start < o[1] and not blank_tokens(tokens)[p]
        )
        positions = query_positions(tokens, first, "word")
        assert words_text(tokens, positions) == written, (family, written, [tokens.display[p] for p in positions])
        assert not any(blank_tokens(tokens)[p] for p in positions)


def test_words_read_as_written_in_the_views_and_the_search_with_the_typed_case(default_model):
    text = "The NASA Allergies made Sneezing worse at Zürich."
    tokens = attnscope.encode(default_model, text)
    labels = sequence_from_tokens(tokens).word_labels
    assert labels == ["The", "NASA", "Allergies", "made", "Sneezing", "worse", "at", "Zürich", "."]
    words = {}
    for p, word in enumerate(tokens.word_ids):
        if word is not None:
            words.setdefault(word, []).append(p)
    assert [words_text(tokens, query_positions(tokens, ps[0], "word")) for ps in words.values()] == labels
    masked = attnscope.encode(default_model, text, mask=words[2])  # "Allergies": its mask tokens
    assert words_text(masked, words[2]) == "[MASK]" * len(words[2])
    assert sequence_from_tokens(masked).word_labels[2] == "[MASK]" * len(words[2])


def test_pieces_of_a_masked_token_and_of_tokens_without_a_span():
    text = "ab cd"
    pieces = written_pieces(
        text, [None, (0, 2), (2, 5), None], ["[CLS]", "ab", "[MASK]", "[SEP]"], [False] * 4, [False, False, True, False]
    )
    assert [(p.text, p.space_before) for p in pieces] == [
        ("[CLS]", False),
        ("ab", True),
        ("[MASK]", True),
        ("[SEP]", True),
    ]
    assert (pieces[2].start, pieces[2].end) == (3, 5)
