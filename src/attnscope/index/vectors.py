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
    def from_sample(cls, sample: np.ndarray, margin: float = 0.05) -> "Ranges":
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


class VectorSet:
    """One stored vector set, searchable: ``search(queries, k, allowed)``."""

    def __init__(self, codes: np.ndarray, dim: int, bits: int, ranges: Ranges):
        faiss = _faiss()
        self.dim, self.bits, self.ranges = dim, bits, ranges
        self.count = len(codes)
        self.index = faiss.IndexScalarQuantizer(dim, getattr(faiss.ScalarQuantizer, QTYPES[bits]),
                                                faiss.METRIC_INNER_PRODUCT)
        faiss.copy_array_to_vector(ranges.trained(), self.index.sq.trained)
        self.index.is_trained = True
        if self.count:
            faiss.copy_array_to_vector(np.ascontiguousarray(codes).ravel(), self.index.codes)
            self.index.ntotal = self.count

    @classmethod
    def load(cls, path: Path, dim: int, bits: int, ranges: Ranges) -> "VectorSet":
        return cls(np.load(path, mmap_mode="r"), dim, bits, ranges)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` inner products for each query row: (scores, token rows), best first; rows are -1
        where fewer than ``k`` tokens are allowed. ``allowed`` is a (tokens,) bool mask or None."""
        faiss = _faiss()
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        params = None
        if allowed is not None:
            bitmap = np.packbits(allowed.astype(bool), bitorder="little")
            params = faiss.SearchParameters(sel=faiss.IDSelectorBitmap(self.count, faiss.swig_ptr(bitmap)))
            params._bitmap = bitmap  # keep the buffer alive as long as the selector
        k = max(1, min(k, self.count))
        scores, rows = self.index.search(queries, k, params=params)
        return scores, rows

    def decoded(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Float32 vectors of ``rows`` (all when None), as search sees them."""
        codes = faiss_codes(self.index, self.count)
        return decode(codes if rows is None else codes[rows], self.dim, self.bits, self.ranges)


def faiss_codes(index, count: int) -> np.ndarray:
    """The codes an IndexScalarQuantizer holds, (count, code_size) uint8."""
    faiss = _faiss()
    return faiss.vector_to_array(index.codes).reshape(count, index.sq.code_size) if count else \
        np.zeros((0, index.sq.code_size), dtype=np.uint8)
