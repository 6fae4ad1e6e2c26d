"""The PQ-index half of `bench/scale.py` (issue 19): real PQ-coded indexes of EWT, re-ranked or not.

Builds EWT dev + test (the CoNLL-U files, no silver NER) with the default model through the real build
(`build_index`, ``--codes pq<m>``, every layer, attention stored) once per choice of codes, then for
each index and vector kind (hidden states, head embeddings with every head) at ``--layer``:

- bytes per token on disk, measured (the manifest's file sizes: vector sets, attention, tables), and
  projected for the BERT-base shape (12 layers x 12 heads, 768 wide): per token = L x (2 x v + a) + t,
  with v the measured bytes per vector of a pq<m> set (m code bytes and faiss's 8-byte id, whatever the
  width), a the measured attention bytes per token and layer (the same 12 heads and tokenizer; 0 with
  ``--attention recomputed``), t the tables' bytes per token, L 12 (every layer) or 4 (``--layers``);
- recall@50 against exact float32 search (every row's float vector as the build extracts it, computed
  once with the same batched extraction; ties by row), without re-ranking (the codes alone) and
  re-ranked x ``--rerank`` (the default: the candidates' sentences run through the model again);
- the search's p50 / p90 per query (`Index.search`, the query vector given: the query's own forward pass
  is not counted); re-ranked warm (every sentence's vectors in the re-rank cache: the scoring alone) and
  cold (an empty cache for each of the first ``--cold-queries`` queries: the candidates' sentences run
  through the model again).

Queries are ``--pq-queries`` corpus rows drawn with ``--seed``, searched with their own float vectors.

    nice -n 19 .venv/bin/python bench/scale.py --pq-index [--codes pq48 pq96] [--layer 3] [--rerank 4]
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from attnscope import load
from attnscope.corpus import open_corpus
from attnscope.index import BuildOptions, Index, Query, build_index
from attnscope.index.attention_source import BlockCache
from attnscope.index.rerank import RecomputedVectors

TOP = 50
GOAL_RECALL, GOAL_BYTES = 0.95, 1900
BERT_BASE_LAYERS, CHOSEN_LAYERS = 12, 4
KINDS = {"hidden": "embedding", "heads": "heads"}


def float_vectors(index: Index, handle, kind: str, layer: int) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """(tokens, width) float32: every row's exact vector of ``kind`` at ``layer``, in row order; and the
    same per sentence (what the re-ranking recomputes for a candidate sentence)."""
    tables = index.tables
    sentences = list(range(len(tables.sentences["text"])))
    found = RecomputedVectors(tables, handle, BlockCache(0)).vectors(sentences, kind, layer)
    out = np.zeros((index.size, next(iter(found.values())).shape[1]), np.float32)
    for sentence, block in found.items():
        span = tables.sentence_rows(sentence)
        out[span.start : span.stop] = block
    return out, found


def exact_top(data: np.ndarray, queries: np.ndarray) -> list[set[int]]:
    """Each query's exact float32 top 50 rows (ties by row)."""
    scores = queries @ data.T
    order = np.lexsort((np.broadcast_to(np.arange(len(data)), scores.shape), -scores), axis=-1)[:, :TOP]
    return [set(row.tolist()) for row in order]


def measure(index: Index, handle, kind: str, layer: int, data: tuple, rows: np.ndarray, args) -> dict:
    """Recall@50 and p50 / p90 ms of ``rows``' vectors searched by the codes alone, re-ranked with every
    sentence's vectors in the cache (warm: the scoring only), and re-ranked with an empty cache for each
    of the first ``args.cold_queries`` (cold: the candidates' sentences run through the model)."""
    vectors, blocks = data
    truth = exact_top(vectors, vectors[rows])
    warm = BlockCache(1 << 31)
    for sentence, block in blocks.items():
        warm.put((kind, layer, sentence), block)
    out = {}
    for name, factor, count in (
        ("codes", 1, len(rows)),
        ("re-ranked", args.rerank, len(rows)),
        ("cold", args.rerank, args.cold_queries),
    ):
        query = Query(KINDS[kind], layer, top=TOP, rerank=factor)
        found, times = [], []
        for row in rows[:count]:
            index._rerank_cache = BlockCache(0) if name == "cold" else warm
            started = time.perf_counter()
            _, got = index.search(query, vectors[row], handle if factor > 1 else None)
            times.append((time.perf_counter() - started) * 1000)
            found.append(set(got.tolist()))
        recall = np.mean([len(t & f) / len(t) for t, f in zip(truth, found)])
        out[name] = (float(recall), float(np.percentile(times, 50)), float(np.percentile(times, 90)))
    return out


def disk(index_dir: Path) -> dict[str, float]:
    """Bytes per token on disk: vectors (all sets), one vector (per set: as measured, and at scale, without
    the set's fixed codebook and coarse centroids, 4 x width x (256 + clusters) bytes), attention per layer,
    tables, all."""
    manifest = json.loads((index_dir / "manifest.json").read_text())
    files, tokens = manifest["files"], manifest["tokens"]
    layers = len(manifest.get("stored_layers") or range(manifest["layers"]))
    sets = [v for k, v in files.items() if k.endswith(".faiss")]
    fixed = 4 * manifest["hidden_size"] * (256 + max(1, manifest["approximate_lists"]))  # codebook, coarse centroids
    attention = sum(v for k, v in files.items() if k.startswith("attention"))
    tables = sum(v for k, v in files.items() if k.endswith((".parquet", ".npz")))
    return {
        "vectors": sum(sets) / tokens,
        "vector": float(np.mean(sets)) / tokens,
        "at_scale": (float(np.mean(sets)) - fixed) / tokens,
        "attention_layer": attention / tokens / layers,
        "tables": tables / tokens,
        "all": sum(files.values()) / tokens,
        "layers": layers,
        "tokens": tokens,
    }


def projected(sizes: dict[str, float], layers: int, attention: bool) -> float:
    """Bytes per token of the BERT-base shape: layers x (2 x v + a) + t, v a vector's bytes at scale."""
    return layers * (2 * sizes["at_scale"] + (sizes["attention_layer"] if attention else 0)) + sizes["tables"]


def run(args) -> None:
    """Everything `bench/scale.py --pq-index` prints."""
    faiss.omp_set_num_threads(args.threads)
    handle = load("default")
    corpus = open_corpus(args.corpus, silver_ner=False)
    work = Path(tempfile.mkdtemp(prefix="attnscope-scale-pq-", dir=args.work))
    print(f"PQ-coded indexes of {args.corpus.name} (dev + test) with {handle.name}, built in {work}; load {_load()}")
    try:
        built = {}
        for codes in args.codes:
            started = time.perf_counter()
            build_index(corpus, handle, work / codes, options=BuildOptions(codes=codes))
            built[codes] = Index.open(work / codes)
            built[codes].verify(handle)  # the model's fingerprints, once, before any timing
            print(f"  --codes {codes}: built in {time.perf_counter() - started:.0f} s", flush=True)
        first = next(iter(built.values()))
        rows = np.random.default_rng(args.seed).choice(first.size, size=args.pq_queries, replace=False)
        results = {}
        for kind in KINDS:
            started = time.perf_counter()
            data = float_vectors(first, handle, kind, args.layer)
            print(f"  float32 {kind} vectors at layer {args.layer}: {time.perf_counter() - started:.0f} s", flush=True)
            for codes, index in built.items():
                same = np.array_equal(index.tables.sentences["first_row"], first.tables.sentences["first_row"])
                assert same, "the builds numbered their rows alike"
                results[codes, kind] = measure(index, handle, kind, args.layer, data, rows, args)
                print(f"    {codes} {kind}: {results[codes, kind]} (load {_load()})", flush=True)
        _report(built, results, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def _report(built: dict[str, Index], results: dict, args) -> None:
    tokens = next(iter(built.values())).size
    print(
        f"\nrecall@{TOP} against exact float32 search at layer {args.layer} ({args.pq_queries} corpus rows as queries, "
        f"{tokens:,} tokens); search p50 / p90 ms per query, the query vector given; re-ranked x{args.rerank}: warm "
        f"(every sentence's vectors cached: the scoring alone) and cold (an empty cache: the candidates' sentences "
        f"run again, first {args.cold_queries} queries)"
    )
    print(f"  {'codes':6s} {'kind':7s} | {'codes alone':>20s} | {'re-ranked, warm':>22s} | {'cold':>18s}")
    for (codes, kind), found in results.items():
        (plain, p50, p90), (ranked, r50, r90), (_, c50, c90) = found.values()
        print(
            f"  {codes:6s} {kind:7s} | {plain:.3f} {p50:5.1f} / {p90:5.1f} | {ranked:.3f} {r50:6.1f} / {r90:6.1f} | "
            f"{c50:7.0f} / {c90:7.0f}"
        )
    print(
        "\nbytes per token on disk, measured (6 layers, 384 wide, attention stored; vector: one set's file, v: "
        "without its fixed codebook) and projected for the BERT-base shape: L x (2 x v + a) + t"
    )
    print(
        f"  {'codes':6s} {'all':>7s} {'vectors':>8s} {'vector':>7s} {'v':>6s} {'a/layer':>8s} {'t':>5s} | "
        f"{'12 layers':>9s} {'(no attn)':>9s} {'4 layers':>9s} {'(no attn)':>9s}"
    )
    for codes, index in built.items():
        sizes = disk(index.directory)
        every, every_bare = projected(sizes, BERT_BASE_LAYERS, True), projected(sizes, BERT_BASE_LAYERS, False)
        four, four_bare = projected(sizes, CHOSEN_LAYERS, True), projected(sizes, CHOSEN_LAYERS, False)
        print(
            f"  {codes:6s} {sizes['all']:7.0f} {sizes['vectors']:8.0f} {sizes['vector']:7.1f} {sizes['at_scale']:6.1f} "
            f"{sizes['attention_layer']:8.1f} {sizes['tables']:5.1f} | {every:9.0f} {every_bare:9.0f} "
            f"{four:9.0f} {four_bare:9.0f}"
        )
    print(f"  goal: <= {GOAL_BYTES} B a token at recall@{TOP} >= {GOAL_RECALL}")
