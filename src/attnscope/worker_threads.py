"""Running torch work on worker threads of one torch thread each, instead of torch's own intra-op threads.

Why: on a machine with more runnable processes than cores, torch's intra-op threads wait for each other at every
operation. Measured here (2 cores under a load of 9): an element-wise multiply took 73 ns per element with 2
torch threads and 0.24 ns with 1; 10 layers' attention overview at 4,096 tokens took 46-114 s with 2 OpenMP
threads and 6.8-8.2 s with 2 workers of 1 thread. Used by the attention blocks (`capture.blocks`) and the
pair divergences of a model comparison (`analysis.head_distance`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TypeVar

import torch

Item = TypeVar("Item")


def on_worker_threads(work: Callable[[Item], None], items: Sequence[Item], name: str = "attnscope-work") -> None:
    """Call ``work`` on each item, on as many worker threads as torch has intra-op threads (at most one per
    item), each running torch on one thread, in no set order; with one torch thread or one item, in order on
    the calling thread. The first exception raised by ``work`` is raised here once every started call has
    ended. Torch's thread count is restored afterwards. ``name`` prefixes the threads' names.
    """
    workers = max(1, torch.get_num_threads())
    if workers == 1 or len(items) <= 1:
        for item in items:
            work(item)
        return

    def run(item: Item) -> None:
        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)  # this worker thread's own setting (OpenMP's and MKL's are per thread)
        work(item)

    pool = ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix=name)
    try:
        for done in as_completed([pool.submit(run, item) for item in items]):
            done.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(workers)  # new threads start from the last value set: the caller's
