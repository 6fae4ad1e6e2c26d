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


def build_ivf(codes: np.ndarray, dim: int, bits: int, ranges: Ranges, lists: int, seed: int = 0, chunk: int = 100_000):
    """An approximate index (faiss IVF: ``lists`` k-means clusters, each searched list scanned over the
    same scalar-quantised codes, not residuals, so its codes equal ``codes``), trained on a seeded sample
    of ``codes`` and holding all of them (ids = rows)."""
    count = len(codes)
    sample = np.sort(np.random.default_rng(seed).choice(count, size=min(count, 50 * lists), replace=False))
    index = trained_ivf(np.asarray(codes[sample]), dim, bits, ranges, lists, seed)
    for start in range(0, count, chunk):
        index.add(decode(np.asarray(codes[start : start + chunk]), dim, bits, ranges))
    return index


def trained_ivf(sample: np.ndarray, dim: int, bits: int, ranges: Ranges, lists: int, seed: int = 0):
    """An empty IVF index of scalar-quantised codes (see `build_ivf`) whose ``lists`` centroids are
    k-means (seeded) of the ``sample`` codes as they decode; indexes trained alike merge (faiss
    ``merge_from``), so shards built apart can be searched as one."""
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
    index.train(decode(np.ascontiguousarray(sample), dim, bits, ranges))
    faiss.copy_array_to_vector(ranges.trained(), index.sq.trained)  # encode with the index's own ranges
    return index


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
            index.make_direct_map()

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
        index = _faiss().read_index(str(path))
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
        if allowed is not None:
            bitmap = np.packbits(allowed.astype(bool), bitorder="little")
            options["sel"] = faiss.IDSelectorBitmap(self.count, faiss.swig_ptr(bitmap))
        if self.approximate:
            params = faiss.SearchParametersIVF(nprobe=int(min(probes or self.index.nlist, self.index.nlist)), **options)
        else:
            params = faiss.SearchParameters(**options) if options else None
        if params is not None and allowed is not None:
            params._bitmap = bitmap  # keep the buffer alive as long as the selector
        k = max(1, min(k, self.count))
        return self.index.search(queries, k, params=params)

    def decoded(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Float32 vectors of ``rows`` (all when None), as search sees them (a few rows are decoded
        alone, without copying the set's codes)."""
        if self.approximate or rows is not None:
            wanted = np.arange(self.count) if rows is None else np.asarray(rows, dtype=np.int64)
            return self.index.reconstruct_batch(wanted)
        return decode(faiss_codes(self.index, self.count), self.dim, self.bits, self.ranges)


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
