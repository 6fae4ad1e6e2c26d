"""Opening an index and searching it: by token embedding or by head embedding, with metadata filters.

``Index.open(dir)`` checks the manifest and loads the tables; vector sets are loaded per (kind, layer)
on first use and kept in a bounded cache. ``Index.search`` takes a query vector; ``Index.query`` makes
the query from a sentence with the index's model (refusing any other model), then returns the matches
in context and their summaries (`summaries.py`).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..capture.engine import capture
from ..capture.loading import ModelHandle
from ..errors import InputError, check_range
from . import vectors
from .attention_store import AttentionStore
from .build import RANGES, codes_file, ivf_file, read_codes
from .manifest import Manifest, check_model, read_manifest
from .summaries import Match, SearchResult, make_matches, summarise
from .tables import Tables

MODES = ("embedding", "heads")
DEFAULT_TOP = 50


@dataclass(frozen=True)
class Query:
    """A search: ``mode`` "embedding" (the hidden state after ``layer``, cosine) or "heads" (the head
    embedding of ``layer`` over ``heads``: the sum of those heads' cosines). On an approximate index,
    ``probes`` clusters are scanned (default: the index's; more is slower and closer to exact)."""

    mode: str
    layer: int
    heads: tuple[int, ...] | None = None
    top: int = DEFAULT_TOP
    filters: Mapping[str, Sequence[str]] | None = None
    probes: int | None = None


CACHE_BYTES = 1 << 30
"""Default bound on the memory the loaded vector sets of one index may hold (their codes), in bytes."""


class Index:
    """A built index, read-only; searches may run from several threads (the vector-set cache is locked,
    faiss searches release the GIL). Loaded vector sets stay in memory, least recently used evicted
    first, while their codes total at most ``cache_bytes`` (the set in use is always kept)."""

    def __init__(self, directory: Path, manifest: Manifest, tables: Tables, cache_bytes: int = CACHE_BYTES):
        self.directory, self.manifest, self.tables = directory, manifest, tables
        self.attention = AttentionStore(directory, manifest.layers, manifest.heads, manifest.attention_bits)
        ranges = np.load(directory / RANGES)
        self._ranges = {name: (ranges[f"{name}_low"], ranges[f"{name}_span"]) for name in ("hidden", "heads")}
        self._sets: OrderedDict[tuple[str, int], vectors.VectorSet] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._verified: weakref.WeakSet = weakref.WeakSet()  # models already checked against the manifest
        self._lock = threading.Lock()

    @classmethod
    def open(cls, directory: Path | str, cache_bytes: int = CACHE_BYTES) -> "Index":
        directory = Path(directory)
        manifest = read_manifest(directory)
        return cls(directory, manifest, Tables.read(directory), cache_bytes)

    @property
    def size(self) -> int:
        return self.manifest.tokens

    @property
    def cached_sets(self) -> list[tuple[str, int]]:
        """The (kind, layer) vector sets in memory now, least recently used first."""
        with self._lock:
            return list(self._sets)

    def vector_set(self, kind: str, layer: int) -> vectors.VectorSet:
        """The searchable set of ``kind`` ("hidden" or "heads") at ``layer``, loaded once (LRU-bounded)."""
        with self._lock:
            return self._vector_set(kind, layer)

    def _vector_set(self, kind: str, layer: int) -> vectors.VectorSet:
        key = (kind, layer)
        if key in self._sets:
            self._sets.move_to_end(key)
            return self._sets[key]
        low, span = self._ranges[kind]
        dim = self.manifest.hidden_size if kind == "hidden" else self.manifest.head_embedding_size
        ranges, bits = vectors.Ranges(low[layer], span[layer]), self.manifest.vector_bits
        if self.manifest.approximate_lists:
            made = vectors.VectorSet.from_file(self.directory / ivf_file(kind, layer), dim, bits, ranges)
        else:
            codes = read_codes(self.directory / codes_file(kind, layer), self.manifest.tokens)
            made = vectors.VectorSet.from_codes(codes, dim, bits, ranges)
        self._sets[key] = made
        while len(self._sets) > 1 and sum(v.nbytes for v in self._sets.values()) > self._cache_bytes:
            self._sets.popitem(last=False)
        return made

    def verify(self, handle: ModelHandle) -> None:
        """Refuse a model or tokenizer other than the index's (fingerprints computed once per model)."""
        if handle.model in self._verified:
            return
        check_model(self.manifest, handle, self.directory)
        self._verified.add(handle.model)

    def check_query(self, query: Query) -> tuple[int, ...]:
        """Validate a query against this index; returns the heads it covers."""
        if query.mode not in MODES:
            raise InputError(f"search mode {query.mode!r} is unknown: use one of {', '.join(MODES)}")
        check_range("layer", query.layer, self.manifest.layers, "this index")
        if not isinstance(query.top, int) or not 1 <= query.top <= 1000:
            raise InputError(f"top must be an integer from 1 to 1000, got {query.top!r}")
        heads = tuple(range(self.manifest.heads)) if query.heads is None else tuple(query.heads)
        if not heads:
            raise InputError("no heads selected: select at least one head (or none given means all)")
        for head in heads:
            check_range("head", head, self.manifest.heads, "this index")
        if len(set(heads)) != len(heads):
            raise InputError(f"heads {list(heads)} name a head twice")
        if query.probes is not None and (not isinstance(query.probes, int) or query.probes < 1):
            raise InputError(f"probes must be a positive integer, got {query.probes!r}")
        return heads

    def allowed(self, filters: Mapping[str, Sequence[str]] | None) -> np.ndarray | None:
        """(tokens,) bool mask of the tokens whose metadata pass every filter, or None without filters."""
        if not filters:
            return None
        mask = np.ones(self.size, dtype=bool)
        for name, values in filters.items():
            self.check_filter(name)
            mask &= np.isin(self.tables.tokens[name], list(values))
        return mask

    def check_filter(self, name: str) -> None:
        """Refuse a filter on a field this index's tokens do not have."""
        if name not in self.tables.fields:
            have = ", ".join(self.tables.fields) or "none"
            raise InputError(f"cannot filter on {name!r}: this index's tokens have the fields {have}")

    def search(self, query: Query, vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top matches of a query vector: (scores, rows), best first, without rows -1."""
        heads = self.check_query(query)
        kind = "hidden" if query.mode == "embedding" else "heads"
        if query.mode == "heads":
            vector = zero_other_heads(vector, heads, self.manifest.heads)
        probes = query.probes or self.manifest.default_probes or None
        scores, rows = self.vector_set(kind, query.layer).search(vector, query.top, self.allowed(query.filters), probes)
        keep = rows[0] >= 0
        return scores[0][keep], rows[0][keep]

    def query(self, handle: ModelHandle, text: str, token: int, query: Query, *, mask: Sequence[int] = (),
              text_pair: str | None = None, warn: bool = True) -> SearchResult:
        """Search with the representation of ``token`` (a position in the tokens of ``text``, or of the
        pair ``text`` + ``text_pair`` as the model joins them) at the query's layer. Masking with a model
        whose mask token was never trained issues a `MaskingWarning` unless ``warn`` is False (callers
        that show `masking_caveat` themselves)."""
        self.verify(handle)
        heads = self.check_query(query)
        cap = capture(handle, text, text_pair, mask=mask, fields=("hidden_states", "head_outputs"), top_k=0,
                      warn=warn)
        check_range("token", token, len(cap.tokens), f"the query text of {len(cap.tokens)} tokens")
        vector = query_vector(cap.main, query.mode, query.layer, token)
        scores, rows = self.search(query, vector)
        matches = make_matches(self, rows, scores, query.layer, heads)
        return SearchResult(query.mode, query.layer, list(heads), text, token, cap.tokens.display[token],
                            matches, summarise(matches, self.tables.fields), text_pair)


def unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.where(norm > 0, x / np.maximum(norm, 1e-12), x).astype(np.float32)


def query_vector(stack, mode: str, layer: int, token: int) -> np.ndarray:
    """The vector a token is searched with: its unit hidden state after ``layer``, or its head
    embedding at ``layer`` (each head's output unit-normalised, concatenated)."""
    if mode == "embedding":
        return unit(stack.require("hidden_states")[layer + 1][token].astype(np.float32))
    outputs = stack.require("head_outputs")[layer][:, token].astype(np.float32)  # (heads, head_dim)
    return unit(outputs).reshape(-1)


def zero_other_heads(vector: np.ndarray, heads: Sequence[int], head_count: int) -> np.ndarray:
    """The head-embedding query with every head not in ``heads`` set to zero."""
    parts = np.array(vector, dtype=np.float32).reshape(head_count, -1)
    keep = np.zeros(head_count, dtype=bool)
    keep[list(heads)] = True
    parts[~keep] = 0
    return parts.reshape(-1)


__all__ = ["Index", "Match", "Query", "SearchResult", "query_vector", "zero_other_heads", "unit"]
