"""Attention among each sentence's indexed tokens, stored so that a match's row can be read back.

For sentence s with n indexed tokens and each layer l, a (heads, n, n) block of weights, each stored
as round(w * levels) with levels = 2**bits - 1 (7 bits by default: a read weight is within 1/254 of
the model's; 8 bits: 1/510), and the block compressed with zstandard level 1 (most bytes are near
zero: 7-bit blocks shrink to about 40%, 8-bit ones to about half; 4x faster than zlib).
``attention.bin`` holds the blocks in (sentence, layer) order; ``attention_offsets.npy``
(sentences * layers + 1,) says where each starts.
Special tokens are not in the blocks (they are not indexed), so a row sums to the attention the token
pays to ordinary tokens.

Builds write one file of blocks per batch (`write_batch`), in any order; `assemble` joins them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import zstandard

ATTENTION = "attention.bin"
OFFSETS = "attention_offsets.npy"
BITS = (7, 8)


def levels(bits: int) -> int:
    return 2**bits - 1


def error_bound(bits: int) -> float:
    """Largest difference between a stored weight and the model's."""
    return 0.5 / levels(bits)


def quantise(weights: np.ndarray, bits: int) -> np.ndarray:
    top = levels(bits)
    return np.clip(np.rint(weights * top), 0, top).astype(np.uint8)


def write_batch(path: Path, sentences: Sequence[int], blocks: Sequence[np.ndarray], bits: int,
                extra: dict[str, np.ndarray] | None = None) -> None:
    """One batch's blocks: ``blocks[i]`` is sentence ``sentences[i]``'s (layers, heads, n, n) float weights;
    ``extra`` arrays are stored in the same part file (the batch's vector codes)."""
    parts, sizes = [], []
    compressor = zstandard.ZstdCompressor(level=1)
    for block in blocks:
        for layer in block:
            data = compressor.compress(quantise(layer, bits).tobytes())
            parts.append(data)
            sizes.append(len(data))
    payload = np.frombuffer(b"".join(parts), dtype=np.uint8)
    temporary = path.with_name(path.name + ".tmp.npz")
    np.savez(temporary, sentences=np.asarray(sentences, np.int64), sizes=np.asarray(sizes, np.int64), data=payload,
             **(extra or {}))
    temporary.replace(path)


def assemble(directory: Path, batch_files: Sequence[Path], sentences: int, layers: int) -> None:
    """Join batch files into ``attention.bin`` in (sentence, layer) order, with its offsets."""
    where: list[tuple[int, int, int] | None] = [None] * sentences  # sentence -> (file, first size index, start byte)
    loaded = []
    for f, path in enumerate(batch_files):
        with np.load(path) as archive:  # read each array once (NpzFile re-reads on every access)
            batch = {name: archive[name] for name in ("sentences", "sizes", "data")}
        loaded.append(batch)
        starts = np.concatenate([[0], np.cumsum(batch["sizes"])])
        for i, sentence in enumerate(batch["sentences"]):
            where[int(sentence)] = (f, i * layers, int(starts[i * layers]))
    offsets = np.zeros(sentences * layers + 1, dtype=np.int64)
    with open(directory / ATTENTION, "wb") as out:
        position = 0
        for s, place in enumerate(where):
            if place is None:
                raise RuntimeError(f"attention of sentence {s} is missing from the batch files")
            f, first, start = place
            sizes = loaded[f]["sizes"][first:first + layers]
            out.write(loaded[f]["data"][start:start + int(sizes.sum())].tobytes())
            offsets[s * layers + 1:(s + 1) * layers + 1] = position + np.cumsum(sizes)
            position += int(sizes.sum())
    np.save(directory / OFFSETS, offsets)


class AttentionStore:
    """Read access: ``layer_block(sentence, layer)`` -> (heads, n, n) stored integers; ``weights`` and
    ``rows`` -> float weights."""

    def __init__(self, directory: Path, layers: int, heads: int, bits: int):
        self.offsets = np.load(directory / OFFSETS)
        size = int(self.offsets[-1])
        self.data = np.memmap(directory / ATTENTION, dtype=np.uint8, mode="r", shape=(size,))
        self.layers, self.heads, self.levels = layers, heads, levels(bits)
        self.error_bound = error_bound(bits)

    def layer_block(self, sentence: int, layer: int) -> np.ndarray:
        """(heads, n, n) uint8 weights of one sentence at one layer."""
        i = sentence * self.layers + layer
        # a decompressor per call: they are cheap, and not safe to share between threads
        raw = zstandard.ZstdDecompressor().decompress(self.data[int(self.offsets[i]):int(self.offsets[i + 1])].tobytes())
        n = int(round((len(raw) / self.heads) ** 0.5))
        return np.frombuffer(raw, dtype=np.uint8).reshape(self.heads, n, n)

    def block(self, sentence: int) -> np.ndarray:
        """(layers, heads, n, n) uint8 weights of one sentence."""
        return np.stack([self.layer_block(sentence, layer) for layer in range(self.layers)])

    def weights(self, sentence: int) -> np.ndarray:
        """(layers, heads, n, n) float32 weights of one sentence."""
        return self.block(sentence).astype(np.float32) / self.levels

    def rows(self, sentence: int, layer: int, position: int, heads: np.ndarray | list[int]) -> np.ndarray:
        """The attention of indexed token ``position`` of ``sentence`` at ``layer``, (len(heads), n)."""
        return self.layer_block(sentence, layer)[heads, position].astype(np.float32) / self.levels
