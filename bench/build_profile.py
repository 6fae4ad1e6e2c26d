"""P3: the in-process build's tokens/s against the raw batched forward, repeated, and where the build's time goes.

On the default model (all-MiniLM-L6-v2) and a corpus (default: UD English EWT dev + test from
../shared/data), in one process:

1. **Ratio, interleaved.** ``--repeats`` builds (`build_index`, planning, calibration, writing and commit
   included) alternate with ``--repeats + 1`` runs of the raw batched forward: the model's own forward
   (its default attention, nothing kept) over the very batches the build runs (the same pieces, the same
   length-sorted batches of ``batch_tokens`` padded tokens, `plan.piece_batches`), same process, same
   torch threads. Each build's ratio takes the faster of its two neighbouring raw runs (the harsher
   choice under load). Printed: every ratio, their median and minimum. Goal: every ratio >= 0.7.
2. **Breakdown.** One more build under cProfile (the main thread and the writer thread), its time split
   into the build's parts as fractions of that build's wall time (fractions stay comparable under load;
   seconds do not). The writer thread's work (quantisation, compression, file writes) overlaps the
   main thread's forward passes: it is printed apart, as fractions of the same wall time, with what of
   it the main thread waited for.

``--from-files`` builds from the corpus's files (a `CorpusSource`, read slice by slice inside the build,
as ``attnscope index`` does: reading and any annotation, such as EWT's silver entities, then count in
the build) instead of a corpus already read into memory (as `bench/corpus.py`).

    nice -n 19 .venv/bin/python bench/build_profile.py [--corpus DIR] [--repeats 3] [--from-files]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch

import attnscope
from attnscope.capture.engine import _model_inputs
from attnscope.capture.loading import quiet_transformers
from attnscope.corpus import open_corpus
from attnscope.index import BuildOptions, build_index
from attnscope.index.extract import plan_sentences
from attnscope.index.plan import piece_batches, sentence_pieces

ROOT = Path(__file__).resolve().parent.parent
GOAL_P3 = 0.7


def build_batches(handle, sentences, options: BuildOptions) -> list[list]:
    """The token lists of every batch the in-process build runs, in its order (pieces, then each
    piece's seeded batches); pieces as a build of the corpus in memory cuts them."""
    batches = []
    for number, piece in enumerate(sentence_pieces(sentences, options.piece_tokens)):
        planned, _ = plan_sentences(handle, sentences[piece.start : piece.end], options.long)
        lengths = [len(p.tokens) for p in planned]
        for batch in piece_batches(lengths, options.batch_tokens, options.seed, number):
            batches.append([planned[i].tokens for i in batch])
    return batches


def raw_forward_seconds(handle, batches, implementation: str | None = None) -> float:
    """The model's own batched forward over ``batches`` (padding included), nothing captured; with its
    attention as loaded, or switched to ``implementation`` ("sdpa") for this run."""
    model = handle.model
    loaded = model.config._attn_implementation
    with quiet_transformers():
        model.set_attn_implementation(implementation or loaded)
    try:
        start = time.perf_counter()
        with torch.inference_mode():
            for tokens in batches:
                model(**_model_inputs(handle, tokens, None))
        return time.perf_counter() - start
    finally:
        with quiet_transformers():
            model.set_attn_implementation(loaded)


def raw_pair(handle, batches) -> tuple[float, float]:
    """The raw forward with the model's attention as loaded, and with SDPA."""
    return raw_forward_seconds(handle, batches), raw_forward_seconds(handle, batches, "sdpa")


def timed_build(corpus, handle, out: Path, options: BuildOptions) -> tuple[float, int]:
    shutil.rmtree(out, ignore_errors=True)
    report = build_index(corpus, handle, out, options=options)
    return report.seconds, report.manifest.tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "data" / "ud_english_ewt"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-tokens", type=int, default=BuildOptions().batch_tokens)
    parser.add_argument("--from-files", action="store_true", help="build from the corpus's files, as the CLI does")
    parser.add_argument("--no-profile", action="store_true", help="skip the profiled build (the breakdown)")
    args = parser.parse_args()
    torch.manual_seed(0)
    options = BuildOptions(batch_tokens=args.batch_tokens)
    handle = attnscope.load("default")
    corpus = open_corpus(args.corpus)
    built_from = corpus.source() if args.from_files else corpus
    batches = build_batches(handle, corpus.sentences, options)
    tokens = sum(len(t.ids) for batch in batches for t in batch)
    print(
        f"corpus {corpus.name}: {len(corpus.sentences):,} sentences, {len(batches)} batches of <= "
        f"{options.batch_tokens} padded tokens; model {handle.name}, default attention "
        f"{handle.model.config._attn_implementation!r}; torch threads {torch.get_num_threads()}; "
        f"built from {'files' if args.from_files else 'memory'}; load average {_load()}"
    )
    work = Path(tempfile.mkdtemp(prefix="attnscope-p3-"))
    try:
        raw_pair(handle, batches[:2])  # warm-up
        timed_build(built_from, handle, work / "warm", options)  # warm-up: first build's imports, allocations
        raws = [raw_pair(handle, batches)]
        builds, indexed = [], 0
        for _ in range(args.repeats):
            seconds, indexed = timed_build(built_from, handle, work / "index", options)
            builds.append(seconds)
            raws.append(raw_pair(handle, batches))
        ratios, sdpa_ratios = [], []
        print(f"\nP3 ratio, {args.repeats} builds interleaved with {args.repeats + 1} raw forwards (as loaded; SDPA)")
        for i, seconds in enumerate(builds):
            raw = min(raws[i][0], raws[i + 1][0])
            sdpa = min(raws[i][1], raws[i + 1][1])
            ratios.append(raw / seconds)
            sdpa_ratios.append(sdpa / seconds)
            print(
                f"  build {i}: {seconds:6.2f} s ({indexed / seconds:7,.0f} tokens/s); raw forward "
                f"{raws[i][0]:.2f} / {raws[i + 1][0]:.2f} s ({indexed / raw:7,.0f} tokens/s), SDPA "
                f"{raws[i][1]:.2f} / {raws[i + 1][1]:.2f} s; ratio {ratios[-1]:.3f} "
                f"(against SDPA {sdpa_ratios[-1]:.3f})"
            )
        print(f"  (indexed tokens {indexed:,}; raw forward's input tokens, specials included, {tokens:,})")
        for name, values in (("as loaded", ratios), ("SDPA", sdpa_ratios)):
            verdict = "ok" if min(values) >= GOAL_P3 else "MISSED"
            print(
                f"  ratio against the raw forward {name}: median {statistics.median(values):.3f}, "
                f"min {min(values):.3f} (goal >= {GOAL_P3} on every run) {verdict}"
            )
        print(f"  load average {_load()}")
        if not args.no_profile:
            breakdown(built_from, handle, work / "profiled", options)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def breakdown(corpus, handle, out: Path, options: BuildOptions) -> None:
    """One build under cProfile (main and writer threads); its parts as fractions of its wall time."""
    shutil.rmtree(out, ignore_errors=True)
    threads: list[cProfile.Profile] = []

    def profile_thread(frame: Any, event: str, arg: Any) -> None:
        profile = cProfile.Profile()
        threads.append(profile)
        profile.enable()  # replaces this hook in the thread that called it

    main = cProfile.Profile()
    threading.setprofile(profile_thread)
    started = time.perf_counter()
    main.enable()
    try:
        build_index(corpus, handle, out, options=options)
    finally:
        main.disable()
        threading.setprofile(None)
    wall = time.perf_counter() - started
    stats = Graph(pstats.Stats(main))
    writer = Graph(pstats.Stats(*threads)) if threads else Graph(None)
    print(f"\nwhere the build's time goes (one build under cProfile, {wall:.1f} s; fractions of it)")
    rows = _main_rows(stats)
    for label, seconds in rows:
        print(f"  {seconds / wall:6.1%}  {label}")
    print(f"  {1 - sum(s for label, s in rows if not label.startswith('  ')) / wall:6.1%}  rest (unattributed)")
    print("writer thread (overlaps the forward passes; fractions of the same wall time)")
    for label, seconds in _writer_rows(writer):
        print(f"  {seconds / wall:6.1%}  {label}")


def _main_rows(g: Graph) -> list[tuple[str, float]]:
    """Top-level rows do not overlap (they sum to the build, less the rest); indented rows are parts of the
    row above them."""
    extract = g.cum("index/extract.py", "extract_batch")
    run = g.cum("capture/engine.py", "run_batch")
    padding = g.edge(("capture/engine.py", "_model_inputs"), ("capture/engine.py", "run_batch"))
    indexed_attention = g.cum("index/extract.py", "_indexed_attention")
    readers = g.cum("index/sources.py", "__call__")
    tokenise = g.cum("index/extract.py", "plan_sentences")
    calibrate = g.cum("index/plan.py", "calibrate")
    in_calibration = sum(
        g.edge(callee, ("index/plan.py", "sample_batches"))
        for callee in (("index/extract.py", "extract_batch"), ("index/extract.py", "plan_sentences"))
    ) + g.edge(("index/sources.py", "__call__"), ("index/plan.py", "sample_batches"))
    batching = g.cum("index/extract.py", "plan_batches")
    return [
        ("corpus reading and annotation (piece readers)", readers),
        ("tokenisation and word alignment (plan_sentences)", tokenise),
        ("batching (plan_batches)", batching),
        ("padding into model inputs (_model_inputs)", padding),
        ("forward pass with attention capture (run_batch, padding excluded)", run - padding),
        (
            "  of which the capture's attention function (eager attention + recording)",
            g.cum("capture/recorder.py", "_attention_function"),
        ),
        ("  of which recording (recorder.record)", g.cum("capture/recorder.py", "record")),
        (
            "head outputs and hidden states: gather, unit-normalise (extract_batch less the above)",
            extract - run - indexed_attention,
        ),
        ("attention blocks cut per sentence (_indexed_attention)", indexed_attention),
        (
            "calibration less its reading, tokenising and forward passes (ranges, trained quantisers)",
            calibrate - in_calibration,
        ),
        ("  (reading, tokenising, forward passes and extraction inside calibration, counted above)", in_calibration),
        (
            "waiting for the writer thread",
            g.edge(("concurrent/futures/_base.py", "result"), ("index/shard.py", "_run")),
        ),
        ("IVF / product-code adds (shard._approximate)", g.cum("index/shard.py", "_approximate")),
        ("attention spans (shard._write_spans)", g.cum("index/shard.py", "_write_spans")),
        ("parquet tables (write_tables)", g.cum("index/tables.py", "write_tables")),
        ("commit (joins, manifest)", g.cum("index/commit.py", "commit")),
        ("  of which fsync (posix.fsync, markers and manifest included)", g.builtin("posix.fsync")),
    ]


def _writer_rows(g: Graph) -> list[tuple[str, float]]:
    return [
        ("quantisation (vectors.encode)", g.cum("index/vectors.py", "encode")),
        (
            "attention blocks quantised and compressed (compress_blocks)",
            g.cum("index/attention_store.py", "compress_blocks"),
        ),
        (
            "zstd frames of codes and file writes (write)",
            g.cum("index/shard.py", "write")
            - g.cum("index/vectors.py", "encode")
            - g.cum("index/attention_store.py", "compress_blocks"),
        ),
    ]


class Graph:
    """Cumulative seconds of functions (matched by file-path suffix and name) and of caller -> callee edges."""

    def __init__(self, stats: pstats.Stats | None):
        self.table: dict[tuple, Any] = stats.stats if stats is not None else {}  # type: ignore[attr-defined]

    def _match(self, key: tuple, where: str, name: str) -> bool:
        return key[0].endswith(where) and key[2] == name

    def cum(self, where: str, name: str) -> float:
        return sum(v[3] for k, v in self.table.items() if self._match(k, where, name))

    def builtin(self, text: str) -> float:
        return sum(v[3] for k, v in self.table.items() if text in k[2])

    def edge(self, callee: tuple[str, str], caller: tuple[str, str]) -> float:
        total = 0.0
        for key, value in self.table.items():
            if self._match(key, *callee):
                total += sum(e[3] for c, e in value[4].items() if self._match(c, *caller))
        return total


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
