"""Building an index: plan, extract in batches, quantise, write; atomic and resumable.

Everything is written into ``<out>.partial`` beside the target. Each finished batch leaves a marker,
so a build that is killed resumes where it stopped when it is run again with the same model, corpus
and options (otherwise the stale partial build is removed and the build restarts). The manifest is
written last, then the directory is renamed to ``<out>``: a killed build never leaves anything that
loads as an index.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zstandard

from ..capture.loading import ModelHandle
from ..corpus import Corpus
from ..errors import InputError
from ..files import atomic_file, writing
from . import vectors
from .attention_store import BITS as ATTENTION_BITS
from .attention_store import compress_blocks
from .extract import LONG_POLICIES, BatchVectors, extract_batch, number_rows, plan_batches, plan_sentences
from .layout import ATTENTION, CODES, RANGES, SPANS, codes_file, ivf_file, read_codes
from .manifest import (
    IndexFormatError,
    Manifest,
    model_fingerprint,
    package_versions,
    read_manifest,
    tokenizer_fingerprint,
    write_manifest,
)
from .tables import write_tables

BUILD = "build.json"
DONE = "done"
PARTS = "batch-parts"
"""The build's own files in ``<out>.partial`` (its marker, finished batches, their part files); the index's
files are named in layout.py."""
APPROXIMATE = ("auto", "always", "never")
APPROXIMATE_ABOVE = 1_000_000
"""With ``approximate="auto"``, corpora of more tokens than this get approximate (IVF) vector sets."""


@dataclass(frozen=True)
class BuildOptions:
    """How to build: padded tokens per batch, bits per stored vector value, what to do with
    sentences longer than the model takes, batches used to calibrate the quantiser's ranges; ``layers``:
    the model layers to store vectors and attention for (``--layers``; None: every layer), checked
    against the model by `chosen_layers` when the build starts."""

    batch_tokens: int = 4096
    vector_bits: int = 8
    long: str = "truncate"
    calibration_batches: int = 4
    seed: int = 0
    approximate: str = "auto"
    attention_bits: int = 7
    layers: tuple[int, ...] | None = None

    def check(self) -> None:
        if self.approximate not in APPROXIMATE:
            raise InputError(f"approximate={self.approximate!r} is not a choice: use one of {', '.join(APPROXIMATE)}")
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


@dataclass
class BuildReport:
    """What a build did: the manifest written, batches resumed from a previous run, seconds taken."""

    manifest: Manifest
    directory: Path
    resumed_batches: int
    seconds: float


Progress = Callable[[int, int], None]
"""``progress(tokens_done, tokens_total)``, called after every batch."""


def build_index(
    corpus: Corpus,
    handle: ModelHandle,
    out: Path | str,
    *,
    options: BuildOptions = BuildOptions(),
    overwrite: bool = False,
    progress: Progress | None = None,
) -> BuildReport:
    """Index every non-special token of ``corpus`` under ``handle``'s model into the directory ``out``.

    Raises `InputError` for bad options or an unusable ``out`` (see `check_build_target`), and `WriteError`
    naming the file when the file system refuses a write (a full disk, no permission...)."""
    options.check()
    out = check_build_target(out, overwrite)
    with writing(out.with_name(out.name + ".partial")):
        return _build_index(corpus, handle, out, options, progress)


def _build_index(
    corpus: Corpus, handle: ModelHandle, out: Path, options: BuildOptions, progress: Progress | None
) -> BuildReport:
    started = time.perf_counter()
    if handle.kind == "encoder-decoder":
        raise InputError("indexing encoder-decoder models is not supported yet: use an encoder or a decoder model")
    planned, summary = plan_sentences(handle, corpus.sentences, options.long)
    if not planned:
        raise InputError(f"corpus {corpus.name!r} has no tokens to index (every sentence was empty or skipped)")
    shape = handle.stacks[handle.main_stack]
    layers, heads = shape.layers, shape.heads
    stored = chosen_layers(options.layers, layers, handle.name)
    hidden_size = int(handle.model.config.hidden_size)
    total = sum(p.rows for p in planned)
    fingerprints = model_fingerprint(handle.model), tokenizer_fingerprint(handle.tokenizer)
    identity = {
        "model": handle.name,
        "model_fingerprint": fingerprints[0],
        "tokenizer_fingerprint": fingerprints[1],
        "corpus_checksum": corpus.checksum,
        "options": asdict(options),
        "tokens": total,
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    partial = out.with_name(out.name + ".partial")
    _prepare_partial(partial, key)
    batches = plan_batches([len(p.tokens) for p in planned], options.batch_tokens, options.seed)
    number_rows(planned, batches)
    write_tables(partial, planned, corpus.sentences, corpus.fields)  # cheap: rewritten on every run
    ranges, pending = _ranges(partial, handle, planned, batches, options.calibration_batches, stored)
    widths = {"hidden": hidden_size, "heads": ranges["heads"][0].low.shape[0]}
    resumed = _extract_all(handle, partial, planned, batches, ranges, pending, options, progress, stored)
    _assemble(partial, [partial / PARTS / f"{b}.npz" for b in range(len(batches))], len(planned), stored)
    shutil.rmtree(partial / DONE)  # from here on a crash means recomputing every batch, never a half index
    shutil.rmtree(partial / PARTS)
    lists = 0
    if options.approximate == "always" or (options.approximate == "auto" and total > APPROXIMATE_ABOVE):
        lists = _approximate(partial, ranges, widths, total, options, stored)

    manifest = Manifest(
        model=handle.name,
        model_fingerprint=fingerprints[0],
        tokenizer_fingerprint=fingerprints[1],
        corpus=corpus.name,
        corpus_checksum=corpus.checksum,
        corpus_files=[str(f) for f in corpus.files],
        annotator=corpus.annotator,
        fields=list(corpus.fields),
        silver=dict(corpus.silver),
        layers=layers,
        heads=heads,
        head_dim=widths["heads"] // heads,
        hidden_size=hidden_size,
        sentences=len(planned),
        tokens=total,
        truncated_sentences=summary.truncated_sentences,
        dropped_tokens=summary.dropped_tokens,
        skipped_sentences=summary.skipped_sentences,
        vector_bits=options.vector_bits,
        attention_bits=options.attention_bits,
        versions=package_versions(),
        approximate_lists=lists,
        default_probes=max(1, lists // 4) if lists else 0,
        revision=getattr(handle.model.config, "_commit_hash", None),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        stored_layers=stored,
    )
    return BuildReport(_finish(partial, out, manifest), out, resumed, time.perf_counter() - started)


def _ranges(
    partial: Path, handle: ModelHandle, planned: list, batches: list[list[int]], calibration: int, stored: list[int]
) -> tuple[dict[str, list[vectors.Ranges]], dict[int, BatchVectors]]:
    """Each kind's per-layer quantisation ranges, one per stored layer in ``stored``'s order: saved by an
    earlier run of this build, or calibrated on the first batches (a shuffled, fair sample), which are
    returned to be written, not recomputed."""
    layers = len(stored)
    path = partial / RANGES
    pending: dict[int, BatchVectors] = {}
    if path.is_file():
        with np.load(path) as archive:
            saved = dict(archive)
    else:
        for b in range(min(calibration, len(batches))):
            pending[b] = extract_batch(handle, [planned[i] for i in batches[b]], stored)
        saved = {}
        for kind in CODES:
            made = [
                vectors.Ranges.from_sample(np.concatenate([getattr(v, kind)[layer] for v in pending.values()]))
                for layer in range(layers)
            ]
            saved[f"{kind}_low"], saved[f"{kind}_span"] = (
                np.stack([r.low for r in made]),
                np.stack([r.span for r in made]),
            )
        _save_atomic(path, lambda f: np.savez(f, **saved))
    ranges = {
        kind: [vectors.Ranges(saved[f"{kind}_low"][layer], saved[f"{kind}_span"][layer]) for layer in range(layers)]
        for kind in CODES
    }
    return ranges, pending


def _extract_all(
    handle: ModelHandle,
    partial: Path,
    planned: list,
    batches: list[list[int]],
    ranges: dict,
    pending: dict[int, BatchVectors],
    options: BuildOptions,
    progress: Progress | None,
    stored: list[int],
) -> int:
    """Run every batch not marked done; each is quantised, compressed and written (one part file with
    its codes and attention, then its marker) in a writer thread while the next one runs. Returns how
    many batches an earlier run had finished."""
    done_dir = partial / DONE
    done = {int(p.stem) for p in done_dir.iterdir()} if done_dir.is_dir() else set()
    done_dir.mkdir(exist_ok=True)
    (partial / PARTS).mkdir(exist_ok=True)
    total = sum(p.rows for p in planned)
    tokens_done = sum(planned[i].rows for b in done for i in batches[b])
    if progress:
        progress(tokens_done, total)

    compressor = zstandard.ZstdCompressor(level=1)

    def store(b: int, values: BatchVectors) -> int:
        """Write batch ``b``'s part file (its codes and attention, compressed), then its marker."""
        frames: dict[
            str, Any
        ] = {}  # this batch's rows are one contiguous run (number_rows): its codes are one frame each
        for kind in CODES:
            for slot, layer_ranges in enumerate(ranges[kind]):
                codes = vectors.encode(getattr(values, kind)[slot], options.vector_bits, layer_ranges)
                frames[f"{kind}.{stored[slot]}"] = np.frombuffer(compressor.compress(codes.tobytes()), dtype=np.uint8)
        sizes, data = compress_blocks(values.attention, options.attention_bits)
        temporary = partial / PARTS / f"{b}.tmp.npz"
        np.savez(temporary, sentences=np.asarray(batches[b], np.int64), sizes=sizes, data=data, **frames)
        temporary.replace(partial / PARTS / f"{b}.npz")
        (done_dir / str(b)).touch()  # no fsync per batch: see _prepare_partial
        return len(values.hidden[0])

    writing: Future | None = None
    with ThreadPoolExecutor(max_workers=1) as writer:
        for b, batch in enumerate(batches):
            if b in done:
                continue
            values = pending.pop(b, None) or extract_batch(handle, [planned[i] for i in batch], stored)
            if writing is not None:
                tokens_done += writing.result()
                if progress:
                    progress(tokens_done, total)
            writing = writer.submit(store, b, values)
        if writing is not None:
            tokens_done += writing.result()
            if progress:
                progress(tokens_done, total)
    return len(done)


def _approximate(
    partial: Path, ranges: dict, widths: dict[str, int], total: int, options: BuildOptions, stored: list[int]
) -> int:
    """Replace the code files by approximate (IVF) vector sets; returns their number of clusters."""
    lists = vectors.inverted_lists(total)
    for kind in CODES:
        for layer, layer_ranges in zip(stored, ranges[kind]):
            codes = read_codes(partial / codes_file(kind, layer), total)
            ivf = vectors.build_ivf(codes, widths[kind], options.vector_bits, layer_ranges, lists, options.seed)
            _save_atomic(partial / ivf_file(kind, layer), lambda f, ivf=ivf: f.write(vectors.serialise(ivf)))
            (partial / codes_file(kind, layer)).unlink()
    return lists


def _assemble(partial: Path, parts: list[Path], sentences: int, stored: list[int]) -> None:
    """Join the batches' part files, in one pass: each vector set's code frames into its codes file (in
    row order, since rows follow the batches) and the attention blocks into ``attention.bin``, with
    each (sentence, stored layer) block's byte span. A crash here is repaired by rerunning (files are rewritten)."""
    layers = len(stored)
    spans = np.full((sentences * layers, 2), -1, dtype=np.int64)
    with contextlib.ExitStack() as stack:
        attention = stack.enter_context(open(partial / ATTENTION, "wb"))
        codes = {
            f"{kind}.{layer}": stack.enter_context(open(partial / codes_file(kind, layer), "wb"))
            for kind in CODES
            for layer in stored
        }
        position = 0
        for part in parts:
            with np.load(part) as archive:
                sizes = archive["sizes"]
                attention.write(archive["data"].tobytes())
                rows = (archive["sentences"][:, None] * layers + np.arange(layers)).ravel()
                ends = position + np.cumsum(sizes)
                spans[rows, 0], spans[rows, 1] = ends - sizes, ends
                position = int(ends[-1]) if len(ends) else position
                for name, handle in codes.items():
                    handle.write(archive[name].tobytes())
    missing = np.flatnonzero(spans[:, 0] < 0)
    if len(missing):
        raise RuntimeError(f"attention of sentence {missing[0] // layers} is missing from the batch files")
    np.save(partial / SPANS, spans)


def check_build_target(out: Path | str, overwrite: bool = False) -> Path:
    """``out`` as a `Path` if an index can be built there (checked before any work); else `InputError`:
    a file, a missing parent directory, a directory that is not an index, an index without ``overwrite``,
    or a ``<out>.partial`` that is not a build in progress."""
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    if partial.exists() and not (partial / BUILD).is_file():
        raise InputError(f"{partial} exists but is not an attnscope build in progress: move it away first")
    if not out.exists():
        if not out.parent.is_dir():
            raise InputError(f"cannot build an index at {out}: its parent directory {out.parent} does not exist")
        return out
    if not out.is_dir():
        raise InputError(f"cannot build an index at {out}: it is a file; name a directory to create for the index")
    try:
        read_manifest(out)
    except IndexFormatError:
        raise InputError(f"{out} exists and is not an attnscope index: choose another --out directory") from None
    if not overwrite:
        raise InputError(f"an index already exists at {out}: pass overwrite=True (--overwrite) to replace it")
    return out


def _prepare_partial(partial: Path, key: str) -> None:
    """Keep ``partial`` when it is an unfinished build of the same inputs (to resume); otherwise start
    it afresh.

    Batches are not synced to disk one by one (the final fsync does that): a killed process loses
    nothing the kernel holds, but a reboot may have lost written pages while keeping batch markers,
    so after a reboot (another boot id) every batch is recomputed."""
    marker = partial / BUILD
    boot = _boot_id()
    if partial.exists():
        if not marker.is_file():
            raise InputError(f"{partial} exists but is not an attnscope build in progress: move it away first")
        recorded = json.loads(marker.read_text())
        if recorded.get("key") == key:
            if recorded.get("boot") != boot:
                shutil.rmtree(partial / DONE, ignore_errors=True)
                _save_atomic(marker, lambda f: f.write(json.dumps({"key": key, "boot": boot}).encode()))
            return
        shutil.rmtree(partial)
    partial.mkdir()
    _save_atomic(marker, lambda f: f.write(json.dumps({"key": key, "boot": boot}).encode()))


def _boot_id() -> str:
    """This boot of the machine (Linux), so that a build can tell a killed process from a reboot."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _save_atomic(path: Path, write: Callable) -> None:
    """``write`` a binary handle's content to ``path`` durably and atomically (the build owns its directory,
    so the temporary name is fixed and a rerun overwrites what a killed run left)."""
    with atomic_file(path, "wb", durable=True, unique=False) as handle:
        write(handle)


def _finish(partial: Path, out: Path, manifest: Manifest) -> Manifest:
    """Record file sizes, write the manifest, move into place; the build marker goes last, so a crash
    before the rename leaves a build that reruns."""
    for path in partial.iterdir():
        with open(path, "rb+") as handle:
            os.fsync(handle.fileno())
    files = {p.name: p.stat().st_size for p in sorted(partial.iterdir()) if p.name != BUILD}
    manifest = Manifest(**{**asdict(manifest), "files": files})
    write_manifest(partial, manifest)
    if out.exists():  # replacing an index (overwrite): the old one goes only once the new one is whole
        old = out.with_name(out.name + ".old")
        os.replace(out, old)
        os.replace(partial, out)
        shutil.rmtree(old)
    else:
        os.replace(partial, out)
    (out / BUILD).unlink()
    return manifest
