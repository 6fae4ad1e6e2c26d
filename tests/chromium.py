"""How every Chromium of the project starts: Debian's binary and the flags that keep it headless and quiet
(no sandbox in containers, no GPU, no background requests), and the URL schemes a page may load offline.
Used by the browser tests, the benchmarks (bench/app.py, bench/chromium.py) and docs/screenshots.py."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL = ("file:", "data:", "blob:", "about:")
"""URL schemes that never leave the machine: a page's requests to anything else are blocked and reported."""
