"""Searching an index with several workers: each group of shards held and searched by its own Ray actor,
the top-k merged on the driver; the same results as searching every shard in one process.

``Index.open(dir, search_workers=SearchWorkers(workers=N))`` splits the index's vector sets into ``N``
groups (`plan_groups`): an index committed with ``--fan-out`` by whole shards (consecutive shards per
group), an exact index of merged files by row ranges (each worker reads the set's codes file and keeps
its rows). An approximate (IVF or PQ) index of merged files is refused: one faiss file cannot be cut
without loading it whole in every worker; commit it with ``--fan-out`` instead.

Each worker (`_GroupWorker`) opens the index where the driver names it (a shared folder, or an fsspec
URL, of which it fetches only its own shards' files: `remote.RemoteFiles`), checks that its manifest is the
driver's, and loads each (kind, layer) set of its group once, on first use (least recently used
dropped past ``cache_bytes``). A search sends the query and, with a filter, the group's slice of the
allowed mask packed to bits (1 bit a row: 1e8 rows are 12.5 MB in all, each worker getting its share).
The driver computes the mask, not the workers, because it already holds the token table and because a
word or one-per-sentence search (`grouping`) derives masks that are no filter; a group with nothing
allowed is not asked, and one with everything allowed gets no mask. Each worker returns its group's
top-k (`shard_sets.ShardedSet`: ties by row), and the driver merges them (`shard_sets.merged_top`):
the top-k of the union of the groups' top-k is the top-k of all rows, so the results equal the merged
index's and the in-process fan-out's, scores and rows, for exact, IVF and PQ sets.

A worker that dies is restarted by Ray and its call retried (``retries`` times); past that, or when no
answer comes within ``timeout_s``, the search raises `SearchWorkerError` naming the worker and its
shards, never hangs. `WorkerPool.close` kills the actors and stops the local cluster it started (none
when it joined one: ``address``, or Ray already running in the process, as under ``attnscope serve``).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import OrderedDict
from contextlib import AbstractContextManager, ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AttnscopeError, InputError, count
from .layout import MANIFEST, RANGES
from .manifest import Manifest, read_manifest
from .set_loading import open_part, open_set, parts_of, read_ranges
from .shard_sets import merged_top


class SearchWorkerError(AttnscopeError):
    """A search worker died past its retries, or did not answer in time."""


@dataclass(frozen=True)
class SearchWorkers:
    """How an index is searched by Ray actors: ``workers`` of them (at most one per shard), each holding
    ``cpus_per_worker`` CPUs and searching with ``threads_per_worker`` faiss threads (default: its CPUs);
    on the cluster at ``address`` ('auto', ``ray://host:10001``) or, without one, on a local cluster
    started for the index (``local_cpus``, ``local_temp_dir``) unless Ray already runs in this process.
    A dead worker is restarted and its call retried ``retries`` times; a call waits at most ``timeout_s``
    seconds for its answer, the workers' start ``start_timeout_s``."""

    workers: int = 2
    address: str | None = None
    cpus_per_worker: float = 1.0
    threads_per_worker: int | None = None
    retries: int = 1
    timeout_s: float = 300.0
    start_timeout_s: float = 300.0
    local_cpus: int | None = None
    local_temp_dir: str | None = None

    def check(self) -> None:
        """Raise `InputError` naming the first option out of its range."""
        if not isinstance(self.workers, int) or isinstance(self.workers, bool) or self.workers < 1:
            raise InputError(
                f"search workers (--search-workers) must be a whole number, 1 or more, got {self.workers!r}"
            )
        if not self.cpus_per_worker > 0:
            raise InputError(f"CPUs per search worker must be above 0, got {self.cpus_per_worker}")
        if self.threads_per_worker is not None and self.threads_per_worker < 1:
            raise InputError(f"threads per search worker must be at least 1, got {self.threads_per_worker}")
        if self.retries < 0:
            raise InputError(f"search worker retries must be at least 0, got {self.retries}")
        if not (self.timeout_s > 0 and self.start_timeout_s > 0):
            raise InputError(
                f"search worker timeouts must be above 0 seconds, got {self.timeout_s} and {self.start_timeout_s}"
            )


def search_workers_option(
    workers: int | None, address: str | None, option: str = "--search-workers"
) -> SearchWorkers | None:
    """The `SearchWorkers` a command line asks for (``--search-workers N``, ``--address``), None for none;
    `InputError` for an ``--address`` without workers or a bad count."""
    if workers is None:
        if address is not None:
            raise InputError(f"--address names the Ray cluster of the search workers: give {option} N too")
        return None
    chosen = SearchWorkers(workers=workers, address=address)
    chosen.check()
    return chosen


@dataclass(frozen=True)
class Group:
    """One worker's share of the index: global rows ``first`` .. ``first + rows - 1``, held as the fan-out
    shards ``parts`` (manifest entries), or, with no parts, as that row range of the index's merged exact sets."""

    number: int
    first: int
    rows: int
    parts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.first + self.rows

    def describe(self) -> str:
        if not self.parts:
            return f"rows {self.first}-{self.end - 1}"
        shards = [p["folder"].rsplit("/", 1)[-1] for p in self.parts]
        return f"shard {shards[0]}" if len(shards) == 1 else f"shards {shards[0]}-{shards[-1]}"


def plan_groups(manifest: Manifest, workers: int, directory: Path | str = "the index") -> list[Group]:
    """The groups ``workers`` search workers hold: consecutive fan-out shards (at most one worker per shard),
    or row ranges of merged exact sets. Raises `InputError` for merged approximate sets."""
    if manifest.vector_shards is not None:
        shards = parts_of(manifest)
        cuts = np.linspace(0, len(shards), min(workers, len(shards)) + 1).round().astype(int)
        chosen = [shards[a:b] for a, b in zip(cuts, cuts[1:])]
        return [Group(n, part[0]["first"], sum(p["rows"] for p in part), list(part)) for n, part in enumerate(chosen)]
    if manifest.approximate_lists or manifest.codes != "sq":
        kind = "IVF" if manifest.codes == "sq" else f"{manifest.codes} (IVF)"
        raise InputError(
            f"{directory} keeps each vector set as one merged {kind} file, which search workers cannot split "
            "without each loading it whole: build it with --fan-out (`attnscope index CORPUS --out DIR --fan-out`, "
            "or `attnscope index-commit DIR --fan-out` after its shards) to search it with workers, or search it "
            "in this process (leave out --search-workers)"
        )
    cuts = np.linspace(0, manifest.tokens, min(workers, manifest.tokens) + 1).round().astype(int)
    return [Group(n, int(a), int(b - a)) for n, (a, b) in enumerate(zip(cuts, cuts[1:]))]


def manifest_digest(directory: Path) -> str:
    """What a worker checks it opened the driver's index with: the sha256 of its manifest's bytes."""
    return hashlib.sha256((directory / MANIFEST).read_bytes()).hexdigest()


class _GroupWorker:
    """The actor: one group's vector sets, loaded once each, searched on request. An error opening the index
    is kept and raised by `ready`, so that the driver sees it as it was."""

    def __init__(self, location: str, digest: str, group: Group, cache_bytes: int, threads: int):
        from .remote import RemoteFiles
        from .storage import Store
        from .vectors import _faiss

        _faiss().omp_set_num_threads(threads)
        self.group, self.cache_bytes, self.error = group, cache_bytes, None
        self.sets: OrderedDict[tuple[str, int], Any] = OrderedDict()
        try:
            self.remote = None if Store.at(location).is_local else RemoteFiles.open(location, eager=(RANGES,))
            self.folder = Path(Store.at(location).root) if self.remote is None else self.remote.folder
            self.locate = None if self.remote is None else self.remote.local
            if manifest_digest(self.folder) != digest:
                raise InputError(
                    f"search worker {group.number} found another index at {location} than the driver opened "
                    "(its manifest differs): every worker must read the same index"
                )
            self.manifest = read_manifest(self.folder)
            self.ranges = read_ranges(self.folder)
        except Exception as error:  # raised by ready(), as it was
            self.error = error

    def ready(self) -> int:
        """This worker's process id, once its index is open; the error opening it otherwise."""
        if self.error is not None:
            raise self.error
        return os.getpid()

    def _set(self, kind: str, layer: int) -> Any:
        key = (kind, layer)
        if key in self.sets:
            self.sets.move_to_end(key)
            return self.sets[key]
        group, manifest = self.group, self.manifest
        if group.parts:  # the files of its own shards only, fetched from a remote store when first searched
            made = open_set(self.folder, manifest, self.ranges, kind, layer, group.parts, group.first, self.locate)
        else:
            whole = parts_of(manifest)[0]
            made = open_part(
                self.folder, manifest, self.ranges, kind, layer, whole, (group.first, group.end), self.locate
            )
        self.sets[key] = made
        while len(self.sets) > 1 and sum(s.nbytes for s in self.sets.values()) > self.cache_bytes:
            self.sets.popitem(last=False)
        return made

    def describe(self, kind: str, layer: int) -> tuple[int, int, bool, int]:
        """(rows, width, approximate, bytes of codes) of the group's set."""
        found = self._set(kind, layer)
        return int(found.count), int(found.dim), bool(found.approximate), int(found.nbytes)

    def search(
        self, kind: str, layer: int, queries: np.ndarray, k: int, packed: np.ndarray | None, probes: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The group's top ``k`` (scores, rows within the group); ``packed``: the group's allowed rows as bits."""
        allowed = None
        if packed is not None:
            allowed = np.unpackbits(packed, count=self.group.rows, bitorder="little").astype(bool)
        return self._set(kind, layer).search(queries, k, allowed, probes)

    def decoded(self, kind: str, layer: int, rows: np.ndarray) -> np.ndarray:
        return self._set(kind, layer).decoded(rows)


class WorkerPool:
    """The running workers of one index: one actor per `Group`; ``pids`` their process ids."""

    def __init__(
        self,
        ray: Any,
        actors: list[Any],
        groups: list[Group],
        pids: list[int],
        stack: ExitStack,
        options: SearchWorkers,
    ):
        self._ray, self.actors, self.groups, self.pids = ray, actors, groups, pids
        self._stack, self.options, self.closed = stack, options, False

    @classmethod
    def start(
        cls, location: str, directory: Path, manifest: Manifest, options: SearchWorkers, cache_bytes: int
    ) -> WorkerPool:
        """Start the workers of the index at ``location`` (opened locally at ``directory``), on the cluster
        ``options`` name. Raises `InputError` for bad options, an index whose sets cannot be split, a cluster
        with too few CPUs, or an error a worker met opening its shards (as it was); `SearchWorkerError` when
        they do not start in time."""
        options.check()
        groups = plan_groups(manifest, options.workers, location)
        digest = manifest_digest(directory)
        if "://" not in location:
            location = str(Path(location).absolute())
        stack = ExitStack()
        ray = stack.enter_context(ray_cluster(options))
        actors: list[Any] = []
        try:
            _check_cpus(ray, len(groups), options.cpus_per_worker)
            actor = ray.remote(
                num_cpus=options.cpus_per_worker, max_restarts=options.retries, max_task_retries=options.retries
            )(_GroupWorker)
            threads = options.threads_per_worker or max(1, int(options.cpus_per_worker))
            actors = [actor.remote(location, digest, g, cache_bytes, threads) for g in groups]
            pool = cls(ray, actors, groups, [], stack, options)
            pool.pids = pool._get([a.ready.remote() for a in actors], groups, options.start_timeout_s, "start")
            return pool
        except BaseException:
            for one in actors:
                ray.kill(one, no_restart=True)
            stack.close()
            raise

    def vector_set(self, kind: str, layer: int) -> WorkerSet:
        """The set of ``kind`` at ``layer`` as the workers hold it (each loads its part now, if not yet)."""
        described = self.call([a.describe.remote(kind, layer) for a in self.actors], self.groups)
        return WorkerSet(self, kind, layer, described)

    def _get(self, refs: list[Any], groups: list[Group], timeout: float, doing: str = "answer") -> list[Any]:
        """The answers of the workers of ``groups`` to ``refs``, in order; `SearchWorkerError` for a worker that
        died past its retries or is late, the worker's own error (an `AttnscopeError`) as it was."""
        ray = self._ray
        deadline = time.monotonic() + timeout
        answers = []
        for group, ref in zip(groups, refs, strict=True):
            where = f"search worker {group.number} ({group.describe()})"
            try:
                answers.append(ray.get(ref, timeout=max(0.0, deadline - time.monotonic())))
            except ray.exceptions.GetTimeoutError:
                for late in refs:
                    with suppress(Exception):  # best effort: the error below is what matters
                        ray.cancel(late)
                raise SearchWorkerError(
                    f"{where} did not {doing} within {timeout:g} s: the cluster may lack free CPUs "
                    f"({self.options.cpus_per_worker:g} per worker) or the worker is stuck"
                ) from None
            except ray.exceptions.RayActorError as error:
                raise SearchWorkerError(
                    f"{where} died and was not brought back ({self.options.retries} retries): "
                    f"{str(error).splitlines()[0]}"
                ) from None
            except ray.exceptions.RayTaskError as error:
                cause = getattr(error, "cause", None)  # the worker's own exception, without Ray's traceback text
                if isinstance(cause, AttnscopeError):
                    raise cause from None
                raise SearchWorkerError(f"{where} failed: {str(error).strip().splitlines()[-1]}") from None
        return answers

    def call(self, refs: list[Any], groups: list[Group]) -> list[Any]:
        """`_get` with the search timeout, refused once the pool is closed."""
        if self.closed:
            raise InputError("this index's search workers were stopped (the index was closed): open it again")
        return self._get(refs, groups, self.options.timeout_s)

    def close(self) -> None:
        """Kill the workers and stop the local cluster started for them (if one was); idempotent."""
        if self.closed:
            return
        self.closed = True
        for actor in self.actors:
            self._ray.kill(actor, no_restart=True)
        self._stack.close()


def ray_cluster(options: SearchWorkers) -> AbstractContextManager[Any]:
    """Ray, connected to the cluster ``options`` name (``address``) or to a local cluster started here and stopped
    on exit; when Ray already runs in this process, that (left running). `InputError` when Ray is missing.
    A server holds this around all its indexes' workers, so that no index's pool owns the cluster."""
    from .ray_engine import RayOptions, cluster

    chosen = RayOptions(address=options.address, local_cpus=options.local_cpus, local_temp_dir=options.local_temp_dir)
    return cluster(chosen)


def _check_cpus(ray: Any, workers: int, cpus: float) -> None:
    have = float(ray.cluster_resources().get("CPU", 0))
    if workers * cpus > have:
        raise InputError(
            f"{count(workers, 'search worker')} of {cpus:g} CPU each need {workers * cpus:g} CPUs; the Ray "
            f"cluster has {have:g}: ask for fewer workers (--search-workers) or join a larger cluster (--address)"
        )


class WorkerSet:
    """One (kind, layer) vector set searched by the workers, with the interface `Index` uses of
    `vectors.VectorSet` (``count``, ``dim``, ``nbytes``, ``approximate``, ``search``, ``decoded``). Its codes
    live in the workers; ``nbytes`` counts them there."""

    def __init__(self, pool: WorkerPool, kind: str, layer: int, described: list[tuple[int, int, bool, int]]):
        self.pool, self.kind, self.layer = pool, kind, layer
        self.count = sum(d[0] for d in described)
        self.dim, self.approximate = described[0][1], described[0][2]
        self.nbytes = sum(d[3] for d in described)

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None, probes: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """As `vectors.VectorSet.search`: top-``k`` per query row, (scores, global rows) best first, equal
        scores in row order, rows -1 where fewer than ``k`` rows are allowed; ``allowed``: (count,) bool or None."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if allowed is not None and len(allowed) != self.count:
            raise InputError(f"allowed has {len(allowed)} rows; this set has {self.count}")
        k = max(1, min(k, self.count))
        asked, refs = [], []
        for group, actor in zip(self.pool.groups, self.pool.actors):
            packed = None
            if allowed is not None:
                mine = allowed[group.first : group.end]
                if not mine.any():
                    continue
                packed = None if mine.all() else np.packbits(mine, bitorder="little")
            asked.append(group)
            refs.append(actor.search.remote(self.kind, self.layer, queries, k, packed, probes))
        answers = self.pool.call(refs, asked) if refs else []
        found_scores = [scores for scores, _ in answers]
        found_rows = [np.where(rows >= 0, rows + g.first, -1).astype(np.int64) for g, (_, rows) in zip(asked, answers)]
        return merged_top(found_scores, found_rows, k, len(queries))

    def decoded(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Float32 vectors of global ``rows`` (all when None), as search sees them, in the order given."""
        wanted = np.arange(self.count) if rows is None else np.asarray(rows, dtype=np.int64)
        if len(wanted) and (wanted.min() < 0 or wanted.max() >= self.count):
            raise InputError(f"rows must be within 0-{self.count - 1}")
        out = np.zeros((len(wanted), self.dim), dtype=np.float32)
        places, asked, refs = [], [], []
        for group, actor in zip(self.pool.groups, self.pool.actors):
            inside = np.flatnonzero((wanted >= group.first) & (wanted < group.end))
            if len(inside):
                places.append(inside)
                asked.append(group)
                refs.append(actor.decoded.remote(self.kind, self.layer, wanted[inside] - group.first))
        for inside, vectors in zip(places, self.pool.call(refs, asked) if refs else []):
            out[inside] = vectors
        return out
