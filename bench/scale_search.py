"""The search half of `bench/scale.py` (issue 19): PQ codes' recall and bytes, disk per token for the
BERT-base shape, and one large vector set searched merged (one on-disk IVF) and fanned out (shards).

Recall@50 is always against exact float32 search over the same (unquantised) vectors: the share of the
exact top 50 that a search returns. Latencies are one query at a time, top 50, on this machine's shared
cores (noisy: read p50 beside the load printed with it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from attnscope.index import ivf_shards, pq, vectors
from attnscope.index.shard_sets import Shard, ShardedSet
from scale_vectors import anisotropic, corpus_vectors, mean_cosine, resampled_chunk, spectrum

TOP = 50
GOAL_RECALL, GOAL_P50_MS, GOAL_PQ_BYTES = 0.95, 50.0, 1900
BERT_BASE_LAYERS, BERT_BASE_WIDTH, CHOSEN_LAYERS = 12, 768, 4
LAYERS = (1, 3, 5)
"""The default model's layers whose real vectors the bench reads (cached)."""


def exact_top(data: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """(queries, TOP) rows of the exact float32 top 50, ties by row."""
    scores = queries @ data.T
    return np.lexsort((np.broadcast_to(np.arange(len(data)), scores.shape), -scores), axis=-1)[:, :TOP]


def recall(truth: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Per query: the share of ``truth``'s rows that ``found`` holds."""
    return np.array([len(set(t.tolist()) & set(f.tolist())) / len(t) for t, f in zip(truth, found)])


class Floats:
    """Float vectors as a re-ranking `pq.PQSet`'s finer set: what vectors recomputed for the candidates'
    sentences at query time (the model run again on them) would give, with nothing more stored."""

    def __init__(self, data: np.ndarray):
        self.data, self.count = data, len(data)

    def decoded(self, rows: np.ndarray) -> np.ndarray:
        return self.data[rows]


def pq_recalls(data: np.ndarray, queries: np.ndarray, choices: list[int], rerank: int, seed: int) -> list[tuple]:
    """(layout, bytes per vector, mean recall@50, min) for 8-bit codes, each pq<m>, and pq<m> re-ranked:
    ``rerank`` x 50 candidates scored again against the 8-bit codes (whose bytes then count too), or
    against float vectors recomputed at query time (`Floats`: no bytes stored)."""
    truth = exact_top(data, queries)
    width = data.shape[1]
    rng = np.random.default_rng(seed)
    sample = data[np.sort(rng.choice(len(data), size=min(len(data), 30_000), replace=False))]
    ranges = vectors.Ranges.from_sample(sample)
    sq = vectors.VectorSet.from_codes(vectors.encode(data, 8, ranges), width, 8, ranges)
    got = recall(truth, sq.search(queries, TOP)[1])
    rows = [("8-bit codes", width, got.mean(), got.min())]
    for m in choices:
        index = pq.add_vectors(pq.train_pq(sample, m, seed=seed), data)
        got = recall(truth, pq.PQSet(index).search(queries, TOP)[1])
        rows.append((f"pq{m}", m, got.mean(), got.min()))
        if rerank > 1:
            got = recall(truth, pq.PQSet(index, finer=sq, rerank=rerank).search(queries, TOP)[1])
            rows.append((f"pq{m} + re-rank x{rerank} on 8-bit", m + width, got.mean(), got.min()))
            got = recall(truth, pq.PQSet(index, finer=Floats(data), rerank=rerank).search(queries, TOP)[1])
            rows.append((f"pq{m} + re-rank x{rerank} recomputed", m, got.mean(), got.min()))
    return rows


def pq_section(real: dict[str, np.ndarray], args) -> list[tuple]:
    """Prints PQ recall on the real 384-wide sets and a synthetic 768-wide one; returns the 768 rows."""
    rng = np.random.default_rng(args.seed)
    layer = LAYERS.index(args.layer)
    synthetic = anisotropic(real["hidden"][layer], BERT_BASE_WIDTH, args.synthetic_rows, args.seed)
    sets = {
        f"default model, hidden states after layer {args.layer} (EWT, 384 wide)": (
            real["hidden"][layer],
            [48, 96, 192],
        ),
        f"default model, head embeddings of layer {args.layer} (EWT, 384 wide)": (real["heads"][layer], [48, 96, 192]),
        "synthetic, 768 wide, shaped like the hidden states above": (synthetic, [96, 128, 192, 384]),
    }
    print(f"\nPQ codes: recall@{TOP} against exact float32 search ({args.queries} corpus vectors as queries)")
    last: list[tuple] = []
    for name, (data, choices) in sets.items():
        values, mean = spectrum(data)
        print(
            f"  {name}: {len(data):,} vectors; mean cosine of random pairs {mean_cosine(data):.3f}, "
            f"top 10 of {len(values)} components hold {values[:10].sum() / values.sum():.2f} of the variance, "
            f"mean norm {np.linalg.norm(mean):.2f}"
        )
        queries = data[rng.choice(len(data), size=args.queries, replace=False)]
        started = time.perf_counter()
        last = pq_recalls(data, queries, choices, args.rerank, args.seed)
        for layout, size, mean_recall, low in last:
            print(f"    {layout:34s} {size:5d} B/vector  recall@{TOP} {mean_recall:.3f} (min {low:.2f})")
        print(f"    ({time.perf_counter() - started:.0f} s to train, encode and search)")
    return last


def disk_section(rows_768: list[tuple], index_dir: Path) -> None:
    """Disk per token of the BERT-base shape per layout, from the default model's EWT index's measured
    attention and table bytes per token per layer (the same 12 heads, the same tokenizer)."""
    import json

    manifest = json.loads((index_dir / "manifest.json").read_text())
    files, tokens, layers = manifest["files"], manifest["tokens"], manifest["layers"]
    attention = (files["attention.bin"] + files["attention_spans.npy"]) / tokens / layers
    tables = sum(v for k, v in files.items() if k.endswith((".parquet", ".npz"))) / tokens
    codes = [v for k, v in files.items() if k.endswith(".codes.zst")]
    sq_ratio = np.mean(codes) / tokens / manifest["hidden_size"]
    print(
        f"\nDisk per token, BERT-base shape ({BERT_BASE_LAYERS} layers x 12 heads, {BERT_BASE_WIDTH} wide, hidden "
        f"states and head embeddings): attention {attention:.0f} B per layer and tables {tables:.0f} B as measured "
        f"in {index_dir.name} ({tokens:,} tokens); 8-bit codes at its zstd ratio {sq_ratio:.2f}, PQ codes "
        f"uncompressed; recall from the 768-wide synthetic set; goal <= {GOAL_PQ_BYTES} B at recall@{TOP} "
        f">= {GOAL_RECALL}"
    )
    print(f"  {'layout':34s} {'every layer':>12s} {f'{CHOSEN_LAYERS} layers':>10s}  recall@{TOP}")
    for layout, size, mean_recall, _ in rows_768:
        per_vector = size * sq_ratio if layout == "8-bit codes" else size
        if "on 8-bit" in layout:
            per_vector = size - BERT_BASE_WIDTH + BERT_BASE_WIDTH * sq_ratio
        every, chosen = (n * (2 * per_vector + attention) + tables for n in (BERT_BASE_LAYERS, CHOSEN_LAYERS))
        meets = chosen <= GOAL_PQ_BYTES and mean_recall >= GOAL_RECALL
        print(
            f"  {layout:34s} {every / 1024:8.2f} KiB {chosen / 1024:6.2f} KiB  {mean_recall:.3f}"
            f"{'  goal met (4 layers)' if meets else ''}"
        )


class ExactTop:
    """The running exact top 50 of fixed queries over a stream of float chunks (ties by row)."""

    def __init__(self, queries: np.ndarray):
        self.queries = queries
        self.scores = np.full((len(queries), 0), -np.inf, np.float32)
        self.rows = np.zeros((len(queries), 0), np.int64)

    def add(self, chunk: np.ndarray, first: int) -> None:
        scores = self.queries @ chunk.T
        rows = np.broadcast_to(np.arange(first, first + len(chunk)), scores.shape)
        scores, rows = np.concatenate([self.scores, scores], axis=1), np.concatenate([self.rows, rows], axis=1)
        order = np.lexsort((rows, -scores), axis=-1)[:, :TOP]
        self.scores, self.rows = np.take_along_axis(scores, order, 1), np.take_along_axis(rows, order, 1)


def _shard_bounds(count: int, shards: int, chunk: int) -> list[int]:
    """Shard starts and the end: whole chunks per shard, the last shard shorter."""
    per = -(-count // shards // chunk) * chunk or chunk
    return [*range(0, count, per), count]


def build_large(real: np.ndarray, args, work: Path) -> dict:
    """Streams ``args.vectors`` resampled vectors once: exact top 50 of the queries, 8-bit IVF shards
    (each added to a copy of one trained index, saved), PQ shards on the same clusters; then merges the
    8-bit shards on disk. Returns what the search measurements need, with the times taken."""
    width, count, chunk, noise, seed = real.shape[1], args.vectors, args.chunk, args.noise, args.seed
    spread = real.std(axis=0)
    lists = args.lists or min(vectors.inverted_lists(count), 4096)
    queries = resampled_chunk(real, spread, count, args.queries, noise, seed)  # rows past the set's
    sample = resampled_chunk(real, spread, count + 1, min(count, args.train_per_list * lists), noise, seed)
    ranges = vectors.Ranges.from_sample(sample)
    times: dict[str, float] = {}
    started = time.perf_counter()
    decoded_sample = vectors.decode(vectors.encode(sample, 8, ranges), width, 8, ranges)
    trained = vectors.trained_ivf(decoded_sample, width, 8, ranges, lists, seed, iterations=args.iterations)
    coarse = faiss.extract_index_ivf(trained).quantizer
    trained_pq = {m: pq.train_pq(sample, m, seed=seed, coarse=coarse) for m in args.pq}
    times["train"] = time.perf_counter() - started
    exact, bounds, files = ExactTop(queries), _shard_bounds(count, args.shards, chunk), []
    pq_shards: dict[int, list] = {m: [] for m in args.pq}
    for number, (first, end) in enumerate(zip(bounds, bounds[1:])):
        codes, pq_parts = [], {m: faiss.clone_index(t) for m, t in trained_pq.items()}
        for start in range(first, end, chunk):
            clock = time.perf_counter()
            x = resampled_chunk(real, spread, start, min(chunk, end - start), noise, seed)
            exact.add(x, start)
            times["generate + exact"] = times.get("generate + exact", 0) + time.perf_counter() - clock
            clock = time.perf_counter()
            codes.append(vectors.encode(x, 8, ranges))
            ids = np.arange(start, start + len(x), dtype=np.int64)
            for part in pq_parts.values():
                part.add_with_ids(x, ids)
            times["pq shards"] = times.get("pq shards", 0) + time.perf_counter() - clock
        clock = time.perf_counter()
        shard = ivf_shards.add_shard(trained, np.concatenate(codes), width, 8, ranges, first)
        files.append(work / f"shard{number}.faiss")
        faiss.write_index(shard, str(files[-1]))
        if args.search_workers:  # the same shard numbered from 0, as a committed fan-out index keeps it
            faiss.write_index(
                ivf_shards.add_shard(trained, np.concatenate(codes), width, 8, ranges, 0),
                str(work / f"local{number}.faiss"),
            )
        del shard, codes
        times["8-bit shards"] = times.get("8-bit shards", 0) + time.perf_counter() - clock
        for m, part in pq_parts.items():
            pq_shards[m].append(part)
        print(
            f"    shard {number}: rows {first:,}-{end - 1:,} ({time.perf_counter() - started:.0f} s so far)", flush=True
        )
    clock = time.perf_counter()
    ivf_shards.merge_on_disk(trained, files, work / "merged.faiss")
    times["merge on disk"] = time.perf_counter() - clock
    return {
        "queries": queries,
        "truth": exact.rows,
        "ranges": ranges,
        "trained": trained,
        "trained_pq": trained_pq,
        "bounds": bounds,
        "files": files,
        "pq_shards": pq_shards,
        "lists": lists,
        "times": times,
    }


def timed_search(found, queries: np.ndarray, probes: int | None, passes: int = 2) -> tuple[list[float], np.ndarray]:
    """Milliseconds per query (one at a time, top 50) of the last pass, and its rows (queries, 50)."""
    for _ in range(passes):
        times, rows = [], []
        for query in queries:
            started = time.perf_counter()
            _, found_rows = found.search(query, TOP, None, probes)
            times.append((time.perf_counter() - started) * 1000)
            rows.append(found_rows[0])
    return times, np.array(rows)


def large_section(real: np.ndarray, args) -> None:
    """Builds the large set and prints merged vs fan-out search (latency, recall, equality) and PQ."""
    width, count = real.shape[1], args.vectors
    work = Path(tempfile.mkdtemp(prefix="attnscope-scale-", dir=args.work))
    print(
        f"\n{count:,} vectors in one set ({width} wide: EWT hidden states after layer {args.layer} of the default "
        f"model, resampled, Gaussian noise {args.noise} x each dimension's spread, unit length), "
        f"{len(_shard_bounds(count, args.shards, args.chunk)) - 1} shards (whole --chunk rows each); "
        f"{args.queries} queries (fresh resamples); building in {work}"
    )
    try:
        built = build_large(real, args, work)
        lists, times, ranges, bounds = built["lists"], built["times"], built["ranges"], built["bounds"]
        print(
            f"  {lists} clusters; "
            + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in times.items())
            + f" ({count / sum(times.values()):,.0f} vectors/s overall)"
        )
        merged = vectors.VectorSet(ivf_shards.read_merged(work / "merged.faiss"), count, width, 8, ranges)
        fan = ShardedSet([Shard(_loaded(f, width, ranges), first, True) for f, first in zip(built["files"], bounds)])
        disk = sum(p.stat().st_size for p in work.iterdir() if p.name.startswith("merged"))
        print(
            f"  merged on-disk index {disk / count:.1f} B/vector (codes {width} B + id 8 B); "
            f"load {os.getloadavg()[0]:.1f}"
        )
        _compare(merged, fan, built, args)
        if args.search_workers:
            from scale_workers import worker_line, write_fan_out_folder

            folder = work / "fan-out-index"
            local = [work / f"local{n}.faiss" for n in range(len(bounds) - 1)]
            manifest = write_fan_out_folder(folder, local, bounds, width, ranges, lists)
            worker_line(folder, manifest, fan, merged, built["queries"], args.probes, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _loaded(path: Path, width: int, ranges: vectors.Ranges) -> vectors.VectorSet:
    index = faiss.read_index(str(path))
    return vectors.VectorSet(index, int(index.ntotal), width, 8, ranges)


def _compare(merged, fan, built: dict, args) -> None:
    queries, truth = built["queries"], built["truth"]
    print(
        f"  {'probes':>6s} | {'merged p50':>10s} {'p99':>6s} {'recall':>7s} | {'fan-out p50':>11s} {'p99':>6s} "
        f"{'recall':>7s} | same top {TOP}"
    )
    for probes in args.probes:
        merged_ms, merged_rows = timed_search(merged, queries, probes)
        fan_ms, fan_rows = timed_search(fan, queries, probes)
        a, b = recall(truth, merged_rows), recall(truth, fan_rows)
        same = int((merged_rows == fan_rows).all(axis=1).sum())
        ok = np.percentile(merged_ms, 50) <= GOAL_P50_MS and a.mean() >= GOAL_RECALL
        print(
            f"  {probes:6d} | {np.percentile(merged_ms, 50):8.1f} ms {np.percentile(merged_ms, 99):6.1f} "
            f"{a.mean():7.3f} | "
            f"{np.percentile(fan_ms, 50):9.1f} ms {np.percentile(fan_ms, 99):6.1f} {b.mean():7.3f} | "
            f"{same}/{len(queries)}{'  goals met (merged)' if ok else ''}"
        )
    for m, shards in built["pq_shards"].items():
        codes_only = pq.PQSet(ivf_shards.merge_in_memory(built["trained_pq"][m], shards))
        reranked = pq.PQSet(codes_only.index, finer=merged, rerank=args.rerank)
        for probes in args.probes:
            plain_ms, plain_rows = timed_search(codes_only, queries, probes)
            re_ms, re_rows = timed_search(reranked, queries, probes)
            print(
                f"  pq{m} ({m} B/vector), {probes} probes: p50 {np.percentile(plain_ms, 50):.1f} ms, recall "
                f"{recall(truth, plain_rows).mean():.3f}; re-ranked x{args.rerank} on the 8-bit codes: p50 "
                f"{np.percentile(re_ms, 50):.1f} ms, recall {recall(truth, re_rows).mean():.3f}"
            )


def run(args) -> None:
    """Everything `bench/scale.py --search` prints."""
    faiss.omp_set_num_threads(args.threads)
    real = corpus_vectors(args.cache, LAYERS, args.corpus)
    if not args.skip_pq:
        rows_768 = pq_section(real, args)
        if args.index.is_dir():
            disk_section(rows_768, args.index)
        else:
            print(f"\n(no index at {args.index}: disk per token left out; build one with `attnscope index`)")
    if args.vectors:
        large_section(real["hidden"][LAYERS.index(args.layer)], args)
