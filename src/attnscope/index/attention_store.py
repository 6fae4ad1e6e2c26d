"""Attention among each sentence's indexed tokens, stored so that a match's row can be read back.

For sentence s with n indexed tokens and each layer l, a (heads, n, n) block of weights, each stored
as round(w * levels) with levels = 2**bits - 1 (`attnscope.quantise`; 7 bits by default: a read weight
is within 1/254 of the model's; 8 bits: 1/510), and the block compressed with zstandard level 1 (most
bytes are near zero: 7-bit blocks shrink to about 40%, 8-bit ones to about half; 4x faster than zlib).
``attention.bin`` holds the blocks in the order they were built; ``attention_spans.npy``
(sentences * layers, 2) gives the start and end byte of sentence s, layer l at row s * layers + l,
where ``layers`` counts the stored layers and l is a layer's place among them (an index built with
``--layers`` stores only those layers' blocks).
Special tokens are not in the blocks (they are not indexed), so a row sums to the attention the token
pays to ordinary tokens.

Builds compress each batch's blocks (`compress_blocks`) and append them to the file (build.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zstandard

from ..quantise import dequantise, error_bound, quantise
from .layout import ATTENTION, SPANS

BITS = (7, 8)


def compress_blocks(blocks: Sequence[np.ndarray], bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Quantise and compress sentences' (layers, heads, n, n) float weights, one zstd frame per layer:
    (sizes, data), the frames' byte sizes in (sentence, layer) order and their bytes, concatenated."""
    parts, sizes = [], []
    compressor = zstandard.ZstdCompressor(level=1)
    for block in blocks:  # quantised whole, as one (rows, keys) matrix: a call per sentence, not per head
        codes = quantise(block.reshape(-1, block.shape[-1]), bits).reshape(block.shape)
        for layer in codes:
            parts.append(compressor.compress(layer.tobytes()))
            sizes.append(len(parts[-1]))
    return np.asarray(sizes, np.int64), np.frombuffer(b"".join(parts), dtype=np.uint8)


class AttentionStore:
    """Read access: ``layer_block(sentence, layer)`` -> (heads, n, n) stored integers; ``weights`` and
    ``rows`` -> float weights."""

    def __init__(self, directory: Path, layers: int | Sequence[int], heads: int, bits: int, data: Any = None):
        """``layers``: the number of layers (every one stored), or the stored model layers, ascending.
        ``data``: where the blocks' bytes are read (``data[start:end]`` -> uint8 array): by default
        ``attention.bin`` in ``directory``, memory-mapped; a remote index reads them as ranges
        (`remote.RemoteBytes`)."""
        self.spans = np.load(directory / SPANS)
        self.data = np.memmap(directory / ATTENTION, dtype=np.uint8, mode="r") if data is None else data
        self.stored = list(range(layers)) if isinstance(layers, int) else list(layers)
        self._slot = {layer: slot for slot, layer in enumerate(self.stored)}
        self.layers, self.heads, self.bits = len(self.stored), heads, bits
        self.error_bound = error_bound(bits)

    def prefetch(self, sentences: Sequence[int], layer: int) -> None:
        """Read the blocks of ``sentences`` at ``layer`` ahead, in one request, where the bytes are remote
        (nothing for a local file)."""
        prefetch = getattr(self.data, "prefetch", None)
        if prefetch is not None:
            rows = [sentence * self.layers + self._slot[layer] for sentence in sentences]
            prefetch([(int(self.spans[row][0]), int(self.spans[row][1])) for row in rows])

    def layer_block(self, sentence: int, layer: int) -> np.ndarray:
        """(heads, n, n) uint8 weights of one sentence at model layer ``layer`` (one of the stored layers;
        `KeyError` otherwise: searches check the layer first)."""
        start, end = self.spans[sentence * self.layers + self._slot[layer]]
        # a decompressor per call: they are cheap, and not safe to share between threads
        raw = zstandard.ZstdDecompressor().decompress(self.data[int(start) : int(end)].tobytes())
        n = int(round((len(raw) / self.heads) ** 0.5))
        return np.frombuffer(raw, dtype=np.uint8).reshape(self.heads, n, n)

    def block(self, sentence: int) -> np.ndarray:
        """(stored layers, heads, n, n) uint8 weights of one sentence, in the order of ``stored``."""
        return np.stack([self.layer_block(sentence, layer) for layer in self.stored])

    def weights(self, sentence: int) -> np.ndarray:
        """(stored layers, heads, n, n) float32 weights of one sentence."""
        return dequantise(self.block(sentence), self.bits)

    def rows(self, sentence: int, layer: int, position: int, heads: np.ndarray | list[int]) -> np.ndarray:
        """The attention of indexed token ``position`` of ``sentence`` at ``layer``, (len(heads), n)."""
        return dequantise(self.layer_block(sentence, layer)[heads, position], self.bits)
