"""Scalar-quantised vector sets on disk, and exact inner-product search over them with faiss.

A vector set is one kind of vector at one layer for every indexed token: ``codes`` (tokens,
code_size) uint8 in a ``.npy`` file, and per-dimension ranges ``low``/``span`` (the quantiser's
parameters). Decoding is faiss's non-uniform scalar quantiser: value = low + (code + 0.5) / levels *
span, per dimension (``levels`` = 2**bits - 1; 6- and 4-bit codes are packed by faiss). Search runs
faiss's `IndexScalarQuantizer` directly on the codes (no float copy), optionally restricted to a
subset of tokens (metadata filters).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

QTYPES = {8: "QT_8bit", 6: "QT_6bit", 4: "QT_4bit"}


def _faiss():
    import faiss  # a compiled extension: imported when vectors are first encoded or searched

    return faiss


@dataclass(frozen=True)
class Ranges:
    """Per-dimension quantisation ranges of one vector set: ``low`` and ``span`` (high - low), (dim,)."""

    low: np.ndarray
    span: np.ndarray

    @classmethod
    def from_sample(cls, sample: np.ndarray, margin: float = 0.05) -> Ranges:
        """Ranges covering a float sample (tokens, dim), widened by ``margin`` of the span each side
        so that tokens outside the sample rarely clip."""
        low, high = sample.min(axis=0).astype(np.float32), sample.max(axis=0).astype(np.float32)
        pad = np.maximum(high - low, 1e-6) * margin
        return cls((low - pad).astype(np.float32), (high - low + 2 * pad).astype(np.float32))

    def trained(self) -> np.ndarray:
        """The parameter vector faiss's non-uniform scalar quantiser holds: low then span."""
        return np.concatenate([self.low, self.span]).astype(np.float32)


def quantiser(dim: int, bits: int, ranges: Ranges):
    """A faiss ScalarQuantizer for ``dim``-wide vectors at ``bits`` with the given ranges."""
    faiss = _faiss()
    sq = faiss.ScalarQuantizer(dim, getattr(faiss.ScalarQuantizer, QTYPES[bits]))
    faiss.copy_array_to_vector(ranges.trained(), sq.trained)
    return sq


def encode(vectors: np.ndarray, bits: int, ranges: Ranges) -> np.ndarray:
    """(tokens, dim) float -> (tokens, code_size) uint8 codes."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if len(vectors) == 0:
        sq = quantiser(vectors.shape[1], bits, ranges)
        return np.zeros((0, sq.code_size), dtype=np.uint8)
    return quantiser(vectors.shape[1], bits, ranges).compute_codes(vectors)


def decode(codes: np.ndarray, dim: int, bits: int, ranges: Ranges) -> np.ndarray:
    """(tokens, code_size) codes -> (tokens, dim) float32, exactly as search sees them."""
    return quantiser(dim, bits, ranges).decode(np.ascontiguousarray(codes))


def inverted_lists(tokens: int) -> int:
    """Coarse clusters for an approximate index of ``tokens`` vectors: about 4 * sqrt(tokens), with at
    least 39 vectors per cluster to train on (faiss's minimum), at most 65,536."""
    return int(max(1, min(4 * np.sqrt(max(tokens, 1)), tokens // 39, 65536)))


def trained_ivf(
    sample: np.ndarray, dim: int, bits: int, ranges: Ranges, lists: int, seed: int = 0, iterations: int | None = None
):
    """An empty approximate index trained on a float ``sample`` (tokens, dim): ``lists`` k-means clusters
    (seeded), the scalar quantiser set to ``ranges`` (not trained on the sample), so that every copy of
    it encodes a vector to the same codes whatever else it holds. Shards built separately add to copies
    of one such index (`ivf_shards.add_shard`) and merge. ``iterations``: k-means iterations (None:
    faiss's default)."""
    faiss = _faiss()
    index = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(dim),
        dim,
        lists,
        getattr(faiss.ScalarQuantizer, QTYPES[bits]),
        faiss.METRIC_INNER_PRODUCT,
        False,
    )
    index.cp.seed = seed
    index.cp.min_points_per_centroid = 1  # only sets when faiss warns of a small sample (on stderr, once a set)
    if iterations is not None:
        index.cp.niter = iterations
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    faiss.copy_array_to_vector(ranges.trained(), index.sq.trained)  # encode with the index's own ranges
    return index


def ivf_sample(count: int, lists: int, seed: int = 0) -> np.ndarray:
    """The rows an approximate index of ``count`` vectors and ``lists`` clusters trains on (sorted, seeded):
    50 per cluster, or every row."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(count, size=min(count, 50 * lists), replace=False))


def build_ivf(codes: np.ndarray, dim: int, bits: int, ranges: Ranges, lists: int, seed: int = 0, chunk: int = 100_000):
    """An approximate index (faiss IVF: ``lists`` k-means clusters, each searched list scanned over the
    same scalar-quantised codes, not residuals, so its codes equal ``codes``)."""
    sample = ivf_sample(len(codes), lists, seed)
    index = trained_ivf(decode(np.asarray(codes[sample]), dim, bits, ranges), dim, bits, ranges, lists, seed)
    for start in range(0, len(codes), chunk):
        index.add(decode(np.asarray(codes[start : start + chunk]), dim, bits, ranges))
    return index


def read_index_file(path: Path | str):
    """The faiss index saved in ``path``. One whose inverted lists are on disk (a merged set, its lists in
    ``<path>.ivfdata``) is read with ``IO_FLAG_ONDISK_SAME_DIR``, its lists looked up beside ``path`` (so
    the index can move) and memory-mapped; never with ``IO_FLAG_MMAP`` (a search of one read that way
    crashed faiss-cpu 1.15.1, `ivf_shards`)."""
    faiss = _faiss()
    if not Path(f"{path}.ivfdata").is_file():
        return faiss.read_index(str(path))
    from .cstdout import quiet_stdout

    with quiet_stdout():  # faiss prints "IO_FLAG_ONDISK_SAME_DIR: updating ondisk filename ..."
        return faiss.read_index(str(path), faiss.IO_FLAG_ONDISK_SAME_DIR)


def deserialise(data: bytes):
    """The faiss index whose `serialise` bytes are ``data``."""
    return _faiss().deserialize_index(np.frombuffer(data, dtype=np.uint8))


class VectorSet:
    """One stored vector set, searchable: ``search(queries, k, allowed, probes)``.

    Either exact (faiss's flat scalar-quantiser index over the codes) or approximate (an IVF index:
    only the ``probes`` clusters nearest the query are scanned)."""

    def __init__(self, index, count: int, dim: int, bits: int, ranges: Ranges):
        self.index, self.count, self.dim, self.bits, self.ranges = index, count, dim, bits, ranges
        self.approximate = hasattr(index, "nlist")
        if self.approximate:
            direct_map(index)

    @property
    def nbytes(self) -> int:
        """Memory the set's codes take (what bounds the index's cache)."""
        return int(self.index.sa_code_size()) * self.count

    @classmethod
    def from_codes(cls, codes: np.ndarray, dim: int, bits: int, ranges: Ranges) -> VectorSet:
        faiss = _faiss()
        index = faiss.IndexScalarQuantizer(
            dim, getattr(faiss.ScalarQuantizer, QTYPES[bits]), faiss.METRIC_INNER_PRODUCT
        )
        faiss.copy_array_to_vector(ranges.trained(), index.sq.trained)
        index.is_trained = True
        if len(codes):
            faiss.copy_array_to_vector(np.ascontiguousarray(codes).ravel(), index.codes)
            index.ntotal = len(codes)
        return cls(index, len(codes), dim, bits, ranges)

    @classmethod
    def from_file(cls, path: Path, dim: int, bits: int, ranges: Ranges) -> VectorSet:
        index = read_index_file(path)
        return cls(index, index.ntotal, dim, bits, ranges)

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None, probes: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` inner products for each query row: (scores, token rows), best first; rows are -1
        where fewer than ``k`` tokens are allowed. ``allowed`` is a (tokens,) bool mask or None;
        ``probes`` is how many clusters an approximate set scans (all of them: exact)."""
        faiss = _faiss()
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        options: dict = {}
        if allowed is not None:  # the mask may run past this set's rows (a shard holding global rows)
            bitmap = np.packbits(allowed.astype(bool), bitorder="little")
            options["sel"] = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
        if self.approximate:
            params = faiss.SearchParametersIVF(nprobe=int(min(probes or self.index.nlist, self.index.nlist)), **options)
        else:
            params = faiss.SearchParameters(**options) if options else None
        if params is not None and allowed is not None:
            params._bitmap = bitmap  # keep the buffer alive as long as the selector
        return ties_by_row(lambda wanted: self.index.search(queries, wanted, params=params), k, self.count)

    def decoded(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Float32 vectors of ``rows`` (all when None), as search sees them (a few rows are decoded
        alone, without copying the set's codes)."""
        if self.approximate or rows is not None:
            wanted = np.arange(self.count) if rows is None else np.asarray(rows, dtype=np.int64)
            return self.index.reconstruct_batch(wanted)
        return decode(faiss_codes(self.index, self.count), self.dim, self.bits, self.ranges)


def direct_map(index) -> None:
    """Let an IVF index reconstruct vectors by id: an array when its ids are its rows 0..ntotal-1, a hash
    table when they are not (a shard holding global rows)."""
    faiss = _faiss()
    try:
        index.make_direct_map()
    except RuntimeError:  # ids are not 0..ntotal-1
        index.set_direct_map_type(faiss.DirectMap.Hashtable)


def ties_by_row(search, k: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The top ``k`` of a faiss search, (scores, rows) best first, equal scores in row order, rows -1 (score
    -inf to faiss: -3.4e38) past the last match. ``search(wanted)`` returns faiss's (queries, wanted) top
    ``wanted``; faiss breaks ties in its own order and keeps any of the tied rows at the cut, so more are
    asked for until the row after the ``k``-th scores lower, then ties are ordered by row."""
    k = max(1, min(k, count))
    wanted = min(count, k + 1)
    while True:
        scores, rows = search(wanted)
        if wanted == k:
            break
        last = np.arange(len(scores)), np.full(len(scores), wanted - 1)
        tied = (rows[last] >= 0) & (scores[last] >= scores[:, k - 1])
        if wanted >= count or not tied.any():
            break
        wanted = min(count, 2 * wanted)
    return ordered(scores, rows, k)


def ordered(scores: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(queries, n) candidates -> their top ``k`` per query, best score first, ties by row, rows -1 last."""
    order = np.lexsort((np.where(rows < 0, np.iinfo(np.int64).max, rows), -scores), axis=-1)[:, :k]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(rows, order, axis=1)


def serialise(index) -> bytes:
    """A faiss index as the bytes ``faiss.read_index`` reads back."""
    return _faiss().serialize_index(index).tobytes()


def faiss_codes(index, count: int) -> np.ndarray:
    """The codes an IndexScalarQuantizer holds, (count, code_size) uint8."""
    faiss = _faiss()
    return (
        faiss.vector_to_array(index.codes).reshape(count, index.sq.code_size)
        if count
        else np.zeros((0, index.sq.code_size), dtype=np.uint8)
    )
