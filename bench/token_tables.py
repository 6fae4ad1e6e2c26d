"""Bytes per token of an index's token table in memory: string columns as Python objects (one str per
row, how `Tables.read` held them before) against dictionary-encoded columns (`index.tables.Column`).

The table is written as an index build writes it (`write_tables`: the corpus tokenised by the default
model's tokenizer, no forward pass), once into ``--tables DIR``, then read both ways. Memory is what
tracemalloc sees retained after the read (numpy buffers and Python objects), per token row: the token
table alone, and with the sentence table (text, ids, sources: one row per sentence).

    python bench/token_tables.py --corpus ../shared/data/ud_english_ewt --tables /tmp/ewt-tables
    python bench/token_tables.py --corpus kjv --tables /tmp/kjv-tables
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from pathlib import Path

import numpy as np


def build(corpus_spec: str, directory: Path) -> None:
    """Write tokens.parquet / sentences.parquet for ``corpus_spec`` tokenised by the default model."""
    import attnscope
    from attnscope.corpus import open_corpus
    from attnscope.index.extract import number_rows, plan_sentences
    from attnscope.index.tables import write_tables

    started = time.perf_counter()
    corpus = open_corpus(corpus_spec)
    read = time.perf_counter() - started
    planned, _ = plan_sentences(attnscope.load("default"), corpus.sentences)
    number_rows(planned, [[i] for i in range(len(planned))])
    directory.mkdir(parents=True, exist_ok=True)
    write_tables(directory, planned, corpus.sentences, corpus.fields)
    print(f"{corpus.name}: {len(corpus)} sentences, {corpus.word_count} words read in {read:.0f} s")


def objects_read(directory: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Both tables as numpy columns, strings as object arrays (the former `Tables.read`)."""
    import pyarrow.parquet as pq

    def columns(name: str) -> dict[str, np.ndarray]:
        table = pq.read_table(directory / name)
        return {c: table.column(c).to_numpy(zero_copy_only=False) for c in table.column_names}

    return columns("tokens.parquet"), columns("sentences.parquet")


def encoded_read(directory: Path) -> tuple[dict, dict]:
    from attnscope.index.tables import Tables

    tables = Tables.read(directory)
    return tables.tokens, tables.sentences


def retained(read, directory: Path) -> tuple[int, int]:
    """Bytes that the two tables ``read`` returns hold: (token table, both tables)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tokens, sentences = read(directory)
    gc.collect()
    both = tracemalloc.get_traced_memory()[0] - before
    del sentences
    gc.collect()
    alone = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del tokens
    return alone, both


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--tables", type=Path, required=True)
    args = parser.parse_args()
    if not (args.tables / "tokens.parquet").is_file():
        build(args.corpus, args.tables)
    import pyarrow.parquet as pq

    encoded_read(args.tables)  # every module imported before anything is measured
    rows = pq.read_metadata(args.tables / "tokens.parquet").num_rows
    files = sum(p.stat().st_size for p in args.tables.glob("*.parquet"))
    print(f"{args.corpus}: {rows:,} token rows; tokens.parquet + sentences.parquet {files / rows:.1f} B/token on disk")
    results = {"strings as objects": retained(objects_read, args.tables)}
    results["dictionary-encoded"] = retained(encoded_read, args.tables)
    for name, (alone, both) in results.items():
        print(f"  {name}: token table {alone / rows:.1f} B/token, both tables {both / rows:.1f} B/token in memory")
    (old, old_both), (new, new_both) = results.values()
    print(f"  dictionary-encoded / objects: token table {new / old:.3f}, both tables {new_both / old_both:.3f}")


if __name__ == "__main__":
    main()
