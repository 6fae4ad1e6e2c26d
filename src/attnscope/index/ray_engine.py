"""Building a planned index's shards on a Ray cluster: one model per actor, shards handed out as actors free up.

Each actor loads the plan's model once (``model``: how to load it there, by default the plan's name; a
GPU per actor with ``gpus_per_worker``) and builds the shards it is given with `shard.build_shard`,
writing into the build's store, which every worker must reach (a shared disk, or an object store
through fsspec). Shards already marked done are skipped. An actor whose process dies is restarted by
Ray and its shard retried (``retries`` times); a shard that fails for a reason of its own (a corpus
changed since the plan...) fails the run with that error. The commit then runs on the driver.

Without ``address`` a local cluster is started for the run and shut down after it (``ray.init``);
with one, the run joins that cluster (``"auto"``, or ``ray://host:10001``). Ray is an optional
dependency: ``pip install attnscope[ray]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .plan import PieceReader, Plan
from .shard import ShardReport, build_shard, shard_marker
from .storage import Store

Hook = Callable[[int], None]
"""Called in the worker with the shard's number before it builds a shard (logging, fault injection in tests)."""


@dataclass(frozen=True)
class RayOptions:
    """How to run on Ray: the cluster (None: a local one with ``local_cpus`` CPUs), how many actors,
    and what each one holds (CPUs, GPUs, torch threads), and how often a dead actor's shard is retried."""

    address: str | None = None
    workers: int = 2
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    threads_per_worker: int | None = None
    retries: int = 2
    local_cpus: int | None = None
    local_temp_dir: str | None = None

    def check(self) -> None:
        if self.workers < 1:
            raise InputError(f"workers (--workers) must be at least 1, got {self.workers}")
        if self.cpus_per_worker <= 0 or self.gpus_per_worker < 0:
            raise InputError(
                f"cpus per worker must be above 0 and GPUs per worker at least 0, got "
                f"{self.cpus_per_worker} and {self.gpus_per_worker}"
            )
        if self.retries < 0:
            raise InputError(f"retries must be at least 0, got {self.retries}")


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError("the Ray engine needs Ray, which is not installed: pip install 'attnscope[ray]'") from None
    return ray


@contextmanager
def cluster(options: RayOptions) -> Iterator[Any]:
    """Ray connected to the cluster ``options`` name, or a local cluster started (and stopped) here."""
    ray = _ray()
    if ray.is_initialized():
        yield ray
        return
    if options.address:
        ray.init(address=options.address, log_to_driver=False)
    else:
        ray.init(
            num_cpus=options.local_cpus,
            include_dashboard=False,
            log_to_driver=False,
            _temp_dir=options.local_temp_dir,
        )
    try:
        yield ray
    finally:
        ray.shutdown()


class _Worker:
    """The actor: the model, loaded once, and the build's store."""

    def __init__(self, url: str, plan: Plan, model: str, read: PieceReader, threads: int | None, hook: Hook | None):
        import torch

        from ..capture.loading import load

        if threads:
            torch.set_num_threads(threads)
        self.store, self.plan, self.read, self.hook = Store.at(url), plan, read, hook
        self.handle = load(model)

    def build(self, number: int) -> ShardReport:
        if self.hook is not None:
            self.hook(number)
        return build_shard(self.store, self.plan, number, self.handle, self.read)


def run_on_ray(
    store: Store,
    plan: Plan,
    read: PieceReader,
    *,
    model: str | None = None,
    options: RayOptions = RayOptions(),
    hook: Hook | None = None,
    progress: Callable[[ShardReport], None] | None = None,
) -> list[ShardReport]:
    """Build every unfinished shard of ``plan`` on Ray actors; returns the reports of the shards built now.

    ``read`` is sent to every actor (it must be picklable: a plan's file reader is). Raises `InputError`
    for bad options, a store the workers cannot share (``memory://``), or Ray missing; a shard's own
    error is raised as it was in the worker."""
    options.check()
    if store.in_process:
        raise InputError("a memory:// store lives in one process: Ray workers cannot reach it; use a shared path")
    pending = [spec.number for spec in plan.shards if shard_marker(store, plan, spec) is None]
    if not pending:
        return []
    with cluster(options) as ray:
        import ray.util

        actor = ray.remote(
            num_cpus=options.cpus_per_worker,
            num_gpus=options.gpus_per_worker,
            max_restarts=options.retries,
            max_task_retries=options.retries,
        )(_Worker)
        workers = [
            actor.remote(store.url, plan, model or plan.model, read, options.threads_per_worker, hook)
            for _ in range(min(options.workers, len(pending)))
        ]
        reports: list[ShardReport] = []
        try:
            for report in ray.util.ActorPool(workers).map_unordered(lambda w, n: w.build.remote(n), pending):
                reports.append(report)
                if progress:
                    progress(report)
        except ray.exceptions.RayTaskError as error:
            cause = error.as_instanceof_cause()
            raise (cause if isinstance(cause, Exception) else error) from None
        finally:
            for worker in workers:
                ray.kill(worker)
    return sorted(reports, key=lambda r: r.number)
