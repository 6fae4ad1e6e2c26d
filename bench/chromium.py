"""Headless Chromium for the view benchmarks: open a page, time it until drawn and painted, time clicks and hovers.

The browser is Debian's ``/usr/bin/chromium`` with the flags of tests/browser/conftest.py, launched
fresh for every page, with every non-local request refused. A page stuck in one long task answers
no command and keeps ``browser.close()`` waiting, so a watchdog kills the browser (found by a marker
switch in its command line) when its time runs out.
"""

from __future__ import annotations

import os
import signal
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.chromium import ARGS, CHROMIUM, LOCAL  # noqa: E402 - how the tests start Chromium

SAMPLES = 5
SLOW_MS = 1000  # an interaction this slow is not sampled again

# Sets window.__benchPainted once the frame after now has been painted (a rAF, then a message).
PAINTED = (
    "() => { window.__benchPainted = false; requestAnimationFrame(() => {"
    " const c = new MessageChannel(); c.port1.onmessage = () => { window.__benchPainted = true; };"
    " c.port2.postMessage(0); }); }"
)
# Records, per event type, the input event's timestamp and the paint after the handlers ran.
INSTRUMENT = """() => {
  window.__t = {};
  const afterPaint = (f) => requestAnimationFrame(() => {
    const c = new MessageChannel(); c.port1.onmessage = f; c.port2.postMessage(0); });
  for (const type of ["click", "mouseover"]) {
    window.addEventListener(type, (e) => { window.__t[type] = { start: e.timeStamp, end: null }; }, true);
    window.addEventListener(type, () => {
      const record = window.__t[type]; afterPaint(() => { record.end = performance.now(); }); });
  }
}"""


def kill_browser(marker: str) -> None:
    """SIGKILL the browser process launched with ``marker`` in its command line; its renderers go with it."""
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker.encode() in cmdline and not any(arg.startswith(b"--type=") for arg in cmdline):
            try:
                os.kill(int(proc.name), signal.SIGKILL)
            except (OSError, ValueError):
                pass


class Watchdog:
    """Kills the marked browser when armed time runs out (Playwright's timeouts wait on a busy page)."""

    def __init__(self, marker: str) -> None:
        self.marker, self.fired, self.timer = marker, False, threading.Timer(0, lambda: None)

    def arm(self, seconds: float) -> None:
        self.timer.cancel()
        self.timer = threading.Timer(seconds, self._fire)
        self.timer.daemon = True
        self.timer.start()

    def _fire(self) -> None:
        self.fired = True
        kill_browser(self.marker)


@dataclass
class Visit:
    """One page load: seconds until drawn and painted (None if not), why not, and what ``then`` returned."""

    seconds: float | None = None
    problem: str = ""  # "timeout", page errors, or what the check found
    after: object = None
    after_problem: str = ""


def _wait_for(page, script: str, started: float, timeout_s: float) -> None:
    remaining = max(1.0, timeout_s - (time.perf_counter() - started))
    page.wait_for_function(script, polling="raf", timeout=remaining * 1000)


def visit(
    playwright, path: Path, drawn: str, timeout_s: float, check: Callable | None = None, then: Callable | None = None
) -> Visit:
    """Open ``path`` in a fresh browser; time from ``goto`` until the JS predicate ``drawn`` holds and the
    next frame is painted (at most ``timeout_s``). Then, untimed, ``check(page)`` returns '' or a problem
    and ``then(page)`` runs (both within three timeouts) with its result in ``Visit.after``."""
    marker = f"--attnscope-bench={uuid.uuid4().hex}"  # an unknown switch Chromium ignores: finds its pid
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*ARGS, marker])
    watchdog, result, errors = Watchdog(marker), Visit(), []
    try:
        page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("crash", lambda _: errors.append("the page crashed"))
        page.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith(LOCAL)
                else (errors.append(f"blocked {route.request.url}"), route.abort())
            ),
        )
        watchdog.arm(timeout_s + 1)
        started = time.perf_counter()
        try:
            page.goto(path.as_uri(), wait_until="commit", timeout=timeout_s * 1000)
            _wait_for(page, drawn, started, timeout_s)
            page.evaluate(PAINTED)
            _wait_for(page, "() => window.__benchPainted === true", started, timeout_s)
            result.seconds = time.perf_counter() - started
            watchdog.arm(3 * timeout_s)
            if result.seconds > timeout_s:
                raise TimeoutError(f"drawn after {result.seconds:.1f} s")
        except Exception as exc:  # a timeout (ours or Playwright's), or a crashed page
            timed_out = watchdog.fired or isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__
            result.seconds = None
            result.problem = "timeout" if timed_out else ("; ".join(errors) or str(exc).splitlines()[0])
            return result
        result.problem = "; ".join(errors) or (check(page) if check else "")
        if then is not None and not result.problem:
            try:
                result.after = then(page)
            except Exception as exc:  # a view that did not react, or ran out of time: say so, keep going
                result.after_problem = f"over {3 * timeout_s:g} s" if watchdog.fired else str(exc).splitlines()[0]
    finally:
        watchdog.timer.cancel()
        kill_browser(marker) if watchdog.fired or result.problem == "timeout" else None
        try:
            browser.close()
        except Exception:  # already killed
            pass
    return result


@dataclass
class Interactions:
    """Input event to painted redraw, in ms: clicking a head toggle, hovering a token (median; samples)."""

    toggle: list[float] = field(default_factory=list)
    hover: list[float] = field(default_factory=list)

    def medians(self) -> tuple[float, float]:
        return statistics.median(self.toggle), statistics.median(self.hover)

    def complete(self) -> bool:
        return len(self.toggle) == len(self.hover) == SAMPLES


def interaction_times(
    page, toggle, tokens: list, timeout_ms: float, toggled: Callable | None = None, hovered: Callable | None = None
) -> Interactions:
    """Click the ``toggle`` locator and hover each of ``tokens`` (locators) with real mouse input.

    Up to ``SAMPLES`` of each, fewer after one over ``SLOW_MS``; ``toggled(page)``/``hovered(page, i)``
    raise when the view did not react.
    """
    page.evaluate(INSTRUMENT)
    times = Interactions()

    def timed(kind: str, act) -> float:
        page.evaluate(PAINTED)  # let the page settle first
        page.wait_for_function("() => window.__benchPainted === true", timeout=timeout_ms)
        page.evaluate("() => { window.__t = {}; }")
        act()
        page.wait_for_function(f"() => window.__t.{kind} && window.__t.{kind}.end !== null", timeout=timeout_ms)
        return page.evaluate(f"() => window.__t.{kind}.end - window.__t.{kind}.start")

    box = toggle.bounding_box()
    for _ in range(SAMPLES):  # off, on, off, ...
        times.toggle.append(
            timed("click", lambda: page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2))
        )
        if toggled:
            toggled(page)
        if times.toggle[-1] > SLOW_MS:
            break
    for i, token in enumerate(tokens[:SAMPLES]):
        token.scroll_into_view_if_needed()
        page.mouse.move(1, 1)
        spot = token.bounding_box()
        x, y = spot["x"] + spot["width"] / 2, spot["y"] + spot["height"] / 2
        times.hover.append(timed("mouseover", lambda x=x, y=y: page.mouse.move(x, y)))
        if hovered:
            hovered(page, i)
        if times.hover[-1] > SLOW_MS:
            break
    return times
