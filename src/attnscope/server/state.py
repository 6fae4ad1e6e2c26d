"""What a server serves: the models and corpus indexes configured at start, and the request limits.

Nothing is loaded or downloaded because of a request: a name that was not configured is refused
(404). Each corpus is checked at start against the model it was built with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..capture.loading import ModelHandle, readable_model_name
from ..errors import AttnscopeError
from ..index import Index
from ..index.search_workers import SearchWorkers
from .atlas_jobs import AtlasJobs
from .corpora import Corpus
from .corpus_builds import CorpusBuilds
from .errors import ApiError
from .long_store import LONG_INPUTS_KEPT, LongViews
from .query_store import QueryCaptures
from .token_limits import MEMORY_BYTES

MAX_BODY_BYTES = 64 * 1024
"""Largest request body accepted, in bytes."""


@dataclass(frozen=True)
class Limits:
    """Request limits: body size in bytes; tokens per input, set per model by its positions and by the memory one
    request may take by its estimate (``memory_bytes``, `token_limits`), and by ``max_tokens`` when given; the
    long inputs whose capture is kept for the long-context view's requests (``long_inputs``); and the largest array
    of attention weights a long input's view may materialise at once (``max_dense_bytes``: it never needs one of a
    whole stack, and is refused one by `LazyAttention`'s guard)."""

    max_body_bytes: int = MAX_BODY_BYTES
    max_tokens: int | None = None
    memory_bytes: int = MEMORY_BYTES
    long_inputs: int = LONG_INPUTS_KEPT
    max_dense_bytes: int = 256 * 2**20


@dataclass
class AppState:
    """The models (by name) and corpora (by name) a server answers for, plus its limits.

        A model is served under a readable name (`ModelHandle.label`: the hub id, or a local checkpoint's
        folder name, never a path of the server's machine; its full name where two labels would clash).
        ``aliases`` maps the other names it answers to (the name it was configured by, e.g. "default", and
        its full name, a local path included) to that name; `listed_aliases` are those fit to show.
        Holds no per-request data but bounded caches: the indexes' own vector-set caches, ``atlases`` (one head-atlas
        job per configured corpus) and ``long_views`` (the last few long inputs' captures, whose layers the
        long-context view asks for one by one), ``query_captures`` (what searches read of the inputs searched last,
    query_store.py); ``builds`` holds the corpora built on first use (corpus_builds.py),
        which join ``corpora`` when built.
    """

    models: dict[str, ModelHandle]
    corpora: dict[str, Corpus] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    atlases: AtlasJobs = field(default_factory=AtlasJobs)
    builds: CorpusBuilds = field(default_factory=CorpusBuilds)
    long_views: LongViews = field(default_factory=LongViews)
    query_captures: QueryCaptures = field(default_factory=QueryCaptures)

    def __post_init__(self) -> None:
        self.long_views.capacity = self.limits.long_inputs

    @classmethod
    def configure(
        cls,
        models: Sequence[str],
        corpora: Sequence[Path | str] = (),
        *,
        loader: Callable[[str], ModelHandle] | None = None,
        limits: Limits = Limits(),
        search_workers: SearchWorkers | None = None,
    ) -> AppState:
        """Load ``models`` and open the index directories ``corpora`` (each named by its directory's name), each
        searched by ``search_workers`` when given (Ray actors holding its shards: `AppState.close` stops them).

        A corpus whose model is not among ``models`` has that model loaded too. Raises
        `AttnscopeError` for a model that cannot be loaded, an index that cannot be opened, two
        corpora with one name, or an index built with other weights than its model's.
        """
        if loader is None:
            from ..capture.loading import load

            loader = load
        state = cls(models={}, limits=limits)
        for name in models:
            state.add_model(name, loader(name))
        for directory in corpora:
            index = Index.open(directory, search_workers=search_workers)
            wanted = index.manifest.model
            handle = state.models.get(state.aliases.get(wanted, wanted))
            if handle is None:
                handle = state.add_model(wanted, loader(wanted))
            state.add_corpus(Path(directory).name, index, handle)
        return state

    def close(self) -> None:
        """Stop the search workers of every corpus index that has them (`Index.close`)."""
        for corpus in self.corpora.values():
            corpus.index.close()

    def add_model(self, name: str, handle: ModelHandle) -> ModelHandle:
        """Serve ``handle`` under its readable name, answering to ``name`` and its full name too."""
        served = self._served_name(handle)
        if served is None:
            taken = self.models.get(handle.label)
            served = handle.label if taken is None else handle.name
            self.models[served] = handle
        for alias in (handle.name, name):
            if alias != served:
                self.aliases[alias] = served
        return self.models[served]

    def _served_name(self, handle: ModelHandle) -> str | None:
        return next((n for n, h in self.models.items() if h is handle or h.name == handle.name), None)

    def name_of(self, handle: ModelHandle) -> str:
        """The name ``handle`` is served under (what responses say and ``GET /api/models`` lists)."""
        return self._served_name(handle) or handle.label

    def add_corpus(self, name: str, index: Index, handle: ModelHandle) -> None:
        """Serve ``index`` as ``name``, searched with ``handle`` (checked against the index now)."""
        if name in self.corpora:
            raise AttnscopeError(f"two corpora are named {name!r}: give index directories with different names")
        index.verify(handle)
        self.add_model(handle.name, handle)
        self.corpora[name] = Corpus(name, index, handle)

    def serve_built_corpus(self, name: str, index: Index, handle: ModelHandle) -> None:
        """Serve ``index`` (built on first use, `corpus_builds`) as corpus ``name`` from now on. The corpora
        mapping is replaced, not changed in place, so a request listing or reading it on another thread never
        sees it change under it."""
        index.verify(handle)
        self.corpora = {**self.corpora, name: Corpus(name, index, handle)}

    def model(self, name: str) -> ModelHandle:
        """The configured model ``name`` (or alias); 404 if it was not configured."""
        handle = self.models.get(self.aliases.get(name, name))
        if handle is None:
            raise ApiError(
                404,
                "unknown_model",
                f"model {name!r} is not served here: use one of {_listing(self.models)} (GET /api/models)",
                "model",
            )
        return handle

    def corpus(self, name: str) -> Corpus:
        """The configured corpus ``name``; 404 if it was not configured."""
        corpus = self.corpora.get(name)
        if corpus is None:
            raise ApiError(
                404,
                "unknown_corpus",
                f"corpus {name!r} is not served here: use one of {_listing(self.corpora)} (GET /api/corpora)",
                "corpus",
            )
        return corpus

    def aliases_of(self, name: str) -> list[str]:
        """The aliases of served model ``name`` that are fit to show: not a path of this machine."""
        return sorted(alias for alias in self.listed_aliases() if self.aliases[alias] == name)

    def listed_aliases(self) -> list[str]:
        """Every alias except local paths (accepted in requests, never shown: see `readable_model_name`)."""
        return sorted(alias for alias in self.aliases if readable_model_name(alias) == alias)


def _listing(names: Mapping[str, object]) -> str:
    return ", ".join(repr(n) for n in names) if names else "(none configured)"
