"""M2 at long context: the built-in SmolLM2-135M (30 layers × 9 heads) at 512 and 2,048 tokens.

Per length, each measurement runs in a fresh subprocess (so peak memory is that measurement's alone) on
the same input ids:

- the model's SDPA forward (the baseline: what running the model costs);
- an eager capture of attention (``attnscope.capture(..., fields=["attentions"])``, every weight kept);
- an on-demand capture (``attention="on_demand"``: SDPA forward, queries/keys/mask structure kept), then
  one layer's weights computed from it (``cap.attentions.layer(0)``).

Time is wall-clock of the one call (after loading the model and a 16-token warm-up call); peak is the
process's maximum resident set (``resource.getrusage``) and "added" is that peak minus the resident set
just before the call. Ratios
are against the SDPA forward of the same run. Captures keep no predictions (``top_k=0``); all three run the
whole model, language-model head included.

    .venv/bin/python bench/long_context.py [--lengths 512 2048] [--skip-eager-above 4096]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

TEXT = "The girl ran to a local pub to escape the din of her city. She ordered a drink and sat by the window. "
GIB = 2**30


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _ids(handle, length: int) -> list[int]:
    ids = handle.tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    return (ids * (length // len(ids) + 1))[:length]


def child(method: str, length: int) -> dict:
    """One measurement in this process: load SmolLM2, run ``method`` once on ``length`` ids."""
    import numpy as np
    import torch

    import attnscope

    handle = attnscope.load("smollm2")
    result: dict = {}

    def run(ids: list[int]):
        if method == "sdpa":
            handle.model.set_attn_implementation("sdpa")
            with torch.inference_mode():
                return handle.model(input_ids=torch.tensor([ids]), use_cache=False)
        attention = "on_demand" if method == "on_demand" else "eager"
        return attnscope.capture(handle, input_ids=ids, fields=["attentions"], top_k=0, attention=attention)

    run(_ids(handle, 16))  # warm-up: one-time costs (kernels, thread pools) are not the method's
    ids = _ids(handle, length)
    before = _rss()
    started = time.perf_counter()
    cap = run(ids)
    result["seconds"] = time.perf_counter() - started
    result["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result["added"] = result["peak"] - before
    if method == "on_demand":
        started = time.perf_counter()
        layer = cap.attentions.layer(0)
        result["layer_seconds"] = time.perf_counter() - started
        result["layer_shape"] = list(layer.shape)
        result["layer_rows_sum_min"] = float(np.min(layer.sum(axis=-1)))
    return result


def measure(method: str, length: int) -> dict:
    """Run `child` in a fresh interpreter and return what it measured."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", method, str(length)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cell(m: dict | None, sdpa: dict, length: int) -> str:
    """A measurement as "time (ratio to SDPA) peak (added)", or why it was skipped."""
    if m is None:
        return f"would need {30 * 9 * length * length * 4 / GIB:.1f} GiB: skipped"
    ratio = m["seconds"] / sdpa["seconds"]
    return f"{m['seconds']:6.1f} s ({ratio:4.1f}×) {m['peak'] / GIB:5.2f} GiB (+{m['added'] / GIB:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--skip-eager-above", type=int, default=4096, help="eager captures past this are skipped")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]))))
        return
    header = f"{'tokens':>7} | {'SDPA forward':>18} | {'eager capture':>34} | {'on-demand capture':>34} | layer(0)"
    print("SmolLM2-135M (30 layers × 9 heads, 3 kv heads), one run each, fresh process per measurement")
    print("time (× SDPA forward), peak RSS (added during the call)")
    print(header)
    print("-" * len(header))
    for length in args.lengths:
        sdpa = measure("sdpa", length)
        eager = None if length > args.skip_eager_above else measure("eager", length)
        lazy = measure("on_demand", length)
        base = f"{sdpa['seconds']:5.1f} s {sdpa['peak'] / GIB:4.2f} GiB"
        cells = f"{_cell(eager, sdpa, length):>34} | {_cell(lazy, sdpa, length):>34}"
        print(f"{length:>7,} | {base:>18} | {cells} | {lazy['layer_seconds']:.2f} s")
    print("ratios: time over the SDPA forward's in the same run; peak memory over it is printed beside each")


if __name__ == "__main__":
    main()
