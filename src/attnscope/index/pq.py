"""Product-quantised vector sets (``--codes pq<m>``): ``m`` bytes per vector instead of one per dimension.

A vector of ``dim`` values is cut into ``m`` pieces of ``dim / m`` values; each piece is stored as the
number (one byte) of the nearest of 256 centroids trained for that piece (faiss's product quantiser,
trained by k-means on a seeded sample). A search scores every stored vector by the inner product of
the query with its centroids (asymmetric: the query stays float), one table look-up per piece.

The set is a faiss ``IndexIVFPQ`` whose codes are not residuals (``by_residual`` off), so a vector's
codes do not depend on its cluster: with one cluster (``lists=1``) every code is scanned (exact search
over the codes); with more, ``probes`` clusters are scanned as in `vectors.VectorSet`. Shards add
their vectors under global row ids to copies of one trained index (`add_vectors`) and merge like the
scalar-quantised IVF sets (`ivf_shards`).

Re-ranking (optional): the best ``rerank * k`` rows by their codes are scored again against finer
vectors (another set's `decoded` rows: the 8-bit codes, or float vectors) and the best ``k`` of
those kept; the finer vectors must be stored too, so their bytes count in what the layout costs.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import InputError
from .vectors import _faiss, direct_map, ordered, read_index_file, ties_by_row

PQ_BITS = 8
"""Bits per piece's code: 256 centroids per piece, one byte."""


def parse_codes(text: str, dim: int) -> int:
    """The piece count ``m`` of a ``--codes pq<m>`` choice for ``dim``-wide vectors. Raises `InputError`
    unless ``text`` is ``pq`` and a whole number that divides ``dim`` (1..dim)."""
    found = re.fullmatch(r"pq(\d+)", text.strip().lower())
    if found is None:
        raise InputError(f"--codes {text!r} is not a product-quantiser choice: use pq<m>, such as pq96")
    m = int(found.group(1))
    if not 1 <= m <= dim or dim % m:
        raise InputError(
            f"--codes pq{m}: m must divide the vector width {dim} (1-{dim}), so that each piece is dim/m wide"
        )
    return m


def train_pq(sample: np.ndarray, m: int, lists: int = 1, seed: int = 0, coarse=None):
    """An empty product-quantised index trained on a float ``sample`` (tokens, dim): ``m`` pieces of 256
    centroids each (needs at least 256 sample rows; faiss advises 39 per centroid, 9,984), ``lists``
    coarse clusters, both k-means seeded by ``seed``; or the clusters of ``coarse`` (a trained flat
    inner-product index of centroids, such as a scalar-quantised IVF's ``quantizer``: then a row falls
    in the same cluster in both sets). Inner-product metric."""
    faiss = _faiss()
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    dim = sample.shape[1]
    if dim % m:
        raise InputError(f"pq{m}: m must divide the vector width {dim}")
    if len(sample) < max(256, lists):
        raise InputError(f"training pq{m} needs at least {max(256, lists)} sample vectors, got {len(sample)}")
    if coarse is None:
        clusters = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists, faiss.METRIC_INNER_PRODUCT)
        clusters.cp.seed = seed
        clusters.cp.min_points_per_centroid = 1  # faiss's warning about a small sample, not its clustering
        clusters.train(sample)
        coarse = clusters.quantizer
    quantizer = faiss.clone_index(coarse)
    index = faiss.IndexIVFPQ(quantizer, dim, int(coarse.ntotal), m, PQ_BITS, faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True
    quantizer.this.disown()  # the index owns its quantizer
    index.by_residual = False
    faiss.copy_array_to_vector(piece_centroids(sample, m, seed).ravel(), index.pq.centroids)
    index.is_trained = True
    return index


def piece_centroids(sample: np.ndarray, m: int, seed: int = 0, iterations: int = 25) -> np.ndarray:
    """(m, 256, dim / m) k-means centroids of each piece of ``sample`` (seeded; at most 256 rows per
    centroid). A piece narrower than 8 values is padded with zeros to 8: the same clusters (the padding
    stays 0 in every centroid), found many times faster by faiss-cpu 1.15.1, whose k-means on 4-wide or
    narrower vectors measured 15 times slower here than on 8-wide ones."""
    faiss = _faiss()
    width = sample.shape[1] // m
    pieces = []
    for piece in range(m):
        values = sample[:, piece * width : (piece + 1) * width]
        if width < 8:
            values = np.pad(values, ((0, 0), (0, 8 - width)))
        limits = {"max_points_per_centroid": 256, "min_points_per_centroid": 1}  # the minimum only makes faiss warn
        kmeans = faiss.Kmeans(values.shape[1], 1 << PQ_BITS, niter=iterations, seed=seed, **limits)
        kmeans.train(np.ascontiguousarray(values, dtype=np.float32))
        pieces.append(kmeans.centroids[:, :width])
    return np.stack(pieces).astype(np.float32)


def add_vectors(trained, vectors: np.ndarray, first: int = 0, chunk: int = 100_000):
    """A copy of the empty trained index ``trained`` holding ``vectors`` (rows, dim) float as the rows
    ``first .. first + rows - 1``."""
    faiss = _faiss()
    if trained.ntotal:
        raise InputError(f"the shared trained index must be empty; it holds {trained.ntotal} vectors")
    index = faiss.clone_index(trained)
    for start in range(0, len(vectors), chunk):
        part = np.ascontiguousarray(vectors[start : start + chunk], dtype=np.float32)
        index.add_with_ids(part, np.arange(first + start, first + start + len(part), dtype=np.int64))
    return index


def encode(trained, vectors: np.ndarray) -> np.ndarray:
    """(rows, dim) float -> (rows, m) uint8 product-quantiser codes (the same in any copy of ``trained``)."""
    return trained.pq.compute_codes(np.ascontiguousarray(vectors, dtype=np.float32))


class PQSet:
    """A product-quantised vector set with the interface `Index` uses of `vectors.VectorSet`; ``finer``
    (optional, with ``rerank`` >= 1): a set whose `decoded` rows re-score the best ``rerank * k``."""

    def __init__(self, index, finer=None, rerank: int = 1):
        if rerank < 1:
            raise InputError(f"rerank must be 1 or more, got {rerank}")
        if finer is not None and finer.count != index.ntotal:
            raise InputError(f"the finer set has {finer.count} rows; the codes have {index.ntotal}")
        self.index, self.finer, self.rerank = index, finer, rerank
        self.count, self.dim, self.m = int(index.ntotal), int(index.d), int(index.pq.M)
        self.approximate = index.nlist > 1
        direct_map(index)

    @classmethod
    def from_file(cls, path: Path | str, finer=None, rerank: int = 1) -> PQSet:
        """A set saved with ``faiss.write_index`` (`vectors.serialise`), or a merged on-disk one with its
        ``.ivfdata`` beside it (`vectors.read_index_file`)."""
        return cls(read_index_file(path), finer, rerank)

    @property
    def nbytes(self) -> int:
        """Memory the codes take (``m`` bytes a row; a finer set counts its own)."""
        return self.m * self.count

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None, probes: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """As `vectors.VectorSet.search`: (scores, rows) best first, ties by row, -1 padded. Scores are
        the codes' inner products, or the finer vectors' for a re-ranked set."""
        faiss = _faiss()
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        options: dict = {}
        if allowed is not None:
            bitmap = np.packbits(allowed.astype(bool), bitorder="little")
            options["sel"] = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
        params = faiss.SearchParametersIVF(nprobe=int(min(probes or self.index.nlist, self.index.nlist)), **options)
        if allowed is not None:
            params._bitmap = bitmap  # keep the buffer alive as long as the selector
        wide = k if self.finer is None else k * self.rerank
        scores, rows = ties_by_row(lambda wanted: self.index.search(queries, wanted, params=params), wide, self.count)
        if self.finer is None:
            return scores, rows
        return self._rescored(queries, scores, rows, max(1, min(k, self.count)))

    def _rescored(self, queries: np.ndarray, scores: np.ndarray, rows: np.ndarray, k: int):
        """The candidates ``rows`` scored again against the finer set, the best ``k`` kept."""
        valid = rows >= 0
        finer = self.finer.decoded(rows[valid])
        scores = np.full(rows.shape, -np.finfo(np.float32).max, dtype=np.float32)
        scores[valid] = np.einsum("qd,qd->q", np.repeat(queries, valid.sum(axis=1), axis=0), finer)
        return ordered(scores, rows, k)

    def decoded(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Float32 vectors of ``rows`` (all when None) as the codes give them (the centroids)."""
        wanted = np.arange(self.count) if rows is None else np.asarray(rows, dtype=np.int64)
        return self.index.reconstruct_batch(wanted)
