"""Re-ranking a search's shortlist against exact vectors, recomputed with the model for its sentences.

A PQ-coded index (``--codes pq<m>``) scores its rows by their codes, which approximate each vector by
centroids: on EWT (the default model, layer 3), pq96 codes alone find 0.86 of the exact float32 top 50,
re-ranked x4 all of it (`bench/scale.py --pq-index`, README "Vector sets at scale"). Re-ranking
takes the best ``top * factor`` candidates by the codes, runs the model again on the sentences that hold
them (up to the query's layer: `extract.extract_layer` stops the pass there), takes each of those
sentences' tokens' exact vectors at that layer as the build extracted them (`extract.extract_batch`: the
unit hidden state after the layer, or the head embedding, each head's output unit length; the query's
other heads are already zeroed, so the inner product is the sum of the chosen heads' cosines), and scores
them by their exact inner product with the query. Nothing more is stored: the index keeps its m bytes a
vector.

What is re-scored: every indexed token (a word search: every corpus word) of the candidate sentences
that passes the query's filters, not only the candidate rows themselves (the model ran on the whole
sentence, so its other tokens cost nothing more). The result is the exact top ``top`` among them, ties
by row; one per sentence (``per_sentence``) keeps each sentence's exactly best unit, and the shortlist
then holds ``top * factor`` sentences. A word's vector is the `grouping.word_vector` of its tokens'
exact vectors, as a query word's is. Rows outside the candidate sentences are not re-scored: a row
whose codes rank it below the shortlist stays out, however high its exact score.

The sentences run in length-sorted batches (``batch_tokens`` padded tokens a batch, as the build's), each
re-tokenised as the build did and checked against the positions the index recorded (`attention_source
.replanned`); their vectors stay in a byte-bounded cache (`attention_source.BlockCache`, keys (kind,
layer, sentence)) shared by the searches of one index, whose model `Index.verify` checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..capture.loading import ModelHandle
from ..errors import FieldError
from .attention_source import BlockCache, replanned
from .extract import extract_layer, plan_batches
from .grouping import word_vectors
from .tables import Tables

DEFAULT_FACTOR = 4
"""The re-ranking factor a PQ-coded index's searches take when a model is at hand and the query names none:
on EWT, x4 raised recall@50 from 0.76 to 0.99 (pq48) and from 0.86 to 1.00 (pq96) (`bench/scale_pq.py`)."""

MAX_FACTOR = 16
"""The largest factor a query may ask for (top 50 x 16: 800 candidate rows, as many sentences run)."""

CACHE_BYTES = 64 << 20
"""Default bound on the recomputed vectors one index keeps, in bytes (a 384-wide vector is 1.5 KiB)."""

BATCH_TOKENS = 4096
"""Padded tokens per forward batch when candidates' vectors are recomputed."""


def check_factor(factor: object) -> None:
    """Refuse a re-ranking factor that is not None or a whole number from 1 (no re-ranking) to `MAX_FACTOR`
    (`FieldError` about ``rerank``)."""
    if factor is None:
        return
    if not isinstance(factor, int) or isinstance(factor, bool) or not 1 <= factor <= MAX_FACTOR:
        raise FieldError(
            f"rerank must be an integer from 1 (no re-ranking) to {MAX_FACTOR}, got {factor!r}: the best top x "
            "rerank candidates by the codes are scored again against exact vectors recomputed with the model",
            "rerank",
        )


def resolve_factor(factor: int | None, codes: str, has_model: bool) -> int:
    """The factor a search re-ranks by: the query's ``factor``; by default (None) `DEFAULT_FACTOR` for a
    product-quantised index (``codes`` "pq<m>") searched with a model at hand, 1 (none) otherwise: an
    8-bit index's codes already find 0.99 of the exact top 50, not worth a forward pass a search.
    Raises `FieldError` about ``rerank`` when a factor above 1 is asked for without a model."""
    if factor is None:
        return DEFAULT_FACTOR if codes != "sq" and has_model else 1
    if factor > 1 and not has_model:
        raise FieldError(
            f"rerank {factor} needs the index's model: re-ranking recomputes the candidates' vectors with it. "
            "Search with Index.query, or pass Index.search a model (handle=); rerank=1 searches the codes alone",
            "rerank",
        )
    return factor


class RecomputedVectors:
    """Exact vectors of index sentences, computed with ``handle`` (a model the index has verified) when
    asked for, batched (``batch_tokens`` padded tokens a batch) and kept in ``cache``."""

    def __init__(self, tables: Tables, handle: ModelHandle, cache: BlockCache, batch_tokens: int = BATCH_TOKENS):
        self.tables, self.handle, self.cache, self.batch_tokens = tables, handle, cache, batch_tokens

    def vectors(self, sentences: Sequence[int], kind: str, layer: int) -> dict[int, np.ndarray]:
        """Each sentence's (indexed tokens, width) float32 vectors of ``kind`` ("hidden" or "heads") at model
        ``layer``, in row order: from the cache, or recomputed."""
        found: dict[int, np.ndarray] = {}
        missing = []
        for sentence in sentences:
            cached = self.cache.get((kind, layer, int(sentence)))
            if cached is None:
                missing.append(int(sentence))
            else:
                found[int(sentence)] = cached
        if not missing:
            return found
        planned = [replanned(self.tables, self.handle, sentence) for sentence in missing]
        for batch in plan_batches([len(p.tokens) for p in planned], self.batch_tokens):
            items = [planned[i] for i in sorted(batch)]
            values = extract_layer(self.handle, items, layer, kind)  # the later layers are not run
            start = 0
            for item in items:
                block = np.ascontiguousarray(values[start : start + item.rows])
                start += item.rows
                found[item.sentence] = block
                self.cache.put((kind, layer, item.sentence), block)
        return found


@dataclass(frozen=True)
class Rescoring:
    """What a re-ranked search keeps: its ``top`` units, words or tokens (``word``), at most one per sentence
    (``per_sentence``), those allowed by the filters (``allowed``: a (tokens,) bool mask, or None); ``parts``
    is 1 for hidden states, the head count for head embeddings (word vectors are unit length per part)."""

    top: int
    word: bool = False
    per_sentence: bool = False
    allowed: np.ndarray | None = None
    parts: int = 1


def rescore(
    source: RecomputedVectors, vector: np.ndarray, shortlist: np.ndarray, kind: str, layer: int, wanted: Rescoring
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) best first, ties by row: the exact top ``wanted.top`` among the units of the sentences
    that hold the ``shortlist`` rows, scored by their recomputed vectors' inner product with ``vector``
    (the query, (width,) float32). A word unit's row is its first row."""
    tables = source.tables
    sentences = np.unique(np.asarray(tables.tokens["sentence"])[np.asarray(shortlist, dtype=np.int64)])
    if len(sentences) == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    exact = source.vectors(sentences.tolist(), kind, layer)
    spans = [tables.sentence_rows(int(s)) for s in sentences]
    rows = np.concatenate([np.arange(span.start, span.stop, dtype=np.int64) for span in spans])
    values = np.concatenate([exact[int(s)] for s in sentences])
    if wanted.word:
        rows, values = _word_units(tables, rows, values, wanted.parts)
    if wanted.allowed is not None:
        keep = wanted.allowed[rows]
        rows, values = rows[keep], values[keep]
    scores = values @ np.asarray(vector, dtype=np.float32)
    if wanted.per_sentence:
        scores, rows = _best_per_sentence(np.asarray(tables.tokens["sentence"])[rows], scores, rows)
    order = np.lexsort((rows, -scores))[: wanted.top]
    return scores[order].astype(np.float32), rows[order]


def _word_units(tables: Any, rows: np.ndarray, values: np.ndarray, parts: int) -> tuple[np.ndarray, np.ndarray]:
    """The corpus words among ``rows`` (tokens of no word left out) as (first rows, word vectors): a word of
    one token is its token's vector, a word of several the `grouping.word_vector` of its tokens'."""
    in_word = np.asarray(tables.tokens["word"])[rows] >= 0
    rows, values = rows[in_word], values[in_word]
    first = tables.words.first[rows]
    order = np.lexsort((rows, first))  # each word's tokens together, in row order
    rows, values, first = rows[order], values[order], first[order]
    starts = np.flatnonzero(np.r_[True, first[1:] != first[:-1]]) if len(first) else np.zeros(0, np.int64)
    sizes = np.diff(np.r_[starts, len(first)])
    merged = values[starts].copy()
    several = sizes > 1
    if several.any():  # word_vectors takes its words back to back
        members = np.repeat(several, sizes)
        counts = sizes[several]
        merged[several] = word_vectors(values[members], np.r_[0, np.cumsum(counts)[:-1]], counts, parts)
    return first[starts], merged


def _best_per_sentence(keys: np.ndarray, scores: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each sentence's best (highest score, then lowest row) unit."""
    order = np.lexsort((rows, -scores))
    _, first = np.unique(keys[order], return_index=True)
    keep = order[first]
    return scores[keep], rows[keep]
