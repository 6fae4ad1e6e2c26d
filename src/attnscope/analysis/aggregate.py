"""Ways to combine attention beyond one head: word-level merging (more to come: head means, rollout, value norms).

Pure numpy on weights shaped ``(..., query, key)``; the views, the app and the head atlas all call
these, so every place that shows "attention between words" means the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class WordAttention:
    """Attention between units: each word of a sentence, and each token that belongs to no word.

    ``weights`` is ``(..., units, units)``; ``unit_word[u]`` is the word index of unit ``u`` (``None``
    for a token outside every word, such as ``[CLS]``); ``unit_tokens[u]`` its token positions.
    """

    weights: np.ndarray
    unit_word: list[int | None]
    unit_tokens: list[list[int]]

    def unit_of_word(self, word: int) -> int:
        """The unit that holds word ``word``; ``KeyError`` when no token of it survived tokenisation."""
        for unit, w in enumerate(self.unit_word):
            if w == word:
                return unit
        raise KeyError(word)


def word_units(word_of: Sequence[int | None]) -> tuple[list[int | None], list[list[int]]]:
    """Group token positions into units, in order of first appearance: a unit per word, one per wordless token."""
    unit_word: list[int | None] = []
    unit_tokens: list[list[int]] = []
    unit_of: dict[int, int] = {}
    for position, word in enumerate(word_of):
        if word is None:
            unit_word.append(None)
            unit_tokens.append([position])
        elif word in unit_of:
            unit_tokens[unit_of[word]].append(position)
        else:
            unit_of[word] = len(unit_word)
            unit_word.append(word)
            unit_tokens.append([position])
    return unit_word, unit_tokens


def merge_words(weights: np.ndarray, word_of: Sequence[int | None]) -> WordAttention:
    """Word-level attention as Clark et al. (2019) computed it.

    Attention *to* a word is the sum of the attention to its subword tokens; attention *from* a word
    is the mean over its subword tokens' rows. Rows of the result still sum to what the token rows
    summed to (1 for softmax attention). ``word_of[t]`` is token ``t``'s word (``None`` for special
    tokens, which stay units of their own); ``weights`` is ``(..., tokens, tokens)``.
    """
    array = np.asarray(weights)
    n = len(word_of)
    if array.ndim < 2 or array.shape[-1] != n or array.shape[-2] != n:
        raise ValueError(f"weights must end in ({n}, {n}) for {n} tokens, got shape {array.shape}")
    unit_word, unit_tokens = word_units(word_of)
    members = np.zeros((len(unit_tokens), n), dtype=np.float64)  # (units, tokens) 0/1
    for unit, positions in enumerate(unit_tokens):
        members[unit, positions] = 1.0
    summed = array.astype(np.float64, copy=False) @ members.T  # columns: sum over a unit's tokens
    means = members / members.sum(axis=1, keepdims=True)  # rows: mean over a unit's tokens
    merged = np.einsum("ut,...tv->...uv", means, summed)
    return WordAttention(merged, unit_word, unit_tokens)
