"""Issue 16's goals for reductions at long context (analysis/long.py) on the built-in SmolLM2-135M.

Per length, each measurement runs in a fresh subprocess on the same input ids (bench/long_context.py's):

- the model's SDPA forward (the baseline);
- `pooled_overview` of all 30 layers × 9 heads (goal: ≤ 2× the SDPA forward);
- `top_keys` of one layer, its 9 heads, every query row, k = 8 (goal: ≤ 2 s);
- `summarise`: the overview, every layer's top keys and every row's entropy from one pass.

The reductions run on an on-demand capture (``attention="on_demand"``) made first in the same process and not
timed; before the measured call a 64-token capture is reduced once, so one-time costs (kernels, thread
pools) are not counted. Time is wall-clock of the one call, with the process's CPU time beside it (the
machine's 2 cores are shared: wall time includes waiting for them); "added" is the peak resident set during
the call (the kernel's high-water mark, reset just before it) minus the resident set just before it. The
machine's load average after each call is printed under each length.

    .venv/bin/python bench/long_reductions.py [--lengths 2048 8192] [--layer 15]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from long_context import GIB, _rss, repeated_ids  # noqa: E402  (the same input ids and resident-set reading)

METHODS = ("sdpa", "overview", "top_keys", "summarise")


def child(method: str, length: int, layer: int) -> dict:
    """One measurement in this process: load SmolLM2, run ``method`` once on ``length`` ids."""
    import torch

    import attnscope
    from attnscope.analysis import long

    handle = attnscope.load("smollm2")
    if method == "sdpa":
        handle.model.set_attn_implementation("sdpa")

        def run(ids: list[int]) -> object:
            with torch.inference_mode():
                return handle.model(input_ids=torch.tensor([ids]), use_cache=False)

        run(repeated_ids(handle, 16))
        return _timed(lambda: run(repeated_ids(handle, length)))

    def reduce(attentions) -> object:
        if method == "overview":
            return long.pooled_overview(attentions)
        if method == "top_keys":
            return long.top_keys(attentions, layer, k=8)
        return long.summarise(attentions, k=8)

    def captured(count: int):
        ids = repeated_ids(handle, count)
        return attnscope.capture(handle, input_ids=ids, fields=["attentions"], top_k=0, attention="on_demand")

    reduce(captured(64).attentions)  # warm-up
    attentions = captured(length).attentions
    return _timed(lambda: reduce(attentions))


def _timed(call) -> dict:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset the peak resident set (VmHWM) to the current one
    before = _rss()
    started, cpu = time.perf_counter(), time.process_time()
    call()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    return {"seconds": seconds, "cpu": cpu_seconds, "added": max(0, _peak() - before), "load": _load()}


def _load() -> float:
    """The machine's load average over the last minute (2 cores: above 2, processes wait for a core)."""
    with open("/proc/loadavg") as loadavg:
        return float(loadavg.read().split()[0])


def _peak() -> int:
    """The process's peak resident set since the last reset, in bytes (VmHWM)."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def measure(method: str, length: int, layer: int) -> dict:
    """Run `child` in a fresh interpreter and return what it measured."""
    command = [sys.executable, __file__, "--child", method, str(length), str(layer)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[2048, 8192])
    parser.add_argument("--layer", type=int, default=15, help="the layer whose top keys are timed")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), int(args.child[2]))))
        return
    print("SmolLM2-135M (30 layers × 9 heads, 3 kv heads), one run each, fresh process per measurement")
    print("wall time (× SDPA forward) [CPU time], memory added during the call")
    header = f"{'tokens':>7} | {'SDPA forward':>14} | {'overview, 270 heads':>32} | "
    header += f"{f'top_keys, layer {args.layer}':>32} | {'summarise':>32}"
    print(header)
    print("-" * len(header))
    for length in args.lengths:
        found = {method: measure(method, length, args.layer) for method in METHODS}
        sdpa = found["sdpa"]
        cells = [f"{sdpa['seconds']:5.1f} s [{sdpa['cpu']:5.1f}]"]
        for method in METHODS[1:]:
            m = found[method]
            ratio = m["seconds"] / sdpa["seconds"]
            cells.append(f"{m['seconds']:6.2f} s ({ratio:4.2f}×) [{m['cpu']:6.1f}] +{m['added'] / GIB:.2f} GiB")
        print(f"{length:>7,} | {cells[0]:>14} | " + " | ".join(f"{c:>32}" for c in cells[1:]))
        loads = ", ".join(f"{method} {found[method]['load']:.1f}" for method in METHODS)
        print(f"{'':>7}   load average (1 min) after each call: {loads}")
    print("goals at 8,192 tokens: overview ≤ 2× the SDPA forward; one layer's top keys ≤ 2 s")


if __name__ == "__main__":
    main()
