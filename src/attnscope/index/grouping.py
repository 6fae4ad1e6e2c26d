"""Search hits gathered by corpus word or by sentence: a word searched as a word, one match per sentence.

The index holds one vector per token, so a word of several tokens ("allergies" = all + ##er + ##gies)
has no vector of its own. A word is searched as the mean of its tokens' vectors, scaled back to unit
length (per head for a head embedding, so a head search still sums one cosine per head):
`word_vector`. Candidates are the corpus tokens nearest that vector; they are gathered by the corpus
word they belong to, and each candidate word is scored again with its own `word_vector`, so a word
match's score is the cosine between the two words (a head search: the sum of the per-head cosines).
A word of one token is that token's vector, so on such words a word search scores as a token search.
A corpus word none of whose tokens is among the candidates is not found: candidates are widened
until there are enough words (below), which makes that rare for the top matches.

"One match per sentence" keeps the best match of each sentence. Both widen the candidate set
(`CANDIDATES` times the matches wanted, then four times more each round) until ``top`` groups are
found or the corpus (as filtered) runs out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CANDIDATES = 4
"""Candidate tokens fetched per match wanted, at first (and the factor each widening multiplies by)."""
MIN_CANDIDATES = 64


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
    means = np.add.reduceat(vectors, starts, axis=0) / sizes[:, None].astype(np.float32)
    sliced = means.reshape(len(means), parts, -1)
    norm = np.linalg.norm(sliced, axis=2, keepdims=True)
    return np.where(norm > 0, sliced / np.maximum(norm, 1e-12), sliced).reshape(len(means), -1).astype(np.float32)


class Words:
    """Which index rows make up each corpus word, for every row at once: ``first[row]`` is the first row
    of the row's word (the row itself for a token without a word), ``size[row]`` its number of tokens;
    `members` lists a word's rows from its first row."""

    def __init__(self, tables: Any):
        sentence = np.asarray(tables.tokens["sentence"], dtype=np.int64)
        word = np.asarray(tables.tokens["word"], dtype=np.int64)
        rows = np.arange(len(word), dtype=np.int64)
        key = np.where(word >= 0, sentence * (int(word.max(initial=0)) + 1) + word, -1 - rows)
        order = np.argsort(key, kind="stable")  # each word's rows together, in row order
        starts = np.flatnonzero(np.r_[True, key[order][1:] != key[order][:-1]])
        sizes = np.diff(np.r_[starts, len(order)])
        group = np.empty(len(order), dtype=np.int64)
        group[order] = np.repeat(np.arange(len(starts)), sizes)
        self.first = order[starts][group]
        self.size = sizes[group]
        self._order, self._start = order, starts[group]

    def members(self, first: int) -> list[int]:
        """The rows of the word whose first row is ``first``."""
        start = int(self._start[first])
        return self._order[start:start + int(self.size[first])].tolist()


def word_rows(tables: Any, row: int) -> list[int]:
    """The index rows of the corpus word that token ``row`` belongs to, in order (``[row]`` for a token
    without a word)."""
    return tables.words.members(int(tables.words.first[row]))


def grouped_search(vector_set: Any, tables: Any, vector: np.ndarray, top: int, allowed: np.ndarray | None,
                   probes: int | None, *, words: bool, per_sentence: bool, parts: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The top ``top`` matches of ``vector`` as (scores, rows), best first: one per corpus word (its
    first row, scored by `word_vector`) when ``words``, at most one per sentence when ``per_sentence``.
    ``parts`` slices the vectors for `word_vector` (each head is scaled on its own, so the heads a head
    search zeroed in ``vector`` add nothing to a word's score)."""
    count = vector_set.count
    k = min(count, max(MIN_CANDIDATES, CANDIDATES * top))
    while True:
        scores, rows = vector_set.search(vector, k, allowed, probes)
        found = rows[0] >= 0
        scores, rows = scores[0][found], rows[0][found]
        if words:
            scores, rows = _words(vector_set, tables.words, vector, scores, rows, parts)
        if per_sentence:
            scores, rows = _best_per(tables.tokens["sentence"][rows], scores, rows)
        if len(rows) >= top or k >= count or not found.all():
            break
        k = min(count, k * CANDIDATES)
    order = np.lexsort((rows, -scores))[:top]
    return scores[order].astype(np.float32), rows[order].astype(np.int64)


def _words(vector_set: Any, words: Words, vector: np.ndarray, scores: np.ndarray, rows: np.ndarray,
           parts: int) -> tuple[np.ndarray, np.ndarray]:
    """The candidate tokens gathered by corpus word: each word once (its first row), a word of several
    tokens scored again with its `word_vector` (all of its tokens decoded in one call)."""
    firsts = words.first[rows]
    _, seen = np.unique(firsts, return_index=True)
    seen.sort()
    firsts, scores = firsts[seen], scores[seen].astype(np.float32).copy()
    several = np.flatnonzero(words.size[firsts] > 1)
    if len(several):
        members = [words.members(int(f)) for f in firsts[several]]
        sizes = np.array([len(m) for m in members])
        decoded = vector_set.decoded(np.concatenate(members))
        vectors = word_vectors(decoded, np.r_[0, np.cumsum(sizes)[:-1]], sizes, parts)
        scores[several] = vectors @ np.asarray(vector, dtype=np.float32)
    return scores, firsts


def _best_per(keys: np.ndarray, scores: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each key's best (highest score, then lowest row) candidate."""
    order = np.lexsort((rows, -scores))
    _, first = np.unique(np.asarray(keys)[order], return_index=True)
    keep = order[first]
    return scores[keep], rows[keep]
