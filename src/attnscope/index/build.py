"""Building an index in this process: plan, every shard, commit (plan.py, shard.py, commit.py).

Everything is written into ``<out>.partial`` beside the target. Each finished shard leaves its marker, so
a build that is killed resumes where it stopped when it is run again with the same model, corpus and
options (otherwise the stale partial build is removed and the build restarts). The commit writes the
manifest last, then the directory is renamed to ``<out>``: a killed build never leaves anything that
loads as an index. Other engines (Ray, a scheduler running ``attnscope index plan/shard/commit``) run
the same steps on a shared store.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..capture.loading import ModelHandle
from ..corpus import Corpus
from ..errors import InputError
from ..files import writing
from .commit import commit, corpus_record
from .manifest import IndexFormatError, Manifest, read_manifest
from .options import APPROXIMATE, BuildOptions, chosen_layers
from .plan import Plan, make_plan, sentence_pieces
from .shard import build_shard
from .storage import Store

BUILD = "build.json"
"""The marker of a build in progress in ``<out>.partial`` (an in-process build's own file)."""

__all__ = ["APPROXIMATE", "BuildOptions", "BuildReport", "build_index", "check_build_target", "chosen_layers"]


@dataclass
class BuildReport:
    """What a build did: the manifest written, shards resumed from a previous run, seconds taken."""

    manifest: Manifest
    directory: Path
    resumed_shards: int
    seconds: float


Progress = Callable[[int, int], None]
"""``progress(tokens_done, tokens_total)``, called after every batch; the total is estimated (from the
corpus's words) until the build ends, when ``tokens_done == tokens_total``."""


def build_index(
    corpus: Corpus,
    handle: ModelHandle,
    out: Path | str,
    *,
    options: BuildOptions = BuildOptions(),
    overwrite: bool = False,
    progress: Progress | None = None,
) -> BuildReport:
    """Index every non-special token of ``corpus`` under ``handle``'s model into the directory ``out``.

    Raises `InputError` for bad options or an unusable ``out`` (see `check_build_target`), and `WriteError`
    naming the file when the file system refuses a write (a full disk, no permission...)."""
    options.check()
    out = check_build_target(out, overwrite)
    partial = out.with_name(out.name + ".partial")
    with writing(partial):
        return _build_index(corpus, handle, out, partial, options, progress)


def _build_index(
    corpus: Corpus, handle: ModelHandle, out: Path, partial: Path, options: BuildOptions, progress: Progress | None
) -> BuildReport:
    started = time.perf_counter()
    pieces = sentence_pieces(corpus.sentences, options.piece_tokens)

    def read(piece):
        return corpus.sentences[piece.start : piece.end]

    record = corpus_record(
        corpus.name, corpus.checksum, [str(f) for f in corpus.files], corpus.annotator, dict(corpus.silver)
    )
    store = _partial_store(partial)
    try:
        plan = make_plan(store, handle, record, pieces, read, options)
    except InputError as error:
        if "plan of another build" not in str(error):
            raise
        shutil.rmtree(partial)  # a stale build of other inputs: start afresh
        store = _partial_store(partial)
        plan = make_plan(store, handle, record, pieces, read, options)
    resumed = run_in_process(store, plan, handle, read, progress)
    manifest = commit(store, plan, record)
    if progress:
        progress(manifest.tokens, manifest.tokens)
    _move_into_place(partial, out)
    return BuildReport(manifest, out, resumed, time.perf_counter() - started)


def run_in_process(store: Store, plan: Plan, handle: ModelHandle, read, progress: Progress | None = None) -> int:
    """Build every unfinished shard of ``plan`` here, one after another; returns how many were already done."""
    total = max(1, plan.estimated_tokens)
    done = [0]

    def advance(tokens: int) -> None:
        done[0] += tokens
        if progress:
            progress(min(done[0], total), max(total, done[0]))

    if progress:
        progress(0, total)
    resumed = 0
    for spec in plan.shards:
        report = build_shard(store, plan, spec.number, handle, read, advance)
        if report.resumed:
            resumed += 1
            advance(report.rows)
    return resumed


def _partial_store(partial: Path) -> Store:
    """The store of an in-process build in ``partial``, created with its marker when new."""
    partial.mkdir(exist_ok=True)
    marker = partial / BUILD
    if not marker.is_file():
        marker.write_text(json.dumps({"engine": "in-process"}))
    return Store.at(partial)


def _move_into_place(partial: Path, out: Path) -> None:
    """Rename the committed build to ``out`` (replacing an old index only once the new one is whole); the
    build marker goes last, so a crash before the rename leaves a build that reruns."""
    if out.exists():
        old = out.with_name(out.name + ".old")
        os.replace(out, old)
        os.replace(partial, out)
        shutil.rmtree(old)
    else:
        os.replace(partial, out)
    (out / BUILD).unlink()


def check_build_target(out: Path | str, overwrite: bool = False) -> Path:
    """``out`` as a `Path` if an index can be built there (checked before any work); else `InputError`:
    a file, a missing parent directory, a directory that is not an index, an index without ``overwrite``,
    or a ``<out>.partial`` that is not a build in progress."""
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    if partial.exists() and not (partial / BUILD).is_file():
        raise InputError(f"{partial} exists but is not an attnscope build in progress: move it away first")
    if not out.exists():
        if not out.parent.is_dir():
            raise InputError(f"cannot build an index at {out}: its parent directory {out.parent} does not exist")
        return out
    if not out.is_dir():
        raise InputError(f"cannot build an index at {out}: it is a file; name a directory to create for the index")
    try:
        read_manifest(out)
    except IndexFormatError:
        raise InputError(f"{out} exists and is not an attnscope index: choose another --out directory") from None
    if not overwrite:
        raise InputError(f"an index already exists at {out}: pass overwrite=True (--overwrite) to replace it")
    return out
