"""Issue 17, corpus search with decoders, in the real app (Chromium, `attnscope serve --model default --model
smollm2` over a small stand-in for EWT): choosing SmolLM2, which has no corpus yet, starts its index in the
background with the progress shown in the search panel; once built the corpus is selected, a layer it does
not store disables the search buttons (the hint names the stored layers), and a search at a stored layer
shows the "next" column and the histogram of the token after each match."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from ..decoder_corpus import small_ewt_env
from ..serve_process import serving
from .test_app import AppPage, app, open_app  # noqa: F401 - app: the page fixture, here on this module's server

PUB = "The girl ran to a local pub to escape the din of her city."
RECORD_BUILD = """
window.__build = [];
document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("corpus-build");
  new MutationObserver(() => window.__build.push([box.dataset.state, box.hidden,
    document.getElementById("corpus-build-text").textContent])).observe(box, { attributes: true, subtree: true,
    childList: true, characterData: true });
});
"""


@pytest.fixture(scope="module")
def server(smollm2_first_load, tmp_path_factory):
    root = tmp_path_factory.mktemp("decoder-corpus-app")
    env = small_ewt_env(root, smollm2_first_load.cache_root)
    with serving(["--model", "default", "--model", "smollm2"], root, env=env) as served:
        yield served.base


def test_a_decoders_corpus_is_built_on_first_use_then_searched_with_next(app: AppPage):
    page = app.page
    page.add_init_script(RECORD_BUILD)
    open_app(app, "?" + urlencode({"model": "smollm2", "text": PUB, "layer": "5"}))
    page.wait_for_function("() => document.getElementById('corpus').value.startsWith('ewt--')", timeout=600_000)
    seen = page.evaluate("() => window.__build")
    shown = [text for state, hidden, text in seen if state in ("reading", "indexing") and not hidden and text]
    assert shown and shown[0].startswith("Reading and annotating corpus ewt--"), seen
    assert all(" for " in text for text in shown)
    assert page.is_hidden("#corpus-build")  # built: the progress is gone

    page.click(".attnscope-hv-queries .attnscope-hv-token[data-index='2']")
    assert page.is_disabled("#search-embedding") and page.is_disabled("#search-heads")
    hint = page.text_content("#search-hint")
    assert "stores layers 0, 8, 16, 24, 29 only: choose one of them to search" in hint

    page.select_option("#layer", "8")
    assert page.is_enabled("#search-embedding") and page.text_content("#search-hint") == ""
    page.click("#search-embedding")
    page.wait_for_selector("#results[data-state=ready]")
    rows = page.locator(".as-match").count()
    assert rows > 0
    assert page.text_content(".as-mhead .as-next") == "next"
    assert page.locator(".as-match .as-next").count() == rows
    figure = page.locator("#summary figure[data-which=next]")
    assert "of the next token (after each match)" in figure.locator("figcaption").text_content()
    counts = [int(c) for c in figure.locator(".as-bar").evaluate_all("(bars) => bars.map((b) => b.dataset.count)")]
    assert sum(counts) == rows
    cells = page.locator(".as-match .as-next").evaluate_all("(cells) => cells.map((c) => c.textContent)")
    bars = figure.locator(".as-bar").evaluate_all("(bars) => bars.map((b) => b.dataset.value)")
    assert {"end" if c == "end" else c for c in cells} <= {"end" if b == "(end)" else b for b in bars} | {"other"}
