"""Issue 19: the cold re-rank's forward pass, stopped after the searched layer, against the whole pass.

A re-rank (`index/rerank.py`) recomputes the vectors of the sentences that hold a PQ search's candidates:
about 200 sentences for the top 50 x 4. It used to run every layer (`extract.extract_batch`); it now stops
once the searched layer's vectors are recorded (`extract.extract_layer`). For each model, this takes
``--sentences`` seeded EWT sentences in the re-rank's batches (4,096 padded tokens) and times both at the
first, a middle and the second-to-last layer, for head embeddings and hidden states, the two runs
alternating (``--repeats``, median), and checks that their vectors are equal. It prints the seconds and
the ratio stopped / whole (below 1: faster).

    .venv/bin/python bench/rerank_recompute.py [--models default smollm2] [--sentences 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import attnscope
from attnscope.corpus import open_corpus
from attnscope.index.extract import extract_batch, extract_layer, plan_batches, plan_sentences
from attnscope.index.rerank import BATCH_TOKENS

ROOT = Path(__file__).resolve().parent.parent


def timed(run, batches) -> tuple[float, list[np.ndarray]]:
    """Seconds to run every batch, and their values."""
    start = time.perf_counter()
    values = [run(batch) for batch in batches]
    return time.perf_counter() - start, values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "data" / "ud_english_ewt"))
    parser.add_argument("--models", nargs="+", default=["default", "smollm2"])
    parser.add_argument("--sentences", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sentences = open_corpus(args.corpus).sentences
    chosen = np.random.default_rng(args.seed).choice(len(sentences), args.sentences, replace=False)
    print(f"{args.sentences} seeded sentences of {len(sentences):,}; torch threads {torch.get_num_threads()}")
    print("model | layer | kind | whole pass s | stopped s | stopped / whole | equal")
    for name in args.models:
        handle = attnscope.load(name)
        planned, _ = plan_sentences(handle, [sentences[int(i)] for i in chosen])
        lengths = [len(p.tokens) for p in planned]
        batches = [[planned[i] for i in sorted(b)] for b in plan_batches(lengths, BATCH_TOKENS)]
        layers = handle.stacks[handle.main_stack].layers
        for layer in sorted({0, layers // 2, layers - 2}):
            for kind in ("heads", "hidden"):
                whole_s, stopped_s, equal = [], [], True
                for _ in range(args.repeats):  # alternating, so both see the same load
                    seconds, whole = timed(lambda b, h=handle, n=layer, k=kind: _whole(h, b, n, k), batches)
                    whole_s.append(seconds)
                    seconds, stopped = timed(lambda b, h=handle, n=layer, k=kind: extract_layer(h, b, n, k), batches)
                    stopped_s.append(seconds)
                    equal = equal and all(np.array_equal(a, b) for a, b in zip(whole, stopped, strict=True))
                w, t = float(np.median(whole_s)), float(np.median(stopped_s))
                print(f"{handle.name} | {layer} of {layers} | {kind} | {w:.2f} | {t:.2f} | {t / w:.2f} | {equal}")


def _whole(handle, batch, layer: int, kind: str) -> np.ndarray:
    extracted = extract_batch(handle, batch, [layer], attention=False)
    return extracted.heads[0] if kind == "heads" else extracted.hidden[0]


if __name__ == "__main__":
    main()
