"""Search hits by corpus word or by sentence: a word searched as a word, one match per sentence.

The index holds one vector per token, so a word of several tokens ("allergies" = all + ##er + ##gies)
has no stored vector of its own. A word is searched as the mean of its tokens' vectors, scaled back to
unit length (per head for a head embedding, so a head search still sums one cosine per head):
`word_vector`. Corpus words are compared the same way: a word of one token is that token's stored
vector (searched by faiss as in a token search), and the words of several tokens get their
`word_vector` from their stored tokens once per vector set (`WordVectors`: EWT dev has 1,959 such
words of 29,870 tokens) and are all scored. A word match's score is thus the cosine between the
two words (a head search: the sum of the per-head cosines), and the search is exact wherever a token
search is.

"One match per sentence" keeps the best match of each sentence: candidates are widened (four times
more each round) until ``top`` sentences score at least as high as the weakest candidate, so no
sentence left out could rank higher.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CANDIDATES = 4
"""Candidates fetched per match wanted in a one-per-sentence search at first, and the factor each widening multiplies
by."""


def word_vector(vectors: np.ndarray, parts: int = 1) -> np.ndarray:
    """One vector for a word from its tokens' ``vectors`` (tokens, dim): their mean, made unit length in
    each of its ``parts`` equal slices (1 for a hidden state, the head count for a head embedding).
    A single token's vector is returned unchanged."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if len(vectors) == 1:
        return vectors[0]
    return word_vectors(vectors, np.array([0]), np.array([len(vectors)]), parts)[0]


def word_vectors(vectors: np.ndarray, starts: np.ndarray, sizes: np.ndarray, parts: int = 1) -> np.ndarray:
    """`word_vector` of several words at once: word i is ``vectors[starts[i]:starts[i] + sizes[i]]``
    (each at least two tokens); returns (words, dim) float32."""
    means = np.add.reduceat(np.asarray(vectors, dtype=np.float32), starts, axis=0) / sizes[:, None].astype(np.float32)
    sliced = means.reshape(len(means), parts, -1)
    norm = np.linalg.norm(sliced, axis=2, keepdims=True)
    return np.where(norm > 0, sliced / np.maximum(norm, 1e-12), sliced).reshape(len(means), -1).astype(np.float32)


class Words:
    """Which index rows make up each corpus word, for every row at once: ``first[row]`` is the first row
    of the row's word (the row itself for a token without a word), ``size[row]`` its number of tokens;
    `members` lists a word's rows from its first row; ``several`` holds the first rows of the words of
    several tokens, in row order."""

    def __init__(self, tables: Any):
        sentence = np.asarray(tables.tokens["sentence"], dtype=np.int64)
        word = np.asarray(tables.tokens["word"], dtype=np.int64)
        rows = np.arange(len(word), dtype=np.int64)
        key = np.where(word >= 0, sentence * (int(word.max(initial=0)) + 1) + word, -1 - rows)
        order = np.argsort(key, kind="stable")  # each word's rows together, in row order
        starts = np.flatnonzero(np.r_[True, key[order][1:] != key[order][:-1]]) if len(order) else order
        sizes = np.diff(np.r_[starts, len(order)])
        group = np.empty(len(order), dtype=np.int64)
        group[order] = np.repeat(np.arange(len(starts)), sizes)
        self.first = order[starts][group]
        self.size = sizes[group]
        self._order, self._start = order, starts[group]
        self.several = np.unique(self.first[self.size > 1])

    def members(self, first: int) -> list[int]:
        """The rows of the word whose first row is ``first``."""
        start = int(self._start[first])
        return self._order[start : start + int(self.size[first])].tolist()


def word_rows(tables: Any, row: int) -> list[int]:
    """The index rows of the corpus word that token ``row`` belongs to, in order (``[row]`` for a token
    without a word)."""
    return tables.words.members(int(tables.words.first[row]))


class WordVectors:
    """The `word_vector` of every corpus word of several tokens in one vector set: ``vectors`` (words,
    dim) float32, their first rows ``firsts``; ``parts`` is 1 (hidden states) or the head count."""

    def __init__(self, vector_set: Any, words: Words, parts: int):
        self.firsts = words.several
        sizes = words.size[self.firsts]
        dim = vector_set.dim
        if len(self.firsts):
            rows = np.concatenate([words.members(int(f)) for f in self.firsts])
            self.vectors = word_vectors(vector_set.decoded(rows), np.r_[0, np.cumsum(sizes)[:-1]], sizes, parts)
        else:
            self.vectors = np.zeros((0, dim), dtype=np.float32)

    @property
    def nbytes(self) -> int:
        return int(self.vectors.nbytes + self.firsts.nbytes)


def grouped_search(
    vector_set: Any,
    tables: Any,
    vector: np.ndarray,
    top: int,
    allowed: np.ndarray | None,
    probes: int | None,
    *,
    words: WordVectors | None,
    per_sentence: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """The top ``top`` matches of ``vector`` as (scores, rows), best first: corpus words when ``words``
    (the stored tokens of one-token words, searched, and every word of several tokens, scored: each
    match is a word's first row; tokens of no corpus word, such as a token that stands for a space,
    are no word match), at most one per sentence when ``per_sentence``."""
    count = vector_set.count
    searched = allowed
    several_rows, several_scores = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    if words is not None:
        single = (tables.words.size == 1) & (np.asarray(tables.tokens["word"]) >= 0)
        searched = single if allowed is None else single & allowed
        keep = np.ones(len(words.firsts), dtype=bool) if allowed is None else allowed[words.firsts]
        several_rows, several_scores = words.firsts[keep], (words.vectors[keep] @ np.asarray(vector, np.float32))
    k = min(count, CANDIDATES * top if per_sentence else top)
    while True:
        scores, rows = vector_set.search(vector, k, searched, probes)
        found = rows[0] >= 0
        exhausted = k >= count or not found.all()
        floor = -np.inf if exhausted else float(scores[0][-1])  # no candidate left out scores above this
        scores = np.r_[scores[0][found], several_scores].astype(np.float32)
        rows = np.r_[rows[0][found], several_rows].astype(np.int64)
        if per_sentence:
            scores, rows = _best_per(tables.tokens["sentence"][rows], scores, rows)
        if exhausted or int((scores >= floor).sum()) >= top:
            break
        k = min(count, k * CANDIDATES)
    order = np.lexsort((rows, -scores))[:top]
    return scores[order], rows[order]


def _best_per(keys: np.ndarray, scores: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each key's best (highest score, then lowest row) candidate."""
    order = np.lexsort((rows, -scores))
    _, first = np.unique(np.asarray(keys)[order], return_index=True)
    keep = order[first]
    return scores[keep], rows[keep]
