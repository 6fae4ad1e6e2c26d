"""Opening an index and searching it: by token embedding or by head embedding, with metadata filters.

``Index.open(dir)`` checks the manifest and loads the tables; vector sets are loaded per (kind, layer)
on first use and kept in a bounded cache. ``Index.search`` takes a query vector; ``Index.query`` makes
the query from a sentence with the index's model (refusing any other model), then returns the matches
in context and their summaries (`summaries.py`). A query may search a token or the whole word it
belongs to, and keep one match per sentence (`grouping.py`); special tokens ([CLS], [SEP], ...) are
refused, since the index holds none. A PQ-coded index re-ranks its shortlist against vectors recomputed
with the model (`rerank.py`).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path

import numpy as np

from ..capture.engine import capture
from ..capture.inputs import Tokens
from ..capture.loading import ModelHandle
from ..capture.result import Capture
from ..capture.written import words_text
from ..errors import FieldError, InputError, count
from ..selection import check_choice, check_choices
from .attention_source import CACHE_BYTES as ATTENTION_CACHE_BYTES
from .attention_source import AttentionSource, BlockCache, RecomputedAttention, StoredAttention, no_stored_attention
from .attention_store import AttentionStore
from .columns import isin
from .grouping import WordVectors, grouped_search
from .manifest import Manifest, check_model, read_manifest
from .query import (
    MODES,
    UNITS,
    CheckedQuery,
    Query,
    check_score,
    filter_values,
    given_positions,
    query_positions,
    query_vector,
    score_max,
    score_meaning,
    zero_other_heads,
)
from .remote import RemoteBytes, RemoteFiles
from .rerank import CACHE_BYTES as RERANK_CACHE_BYTES
from .rerank import RecomputedVectors, Rescoring, check_factor, rescore, resolve_factor
from .search_workers import SearchWorkers, WorkerPool, WorkerSet
from .set_loading import LocalSet, open_set, read_ranges
from .storage import Store
from .summaries import SearchResult, make_matches, summarise
from .tables import Tables

Searchable = LocalSet | WorkerSet
"""A vector set `Index` searches: one file, one per shard (`set_loading`), or held by search workers."""

CACHE_BYTES = 1 << 30
"""Default bound on the memory the loaded vector sets of one index may hold (their codes), in bytes."""


class Index:
    """A built index, read-only; searches may run from several threads (the vector-set cache is locked,
    faiss searches release the GIL). Loaded vector sets stay in memory, least recently used evicted
    first, while their codes total at most ``cache_bytes`` (the set in use is always kept); recomputed
    attention blocks likewise within ``attention_cache_bytes``, vectors recomputed to re-rank within
    ``rerank_cache_bytes``. An index opened with search workers (``workers``, `search_workers.WorkerPool`)
    has its vector sets searched by them: `close` (or a ``with`` block) stops them."""

    def __init__(
        self,
        directory: Path,
        manifest: Manifest,
        tables: Tables,
        cache_bytes: int = CACHE_BYTES,
        attention_cache_bytes: int = ATTENTION_CACHE_BYTES,
        rerank_cache_bytes: int = RERANK_CACHE_BYTES,
        remote: RemoteFiles | None = None,
        workers: WorkerPool | None = None,
    ):
        """An opened index (`open` makes one): ``remote`` serves the files of an index on a remote store,
        whose small files are already in ``directory``; ``workers`` search its vector sets."""
        self.directory, self.manifest, self.tables, self.remote = directory, manifest, tables, remote
        self._workers = workers
        self._stored = (
            AttentionStore(
                directory,
                manifest.layer_numbers,
                manifest.heads,
                manifest.attention_bits,
                data=None if remote is None else RemoteBytes(remote),
            )
            if manifest.attention == "stored"
            else None
        )
        self._recomputed = BlockCache(attention_cache_bytes)  # blocks recomputed for matches, if none are stored
        self._rerank_cache = BlockCache(rerank_cache_bytes)  # candidates' vectors recomputed to re-rank them
        self._slot = {layer: slot for slot, layer in enumerate(manifest.layer_numbers)}
        self._ranges = read_ranges(directory)
        self._sets: OrderedDict[tuple[str, int], Searchable] = OrderedDict()
        self._word_sets: OrderedDict[tuple[str, int], WordVectors] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._verified: weakref.WeakSet = weakref.WeakSet()  # models already checked against the manifest
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        directory: Path | str,
        cache_bytes: int = CACHE_BYTES,
        attention_cache_bytes: int = ATTENTION_CACHE_BYTES,
        rerank_cache_bytes: int = RERANK_CACHE_BYTES,
        *,
        search_workers: SearchWorkers | None = None,
    ) -> Index:
        """The index in ``directory``: a local folder, or an fsspec URL (``s3://...``, ``memory://...``)
        read in place (`remote.RemoteFiles`: its tables fetched now, a vector set when first searched,
        attention blocks as byte ranges). ``attention_cache_bytes`` bounds the attention blocks an index
        built with ``--attention recomputed`` keeps of its matches, ``rerank_cache_bytes`` the vectors
        recomputed to re-rank (`rerank.py`). With ``search_workers``, its vector sets are searched by that
        many Ray actors, each holding a group of its shards (`search_workers`; the same results); close
        the index (`close`) to stop them. Raises `IndexFormatError` when there is no complete index there,
        `InputError` for search workers it cannot have."""
        caches = (cache_bytes, attention_cache_bytes, rerank_cache_bytes)
        location = directory
        remote = None
        if isinstance(directory, str) and "://" in directory and not Store.at(directory).is_local:
            remote = RemoteFiles.open(directory)
            directory, manifest = remote.folder, remote.manifest
        else:
            directory = Path(Store.at(directory).root) if isinstance(directory, str) else Path(directory)
            manifest = read_manifest(directory)
        tables = Tables.read(directory)
        workers = None
        if search_workers is not None:
            workers = WorkerPool.start(str(location), directory, manifest, search_workers, cache_bytes)
        return cls(directory, manifest, tables, *caches, remote=remote, workers=workers)

    def file(self, name: str) -> Path:
        """The local path of the index file ``name`` (fetched first, for an index on a remote store)."""
        return self.directory / name if self.remote is None else self.remote.local(name)

    @property
    def workers(self) -> WorkerPool | None:
        """The search workers holding this index's vector sets, or None (searched in this process)."""
        return self._workers

    def close(self) -> None:
        """Stop this index's search workers, if it has any (and the local Ray cluster they started); searching
        the index afterwards raises `InputError`. Nothing to do for an index searched in this process."""
        if self._workers is not None:
            self._workers.close()
            with self._lock:
                self._sets.clear()
                self._word_sets.clear()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def size(self) -> int:
        return self.manifest.tokens

    @property
    def attention(self) -> AttentionStore:
        """The stored attention blocks. Raises `IndexFormatError` for an index built with ``--attention
        recomputed``, which stores none (`attention_source` reads its matches' attention)."""
        if self._stored is None:
            raise no_stored_attention(self.directory)
        return self._stored

    def attention_source(self, handle: ModelHandle | None = None) -> AttentionSource:
        """Where this index's matches get their attention: the stored blocks, or (an index built with
        ``--attention recomputed``) the model of ``handle``, which is verified against the index first.
        Raises `IndexFormatError` when the index stores no attention and no model is given."""
        if self._stored is not None:
            return StoredAttention(self._stored)
        if handle is None:
            raise no_stored_attention(self.directory)
        self.verify(handle)
        return RecomputedAttention(self.tables, handle, self._recomputed)

    @property
    def cached_sets(self) -> list[tuple[str, int]]:
        """The (kind, layer) vector sets in memory now, least recently used first."""
        with self._lock:
            return list(self._sets)

    def vector_set(self, kind: str, layer: int) -> Searchable:
        """The searchable set of ``kind`` ("hidden" or "heads") at ``layer``, loaded once (LRU-bounded)."""
        with self._lock:
            return self._vector_set(kind, layer)

    def _vector_set(self, kind: str, layer: int) -> Searchable:
        key = (kind, layer)
        if key in self._sets:
            self._sets.move_to_end(key)
            return self._sets[key]
        made: Searchable
        if self._workers is not None:  # searched by the workers, which hold the codes
            made = self._workers.vector_set(kind, layer)
        else:
            made = open_set(self.directory, self.manifest, self._ranges, kind, layer, locate=self.file)
        self._sets[key] = made
        while len(self._sets) > 1 and sum(v.nbytes for v in self._sets.values()) > self._cache_bytes:
            self._sets.popitem(last=False)
        return made

    def word_vectors(self, kind: str, layer: int) -> WordVectors:
        """The vectors of the corpus words of several tokens in the set ``kind`` at ``layer`` (`grouping.py`),
        made from the stored tokens on first use and kept (least recently used dropped past a quarter
        of ``cache_bytes``)."""
        found = self.vector_set(kind, layer)
        key = (kind, layer)
        with self._lock:
            if key in self._word_sets:
                self._word_sets.move_to_end(key)
                return self._word_sets[key]
        made = WordVectors(found, self.tables.words, self.manifest.heads if kind == "heads" else 1)
        with self._lock:
            self._word_sets[key] = made
            while len(self._word_sets) > 1 and sum(w.nbytes for w in self._word_sets.values()) > self._cache_bytes // 4:
                self._word_sets.popitem(last=False)
        return made

    def verify(self, handle: ModelHandle) -> None:
        """Refuse a model or tokenizer other than the index's (fingerprints computed once per model)."""
        if handle.model in self._verified:
            return
        check_model(self.manifest, handle, self.directory)
        self._verified.add(handle.model)

    def check_query(self, query: Query) -> CheckedQuery:
        """Validate a query against this index, once: the result, with its heads resolved (all when None)
        and its filters as lists, is searched by `search` and `query` without checking it again.

        Raises `FieldError` naming the query's field at fault (``layer``, ``heads.1``, ``filters.upos``).
        """
        if isinstance(query, CheckedQuery) and query.checked_for == str(self.directory):
            return query
        if query.mode not in MODES:
            raise FieldError(f"search mode {query.mode!r} is unknown: use one of {', '.join(MODES)}", "mode")
        self.check_layer(query.layer)
        if not isinstance(query.top, int) or isinstance(query.top, bool) or not 1 <= query.top <= 1000:
            raise FieldError(f"top must be an integer from 1 to 1000, got {query.top!r}", "top")
        heads = tuple(check_choices("heads", query.heads, self.manifest.heads, "this index", unit="head"))
        if query.probes is not None:
            self.check_probes(query.probes)
        if query.unit not in UNITS:
            raise FieldError(f"search unit {query.unit!r} is unknown: use one of {', '.join(UNITS)}", "unit")
        try:
            check_score(query.mode, query.score)
        except InputError as error:
            raise FieldError(str(error), "score") from None
        check_factor(query.rerank)
        given = {f.name: getattr(query, f.name) for f in fields(Query)}
        return CheckedQuery(
            **{**given, "heads": heads, "filters": self._check_filters(query.filters)}, checked_for=str(self.directory)
        )

    def check_layer(self, layer: object) -> int:
        """``layer`` if this index stores it; `FieldError` about ``layer`` naming the stored layers otherwise
        (out of the model's range, or a layer an index built with ``--layers`` left out)."""
        manifest = self.manifest
        if manifest.all_layers:
            return check_choice("layer", layer, manifest.layers, "this index")
        return check_choice(
            "layer",
            layer,
            manifest.layers,
            "this index",
            kept=manifest.layer_numbers,
            kept_by=f"this index (built with --layers, of the model's {manifest.layers} layers)",
        )

    def _check_filters(self, filters: Mapping[str, Sequence[str] | str] | None) -> dict[str, list[str]] | None:
        """Filters as lists of values, on fields this index has; `FieldError` naming ``filters.<field>``."""
        if not filters:
            return None
        if not isinstance(filters, Mapping):
            raise FieldError(
                f"filters must map a field to its values, e.g. {{'upos': ['VERB']}}, got {filters!r}", "filters"
            )
        checked = {}
        for name, values in filters.items():
            try:
                self.check_filter(name)
                checked[name] = filter_values(name, values)
            except InputError as error:
                raise FieldError(str(error), f"filters.{name}") from None
        return checked

    def check_probes(self, probes: object) -> None:
        """Refuse ``probes`` unless this index is approximate and has at least that many clusters."""
        if not isinstance(probes, int) or isinstance(probes, bool) or probes < 1:
            raise InputError(f"probes must be a positive integer, got {probes!r}")
        lists = self.manifest.approximate_lists
        if not lists:
            raise InputError(
                "probes (--probes) is for approximate indexes; this index is exact (every vector is "
                "compared, there are no clusters to scan): leave probes out"
            )
        if probes > lists:
            raise InputError(
                f"probes {probes} is out of range: this index has {count(lists, 'cluster')}, so probes is 1-{lists}"
            )

    def allowed(self, filters: Mapping[str, Sequence[str] | str] | None) -> np.ndarray | None:
        """(tokens,) bool mask of the tokens whose metadata pass every filter, or None without filters.
        A filter's values are a list, or one value as a string (`filter_values`)."""
        return self._allowed(self._check_filters(filters))

    def _allowed(self, filters: dict[str, list[str]] | None) -> np.ndarray | None:
        """`allowed` for filters already checked (`_check_filters`)."""
        if not filters:
            return None
        mask = np.ones(self.size, dtype=bool)
        for name, values in filters.items():
            mask &= isin(self.tables.tokens[name], values)
        return mask

    def check_filter(self, name: str) -> None:
        """Refuse a filter on a field this index's tokens do not have."""
        if name not in self.tables.fields:
            have = ", ".join(self.tables.fields) or "none"
            raise InputError(f"cannot filter on {name!r}: this index's tokens have the fields {have}")

    def search(
        self, query: Query, vector: np.ndarray, handle: ModelHandle | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top matches of a query vector: (scores, rows), best first, without rows -1. A word search
        (``query.unit == "word"``) returns each matched corpus word's first row. With ``handle`` (the
        index's model, verified here) the shortlist is re-ranked as ``query.rerank`` says (`Query`;
        without one, a ``rerank`` above 1 is refused, and by default nothing is re-ranked). The query
        is checked (`check_query`) unless it already was."""
        query = self.check_query(query)
        heads = query.heads
        kind = "hidden" if query.mode == "embedding" else "heads"
        vector = self._checked_vector(vector, kind)
        if query.mode == "heads":
            vector = zero_other_heads(vector, heads, self.manifest.heads)
        factor = self.rerank_factor(query, handle)
        allowed = self._allowed(query.filters)
        scores, rows = self._codes_search(query, kind, vector, query.top * factor, allowed)
        if factor > 1 and handle is not None:
            self.verify(handle)
            source = RecomputedVectors(self.tables, handle, self._rerank_cache)
            parts = self.manifest.heads if kind == "heads" else 1
            wanted = Rescoring(query.top, query.unit == "word", query.per_sentence, allowed, parts)
            scores, rows = rescore(source, vector, rows, kind, query.layer, wanted)
        if query.mode == "heads" and query.score == "mean":
            scores = scores / np.float32(len(heads))
        return scores, rows

    def _checked_vector(self, vector: np.ndarray, kind: str) -> np.ndarray:
        """The query vector as float32, refused (`FieldError` about ``vector``) unless it holds the width of the
        index's ``kind`` of vector in finite values."""
        width = self.manifest.hidden_size if kind == "hidden" else self.manifest.head_embedding_size
        vector = np.asarray(vector, dtype=np.float32)
        if vector.shape != (width,) or not np.isfinite(vector).all():
            problem = f"shape {vector.shape}" if vector.shape != (width,) else "values that are not finite"
            raise FieldError(
                f"a query vector of {'hidden states' if kind == 'hidden' else 'head embeddings'} on this index "
                f"holds {width} finite values; got {problem}",
                "vector",
            )
        return vector

    def _estimated(self, factor: int) -> str:
        """What a score meaning adds for scores that product-quantiser codes estimate (not re-ranked)."""
        if factor > 1 or self.manifest.codes == "sq":
            return ""
        return f"; estimated from the corpus's {self.manifest.codes} codes (re-rank for exact scores)"

    def rerank_factor(self, query: Query, handle: ModelHandle | None = None) -> int:
        """The factor ``query`` re-ranks by on this index, with or without a model (`rerank.resolve_factor`)."""
        check_factor(query.rerank)
        return resolve_factor(query.rerank, self.manifest.codes, handle is not None)

    def _codes_search(
        self, query: CheckedQuery, kind: str, vector: np.ndarray, top: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``top`` best by the stored codes, as `search` returns them."""
        probes = query.probes or self.manifest.default_probes or None
        found = self.vector_set(kind, query.layer)
        if query.unit == "word" or query.per_sentence:
            words = self.word_vectors(kind, query.layer) if query.unit == "word" else None
            return grouped_search(
                found, self.tables, vector, top, allowed, probes, words=words, per_sentence=query.per_sentence
            )
        scores, rows = found.search(vector, top, allowed, probes)
        keep = rows[0] >= 0
        return scores[0][keep], rows[0][keep]

    def query_capture(
        self,
        handle: ModelHandle,
        text: str,
        text_pair: str | None = None,
        *,
        mask: Sequence[int] = (),
        warn: bool = True,
        tokens: Tokens | None = None,
    ) -> Capture:
        """What `query` reads of an input: its capture with hidden states and per-head outputs at every layer
        (no attention weights, no predictions). Arguments as `query`'s."""
        return capture(
            handle,
            text,
            text_pair,
            mask=mask,
            fields=("hidden_states", "head_outputs"),
            top_k=0,
            warn=warn,
            tokens=tokens,
        )

    def query(
        self,
        handle: ModelHandle,
        text: str,
        token: int,
        query: Query,
        *,
        mask: Sequence[int] = (),
        text_pair: str | None = None,
        warn: bool = True,
        positions: Sequence[int] | None = None,
        tokens: Tokens | None = None,
        captured: Capture | None = None,
    ) -> SearchResult:
        """Search with the representation of ``token`` (a position in the tokens of ``text``, or of the
        pair ``text`` + ``text_pair`` as the model joins them), or of its word (``query.unit``), at the
        query's layer. For a causal model (a decoder) each match also names the token after it and the
        summary counts those tokens' metadata (``next``). ``positions`` names the tokens of a word
        search explicitly (a word as written that the tokenizer splits into several words, such as
        "don't"; ``token`` must be the first of them);
        by default they are ``token``'s word. A special token is refused: the index holds none. Masking
        with a model whose mask token was never trained issues a `MaskingWarning` unless ``warn`` is
        False (callers that show `masking_caveat` themselves). ``tokens``, when the caller has tokenised
        the text already (`encode`, with ``mask`` applied), is used instead of tokenising it again;
        ``captured``, when the caller kept the input's `query_capture` (the server does, for the inputs searched
        last), instead of running the model again. The query is checked (`check_query`) unless it already was."""
        self.verify(handle)
        query = self.check_query(query)
        heads = query.heads
        if captured is None:
            captured = self.query_capture(handle, text, text_pair, mask=mask, warn=warn, tokens=tokens)
        cap = captured
        if positions is None:
            positions = query_positions(cap.tokens, token, query.unit)
        else:
            positions = given_positions(cap.tokens, token, positions, query.unit)
        vector = query_vector(cap.main, query.mode, query.layer, positions)
        scores, rows = self.search(query, vector, handle)
        factor = self.rerank_factor(query, handle)
        causal = handle.kind == "decoder"  # the token after each match is what the model was predicting there
        source = self.attention_source(handle)
        words = query.unit == "word"
        matches = make_matches(self, rows, scores, query.layer, heads, words=words, causal=causal, attention=source)
        return SearchResult(
            query.mode,
            query.layer,
            list(heads),
            text,
            token,
            cap.tokens.display[token],
            matches,
            summarise(matches, self.tables.fields, causal=causal),
            text_pair,
            unit=query.unit,
            per_sentence=query.per_sentence,
            score=query.score,
            score_max=score_max(query, heads),
            score_meaning=score_meaning(query, heads) + self._estimated(factor),
            query_positions=positions,
            query_text=words_text(cap.tokens, positions),
            rerank=factor,
        )
