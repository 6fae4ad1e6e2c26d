"""M3's model view at long context on the built-in SmolLM2-135M (30 layers × 9 heads = 270 heads).

One on-demand capture of ``--length`` tokens (the input of bench/long_context.py), then:

- the overview's compute: ``model_view(cap)`` (every head pooled by ``pooled_overview``, at most 128 × 128
  cells a head), and ``to_html()`` (which pools every head once more, at half the block, to carry it);
- zooms answered in Python (the widget's message handler, `overview_zoom.answer_zoom`): the whole head, a
  click's region (an eighth of each side), single tokens (128 × 128), a dragged half and quarter of the head;
  median ms, before ``to_html`` (the overview's level kept, as in a notebook) and after (the finer one too);
- bytes: what the widget sends (the overview planes), the standalone HTML (`to_html`, capped at 100 MB) and
  the notebook's static copy (the overview only);
- Chromium (bench/chromium.py, fresh browser, offline): time from opening each page until every head is
  drawn and painted, and in the HTML a click on a head and a click zoom until painted.

`overview_measures(handle, ids)` returns the figures as a dict, for bench/long_context.py to print beside its own.

    .venv/bin/python bench/model_overview.py [--length 8192] [--threads N]

It prints the machine's load average and torch's threads with the figures: on a shared machine whose other
processes keep its cores busy, torch's parallel operations wait for each other, and small ones (a zoom's)
can run several times slower with two threads than with one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chromium import visit  # noqa: E402
from long_context import repeated_ids  # noqa: E402 - the same input ids

DRAWN = "() => !!document.querySelector('.attnscope-mo[data-ready=true]')"


def _timed(call):
    start = time.perf_counter()
    value = call()
    return time.perf_counter() - start, value


def zoom_times(view, repeats: int = 3) -> dict[str, tuple[float, int]]:
    """Median ms of each kind of zoom request answered in Python, and its block (layer 15, head 4)."""
    from attnscope.views.overview_zoom import ZOOM_MESSAGE, answer_zoom

    stack = view.overview.stacks["decoder"]
    _, _, n, _ = stack.shape
    eighth, half = max(128, n // 8), n // 2
    asks = {
        "whole head": ([0, n], [0, n]),
        f"click region ({eighth:,} tokens)": ([n - eighth, n], [n // 2 - eighth // 2, n // 2 + eighth // 2]),
        "single tokens (128 × 128)": ([n - 128, n], [n - 300, n - 172]),
        f"dragged half ({half:,} tokens)": ([half, n], [0, half]),
        f"dragged quarter ({n // 4:,} tokens)": ([n - n // 4, n], [0, n // 4]),
    }
    times = {}
    for name, (rows, cols) in asks.items():
        request = {
            "type": ZOOM_MESSAGE,
            "id": 1,
            "stack": "decoder",
            "layer": 15,
            "head": 4,
            "rows": rows,
            "cols": cols,
        }
        samples, block = [], 0
        for _ in range(repeats):
            seconds, (reply, _buffers) = _timed(
                lambda request=request: answer_zoom(request, view.overview.stacks, view.overview.cells)
            )
            assert "error" not in reply, reply
            samples.append(seconds * 1000)
            block = reply["block"]
        times[name] = (statistics.median(samples), block)
    return times


def both_threads(view) -> dict[str, tuple]:
    """`zoom_times` on torch's threads for every zoom, then as the view answers (small zooms on one thread,
    `overview_zoom.ONE_THREAD_WEIGHTS`): (ms, block, ms as answered) per zoom."""
    from attnscope.views import overview_zoom

    policy = overview_zoom.ONE_THREAD_WEIGHTS
    overview_zoom.ONE_THREAD_WEIGHTS = 0
    try:
        threaded = zoom_times(view)
    finally:
        overview_zoom.ONE_THREAD_WEIGHTS = policy
    answered = zoom_times(view)
    return {name: (*threaded[name], answered[name][0]) for name in threaded}


def _click_zoom(page) -> float:
    """Open head (15, 4), then click its middle: seconds until the zoomed region is painted."""
    page.click(".attnscope-mo-cell[data-layer='15'][data-head='4']")
    page.wait_for_selector(".attnscope-mo-detail[data-rows]")
    box = page.locator(".attnscope-mo-detail-canvas").bounding_box()
    rows = "() => document.querySelector('.attnscope-mo-detail').dataset.rows"
    before = page.evaluate(rows)
    start = time.perf_counter()
    page.mouse.click(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.8)
    page.wait_for_function(f"(before) => ({rows})() !== before", arg=before)
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)))")
    return time.perf_counter() - start


def browser_times(pages: dict[str, str], timeout_s: float = 60) -> dict[str, tuple]:
    """Per page: (MB, seconds until drawn, the grid's draw ms, seconds for a click zoom)."""
    from playwright.sync_api import sync_playwright

    results = {}
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as folder:
        for name, text in pages.items():
            path = Path(folder) / f"{name.replace(' ', '_')}.html"
            path.write_text(text, encoding="utf-8")
            after = {}

            def then(page, after=after):
                after["draw_ms"] = float(page.evaluate("() => document.querySelector('.attnscope-mo').dataset.drawMs"))
                after["zoom_s"] = _click_zoom(page)

            visited = visit(playwright, path, DRAWN, timeout_s, then=then)
            size = path.stat().st_size / 1e6
            results[name] = (size, visited.seconds, after.get("draw_ms"), after.get("zoom_s"), visited.problem)
    return results


def overview_measures(handle, ids: list[int]) -> dict:
    """Capture ``ids`` on demand and measure the overview (see the module's docstring)."""
    import torch

    import attnscope

    capture_s, cap = _timed(
        lambda: attnscope.capture(handle, input_ids=ids, fields=["attentions"], top_k=0, attention="on_demand")
    )
    view_s, view = _timed(lambda: attnscope.model_view(cap))
    widget_bytes = sum(len(lv["max"]) + len(lv["mean"]) for lv in view.levels["decoder"])
    zooms = both_threads(view)  # as in a notebook: the overview's level kept
    html_s, html = _timed(view.to_html)
    zooms_finer = both_threads(view)  # the finer level kept too (to_html computed it)
    fallback = view._repr_mimebundle_()[0]["text/html"]
    static = attnscope.views.page([fallback])
    return {
        "tokens": len(ids),
        "block": view.header["stacks"][0]["block"],
        "capture_s": capture_s,
        "view_s": view_s,
        "widget_mb": widget_bytes / 1e6,
        "html_s": html_s,
        "zooms": {name: zooms[name] + zooms_finer[name] for name in zooms},
        "pages": browser_times({"HTML export": html, "overview only (notebook's static copy)": static}),
        "threads": torch.get_num_threads(),
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }


def report(m: dict) -> None:
    n = m["tokens"]
    print(f"SmolLM2-135M, {n:,} tokens, 30 layers × 9 heads, overview blocks of {m['block']} tokens")
    print(f"  torch threads {m['threads']}; load average at the end {m['load']}")
    print(f"  on-demand capture: {m['capture_s']:.1f} s")
    print(f"  overview computed (model_view(cap)): {m['view_s']:.1f} s")
    print(f"  widget sends {m['widget_mb']:.1f} MB (max and mean planes)")
    print(f"  to_html (the finer level pooled, then the page written): {m['html_s']:.1f} s")
    threads = m["threads"]
    print(f"  zoom answered in Python, median of 3 (goal ≤ 200 ms): all on {threads} torch threads / as answered")
    print(f"    {'':<34} {'the overview level kept':>40}   {'the finer level kept too':>28}")
    for name, (ms, block, ms1, finer_ms, finer_block, finer_ms1) in m["zooms"].items():
        kept = f"{ms:7.1f} / {ms1:6.1f} ms (cells of {block:>2} tokens)"
        finer = f"{finer_ms:7.1f} / {finer_ms1:6.1f} ms (cells of {finer_block:>2})"
        print(f"    {name:<34} {kept:>40}   {finer:>28}")
    print("  Chromium (fresh browser, offline; goal: HTML ≤ 100 MB and drawn ≤ 5 s, overview drawn ≤ 3 s):")
    for name, (mb, seconds, draw_ms, zoom_s, problem) in m["pages"].items():
        drawn = f"{seconds:.2f} s" if seconds is not None else f"not drawn ({problem})"
        extra = f", grid painted in {draw_ms:.0f} ms" if draw_ms is not None else ""
        extra += f", click zoom painted in {zoom_s * 1000:.0f} ms" if zoom_s is not None else ""
        print(f"    {name:<40} {mb:7.1f} MB, drawn in {drawn}{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=8192)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()
    import torch

    import attnscope

    if args.threads:
        torch.set_num_threads(args.threads)
    handle = attnscope.load("smollm2")
    report(overview_measures(handle, repeated_ids(handle, args.length)))


if __name__ == "__main__":
    main()
