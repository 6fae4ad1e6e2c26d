"""The served corpora's head atlases, each computed once in a background thread and cached beside its index.

The first ``GET /api/atlas`` for a corpus reads the atlas cached in the index directory, or starts
computing it (`atlas.atlas_for_index`) and answers at once with the progress so far; the page asks
again until it is ready. The model runs in small batches, so requests on the same model wait for at
most one batch. There is one job per configured corpus; a failed job is reported once and the next
request starts it again.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace

from ..atlas import Atlas, atlas_for_index, cached_atlas
from ..errors import AttnscopeError
from .corpora import Corpus

BATCH_TOKENS = 1024
"""Tokens per forward pass while serving (smaller than the CLI's, so a request on the same model waits less)."""
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AtlasJob:
    """Where one corpus's atlas stands: computing (``done`` of ``total`` tokens, as `model_tokens` counts
    them), ready, or failed."""

    corpus: str
    done: int = 0
    total: int = 0
    atlas: Atlas | None = None
    error: str | None = None

    @property
    def status(self) -> str:
        return "ready" if self.atlas is not None else "failed" if self.error is not None else "computing"


def model_tokens(corpus: Corpus) -> int:
    """Tokens the model runs over to score the corpus: its sentences' tokens, special tokens included."""
    return int(sum(int(n) for n in corpus.index.tables.sentences["model_tokens"]))


class AtlasJobs:
    """One atlas job per corpus, started on the first request for it (thread-safe)."""

    def __init__(self, batch_tokens: int = BATCH_TOKENS) -> None:
        self.batch_tokens = batch_tokens
        self._jobs: dict[str, AtlasJob] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def status(self, corpus: Corpus) -> AtlasJob:
        """The corpus's atlas if it is ready; otherwise where its computation stands (starting it if needed)."""
        with self._lock:
            job = self._jobs.get(corpus.name)
            if job is None:
                cached = cached_atlas(corpus.index)
                job = AtlasJob(corpus.name, atlas=cached)
                if cached is not None:
                    tokens = model_tokens(corpus)
                    job = replace(job, done=tokens, total=tokens)
                self._jobs[corpus.name] = job
                if cached is None:
                    thread = threading.Thread(
                        target=self._run, args=(corpus,), name=f"atlas-{corpus.name}", daemon=True
                    )
                    self._threads[corpus.name] = thread
                    thread.start()
            elif job.error is not None:
                del self._jobs[corpus.name]  # reported once; the next request starts over
            return job

    def wait(self, corpus: str, timeout: float | None = None) -> None:
        """Wait for ``corpus``'s computation to end (tests, and servers shutting down)."""
        thread = self._threads.get(corpus)
        if thread is not None:
            thread.join(timeout)

    def _set(self, name: str, **changes: object) -> None:
        with self._lock:
            job = self._jobs.get(name)
            if job is not None:
                self._jobs[name] = replace(job, **changes)  # type: ignore[arg-type]

    def _run(self, corpus: Corpus) -> None:
        try:
            atlas = atlas_for_index(
                corpus.index,
                corpus.model,
                batch_tokens=self.batch_tokens,
                progress=lambda done, total: self._set(corpus.name, done=done, total=total),
            )
        except AttnscopeError as error:
            self._set(corpus.name, error=f"the head atlas of corpus {corpus.name!r} could not be computed: {error}")
        except Exception as error:  # a bug or a full disk: say so on the page, keep the traceback in the log
            log.exception("computing the head atlas of corpus %r failed", corpus.name)
            self._set(
                corpus.name,
                error=f"the head atlas of corpus {corpus.name!r} could not be computed "
                f"({type(error).__name__}: {error}); see the server's log",
            )
        else:
            tokens = model_tokens(corpus)
            self._set(corpus.name, atlas=atlas, done=tokens, total=tokens)
