"""Corpus indexes built on first use, in a background thread, for served models that have none yet.

`attnscope serve` builds the default corpus's index for its first model before it listens; every other
served model that can be indexed gets the same corpus offered (`CorpusBuilds.offer`), built only when a
client first asks for it (``GET /api/corpus-build?model=...``, which the app calls when the model has no
corpus), so the server starts at once. The build runs `build_index` in small batches (a request on the
same model waits for one batch at most) and stores only the offered layers (`BuildOptions.layers`), as
``attnscope index --layers`` does. When it is done the index is opened and served like any configured
corpus (``GET /api/corpora`` lists it, ``POST /api/search`` searches it). A failed build is reported
once; the next request starts it again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..capture.loading import ModelHandle
from ..errors import AttnscopeError
from ..files import writing
from ..index import BuildOptions, Index, build_index

if TYPE_CHECKING:
    from ..corpus import Corpus as CorpusSource

BATCH_TOKENS = 1024
"""Tokens per forward pass of a build while serving (smaller than the CLI's, so requests wait less)."""
BuildStage = Literal["none", "waiting", "reading", "indexing", "ready", "failed"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Offer:
    """A corpus index a served model gets on first use: served as ``name``, built into ``directory`` from
    the corpus ``source()`` opens (read and annotated when the build starts), storing ``layers``."""

    name: str
    handle: ModelHandle
    directory: Path
    layers: tuple[int, ...] | None
    source: Callable[[], CorpusSource]


@dataclass(frozen=True)
class BuildJob:
    """Where a model's offered corpus stands. ``stage``: "waiting" (offered, not started), "reading" (the
    corpus is being read and annotated), "indexing" (``done`` of ``total`` tokens), "ready" (served as
    ``corpus``), "failed" (``error`` says why)."""

    corpus: str
    layers: list[int] | None
    stage: BuildStage = "waiting"
    done: int = 0
    total: int = 0
    error: str | None = None


Serve = Callable[[str, Index, ModelHandle], None]
"""Serves a built index: its corpus name, the index and its model (`AppState.serve_built_corpus`)."""


class CorpusBuilds:
    """The corpora offered to served models (by the model's handle), each built once on first request."""

    def __init__(self, batch_tokens: int = BATCH_TOKENS) -> None:
        self.batch_tokens = batch_tokens
        self._offers: dict[int, Offer] = {}
        self._jobs: dict[int, BuildJob] = {}
        self._threads: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()

    def offer(self, offer: Offer) -> None:
        """Offer ``offer`` to its model: built when `status` is first asked for that model."""
        with self._lock:
            self._offers[id(offer.handle.model)] = offer
            self._jobs[id(offer.handle.model)] = BuildJob(offer.name, _listed(offer.layers))

    def status(self, handle: ModelHandle, serve: Serve) -> BuildJob | None:
        """Where ``handle``'s offered corpus stands, starting its build if it has not started (None: none is
        offered); once built, ``serve(name, index, handle)`` serves it (`AppState.serve_built_corpus`). A failure
        is reported once: the next call starts the build again."""
        key = id(handle.model)
        with self._lock:
            offer, job = self._offers.get(key), self._jobs.get(key)
            if offer is None or job is None:
                return None
            if job.stage == "waiting":
                self._jobs[key] = replace(job, stage="reading")
                name = f"index-{offer.name}"
                thread = threading.Thread(target=self._run, args=(serve, offer), name=name, daemon=True)
                self._threads[key] = thread
                thread.start()
                return self._jobs[key]
            if job.stage == "failed":
                self._jobs[key] = replace(job, stage="waiting", error=None, done=0, total=0)
            return job

    def wait(self, handle: ModelHandle, timeout: float | None = None) -> None:
        """Wait for ``handle``'s build to end (tests, and servers shutting down)."""
        thread = self._threads.get(id(handle.model))
        if thread is not None:
            thread.join(timeout)

    def _set(self, offer: Offer, **changes: object) -> None:
        with self._lock:
            key = id(offer.handle.model)
            self._jobs[key] = replace(self._jobs[key], **changes)  # type: ignore[arg-type]

    def _run(self, serve: Serve, offer: Offer) -> None:
        try:
            source = offer.source()
            self._set(offer, stage="indexing")
            with writing(offer.directory.parent):
                offer.directory.parent.mkdir(parents=True, exist_ok=True)
            build_index(
                source,
                offer.handle,
                offer.directory,
                options=BuildOptions(batch_tokens=self.batch_tokens, layers=offer.layers),
                overwrite=offer.directory.exists(),
                progress=lambda done, total: self._set(offer, done=done, total=total),
            )
            serve(offer.name, Index.open(offer.directory), offer.handle)
        except AttnscopeError as error:
            self._set(offer, stage="failed", error=f"the index of corpus {offer.name!r} could not be built: {error}")
        except Exception as error:  # a bug or a full disk: say so in the app, keep the traceback in the log
            log.exception("building the index of corpus %r failed", offer.name)
            self._set(
                offer,
                stage="failed",
                error=f"the index of corpus {offer.name!r} could not be built ({type(error).__name__}: {error}); "
                "see the server's log",
            )
        else:
            self._set(offer, stage="ready")


def _listed(layers: tuple[int, ...] | None) -> list[int] | None:
    return None if layers is None else sorted(layers)
