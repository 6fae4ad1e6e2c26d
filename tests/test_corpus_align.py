"""S1: subword tokens inherit their word's annotations; special tokens are left out."""

from __future__ import annotations

from itertools import accumulate

import pytest

from attnscope import encode
from attnscope.capture.inputs import Tokens
from attnscope.corpus import AnnotatedSentence, Word, parse_conllu, read_conllu, word_of_tokens
from attnscope.corpus.align import candidate_words
from attnscope.errors import InputError

from .corpus_helpers import EWT_DEV, EWT_TEST, conllu, mwt, row

WIDEST_SCAN = 3
"""The most words a token of EWT dev + test is compared with (measured): a constant, not a function of the sentence."""


def sentence_of(lines: list[str]) -> AnnotatedSentence:
    (sentence,) = parse_conllu(conllu(lines), "test.conllu")
    return sentence


def fake_tokens(text: str, offsets: list[tuple[int, int] | None]) -> Tokens:
    """Tokens with the given offsets (no tokenizer): enough for word_of_tokens, which reads only spans."""
    n = len(offsets)
    return Tokens(
        ids=list(range(n)),
        raw=["t"] * n,
        display=["t"] * n,
        offsets=offsets,
        word_ids=[None] * n,
        special=[o is None for o in offsets],
        segments=[0] * n,
        texts=(text,),
    )


def by_token(sentence, tokens) -> list[tuple[str, str | None]]:
    """(token display form, form of the word it maps to) for each token."""
    words = word_of_tokens(sentence, tokens)
    return [(d, None if w is None else sentence.words[w].form) for d, w in zip(tokens.display, words)]


DONT = sentence_of(
    [
        "# text = I don't know.",
        row("1", "I", "PRON", "4", "nsubj"),
        mwt("2-3", "don't"),
        row("2", "do", "AUX", "4", "aux"),
        row("3", "n't", "PART", "4", "advmod", lemma="not"),
        row("4", "know", "VERB", "0", "root", misc="SpaceAfter=No"),
        row("5", ".", "PUNCT", "4", "punct"),
    ]
)


def test_dont_tokens_map_to_do_and_nt_with_the_real_tokenizer(default_model):
    tokens = encode(default_model, DONT.text)
    assert by_token(DONT, tokens) == [
        ("[CLS]", None),
        ("i", "I"),
        ("don", "do"),
        ("'", "n't"),
        ("t", "n't"),
        ("know", "know"),
        (".", "."),
        ("[SEP]", None),
    ]
    upos = [None if w is None else DONT.words[w].upos for w in word_of_tokens(DONT, tokens)]
    assert upos == [None, "PRON", "AUX", "PART", "PART", "VERB", "PUNCT", None]


def test_all_subwords_of_a_word_map_to_that_word(default_model):
    sentence = sentence_of(
        [
            "# text = She sang unbelievably well.",
            row("1", "She", "PRON", "2", "nsubj"),
            row("2", "sang", "VERB", "0", "root"),
            row("3", "unbelievably", "ADV", "4", "advmod"),
            row("4", "well", "ADV", "2", "advmod", misc="SpaceAfter=No"),
            row("5", ".", "PUNCT", "2", "punct"),
        ]
    )
    tokens = encode(default_model, sentence.text)
    mapped = word_of_tokens(sentence, tokens)
    pieces = [d for d, w in zip(tokens.display, mapped) if w == 2]
    assert len(pieces) > 1 and "".join(pieces) == "unbelievably"  # several subwords, all on one word
    assert [sentence.words[w].upos for w in mapped if w is not None].count("ADV") == len(pieces) + 1
    assert mapped[0] is None and mapped[-1] is None and tokens.special[0] and tokens.special[-1]


def test_multiword_token_with_shared_span_maps_to_its_first_word(default_model):
    sentence = sentence_of(
        [
            "# text = Vino del pueblo.",
            row("1", "Vino", "VERB", "0", "root"),
            mwt("2-3", "del"),
            row("2", "de", "ADP", "4", "case"),
            row("3", "el", "DET", "4", "det"),
            row("4", "pueblo", "NOUN", "1", "obl", misc="SpaceAfter=No"),
            row("5", ".", "PUNCT", "1", "punct"),
        ]
    )
    tokens = encode(default_model, sentence.text)
    assert ("del", "de") in by_token(sentence, tokens)


def test_largest_overlap_wins_and_ties_go_to_the_earlier_word():
    words = (Word("ab", 0, 2), Word("cd", 2, 4), Word("ef", 5, 7))
    sentence = AnnotatedSentence("s", "abcd ef", words, "x", 1)
    tokens = fake_tokens("abcd ef", [None, (0, 3), (1, 4), (1, 3), (4, 5), (3, 6), (6, 7), None])
    assert word_of_tokens(sentence, tokens) == [None, 0, 1, 0, None, 1, 2, None]


def test_zero_width_token_maps_to_the_word_that_contains_it():
    words = (Word("ab", 0, 2), Word("cd", 3, 5))
    sentence = AnnotatedSentence("s", "ab cd", words, "x", 1)
    assert word_of_tokens(sentence, fake_tokens("ab cd", [(0, 0), (2, 2), (4, 4), (5, 5)])) == [0, None, 1, None]


def test_tokens_of_another_text_are_refused():
    with pytest.raises(InputError, match="made from another text"):
        word_of_tokens(DONT, fake_tokens("something else", [(0, 4)]))


def test_every_token_of_every_ewt_sentence_maps_to_a_word_with_bounded_work(default_model):
    sentences = [s for path in (EWT_DEV, EWT_TEST) for s in read_conllu(path)]
    encoded = [encode(default_model, s.text) for s in sentences]
    mapped = [word_of_tokens(s, t) for s, t in zip(sentences, encoded)]
    tokens = sum(len(t) for t in encoded)
    assert tokens > 60_000
    unmapped = [
        (s.sent_id, t.display[i])
        for s, t, m in zip(sentences, encoded, mapped)
        for i, w in enumerate(m)
        if (w is None) != t.special[i]
    ]
    assert unmapped == []
    # A token lies inside its word, except where EWT splits a run of letters into words without a space
    # ("alot" = "a" + "lot", "cockerspaniels") and a subword straddles the two: it goes to the word it
    # overlaps most. (Words of multi-word tokens are left out: "don't" splits its tokens by design.)
    straddling = []
    for sentence, encoding, words in zip(sentences, encoded, mapped):
        for offsets, w in zip(encoding.offsets, words):
            if w is None or sentence.words[w].mwt is not None:
                continue
            (start, end), word = offsets, sentence.words[w]
            if word.start <= start < end <= word.end:
                continue
            overlaps = [min(end, o.end) - max(start, o.start) for o in sentence.words]
            assert overlaps[w] == max(overlaps)
            straddling.append(sentence.text[start:end])
    assert len(straddling) == 16 and straddling.count("al") == 7
    # The work per token is two binary searches and a scan of the words it may overlap: at most 3 on
    # all of EWT (a subword straddling two words, or a multi-word token's words sharing a span), so
    # aligning is O((tokens + words) log words) whatever the machine's speed.
    widest = 0
    for sentence, encoding in zip(sentences, encoded):
        order = sorted(range(len(sentence.words)), key=lambda i: (sentence.words[i].start, i))
        starts = [sentence.words[i].start for i in order]
        reach = list(accumulate((sentence.words[i].end for i in order), max))
        for span in encoding.offsets:
            if span is not None:
                first, last = candidate_words(starts, reach, *span)
                widest = max(widest, last - first)
    assert widest == WIDEST_SCAN, widest
