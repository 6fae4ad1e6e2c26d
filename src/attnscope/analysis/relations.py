"""Dependency-relation scores of attention heads, after Clark et al. (2019), "What Does BERT Look At?".

Each head is a predictor: for a query word it predicts the word it attends to most, in word-level
attention (`aggregate.merge_words`). For every dependency relation and both directions, a head's
accuracy is the share of (dependent, head) word pairs it gets right: from the dependent it attends
most to its syntactic head ("dependent→head"), or from the syntactic head it attends most to that
dependent ("head→dependent"). Beside it stands the best fixed-offset baseline: always predict the
word ``k`` positions away, with the best ``k`` for the relation.

As in Clark et al.'s code, the query word itself and tokens outside every word (``[CLS]``, ``[SEP]``,
``<s>``) are not candidates, so a head that parks its attention on them predicts its strongest real
word. A row whose candidates all get zero weight (a causal model looking ahead) predicts nothing and
counts as wrong. Unlike their code, which for head→dependent took the attention map transposed (the
word that attends most *to* the dependent), head→dependent here reads the syntactic head's own row:
"verbs attend to their objects" literally. A head word with two dependents of one relation can then
be right for only one of them, and so can the baseline, which is scored on exactly the same pairs.
Pure numpy; no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .aggregate import merge_words

DIRECTIONS = ("dependent_to_head", "head_to_dependent")
"""The two directions of prediction, as named in tables and JSON."""
ROOT = "root"


@dataclass
class Arcs:
    """A sentence's dependency arcs among its words (0-based word indices), one entry per arc kept.

    ``relation`` indexes the relation list the tally was made with.
    """

    dependent: np.ndarray
    head: np.ndarray
    relation: np.ndarray


def sentence_arcs(heads: Sequence[int | None], deprels: Sequence[str | None], relation_index: dict[str, int]) -> Arcs:
    """The arcs of one sentence whose relation is in ``relation_index``; roots (head -1) and words
    without annotations are left out."""
    kept = [
        (d, h, relation_index[r])
        for d, (h, r) in enumerate(zip(heads, deprels))
        if h is not None and h >= 0 and r in relation_index
    ]
    columns = np.array(kept, dtype=np.int64).reshape(-1, 3).T
    return Arcs(columns[0], columns[1], columns[2])


def predicted_words(weights: np.ndarray, word_of: Sequence[int | None]) -> np.ndarray:
    """The word each word attends to most, per head: (layers, heads, words) from token attention
    ``(layers, heads, tokens, tokens)``; -1 where nothing is predicted (see the module docstring).

    Indexed by word number (``max(word_of) + 1`` entries); words without tokens predict -1 too.
    """
    merged = merge_words(weights, word_of)
    unit_word = np.array([-1 if w is None else w for w in merged.unit_word], dtype=np.int64)
    candidate = unit_word >= 0
    scores = np.where(candidate, merged.weights, -1.0)  # (layers, heads, units, units)
    units = np.arange(len(unit_word))
    scores[..., units, units] = -1.0
    best = scores.argmax(axis=-1)
    found = np.take_along_axis(scores, best[..., None], axis=-1)[..., 0] > 0
    by_unit = np.where(found, unit_word[best], -1)  # (layers, heads, units)
    words = int(unit_word.max()) + 1 if candidate.any() else 0
    result = np.full(weights.shape[:-2] + (words,), -1, dtype=np.int64)
    result[..., unit_word[candidate]] = by_unit[..., candidate]
    return result


@dataclass
class RelationTally:
    """Running counts for the relation scores of a corpus: add sentences with `add`, read with `accuracy`.

    ``hits[direction]`` is (relations, layers, heads); ``pairs`` (relations,) the arcs scored;
    ``offsets`` per relation counts ``head position − dependent position`` over those arcs, which gives
    the fixed-offset baseline; ``unaligned`` counts arcs left out because a word had no token.
    """

    relations: tuple[str, ...]
    layers: int
    heads: int
    hits: dict[str, np.ndarray] = field(init=False)
    pairs: np.ndarray = field(init=False)
    offsets: list[dict[int, int]] = field(init=False)
    unaligned: int = 0

    def __post_init__(self) -> None:
        shape = (len(self.relations), self.layers, self.heads)
        self.hits = {direction: np.zeros(shape, dtype=np.int64) for direction in DIRECTIONS}
        self.pairs = np.zeros(len(self.relations), dtype=np.int64)
        self.offsets = [{} for _ in self.relations]

    @property
    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.relations)}

    def add(self, weights: np.ndarray, word_of: Sequence[int | None], arcs: Arcs) -> None:
        """Score one sentence: token attention ``(layers, heads, tokens, tokens)``, each token's word."""
        if arcs.dependent.size == 0:
            return
        predicted = predicted_words(weights, word_of)  # (layers, heads, words)
        tokenised = [w for w in word_of if w is not None]
        present = np.zeros(max(tokenised + [int(arcs.dependent.max()), int(arcs.head.max())]) + 1, dtype=bool)
        present[tokenised] = True
        aligned = present[arcs.dependent] & present[arcs.head]
        self.unaligned += int((~aligned).sum())
        dependent, head, relation = arcs.dependent[aligned], arcs.head[aligned], arcs.relation[aligned]
        if dependent.size == 0:
            return
        one_hot = np.zeros((dependent.size, len(self.relations)))
        one_hot[np.arange(dependent.size), relation] = 1.0
        correct = {
            "dependent_to_head": predicted[..., dependent] == head,
            "head_to_dependent": predicted[..., head] == dependent,
        }  # each (layers, heads, arcs)
        for direction, right in correct.items():
            self.hits[direction] += np.rint(right @ one_hot).astype(np.int64).transpose(2, 0, 1)
        self.pairs += np.bincount(relation, minlength=len(self.relations))
        for r, offset in zip(relation.tolist(), (head - dependent).tolist()):
            self.offsets[r][offset] = self.offsets[r].get(offset, 0) + 1

    def accuracy(self, direction: str) -> np.ndarray:
        """(relations, layers, heads) share of each relation's arcs that a head predicts (0 without arcs)."""
        pairs = self.pairs[:, None, None]
        return np.divide(self.hits[direction], pairs, out=np.zeros(self.hits[direction].shape), where=pairs > 0)

    def baseline(self) -> tuple[np.ndarray, np.ndarray]:
        """Per relation, the best fixed offset (head position − dependent position; the nearest to 0
        among ties) and its accuracy: the same in both directions, since each arc has one offset."""
        offsets = np.zeros(len(self.relations), dtype=np.int64)
        accuracy = np.zeros(len(self.relations))
        for r, counts in enumerate(self.offsets):
            if counts:
                best = max(counts.items(), key=lambda item: (item[1], -abs(item[0]), item[0]))
                offsets[r], accuracy[r] = best[0], best[1] / self.pairs[r]
        return offsets, accuracy
