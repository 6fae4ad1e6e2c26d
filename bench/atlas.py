"""The head atlas (B2) on UD English EWT: its time against the raw batched forward pass of the same model.

All on the default model (all-MiniLM-L6-v2) and the EWT dev+test files in ../shared/data, in one run:
the raw batched forward (transformers' default attention, nothing kept; the same sentences in the same
batches; measured before and after the atlas, the faster counts) against `compute_atlas` (planning,
the recorded forward passes, pattern sums and relation tallies), and the ratio. No goal is set for
the atlas in product.md; this says what a user waits for and where the time goes.

    .venv/bin/python bench/atlas.py [--corpus ../shared/data/ud_english_ewt] [--batch-tokens 4096]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import attnscope
from attnscope.atlas import compute_atlas
from attnscope.atlas.compute import corpus_sentences
from attnscope.corpus import open_corpus
from attnscope.index.extract import plan_batches
from corpus import raw_forward_seconds  # bench/corpus.py, beside this file

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(ROOT.parent / "shared" / "data" / "ud_english_ewt"))
    parser.add_argument("--batch-tokens", type=int, default=4096)
    args = parser.parse_args()

    handle = attnscope.load("default")
    corpus = open_corpus(args.corpus)
    sentences, _ = corpus_sentences(handle, corpus)
    batches = plan_batches([len(s.tokens) for s in sentences], args.batch_tokens)
    tokens = sum(len(s.tokens) for s in sentences)
    print(
        f"corpus: {corpus.name}, {len(sentences):,} sentences, {tokens:,} tokens (special ones included); "
        f"model {handle.name}; torch threads {torch.get_num_threads()}"
    )

    raw_forward_seconds(handle, sentences, batches[:2])  # warm-up
    raw_before = raw_forward_seconds(handle, sentences, batches)
    started = time.perf_counter()
    atlas = compute_atlas(handle, corpus, batch_tokens=args.batch_tokens)
    seconds = time.perf_counter() - started
    raw_after = raw_forward_seconds(handle, sentences, batches)
    raw = min(raw_before, raw_after)
    print(
        f"  raw batched forward  {raw:6.1f} s  {tokens / raw:8,.0f} tokens/s  (runs: {raw_before:.1f} s, "
        f"{raw_after:.1f} s)"
    )
    print(
        f"  compute_atlas        {seconds:6.1f} s  {tokens / seconds:8,.0f} tokens/s  "
        f"({len(atlas.relations.names) if atlas.relations else 0} relations, {atlas.layers * atlas.heads} heads)"
    )
    print(f"  ratio (raw / atlas)  {raw / seconds:.3f}")


if __name__ == "__main__":
    main()
