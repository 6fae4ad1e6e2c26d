"""Issue 19: attention stored or recomputed at query time, on UD English EWT with the default model.

Builds the corpus twice (``BuildOptions.attention`` "stored" and "recomputed", otherwise alike) and prints:

- disk: bytes per token of each index, and what the attention files take;
- build: seconds of each build (the recomputed build neither captures nor compresses attention);
- search: latency of ``Index.query`` (top 50, the query sentence through the model, matches and
  summaries) over ``--queries`` requests of both modes, every layer and random head subsets, each
  request run on the stored index, on the recomputed index with an empty attention cache (every
  matched sentence recomputed) and on the recomputed index again with its cache warm; p50 and p99,
  and the extra milliseconds against the stored index per request (p50 of the differences).

    .venv/bin/python bench/attention_recompute.py [--corpus ../shared/data/ud_english_ewt] [--queries 100]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import attnscope
from attnscope.corpus import open_corpus
from attnscope.index import BuildOptions, Index, Query, build_index

ROOT = Path(__file__).resolve().parent.parent
ATTENTION_FILES = ("attention.bin", "attention_spans.npy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "data" / "ud_english_ewt"))
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    handle = attnscope.load("default")
    corpus = open_corpus(args.corpus)
    shape = handle.stacks[handle.main_stack]
    work = Path(tempfile.mkdtemp(prefix="attnscope-bench-attention-"))
    try:
        indexes, seconds = {}, {}
        for attention in ("stored", "recomputed"):
            report = build_index(corpus, handle, work / attention, options=BuildOptions(attention=attention))
            indexes[attention], seconds[attention] = Index.open(work / attention), report.seconds
        stored, recomputed = indexes["stored"], indexes["recomputed"]
        tokens = stored.manifest.tokens
        print(
            f"corpus: {corpus.name}, {stored.manifest.sentences:,} sentences, {tokens:,} indexed tokens; model "
            f"{handle.name} ({shape.layers} layers x {shape.heads} heads); torch threads {torch.get_num_threads()}"
        )
        _disk(stored, recomputed)
        print(
            f"\nbuild: stored {seconds['stored']:.1f} s, recomputed {seconds['recomputed']:.1f} s "
            f"({seconds['recomputed'] / seconds['stored']:.2f}x)"
        )
        cold = Index.open(work / "recomputed", attention_cache_bytes=0)
        _latency(handle, stored, recomputed, cold, rng, args.queries, shape.layers, shape.heads)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _disk(stored: Index, recomputed: Index) -> None:
    tokens = stored.manifest.tokens
    a, b = sum(stored.manifest.files.values()), sum(recomputed.manifest.files.values())
    attention = sum(stored.manifest.files[name] for name in ATTENTION_FILES)
    print("\ndisk (every file of the index)")
    print(f"  stored attention    {a / 1e6:8.1f} MB  {a / tokens / 1024:.2f} KiB per token")
    print(
        f"  recomputed          {b / 1e6:8.1f} MB  {b / tokens / 1024:.2f} KiB per token  "
        f"(saves {attention / 1e6:.1f} MB, {attention / tokens / 1024:.2f} KiB per token, {attention / a:.0%})"
    )


def _latency(handle, stored, recomputed, cold, rng, queries: int, layers: int, heads: int) -> None:
    """Each request on the stored index, the recomputed one with no cache, and again with a warm cache."""
    sentences = stored.tables.sentences
    times: dict[str, list[float]] = {"stored": [], "recomputed, cold cache": [], "recomputed, warm cache": []}
    for q in range(queries + 5):
        sentence = int(rng.integers(stored.manifest.sentences))
        span = stored.tables.sentence_rows(sentence)
        token = int(stored.tables.tokens["position"][span.start + int(rng.integers(len(span)))])
        mode = "embedding" if q % 2 == 0 else "heads"
        chosen = tuple(sorted(rng.choice(heads, size=int(rng.integers(1, heads + 1)), replace=False)))
        query = Query(mode, q % layers, chosen if mode == "heads" else None)
        text = str(sentences["text"][sentence])
        results = {}
        runs = (("stored", stored), ("recomputed, cold cache", cold), ("recomputed, warm cache", recomputed))
        for name, index in runs:
            if name == "recomputed, warm cache":
                index.query(handle, text, token, query)  # fills the cache with this request's sentences
            start = time.perf_counter()
            results[name] = index.query(handle, text, token, query)
            if q >= 5:  # the first requests load the vector sets
                times[name].append((time.perf_counter() - start) * 1000)
        assert [m.row for m in results["stored"].matches] == [m.row for m in results["recomputed, cold cache"].matches]
    base = np.asarray(times["stored"])
    print(
        f"\nsearch latency over {queries} requests (top 50, both modes, every layer, random head subsets; "
        f"load average {os.getloadavg()[0]:.1f})"
    )
    for name, values in times.items():
        extra = np.asarray(values) - base
        print(
            f"  {name:24s} p50 {np.percentile(values, 50):6.1f} ms  p99 {np.percentile(values, 99):6.1f} ms"
            + ("" if name == "stored" else f"  extra per request: p50 {np.percentile(extra, 50):+.1f} ms")
        )


if __name__ == "__main__":
    main()
