"""Issue 19: an index on an object store read in place against the same index on a local disk.

Copies the default model's EWT index (built by `attnscope serve` or `attnscope index ewt`) into an
fsspec ``memory://`` store, opens it with `Index.open(url)` and prints, side by side with the local
copy: the bytes fetched when it opens, after the first search and after ``--queries`` searches of
random layers, modes and head subsets (as a share of the index's bytes), and the search latency (p50)
of each. ``memory://`` has no network: the latency ratio shows attnscope's own cost of reading
through fsspec, not an object store's round trips; the bytes are what any store would serve.

    .venv/bin/python bench/remote_index.py [--index DIR] [--queries 40]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import attnscope
from attnscope.index import Index, Query
from attnscope.index.storage import Store

DEFAULT = Path.home() / ".cache" / "attnscope" / "indexes" / "ewt--sentence-transformers--all-MiniLM-L6-v2"
TEXTS = (
    "The girl ran to a local pub.",
    "I would not recommend this place to anyone.",
    "The prices were reasonable and the staff friendly.",
    "He said that the meeting had been moved to Tuesday.",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=DEFAULT)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ["ATTNSCOPE_CACHE"] = tempfile.mkdtemp(prefix="attnscope-bench-remote-")  # a cold cache
    local = Index.open(args.index)
    total = sum(p.stat().st_size for p in args.index.rglob("*") if p.is_file())
    url = "memory://attnscope-bench/remote-index"
    store = Store.at(url)
    for path in sorted(args.index.rglob("*")):
        if path.is_file():
            store.write(str(path.relative_to(args.index)), path.read_bytes())
    handle = attnscope.load(local.manifest.model)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    remote = Index.open(url)
    opened = time.perf_counter() - started
    assert remote.remote is not None
    print(f"index: {args.index.name}, {local.manifest.tokens:,} tokens, {total / 2**20:.1f} MiB on disk")
    print(f"open: {opened * 1000:.0f} ms, fetched {_share(remote.remote.fetched_bytes, total)}")
    layers, heads = local.manifest.layer_numbers, local.manifest.heads
    times: dict[str, list[float]] = {"local": [], "remote": []}
    for number in range(args.queries):
        text = TEXTS[number % len(TEXTS)]
        layer = int(rng.choice(layers))
        chosen = tuple(sorted(rng.choice(heads, size=int(rng.integers(1, heads + 1)), replace=False).tolist()))
        query = Query("embedding", layer) if number % 2 == 0 else Query("heads", layer, chosen)
        results = []
        for name, index in (("local", local), ("remote", remote)):
            started = time.perf_counter()
            results.append(index.query(handle, text, 2, query))
            times[name].append(time.perf_counter() - started)
        a, b = results
        assert [(m.row, m.score, m.attention) for m in a.matches] == [(m.row, m.score, m.attention) for m in b.matches]
        if number == 0:
            print(f"after the first search: fetched {_share(remote.remote.fetched_bytes, total)}")
    print(f"after {args.queries} searches: fetched {_share(remote.remote.fetched_bytes, total)}; results equal: True")
    p50 = {name: float(np.median(values)) * 1000 for name, values in times.items()}
    first = times["remote"][0] * 1000
    print(
        f"search p50: local {p50['local']:.0f} ms, remote {p50['remote']:.0f} ms "
        f"(ratio {p50['remote'] / p50['local']:.2f}); the remote's first search {first:.0f} ms"
    )


def _share(fetched: int, total: int) -> str:
    return f"{fetched / 2**20:.1f} MiB ({fetched / total:.1%} of the index)"


if __name__ == "__main__":
    main()
