"""A batch as a shard writes it, and what an in-process build's planning computed that its shards reuse.

Planning calibrates the quantiser on a seeded sample of batches (`plan.calibrate`): it reads and tokenises
some pieces and runs the model on some of their batches, the very batches (same pieces, same seeded
order, `plan.piece_batches`) that the shards run again. A build in one process (`build.build_index`,
engine "in-process") keeps that work in a `Reused` and its shards take it instead of redoing it: the
pieces' sentences as read and tokenised, and the sampled batches encoded as the shard would encode them
(`encode_batch`: codes with the plan's ranges, attention blocks compressed). The stored bytes are those
of a build that recomputes them (the same forward passes of the same batches, encoded by the same
function); only the time changes. Other engines (Ray, a scheduler) build their shards in other
processes and reuse nothing.

Encoded batches are kept up to `Reused.limit_bytes` (an approximate index samples up to 65,536 tokens to
train its clusters; a larger model's codes for all of them are not worth holding).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..corpus import AnnotatedSentence
from . import vectors
from .attention_store import compress_blocks
from .extract import BatchVectors, PlannedSentence, PlanSummary
from .layout import CODES

LIMIT_BYTES = 256 * 2**20
"""Encoded batches a `Reused` keeps at most (their codes and compressed attention), 256 MiB."""


@dataclass
class EncodedBatch:
    """One batch's values as a shard stores them: ``codes[kind][slot]`` (tokens, bytes per vector) uint8
    codes of each stored layer's vectors (`vectors.encode` with the plan's ranges), and the sentences'
    attention blocks quantised and compressed (`compress_blocks`: frame sizes, bytes), or None when the
    build stores no attention. ``tokens``: the batch's indexed tokens."""

    codes: dict[str, list[np.ndarray]]
    attention: tuple[np.ndarray, np.ndarray] | None
    tokens: int

    @property
    def nbytes(self) -> int:
        held = sum(c.nbytes for sets in self.codes.values() for c in sets)
        return held + (sum(a.nbytes for a in self.attention) if self.attention is not None else 0)


def encode_batch(
    values: BatchVectors, ranges: dict[str, list[vectors.Ranges]], vector_bits: int, attention_bits: int | None
) -> EncodedBatch:
    """``values`` encoded for storing: codes of every (kind, stored layer) with ``ranges`` at ``vector_bits``,
    and the attention blocks at ``attention_bits`` (None: no attention stored)."""
    codes = {
        kind: [
            vectors.encode(layer, vector_bits, ranges[kind][slot]) for slot, layer in enumerate(getattr(values, kind))
        ]
        for kind in CODES
    }
    attention = compress_blocks(values.attention, attention_bits) if attention_bits is not None else None
    return EncodedBatch(codes, attention, len(values.hidden[0]))


@dataclass
class Reused:
    """Work of an in-process build's planning that its shards take: ``pieces[number]`` (the piece's sentences
    as read, its planned sentences, their `PlanSummary`) and ``batches[(piece, batch)]`` (the `EncodedBatch`
    of a piece's batch, numbered in `plan.piece_batches` order). ``key`` is the plan's key once planned: a
    shard of another plan takes nothing. Each entry is taken once (`take_piece`, `take_batch`)."""

    key: str | None = None
    limit_bytes: int = LIMIT_BYTES
    pieces: dict[int, tuple[list[AnnotatedSentence], list[PlannedSentence], PlanSummary]] = field(default_factory=dict)
    batches: dict[tuple[int, int], EncodedBatch] = field(default_factory=dict)
    held_bytes: int = 0

    def keep_batch(self, piece: int, batch: int, encoded: EncodedBatch) -> None:
        """Keep one encoded batch, unless that would pass ``limit_bytes``."""
        if self.held_bytes + encoded.nbytes <= self.limit_bytes:
            self.batches[(piece, batch)] = encoded
            self.held_bytes += encoded.nbytes

    def take_piece(self, key: str, piece: int) -> tuple[list[AnnotatedSentence], list[PlannedSentence], Any] | None:
        return self.pieces.pop(piece, None) if key == self.key else None

    def take_batch(self, key: str, piece: int, batch: int) -> EncodedBatch | None:
        if key != self.key:
            return None
        found = self.batches.pop((piece, batch), None)
        if found is not None:
            self.held_bytes -= found.nbytes
        return found
