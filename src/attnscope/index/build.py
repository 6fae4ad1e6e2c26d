"""Building an index in this process: plan, every shard, commit (plan.py, shard.py, commit.py).

Everything is written into ``<out>.partial`` beside the target. Each finished shard leaves its marker, so
a build that is killed resumes where it stopped when it is run again with the same model, corpus and
options (otherwise the stale partial build is removed and the build restarts). The commit writes the
manifest last, then the directory is renamed to ``<out>``: a killed build never leaves anything that
loads as an index. A build killed after its commit, before the rename, is finished by the next run
(its manifest verified, what the commit had left removed, the directory renamed), not built again.
Other engines (Ray, a scheduler running ``attnscope index plan/shard/commit``) run
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
from ..corpus.source import CorpusSource
from ..errors import InputError
from ..files import writing
from .commit import commit
from .layout import MANIFEST
from .manifest import IndexFormatError, Manifest, read_manifest
from .merge import check_merge
from .options import APPROXIMATE, BuildOptions, chosen_layers
from .plan import PieceReader, Plan, StaleBuildError, build_identity, identity_key, make_plan
from .ray_engine import RayOptions
from .reuse import Reused
from .shard import build_shard, shard_marker
from .sources import corpus_record, pieces_and_reader
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


ENGINES = ("in-process", "ray")


def build_index(
    corpus: Corpus | CorpusSource,
    handle: ModelHandle,
    out: Path | str,
    *,
    options: BuildOptions = BuildOptions(),
    overwrite: bool = False,
    progress: Progress | None = None,
    engine: str = "in-process",
    ray: RayOptions | None = None,
    merge: str = "auto",
    fan_out: bool = False,
) -> BuildReport:
    """Index every non-special token of ``corpus`` under ``handle``'s model into ``out``: a local directory,
    or any fsspec location (``memory://x``, ``s3://bucket/x``...).

    ``corpus`` is a `Corpus` already read (batched from memory) or a `CorpusSource` (read one slice at a
    time: memory bounded by the shard). ``engine`` "in-process" builds the shards here, one after
    another; "ray" on a Ray cluster (``ray``: `RayOptions`), reading the corpus's files there. A local
    build is made in ``<out>.partial`` and renamed into place once committed; elsewhere it is made in
    place, and exists once its manifest does. ``merge`` says how the commit joins approximate sets
    (memory, disk or auto: `merge.on_disk`); ``fan_out`` keeps each shard's vector sets apart instead
    (`commit.commit`: searched shard by shard, as search workers need).

    Raises `InputError` for bad options or an unusable ``out`` (see `check_build_target`), and `WriteError`
    naming the file when the file system refuses a write (a full disk, no permission...)."""
    options.check()
    check_merge(merge)
    if engine not in ENGINES:
        raise InputError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
    if engine == "ray" and isinstance(corpus, Corpus):
        corpus = corpus.source()  # Ray's workers read the corpus's files, not this process's memory
    started = time.perf_counter()
    target = Store.at(out)
    if not target.is_local:
        manifest, resumed = _build(
            _remote_target(target, overwrite), corpus, handle, options, progress, engine, ray, merge, fan_out
        )
        return BuildReport(manifest, Path(target.root), resumed, time.perf_counter() - started)
    local = check_build_target(target.root, overwrite)
    partial = local.with_name(local.name + ".partial")
    with writing(partial):
        finished = _committed(partial, corpus, handle, options)
        if finished is not None:  # killed after its commit, before the rename: only the rename is left
            manifest, resumed = finished
        else:
            try:
                manifest, resumed = _build(
                    _partial_store(partial), corpus, handle, options, progress, engine, ray, merge, fan_out
                )
            except StaleBuildError:
                shutil.rmtree(partial)  # a stale build of other inputs: start afresh
                manifest, resumed = _build(
                    _partial_store(partial), corpus, handle, options, progress, engine, ray, merge, fan_out
                )
        _move_into_place(partial, local)
    return BuildReport(manifest, local, resumed, time.perf_counter() - started)


def _build(
    store: Store,
    corpus: Corpus | CorpusSource,
    handle: ModelHandle,
    options: BuildOptions,
    progress: Progress | None,
    engine: str,
    ray: RayOptions | None,
    merge: str = "auto",
    fan_out: bool = False,
) -> tuple[Manifest, int]:
    """Plan (or find the plan), build the unfinished shards with ``engine``, commit; (manifest, shards resumed)."""
    pieces, read = pieces_and_reader(corpus, options.piece_tokens)
    reused = Reused() if engine == "in-process" else None  # the calibration's work, for this process's shards
    plan = make_plan(store, handle, corpus_record(corpus), pieces, read, options, reused)
    if store.exists(BUILD):  # an in-process build's folder: remember which build it holds
        store.write(BUILD, json.dumps({"engine": "in-process", "key": plan.key}).encode())
    if engine == "ray":
        from .ray_engine import run_on_ray

        resumed = sum(shard_marker(store, plan, spec) is not None for spec in plan.shards)
        run_on_ray(store, plan, read, options=ray or RayOptions())
    else:
        resumed = run_in_process(store, plan, handle, read, progress, reused)
    manifest = commit(store, plan, merge=merge, fan_out=fan_out)
    if progress:
        progress(manifest.tokens, manifest.tokens)
    return manifest, resumed


def _committed(
    partial: Path, corpus: Corpus | CorpusSource, handle: ModelHandle, options: BuildOptions
) -> tuple[Manifest, int] | None:
    """The manifest of the build in ``partial`` and its shard count when that build was committed (its
    manifest written) but not renamed into place, and is this build (the key ``build.json`` recorded
    equals this model's, corpus's and options' `plan.build_identity`) with every file its manifest lists
    whole; files the commit had not yet removed are removed. None when there is no such build: a partial
    build of other inputs or a damaged one is removed, to be built afresh."""
    if not (partial / MANIFEST).is_file():
        return None
    pieces, _ = pieces_and_reader(corpus, options.piece_tokens)
    identity = build_identity(handle, corpus_record(corpus), pieces, options)
    try:
        recorded = json.loads((partial / BUILD).read_text(encoding="utf-8")).get("key")
        manifest = read_manifest(partial)
    except (OSError, ValueError, IndexFormatError):
        recorded = None
    if recorded != identity_key(identity):
        shutil.rmtree(partial)
        return None
    keep = {MANIFEST, BUILD, *manifest.files}
    for path in sorted(partial.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        name = path.relative_to(partial).as_posix()
        if path.is_dir():
            if not any(path.iterdir()):
                path.rmdir()
        elif name not in keep:
            path.unlink()
    return manifest, len(identity["shards"])


def _remote_target(store: Store, overwrite: bool) -> Store:
    """A build in place on a remote store: refused over an index unless ``overwrite`` (which removes it)."""
    if store.exists(MANIFEST):
        if not overwrite:
            raise InputError(f"an index already exists at {store.url}: pass overwrite=True (--overwrite) to replace it")
        store.remove("")
    return store


def run_in_process(
    store: Store,
    plan: Plan,
    handle: ModelHandle,
    read: PieceReader,
    progress: Progress | None = None,
    reused: Reused | None = None,
) -> int:
    """Build every unfinished shard of ``plan`` here, one after another; returns how many were already done.
    ``reused``: the work this process's planning kept for the shards (`reuse.Reused`)."""
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
        report = build_shard(store, plan, spec.number, handle, read, advance, reused)
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


def plan_index(
    corpus: Corpus | CorpusSource,
    handle: ModelHandle,
    out: Path | str,
    *,
    options: BuildOptions = BuildOptions(),
    overwrite: bool = False,
) -> Plan:
    """Only plan a build of ``corpus`` into ``out`` (a path or fsspec URL), for a scheduler to run its shards
    (`shard.build_shard`, ``attnscope index-shard``) and commit it (`commit.commit`, ``attnscope index-commit``).
    The build is made in place: ``out`` is an index once committed. A plan already there for the same
    build is kept (resuming). Raises `InputError` for bad options, an index at ``out`` (unless
    ``overwrite``), another build's plan there, or a corpus in memory (its shards could be built by no
    other process)."""
    options.check()
    if isinstance(corpus, Corpus):
        corpus = corpus.source()
    store = Store.at(out)
    if store.is_local and Path(store.root).exists() and not Path(store.root).is_dir():
        raise InputError(f"cannot plan a build at {store.root}: it is a file; name a directory to create")
    pieces, read = pieces_and_reader(corpus, options.piece_tokens)
    return make_plan(_remote_target(store, overwrite), handle, corpus_record(corpus), pieces, read, options)
