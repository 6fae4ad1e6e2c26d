"""Vectors for `bench/scale.py --search`: the default model's real vectors on EWT, a 768-wide synthetic
set shaped like them, and many vectors resampled from them with noise, generated one chunk at a time.

- `corpus_vectors`: every indexed EWT dev+test token's unit vectors (hidden states and head embeddings,
  as `index.extract` makes them) at the chosen layers of the default model (all-MiniLM-L6-v2, 384
  wide: no BERT-base checkpoint is available offline), cached as float32 in an .npz.
- `anisotropic`: a synthetic set ``width`` wide with the real vectors' anisotropy: their mean direction
  (of the same share of the norm) and their covariance spectrum stretched to ``width`` (eigenvalue
  ``i`` of the 768-wide set is eigenvalue ``i * 384 / 768`` of the real one, interpolated), in random
  directions, drawn as a mixture of ``clusters`` Gaussians (centres take 60% of the variance), unit
  length. Its own covariance spectrum and mean cosine are printed beside the real set's.
- `resampled_chunk`: chunk ``c`` of a large set: real vectors picked at random plus Gaussian noise
  scaled per dimension by the real set's spread (``noise`` times it), unit length; the same ``seed``
  and ``c`` give the same chunk, so a set of 1e7 is streamed, never held as floats.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def corpus_vectors(cache: Path, layers: tuple[int, ...], corpus: Path) -> dict[str, np.ndarray]:
    """{"hidden": (layers, tokens, 384), "heads": (layers, tokens, 384)} float32 unit vectors of every
    indexed token of ``corpus`` at ``layers``, from ``cache`` when it holds them."""
    if cache.is_file():
        with np.load(cache) as saved:
            if tuple(saved["layers"]) == tuple(layers):
                return {"hidden": saved["hidden"], "heads": saved["heads"]}
    import attnscope
    from attnscope.corpus import open_corpus
    from attnscope.index.extract import extract_batch, number_rows, plan_batches, plan_sentences

    handle = attnscope.load("default")
    planned, _ = plan_sentences(handle, open_corpus(corpus).sentences)
    batches = plan_batches([len(p.tokens) for p in planned], 4096)
    number_rows(planned, batches)
    total = sum(p.rows for p in planned)
    width = int(handle.model.config.hidden_size)
    hidden = np.zeros((len(layers), total, width), np.float32)
    heads = np.zeros_like(hidden)
    for batch in batches:
        items = [planned[i] for i in batch]
        values = extract_batch(handle, items)
        rows = np.concatenate([np.arange(p.first_row, p.first_row + p.rows) for p in items])
        hidden[:, rows], heads[:, rows] = values.hidden[list(layers)], values.heads[list(layers)]
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, layers=np.asarray(layers), hidden=hidden, heads=heads)
    return {"hidden": hidden, "heads": heads}


def spectrum(vectors: np.ndarray, sample: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The covariance eigenvalues (descending) and mean vector of a seeded sample of ``vectors``."""
    rng = np.random.default_rng(seed)
    taken = vectors[rng.choice(len(vectors), size=min(sample, len(vectors)), replace=False)].astype(np.float64)
    mean = taken.mean(axis=0)
    values = np.linalg.eigvalsh(np.cov(taken, rowvar=False))[::-1]
    return np.clip(values, 0, None), mean


def mean_cosine(vectors: np.ndarray, pairs: int = 20_000, seed: int = 0) -> float:
    """Mean cosine of random pairs of vectors (0 for isotropic data; BERT-like sets are well above)."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(len(vectors), size=(2, pairs))
    dots = np.einsum("ij,ij->i", vectors[a], vectors[b])
    return float((dots / np.linalg.norm(vectors[a], axis=1) / np.linalg.norm(vectors[b], axis=1)).mean())


def anisotropic(real: np.ndarray, width: int, count: int, seed: int = 0, clusters: int = 2000) -> np.ndarray:
    """(count, width) float32 unit vectors shaped like ``real`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    values, mean = spectrum(real, seed=seed)
    stretched = np.interp(np.arange(width) * len(values) / width, np.arange(len(values)), values)
    stretched *= values.sum() / stretched.sum()  # the same total variance
    basis, _ = np.linalg.qr(rng.standard_normal((width, width)))
    direction = rng.standard_normal(width)
    direction /= np.linalg.norm(direction)
    offset = direction * np.linalg.norm(mean)
    scale = (basis * np.sqrt(stretched)).T  # rows: a standard normal row times this has the spectrum
    centres = offset + np.sqrt(0.6) * rng.standard_normal((clusters, width)) @ scale
    picked = rng.integers(clusters, size=count)
    out = centres[picked] + np.sqrt(0.4) * rng.standard_normal((count, width)) @ scale
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32)


def resampled_chunk(real: np.ndarray, spread: np.ndarray, start: int, size: int, noise: float, seed: int) -> np.ndarray:
    """Rows ``start .. start + size - 1`` of the large resampled set: (size, width) float32 unit vectors,
    the same for the same ``seed`` and ``start`` (one generator per chunk start)."""
    rng = np.random.default_rng([seed, start])
    picked = real[rng.integers(len(real), size=size)]
    out = picked + noise * spread * rng.standard_normal(picked.shape, dtype=np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32, copy=False)
