"""The search-workers line of `bench/scale.py --search`: the large set's shards searched by Ray actors
(`attnscope.index.search_workers`), against the same shards searched in this process (fan-out) and the
merged on-disk index: p50 per query (one at a time, top 50) and whether the top 50 are equal.

The workers open an index folder as `Index.open(..., search_workers=...)` has them do: a manifest naming
the shards (``vector_shards``), the ranges, and one IVF file per shard numbered from 0 (a committed
fan-out index's layout). The bench writes that folder around the shard files it built; the manifest
names no model or corpus (the workers read only the vector sets).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from attnscope.index.manifest import FORMAT, FORMAT_VERSION, Manifest
from attnscope.index.search_workers import SearchWorkers, WorkerPool


def write_fan_out_folder(
    folder: Path, files: list[Path], bounds: list[int], width: int, ranges, lists: int
) -> Manifest:
    """An index folder holding the shard files ``files`` (rows from 0 each; shard i starts at global row
    ``bounds[i]``) as hidden states of layer 0; returns its manifest."""
    parts = []
    for number, (path, first, end) in enumerate(zip(files, bounds, bounds[1:])):
        shard = folder / "shards" / f"{number:05d}"
        shard.mkdir(parents=True)
        os.replace(path, shard / "ivf.hidden.0.faiss")
        parts.append({"folder": f"shards/{number:05d}", "first": int(first), "rows": int(end - first)})
    low, span = ranges.low[None], ranges.span[None]
    np.savez(folder / "ranges.npz", hidden_low=low, hidden_span=span, heads_low=low, heads_span=span)
    manifest = Manifest(
        model="(bench: vectors only)", model_fingerprint="", tokenizer_fingerprint="", corpus="resampled EWT",
        corpus_checksum="", corpus_files=[], annotator="", fields=[], layers=1, heads=1, head_dim=width,
        hidden_size=width, sentences=0, tokens=bounds[-1], truncated_sentences=0, dropped_tokens=0,
        skipped_sentences=0, vector_bits=8, attention_bits=7, versions={}, approximate_lists=lists,
        default_probes=max(1, lists // 4), format=FORMAT, format_version=FORMAT_VERSION, vector_shards=parts,
    )  # fmt: skip
    (folder / "manifest.json").write_text(manifest.to_json())
    return manifest


def worker_line(folder: Path, manifest: Manifest, fan, merged, queries: np.ndarray, probes: list[int], args) -> None:
    """Prints, per probes: p50 of the workers, the in-process fan-out and the merged index, and how many
    queries' top 50 the workers return equal to each (rows and scores)."""
    from scale_search import TOP, timed_search

    options = SearchWorkers(workers=args.search_workers, local_cpus=args.search_workers, threads_per_worker=1)
    pool = WorkerPool.start(str(folder), folder, manifest, options, cache_bytes=1 << 40)
    try:
        spread = pool.vector_set("hidden", 0)
        print(
            f"  search workers: {args.search_workers} Ray actors ({len(manifest.vector_shards or [])} shards, "
            f"1 CPU and 1 faiss thread each), a local cluster; one query at a time, top {TOP}"
        )
        print(f"  {'probes':>6s} | {'workers p50':>11s} | {'fan-out p50':>11s} | {'merged p50':>10s} | same top {TOP}")
        for count in probes:
            worker_ms, worker_rows = timed_search(spread, queries, count)
            fan_ms, fan_rows = timed_search(fan, queries, count)
            merged_ms, merged_rows = timed_search(merged, queries, count)
            same_scores = all(
                np.array_equal(spread.search(q, TOP, None, count)[0], fan.search(q, TOP, None, count)[0])
                for q in queries[:20]
            )
            print(
                f"  {count:6d} | {np.percentile(worker_ms, 50):8.1f} ms | {np.percentile(fan_ms, 50):8.1f} ms | "
                f"{np.percentile(merged_ms, 50):7.1f} ms | rows as fan-out "
                f"{int((worker_rows == fan_rows).all(axis=1).sum())}/{len(queries)}, as merged "
                f"{int((worker_rows == merged_rows).all(axis=1).sum())}/{len(queries)}; scores as fan-out "
                f"(20 queries): {'equal' if same_scores else 'DIFFER'}"
            )
    finally:
        pool.close()
