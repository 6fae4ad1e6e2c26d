"""M3's head view at long context: the built-in SmolLM2-135M (30 layers × 9 heads) at 8,192 tokens, on demand.

Measures, against the goals of issue 16 (P7 in product.md):

- the on-demand capture (for scale; the capture's own goal is bench/long_context.py's);
- a layer of the head view: each query's 8 strongest keys for its 9 heads, from asking Python for it
  (``TopKeysPayload.layer_bytes``, cache cold) to its lines drawn in Chromium (switching to that layer in a
  page that holds it: decoding its bytes and painting the band) — goal ≤ 2 s. Two ways: computed when asked,
  and looked up in ``analysis.long.summarise``'s result (one pass over every layer, as the model view's
  overview makes it; its time is printed too); and the rows a notebook view draws first while its layer is
  computed (``rows_bytes``: the band's 30 rows and 30 above and below);
- a hover answered: the exact float32 weights the tooltip of a hovered query (its 8 keys × 9 heads) and of a
  hovered key (8 queries × 9 heads) lists (``exact_weights``), and the hover's redraw in Chromium — goal ≤ 200 ms;
- the standalone HTML: its bytes (goal ≤ 100 MB) and the time from opening it to its first layer drawn
  (goal ≤ 5 s).

    PYTHONPATH=src .venv/bin/python bench/head_view_long.py [--length 8192] [--layers 1 15 29]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chromium import interaction_times, visit  # noqa: E402 - the view benchmarks' one way to drive Chromium
from long_context import repeated_ids  # noqa: E402 - the same input ids


def drawn(layer: int | None = None) -> str:
    """A JS predicate: the head view is mounted and its layer (``layer``, when given) is drawn."""
    which = "" if layer is None else f" && r.dataset.layer === '{layer}'"
    return (
        "() => { const r = document.querySelector('.attnscope-hv');"
        f" return !!r && r.dataset.ready === 'true' && r.dataset.loading === 'false'{which}; }}"
    )


def timed(call):
    started = time.perf_counter()
    value = call()
    return value, time.perf_counter() - started


def python_side(length: int, layers: list[int]):
    """Capture; a layer computed on demand; the summary of every layer; the view from it (its layers looked
    up), exact-weight answers and its page. Returns the view, the page and what was measured."""
    import attnscope
    from attnscope.analysis.long import summarise, top_keys
    from attnscope.views.long_payload import capture_payload

    handle = attnscope.load("smollm2")
    attnscope.capture(handle, input_ids=repeated_ids(handle, 16), fields=["attentions"], top_k=0, attention="on_demand")
    cap, capture_s = timed(
        lambda: attnscope.capture(
            handle, input_ids=repeated_ids(handle, length), fields=["attentions"], top_k=0, attention="on_demand"
        )
    )
    on_demand = capture_payload(cap)  # the view's payload without a widget: nothing computed ahead meanwhile
    demand_s = timed(lambda: on_demand.layer_bytes("decoder", layers[-1]))[1]
    band_s = timed(lambda: on_demand.rows_bytes("decoder", layers[0], length - 90, length))[1]
    summary, summary_s = timed(lambda: summarise(cap.attentions))
    view, view_s = timed(lambda: attnscope.head_view(cap, summary=summary))
    payload = view.payload
    layer_s = {i: timed(lambda i=i: payload.layer_bytes("decoder", i))[1] for i in layers}
    n = length - 1
    found = top_keys(cap.attentions, 0, 8, rows=range(n, n + 1))
    query_cells = [[h, n, int(k)] for h in range(9) for k in found.indices[h, 0] if k >= 0]
    key_cells = [[h, q, 0] for h in range(9) for q in range(n - 7, n + 1)]
    hover_q = timed(lambda: payload.exact_weights("decoder", 0, query_cells))[1]
    hover_k = timed(lambda: payload.exact_weights("decoder", 0, key_cells))[1]
    html, html_s = timed(view.to_html)
    measured = dict(capture_s=capture_s, demand_s=demand_s, band_s=band_s, summary_s=summary_s, view_s=view_s)
    measured["layer_s"] = layer_s
    measured.update(hover_query_s=hover_q, hover_key_s=hover_k, html_s=html_s, html_bytes=len(html.encode()))
    return view, html, {**measured, "in_html": view.header["lines"]["exact"]["in_html"]}


def browser_side(path: Path, layers: list[int]):
    """Open the page (time until its first layer is drawn), then time layer switches and hovers."""
    from playwright.sync_api import sync_playwright

    def then(page):
        switches = {}
        for i in layers:
            started = page.evaluate("performance.now()")
            page.select_option(".attnscope-hv-layer", str(i))
            page.wait_for_function(drawn(i), polling="raf")
            switches[i] = (page.evaluate("performance.now()") - started) / 1000
        tokens = [page.locator(f".attnscope-hv-queries .attnscope-hv-token >> nth={k}") for k in (3, 9, 15, 21, 27)]
        hovers = interaction_times(page, page.locator(".attnscope-hv-head[data-head='3']"), tokens, 30000)
        return switches, hovers

    with sync_playwright() as playwright:
        return visit(playwright, path, drawn(), 60, then=then)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=8192)
    parser.add_argument("--layers", type=int, nargs="+", default=[1, 15, 29])
    args = parser.parse_args()
    view, html, m = python_side(args.length, args.layers)
    print(f"SmolLM2-135M, {args.length:,} tokens, attention on demand; head view of each query's 8 strongest keys")
    print(f"  capture on demand: {m['capture_s']:.1f} s")
    print(
        f"  a layer's top keys computed when asked (no summary): {m['demand_s']:.1f} s (goal 2 s:"
        f" {m['demand_s'] / 2:.1f}×)"
    )
    print(
        f"  the rows a notebook view shows first (its band and margins: 90 rows × 9 heads), while that layer is"
        f" computed: {m['band_s']:.2f} s (goal 2 s: {m['band_s'] / 2:.2f}×)"
    )
    print(
        f"  summarise(cap.attentions), every layer's overview, top keys and entropy in one pass:"
        f" {m['summary_s']:.1f} s; head_view(cap, summary=...) built in {m['view_s']:.2f} s"
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "head_view.html"
        path.write_text(html, encoding="utf-8")
        visited = browser_side(path, args.layers)
    switches, hovers = visited.after if visited.after else ({}, None)
    for i in args.layers:
        switch = switches.get(i)
        shown = "not drawn" if switch is None else f"{switch:.2f} s"
        total = m["layer_s"][i] + (switch or 0)
        print(
            f"  layer {i} from the summary: Python {m['layer_s'][i]:.2f} s + drawn in Chromium {shown} = {total:.2f} s"
            f" (goal 2 s: {total / 2:.2f}×)"
        )
    print(
        f"  hover, exact weights from Python: query row {1000 * m['hover_query_s']:.0f} ms, key column"
        f" {1000 * m['hover_key_s']:.0f} ms (goal 200 ms)"
    )
    if hovers and hovers.hover:
        print(
            f"  hover, redraw in Chromium (median of {len(hovers.hover)}): {hovers.medians()[1]:.0f} ms;"
            f" head toggle {hovers.medians()[0]:.0f} ms"
        )
    exact = "exact float32 weights carried" if m["in_html"] else "bytes only (exact weights over the budget)"
    print(
        f"  standalone HTML: {m['html_bytes'] / 1e6:.1f} MB ({exact}; goal 100 MB: {m['html_bytes'] / 100e6:.2f}×),"
        f" written in {m['html_s']:.1f} s"
    )
    opened = (
        f"not drawn: {visited.problem}"
        if visited.seconds is None
        else f"{visited.seconds:.2f} s (goal 5 s: {visited.seconds / 5:.2f}×)"
    )
    print(f"  standalone HTML opened until its first layer is drawn: {opened}")
    if visited.after_problem:
        print(f"  after drawing: {visited.after_problem}")


if __name__ == "__main__":
    main()
