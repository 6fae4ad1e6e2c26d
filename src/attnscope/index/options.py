"""How an index is built: the options every step of a build (plan, shards, commit) reads."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InputError
from . import vectors
from .attention_store import BITS as ATTENTION_BITS
from .extract import LONG_POLICIES

APPROXIMATE = ("auto", "always", "never")
ATTENTION = ("stored", "recomputed")
"""Where a search reads its matches' attention: blocks stored in the index, or recomputed at query time
with the query's model (an index without attention files: `attention_source.py`)."""


@dataclass(frozen=True)
class BuildOptions:
    """How to build: padded tokens per batch, bits per stored vector value, what to do with
    sentences longer than the model takes, batches used to calibrate the quantiser's ranges; ``layers``:
    the model layers to store vectors and attention for (``--layers``; None: every layer), checked
    against the model by `chosen_layers` when the build starts. ``piece_tokens``: about how many tokens
    are batched together (batches never cross pieces; it changes which sentences share a batch, so it is
    part of what was built); ``shard_tokens``: about how many tokens a shard holds (the unit of work a
    worker takes, and of resuming; it changes nothing stored). ``codes``: "sq" (``vector_bits`` per value,
    scalar-quantised) or "pq<m>" (``--codes pq96``: ``m`` bytes a vector, product-quantised; see
    `pq`). ``attention`` (`ATTENTION`): "stored"
    keeps every sentence's attention blocks; "recomputed" keeps none, and a search recomputes the
    attention of its matched sentences with the query's model (``--attention recomputed``)."""

    batch_tokens: int = 4096
    vector_bits: int = 8
    long: str = "truncate"
    calibration_batches: int = 4
    seed: int = 0
    approximate: str = "auto"
    attention_bits: int = 7
    layers: tuple[int, ...] | None = None
    piece_tokens: int = 65_536
    shard_tokens: int = 262_144
    codes: str = "sq"
    attention: str = "stored"

    def check(self) -> None:
        if self.approximate not in APPROXIMATE:
            raise InputError(f"approximate={self.approximate!r} is not a choice: use one of {', '.join(APPROXIMATE)}")
        if self.attention not in ATTENTION:
            raise InputError(
                f"attention={self.attention!r} (--attention) is not a choice: use one of {', '.join(ATTENTION)}"
            )
        if self.attention_bits not in ATTENTION_BITS:
            raise InputError(
                f"attention_bits={self.attention_bits} is not supported: use one of {list(ATTENTION_BITS)}"
            )
        if self.vector_bits not in vectors.QTYPES:
            raise InputError(f"vector_bits={self.vector_bits} is not supported: use one of {sorted(vectors.QTYPES)}")
        if self.long not in LONG_POLICIES:
            raise InputError(
                f"long={self.long!r} is not a policy for over-long sentences: use one of {', '.join(LONG_POLICIES)}"
            )
        for name, value in (("piece_tokens", self.piece_tokens), ("shard_tokens (--shard-tokens)", self.shard_tokens)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a whole number of tokens, at least 1, got {value!r}")
        if self.codes != "sq" and re.fullmatch(r"pq[1-9]\d*", self.codes) is None:
            raise InputError(f"codes (--codes) {self.codes!r} is not a choice: use sq, or pq<m> such as pq96")
        if self.calibration_batches < 1:
            raise InputError(f"calibration_batches must be at least 1, got {self.calibration_batches}")
        if self.layers is not None:
            layers = list(self.layers)
            if not layers:
                raise InputError("layers (--layers) is empty: name at least one layer to store, e.g. --layers 0,8")
            if any(isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in layers):
                raise InputError(f"layers (--layers) must be layer numbers from 0, got {layers}")
            if len(set(layers)) != len(layers):
                raise InputError(f"layers (--layers) names a layer twice: {layers}")


def chosen_layers(layers: tuple[int, ...] | None, count: int, model: str) -> list[int]:
    """The model layers a build stores, ascending: ``layers`` checked against the model's ``count``
    layers (every layer when None). Raises `InputError` naming the layers out of range."""
    if layers is None:
        return list(range(count))
    outside = [x for x in layers if not 0 <= x < count]
    if outside:
        raise InputError(
            f"layers (--layers) {', '.join(map(str, outside))} out of range: model {model!r} has "
            f"{count} layers, numbered 0-{count - 1}"
        )
    return sorted(layers)


def options_from_dict(raw: dict) -> BuildOptions:
    """The `BuildOptions` a plan recorded (``dataclasses.asdict`` of them, read back from JSON)."""
    layers = raw.get("layers")
    return BuildOptions(**{**raw, "layers": None if layers is None else tuple(layers)})
