"""Head pattern scores on constructed attention whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from attnscope.analysis import pattern_scores, pattern_sums


def _one_hot(n: int, target) -> np.ndarray:
    rows = np.zeros((n, n))
    for i in range(n):
        rows[i, target(i)] = 1.0
    return rows


def test_constructed_heads_get_their_patterns():
    n = 8
    special = [True] + [False] * (n - 2) + [True]
    heads = np.stack(
        [
            _one_hot(n, lambda i: max(i - 1, 0)),  # previous token
            _one_hot(n, lambda i: min(i + 1, n - 1)),  # next token
            _one_hot(n, lambda i: i),  # self
            _one_hot(n, lambda i: 0),  # [CLS]: the first token
            _one_hot(n, lambda i: n - 1),  # [SEP]: a special token other than the first
            np.full((n, n), 1.0 / n),  # uniform: broad
        ]
    )
    scores = pattern_scores(heads[None], special)
    assert scores.labels == [["previous", "next", "self", "first", "special", "broad"]]
    assert scores.previous[0, 0] == pytest.approx(1.0)
    assert scores.next[0, 1] == pytest.approx(1.0)
    assert scores.self[0, 2] == pytest.approx(1.0)
    assert scores.first[0, 3] == pytest.approx(1.0) and scores.special[0, 3] == pytest.approx(1.0)
    assert scores.special[0, 4] == pytest.approx(1.0) and scores.first[0, 4] == 0.0
    assert scores.entropy[0, 5] == pytest.approx(1.0)
    assert scores.score(0, 0) == pytest.approx(1.0)


def test_a_head_split_between_patterns_is_mixed():
    n = 6
    split = 0.5 * _one_hot(n, lambda i: i) * 0.8 + 0.5 * _one_hot(n, lambda i: max(i - 1, 0)) * 0.8
    split += 0.2 * _one_hot(n, lambda i: (i + 3) % n)
    scores = pattern_scores(split[None, None], [False] * n)
    assert scores.labels == [["mixed"]]


def test_non_square_attention_is_refused():
    with pytest.raises(ValueError, match="self-attention"):
        pattern_scores(np.zeros((1, 1, 3, 4)), [False] * 4)


def test_entropy_of_a_causal_head_is_normalised_by_the_visible_keys():
    n = 5
    causal = np.tril(np.ones((n, n), dtype=bool))
    uniform_over_past = causal / causal.sum(axis=-1, keepdims=True)
    scores = pattern_scores(uniform_over_past[None, None], [False] * n, allowed=causal)
    assert scores.entropy[0, 0] == pytest.approx(1.0)
    assert scores.labels == [["broad"]]
    unmasked = pattern_scores(uniform_over_past[None, None], [False] * n)
    assert unmasked.entropy[0, 0] < 0.75


def test_a_first_word_sink_without_special_tokens_is_labelled_first():
    # GPT-2 adds no special token: every query puts 0.9 on the first word and 0.1 on itself.
    n = 5
    sink = 0.1 * np.eye(n)
    sink[:, 0] += 0.9
    scores = pattern_scores(sink[None, None], [False] * n)
    assert scores.labels == [["first"]]
    # the first query's weight on itself is not counted: 4 rows of 0.9
    assert scores.first[0, 0] == pytest.approx(0.9)
    assert scores.special[0, 0] == 0.0


def test_corpus_scores_weigh_every_query_token_the_same():
    # Sentence A: [CLS] a b [SEP], a pure previous-token head over its 2 ordinary rows.
    # Sentence B: [CLS] c d e f [SEP], a head putting 0.5 on the previous token over its 4 rows.
    # Corpus share = (2 * 1.0 + 4 * 0.5) / 6 = 2/3, where a mean of sentence means would give 0.75.
    a = _one_hot(4, lambda i: max(i - 1, 0))
    b = 0.5 * _one_hot(6, lambda i: max(i - 1, 0)) + 0.5 * _one_hot(6, lambda i: 5)
    sums = pattern_sums(a[None, None], [True, False, False, True]) + pattern_sums(
        b[None, None], [True, False, False, False, False, True]
    )
    assert sums.rows == 6 and sums.counts == {
        "previous": 6,
        "next": 6,
        "self": 6,
        "first": 6,
        "special": 6,
        "entropy": [[6]],
    }
    scores = sums.scores()
    assert scores.previous[0, 0] == pytest.approx(2 / 3)
    # special tokens: A's rows put nothing there except "a" whose previous is [CLS]: 1.0;
    # B's rows put 0.5 on [SEP] and "c" also 0.5 on [CLS]: (1 + 4 * 0.5 + 0.5) / 6
    assert scores.special[0, 0] == pytest.approx(3.5 / 6)
    assert scores.first[0, 0] == pytest.approx(1.5 / 6)
    assert scores.labels == [["previous"]]


def test_special_flags_must_match_the_tokens():
    with pytest.raises(ValueError, match="one flag per token"):
        pattern_sums(np.zeros((1, 1, 3, 3)), [False] * 4)
