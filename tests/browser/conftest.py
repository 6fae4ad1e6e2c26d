"""A real headless Chromium (Debian's) driven by Playwright, with every network request refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import attnscope

from ..chromium import ARGS, CHROMIUM, LOCAL
from ..conftest import PUB
from ..serve_process import serving

STATIC = Path(attnscope.__file__).parent / "static"


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium` (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


class Page:
    """A browser page that records console errors and every non-local request (which it aborts)."""

    def __init__(self, page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.blocked: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.route("**/*", self._guard)

    def _guard(self, route) -> None:
        url = route.request.url
        if url.startswith(LOCAL):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    guarded = Page(context.new_page())
    yield guarded
    context.close()


def open_view(page: Page, tmp_path: Path, html: str, selector: str, name: str = "view.html"):
    """Write ``html`` to ``tmp_path / name``, open it, wait until every element ``selector`` is data-ready (a
    page's views inflate their deflated layers before they draw, each at its own pace); their locator."""
    path = tmp_path / name
    path.write_text(html, encoding="utf-8")
    page.page.goto(path.as_uri())
    page.page.wait_for_selector(f"{selector}[data-ready=true]")
    page.page.wait_for_function(
        "(selector) => [...document.querySelectorAll(selector)].every((root) => root.dataset.ready === 'true')",
        arg=selector,
    )
    return page.page.locator(selector)


SOURCES = "http://static.attnscope.test/"
"""Where `open_sources` serves the package's ES modules (static/*.js) as they are, unbundled."""


def open_sources(page, html: str) -> None:
    """Open ``html`` at `SOURCES`, where every file of static/ is served as it is: the page's `import("./x.js")`
    loads the module by its own import lines, as a browser resolves them (no bundle). A missing file is a 404."""

    def fulfil(route) -> None:
        name = route.request.url.removeprefix(SOURCES)
        if name == "index.html":
            route.fulfill(body=html, content_type="text/html")
        elif name.endswith(".js") and "/" not in name and (STATIC / name).is_file():
            route.fulfill(body=(STATIC / name).read_text(encoding="utf-8"), content_type="text/javascript")
        else:
            route.fulfill(status=404, body="")

    page.route(SOURCES + "**", fulfil)
    page.goto(SOURCES + "index.html")


@pytest.fixture(scope="module")
def pub_capture(default_model):
    return attnscope.capture(default_model, PUB)


@pytest.fixture(scope="module")
def pair_capture(default_model):
    return attnscope.capture(default_model, "The girl ran to a local pub.", "She wanted to escape the din.")


@pytest.fixture(scope="session")
def small_app(default_model, small_index, tiny_path, tmp_path_factory):
    """Base URL of one `attnscope serve` for the app's browser tests that need no real corpus: the default model
    (no masked-LM head), a tiny BERT with one, and a copy of the small index served as corpus "small"."""
    root = tmp_path_factory.mktemp("small-app")
    small = shutil.copytree(small_index.directory, root / "small")
    with serving(["--model", "default", "--model", str(tiny_path("bert")), "--corpus", str(small)], root) as served:
        yield served.base
