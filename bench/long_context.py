"""M2/M3 at long context: the built-in SmolLM2-135M (30 layers × 9 heads, 3 kv heads) from 512 to 32,768 tokens.

Per length, each measurement runs in a fresh subprocess (so peak memory is that measurement's alone) on
the same input ids:

- the model's SDPA forward (the baseline: what running the model costs);
- an eager capture of attention (``attnscope.capture(..., attention="eager")``, every weight kept), or
  "would need N GiB: skipped" past ``--skip-eager-above`` tokens;
- an on-demand capture (``attention="on_demand"``: SDPA forward, queries/keys/mask structure kept), then
  from it: one layer's weights (``cap.attentions.layer(0)``, up to 4,096 tokens), one layer's head-view
  lines (``analysis.long.top_keys``: each query's 8 strongest keys, 9 heads), a zoom (a 128 × 128
  ``tile``), a hover (one query row) and the pooled overview of all 270 heads (``pooled_overview``, at
  most 128 × 128 cells each; skipped past ``--skip-overview-above`` tokens);
- the views' pages, up to ``--views-up-to`` tokens, in one more process (a capture of its own): the long
  head view's standalone HTML (each query's 8 strongest keys per head, `head_view(cap, summary=...)`) and
  the model view's overview export (`model_view(cap).to_html()`), their bytes and the time from opening each
  in Chromium until it is drawn (bench/head_view_long.py and bench/model_overview.py measure them, with
  zooms, hovers and layer switches, in more detail).

Time is wall-clock of the one call (after loading the model and a 16-token warm-up call); peak is the
process's maximum resident set (``resource.getrusage``) and "added" is that peak minus the resident set
just before the call. Ratios are against the SDPA forward of the same run. Captures keep no predictions
(``top_k=0``), so the language-model head scores only the last position, as the SDPA forward is asked to
(``logits_to_keep=1``). SmolLM2's config allows 8,192 positions; longer inputs raise the handle's limit and
run past them (rotary positions extrapolate: the cost is what is measured here, not the model's quality).

    .venv/bin/python bench/long_context.py [--lengths 512 2048 8192 32768] [--skip-eager-above 4096]
                                           [--skip-overview-above 8192] [--views-up-to 8192] [--views-only]
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


def repeated_ids(handle, length: int) -> list[int]:
    """``length`` ids of `TEXT` repeated: the input every long-context bench measures."""
    ids = handle.tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    return (ids * (length // len(ids) + 1))[:length]


def _handle(length: int):
    import dataclasses

    import attnscope

    handle = attnscope.load("smollm2")
    if length > handle.max_length:
        handle = dataclasses.replace(handle, max_length=length)
    return handle


def views_child(length: int) -> dict:
    """The two pages of ``length`` ids: bytes and seconds until drawn in Chromium (see the module docstring)."""
    import tempfile
    from pathlib import Path

    import attnscope
    from attnscope.analysis.long import summarise

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from playwright.sync_api import sync_playwright

    from head_view_long import browser_side
    from model_overview import DRAWN, visit

    handle = _handle(length)
    attnscope.capture(handle, input_ids=repeated_ids(handle, 16), fields=["attentions"], top_k=0, attention="on_demand")
    cap = attnscope.capture(handle, input_ids=repeated_ids(handle, length), fields=["attentions"], top_k=0)
    out: dict = {}
    out["summary_seconds"], summary = _timed(lambda: summarise(cap.attentions))
    pages = {
        "head": attnscope.head_view(cap, summary=summary).to_html(),
        "overview": attnscope.model_view(cap, overview=True).to_html(),
    }
    with tempfile.TemporaryDirectory() as folder:
        for name, html in pages.items():
            path = Path(folder) / f"{name}.html"
            path.write_text(html, encoding="utf-8")
            out[f"{name}_mb"] = path.stat().st_size / 1e6
            if name == "head":
                visited = browser_side(path, [1])
            else:
                with sync_playwright() as playwright:
                    visited = visit(playwright, path, DRAWN, 60)
            out[f"{name}_drawn_seconds"] = visited.seconds
            out[f"{name}_problem"] = visited.problem
    return out


def child(method: str, length: int, overview: bool) -> dict:
    """One measurement in this process: load SmolLM2, run ``method`` once on ``length`` ids."""
    import torch

    import attnscope

    if method == "views":
        return views_child(length)
    handle = _handle(length)
    result: dict = {}

    def run(ids: list[int]):
        if method == "sdpa":
            handle.model.set_attn_implementation("sdpa")
            with torch.inference_mode():
                return handle.model(input_ids=torch.tensor([ids]), use_cache=False, logits_to_keep=1)
        attention = "on_demand" if method == "on_demand" else "eager"
        return attnscope.capture(handle, input_ids=ids, fields=["attentions"], top_k=0, attention=attention)

    run(repeated_ids(handle, 16))  # warm-up: one-time costs (kernels, thread pools) are not the method's
    ids = repeated_ids(handle, length)
    before = _rss()
    started = time.perf_counter()
    cap = run(ids)
    result["seconds"] = time.perf_counter() - started
    result["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result["added"] = result["peak"] - before
    if method == "on_demand":
        result.update(_reductions(cap.attentions, length, overview))
    return result


def _timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    value = call()
    return time.perf_counter() - started, value


def _reductions(attentions, length: int, overview: bool) -> dict:
    """What the views ask an on-demand capture for, timed one after another in this process."""
    import numpy as np

    from attnscope.analysis.long import pooled_overview, top_keys

    out: dict = {}
    if length <= 4096:
        out["layer_seconds"], layer = _timed(lambda: attentions.layer(0))
        out["layer_rows_sum_min"] = float(np.min(layer.sum(axis=-1)))
    out["top_keys_seconds"], _ = _timed(lambda: top_keys(attentions, 15, 8))
    corner = range(length - 128, length)
    out["zoom_seconds"], _ = _timed(lambda: attentions.tile(15, 4, corner, corner))
    out["hover_seconds"], _ = _timed(lambda: attentions.rows(15, 4, length - 1, length))
    if overview:
        out["overview_seconds"], pooled = _timed(lambda: pooled_overview(attentions))
        out["overview_block"] = pooled.block
    return out


def measure(method: str, length: int, overview: bool = False) -> dict:
    """Run `child` in a fresh interpreter and return what it measured."""
    command = [sys.executable, __file__, "--child", method, str(length), str(int(overview))]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cell(m: dict | None, sdpa: dict, length: int) -> str:
    """A measurement as "time (ratio to SDPA) peak (added)", or why it was skipped."""
    if m is None:
        return f"would need {30 * 9 * length * length * 4 / GIB:.1f} GiB: skipped"
    ratio = m["seconds"] / sdpa["seconds"]
    return f"{m['seconds']:6.1f} s ({ratio:4.1f}×) {m['peak'] / GIB:5.2f} GiB (+{m['added'] / GIB:.2f})"


def _seconds(m: dict, key: str, sdpa: dict | None = None) -> str:
    if key not in m:
        return "skipped"
    ratio = f" ({m[key] / sdpa['seconds']:.2f}×)" if sdpa else ""
    return f"{m[key]:.2f} s{ratio}"


def _print_views(rows: list[tuple]) -> None:
    print()
    print(
        "pages (a capture of their own): summarise (every layer's overview, top keys, entropy) | long head view"
        " HTML: MB, drawn in Chromium | overview HTML: MB, drawn | goals at 8,192: ≤ 100 MB drawn ≤ 5 s;"
        " overview drawn ≤ 3 s"
    )
    for length, sdpa, lazy in rows:
        if "views" not in lazy:
            print(f"{length:>7,} | skipped (--views-up-to)")
            continue
        v = lazy["views"]
        cells = [_seconds(v, "summary_seconds", sdpa)]
        for name in ("head", "overview"):
            seconds = v[f"{name}_drawn_seconds"]
            drawn = f"{seconds:.2f} s" if seconds is not None else f"not drawn ({v[f'{name}_problem']})"
            cells.append(f"{v[f'{name}_mb']:.1f} MB, drawn in {drawn}")
        print(f"{length:>7,} | " + " | ".join(cells), flush=True)
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 2048, 8192, 32768])
    parser.add_argument("--skip-eager-above", type=int, default=4096, help="eager captures past this are skipped")
    parser.add_argument("--skip-overview-above", type=int, default=8192, help="no overview past this length")
    parser.add_argument("--views-up-to", type=int, default=8192, help="pages drawn in Chromium up to this length")
    parser.add_argument("--views-only", action="store_true", help="only the pages (their own capture) per length")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.child[2] == "1")))
        return
    if args.views_only:
        _print_views([(length, None, {"views": measure("views", length)}) for length in args.lengths])
        return
    header = f"{'tokens':>7} | {'SDPA forward':>18} | {'eager capture':>34} | {'on-demand capture':>34}"
    print("SmolLM2-135M (30 layers × 9 heads, 3 kv heads), one run each, fresh process per measurement")
    print("time (× SDPA forward), peak RSS (added during the call)")
    print(header)
    print("-" * len(header))
    rows = []
    for length in args.lengths:
        sdpa = measure("sdpa", length)
        eager = None if length > args.skip_eager_above else measure("eager", length)
        lazy = measure("on_demand", length, overview=length <= args.skip_overview_above)
        if length <= args.views_up_to:
            lazy["views"] = measure("views", length)
        rows.append((length, sdpa, lazy))
        base = f"{sdpa['seconds']:5.1f} s {sdpa['peak'] / GIB:4.2f} GiB"
        cells = f"{_cell(eager, sdpa, length):>34} | {_cell(lazy, sdpa, length):>34}"
        print(f"{length:>7,} | {base:>18} | {cells}", flush=True)
    print()
    print(
        "from the on-demand capture: layer(0) | top keys of a layer (9 heads, k=8) | 128×128 zoom | hover row | "
        "overview of 270 heads (× SDPA forward)"
    )
    for length, sdpa, lazy in rows:
        parts = [_seconds(lazy, k) for k in ("layer_seconds", "top_keys_seconds", "zoom_seconds", "hover_seconds")]
        block = f", {lazy['overview_block']}-token blocks" if "overview_block" in lazy else ""
        parts.append(_seconds(lazy, "overview_seconds", sdpa) + block)
        print(f"{length:>7,} | " + " | ".join(parts))
    _print_views(rows)
    print("ratios: time over the SDPA forward's in the same run; peak memory over it is printed beside each")


if __name__ == "__main__":
    main()
