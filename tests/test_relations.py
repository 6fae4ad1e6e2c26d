"""Dependency-relation scores (Clark et al. 2019) on a CoNLL-U snippet and constructed attention, counted by hand."""

from __future__ import annotations

import numpy as np
import pytest

from attnscope.analysis.relations import RelationTally, predicted_words, sentence_arcs
from attnscope.corpus import parse_conllu

SNIPPET = """\
# sent_id = a
# text = The dog barked loudly.
1\tThe\tthe\tDET\t_\t_\t2\tdet\t_\t_
2\tdog\tdog\tNOUN\t_\t_\t3\tnsubj\t_\t_
3\tbarked\tbark\tVERB\t_\t_\t0\troot\t_\t_
4\tloudly\tloudly\tADV\t_\t_\t3\tadvmod\t_\tSpaceAfter=No
5\t.\t.\tPUNCT\t_\t_\t3\tpunct\t_\t_

# sent_id = b
# text = Big red cars stop.
1\tBig\tbig\tADJ\t_\t_\t3\tamod\t_\t_
2\tred\tred\tADJ\t_\t_\t3\tamod\t_\t_
3\tcars\tcar\tNOUN\t_\t_\t4\tnsubj\t_\t_
4\tstop\tstop\tVERB\t_\t_\t0\troot\t_\tSpaceAfter=No
5\t.\t.\tPUNCT\t_\t_\t4\tpunct\t_\t_

"""
RELATIONS = ("amod", "nsubj", "punct", "advmod", "det")

# a: [CLS] The dog bark ##ed loudly . [SEP]   ("barked" is two tokens)
WORDS_A = [None, 0, 1, 2, 2, 3, 4, None]
# b: [CLS] Big red cars stop . [SEP]
WORDS_B = [None, 0, 1, 2, 3, 4, None]


def previous_token_head(n: int) -> np.ndarray:
    """Every token puts all its attention on the token before it ([CLS] on itself)."""
    weights = np.zeros((n, n))
    weights[np.arange(n), np.maximum(np.arange(n) - 1, 0)] = 1.0
    return weights


def verb_head(n: int, verb_token: int) -> np.ndarray:
    """Every token puts 0.4 on one token (the verb's first) and 0.6 on [SEP]."""
    weights = np.zeros((n, n))
    weights[:, verb_token] += 0.4
    weights[:, n - 1] += 0.6
    return weights


@pytest.fixture
def tally() -> RelationTally:
    a, b = parse_conllu(SNIPPET)
    tally = RelationTally(RELATIONS, layers=1, heads=2)
    index = tally.index
    for sentence, word_of, verb_token in ((a, WORDS_A, 3), (b, WORDS_B, 4)):
        n = len(word_of)
        weights = np.stack([previous_token_head(n), verb_head(n, verb_token)])[None]  # (1 layer, 2 heads, n, n)
        arcs = sentence_arcs([w.head for w in sentence.words], [w.deprel for w in sentence.words], index)
        tally.add(weights, word_of, arcs)
    return tally


def test_each_relation_counts_its_arcs_and_never_root(tally):
    # a: det, nsubj, advmod, punct; b: amod x2, nsubj, punct; the roots are not arcs
    assert dict(zip(tally.relations, tally.pairs.tolist())) == {
        "amod": 2,
        "nsubj": 2,
        "punct": 2,
        "advmod": 1,
        "det": 1,
    }
    assert tally.unaligned == 0


def test_dependent_to_head_accuracy_matches_the_hand_count(tally):
    # Head 0 (previous token) predicts, as word-level argmax without self and [CLS]/[SEP]:
    #   a: The→nothing, dog→The, barked→dog (its rows: bark→dog, ##ed→bark=self), loudly→barked, .→loudly
    #   b: Big→nothing, red→Big, cars→red, stop→cars, .→stop
    # Head 1 predicts the verb from every other word, and nothing from the verb itself.
    accuracy = dict(zip(RELATIONS, tally.accuracy("dependent_to_head")[:, 0]))
    expected = {
        "amod": [0 / 2, 0 / 2],  # Big→cars, red→cars: head 0 nothing/Big, head 1 stop/stop
        "nsubj": [0 / 2, 2 / 2],  # dog→barked, cars→stop: head 0 The/red, head 1 right twice
        "punct": [1 / 2, 2 / 2],  # .→barked (head 0: loudly), .→stop (head 0: stop)
        "advmod": [1 / 1, 1 / 1],  # loudly→barked
        "det": [0 / 1, 0 / 1],  # The→dog: head 0 nothing, head 1 barked
    }
    for name, values in expected.items():
        np.testing.assert_allclose(accuracy[name], values, err_msg=name)


def test_head_to_dependent_accuracy_reads_the_syntactic_heads_row(tally):
    accuracy = dict(zip(RELATIONS, tally.accuracy("head_to_dependent")[:, 0]))
    expected = {
        "amod": [1 / 2, 0 / 2],  # cars→Big ✗, cars→red ✓ (head 0); head 1: cars→stop
        "nsubj": [2 / 2, 0 / 2],  # barked→dog ✓, stop→cars ✓ (head 0); head 1: the verb predicts nothing
        "punct": [0 / 2, 0 / 2],  # barked→dog, stop→cars: never the full stop
        "advmod": [0 / 1, 0 / 1],  # barked→dog
        "det": [1 / 1, 0 / 1],  # dog→The ✓ (head 0); head 1: dog→barked
    }
    for name, values in expected.items():
        np.testing.assert_allclose(accuracy[name], values, err_msg=name)


def test_the_baseline_is_the_best_fixed_offset_nearest_zero_among_ties(tally):
    offsets, accuracy = tally.baseline()
    # head position − dependent position: amod +2 (Big), +1 (red); nsubj +1, +1; punct −2, −1; advmod −1; det +1
    assert dict(zip(RELATIONS, offsets.tolist())) == {"amod": 1, "nsubj": 1, "punct": -1, "advmod": -1, "det": 1}
    np.testing.assert_allclose(accuracy, [0.5, 1.0, 0.5, 1.0, 1.0])


def test_arcs_with_a_word_that_has_no_token_are_left_out_and_counted():
    _, b = parse_conllu(SNIPPET)
    tally = RelationTally(RELATIONS, layers=1, heads=1)
    words = [None, 0, 1, 2, 3, None]  # truncated: the full stop lost its token
    arcs = sentence_arcs([w.head for w in b.words], [w.deprel for w in b.words], tally.index)
    tally.add(previous_token_head(len(words))[None, None], words, arcs)
    assert tally.unaligned == 1
    assert dict(zip(RELATIONS, tally.pairs.tolist()))["punct"] == 0


def test_a_row_with_no_weight_on_any_candidate_predicts_nothing():
    # causal attention: the first word sees only [CLS]-like tokens and itself
    causal = np.tril(np.ones((4, 4)))
    causal /= causal.sum(axis=-1, keepdims=True)
    predicted = predicted_words(causal[None, None], [None, 0, 1, 2])
    # word 0 sees [CLS] and itself: nothing; word 1 splits over [CLS], word 0, itself: word 0; word 2: the
    # first of its tied candidates (word 0)
    assert predicted[0, 0].tolist() == [-1, 0, 0]
