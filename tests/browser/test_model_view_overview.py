"""M3 in a real browser: the model view at long context draws every head's pooled overview, zooms into a head down
to single tokens (asking Python through the widget's messages, or from what an exported page carries) and shows
the exact float32 weight on hover."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

import attnscope
from attnscope.analysis.long import pooled_overview
from attnscope.capture.lazy import LazyAttention
from attnscope.views.html import bundle, static_text

from ..conftest import PUB
from .conftest import open_view
from .stand_in_model import install as install_stand_in_model

LONG = " ".join([PUB] * 6)  # truncated to the tiny model's 128 positions
CELLS = 16  # blocks of 8 tokens; the exported page carries blocks of 4 too
PALETTE = ["#CC6677", "#332288", "#DDCC77", "#117733"]  # common.js's first head colours (light theme)

# Alpha and colour of the grid canvas at the pixel of cell (r, c) of the head button `selector`.
GRID_PIXEL = """([selector, r, c]) => {
  const cell = document.querySelector(selector), canvas = document.querySelector('.attnscope-mo-canvas');
  const px = Math.floor(cell.offsetWidth / CELLS);
  return [...canvas.getContext('2d').getImageData(cell.offsetLeft + c * px, cell.offsetTop + r * px, 1, 1).data];
}""".replace("CELLS", str(CELLS))


@pytest.fixture(scope="module")
def pair(tiny):
    handle = tiny("smollm2")
    lazy = attnscope.capture(handle, LONG, truncate=True, attention="on_demand")
    lazy.attentions.block_bytes = lazy.attentions.shape[3] * 13 * 4  # several blocks of rows per request
    assert isinstance(lazy.attentions, LazyAttention)
    return lazy, attnscope.capture(handle, LONG, truncate=True)


def detail(page) -> dict:
    return page.page.evaluate("() => ({ ...document.querySelector('.attnscope-mo-detail').dataset })")


def canvas_point(page, r: float, c: float, region_cells: tuple[int, int]):
    """The page coordinates of (fractional) cell (r, c) of the enlarged head's canvas."""
    box = page.page.locator(".attnscope-mo-detail-canvas").bounding_box()
    return box["x"] + box["width"] * (c + 0.5) / region_cells[1], box["y"] + box["height"] * (r + 0.5) / region_cells[0]


def test_every_head_is_drawn_from_its_pooled_cells_in_the_exported_page(page, tmp_path, pair):
    lazy, _ = pair
    view = attnscope.model_view(lazy, cells=CELLS)
    root = open_view(page, tmp_path, view.to_html(), ".attnscope-mo")
    assert root.locator(".attnscope-mo-cell").count() == 2 * 4 == int(root.get_attribute("data-cells"))
    assert "each cell: max of a 8 × 8-token block" in root.locator(".attnscope-mo-pooling").text_content()
    expected = pooled_overview(lazy.attentions, cells=CELLS)
    mean_scale = expected.mean.max(axis=(2, 3))
    for layer, head, r, c in [(0, 0, 0, 0), (1, 2, 5, 3), (1, 3, 15, 15), (0, 1, 9, 0), (1, 1, 15, 2)]:
        selector = f".attnscope-mo-cell[data-layer='{layer}'][data-head='{head}']"
        red, green, blue, alpha = page.page.evaluate(GRID_PIXEL, [selector, r, c])
        assert abs(alpha / 255 - expected.maximum[layer, head, r, c]) <= 1 / 510 + 1e-6
        if (r, c) == (0, 0):  # the first query sees only the first key: weight 1, opaque in the head's colour
            assert (alpha, f"#{red:02X}{green:02X}{blue:02X}") == (255, PALETTE[head])
    root.locator(".attnscope-mo-pooling-select").select_option("mean")
    assert root.get_attribute("data-pooling") == "mean"
    assert "each cell: mean of a 8 × 8-token block" in root.locator(".attnscope-mo-pooling").text_content()
    for layer, head, r, c in [(0, 0, 3, 1), (1, 2, 12, 11)]:
        selector = f".attnscope-mo-cell[data-layer='{layer}'][data-head='{head}']"
        alpha = page.page.evaluate(GRID_PIXEL, [selector, r, c])[3]
        relative = expected.mean[layer, head, r, c] / mean_scale[layer, head]
        assert abs(alpha / 255 - relative) <= 1 / 510 + 1e-6
    assert page.errors == [] and page.blocked == []


def test_a_click_zooms_in_the_exported_page_as_far_as_it_carries_and_says_so(page, tmp_path, pair):
    lazy, _ = pair
    root = open_view(page, tmp_path, attnscope.model_view(lazy, cells=CELLS).to_html(), ".attnscope-mo")
    root.locator(".attnscope-mo-cell[data-layer='1'][data-head='2']").click()
    assert detail(page).items() >= {"layer": "1", "head": "2", "rows": "0:128", "cols": "0:128", "block": "8"}.items()
    page.page.mouse.click(*canvas_point(page, 12, 4, (16, 16)))  # one eighth of each side around cell (12, 4)
    shown = detail(page)
    assert (shown["rows"], shown["cols"], shown["block"], shown["exact"]) == ("92:108", "28:44", "4", "false")
    assert "carries cells down to 4 × 4 tokens" in root.locator(".attnscope-mo-status").text_content()
    page.page.mouse.move(*canvas_point(page, 1, 2, (4, 4)))
    values = page.page.locator(".attnscope-mo-tooltip .attnscope-mo-weight")
    expected = np.asarray(lazy.attentions.tile(1, 2, range(96, 100), range(36, 40))).max()
    assert abs(float(values.get_attribute("data-max").lstrip("≈")) - expected) <= 1 / 510 + 5e-4  # 3 decimals
    page.page.keyboard.press("Escape")
    assert detail(page)["rows"] == "0:128"
    page.page.keyboard.press("Escape")
    assert root.locator(".attnscope-mo-detail").is_hidden()
    assert page.errors == []


# Mount the bundle on the stand-in model, its levels as the widget sends them (bytes arrive as DataView).
MOUNT = """
async ([source, header, levels]) => {
  const module = await import("data:text/javascript;base64," + source);
  window.bytes = (b64) => { const s = atob(b64); const u = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i); return new DataView(u.buffer); };
  for (const list of Object.values(levels))
    for (const lv of list) { lv.max = window.bytes(lv.max); lv.mean = window.bytes(lv.mean); }
  const values = { header, levels, stack: "decoder", pooling: "max", layer: null, head: null, region: null,
    theme: "auto" };
  window.model = window.standInModel(values);
  window.cleanup = await module.default.render({ model: window.model, el: document.getElementById("host") });
}
"""


def mount(page, view):
    css = static_text("model_view_overview.css")  # as anywidget adds the widget's _css
    page.page.set_content(f"<!DOCTYPE html><style>{css}</style><div id='host'></div>")
    install_stand_in_model(page.page)
    source = base64.b64encode(bundle("model_view_overview").encode()).decode()
    levels = {
        role: [{**lv, "max": base64.b64encode(lv["max"]).decode(), "mean": base64.b64encode(lv["mean"]).decode()}
               for lv in wires]
        for role, wires in view.levels.items()
    }  # fmt: skip
    page.page.evaluate(MOUNT, [source, json.loads(json.dumps(view.header)), levels])
    return page.page.locator("#host .attnscope-mo")


def answer(page, view) -> list[dict]:
    """Hand the zoom requests the page sent to the widget and its replies back to the page; the requests."""
    requests = page.page.evaluate("window.sent.splice(0)")
    replies = []
    view.send = lambda content, buffers=None: replies.append((content, list(buffers or [])))
    for request in requests:
        view._handle_custom_msg(request, [])
    for content, buffers in replies:
        encoded = [base64.b64encode(b).decode() for b in buffers]
        page.page.evaluate("([m, b]) => window.fire('msg:custom', m, b.map(window.bytes))", [content, encoded])
    return requests


def test_the_widget_zooms_to_single_tokens_with_python_and_hover_shows_the_exact_weight(page, pair):
    lazy, eager = pair
    view = attnscope.model_view(lazy, cells=CELLS)
    root = mount(page, view)
    root.locator(".attnscope-mo-cell[data-layer='0'][data-head='3']").click()
    (request,) = answer(page, view)
    asked = {"type": "attnscope-zoom", "stack": "decoder", "layer": 0, "head": 3, "rows": [0, 128], "cols": [0, 128]}
    assert request.items() >= asked.items()
    assert detail(page)["exact"] == "true" and detail(page)["pending"] == "false"
    page.page.mouse.move(*canvas_point(page, 10, 7, (16, 16)))
    values = page.page.locator(".attnscope-mo-tooltip .attnscope-mo-weight")
    cell = eager.attentions[0, 3, 80:88, 56:64]
    assert np.float32(float(values.get_attribute("data-max"))) == np.float32(cell.max())
    assert abs(float(values.get_attribute("data-mean")) - cell.astype(np.float64).mean()) <= 1e-7
    page.page.mouse.click(*canvas_point(page, 10, 7, (16, 16)))
    answer(page, view)
    shown = detail(page)
    assert (shown["rows"], shown["cols"], shown["kind"], shown["exact"]) == ("76:92", "52:68", "tile", "true")
    assert page.page.evaluate("window.sets").count(["region", [76, 92, 52, 68]]) == 1
    assert root.locator(".attnscope-mo-queries .attnscope-mo-token").count() == 16
    assert root.locator(".attnscope-mo-keys .attnscope-mo-token").first.text_content() == lazy.tokens.display[52]
    for r, c in [(0, 0), (9, 3), (15, 15), (12, 1)]:
        page.page.mouse.move(*canvas_point(page, r, c, (16, 16)))
        weight = page.page.locator(".attnscope-mo-tooltip .attnscope-mo-weight")
        assert (int(weight.get_attribute("data-query")), int(weight.get_attribute("data-key"))) == (76 + r, 52 + c)
        printed = weight.get_attribute("data-weight")
        assert np.float32(float(printed)) == lazy.attentions.tile(0, 3, [76 + r], [52 + c])[0, 0]
        assert abs(float(printed) - eager.attentions[0, 3, 76 + r, 52 + c]) <= 1e-6
        assert f"weight {printed}" in weight.text_content()
    assert page.errors == []


def test_a_dragged_rectangle_zooms_and_python_errors_are_shown(page, pair):
    lazy, _ = pair
    view = attnscope.model_view(lazy, cells=CELLS)
    root = mount(page, view)
    page.page.evaluate("window.pySet('layer', 1); window.pySet('head', 0)")  # Python opens a head
    answer(page, view)
    assert detail(page)["head"] == "0" and root.locator(".attnscope-mo-detail").is_visible()
    page.page.mouse.move(*canvas_point(page, 2, 1, (16, 16)))
    page.page.mouse.down()
    page.page.mouse.move(*canvas_point(page, 9, 6, (16, 16)), steps=4)
    page.page.mouse.up()
    (request,) = answer(page, view)
    assert (request["rows"], request["cols"]) == ([16, 80], [8, 56])
    assert (detail(page)["rows"], detail(page)["block"]) == ("16:80", "8")  # needs 4: the overview, twice as coarse
    page.page.evaluate("window.pySet('region', [0, 130, 0, 5])")  # past the tokens: Python says so
    answer(page, view)
    status = root.locator(".attnscope-mo-status")
    assert status.get_attribute("data-error") == "true"
    assert "rows 0:130 is out of range: query positions are 0-127" in status.text_content()
    page.page.evaluate("window.cleanup()")
    assert page.page.locator("#host .attnscope-mo").count() == 0 and page.errors == []
