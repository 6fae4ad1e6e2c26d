"""Opening an index's vector sets from their files: one set per (kind, layer), or one per shard of it.

The one place that knows how a stored set becomes searchable: `Index` opens its sets here, and so does
each search worker (`search_workers`) for its own group of shards. A set is a file of scalar-quantised
codes (exact), an IVF file (approximate, ``ivf.<kind>.<l>.faiss``) or a product-quantised IVF file
(``--codes pq<m>``); an index committed with ``--fan-out`` keeps one such file per shard
(`Manifest.vector_shards`), searched as one (`shard_sets.ShardedSet`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import vectors
from .layout import RANGES, codes_file, ivf_file, read_codes
from .manifest import Manifest
from .merge import DATA_SUFFIX
from .pq import PQSet
from .shard_sets import Shard, ShardedSet
from .unreadable import damaged_index, decoding

LocalSet = vectors.VectorSet | PQSet | ShardedSet
"""A vector set opened in this process: one file (scalar or product codes), or one per shard (`ShardedSet`)."""

Ranges = dict[str, tuple[np.ndarray, np.ndarray]]
"""Each vector kind's quantiser ranges at every stored layer: kind -> (low, span), each (stored layers, dim)."""


def read_ranges(directory: Path) -> Ranges:
    """The quantiser ranges of the index in ``directory`` (``ranges.npz``)."""
    ranges = np.load(directory / RANGES)
    return {name: (ranges[f"{name}_low"], ranges[f"{name}_span"]) for name in ("hidden", "heads")}


def parts_of(manifest: Manifest) -> list[dict[str, Any]]:
    """The parts holding the index's sets: its fan-out shards (``{"folder", "first", "rows"}``), or the one
    set of every row in the index's own folder."""
    return manifest.vector_shards or [{"folder": "", "first": 0, "rows": manifest.tokens}]


def open_part(
    directory: Path,
    manifest: Manifest,
    ranges: Ranges,
    kind: str,
    layer: int,
    part: dict[str, Any],
    within: tuple[int, int] | None = None,
    locate: Callable[[str], Path] | None = None,
) -> vectors.VectorSet | PQSet:
    """The set of ``kind`` at ``layer`` of one part (`parts_of`), rows numbered from 0 within the part; with
    ``within`` (start, end), only those rows of an exact set of scalar codes (read whole, then cut: an
    approximate set's file cannot be cut without loading it whole). ``locate`` gives the local path of a
    file named relative to the index (an index on a remote store fetches it: `remote.RemoteFiles.local`);
    by default it is in ``directory``."""
    low, span = ranges[kind]
    dim = manifest.hidden_size if kind == "hidden" else manifest.head_embedding_size
    slot = manifest.layer_numbers.index(layer)  # ranges.npz holds the stored layers' ranges, in their order
    set_ranges, bits = vectors.Ranges(low[slot], span[slot]), manifest.vector_bits
    (name,) = part_files(manifest, kind, layer, [part])
    path = directory / name if locate is None else locate(name)
    if locate is not None and f"{name}{DATA_SUFFIX}" in manifest.files:
        locate(f"{name}{DATA_SUFFIX}")  # a set merged on disk: its lists beside its file (`merge.py`)
    with decoding(str(path), damaged_index):
        if manifest.codes != "sq":
            return PQSet.from_file(path)
        if manifest.approximate_lists:
            return vectors.VectorSet.from_file(path, dim, bits, set_ranges)
        codes = read_codes(path, part["rows"])
    if within is not None:
        codes = codes[within[0] : within[1]].copy()  # the whole set's codes are let go
    return vectors.VectorSet.from_codes(codes, dim, bits, set_ranges)


def part_files(manifest: Manifest, kind: str, layer: int, parts: Sequence[dict[str, Any]]) -> list[str]:
    """The names of the files holding the set of ``kind`` at ``layer`` in ``parts`` (relative to the index)."""
    exact = manifest.codes == "sq" and not manifest.approximate_lists
    name = codes_file(kind, layer) if exact else ivf_file(kind, layer)
    return [f"{part['folder']}/{name}" if part["folder"] else name for part in parts]


def open_set(
    directory: Path,
    manifest: Manifest,
    ranges: Ranges,
    kind: str,
    layer: int,
    parts: Sequence[dict[str, Any]] | None = None,
    first: int = 0,
    locate: Callable[[str], Path] | None = None,
) -> LocalSet:
    """The searchable set of ``kind`` at ``layer``: of every part (default), or of ``parts`` (some of an index's
    fan-out shards, numbered from their first row minus ``first``). An index committed with ``--fan-out`` gives a
    `ShardedSet` (searched shard by shard, the top-k merged), any other its one set. ``locate`` as `open_part`'s."""
    fan_out = manifest.vector_shards is not None
    chosen = list(parts_of(manifest) if parts is None else parts)
    shards = [
        Shard(open_part(directory, manifest, ranges, kind, layer, part, locate=locate), part["first"] - first)
        for part in chosen
    ]
    return ShardedSet(shards) if fan_out else shards[0].vectors
