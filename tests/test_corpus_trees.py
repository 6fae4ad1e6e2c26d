"""S1: every reader yields one dependency tree per sentence: gold files that break one are errors, parser output is
repaired."""

from __future__ import annotations

import numpy as np
import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.attrs import SENT_START
from spacy.tokens import Doc

from attnscope.corpus import (
    DEFAULT_NER_PIPELINE,
    AnnotatedSentence,
    Word,
    parse_conllu,
    read_text,
    repair_heads,
    tree_problem,
)
from attnscope.corpus.opening import _corpus
from attnscope.corpus.source import CorpusSource
from attnscope.corpus.spacy_text import doc_sentences
from attnscope.errors import CorpusError, CorpusFormatError

from .corpus_helpers import assert_one_tree, conllu, row

VOCAB = spacy.blank("en").vocab


# The repair itself, over arbitrary head arrays.

HEAD_ARRAYS = st.integers(1, 12).flatmap(
    lambda n: st.lists(st.one_of(st.none(), st.integers(-3, n + 2)), min_size=n, max_size=n)
)


@given(HEAD_ARRAYS)
@settings(max_examples=1000, deadline=None)
def test_any_head_array_is_repaired_into_one_tree(heads):
    repaired, changed = repair_heads(heads)
    assert_one_tree(repaired)
    assert tree_problem(repaired) is None
    assert changed == tuple(i for i, (a, b) in enumerate(zip(heads, repaired)) if a != b)
    # a head that was already sound (another word of the sentence) is kept unless it closed a cycle
    kept = [i for i, h in enumerate(heads) if h is not None and 0 <= h < len(heads) and h != i and repaired[i] != h]
    assert all(_on_cycle(heads, i) for i in kept)


def _on_cycle(heads, word) -> bool:
    node, seen = word, set()
    while node is not None and 0 <= node < len(heads) and node not in seen:
        seen.add(node)
        node = heads[node]
    return node == word


@given(st.integers(1, 12).flatmap(lambda n: st.lists(st.integers(0, n - 1), min_size=n, max_size=n)), st.data())
@settings(max_examples=300, deadline=None)
def test_a_well_formed_tree_comes_back_unchanged(parents, data):
    # word 0 is the root; every other word hangs on an earlier one, in a shuffled numbering
    order = data.draw(st.permutations(range(len(parents))))
    heads = [0] * len(parents)
    for position, word in enumerate(order):
        heads[word] = -1 if position == 0 else order[parents[position] % position]
    assert tree_problem(heads) is None
    assert repair_heads(heads) == (heads, ())


@pytest.mark.parametrize(
    "heads, expected, changed",
    [
        ([1, 2, 0], [-1, 2, 0], (0,)),  # a cycle and no root: cut at its lowest word, which is the root
        ([1, 0, -1, 2], [2, 0, -1, 2], (0,)),  # a cycle beside the root: cut, and attached to the root
        ([-1, 0, 0, -1, 3], [-1, 0, 0, 0, 3], (3,)),  # two roots: the one heading more words (0: 3 words) stays
        ([-1, 0, -1, 2], [-1, 0, 0, 2], (2,)),  # a tie: the first root stays
        ([None, -1, None, 2], [1, -1, 1, 2], (0, 2)),  # heads outside the sentence: attached to its root
        ([None, 0, None], [-1, 0, 0], (0, 2)),  # no root left: the unattached word heading most words
        ([5, 1, -1], [2, 2, -1], (0, 1)),  # out of range and self-headed: attached to the root
    ],
)
def test_repairs_are_the_hand_checked_trees(heads, expected, changed):
    assert repair_heads(heads) == (expected, changed)


def test_problems_name_the_words_involved():
    assert (
        tree_problem([1, 2, 0]).message()
        == "words 1 → 2 → 3 → 1 form a cycle, which no chain of heads leaves for the root"
    )
    assert tree_problem([-1, 0, -1]).message() == "the sentence has 2 roots (words 1, 3); a tree has one"
    assert tree_problem([-1, None]).message() == "word 2 has no head while other words of its sentence have one"
    assert tree_problem([None, None]) is None and tree_problem([]) is None


# Parser output: spaCy Docs with any heads, whitespace tokens and sentence boundaries.


@st.composite
def parsed_docs(draw) -> Doc:
    """A parsed Doc as a parser may leave it: whitespace tokens, heads anywhere (cycles too), sentences anywhere."""
    size = draw(st.integers(1, 14))
    words = [draw(st.sampled_from(["a", "b", "Cd", ".", "\n", "  ", "\n\n"])) for _ in range(size)]
    spaces = [draw(st.booleans()) if w.strip() else False for w in words]
    heads = [draw(st.integers(0, size - 1)) for _ in range(size)]
    deps = ["ROOT" if h == i else draw(st.sampled_from(["dep", "nsubj", "punct", ""])) for i, h in enumerate(heads)]
    doc = Doc(VOCAB, words=words, spaces=spaces, heads=heads, deps=[d or "dep" for d in deps])
    if draw(st.booleans()):  # sentence boundaries that disagree with the tree
        set_sentence_starts(doc, [1] + [draw(st.sampled_from([1, -1])) for _ in range(size - 1)])
    return doc


def set_sentence_starts(doc: Doc, starts: list[int]) -> None:
    """Overwrite a parsed Doc's sentence boundaries (1: a sentence starts here, -1: it does not)."""
    doc.from_array([SENT_START], np.array(starts, dtype=np.int64).view(np.uint64).reshape(-1, 1))


@given(parsed_docs())
@settings(max_examples=600, deadline=None)
def test_every_sentence_of_any_parse_is_one_tree(doc):
    for _first, words, repaired in doc_sentences(doc, with_entities=False):
        heads = [w.head for w in words]
        assert_one_tree(heads)
        assert all(w.form.strip() == w.form and w.form for w in words)
        assert set(repaired) <= set(range(len(words)))
        for index in repaired:
            assert words[index].deprel == ("ROOT" if heads[index] == -1 else "dep")
        root = heads.index(-1)
        assert words[root].deprel == "ROOT"


def test_a_chain_of_heads_ending_on_a_whitespace_token_no_longer_makes_a_second_root():
    # The CI failure's kind: "Hello" is headed by the whitespace token "\n\n", the parser's root of its
    # own; "world" is the root of the sentence. Before the repair, both "Hello" and "world" had head -1.
    doc = Doc(
        VOCAB,
        words=["Hello", "\n\n", "world", "."],
        spaces=[False, False, False, False],
        heads=[1, 1, 2, 2],
        deps=["dep", "ROOT", "ROOT", "punct"],
    )
    set_sentence_starts(doc, [1, -1, -1, -1])  # one sentence, as a splitter other than the parser may say
    ((first, words, repaired),) = list(doc_sentences(doc, with_entities=False))
    assert [(w.form, w.head, w.deprel) for w in words] == [
        ("Hello", 1, "dep"),
        ("world", -1, "ROOT"),
        (".", 1, "punct"),
    ]
    assert repaired == (0,)


def test_a_sentence_splitter_that_disagrees_with_the_parser_still_gives_one_tree_each(tmp_path):
    # en_core_web_sm's parser, then a sentencizer that also splits at commas: the relative clause's
    # words are headed by words of the sentence before, its verb heads the sentence after.
    nlp = spacy.load(DEFAULT_NER_PIPELINE)
    nlp.add_pipe("sentencizer", config={"punct_chars": [",", "."], "overwrite": True})
    path = tmp_path / "split.txt"
    path.write_text("He met John Smith, who lives in Washington, at the White House.\n", encoding="utf-8")
    sentences = list(read_text(path, nlp))
    assert [s.text for s in sentences] == ["He met John Smith,", "who lives in Washington,", "at the White House."]
    shown = [[(w.form, w.head, w.deprel) for w in s.words] for s in sentences]
    assert shown[0] == [
        ("He", 1, "nsubj"),
        ("met", -1, "ROOT"),
        ("John", 3, "compound"),
        ("Smith", 1, "dobj"),
        (",", 3, "punct"),
    ]
    assert shown[1] == [
        ("who", 1, "nsubj"),
        ("lives", -1, "ROOT"),
        ("in", 1, "prep"),
        ("Washington", 2, "pobj"),
        (",", 1, "dep"),
    ]
    assert shown[2] == [
        ("at", -1, "ROOT"),
        ("the", 3, "det"),
        ("White", 3, "compound"),
        ("House", 0, "pobj"),
        (".", 0, "dep"),
    ]
    assert [s.repaired_heads for s in sentences] == [(), (1, 4), (0, 4)]


# Gold files: never repaired, a malformed tree is an error naming file and line.


@pytest.mark.parametrize(
    "heads, line, message",
    [
        (
            ["2", "0", "0"],
            4,
            "sample.conllu:4: the sentence has 2 roots (words 2, 3); a tree has one; "
            "expected exactly one word with HEAD 0 per sentence",
        ),
        (
            ["2", "3", "1"],
            2,
            "sample.conllu:2: words 1 → 2 → 3 → 1 form a cycle, which no chain of heads leaves for "
            "the root; expected every word's chain of HEADs to end at the word with HEAD 0",
        ),
        (["0", "3", "2"], 3, "sample.conllu:3: words 2 → 3 → 2 form a cycle"),
        (
            ["0", "_", "1"],
            3,
            "sample.conllu:3: word 2 has no head while other words of its sentence have one; "
            "expected a HEAD on every word of the sentence, or _ on all of them",
        ),
    ],
)
def test_a_gold_tree_that_is_not_one_is_an_error_at_its_line(heads, line, message):
    lines = ["# text = a b c"] + [row(str(i), form, head=head) for i, (form, head) in enumerate(zip("abc", heads), 1)]
    with pytest.raises(CorpusFormatError) as caught:
        list(parse_conllu(conllu(lines), "sample.conllu"))
    assert str(caught.value).startswith(message)
    assert str(caught.value).startswith(f"sample.conllu:{line}:")


def test_a_gold_sentence_without_any_heads_is_read_without_dependencies():
    lines = ["# text = a b"] + [row("1", "a"), row("2", "b")]
    (sentence,) = parse_conllu(conllu(lines), "x.conllu")
    assert [w.head for w in sentence.words] == [None, None]


def test_opening_a_corpus_refuses_a_reader_that_yields_a_broken_tree():
    words = (Word("a", 0, 1, head=-1), Word("b", 2, 3, head=-1))
    broken = AnnotatedSentence("s1", "a b", words, "made.conllu", 7)
    with pytest.raises(
        CorpusError,
        match=r"made\.conllu:7: sentence 's1' is not one dependency tree: "
        r"the sentence has 2 roots \(words 1, 2\)",
    ):
        _corpus(CorpusSource("made", (), "", "conllu", "test"), [broken])
