"""P3-P5: indexing throughput, bytes per token and recall, and search latency, on UD English EWT.

All on the default model (all-MiniLM-L6-v2) and the EWT dev+test files in ../shared/data, in one run:

- P3 indexing: tokens/s of `attnscope.index.build_index` against the raw batched forward pass of the
  same model on the same sentences in the same batches (transformers' default attention, no outputs
  kept; measured before and after the build, the faster of the two counts). Goal: ratio >= 0.7.
- P4 storage: bytes on disk per indexed token (every file of the index) against the goal, 19 KB per
  token for a 12-layer, 768-wide model scaled by layers x width to the model measured; recall@50 of
  the index's searches against exact float32 search over the same tokens' unquantised vectors
  (``--queries`` corpus tokens as queries, both modes, random layers and head subsets). Goal >= 0.98.
  Also: the stored attention against the model's (largest difference; how often the most-attended
  token of a match agrees).
- Approximate search (corpora over a million tokens get IVF vector sets): the same index built with
  ``approximate="always"``, recall@50 against exact float32 search and nearest-neighbour latency at
  half, once and twice the default number of clusters scanned.
- P5 search: latency of ``Index.query`` (the query sentence through the model, nearest neighbours,
  matches in context, summaries) over ``--queries`` requests mixing both modes, every layer and
  random head subsets, p50 and p99; and of the search part alone. Goals: p50 <= 30 ms, p99 <= 100 ms.
  The same mix again with each token's whole word searched and one match per sentence.

    .venv/bin/python bench/corpus.py [--corpus ../shared/data/ud_english_ewt] [--queries 200]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import attnscope
from attnscope.capture.engine import _model_inputs
from attnscope.corpus import open_corpus
from attnscope.index import BuildOptions, Index, Query, build_index
from attnscope.index.extract import extract_batch, plan_batches, plan_sentences
from attnscope.index.query import zero_other_heads

ROOT = Path(__file__).resolve().parent.parent
GOAL_P3, GOAL_RECALL, GOAL_P50_MS, GOAL_P99_MS = 0.7, 0.98, 30.0, 100.0
BERT_BASE_BYTES, BERT_BASE_LAYERS, BERT_BASE_WIDTH = 19 * 1024, 12, 768


def raw_forward_seconds(handle, planned, batches) -> float:
    """The model's own batched forward pass over the planned batches, nothing captured."""
    model = handle.model
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in batches:
            model(**_model_inputs(handle, [planned[i].tokens for i in batch], None))
    return time.perf_counter() - start


def float_vectors(handle, planned, batches, layers: int):
    """Unquantised unit vectors of every indexed token, (layers, tokens, width), in row order."""
    total = sum(p.rows for p in planned)
    hidden = heads = None
    attention = {}
    for batch in batches:
        items = [planned[i] for i in batch]
        values = extract_batch(handle, items)
        if hidden is None:
            hidden = np.zeros((layers, total, values.hidden.shape[2]), np.float32)
            heads = np.zeros((layers, total, values.heads.shape[2]), np.float32)
        rows = np.concatenate([np.arange(p.first_row, p.first_row + p.rows) for p in items])
        hidden[:, rows], heads[:, rows] = values.hidden, values.heads
        for i, block in zip(batch, values.attention):
            attention[i] = block
    return hidden, heads, attention


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "data" / "ud_english_ewt"))
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--batch-tokens", type=int, default=BuildOptions().batch_tokens)
    parser.add_argument("--bits", type=int, default=BuildOptions().vector_bits)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    handle = attnscope.load("default")
    corpus = open_corpus(args.corpus)
    planned, _ = plan_sentences(handle, corpus.sentences)
    batches = plan_batches([len(p.tokens) for p in planned], args.batch_tokens)
    total = sum(p.rows for p in planned)
    shape = handle.stacks[handle.main_stack]
    layers, head_count, width = shape.layers, shape.heads, int(handle.model.config.hidden_size)
    print(
        f"corpus: {corpus.name}, {len(planned):,} sentences, {total:,} indexed tokens; model {handle.name} "
        f"({layers} layers x {head_count} heads, width {width}); torch threads {torch.get_num_threads()}"
    )

    raw_forward_seconds(handle, planned, batches[:2])  # warm-up
    raw_before = raw_forward_seconds(handle, planned, batches)
    work = Path(tempfile.mkdtemp(prefix="attnscope-bench-"))
    try:
        report = build_index(corpus, handle, work / "index", options=BuildOptions(args.batch_tokens, args.bits))
        raw_after = raw_forward_seconds(handle, planned, batches)
        raw = min(raw_before, raw_after)
        index_rate, raw_rate = total / report.seconds, total / raw
        print("\nP3 indexing (tokens/s)")
        print(f"  raw batched forward {raw_rate:10,.0f}  (runs: {raw_before:.1f} s, {raw_after:.1f} s)")
        print(f"  attnscope index     {index_rate:10,.0f}  ({report.seconds:.1f} s, planning and writing included)")
        ratio = index_rate / raw_rate
        print(f"  ratio {ratio:.3f} (goal >= {GOAL_P3}) {'ok' if ratio >= GOAL_P3 else 'MISSED'}")

        index = Index.open(work / "index")
        for item, first in zip(planned, index.tables.sentences["first_row"], strict=True):
            item.first_row = int(first)  # the build batches within pieces: take its rows from the index
        files = index.manifest.files
        size = sum(files.values())
        goal = BERT_BASE_BYTES * (layers * width) / (BERT_BASE_LAYERS * BERT_BASE_WIDTH)
        print("\nP4 storage")
        for name, bytes_ in sorted(files.items(), key=lambda x: -x[1]):
            print(f"  {name:24s} {bytes_ / total:9.1f} bytes/token")
        print(
            f"  total {size / total / 1024:.2f} KiB/token; goal <= {goal / 1024:.2f} KiB/token "
            f"(19 KiB for 12 x 768, scaled to {layers} x {width}) {'ok' if size / total <= goal else 'MISSED'}"
        )

        hidden, heads, attention = float_vectors(handle, planned, batches, layers)
        both = _recall(index, hidden, heads, np.random.default_rng(args.seed), args.queries, layers, head_count)
        print(f"  recall@50 overall {both:.4f} (goal >= {GOAL_RECALL}) {'ok' if both >= GOAL_RECALL else 'MISSED'}")
        _attention_agreement(index, planned, attention, rng, layers, head_count)
        _latency(index, handle, corpus, planned, rng, args.queries, layers, head_count)
        started = time.perf_counter()
        approx = build_index(
            corpus,
            handle,
            work / "approximate",
            options=BuildOptions(args.batch_tokens, args.bits, approximate="always"),
        )
        approximate = Index.open(approx.directory)
        m = approximate.manifest
        print(
            f"\napproximate index (IVF, {m.approximate_lists} clusters; built in "
            f"{time.perf_counter() - started:.1f} s, "
            f"{sum(m.files.values()) / total / 1024:.2f} KiB/token), against exact float32 search:"
        )
        for probes in (m.default_probes // 2, m.default_probes, m.default_probes * 2):
            recall = _recall(
                approximate,
                hidden,
                heads,
                np.random.default_rng(args.seed),
                args.queries,
                layers,
                head_count,
                probes,
                quiet=True,
            )
            times = _search_times(approximate, probes, rng, layers, 50)
            print(
                f"  {probes:4d} clusters scanned: recall@50 {recall:.4f}, nearest neighbours p50 "
                f"{np.percentile(times, 50):.1f} ms{'  (default)' if probes == m.default_probes else ''}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _recall(
    index,
    hidden,
    heads,
    rng,
    queries: int,
    layers: int,
    head_count: int,
    probes: int | None = None,
    quiet: bool = False,
) -> float:
    """Mean recall@50 of ``index``'s searches against exact float32 search, both modes mixed."""
    recalls = {"embedding": [], "heads": []}
    total = hidden.shape[1]
    for q in range(queries):
        mode = "embedding" if q % 2 == 0 else "heads"
        layer = int(rng.integers(layers))
        row = int(rng.integers(total))
        chosen = tuple(
            sorted(int(h) for h in rng.choice(head_count, size=int(rng.integers(1, head_count + 1)), replace=False))
        )
        exact_vectors = hidden[layer] if mode == "embedding" else heads[layer]
        vector = exact_vectors[row] if mode == "embedding" else zero_other_heads(heads[layer][row], chosen, head_count)
        exact = np.argsort(-(exact_vectors @ vector), kind="stable")[:50]
        _, found = index.search(Query(mode, layer, chosen if mode == "heads" else None, probes=probes), vector)
        recalls[mode].append(len(set(exact.tolist()) & set(found.tolist())) / 50)
    if not quiet:
        for mode, values in recalls.items():
            print(
                f"  recall@50 {mode:9s} mean {np.mean(values):.4f}, min {np.min(values):.2f} over {len(values)} queries"
            )
    return float(np.mean(recalls["embedding"] + recalls["heads"]))


def _search_times(index, probes: int, rng, layers: int, count: int) -> list[float]:
    times = []
    for q in range(count):
        layer = q % layers
        vector = index.vector_set("hidden", layer).decoded([int(rng.integers(index.size))])[0]
        start = time.perf_counter()
        index.search(Query("embedding", layer, probes=probes), vector)
        times.append((time.perf_counter() - start) * 1000)
    return times


def _attention_agreement(index, planned, attention, rng, layers: int, head_count: int) -> None:
    worst, agree, count = 0.0, 0, 0
    for number in rng.choice(len(planned), size=min(500, len(planned)), replace=False):
        exact = attention[number]
        stored = index.attention.weights(number)
        worst = max(worst, float(np.abs(stored - exact).max()))
        layer, position = int(rng.integers(layers)), int(rng.integers(planned[number].rows))
        chosen = rng.choice(head_count, size=int(rng.integers(1, head_count + 1)), replace=False)
        agree += int(
            np.argmax(stored[layer, chosen, position].mean(0)) == np.argmax(exact[layer, chosen, position].mean(0))
        )
        count += 1
    print(
        f"  stored attention: largest difference from the model's {worst:.5f} (bound "
        f"{index.attention.error_bound:.5f}); "
        f"most-attended token agrees in {agree}/{count} sampled matches"
    )


def _latency(index, handle, corpus, planned, rng, queries: int, layers: int, head_count: int) -> None:
    full, search_only = [], []
    for q in range(queries + 5):
        item = planned[int(rng.integers(len(planned)))]
        text = corpus.sentences[item.sentence].text
        token = int(item.positions[int(rng.integers(item.rows))])
        mode = "embedding" if q % 2 == 0 else "heads"
        chosen = tuple(sorted(rng.choice(head_count, size=int(rng.integers(1, head_count + 1)), replace=False)))
        query = Query(mode, q % layers, chosen if mode == "heads" else None)
        start = time.perf_counter()
        result = index.query(handle, text, token, query)
        elapsed = time.perf_counter() - start
        assert len(result.matches) == 50
        if q >= 5:  # the first requests load the vector sets
            full.append(elapsed * 1000)
        vector = np.asarray(index.vector_set("hidden" if mode == "embedding" else "heads", query.layer).decoded([0]))[0]
        start = time.perf_counter()
        index.search(query, vector)
        if q >= 5:
            search_only.append((time.perf_counter() - start) * 1000)
    p50, p99 = np.percentile(full, 50), np.percentile(full, 99)
    print(f"\nP5 search latency over {queries} requests (both modes, every layer, random head subsets)")
    print(
        f"  whole request (model on the query sentence, top 50, contexts, summaries): p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms (goals {GOAL_P50_MS:.0f} / {GOAL_P99_MS:.0f} ms) "
        f"{'ok' if p50 <= GOAL_P50_MS and p99 <= GOAL_P99_MS else 'MISSED'}"
    )
    print(
        f"  nearest neighbours alone: p50 {np.percentile(search_only, 50):.1f} ms, p99 "
        f"{np.percentile(search_only, 99):.1f} ms"
    )
    grouped = []
    for q in range(queries + 5):  # the same mix, each token's whole word searched, one match per sentence
        item = planned[int(rng.integers(len(planned)))]
        token = int(item.positions[int(rng.integers(item.rows))])
        mode = "embedding" if q % 2 == 0 else "heads"
        chosen = tuple(sorted(rng.choice(head_count, size=int(rng.integers(1, head_count + 1)), replace=False)))
        query = Query(mode, q % layers, chosen if mode == "heads" else None, unit="word", per_sentence=True)
        start = time.perf_counter()
        index.query(handle, corpus.sentences[item.sentence].text, token, query)
        if q >= 5:
            grouped.append((time.perf_counter() - start) * 1000)
    print(
        f"  words searched as words, one match per sentence (whole request): p50 {np.percentile(grouped, 50):.1f} ms, "
        f"p99 {np.percentile(grouped, 99):.1f} ms"
    )


if __name__ == "__main__":
    main()
