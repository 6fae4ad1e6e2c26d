"""Head pattern scores on constructed attention whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from attnscope.analysis import pattern_scores


def _one_hot(n: int, target) -> np.ndarray:
    rows = np.zeros((n, n))
    for i in range(n):
        rows[i, target(i)] = 1.0
    return rows


def test_constructed_heads_get_their_patterns():
    n = 8
    special = [True] + [False] * (n - 2) + [True]
    heads = np.stack([
        _one_hot(n, lambda i: max(i - 1, 0)),          # previous token
        _one_hot(n, lambda i: min(i + 1, n - 1)),      # next token
        _one_hot(n, lambda i: i),                      # self
        _one_hot(n, lambda i: 0),                      # [CLS]
        np.full((n, n), 1.0 / n),                      # uniform: broad
    ])
    scores = pattern_scores(heads[None], special)
    assert scores.labels == [["previous", "next", "self", "special", "broad"]]
    assert scores.previous[0, 0] == pytest.approx(1.0)
    assert scores.next[0, 1] == pytest.approx(1.0)
    assert scores.self[0, 2] == pytest.approx(1.0)
    assert scores.special[0, 3] == pytest.approx(1.0)
    assert scores.entropy[0, 4] == pytest.approx(1.0)
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
