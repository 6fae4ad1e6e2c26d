"""B6, the build half of `bench/scale.py`: a million real tokens on one machine, and Ray against in-process.

1. **A million tokens, memory bounded by the shard.** ``attnscope index kjv`` (the King James Bible,
   printed by Debian's bible-kjv, annotated by spaCy, read one slice at a time) in a child process: its
   tokens, seconds, tokens/s and peak resident memory (the child's ``ru_maxrss``). Goal: >= 1M tokens
   with a peak <= 4 GiB.
2. **Ray against in-process, once the cluster is up.** One plan of ``--ray-corpus``; its shards built
   in this process, then on a local Ray cluster started beforehand (actors' model loading included,
   cluster start-up not), into two stores; the two indexes are compared byte for byte. Goal: Ray's
   shard time <= 1.3x in-process.

    .venv/bin/python bench/scale_build.py [--corpus kjv] [--ray-corpus kjv:Gen1:1-Exo40:38] [--skip-million]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_PEAK_GIB, GOAL_TOKENS, GOAL_RAY = 4.0, 1_000_000, 1.3

CHILD = """
import json, sys, time
import attnscope
from attnscope.corpus import corpus_source
from attnscope.index import BuildOptions, build_index
started = time.perf_counter()
handle = attnscope.load(sys.argv[3])
source = corpus_source(sys.argv[1])
loaded = time.perf_counter() - started
report = build_index(source, handle, sys.argv[2], options=BuildOptions(shard_tokens=int(sys.argv[4])))
m = report.manifest
print(json.dumps({"tokens": m.tokens, "sentences": m.sentences, "seconds": report.seconds, "loaded": loaded,
                  "bytes": sum(m.files.values()), "lists": m.approximate_lists}))
"""


def million(corpus: str, model: str, work: Path, shard_tokens: int) -> None:
    """Build ``corpus`` in a child process; print its size, speed and peak memory against the goals."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    run = subprocess.run(
        [sys.executable, "-c", CHILD, corpus, str(work / "million"), model, str(shard_tokens)],
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode:
        raise SystemExit(f"the build failed:\n{run.stderr[-3000:]}")
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 2**20  # KiB -> GiB
    result = json.loads(run.stdout.strip().splitlines()[-1])
    rate = result["tokens"] / result["seconds"]
    print(f"1. {corpus}: {result['tokens']:,} tokens from {result['sentences']:,} sentences")
    print(
        f"   build {result['seconds']:.0f} s ({rate:,.0f} tokens/s, spaCy annotation included), "
        f"{result['bytes'] / result['tokens'] / 1024:.2f} KiB per token, IVF {result['lists']} clusters"
    )
    ok = peak <= GOAL_PEAK_GIB and result["tokens"] >= GOAL_TOKENS
    print(
        f"   peak resident memory {peak:.2f} GiB (goal <= {GOAL_PEAK_GIB} GiB at >= {GOAL_TOKENS:,} tokens) "
        f"{'ok' if ok else 'MISSED'}"
    )


def ray_against_in_process(corpus: str, model: str, work: Path, shard_tokens: int, workers: int) -> None:
    """One plan, its shards built here and on Ray (cluster already up); times and byte equality."""
    import ray

    import attnscope
    from attnscope.corpus import corpus_source
    from attnscope.index import BuildOptions
    from attnscope.index.build import run_in_process
    from attnscope.index.commit import commit
    from attnscope.index.plan import make_plan
    from attnscope.index.ray_engine import RayOptions, run_on_ray
    from attnscope.index.sources import corpus_record, pieces_and_reader
    from attnscope.index.storage import Store

    handle = attnscope.load(model)
    source = corpus_source(corpus)
    options = BuildOptions(shard_tokens=shard_tokens, piece_tokens=min(BuildOptions().piece_tokens, shard_tokens))
    pieces, read = pieces_and_reader(source, options.piece_tokens)
    here, there = Store.at(work / "here"), Store.at(work / "ray")
    plan = make_plan(here, handle, corpus_record(source), pieces, read, options)
    for name in here.names(""):
        there.write(name, here.read(name))  # the same plan, ranges and trained quantisers
    started = time.perf_counter()
    run_in_process(here, plan, handle, read)
    local = time.perf_counter() - started
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, _temp_dir=temp)
    try:
        started = time.perf_counter()
        run_on_ray(there, plan, read, options=RayOptions(workers=workers))
        remote = time.perf_counter() - started
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
    a, b = commit(here, plan), commit(there, plan)
    same = all(
        (work / "here" / name).read_bytes() == (work / "ray" / name).read_bytes()
        for name in a.files
        if not name.endswith(".parquet")
    )
    ratio = remote / local
    print(f"2. {corpus}: {a.tokens:,} tokens in {len(plan.shards)} shards; Ray {workers} actors vs in-process")
    print(f"   in-process {local:.1f} s, Ray {remote:.1f} s (actors' model loading included, cluster start-up not)")
    print(f"   ratio {ratio:.2f} (goal <= {GOAL_RAY}) {'ok' if ratio <= GOAL_RAY else 'MISSED'}")
    print(f"   codes and attention byte-equal: {same and a.tokens == b.tokens}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="kjv")
    parser.add_argument("--model", default="default")
    parser.add_argument("--shard-tokens", type=int, default=262_144)
    parser.add_argument("--ray-corpus", default="kjv:Gen1:1-Gen50:26")
    parser.add_argument("--ray-shard-tokens", type=int, default=16_384)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-million", action="store_true")
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="attnscope-scale-"))
    try:
        if not args.skip_million:
            million(args.corpus, args.model, work, args.shard_tokens)
        if not args.skip_ray:
            ray_against_in_process(args.ray_corpus, args.model, work, args.ray_shard_tokens, args.workers)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
