"""Corpus contexts read as the corpus writes them in every tokenizer family (issue 13 field report, items 1 and
3): a raw text with accents, an emoji, CJK and punctuation runs, annotated by spaCy and indexed under tiny
models of each family; every match's surfaces, joined with a space where ``space_before`` says, give its
sentence, each character once; a word search never matches a token that stands for a space."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

import attnscope
from attnscope.cli_search import kwic
from attnscope.index import Query
from attnscope.index.summaries import Match, _add_surface, make_matches

from .index_fixtures import WRITTEN
from .test_written_text import texts

FAMILIES = ["bert", "gpt2", "roberta", "smollm2", "llama", "albert"]
"""The tokenizer families of the models an index takes (encoders and decoders): WordPiece, byte-level BPE
(GPT-2's, RoBERTa's, Llama-3-style), SentencePiece BPE with byte fallback and unigram SentencePiece."""
CAT = "The cat sat on the café."


def reads(match) -> str:
    """A match's sentence as its surfaces and spaces put it."""
    return "".join((" " if space else "") + text for text, space in zip(match.surface, match.space_before))


def sentence_matches(index) -> list:
    """One match per corpus sentence (its first token), at layer 0."""
    rows = np.array([index.tables.sentence_rows(s).start for s in range(index.manifest.sentences)])
    return make_matches(index, rows, np.ones(len(rows), dtype=np.float32), 0, [0])


@pytest.mark.parametrize("family", FAMILIES)
def test_every_context_reads_as_its_sentence_is_written(written_index, family):
    index = written_index(family)
    matches = sentence_matches(index)
    assert " ".join(m.text for m in matches).split() == WRITTEN.split()  # the whole text is indexed
    for m in matches:
        assert reads(m) == " ".join(m.text.split()), family
        assert "".join(m.surface) == "".join(m.text.split()), "each character once"
        for p, (text, space, continues) in enumerate(zip(m.surface, m.space_before, m.continues)):
            assert text == text.strip() and not (continues and space)
            if m.words[p] < 0:  # a token of no word: it stands for whitespace only
                assert text == "" and not continues


def test_the_reported_byte_level_contexts_read_as_written(written_index, tiny):
    index = written_index("gpt2")
    first = sentence_matches(index)[0]
    assert reads(first) == "I love the café in Zürich 😀. Tokyo (東京) is big."
    emoji = first.surface.index("😀")
    assert first.tokens[emoji : emoji + 4] == ["\\xf0", "\\x9f", "\\x98", "\\x80"]
    assert (
        first.surface[emoji : emoji + 4] == ["😀", "", "", ""] and first.continues[emoji + 1 : emoji + 4] == [True] * 3
    )
    said = next(m for m in sentence_matches(index) if m.text.startswith("He said"))
    left = said.tokens.index("le")
    assert (said.surface[left], said.space_before[left]) == ("le", True)  # its span is " le"
    assert reads(said).startswith('He said "hello" and left!!!')

    result = index.query(tiny("gpt2"), CAT, 2, Query("embedding", 1, top=200))
    assert len(result.matches) == index.size
    for m in result.matches:
        assert reads(m) == " ".join(m.text.split())
        before, (start, piece, rest), after = kwic(m)
        line = before + start + piece + rest + after
        assert line == reads(m) or m.surface[m.position] == "", line  # a piece with no text shows the model's token
    lines = {kwic(m)[1] for m in result.matches if m.sentence == first.sentence}
    assert ("Zü", "\\xbc", "rich") in lines and ("", "😀", "") in lines and ("😀", "\\x9f", "") in lines


@pytest.mark.parametrize("family", ["gpt2", "roberta", "albert"])
def test_a_word_search_finds_words_never_space_tokens(written_index, tiny, family):
    index = written_index(family)
    result = index.query(tiny(family), CAT, 1, Query("embedding", 1, unit="word", top=1000))
    assert result.matches
    words = {(m.sentence, m.words[m.position]) for m in result.matches}
    assert len(words) == len(result.matches)
    for m in result.matches:
        assert m.words[m.position] >= 0 and "".join(m.surface[p] for p in m.matched).strip()
        assert all(m.words[p] == m.words[m.position] for p in m.matched)
    blank_rows = int((index.tables.tokens["word"] < 0).sum())
    assert len(result.matches) == len(
        {(int(s), int(w)) for s, w in zip(index.tables.tokens["sentence"], index.tables.tokens["word"]) if w >= 0}
    )
    if family == "gpt2":
        assert blank_rows > 0  # the tokens that stand for a space are indexed, but are no word match


def test_a_searched_word_reads_as_written_without_the_space_token_before_it(written_index, tiny):
    handle, text = tiny("gpt2"), "I love the café in Zürich 😀 today."
    tokens = attnscope.encode(handle, text)
    for written in ("Zürich", "😀", "love"):
        first = next(
            p for p, o in enumerate(tokens.offsets) if o and o[1] > text.index(written) and tokens.display[p] != "␣"
        )
        result = written_index("gpt2").query(handle, text, first, Query("embedding", 1, unit="word", top=3))
        assert result.query_text == written
        assert all(tokens.display[p] != "␣" for p in result.query_positions)
        assert result.query_positions[0] == first and len(result.query_positions) >= 1


@pytest.mark.parametrize("family", FAMILIES)
def test_match_surfaces_give_back_any_sentence(tiny, family):
    """The property behind the contexts, on generated sentences: a match's surfaces, made from the tokens'
    stored spans as the index stores them, joined with a space where ``space_before`` says, are the sentence
    (whitespace runs as one space), each character once."""
    handle = tiny(family)

    @settings(max_examples=40)
    @given(text=texts)
    def check(text):
        tokens = attnscope.encode(handle, text)
        kept = [p for p in range(len(tokens)) if not tokens.special[p]]
        spans = [tokens.offsets[p] for p in kept]
        m = Match(
            row=0,
            score=1.0,
            sentence=0,
            sent_id="s",
            source="f",
            line=1,
            text=text,
            position=0,
            tokens=[tokens.display[p] for p in kept],
            metadata={},
            attention=[],
            max_attention=0,
            offset=0,
        )
        words = np.array([-1 if tokens.word_ids[p] is None else tokens.word_ids[p] for p in kept])
        _add_surface(m, text, np.array([s[0] for s in spans]), np.array([s[1] for s in spans]), words)
        assert reads(m) == " ".join(text.split())
        assert "".join(m.surface) == "".join(text.split())
        assert not any(c and s for c, s in zip(m.continues, m.space_before))

    check()
