"""Approximate (IVF) vector sets built in shards against one shared trained index, and merged into one.

The plan trains one empty IVF index per (kind, layer) from a seeded sample (`vectors.trained_ivf`:
k-means centroids, scalar-quantiser ranges fixed). Each shard adds its rows to a copy of it under their
global row ids (`add_shard`); since the copies share centroids and ranges, a row gets the same cluster
and the same codes in any shard, and the shards merge into the index a single pass would have built
(its lists hold the same entries in row order when the shards are merged in row order):

- `merge_in_memory` for sets that fit in memory;
- `merge_on_disk` writes the index file and its inverted lists (``.ivfdata``) side by side, without
  loading the shards' lists into memory; `read_merged` reads it back.

A merged on-disk index must not be read with faiss's ``IO_FLAG_MMAP``: with faiss-cpu 1.15.1 a search
of one read that way crashed the process (segmentation fault, issue 19); `read_merged` reads it with
``IO_FLAG_ONDISK_SAME_DIR`` only (the lists are memory-mapped by faiss's on-disk lists anyway, looked
up beside the index file, so the directory can move).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from .cstdout import quiet_stdout
from .vectors import Ranges, _faiss, decode, read_index_file


def add_shard(trained, codes: np.ndarray, dim: int, bits: int, ranges: Ranges, first: int, chunk: int = 100_000):
    """A copy of the empty trained IVF ``trained`` holding one shard's codes (rows, code_size) uint8 under
    the global row ids ``first .. first + rows - 1``. Its codes equal ``codes`` (decoded, then encoded
    with the same ranges)."""
    faiss = _faiss()
    if trained.ntotal:
        raise InputError(f"the shared trained index must be empty; it holds {trained.ntotal} vectors")
    index = faiss.clone_index(trained)
    for start in range(0, len(codes), chunk):
        part = decode(np.asarray(codes[start : start + chunk]), dim, bits, ranges)
        index.add_with_ids(part, np.arange(first + start, first + start + len(part), dtype=np.int64))
    return index


def fingerprint(index) -> str:
    """What must agree for IVF indexes to merge: width, cluster count, code size and the centroids' and
    the codes' parameters (scalar quantiser ranges or product quantiser centroids): a sha256 hex digest."""
    faiss = _faiss()
    ivf = faiss.extract_index_ivf(index)
    digest = hashlib.sha256(f"{ivf.d}/{ivf.nlist}/{ivf.code_size}/{type(ivf).__name__}".encode())
    digest.update(ivf.quantizer.reconstruct_n(0, ivf.nlist).tobytes())
    if hasattr(ivf, "sq"):
        digest.update(faiss.vector_to_array(ivf.sq.trained).tobytes())
    if hasattr(ivf, "pq"):
        digest.update(faiss.vector_to_array(ivf.pq.centroids).tobytes())
    return digest.hexdigest()


def _check_shards(trained, shards: Sequence, names: Sequence[str]) -> None:
    expected = fingerprint(trained)
    for shard, name in zip(shards, names):
        if fingerprint(shard) != expected:
            raise InputError(
                f"{name} was not built against this trained index (other centroids or ranges): "
                "shards merge only when every one was added to a copy of the same trained index"
            )


def merge_in_memory(trained, shards: Sequence):
    """One IVF index holding every shard's entries (shards in row order), in memory; the shards are
    left as they were. Raises `InputError` for a shard built against another trained index."""
    faiss = _faiss()
    _check_shards(trained, shards, [f"shard {i}" for i in range(len(shards))])
    merged = faiss.clone_index(trained)
    for shard in shards:
        copy = faiss.clone_index(shard)  # merge_from empties its argument: give it a copy
        copy.set_direct_map_type(faiss.DirectMap.NoMap)  # faiss merges no id maps
        merged.merge_from(copy, 0)
    return merged


def merge_on_disk(trained, shard_files: Sequence[Path | str], index_file: Path | str) -> Path:
    """Merge the IVF shards saved in ``shard_files`` (in row order, their ids already the rows they hold)
    into one on-disk index: ``index_file`` and its inverted lists beside it (``<index_file>.ivfdata``,
    returned). The shards' lists are read memory-mapped, never all loaded. The index file names its data
    file without a folder, so the pair can move together (`read_merged` looks beside the index). faiss's
    messages on stdout are kept off it (`cstdout.quiet_stdout`). Raises `InputError` for a shard built
    against another trained index."""
    faiss = _faiss()
    index_file = Path(index_file)
    data_file = index_file.with_name(index_file.name + ".ivfdata")
    opened = [faiss.read_index(str(path), faiss.IO_FLAG_MMAP) for path in shard_files]  # merged, never searched
    _check_shards(trained, opened, [str(path) for path in shard_files])
    ivf = faiss.extract_index_ivf(trained)
    lists = faiss.OnDiskInvertedLists(ivf.nlist, ivf.code_size, str(data_file))
    sources = faiss.InvertedListsPtrVector()
    for shard in opened:
        sources.push_back(faiss.extract_index_ivf(shard).invlists)
    with quiet_stdout():  # faiss prints "resizing <data file> to N bytes"
        total = lists.merge_from_multiple(sources.data(), sources.size(), False)
    merged = faiss.clone_index(trained)
    merged_ivf = faiss.extract_index_ivf(merged)
    merged.ntotal = merged_ivf.ntotal = total
    merged_ivf.replace_invlists(lists, True)
    lists.this.disown()  # the merged index owns its lists now
    lists.filename = data_file.name  # recorded in the index file: relative, looked up beside it
    faiss.write_index(merged, str(index_file))
    del opened, merged
    return data_file


def shifted_copy(trained, shard_file: Path | str, first: int, target: Path | str) -> Path:
    """Save into ``target`` a copy of the IVF shard in ``shard_file`` whose ids (0..n-1, a shard's own rows)
    are shifted by ``first`` (to the rows of the index), for `merge_on_disk`. Memory: one shard.
    (faiss's ``merge_from_multiple(shift_ids=True)`` shifts by other amounts in faiss-cpu 1.15.1.)"""
    faiss = _faiss()
    shard = faiss.read_index(str(shard_file))
    _check_shards(trained, [shard], [str(shard_file)])
    copy = faiss.clone_index(trained)
    shard.set_direct_map_type(faiss.DirectMap.NoMap)
    copy.merge_from(shard, int(first))
    faiss.write_index(copy, str(target))
    return Path(target)


def read_merged(index_file: Path | str):
    """A merged on-disk IVF index, its lists memory-mapped from the ``.ivfdata`` file beside it (never
    with ``IO_FLAG_MMAP``: see the module's docstring)."""
    return read_index_file(index_file)
