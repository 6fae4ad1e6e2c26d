"""Issue 17: bytes per token of a SmolLM2 corpus index storing 5 layers (0, 8, 16, 24, 29) against all 30,
and the search latency on the 5-layer index.

Builds both indexes over the first ``--sentences`` sentences of EWT dev (in ``--out``, default a temporary
folder), prints bytes per token (vectors, attention, the rest) and the build time of each, then times
``Index.query`` (the query sentence through SmolLM2, nearest neighbours, matches, summaries with Next)
by embedding and by heads at stored layers, and the nearest-neighbour part alone: medians and p90.

    .venv/bin/python bench/index_layers.py [--ewt ../shared/data/ud_english_ewt] [--sentences 400]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import attnscope
from attnscope.corpus import open_corpus
from attnscope.index import BuildOptions, Index, Query, build_index
from attnscope.index.query import query_vector

FIVE = (0, 8, 16, 24, 29)
QUERY = "The girl ran to a local pub to escape the din of her city."


def build(corpus, handle, out: Path, layers) -> float:
    """Build the index of ``layers`` into ``out``, print its bytes per token, return them."""
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    report = build_index(corpus, handle, out, options=BuildOptions(layers=layers))
    m = report.manifest
    size = sum(m.files.values())
    vectors = sum(v for k, v in m.files.items() if k.endswith(".codes.zst") or k.startswith("ivf."))
    attention = m.files.get("attention.bin", 0)
    print(
        f"layers {'all' if layers is None else ','.join(map(str, layers))}: {m.tokens:,} tokens, "
        f"{size / m.tokens / 1000:.1f} KB a token (vectors {vectors / m.tokens / 1000:.2f} KB, attention "
        f"{attention / m.tokens / 1000:.2f} KB, the rest {(size - vectors - attention) / m.tokens / 1000:.2f} KB); "
        f"built in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return size / m.tokens


def timed(call, repeat: int) -> tuple[float, float]:
    """Median and p90 of ``call`` in ms, after one warm-up call."""
    call()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), float(np.percentile(times, 90))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ewt", default="../shared/data/ud_english_ewt")
    parser.add_argument("--sentences", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="attnscope-layers-"))
    root.mkdir(parents=True, exist_ok=True)
    blocks = (Path(args.ewt) / "en_ewt-ud-dev.conllu").read_text(encoding="utf-8").split("\n\n")
    (root / "sub.conllu").write_text("\n\n".join(blocks[: args.sentences]) + "\n\n", encoding="utf-8")
    handle = attnscope.load("smollm2")
    corpus = open_corpus(root / "sub.conllu")
    five_bytes = build(corpus, handle, root / "five", FIVE)
    all_bytes = build(corpus, handle, root / "all", None)
    print(f"5 layers / all 30: {five_bytes / all_bytes:.3f} of the bytes per token")
    five = Index.open(root / "five")
    for name, query in (
        ("by embedding at 16", Query("embedding", 16)),
        ("by heads 1,4 at 8", Query("heads", 8, (1, 4))),
    ):
        p50, p90 = timed(lambda q=query: five.query(handle, QUERY, 3, q), args.repeat)
        cap = attnscope.capture(handle, QUERY, fields=("hidden_states", "head_outputs"), top_k=0)
        vector = query_vector(cap.main, query.mode, query.layer, 3)
        n50, n90 = timed(lambda q=query, v=vector: five.search(q, v), args.repeat)
        print(f"search {name}: whole query p50 {p50:.0f} ms, p90 {p90:.0f} ms; nearest neighbours p50 {n50:.1f} ms")
    print(f"(indexes in {root})")


if __name__ == "__main__":
    main()
