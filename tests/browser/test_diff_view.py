"""The diff view (B5) in a real Chromium: A − B cells coloured as Python's palette colours Python's difference, a
click on a head opening its matched head of B, and the standalone page drawing offline."""

from __future__ import annotations

import numpy as np

import attnscope
from attnscope.quantise import quantise
from attnscope.views.diff_payload import SEQUENTIAL, diverging_rgb, ramp_rgb

from ..conftest import PUB
from ..diff_fixtures import SWAPPED, UNIFORM, edited_comparison
from .conftest import open_view

ROOT = ".attnscope-dv"
PIXELS = """(kind) => {
  const canvas = document.querySelector(`.attnscope-dv-cells[data-kind='${kind}']`);
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  return { width: canvas.width, height: canvas.height, rgba: Array.from(data) };
}"""


def pixels(page, kind: str) -> np.ndarray:
    got = page.page.evaluate(PIXELS, kind)
    return np.array(got["rgba"], dtype=np.uint8).reshape(got["height"], got["width"], 4)


def test_a_minus_b_cells_are_the_palette_applied_to_pythons_difference(page, tmp_path, default_model):
    comparison = edited_comparison(default_model)
    layer, head = UNIFORM
    view = attnscope.diff_view(comparison, layer=layer, head=head)
    root = open_view(page, tmp_path, view.to_html(), ROOT)
    assert root.get_attribute("data-partner") == f"{layer}-{head}"  # the matching keeps the changed head in place
    limit = int(root.get_attribute("data-limit-code"))
    codes = quantise(comparison.attention_a[layer, head]).astype(int) - quantise(comparison.attention_b[layer, head])
    assert np.abs(codes / 255 - comparison.difference(layer, head)).max() <= 1 / 255 + 1e-9  # bytes: within 1/255
    drawn = pixels(page, "diff")
    assert drawn.shape[:2] == codes.shape and np.all(drawn[..., 3] == 255)
    assert np.array_equal(drawn[..., :3], diverging_rgb(codes, limit))  # cell (q, k) at pixel (k, q)
    assert np.any(codes > 0) and np.any(codes < 0)  # both ends of the scale are checked
    weights = pixels(page, "b")
    assert np.array_equal(weights[..., :3], ramp_rgb(quantise(comparison.attention_b[layer, head]) / 255, SEQUENTIAL))
    # the grid's A − B thumbnail of an unchanged head is white: zero difference everywhere
    grid = page.page.evaluate(
        "() => { const c = document.querySelector('.attnscope-dv-heads');"
        " return Array.from(c.getContext('2d').getImageData(0, 0, 10, 10).data); }"
    )
    assert set(grid) == {255}
    assert page.errors == [] and page.blocked == []


def test_a_click_on_a_head_shows_its_matched_head_of_b(page, tmp_path, default_model):
    comparison = edited_comparison(default_model)
    layer, x, y = SWAPPED
    root = open_view(page, tmp_path, attnscope.diff_view(comparison).to_html(), ROOT)
    assert page.page.locator(".attnscope-dv-detail").is_hidden()
    cell = int(page.page.get_attribute(".attnscope-dv-heads", "data-pitch"))  # thumbnail + gap, px
    page.page.click(".attnscope-dv-heads", position={"x": x * cell + 5, "y": layer * cell + 5})
    assert (root.get_attribute("data-layer"), root.get_attribute("data-head")) == (str(layer), str(x))
    assert root.get_attribute("data-partner") == f"{layer}-{y}"  # the swapped head, found by the matching
    caption = page.page.locator(".attnscope-dv-panel-b .attnscope-dv-panel-caption").inner_text()
    assert caption.startswith(f"B {layer}-{y}")
    shown = pixels(page, "b")[..., :3]
    assert np.array_equal(shown, ramp_rgb(quantise(comparison.attention_b[layer, y]) / 255, SEQUENTIAL))
    assert np.all(pixels(page, "diff")[..., :3] == 255)  # against its match, the moved head is unchanged
    page.page.click(f".attnscope-dv-partner[data-layer='{layer}'][data-head='{x}']")  # the same place instead
    assert root.get_attribute("data-partner") == f"{layer}-{x}"
    page.page.click(f".attnscope-dv-distance[data-layer='{UNIFORM[0]}'][data-head='{UNIFORM[1]}']")
    assert root.get_attribute("data-head") == str(UNIFORM[1])
    page.page.select_option(".attnscope-dv-mode", "b")
    page.page.click(".attnscope-dv-heads", position={"x": y * cell + 5, "y": layer * cell + 5})  # B's head 1-7
    assert (root.get_attribute("data-head"), root.get_attribute("data-partner")) == (str(x), f"{layer}-{y}")
    assert page.errors == [] and page.blocked == []


def test_the_standalone_page_draws_offline_and_names_unaligned_positions(page, tmp_path, default_model, tiny):
    comparison = attnscope.compare_models(default_model, tiny("gpt2"), PUB)
    first = comparison.matching[0]  # B has 8 heads: 8 of A's 72 are matched
    html = attnscope.diff_view(comparison, layer=first.layer_a, head=first.head_a).to_html()
    assert "<script src" not in html and "<link" not in html  # everything inlined; blocked requests are counted below
    root = open_view(page, tmp_path, html, ROOT)
    assert page.blocked == [] and page.errors == []
    assert root.get_attribute("data-level") == "word"
    note = page.page.locator(".attnscope-dv-unaligned-a").inner_text()
    assert note.startswith("Not aligned in A: [CLS] (0)") and "[SEP]" in note
    assert root.get_attribute("data-partner") == f"{first.layer_b}-{first.head_b}"
    labels = page.page.locator(".attnscope-dv-panel-a .attnscope-dv-row-labels .attnscope-dv-unit").all_inner_texts()
    assert labels == comparison.alignment.labels
