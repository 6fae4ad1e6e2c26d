"""The first step of a sharded build: what each shard indexes, and what every shard shares.

A plan cuts the corpus into pieces (byte ranges of its files at sentence or paragraph boundaries, found
without parsing or tokenising; or sentence ranges of a corpus already in memory) and groups consecutive
pieces into shards of about ``shard_tokens`` tokens (estimated from bytes or words). Batches are formed
inside each piece, never across pieces, so a token's vectors do not depend on how pieces are grouped
into shards: a build of 1 shard and one of 40 store the same codes for every row.

What the shards share is computed once here, from a seeded sample of pieces: the quantiser's
per-dimension ranges of every stored vector set and, for approximate indexes, the trained coarse
quantiser (IVF centroids) each shard adds its vectors to. Whether the sets are approximate
(``approximate="auto"``) and how many lists they get follow from the corpus's tokens as estimated from
the sample: the tokens its pieces hold per token their bytes or words promised (`Sampled`). The plan's
files (``plan.json`` last) are written into the build's `Store`; ``plan.json``'s ``key`` identifies the
build, and every shard marker and the commit check it.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..capture.loading import ModelHandle
from ..corpus import AnnotatedSentence
from ..errors import InputError
from . import pq, vectors
from .extract import BatchVectors, extract_batch, plan_batches, plan_sentences
from .layout import CODES, RANGES
from .manifest import MODEL_FINGERPRINT_VERSION, model_fingerprint, tokenizer_fingerprint
from .reuse import Reused, encode_batch
from .storage import Store
from .unreadable import damaged_plan, decoding

PLAN = "plan.json"
PLAN_FORMAT = "attnscope-index-plan"
PLAN_VERSION = 1
BYTES_PER_TOKEN = {"conllu": 60.0, "text": 4.5}
"""Bytes of a corpus file per model token, to size shards without tokenising (about right for English
with a WordPiece or BPE vocabulary: a CoNLL-U token line is 40-80 bytes, raw text 4-5 bytes a token)."""
TOKENS_PER_WORD = 1.3
APPROXIMATE_ABOVE = 1_000_000
"""With ``approximate="auto"``, corpora estimated above this many tokens get approximate (IVF) vector sets."""


class StaleBuildError(InputError):
    """A build's folder holds the plan of another build (other model, corpus or options)."""


def trained_file(kind: str, layer: int) -> str:
    """The plan's trained, empty IVF index of one vector set (its centroids and quantiser ranges)."""
    return f"trained.{kind}.{layer}.faiss"


@dataclass(frozen=True)
class Piece:
    """A run of the corpus that is batched on its own: ``sentences`` [start, end) of an in-memory corpus
    (``file`` = -1), or bytes [start, end) of corpus file ``file`` beginning at 1-based ``line`` after
    ``before`` sentences (CoNLL-U) or paragraphs (text) of that file; ``digest``: SHA-256 of those bytes."""

    file: int
    start: int
    end: int
    line: int = 0
    before: int = 0
    digest: str = ""
    estimated_tokens: int = 0


@dataclass(frozen=True)
class ShardSpec:
    """Shard ``number``: its pieces, in corpus order, and the tokens estimated for them."""

    number: int
    pieces: tuple[Piece, ...]

    @property
    def estimated_tokens(self) -> int:
        return sum(p.estimated_tokens for p in self.pieces)

    @property
    def folder(self) -> str:
        return shard_folder(self.number)


def shard_folder(number: int) -> str:
    return f"shards/{number:05d}"


@dataclass(frozen=True)
class Plan:
    """A build's plan (``plan.json``): the model, the corpus, the options, the shards and ``key``, the
    SHA-256 of all of them (the build's identity), plus the model's shapes that the commit records."""

    key: str
    model: str
    model_fingerprint: str
    tokenizer_fingerprint: str
    corpus: dict[str, Any]
    options: dict[str, Any]
    stored_layers: list[int]
    layers: int
    heads: int
    hidden_size: int
    approximate_lists: int
    shards: list[ShardSpec]
    revision: str | None = None
    created: str = ""
    format: str = PLAN_FORMAT
    format_version: int = PLAN_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    model_fingerprint_version: int = 1
    """Which `manifest.model_fingerprint` made ``model_fingerprint`` (plans written before version 2: 1)."""

    @property
    def estimated_tokens(self) -> int:
        """The corpus's tokens as the plan estimated them from its calibration sample (``extra``), or (a
        plan without that estimate) from the pieces' bytes or words."""
        return int(self.extra.get("estimated_tokens", sum(s.estimated_tokens for s in self.shards)))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> Plan:
        """The plan in ``text``; `InputError` naming ``where`` when it is not one this attnscope reads."""
        try:
            raw = json.loads(text)
            if raw.get("format") != PLAN_FORMAT or raw.get("format_version") != PLAN_VERSION:
                raise InputError(f"{where} is not an attnscope build plan of version {PLAN_VERSION}")
            shards = [ShardSpec(s["number"], tuple(Piece(**p) for p in s["pieces"])) for s in raw.pop("shards")]
            return cls(**raw, shards=shards)
        except (ValueError, TypeError, KeyError) as error:
            raise InputError(f"{where} is not a readable build plan ({error}): plan the build again") from None


def identity_key(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def group_shards(pieces: Sequence[Piece], shard_tokens: int) -> list[ShardSpec]:
    """Consecutive pieces grouped into shards of at least ``shard_tokens`` estimated tokens (the last may
    hold fewer); a piece is never split."""
    if shard_tokens < 1:
        raise InputError(f"shard_tokens (--shard-tokens) must be at least 1, got {shard_tokens}")
    shards: list[ShardSpec] = []
    current: list[Piece] = []
    for piece in pieces:
        current.append(piece)
        if sum(p.estimated_tokens for p in current) >= shard_tokens:
            shards.append(ShardSpec(len(shards), tuple(current)))
            current = []
    if current:
        shards.append(ShardSpec(len(shards), tuple(current)))
    return shards


def sentence_pieces(sentences: Sequence[AnnotatedSentence], piece_tokens: int) -> list[Piece]:
    """Pieces of an in-memory corpus: runs of whole sentences of about ``piece_tokens`` tokens
    (estimated from word counts)."""
    pieces, start, words = [], 0, 0
    for number, sentence in enumerate(sentences):
        words += len(sentence.words) or len(sentence.text.split())
        if words * TOKENS_PER_WORD >= piece_tokens:
            pieces.append(Piece(-1, start, number + 1, estimated_tokens=int(words * TOKENS_PER_WORD)))
            start, words = number + 1, 0
    if start < len(sentences):
        pieces.append(Piece(-1, start, len(sentences), estimated_tokens=max(1, int(words * TOKENS_PER_WORD))))
    return pieces


PieceReader = Callable[[Piece], Sequence[AnnotatedSentence]]
"""Reads the sentences of one piece (from the corpus files, or a corpus in memory)."""


def piece_batches(lengths: Sequence[int], batch_tokens: int, seed: int, piece: int) -> list[list[int]]:
    """The batches of one piece (`extract.plan_batches`, seeded by the build's seed and the piece's number)."""
    return plan_batches(lengths, batch_tokens, seed + 7919 * piece)


PQ_TRAINING = 39 * 256
"""Sampled vectors a product quantiser trains on at least (faiss's advice: 39 per centroid, 256 centroids)."""
TRAINING_VECTORS = 65_536
"""At most this many sampled vectors train an IVF's centroids (the lists are capped to keep 39 per list)."""


def ivf_lists(estimated_tokens: int) -> int:
    """Coarse clusters for an approximate index of about ``estimated_tokens`` vectors: `vectors.inverted_lists`,
    capped so that the training sample (`TRAINING_VECTORS`) holds 39 vectors per list (faiss's minimum)."""
    return max(1, min(vectors.inverted_lists(estimated_tokens), TRAINING_VECTORS // 39))


@dataclass
class Sampled:
    """What the calibration sample measured: the pieces it tokenised, their estimated tokens (from bytes
    or words) and the tokens they hold (rows of the index: non-special tokens, after truncation), so
    that the corpus's tokens are estimated from the measured ratio (`estimate`)."""

    pieces: int = 0
    estimated: int = 0
    tokens: int = 0

    def estimate(self, estimated_total: int) -> int:
        """The corpus's tokens: ``estimated_total`` (the pieces' estimates summed) times the sample's
        measured tokens per estimated token (the estimate itself while nothing is measured)."""
        if not self.estimated:
            return estimated_total
        return max(1, round(estimated_total * self.tokens / self.estimated))


def sample_batches(
    handle: ModelHandle,
    pieces: Sequence[Piece],
    read: PieceReader,
    options: Any,
    stored: list[int],
    wanted_tokens: Callable[[], int],
    sampled: Sampled | None = None,
    reused: Reused | None = None,
) -> Iterator[tuple[int, int, BatchVectors]]:
    """A seeded sample of batches, as (piece number, batch number in the piece, values): pieces in a seeded
    random order, each piece's batches in its own seeded order, until ``options.calibration_batches``
    batches and ``wanted_tokens()`` tokens are taken (so a one-piece corpus gives its first batches, as an
    unsharded build takes them). Each piece read is tokenised whole; ``sampled`` counts its estimated and
    measured tokens, and ``reused`` keeps it (for the shard that builds it)."""
    order = np.random.default_rng(options.seed).permutation(len(pieces)) if len(pieces) > 1 else [0]
    batches = tokens = 0
    for number in order:
        sentences = list(read(pieces[int(number)]))
        planned, summary = plan_sentences(handle, sentences, options.long)
        if reused is not None:
            reused.pieces[int(number)] = (sentences, planned, summary)
        if sampled is not None:
            sampled.pieces += 1
            sampled.estimated += pieces[int(number)].estimated_tokens
            sampled.tokens += sum(p.rows for p in planned)
        lengths = [len(p.tokens) for p in planned]
        for j, batch in enumerate(piece_batches(lengths, options.batch_tokens, options.seed, int(number))):
            values = extract_batch(handle, [planned[i] for i in batch], stored)
            batches, tokens = batches + 1, tokens + len(values.hidden[0])
            yield int(number), j, values
            if batches >= options.calibration_batches and tokens >= wanted_tokens():
                return


@dataclass(frozen=True)
class Calibration:
    """What `calibrate` decided: each vector set's quantiser ranges, the IVF lists (0: exact sets) and
    the corpus's estimated tokens (`Sampled.estimate`) with what it was measured on."""

    ranges: dict[str, list[vectors.Ranges]]
    lists: int
    estimate: dict[str, Any]


def calibrate(
    store: Store,
    handle: ModelHandle,
    pieces: Sequence[Piece],
    read: PieceReader,
    options: Any,
    stored: list[int],
    widths: dict[str, int],
    reused: Reused | None = None,
) -> Calibration:
    """Compute and write what the shards share, from a seeded sample (`sample_batches`): each vector set's
    quantiser ranges, from the first ``calibration_batches`` sampled batches; the corpus's token count,
    estimated from the sampled pieces' measured tokens per estimated token (`Sampled`); whether the sets
    are approximate (``options.approximate``: "auto" when that estimate exceeds `APPROXIMATE_ABOVE`) and
    their IVF lists (`ivf_lists` of the estimate); for approximate sets their trained, empty IVF index
    (centroids from up to `TRAINING_VECTORS` sampled vectors as their codes decode); with product codes
    (``options.codes`` "pq<m>") a trained, empty product quantiser (`pq.train_pq`, the lists or one
    cluster), trained on at least `PQ_TRAINING` sampled vectors. With ``reused``, the pieces read and the
    sampled batches encoded as a shard stores them are kept there (`reuse`). Raises `InputError` when the
    sample holds no token."""
    pq_pieces = int(options.codes[2:]) if options.codes.startswith("pq") else 0
    estimated = sum(p.estimated_tokens for p in pieces)
    sampled = Sampled()
    lists: list[int] = []  # decided once the first piece is measured

    def wanted() -> int:
        if not lists:
            tokens = sampled.estimate(estimated)
            approximate = options.approximate == "always" or (
                options.approximate == "auto" and tokens > APPROXIMATE_ABOVE
            )
            lists.append(ivf_lists(tokens) if approximate else 0)
        return min(max(50 * lists[0], PQ_TRAINING if pq_pieces else 0), TRAINING_VECTORS)

    first: list[BatchVectors] = []
    unencoded: list[tuple[int, int, BatchVectors]] = []  # sampled batches waiting for the ranges
    kept: dict[str, list[list[np.ndarray]]] = {kind: [[] for _ in stored] for kind in CODES}
    ranges: dict[str, list[vectors.Ranges]] = {}
    for piece, number, values in sample_batches(handle, pieces, read, options, stored, wanted, sampled, reused):
        if reused is not None:
            unencoded.append((piece, number, values))
        if len(first) < options.calibration_batches:
            first.append(values)
            if len(first) == options.calibration_batches:
                ranges = _ranges(first, len(stored))
        for kind in CODES:  # the training sample is kept as codes: a quarter of the floats' memory
            for slot in range(len(stored)):
                kept[kind][slot].append(getattr(values, kind)[slot])
        if ranges and wanted():
            _encode_kept(kept, ranges, options.vector_bits)
        if ranges and reused is not None:
            _keep_encoded(reused, unencoded, ranges, options)
    if sum(len(v.hidden[0]) for v in first) == 0:
        raise InputError("the corpus has no tokens to index (every sentence was empty or skipped)")
    if not ranges:
        ranges = _ranges(first, len(stored))
    if reused is not None:
        _keep_encoded(reused, unencoded, ranges, options)
    wanted()
    save_ranges(store, ranges)
    if lists[0] or pq_pieces:
        _encode_kept(kept, ranges, options.vector_bits)
        for kind in CODES:
            for slot, layer in enumerate(stored):
                codes = np.concatenate(kept[kind][slot])[:TRAINING_VECTORS]
                sample = vectors.decode(codes, widths[kind], options.vector_bits, ranges[kind][slot])
                if pq_pieces:
                    trained = pq.train_pq(sample, pq_pieces, max(1, lists[0]), options.seed)
                else:
                    trained = vectors.trained_ivf(
                        sample, widths[kind], options.vector_bits, ranges[kind][slot], lists[0], options.seed
                    )
                store.write(trained_file(kind, layer), vectors.serialise(trained))
    estimate = {
        "estimated_tokens": sampled.estimate(estimated),
        "estimated_tokens_before_sample": estimated,
        "sampled_pieces": sampled.pieces,
        "sampled_tokens": sampled.tokens,
        "sampled_estimated_tokens": sampled.estimated,
    }
    return Calibration(ranges, lists[0], estimate)


def _keep_encoded(
    reused: Reused,
    unencoded: list[tuple[int, int, BatchVectors]],
    ranges: dict[str, list[vectors.Ranges]],
    options: Any,
) -> None:
    """Encode the waiting sampled batches as a shard stores them into ``reused``; empties ``unencoded``."""
    attention_bits = options.attention_bits if options.attention == "stored" else None
    for piece, number, values in unencoded:
        reused.keep_batch(piece, number, encode_batch(values, ranges, options.vector_bits, attention_bits))
    unencoded.clear()


def _ranges(sample: Sequence[BatchVectors], layers: int) -> dict[str, list[vectors.Ranges]]:
    return {
        kind: [
            vectors.Ranges.from_sample(np.concatenate([getattr(v, kind)[slot] for v in sample]))
            for slot in range(layers)
        ]
        for kind in CODES
    }


def _encode_kept(kept: dict[str, list[list[np.ndarray]]], ranges: dict[str, list[vectors.Ranges]], bits: int) -> None:
    """Replace the float arrays among ``kept`` by their codes (uint8), in place."""
    for kind in CODES:
        for slot, arrays in enumerate(kept[kind]):
            for i, array in enumerate(arrays):
                if array.dtype != np.uint8:
                    arrays[i] = vectors.encode(array, bits, ranges[kind][slot])


def save_ranges(store: Store, ranges: dict[str, list[vectors.Ranges]]) -> None:
    """Write ``ranges.npz``: each kind's per-stored-layer ``low`` and ``span``, stacked."""
    saved: dict[str, Any] = {}
    for kind in CODES:
        saved[f"{kind}_low"] = np.stack([r.low for r in ranges[kind]])
        saved[f"{kind}_span"] = np.stack([r.span for r in ranges[kind]])
    buffer = io.BytesIO()
    np.savez(buffer, **saved)
    store.write(RANGES, buffer.getvalue())


def vector_widths(handle: ModelHandle) -> dict[str, int]:
    """The width of each kind of vector an index of ``handle`` stores: its hidden size, and its heads times
    their width (the head embedding)."""
    shape = handle.stacks[handle.main_stack]
    return {"hidden": int(handle.model.config.hidden_size), "heads": shape.heads * shape.head_dim}


def check_codes(handle: ModelHandle, codes: str) -> None:
    """Refuse ``--codes pq<m>`` unless m divides every vector width of ``handle`` (`pq.parse_codes`), before
    anything is read or written."""
    if codes.startswith("pq"):
        for width in sorted(set(vector_widths(handle).values())):
            pq.parse_codes(codes, width)


def load_ranges(store: Store, layers: int) -> dict[str, list[vectors.Ranges]]:
    """The ranges `save_ranges` wrote, for ``layers`` stored layers."""
    with decoding(store.path(RANGES), damaged_plan(store.path(""))), np.load(io.BytesIO(store.read(RANGES))) as archive:
        saved = dict(archive)
    return {
        kind: [vectors.Ranges(saved[f"{kind}_low"][slot], saved[f"{kind}_span"][slot]) for slot in range(layers)]
        for kind in CODES
    }


def model_identity(handle: ModelHandle) -> dict[str, Any]:
    return {
        "model": handle.name,
        "model_fingerprint": model_fingerprint(handle.model),
        "tokenizer_fingerprint": tokenizer_fingerprint(handle.tokenizer),
    }


def created_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def read_plan(store: Store) -> Plan | None:
    """The plan in ``store``, or None when it has none. Raises `InputError` for an unreadable one."""
    if not store.exists(PLAN):
        return None
    return Plan.from_json(store.read(PLAN).decode("utf-8"), store.path(PLAN))


def build_identity(
    handle: ModelHandle, corpus: dict[str, Any], pieces: Sequence[Piece], options: Any
) -> dict[str, Any]:
    """What identifies a build (its plan's ``key`` is the SHA-256 of it, `identity_key`): the model's
    identity, the corpus, the options, the shards and what follows from them. Computed without running
    the model, so a rerun can tell its build from another's. Raises `InputError` for bad options, an
    encoder-decoder model or a corpus without pieces."""
    from .options import chosen_layers

    options.check()
    if handle.kind == "encoder-decoder":
        raise InputError("indexing encoder-decoder models is not supported yet: use an encoder or a decoder model")
    if not pieces:
        raise InputError(f"corpus {corpus.get('name')!r} has nothing to index (no sentences)")
    shape = handle.stacks[handle.main_stack]
    chosen_layers(options.layers, shape.layers, handle.name)
    shards = group_shards(pieces, options.shard_tokens)
    return {
        **model_identity(handle),
        "corpus": corpus,
        "options": asdict(options),
        "shards": [asdict(s) for s in shards],
    }


def make_plan(
    store: Store,
    handle: ModelHandle,
    corpus: dict[str, Any],
    pieces: Sequence[Piece],
    read: PieceReader,
    options: Any,
    reused: Reused | None = None,
) -> Plan:
    """Plan a build of ``pieces`` (read by ``read``) under ``handle`` into ``store``: the shards, the
    quantiser ranges and, for an approximate index, the trained coarse quantisers; ``plan.json`` last.

    The plan already in ``store`` is returned when it is the same build (same model, corpus, pieces and
    options), so a rerun resumes. ``reused`` (an in-process build's) keeps the calibration's work for the
    shards (`reuse.Reused`; nothing when the plan already existed). Raises `InputError` for bad options, an
    encoder-decoder model, a corpus without tokens, or another build's plan in ``store``."""
    from .options import chosen_layers

    identity = build_identity(handle, corpus, pieces, options)
    shape = handle.stacks[handle.main_stack]
    stored = chosen_layers(options.layers, shape.layers, handle.name)
    shards = group_shards(pieces, options.shard_tokens)
    key = identity_key(identity)
    existing = read_plan(store)
    if existing is not None:
        if existing.key == key:
            return existing
        raise StaleBuildError(
            f"{store.path('')} holds the plan of another build (another model, corpus or options): "
            f"remove it or choose another --out"
        )
    widths = vector_widths(handle)
    check_codes(handle, options.codes)
    calibration = calibrate(store, handle, pieces, read, options, stored, widths, reused)
    if reused is not None:
        reused.key = key
    plan = Plan(
        key=key,
        model=handle.name,
        model_fingerprint=identity["model_fingerprint"],
        tokenizer_fingerprint=identity["tokenizer_fingerprint"],
        corpus=corpus,
        options=asdict(options),
        stored_layers=stored,
        layers=shape.layers,
        heads=shape.heads,
        hidden_size=widths["hidden"],
        approximate_lists=calibration.lists,
        shards=shards,
        revision=getattr(handle.model.config, "_commit_hash", None),
        created=created_now(),
        extra={"head_width": widths["heads"], **calibration.estimate},
        model_fingerprint_version=MODEL_FINGERPRINT_VERSION,
    )
    store.write(PLAN, plan.to_json().encode())
    return plan
