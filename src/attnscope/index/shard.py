"""The second step of a sharded build: one shard, built by whichever worker takes it.

A worker reads its shard's pieces, annotates and tokenises their sentences, runs the model batch by batch
(batches never cross pieces, see plan.py), quantises the vectors with the plan's shared ranges, and
writes under ``shards/<number>/``: the shard's token and sentence tables (rows and sentences numbered
from 0 in the shard), its codes (or, for an approximate index, a copy of the plan's trained IVF index
holding its vectors under the shard's row numbers), its attention blocks and their byte spans (none when
the build's ``attention`` is "recomputed"), then ``done.json`` last. A shard whose marker names this plan
is finished and is never rebuilt; one whose marker names another plan is refused. Memory is bounded by
the shard, not the corpus.

Two runs of one shard may overlap (a scheduler re-queuing a slow task). On a local or shared file system
each run writes into its own folder (``shards/<number>.work-<random>``, marker last) and renames it to
``shards/<number>``: the first rename wins, the other run finds a finished shard, drops its folder and
reports the shard as already built. On an object store (no rename) both upload the same bytes, marker
last. The commit removes work folders left by killed runs (`remove_work_folders`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zstandard

from ..capture.loading import ModelHandle
from ..corpus import METADATA_FIELDS, AnnotatedSentence, fields_present
from ..errors import InputError
from . import vectors
from .extract import BatchVectors, PlannedSentence, PlanSummary, extract_batch, plan_sentences
from .layout import ATTENTION, CODES, MANIFEST, SPANS, codes_file, ivf_file, read_codes
from .manifest import model_fingerprint, tokenizer_fingerprint
from .options import options_from_dict
from .plan import Piece, PieceReader, Plan, ShardSpec, load_ranges, piece_batches, trained_file
from .reuse import EncodedBatch, Reused, encode_batch
from .storage import Store
from .tables import write_tables
from .unreadable import damaged_plan, decoding

DONE = "done.json"


@dataclass(frozen=True)
class ShardReport:
    """What building one shard did: its rows and sentences, seconds taken, and whether it was already done."""

    number: int
    rows: int
    sentences: int
    seconds: float
    resumed: bool


def check_plan_model(plan: Plan, handle: ModelHandle) -> None:
    """Refuse a model whose weights or tokenizer differ from the plan's (a worker that loaded the wrong one)."""
    if tokenizer_fingerprint(handle.tokenizer) != plan.tokenizer_fingerprint:
        raise InputError(
            f"model {handle.name!r} tokenises differently from the plan's model {plan.model!r}: "
            f"every shard of a build must use the plan's model"
        )
    if model_fingerprint(handle.model, plan.model_fingerprint_version) != plan.model_fingerprint:
        raise InputError(
            f"model {handle.name!r} has other weights than the plan's model {plan.model!r}: "
            f"every shard of a build must use the plan's model"
        )


def shard_marker(store: Store, plan: Plan, spec: ShardSpec) -> dict[str, Any] | None:
    """The finished shard's ``done.json`` record, or None when it is not finished. Raises `InputError`
    when the marker belongs to another plan (a shard of another build in this folder)."""
    name = f"{spec.folder}/{DONE}"
    if not store.exists(name):
        return None
    try:
        marker = json.loads(store.read(name))
    except ValueError:
        raise InputError(
            f"{store.path(name)} is corrupt: remove {store.path(spec.folder)} and build the shard again"
        ) from None
    if marker.get("key") != plan.key:
        raise InputError(
            f"{store.path(spec.folder)} is a shard of another build plan (key {str(marker.get('key'))[:12]}, "
            f"this plan's is {plan.key[:12]}): it cannot be part of this index; remove it and rebuild the shard"
        )
    return marker


Progress = Callable[[int], None]
"""``progress(tokens)``, called after every batch a shard writes with the tokens it held."""


def build_shard(
    store: Store,
    plan: Plan,
    number: int,
    handle: ModelHandle,
    read: PieceReader,
    progress: Progress | None = None,
    reused: Reused | None = None,
) -> ShardReport:
    """Build shard ``number`` of ``plan`` into ``store`` (nothing when it is already finished). ``reused``: what
    this process's planning of ``plan`` already read, tokenised and encoded (`reuse`), taken instead of
    being done again (the same bytes stored).

    Raises `InputError` for a shard number outside the plan, a model other than the plan's, or a marker
    of another plan; the reader raises `CorpusError` for a corpus changed since the plan."""
    if not 0 <= number < len(plan.shards):
        raise InputError(f"shard {number} is not in the plan: it has shards 0-{len(plan.shards) - 1}")
    spec = plan.shards[number]
    check_plan_model(plan, handle)
    marker = shard_marker(store, plan, spec)
    if marker is not None:
        return ShardReport(number, marker["rows"], marker["sentences"], 0.0, True)
    first_piece = sum(len(s.pieces) for s in plan.shards[:number])
    build = _build_local if store.is_local else _build_remote
    try:
        record = build(store, plan, spec, first_piece, handle, read, progress, reused)
    except Exception:
        if store.exists(MANIFEST):
            raise InputError(
                f"shard {number} was not needed: {store.url} was committed while this run was building it"
            ) from None
        if shard_marker(store, plan, spec) is None:
            raise
        record = None  # another run of this shard finished first (a commit may have removed this run's folder)
    if record is None:  # the other run's shard stands
        marker = shard_marker(store, plan, spec) or {}
        return ShardReport(number, marker["rows"], marker["sentences"], 0.0, True)
    return ShardReport(number, record["rows"], record["sentences"], record["seconds"], False)


WORK = ".work-"
"""A run's own work folder is ``shards/<number>.work-<random>``: two runs of one shard never share one."""
STALE = ".stale-"
"""Where the unmarked folder of a shard (files of a run killed before its marker) is moved aside."""


def _build_local(
    store: Store,
    plan: Plan,
    spec: ShardSpec,
    first_piece: int,
    handle: ModelHandle,
    read: PieceReader,
    progress,
    reused: Reused | None = None,
) -> dict[str, Any] | None:
    """Build the shard in this run's own folder, its marker last, then rename the folder into place: the
    shard appears whole or not at all. Returns the marker's record, or None when another run of the shard
    published first (this run's folder is dropped)."""
    started = time.perf_counter()
    work = Path(store.path(f"{spec.folder}{WORK}{secrets.token_hex(6)}"))
    work.mkdir(parents=True)
    try:
        record = _run(store, plan, spec, first_piece, handle, read, work, progress, reused)
        record["seconds"] = round(time.perf_counter() - started, 3)
        with open(work / DONE, "wb") as marker:
            marker.write(json.dumps(record, sort_keys=True).encode())
            marker.flush()
            os.fsync(marker.fileno())
        return record if _publish(work, Path(store.path(spec.folder))) else None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _publish(work: Path, final: Path) -> bool:
    """Rename the finished folder ``work`` to ``final``; False when ``final`` is already a finished shard
    (another run's: it wins). An unmarked ``final`` (left by a run killed mid-copy by attnscope before
    work folders were renamed) is moved aside to ``<final>.stale-<random>`` first; the commit removes it."""
    for _ in range(8):
        try:
            os.rename(work, final)
            return True
        except OSError:
            if (final / DONE).is_file():
                return False
            if not final.exists():
                continue
            with contextlib.suppress(FileNotFoundError):  # another run moved it aside first
                os.rename(final, final.with_name(f"{final.name}{STALE}{secrets.token_hex(6)}"))
    raise InputError(f"cannot publish shard folder {final}: it keeps being replaced (several runs of one shard?)")


def _build_remote(
    store: Store,
    plan: Plan,
    spec: ShardSpec,
    first_piece: int,
    handle: ModelHandle,
    read: PieceReader,
    progress,
    reused: Reused | None = None,
) -> dict[str, Any] | None:
    """Build the shard in a local temporary folder, upload its files and then its marker. An object store
    has no rename: two runs of one shard upload the same files (a shard's bytes depend only on the plan)
    and the marker comes last, so either run's marker describes what is there. Returns the record, or
    None when another run's marker appeared first."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="attnscope-shard-") as folder:
        work = Path(folder)
        record = _run(store, plan, spec, first_piece, handle, read, work, progress, reused)
        if shard_marker(store, plan, spec) is not None:
            return None
        for path in sorted(work.iterdir()):
            store.put(path, f"{spec.folder}/{path.name}")
    record["seconds"] = round(time.perf_counter() - started, 3)
    store.write(f"{spec.folder}/{DONE}", json.dumps(record, sort_keys=True).encode())
    return record


def remove_work_folders(store: Store) -> None:
    """Remove what runs of shards left under ``shards/`` besides the shards: work folders of runs killed or
    still running (a run whose folder is gone ends cleanly once its shard is finished), and unmarked
    folders moved aside. For the commit, once every shard is finished."""
    base = store.path("shards")
    if not store.fs.isdir(base):
        return
    for item in store.fs.ls(base, detail=True):
        name = item["name"].rstrip("/").rsplit("/", 1)[-1]
        if item["type"] == "directory" and (WORK in name or STALE in name):
            store.remove(f"shards/{name}")


def _run(
    store: Store,
    plan: Plan,
    spec: ShardSpec,
    first_piece: int,
    handle: ModelHandle,
    read: PieceReader,
    work: Path,
    progress: Progress | None,
    reused: Reused | None = None,
) -> dict[str, Any]:
    """Extract, quantise and write the shard's files into the local folder ``work``; its marker record."""
    options = options_from_dict(plan.options)
    stored = plan.stored_layers
    ranges = load_ranges(store, len(stored))
    sentences: list[AnnotatedSentence] = []
    planned: list[PlannedSentence] = []
    counts = {"truncated_sentences": 0, "dropped_tokens": 0, "skipped_sentences": 0}
    spans: dict[int, tuple[int, int]] = {}
    compressor = zstandard.ZstdCompressor(level=1)
    with ExitStack() as opened, ThreadPoolExecutor(max_workers=1) as writer:
        codes = {
            (kind, layer): opened.enter_context(open(work / codes_file(kind, layer), "wb"))
            for kind in CODES
            for layer in stored
        }
        keep_attention = options.attention == "stored"
        attention = opened.enter_context(open(work / ATTENTION, "wb")) if keep_attention else None
        position = [0]

        attention_bits = options.attention_bits if keep_attention else None

        def write(batch: BatchVectors | EncodedBatch, numbers: list[int]) -> None:
            """Append one batch's codes (one zstd frame per set) and attention blocks (encoding it first
            unless planning already did, `reuse`)."""
            if isinstance(batch, BatchVectors):
                batch = encode_batch(batch, ranges, options.vector_bits, attention_bits)
            for kind in CODES:
                for slot, layer in enumerate(stored):
                    codes[(kind, layer)].write(compressor.compress(batch.codes[kind][slot].tobytes()))
            if attention is None or batch.attention is None:
                return
            sizes, data = batch.attention
            attention.write(data.tobytes())
            ends = position[0] + np.cumsum(sizes)
            for i, sentence in enumerate(numbers):
                for slot in range(len(stored)):
                    k = i * len(stored) + slot
                    spans[sentence * len(stored) + slot] = (int(ends[k] - sizes[k]), int(ends[k]))
            position[0] = int(ends[-1]) if len(ends) else position[0]

        pending: Future | None = None
        rows = 0
        for offset, piece in enumerate(spec.pieces):
            number = first_piece + offset
            taken = reused.take_piece(plan.key, number) if reused is not None else None
            read_sentences, done, summary = taken or _read_piece(handle, read, piece, options.long)
            for name in counts:
                counts[name] += getattr(summary, name)
            base = len(planned)
            for item in done:
                item.sentence += len(sentences)
            sentences.extend(read_sentences)
            planned.extend(done)
            lengths = [len(p.tokens) for p in done]
            for j, batch in enumerate(piece_batches(lengths, options.batch_tokens, options.seed, number)):
                for i in batch:
                    done[i].first_row, rows = rows, rows + done[i].rows
                values: BatchVectors | EncodedBatch | None = (
                    reused.take_batch(plan.key, number, j) if reused is not None else None
                )
                if values is None:
                    values = extract_batch(handle, [done[i] for i in batch], stored, attention=keep_attention)
                if pending is not None:
                    pending.result()
                pending = writer.submit(write, values, [base + i for i in batch])
                if progress:
                    progress(values.tokens if isinstance(values, EncodedBatch) else len(values.hidden[0]))
        if pending is not None:
            pending.result()
    if options.attention == "stored":
        _write_spans(work, spans, len(planned), len(stored))
    write_tables(work, planned, sentences, METADATA_FIELDS)
    if plan.approximate_lists or options.codes != "sq":
        _approximate(store, work, plan, rows, ranges)
    files = {p.name: p.stat().st_size for p in sorted(work.iterdir())}
    return {
        "key": plan.key,
        "number": spec.number,
        "rows": rows,
        "sentences": len(planned),
        "read": len(sentences),
        "fields": list(fields_present(sentences)),
        "files": files,
        **counts,
    }


def _read_piece(
    handle: ModelHandle, read: PieceReader, piece: Piece, long: str
) -> tuple[list[AnnotatedSentence], list[PlannedSentence], PlanSummary]:
    """A piece's sentences as read, and as planned for the model (`plan_sentences`)."""
    sentences = list(read(piece))
    planned, summary = plan_sentences(handle, sentences, long)
    return sentences, planned, summary


def _write_spans(work: Path, spans: dict[int, tuple[int, int]], sentences: int, layers: int) -> None:
    array = np.full((sentences * layers, 2), -1, dtype=np.int64)
    for row, span in spans.items():
        array[row] = span
    if (array[:, 0] < 0).any():
        missing = int(np.flatnonzero(array[:, 0] < 0)[0]) // layers
        raise RuntimeError(f"the attention of shard sentence {missing} is missing")
    np.save(work / SPANS, array)


def _approximate(store: Store, work: Path, plan: Plan, rows: int, ranges: dict) -> None:
    """Replace each codes file by a copy of the plan's trained index (IVF, or product quantiser) holding
    the shard's vectors as the codes decode (ids: the shard's row numbers; the commit shifts them to the
    index's rows)."""
    options = options_from_dict(plan.options)
    widths = {"hidden": plan.hidden_size, "heads": int(ranges["heads"][0].low.shape[0])}
    ids = np.arange(rows, dtype=np.int64)
    for kind in CODES:
        for slot, layer in enumerate(plan.stored_layers):
            codes = read_codes(work / codes_file(kind, layer), rows)
            with decoding(store.path(trained_file(kind, layer)), damaged_plan(store.path(""))):
                index = vectors.deserialise(store.read(trained_file(kind, layer)))
            if rows:
                index.add_with_ids(vectors.decode(codes, widths[kind], options.vector_bits, ranges[kind][slot]), ids)
            (work / ivf_file(kind, layer)).write_bytes(vectors.serialise(index))
            (work / codes_file(kind, layer)).unlink()
