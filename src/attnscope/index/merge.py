"""How the commit joins an approximate index's shards into one vector set: in memory, or on disk.

Each shard of an approximate (IVF) or product-coded build holds one faiss IVF file per (kind, layer),
added to a copy of the plan's trained index under the shard's own row numbers. The commit joins them in
shard order, ids shifted to index rows, in one of two ways (the same entries in the same lists, so the
same search results):

- ``memory``: every shard read, merged into one in-memory index, written as one file (`commit._join_ivf`).
  Memory: about twice the set.
- ``disk``: each shard's ids shifted in a copy (one shard in memory at a time), then the copies merged
  by faiss's on-disk inverted lists (`ivf_shards.merge_on_disk`): ``ivf.<kind>.<l>.faiss`` and its lists
  in ``ivf.<kind>.<l>.faiss.ivfdata`` beside it, the index file naming the data file without a folder.
  Memory: one shard; disk: the set twice while it merges. The index reads its lists memory-mapped
  (`vectors.read_index_file`).
- ``auto`` (the default): ``disk`` when the shards' files of a set add up to more than
  `MEMORY_MERGE_BYTES` (1 GiB), else ``memory``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import InputError
from . import ivf_shards, vectors
from .layout import ivf_file
from .plan import Plan, trained_file
from .storage import Store
from .unreadable import damaged_plan, damaged_shard, decoding

MERGES = ("memory", "disk", "auto")
MEMORY_MERGE_BYTES = 1 << 30
"""With ``merge="auto"``, a set whose shards' files add up to more bytes than this is merged on disk."""
DATA_SUFFIX = ".ivfdata"


def check_merge(merge: str) -> None:
    """`InputError` unless ``merge`` is one of `MERGES`."""
    if merge not in MERGES:
        raise InputError(f"merge (--merge) {merge!r} is not a choice: use one of {', '.join(MERGES)}")


def on_disk(merge: str, shard_bytes: int) -> bool:
    """Whether a set whose shards' files hold ``shard_bytes`` bytes is merged on disk under ``merge``."""
    check_merge(merge)
    return merge == "disk" or (merge == "auto" and shard_bytes > MEMORY_MERGE_BYTES)


def join_on_disk(store: Store, plan: Plan, kind: str, layer: int, rows: np.ndarray, work: Path) -> list[str]:
    """Merge every shard's IVF file of (``kind``, ``layer``) on disk, in the local folder ``work``, and move
    the result into ``store``: the set's index file and its data file; returns their names."""
    with decoding(store.path(trained_file(kind, layer)), damaged_plan(store.path(""))):
        trained = vectors.deserialise(store.read(trained_file(kind, layer)))
    name = ivf_file(kind, layer)
    files: list[Path] = []
    for number, spec in enumerate(plan.shards):
        part = f"{spec.folder}/{name}"
        if store.is_local:
            source = Path(store.path(part))
        else:
            source = work / f"shard.{number}.faiss"
            store.fs.get_file(store.path(part), str(source))
        if int(rows[number]) == 0:
            files.append(source)  # its ids are already index rows
            continue
        with decoding(store.path(part), damaged_shard(spec.number, store.path(spec.folder))):
            files.append(ivf_shards.shifted_copy(trained, source, int(rows[number]), work / f"shifted.{number}.faiss"))
        if not store.is_local:
            source.unlink()
    with decoding(f"one of the shards' {name} files", _merge_failed(name)):  # shard 0's file is first read here
        ivf_shards.merge_on_disk(trained, files, work / name)
    for path in files:
        if path.parent == work:
            path.unlink()
    store.put(work / (name + DATA_SUFFIX), name + DATA_SUFFIX)
    store.put(work / name, name)
    return [name, name + DATA_SUFFIX]


def _merge_failed(name: str) -> Callable[[str], InputError]:
    return lambda problem: InputError(
        f"the on-disk merge of {name} failed: {problem}; a shard's file is damaged: remove that shard's folder "
        "and build it again (`attnscope index-shard DIR --shard N`)"
    )
