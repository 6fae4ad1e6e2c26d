"""The files of an index directory: their names, and how the vector sets' codes files are read back.

The one place that knows them: the builder (build.py, tables.py, attention_store.py, manifest.py) writes
these files and the reader (search.py) opens them, both by importing from here.

=========================  ====================================================================
``manifest.json``          what was indexed, with which model and options (`manifest.Manifest`)
``tokens.parquet``         one row per indexed token: its sentence, position and metadata
``sentences.parquet``      one row per sentence: text, source file and line, tokens per model
``ranges.npz``             each vector kind's per-layer quantiser ranges (``<kind>_low``/``_span``)
``<kind>.<l>.codes.zst``   an exact vector set: (tokens, code_size) uint8 codes, zstd frames
``ivf.<kind>.<l>.faiss``   an approximate (IVF) vector set, instead of the codes file
``attention.bin``          every (sentence, layer) attention block, quantised and zstd-compressed
``attention_spans.npy``    (sentences * layers, 2) start and end byte of each block in attention.bin
=========================  ====================================================================
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import zstandard

MANIFEST = "manifest.json"
TOKENS = "tokens.parquet"
SENTENCES = "sentences.parquet"
RANGES = "ranges.npz"
ATTENTION = "attention.bin"
SPANS = "attention_spans.npy"
CODES = ("hidden", "heads")
"""The kinds of vector: the hidden state after each layer, and each layer's head embedding."""


def codes_file(kind: str, layer: int) -> str:
    """The stored codes of an exact vector set: ``kind`` at ``layer``, (tokens, code_size) uint8, zstd."""
    return f"{kind}.{layer}.codes.zst"


def ivf_file(kind: str, layer: int) -> str:
    """The file of an approximate vector set: ``kind`` "hidden" or "heads" at ``layer``."""
    return f"ivf.{kind}.{layer}.faiss"


def read_codes(path: Path, tokens: int) -> np.ndarray:
    """The (tokens, code_size) uint8 codes of one vector set file (`codes_file`)."""
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(path.read_bytes()), read_across_frames=True) as reader:
        raw = reader.read()
    return np.frombuffer(raw, dtype=np.uint8).reshape(tokens, -1)
