"""Screenshots of each view for the README, taken from the real rendering in headless Chromium.

Each view is captured on the default model, exported as HTML, opened offline in Debian's Chromium
and photographed after it reports itself drawn. The images land in docs/images/.

    .venv/bin/python docs/screenshots.py [--out docs/images]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import attnscope

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.chromium import ARGS, CHROMIUM  # noqa: E402 - how the tests start Chromium

PUB = "The girl ran to a local pub to escape the din of her city."


def views() -> list[tuple[str, object, str, str | None]]:
    """(file stem, view, root selector, element to hover first) for every view the package has."""
    model = attnscope.load()
    cap = attnscope.capture(model, PUB, fields="all")
    escape = cap.tokens.display.index("escape")
    shots: list[tuple[str, object, str, str | None]] = [
        (
            "head_view",
            attnscope.head_view(cap, layer=2, heads=[0, 2, 5, 9]),
            ".attnscope-hv",
            f".attnscope-hv-queries .attnscope-hv-token[data-index='{escape}']",
        ),
    ]
    if hasattr(attnscope, "model_view"):
        shots.append(("model_view", attnscope.model_view(cap), ".attnscope-mv", None))
    if hasattr(attnscope, "neuron_view"):
        shots.append(("neuron_view", attnscope.neuron_view(cap, layer=2, head=5, query=escape), ".attnscope-nv", None))
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "images")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900}, device_scale_factor=1)
        page.emulate_media(color_scheme="light")
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
        for stem, view, selector, hover in views():
            path = Path(tmp) / f"{stem}.html"
            view.save(path)
            page.goto(path.as_uri())
            page.wait_for_selector(f"{selector}[data-ready=true]")
            if hover:
                page.hover(hover)
            target = args.out / f"{stem}.png"
            page.locator(selector).first.screenshot(path=str(target))
            print(f"{target}  ({target.stat().st_size} bytes)")
        browser.close()


if __name__ == "__main__":
    main()
