"""Where a search reads the attention of its matches: the index's stored blocks, or the model, again.

An index built with ``attention="stored"`` (the default) holds every sentence's quantised attention
(`attention_store.py`); one built with ``attention="recomputed"`` holds none, and the attention of the
matched sentences is computed when a search makes its matches: each sentence's text is tokenised as the
build did, the unique sentences run through the query's model in a few length-sorted batches, and each
block cut to the indexed tokens, as the build would have stored it before quantising. Both sources answer
`AttentionSource.rows`; `Index.attention_source` picks the index's.

Recomputed blocks stay in a cache bounded in bytes (`BlockCache`, least recently used dropped first),
shared by the searches of one index: its model is the one the index verified, so a block depends only on
(sentence, layer).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from ..capture.inputs import encode
from ..capture.loading import ModelHandle
from ..errors import InputError
from ..quantise import dequantise
from .attention_store import AttentionStore
from .extract import PlannedSentence, extract_attention, plan_batches
from .manifest import IndexFormatError
from .tables import Tables

Wanted = tuple[int, Sequence[int]]
"""A match's sentence and the positions (among its indexed tokens) whose attention rows are read."""

RECOMPUTE_BATCH_TOKENS = 4096
"""Padded tokens per forward batch when matches' attention is recomputed."""

CACHE_BYTES = 64 << 20
"""Default bound on the recomputed blocks one index keeps, in bytes."""


class AttentionSource(Protocol):
    """The attention a search shows for its matches."""

    error_bound: float
    """How far a weight read may be from the model's own (0 for recomputed weights, float noise aside)."""

    def rows(self, wanted: Sequence[Wanted], layer: int, heads: Sequence[int]) -> list[np.ndarray]:
        """For each (sentence, positions) of ``wanted``: the (len(heads), len(positions), n) float32 weights
        those indexed tokens pay the sentence's n indexed tokens at model ``layer``."""
        ...


class StoredAttention:
    """The attention an index stores (`AttentionStore`), dequantised: within ``error_bound`` of the model's."""

    def __init__(self, store: AttentionStore):
        self.store = store
        self.error_bound = store.error_bound

    def rows(self, wanted: Sequence[Wanted], layer: int, heads: Sequence[int]) -> list[np.ndarray]:
        head_list = list(heads)
        found = []
        self.store.prefetch(sorted({sentence for sentence, _ in wanted}), layer)
        for sentence, positions in wanted:
            block = self.store.layer_block(sentence, layer)
            found.append(dequantise(block[head_list][:, list(positions)], self.store.bits))
        return found


class BlockCache:
    """Recomputed arrays by key, least recently used dropped once they hold more than ``max_bytes`` (the
    newest is always kept): (heads, n, n) attention blocks by (sentence, layer) here, (n, width) vectors by
    (kind, layer, sentence) in `rerank`. Safe to share between threads."""

    def __init__(self, max_bytes: int = CACHE_BYTES):
        if not isinstance(max_bytes, int) or max_bytes < 0:
            raise InputError(f"a cache bound is a whole number of bytes, 0 or more; got {max_bytes!r}")
        self.max_bytes = max_bytes
        self._blocks: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> np.ndarray | None:
        with self._lock:
            block = self._blocks.get(key)
            if block is not None:
                self._blocks.move_to_end(key)
            return block

    def put(self, key: tuple[Any, ...], block: np.ndarray) -> None:
        with self._lock:
            if key in self._blocks:
                return
            self._blocks[key] = block
            self._bytes += block.nbytes
            while len(self._blocks) > 1 and self._bytes > self.max_bytes:
                _, dropped = self._blocks.popitem(last=False)
                self._bytes -= dropped.nbytes

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._blocks)


class RecomputedAttention:
    """The attention of matched sentences, computed with ``handle`` (a model the index has verified) when
    asked for, batched (``batch_tokens`` padded tokens a batch) and kept in ``cache``."""

    error_bound = 0.0

    def __init__(
        self, tables: Tables, handle: ModelHandle, cache: BlockCache, batch_tokens: int = RECOMPUTE_BATCH_TOKENS
    ):
        self.tables, self.handle, self.cache, self.batch_tokens = tables, handle, cache, batch_tokens

    def rows(self, wanted: Sequence[Wanted], layer: int, heads: Sequence[int]) -> list[np.ndarray]:
        blocks = self.blocks(sorted({sentence for sentence, _ in wanted}), layer)
        head_list = list(heads)
        return [blocks[sentence][head_list][:, list(positions)] for sentence, positions in wanted]

    def blocks(self, sentences: Sequence[int], layer: int) -> dict[int, np.ndarray]:
        """Each sentence's (heads, n, n) float32 attention at ``layer``: from the cache, or recomputed."""
        found: dict[int, np.ndarray] = {}
        missing = []
        for sentence in sentences:
            block = self.cache.get((sentence, layer))
            if block is None:
                missing.append(sentence)
            else:
                found[sentence] = block
        if missing:
            planned = [replanned(self.tables, self.handle, sentence) for sentence in missing]
            for batch in plan_batches([len(p.tokens) for p in planned], self.batch_tokens):
                items = [planned[i] for i in sorted(batch)]
                for item, block in zip(items, extract_attention(self.handle, items, layer)):
                    found[item.sentence] = block
                    self.cache.put((item.sentence, layer), block)
        return found


def replanned(tables: Tables, handle: ModelHandle, sentence: int) -> PlannedSentence:
    """Index sentence ``sentence`` tokenised as the build tokenised it (truncated alike), checked against
    the positions the index recorded for its tokens. Raises `IndexFormatError` when they differ (the
    tokenizer or the text changed since the build): nothing of it can be recomputed."""
    text = str(tables.sentences["text"][sentence])
    tokens = encode(handle, text, truncate=True)
    positions = np.array([i for i, special in enumerate(tokens.special) if not special], dtype=np.int64)
    span = tables.sentence_rows(sentence)
    recorded = np.asarray(tables.tokens["position"][span.start : span.stop], dtype=np.int64)
    if not np.array_equal(positions, recorded):
        raise IndexFormatError(
            f"index sentence {sentence} ({str(tables.sentences['sent_id'][sentence])!r}) tokenises into "
            f"{len(positions)} indexed tokens now, the index recorded {len(recorded)}: it cannot be "
            "recomputed; rebuild the index with `attnscope index`"
        )
    return PlannedSentence(sentence, tokens, [], positions)


def no_stored_attention(directory: Any) -> IndexFormatError:
    """The error for reading stored attention from an index built with ``--attention recomputed``."""
    return IndexFormatError(
        f"the index at {directory} stores no attention (built with --attention recomputed, "
        "BuildOptions.attention='recomputed'): its matches' attention is recomputed with the query's model; "
        "read it with Index.attention_source(handle), or rebuild with --attention stored"
    )
