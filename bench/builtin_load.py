"""M1: how long `attnscope.load("smollm2")` takes the first time (GGUF conversion) and from the cache after.

Each run is a fresh Python process (nothing warm but the page cache) against one fresh cache root
(``ATTNSCOPE_CACHE`` in a temporary folder), so the first run's load is a real first load. Timed: the
`load` call alone, after ``import attnscope``, and a second `load` in the same process (transformers'
modules then imported: what a load costs beyond them). ``--repeats`` cached runs follow the first; the
medians are printed beside the default model's load (all-MiniLM-L6-v2, in the same kind of process) as
the baseline, with the ratios.

    .venv/bin/python bench/builtin_load.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = """
import sys, time, attnscope
from attnscope.capture.builtin_models import SMOLLM2, builtin_source
kind = builtin_source(SMOLLM2).kind if sys.argv[1] == "smollm2" else "-"
times = []
for _ in range(2):
    start = time.perf_counter()
    attnscope.load(sys.argv[1])
    times.append(time.perf_counter() - start)
print(kind, *times)
"""


def _load_once(root: str, model: str = "smollm2") -> tuple[str, float, float]:
    """Where the load read from ("gguf", "cache"), the first load's seconds, the second's (same process)."""
    env = dict(os.environ, ATTNSCOPE_CACHE=root, HF_HUB_OFFLINE="1")
    command = [sys.executable, "-c", CHILD, model]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    kind, first, second = done.stdout.split()[-3:]
    return kind, float(first), float(second)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="cached loads after the first (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="attnscope-cache-") as root:
        kind, first, _ = _load_once(root)
        cached = [_load_once(root) for _ in range(args.repeats)]
        default = [_load_once(root, "default") for _ in range(args.repeats)]
    assert kind == "gguf" and all(k == "cache" for k, _, _ in cached), (kind, cached)
    fresh, warm = (statistics.median(run[i] for run in cached) for i in (1, 2))
    base_fresh, base_warm = (statistics.median(run[i] for run in default) for i in (1, 2))
    print(f"attnscope.load('smollm2'), each run a fresh process, {os.cpu_count()} CPUs, medians of {args.repeats}:")
    print(f"  first load (GGUF dequantised, then cached as safetensors): {first:6.2f} s")
    for label, ours, base in (("fresh process", fresh, base_fresh), ("second in process", warm, base_warm)):
        print(f"  cached load, {label:17}: {ours:5.2f} s; default model {base:5.2f} s; ratio {ours / base:.1f}x")
    print(f"  first / cached (fresh process): {first / fresh:.0f}x")


if __name__ == "__main__":
    main()
