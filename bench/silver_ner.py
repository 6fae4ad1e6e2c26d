"""What the default corpus's silver entity types cost: opening UD English EWT dev + test with them
(spaCy's en_core_web_sm over every gold sentence, aligned to the gold words) against opening it without
them, in the same run; wall and CPU seconds (user + system of this process), best of ``--runs``.

    .venv/bin/python bench/silver_ner.py [--corpus ../shared/data/ud_english_ewt] [--runs 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path

from attnscope.corpus import open_corpus

EWT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ud_english_ewt"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def best_of(runs: int, work: Callable[[], object]) -> tuple[float, float]:
    """(wall, cpu) seconds of the fastest of ``runs`` calls of ``work``."""
    best = (float("inf"), float("inf"))
    for _ in range(runs):
        wall, cpu = time.perf_counter(), cpu_seconds()
        work()
        best = min(best, (time.perf_counter() - wall, cpu_seconds() - cpu))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=EWT)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    corpus = open_corpus(args.corpus)
    entities = sum(w.ner_iob == "B" for s in corpus.sentences for w in s.words)
    print(
        f"{corpus.name}: {len(corpus):,} sentences, {corpus.word_count:,} words, {entities:,} silver entities "
        f"({corpus.silver.get('ner')}); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    gold_wall, gold_cpu = best_of(args.runs, lambda: open_corpus(args.corpus, silver_ner=False))
    silver_wall, silver_cpu = best_of(args.runs, lambda: open_corpus(args.corpus))
    print(f"open_corpus without silver NER (baseline): wall {gold_wall:.1f} s, cpu {gold_cpu:.1f} s")
    print(f"open_corpus with silver NER:               wall {silver_wall:.1f} s, cpu {silver_cpu:.1f} s")
    print(
        f"silver NER adds: wall {silver_wall - gold_wall:.1f} s, cpu {silver_cpu - gold_cpu:.1f} s "
        f"(ratio {silver_cpu / gold_cpu:.1f}x the baseline's cpu)"
    )


if __name__ == "__main__":
    main()
