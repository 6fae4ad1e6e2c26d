"""One attention view: the explorer app and the notebook's head view draw the same lines, to the pixel.

The app (a real `attnscope serve` on loopback) mounts head_view.js on the payload /api/attention sends; the
notebook view is `attnscope.head_view` exported as HTML with the same settings. For the same input, layer,
heads, top share, hidden special tokens, words and pinned token, both canvases hold the same pixels, both say
they draw the same number of lines, and that number is numpy's (the mean of the heads' bytes, per query row
the fewest strongest lines that make up the top share of its weight on the shown keys). The notebook's page
carries its layers deflated (the browser inflates them), the app's arrive plain, and the same page built with
plain layers draws the same pixels as well.
"""

from __future__ import annotations

from urllib.parse import urlencode

import numpy as np
import pytest

import attnscope
from attnscope.views.html import page as html_page
from attnscope.views.html import view_fragment

from .conftest import open_view
from .test_app import AppPage, count_lines, mean_of_bytes, open_app
from .test_app_show_atlas import merged, words_of

PUB = "The girl ran to a local pub to escape the din of her city."
UNBELIEVABLY = "Unbelievably, the tokenisation splits words."

# What a canvas holds: its size and an FNV-1a hash of its RGBA bytes (the same pixels give the same hash).
CANVAS = """(root) => {
  const canvas = root.querySelector('.attnscope-hv-canvas');
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let hash = 0x811c9dc5, painted = 0;
  for (let i = 0; i < data.length; i++) { hash = Math.imul(hash ^ data[i], 0x01000193) >>> 0; }
  for (let i = 3; i < data.length; i += 4) if (data[i]) painted++;
  return { width: canvas.width, height: canvas.height, hash, painted, lines: Number(root.dataset.lines) };
}"""

# Each head thumbnail: its head and an FNV-1a hash and painted-pixel count of its canvas.
THUMBNAILS = """(root) => [...root.querySelectorAll('.attnscope-hv-head')].map((button) => {
  const canvas = button.querySelector('canvas');
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let hash = 0x811c9dc5, painted = 0;
  for (let i = 0; i < data.length; i++) { hash = Math.imul(hash ^ data[i], 0x01000193) >>> 0; }
  for (let i = 3; i < data.length; i += 4) if (data[i]) painted++;
  return [Number(button.dataset.head), hash, painted];
})"""

SETTINGS = [
    # text, layer, heads, top share, hide special tokens, words, pinned query (a unit of the view)
    (PUB, 3, [2, 7], 0.5, True, False, 5),
    (PUB, 0, list(range(12)), 0.9, False, False, None),
    (UNBELIEVABLY, 2, [1, 4, 9], 0.8, False, True, 3),
]


@pytest.fixture(scope="module")
def server(small_app):
    return small_app


@pytest.fixture
def app(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    guarded = AppPage(context.new_page(), server)
    yield guarded
    context.close()


def app_query(text: str, layer: int, heads: list[int], share: float, hide: bool, words: bool, token: int | None) -> str:
    """The app's URL for these settings (its token is a token position: the first of the pinned word's)."""
    query = {"text": text, "layer": str(layer), "heads": ",".join(map(str, heads)), "top_share": str(share)}
    if hide:
        query["special"] = "hide"
    if words:
        query["words"] = "on"
    if token is not None:
        query["token"] = str(token)
    return "?" + urlencode(query)


@pytest.mark.parametrize("settings", SETTINGS, ids=["two-heads-pinned-hidden", "all-heads", "words-pinned"])
def test_the_app_and_the_notebook_head_view_draw_the_same_lines(settings, app, page, tmp_path, default_model):
    text, layer, heads, share, hide, words, pinned = settings
    cap = attnscope.capture(default_model, text)
    view = attnscope.head_view(
        cap,
        layer=layer,
        heads=heads,
        threshold=0,
        top_share=share,
        encoding="dense",
        mean_heads=True,
        head_thumbnails=True,
        shade_keys=True,
        html_action="return",
    )
    units = words_of({"payload": {"header": view.header}}) if words else [[t] for t in range(len(cap.tokens))]
    view.hide_special, view.merge_subwords = hide, words
    view.token = None if pinned is None else {"side": "query", "index": pinned, "unit": "word" if words else "token"}

    open_app(app, app_query(text, layer, heads, share, hide, words, None if pinned is None else units[pinned][0]))
    app.page.mouse.move(1, 1)
    app.page.wait_for_function(f"() => document.querySelector('#attention .attnscope-hv').dataset.layer === '{layer}'")
    in_app = app.page.eval_on_selector("#attention .attnscope-hv", CANVAS)
    thumbnails_in_app = app.page.eval_on_selector("#attention .attnscope-hv", THUMBNAILS)
    assert app.page.is_hidden("#attention .attnscope-hv-controls")  # the page has its own controls
    state = view.html_state()  # the page carries its layers deflated; the app's come plain from /api/attention
    assert state["header"]["encoding"]["compression"] == "deflate-raw"
    root = open_view(page, tmp_path, view.to_html(), ".attnscope-hv")
    page.page.mouse.move(1, 1)
    in_notebook = root.evaluate(CANVAS)
    thumbnails_in_notebook = root.evaluate(THUMBNAILS)
    # the same page with plain layers, as pages were before they were deflated: the same pixels
    plain = {**state, "header": view.header, "layers": view.payload.layers_base64()}
    root = open_view(page, tmp_path, html_page([view_fragment("head_view", plain)]), ".attnscope-hv", "plain.html")
    page.page.mouse.move(1, 1)
    assert root.evaluate(CANVAS) == in_notebook
    assert root.evaluate(THUMBNAILS) == thumbnails_in_notebook

    shown = [u for u, unit in enumerate(units) if not (hide and all(cap.tokens.special[t] for t in unit))]
    quantised = np.rint(cap.attentions[layer] * 255).astype(np.uint8)
    mean = merged(mean_of_bytes(quantised, heads), units) if words else mean_of_bytes(quantised, heads)
    expected = count_lines(mean, shown, share, None if pinned is None else [pinned])
    assert in_app["lines"] == in_notebook["lines"] == expected > 0
    assert in_app["painted"] > 0
    assert in_app == in_notebook
    # every head's thumbnail is drawn (its lines in its colour), and the same in both
    assert [h for h, _, _ in thumbnails_in_app] == list(range(12))
    assert all(painted > 0 for _, _, painted in thumbnails_in_app)
    assert thumbnails_in_app == thumbnails_in_notebook
    assert app.errors == [] and page.errors == []
