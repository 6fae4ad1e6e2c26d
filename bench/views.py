"""P1: attnscope's head and model views against BertViz 1.4.1's, bytes and time until drawn, in one run.

Measured for a BERT-base shape (12 layers x 12 heads) at each length in ``--lengths``, side by side in
the same headless Chromium (Debian's ``/usr/bin/chromium``, the flags of tests/browser/conftest.py,
every non-local request refused), a fresh browser per page (bench/chromium.py drives it):

- input: realistic attention, seeded: per layer a (1, 12, n, n) float32 tensor, each head the
  softmax of random scores (a spread drawn per head) and, in every layer, a previous-token head,
  a first-token head and a broad head; plus n word tokens. The same tuple goes to both tools.
  Checked against the default model (MiniLM, 6x12) on EWT text at 64/128/256/512 tokens: about the
  same share of weights above the 0.01 drawing threshold (here 0.27/0.12/0.056/0.025, the model's
  0.27/0.13/0.056/0.024), mean row maximum and entropy.
- HTML bytes: the UTF-8 size of the page each tool builds: ``attnscope.head_view(...).to_html()``
  (``model_view`` too, when attnscope has it) and ``bertviz.head_view/model_view(...,
  html_action="return").data``. "build" is the Python time to make that HTML.
- time until drawn: from the start of ``page.goto(file://...)`` to the view fully drawn, plus the
  frame after it (a requestAnimationFrame and a message after it, so the paint of what was drawn
  counts). attnscope: its root ``.attnscope-hv`` / ``.attnscope-mv`` gets ``data-ready="true"``
  after the first complete draw. BertViz draws synchronously inside its ``requirejs([...],
  callback)``: the bench wraps ``window.requirejs`` (a small script placed after require.js in the
  page, not counted in the bytes) so the end of that callback is recorded; afterwards (untimed)
  it checks that every line was drawn: heads x n x n ``<line>`` in the head view (layer 0), layers
  x heads x n x n in the model view; attnscope's head view must report (``data-lines``) as many
  lines as layer 0 has weights above its threshold (a tall view paints the band on screen and
  the rest as it scrolls into view). BertViz loads require.js, d3 and jQuery from cdnjs, which is
  unreachable here: the bench installs requirejs@2.3.6 and d3@5.7.0 (the versions BertViz names)
  and jquery@2.1.0 (BertViz names 2.0.0, which npm does not have; 2.1.0 is the oldest 2.x there)
  with npm into bench/.cache/npm, once, and points BertViz's URLs at those files.
- interactivity of the head views once drawn: clicking head 3's toggle (to the paint after the
  redraw) and hovering a query token (to the paint with its tooltip/highlight), timed in the page
  from the input event's timestamp, with real mouse input; median of 5, or fewer when one takes
  over a second (then the note says so). When attnscope's head view is not drawn in time, a
  "head L0" row measures the same view with ``include_layers=[0]`` (one layer in the page), to
  tell the payload's limits from the drawing's.

BertViz's draws are capped at ``--timeout`` seconds ("> 120 s"); its HTML is not built above
``--skip-bertviz-above`` tokens (default 256: at 512 it is ~1.75 GB and ~44 s to build). attnscope's
model view is measured up to 512 tokens, its head view at every length. Repeats: median of
``--repeats`` (attnscope) and ``--bertviz-repeats`` (BertViz) loads. Goals (product.md P1, the size
raised by issue 16): at 128 tokens attnscope's model view >= 50x smaller and >= 10x sooner than BertViz's;
512 tokens drawn in < 3 s; 2048 tokens: the head view stays interactive (toggle and hover < 200 ms) and
its HTML (payload included) is built in <= 2 s (issue 16).

``--build-only`` times only that: attnscope's head view HTML built ``--repeats`` times per length (the
median of the wall time, with the CPU time this process spent and the machine's load: on a shared machine
the wall time is the CPU time stretched by the other programs), no browser and no BertViz, with the
2,048-token verdict.

    .venv/bin/python bench/views.py [--lengths 64 128 256 512 1024 2048] [--repeats 3]
                                    [--timeout 120] [--skip-bertviz-above 256] [--build-only]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import attnscope
from attnscope.quantise import SCALE
from chromium import CHROMIUM, SAMPLES, SLOW_MS, Interactions, interaction_times, visit  # bench/chromium.py

CACHE = Path(__file__).resolve().parent / ".cache"
NPM = CACHE / "npm"
# BertViz 1.4.1's CDN URLs (head_view.py, head_view.js, model_view.js) -> files of the npm packages.
CDN = {
    "https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.6/require.min.js": "requirejs/require.js",
    "https://cdnjs.cloudflare.com/ajax/libs/d3/5.7.0/d3.min": "d3/dist/d3.min",
    "https://cdnjs.cloudflare.com/ajax/libs/jquery/2.0.0/jquery.min": "jquery/dist/jquery.min",
}
NPM_PACKAGES = ["requirejs@2.3.6", "d3@5.7.0", "jquery@2.1.0"]
LAYERS, HEADS = 12, 12
MODEL_VIEW_MAX = 512
V8_MAX_STRING = 2**29 - 24  # the longest string V8 (64-bit) can hold: textContent/JSON.parse beyond it fail
GOAL_BYTES, GOAL_TIME, GOAL_512_S, GOAL_INTERACTIVE_MS = 50, 10, 3.0, 200  # bytes: 20x in P1, 50x in issue 16
GOAL_BUILD_S = 2.0  # the head view's HTML at 2,048 tokens (issue 16)
WORDS = "the girl ran to a local pub to escape the din of her city and found it full of people".split()

# Wraps requirejs so the end of BertViz's drawing callback is recorded (window.__benchDrawn).
HOOK = """<script>
(function () {
  const original = window.requirejs;
  window.requirejs = function (deps, callback, errback, optional) {
    if (typeof callback !== "function") return original.apply(this, arguments);
    const timed = function () {
      const result = callback.apply(this, arguments);
      window.__benchDrawn = performance.now();
      return result;
    };
    return original.call(this, deps, timed, function (e) { window.__benchError = String(e); }, optional);
  };
  Object.assign(window.requirejs, original);
})();
</script>
"""

# ---------------------------------------------------------------- inputs


def realistic_attention(n: int, seed: int = 0) -> np.ndarray:
    """(layers, heads, n, n) float32 softmax attention: random-score heads plus sharp and broad ones."""
    rng = np.random.default_rng(seed)
    out = np.empty((LAYERS, HEADS, n, n), dtype=np.float32)
    rows = np.arange(n)
    for layer in range(LAYERS):
        special = rng.choice(HEADS, size=3, replace=False)  # previous-token, first-token, broad
        for head in range(HEADS):
            spread = 0.3 if head == special[2] else rng.uniform(1.0, 3.5)
            scores = rng.standard_normal((n, n), dtype=np.float32) * np.float32(spread)
            if head == special[0]:
                scores[rows[1:], rows[:-1]] += 9.0
                scores[0, 0] += 9.0
            elif head == special[1]:
                scores[:, 0] += 9.0
            scores -= scores.max(axis=1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=1, keepdims=True)
            out[layer, head] = scores
    return out


def word_tokens(n: int) -> list[str]:
    return ["[CLS]"] + [WORDS[i % len(WORDS)] for i in range(n - 2)] + ["[SEP]"]


def as_tuple(weights: np.ndarray) -> tuple[torch.Tensor, ...]:
    """One (1, heads, n, n) tensor per layer, sharing memory with ``weights``."""
    return tuple(torch.from_numpy(weights[layer])[None] for layer in range(weights.shape[0]))


# ---------------------------------------------------------------- pages


def npm_assets() -> dict[str, str]:
    """BertViz's CDN URLs mapped to file:// URLs of the npm packages, installed into the cache if missing."""
    missing = [p for p in CDN.values() if not (NPM / "node_modules" / (p if p.endswith(".js") else p + ".js")).exists()]
    if missing:
        if shutil.which("npm") is None:
            sys.exit("npm is needed once to fetch require.js, d3 and jQuery for BertViz's page")
        NPM.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--prefix", str(NPM), "--no-audit", "--no-fund", "--silent", *NPM_PACKAGES], check=True
        )
    return {url: (NPM / "node_modules" / path).as_uri() for url, path in CDN.items()}


def offline_bertviz_page(html: str, assets: dict[str, str]) -> str:
    """BertViz's HTML with its CDN URLs pointing at local files and the drawing hook after require.js."""
    cut = html.index("const params = ")  # every URL sits in the code before the (huge) params
    head, rest = html[:cut], html[cut:]
    for url, local in assets.items():
        if url not in head:
            raise RuntimeError(f"BertViz's HTML no longer references {url}: update CDN in bench/views.py")
        head = head.replace(url, local)
    if "cdnjs." in head:
        raise RuntimeError("BertViz's HTML references a CDN file the bench does not provide offline")
    first_script_end = head.index("</script>") + len("</script>")
    return head[:first_script_end] + "\n" + HOOK + head[first_script_end:] + rest


@dataclass
class Page:
    """A built page: its file, its size, how long Python took to build it, what a full draw means."""

    path: Path
    nbytes: int
    build_s: float
    expected_lines: int | None = None
    note: str = ""
    build_cpu_s: float | None = None


def build_attnscope(
    view: str, weights: np.ndarray, tokens: list[str], directory: Path, include_layers: list[int] | None = None
) -> Page | None:
    make = getattr(attnscope, f"{view}_view", None)
    if make is None:
        return None
    started, cpu = time.perf_counter(), time.process_time()
    shown = make(as_tuple(weights), tokens, include_layers=include_layers)
    html = shown.to_html()
    build_s, build_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    expected = None
    if view == "head":  # lines above the threshold in layer 0, every head: what the first draw must show
        layer0 = shown.payload.data(next(iter(shown.payload.stacks)))[0] / SCALE  # that layer only, decoded
        expected = int((layer0 > shown.payload.threshold).sum())
    start = html.index('-data">') + len('-data">')
    data_chars = html.index("</script>", start) - start
    note = (
        f"its data script has {data_chars:,} chars, over V8's string limit ({V8_MAX_STRING:,}): "
        "the page cannot parse it"
        if data_chars > V8_MAX_STRING
        else ""
    )
    path = directory / f"attnscope-{view}-{len(tokens)}.html"
    path.write_text(html, encoding="utf-8")
    return Page(path, len(html.encode("utf-8")), build_s, expected, note, build_cpu_s)


def build_bertviz(view: str, weights: np.ndarray, tokens: list[str], directory: Path, assets) -> Page:
    import bertviz

    started = time.perf_counter()
    html = getattr(bertviz, f"{view}_view")(as_tuple(weights), tokens, html_action="return").data
    build_s = time.perf_counter() - started
    n = len(tokens)
    expected = HEADS * n * n if view == "head" else LAYERS * HEADS * n * n
    path = directory / f"bertviz-{view}-{n}.html"
    path.write_text(offline_bertviz_page(html, assets), encoding="utf-8")
    return Page(path, len(html.encode("utf-8")), build_s, expected)


# ---------------------------------------------------------------- in the browser

HEADS_SHOWN = "() => document.querySelector('.attnscope-hv').dataset.heads"


def _drawn_signal(tool: str, view: str) -> str:
    if tool == "attnscope":
        root = ".attnscope-hv" if view == "head" else ".attnscope-mv"
        return f"() => document.querySelector('{root}[data-ready=\"true\"]') !== null"
    return "() => window.__benchDrawn !== undefined || window.__benchError !== undefined"


def _checker(page_file: Page, tool: str, view: str):
    """``check(page)``: '' when the page drew every line it should (run untimed), else what is wrong."""

    def check(page) -> str:
        if tool == "bertviz":
            error = page.evaluate("() => window.__benchError")
            if error is not None:
                return f"require.js: {error}"
            drawn = page.evaluate("() => document.getElementsByTagName('line').length")
        elif view == "head":  # tall views paint the band on screen; data-lines counts the whole selection
            drawn = int(page.evaluate("() => document.querySelector('.attnscope-hv').dataset.lines"))
        else:
            return ""
        if page_file.expected_lines is not None and drawn != page_file.expected_lines:
            return f"drew {drawn} lines, expected {page_file.expected_lines}"
        return ""

    return check


def _interact(tool: str, n: int, timeout_s: float):
    """``then(page)`` for a drawn head view: head 3's toggle clicked, query tokens hovered."""
    positions = [int(i) for i in np.linspace(1, n - 2, SAMPLES)]

    def then(page) -> Interactions:
        if tool == "bertviz":  # its head checkboxes are the last group of the SVG; tokens are <text>
            toggle = page.locator("#vis svg > g:last-child > rect").nth(3)
            tokens = [page.locator("#vis #left text").nth(i) for i in positions]
            return interaction_times(page, toggle, tokens, timeout_s * 1000)
        seen = {"heads": page.evaluate(HEADS_SHOWN)}

        def toggled(page) -> None:
            heads = page.evaluate(HEADS_SHOWN)
            if heads == seen["heads"]:
                raise RuntimeError("clicking head 3 did not change the heads shown")
            seen["heads"] = heads

        def hovered(page, i: int) -> None:
            if page.evaluate("() => document.querySelector('.attnscope-hv-tooltip').hidden"):
                raise RuntimeError(f"hovering query token {positions[i]} showed no tooltip")

        toggle = page.locator(".attnscope-hv-head[data-head='3']")
        tokens = [page.locator(f".attnscope-hv-queries .attnscope-hv-token[data-index='{i}']") for i in positions]
        return interaction_times(page, toggle, tokens, timeout_s * 1000, toggled, hovered)

    return then


# ---------------------------------------------------------------- running and printing


@dataclass
class Row:
    view: str
    tool: str
    nbytes: int | None = None
    build_s: float | None = None
    seconds: float | None = None
    note: str = ""
    toggle_ms: float | None = None
    hover_ms: float | None = None
    available: bool = True
    timed_out: bool = False


def measure(playwright, tool, view, weights, tokens, directory, assets, repeats, timeout_s, include_layers=None) -> Row:
    """Build one tool's view and load it ``repeats`` times (interactions timed on the first load)."""
    n = len(tokens)
    row = Row(view if include_layers is None else f"{view} L{','.join(map(str, include_layers))}", tool)
    try:
        page_file = (
            build_attnscope(view, weights, tokens, directory, include_layers)
            if tool == "attnscope"
            else build_bertviz(view, weights, tokens, directory, assets)
        )
    except MemoryError:
        row.note = "out of memory building the HTML"
        return row
    if page_file is None:
        row.available, row.note = False, f"{view} view: not available"
        return row
    row.nbytes, row.build_s = page_file.nbytes, page_file.build_s
    gc.collect()
    loads = []
    for i in range(repeats):
        then = _interact(tool, n, timeout_s) if view == "head" and i == 0 else None
        loads.append(
            visit(
                playwright, page_file.path, _drawn_signal(tool, view), timeout_s, _checker(page_file, tool, view), then
            )
        )
        if loads[-1].problem:  # a page that did not draw once will not be timed again
            break
    page_file.path.unlink()
    row.timed_out = any(x.problem == "timeout" for x in loads)
    notes = [x.problem for x in loads if x.problem and x.problem != "timeout"]
    notes += [f"interaction: {loads[0].after_problem}"] if loads[0].after_problem else []
    if all(x.seconds is not None and not x.problem for x in loads):
        row.seconds = statistics.median(x.seconds for x in loads)
    if isinstance(loads[0].after, Interactions) and loads[0].after.toggle and loads[0].after.hover:
        times = loads[0].after
        row.toggle_ms, row.hover_ms = times.medians()
        if not times.complete():
            notes.append(
                f"toggle/hover: {len(times.toggle)}/{len(times.hover)} samples (stopped after one over {SLOW_MS} ms)"
            )
    row.note = "; ".join(notes + ([page_file.note] if page_file.note else []))
    return row


def _size(nbytes: int | None) -> str:
    if nbytes is None:
        return "not built"
    return f"{nbytes / 1e6:.2f} MB" if nbytes >= 1e5 else f"{nbytes / 1e3:.1f} kB"


def _time(row: Row, timeout_s: float) -> str:
    if not row.available or row.nbytes is None:
        return "-"
    if row.seconds is None:
        return f"> {timeout_s:g} s" if row.timed_out else "not drawn"
    return f"{row.seconds:.2f} s"


def print_table(n: int, rows: list[Row], timeout_s: float) -> None:
    print(f"\n{n} tokens ({LAYERS} layers x {HEADS} heads)")
    print(f"  {'view':8} {'tool':10} {'HTML bytes':>12} {'build':>8} {'drawn in':>10} {'toggle':>9} {'hover':>9}  note")
    for row in rows:
        if not row.available:
            print(f"  {row.view:8} {row.tool:10} {row.note}")
            continue
        build = f"{row.build_s:.2f} s" if row.build_s is not None else "-"
        toggle, hover = _ms(row.toggle_ms), _ms(row.hover_ms)
        print(
            f"  {row.view:8} {row.tool:10} {_size(row.nbytes):>12} {build:>8} {_time(row, timeout_s):>10} "
            f"{toggle:>9} {hover:>9}  {row.note}"
        )
    for view in ("head", "model"):
        ours = next((r for r in rows if r.view == view and r.tool == "attnscope" and r.available), None)
        theirs = next((r for r in rows if r.view == view and r.tool == "bertviz"), None)
        if ours is None or theirs is None:
            continue
        print(
            f"  {view} view, BertViz / attnscope: bytes {_ratio(theirs.nbytes, ours.nbytes)}, "
            f"time until drawn {_time_ratio(theirs, ours, timeout_s)}"
        )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.0f}x" if a is not None and b else "n/a"


def _time_ratio(theirs: Row, ours: Row, timeout_s: float) -> str:
    if ours.seconds is None or theirs.nbytes is None:
        return "n/a"
    if theirs.seconds is None:
        return f"> {timeout_s / ours.seconds:.0f}x" if theirs.timed_out else "n/a (BertViz did not draw)"
    return f"{theirs.seconds / ours.seconds:.1f}x"


def print_verdicts(results: dict[int, list[Row]], timeout_s: float) -> None:
    def find(n, view, tool):
        return next((r for r in results.get(n, []) if r.view == view and r.tool == tool), None)

    print("\nP1 goals")
    ours, theirs = find(128, "model", "attnscope"), find(128, "model", "bertviz")
    if 128 not in results:
        print("  128 tokens, model view: not measured (add 128 to --lengths)")
    elif ours is None or not ours.available:
        print("  128 tokens, model view: not available in attnscope yet, no verdict")
    elif theirs is None or theirs.nbytes is None:
        print("  128 tokens, model view: BertViz not built, no verdict")
    else:
        size = theirs.nbytes / ours.nbytes
        speed_ok = ours.seconds is not None and (
            theirs.seconds is None
            and theirs.timed_out
            or theirs.seconds is not None
            and theirs.seconds / ours.seconds >= GOAL_TIME
        )
        print(
            f"  128 tokens, model view: {size:.0f}x smaller (goal >= {GOAL_BYTES}x) "
            f"{'ok' if size >= GOAL_BYTES else 'MISSED'}; {_time_ratio(theirs, ours, timeout_s)} sooner "
            f"(goal >= {GOAL_TIME}x) {'ok' if speed_ok else 'MISSED'}"
        )
    if 512 not in results:
        print("  512 tokens drawn in < 3 s: not measured (add 512 to --lengths)")
    for view in ("head", "model"):
        row = find(512, view, "attnscope")
        if row is None:
            continue
        if not row.available:
            print(f"  512 tokens, {view} view: not available in attnscope yet")
            continue
        ok = row.seconds is not None and row.seconds < GOAL_512_S
        print(
            f"  512 tokens, {view} view drawn in {_time(row, timeout_s)} (goal < {GOAL_512_S:g} s) "
            f"{'ok' if ok else 'MISSED'}"
        )
    row = find(2048, "head", "attnscope")
    one_layer = find(2048, "head L0", "attnscope")
    if row is None:
        print("  2048 tokens, head view interactive: not measured (add 2048 to --lengths)")
    elif row.toggle_ms is None:
        why = "; ".join(x for x in (_time(row, timeout_s), row.note) if x)
        print(f"  2048 tokens, head view interactive: MISSED, not drawn ({why})")
        if one_layer is not None:
            print(
                f"    with layer 0 only: drawn in {_time(one_layer, timeout_s)}, head toggle "
                f"{_ms(one_layer.toggle_ms)}, token hover {_ms(one_layer.hover_ms)}"
            )
    else:
        ok = row.toggle_ms < GOAL_INTERACTIVE_MS and row.hover_ms < GOAL_INTERACTIVE_MS
        print(
            f"  2048 tokens, head view: head toggle {row.toggle_ms:.0f} ms, token hover {row.hover_ms:.0f} ms "
            f"(goal < {GOAL_INTERACTIVE_MS} ms each) {'ok' if ok else 'MISSED'}"
        )


def print_build_verdict(seconds: float | None) -> None:
    """The issue 16 line: the head view's HTML at 2,048 tokens built in <= `GOAL_BUILD_S`."""
    if seconds is None:
        print("  2048 tokens, head view HTML built: not measured (add 2048 to --lengths)")
        return
    verdict = "ok" if seconds <= GOAL_BUILD_S else "MISSED"
    print(f"  2048 tokens, head view HTML built in {seconds:.2f} s (goal <= {GOAL_BUILD_S:g} s) {verdict}")


def build_only(lengths: list[int], repeats: int, seed: int) -> None:
    """Time building attnscope's head view HTML (payload, widget, page) at each length: no browser."""
    print(f"head view HTML build: {LAYERS} layers x {HEADS} heads, realistic attention (seed {seed}), {repeats} builds")
    at_2048 = None
    with tempfile.TemporaryDirectory(prefix="attnscope-bench-") as tmp:
        for n in lengths:
            weights, tokens = realistic_attention(n, seed), word_tokens(n)
            times, cpu, nbytes = [], [], 0
            for _ in range(repeats):
                gc.collect()
                page = build_attnscope("head", weights, tokens, Path(tmp))
                assert page is not None and page.build_cpu_s is not None
                times.append(page.build_s)
                cpu.append(page.build_cpu_s)
                nbytes = page.nbytes
                page.path.unlink()
            build_s = statistics.median(times)
            each = ", ".join(f"{t:.2f}" for t in times)
            print(
                f"  {n:>5} tokens: {_size(nbytes):>10}, built in {build_s:.2f} s (median of {each}; "
                f"{statistics.median(cpu):.2f} s of CPU; load average {os.getloadavg()[0]:.1f})"
            )
            at_2048 = build_s if n == 2048 else at_2048
            del weights
            gc.collect()
    print_build_verdict(at_2048)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256, 512, 1024, 2048])
    parser.add_argument("--repeats", type=int, default=3, help="page loads per attnscope view (median)")
    parser.add_argument("--bertviz-repeats", type=int, default=1, help="page loads per BertViz view (median)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds before a draw counts as not finished")
    parser.add_argument("--skip-bertviz-above", type=int, default=256, help="do not build BertViz's HTML above this")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--build-only", action="store_true", help="only time building the head view's HTML")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # rows appear as they are measured, even in a pipe
    if args.build_only:
        build_only(args.lengths, args.repeats, args.seed)
        return
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from importlib.metadata import version

    import bertviz  # noqa: F401  (fail early when the test extra is missing)
    from playwright.sync_api import sync_playwright

    assets = npm_assets() if any(n <= args.skip_bertviz_above for n in args.lengths) else {}
    browser_version = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    print(
        f"P1 views: {LAYERS} layers x {HEADS} heads, realistic attention (seed {args.seed}); attnscope "
        f"{attnscope.__version__} vs BertViz {version('bertviz')} in headless {browser_version}"
    )
    print(
        f"time until drawn: page.goto start to the full first draw and its paint; median of {args.repeats} "
        f"(attnscope) / {args.bertviz_repeats} (BertViz) loads; toggle/hover: median of 5, input event to paint"
    )
    results: dict[int, list[Row]] = {}
    with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="attnscope-bench-") as tmp:
        directory = Path(tmp)
        for n in args.lengths:
            weights, tokens = realistic_attention(n, args.seed), word_tokens(n)
            rows = []
            for view in ("head", "model"):
                if view == "model" and n > MODEL_VIEW_MAX:
                    continue
                rows.append(
                    measure(
                        playwright, "attnscope", view, weights, tokens, directory, assets, args.repeats, args.timeout
                    )
                )
                if view == "head" and rows[-1].nbytes is not None and rows[-1].seconds is None:
                    # Not drawn: is it the payload's size or the drawing? The same page with one layer.
                    rows.append(
                        measure(
                            playwright,
                            "attnscope",
                            view,
                            weights,
                            tokens,
                            directory,
                            assets,
                            1,
                            args.timeout,
                            include_layers=[0],
                        )
                    )
                if n <= args.skip_bertviz_above:
                    rows.append(
                        measure(
                            playwright,
                            "bertviz",
                            view,
                            weights,
                            tokens,
                            directory,
                            assets,
                            args.bertviz_repeats,
                            args.timeout,
                        )
                    )
                else:
                    rows.append(
                        Row(view, "bertviz", note=f"not built (above --skip-bertviz-above {args.skip_bertviz_above})")
                    )
                gc.collect()
            results[n] = rows
            print_table(n, rows, args.timeout)
            del weights
            gc.collect()
    print_verdicts(results, args.timeout)
    head_2048 = next((r for r in results.get(2048, []) if r.view == "head" and r.tool == "attnscope"), None)
    print_build_verdict(head_2048.build_s if head_2048 is not None else None)


if __name__ == "__main__":
    main()
