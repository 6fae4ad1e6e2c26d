"""V2 model view in a real browser, offline: every layer × head drawn, enlarged, filtered and exported as the model
computed it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch

import attnscope
from attnscope.views import page as html_page

from ..conftest import PUB
from .conftest import open_view

THRESHOLD = 0.01
CELLS = """root => [...root.querySelectorAll('.attnscope-mv-cell')].map(
  (c) => [Number(c.dataset.layer), Number(c.dataset.head), Number(c.dataset.drawn)])"""


def open_html(page, tmp_path, html: str, name: str = "view.html"):
    return open_view(page, tmp_path, html, ".attnscope-mv", name)


def drawn_per_cell(root) -> dict[tuple[int, int], int]:
    """What each thumbnail reports drawing, by (layer label, head label)."""
    return {(layer, head): n for layer, head, n in root.evaluate(CELLS)}


def expected_per_cell(
    view, role: str, rows=None, cols=None, threshold: float = THRESHOLD
) -> dict[tuple[int, int], int]:
    """Weights above the threshold per thumbnail, from the quantised bytes the browser decodes."""
    decoded = view.payload.decoded(role)
    header = next(s for s in view.payload.header()["stacks"] if s["role"] == role)
    rows = range(decoded.shape[2]) if rows is None else rows
    cols = range(decoded.shape[3]) if cols is None else cols
    counts = (decoded[:, :, list(rows)][:, :, :, list(cols)] > threshold).sum(axis=(2, 3))
    return {
        (layer, head): int(counts[i, j])
        for i, layer in enumerate(header["layer_labels"])
        for j, head in enumerate(header["head_labels"])
    }


# Non-transparent pixels of the grid canvas inside each thumbnail, by (layer label, head label).
PIXELS = """root => {
  const canvas = root.querySelector('.attnscope-mv-canvas');
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  return [...root.querySelectorAll('.attnscope-mv-cell')].map((c) => {
    const x0 = c.offsetLeft, y0 = c.offsetTop, size = c.offsetWidth;
    let lit = 0;
    for (let y = y0; y < y0 + size; y++)
      for (let x = x0; x < x0 + size; x++) if (data[(y * canvas.width + x) * 4 + 3]) lit++;
    return [Number(c.dataset.layer), Number(c.dataset.head), lit];
  });
}"""
# Alpha of the enlarged view's canvas at (x, y) CSS px.
ALPHA = (
    "([x, y]) => document.querySelector('.attnscope-mv-detail-canvas').getContext('2d')"
    ".getImageData(x, y, 1, 1).data[3]"
)


def lit_per_cell(root) -> dict[tuple[int, int], int]:
    return {(layer, head): n for layer, head, n in root.evaluate(PIXELS)}


def number(root, name: str) -> int:
    return int(root.get_attribute(f"data-{name}"))


def tooltip_weights(page) -> list[tuple[int, float]]:
    items = page.page.locator(".attnscope-mv-tooltip .attnscope-mv-weight").all()
    return [(int(i.get_attribute("data-position")), float(i.get_attribute("data-weight"))) for i in items]


def test_every_layer_and_head_is_a_thumbnail_drawing_each_weight_above_threshold(page, tmp_path, pub_capture):
    view = attnscope.model_view(pub_capture)
    root = open_html(page, tmp_path, view.to_html())
    layers, heads = pub_capture.attentions.shape[:2]
    assert number(root, "cells") == layers * heads == page.page.locator(".attnscope-mv-cell").count()
    assert root.get_attribute("data-style") == "lines"  # 17 tokens: BertViz's line thumbnails
    drawn = drawn_per_cell(root)
    assert drawn == expected_per_cell(view, "encoder")
    assert 0 < number(root, "drawn") == sum(drawn.values()) < pub_capture.attentions.size  # the threshold drops some
    assert page.page.locator(".attnscope-mv-layer-label").all_inner_texts() == [str(i) for i in range(layers)]
    lit = lit_per_cell(root)
    assert all(lit[cell] > 0 for cell, n in drawn.items() if n)  # every thumbnail really has pixels
    assert page.blocked == [] and page.errors == []


def test_bertviz_arrays_with_include_layers_and_include_heads(page, tmp_path, pub_capture):
    attention = tuple(
        torch.from_numpy(a[None]) for a in pub_capture.attentions
    )  # BertViz: (batch, heads, q, k) per layer
    view = attnscope.model_view(attention, pub_capture.tokens.display, include_layers=[1, 4], include_heads=[0, 2, 7])
    root = open_html(page, tmp_path, view.to_html())
    assert number(root, "cells") == 6
    assert page.page.locator(".attnscope-mv-head-label").all_inner_texts() == ["0", "2", "7"]
    assert page.page.locator(".attnscope-mv-layer-label").all_inner_texts() == ["1", "4"]
    decoded = np.rint(pub_capture.attentions.astype(np.float64) * 255) / 255
    assert drawn_per_cell(root) == {
        (layer, head): int((decoded[layer, head] > THRESHOLD).sum()) for layer in (1, 4) for head in (0, 2, 7)
    }
    page.page.click(".attnscope-mv-cell[data-layer='4'][data-head='7']")
    assert (root.get_attribute("data-layer"), root.get_attribute("data-head")) == ("4", "7")
    assert number(root, "detail-drawn") == int((decoded[4, 7] > THRESHOLD).sum())
    assert page.errors == []


def test_clicking_a_thumbnail_enlarges_it_and_hovering_a_token_shows_its_real_weights(page, tmp_path, pub_capture):
    root = open_html(page, tmp_path, attnscope.model_view(pub_capture).to_html())
    att = pub_capture.attentions[2, 3]
    decoded = np.rint(att.astype(np.float64) * 255) / 255
    detail = page.page.locator(".attnscope-mv-detail")
    assert not detail.is_visible() and root.get_attribute("data-layer") == ""
    page.page.click(".attnscope-mv-cell[data-layer='2'][data-head='3']")
    assert detail.is_visible()
    assert (root.get_attribute("data-layer"), root.get_attribute("data-head")) == ("2", "3")
    assert number(root, "detail-drawn") == int((decoded > THRESHOLD).sum())
    tokens = detail.locator(".attnscope-mv-queries .attnscope-mv-token").all_inner_texts()
    assert tokens == pub_capture.tokens.display
    girl = pub_capture.tokens.display.index("girl")
    page.page.hover(f".attnscope-mv-queries .attnscope-mv-token[data-index='{girl}']")
    assert number(root, "detail-drawn") == int((decoded[girl] > THRESHOLD).sum())  # only its lines
    row = page.page.locator(".attnscope-mv-queries .attnscope-mv-token").first.bounding_box()["height"]
    starts = [page.page.evaluate(ALPHA, [0, int((i + 0.5) * row)]) for i in range(len(tokens))]
    assert [i for i, alpha in enumerate(starts) if alpha] == [girl]  # the lines leave from its row
    weights = tooltip_weights(page)
    assert len(weights) >= 5
    for key, value in weights:
        assert abs(value - att[girl, key]) <= 1 / 255
    assert [w for _, w in weights] == sorted((w for _, w in weights), reverse=True)
    assert abs(weights[0][1] - att[girl].max()) <= 1 / 255
    page.page.hover(".attnscope-mv-keys .attnscope-mv-token[data-index='0']")
    assert number(root, "detail-drawn") == int((decoded[:, 0] > THRESHOLD).sum())
    for query, value in tooltip_weights(page):
        assert abs(value - att[query, 0]) <= 1 / 255
    page.page.keyboard.press("Escape")
    assert not detail.is_visible() and root.get_attribute("data-layer") == ""
    assert page.errors == []


def test_thumbnails_are_focusable_enter_opens_and_arrows_move(page, tmp_path, pub_capture):
    root = open_html(page, tmp_path, attnscope.model_view(pub_capture).to_html())
    page.page.focus(".attnscope-mv-cell[data-layer='1'][data-head='1']")
    page.page.keyboard.press("ArrowRight")
    page.page.keyboard.press("ArrowDown")
    page.page.keyboard.press("Enter")
    assert (root.get_attribute("data-layer"), root.get_attribute("data-head")) == ("2", "2")
    page.page.keyboard.press("Escape")
    assert root.get_attribute("data-head") == ""
    focused = page.page.evaluate("[document.activeElement.dataset.layer, document.activeElement.dataset.head]")
    assert focused == ["2", "2"]  # focus goes back to the thumbnail


def test_matrix_style_draws_the_same_weights_and_a_cell_hover_gives_its_weight(page, tmp_path, pub_capture):
    view = attnscope.model_view(pub_capture)
    root = open_html(page, tmp_path, view.to_html())
    page.page.select_option(".attnscope-mv-style", "matrix")
    assert root.get_attribute("data-style") == "matrix"
    assert drawn_per_cell(root) == expected_per_cell(view, "encoder")
    # 17 tokens in an 80 px thumbnail: each weight above the threshold is its own block of pixels.
    n, size = len(pub_capture.tokens), int(page.page.locator(".attnscope-mv-cell").first.bounding_box()["width"])
    spans = np.diff(np.floor(np.arange(n + 1) * size / n)).astype(int)
    drawn_mask = view.payload.decoded("encoder") > THRESHOLD
    lit = lit_per_cell(root)
    assert lit == {(layer, h): int((drawn_mask[layer, h] * np.outer(spans, spans)).sum()) for layer, h in lit}
    page.page.click(".attnscope-mv-cell[data-layer='4'][data-head='0']")
    picture = page.page.locator(".attnscope-mv-detail-canvas")
    box = picture.bounding_box()
    n = len(pub_capture.tokens)
    unit = box["width"] / n
    assert box["height"] == pytest.approx(n * unit)
    query, key = 5, 9
    picture.hover(position={"x": (key + 0.5) * unit, "y": (query + 0.5) * unit})
    cell = page.page.locator(".attnscope-mv-tooltip .attnscope-mv-cell-weight")
    assert (int(cell.get_attribute("data-query")), int(cell.get_attribute("data-position"))) == (query, key)
    assert abs(float(cell.get_attribute("data-weight")) - pub_capture.attentions[4, 0, query, key]) <= 1 / 255
    assert page.page.locator(".attnscope-mv-keys .attnscope-mv-active").get_attribute("data-index") == str(key)
    page.page.select_option(".attnscope-mv-style", "lines")
    assert drawn_per_cell(root) == expected_per_cell(view, "encoder")
    assert root.get_attribute("data-layer") == "4"  # the enlarged cell stays open across styles
    assert page.errors == []


def test_hiding_special_tokens_drops_their_rows_and_columns(page, tmp_path, pub_capture):
    view = attnscope.model_view(pub_capture)
    root = open_html(page, tmp_path, view.to_html())
    everything = number(root, "drawn")
    page.page.check(".attnscope-mv-hide-special")
    words = [i for i, special in enumerate(pub_capture.tokens.special) if not special]
    assert len(words) == len(pub_capture.tokens) - 2
    assert root.get_attribute("data-hide-special") == "true"
    assert drawn_per_cell(root) == expected_per_cell(view, "encoder", words, words)
    assert number(root, "drawn") < everything
    page.page.click(".attnscope-mv-cell[data-layer='0'][data-head='0']")
    shown = page.page.locator(".attnscope-mv-queries .attnscope-mv-token").all_inner_texts()
    assert "[CLS]" not in shown and len(shown) == len(words)
    page.page.uncheck(".attnscope-mv-hide-special")
    assert number(root, "drawn") == everything
    assert page.page.locator(".attnscope-mv-queries .attnscope-mv-token").count() == len(pub_capture.tokens)


def test_words_merge_subwords_in_every_thumbnail_and_in_the_enlarged_view(page, tmp_path, default_model):
    cap = attnscope.capture(default_model, "Unbelievably, the tokenisation splits words.")
    view = attnscope.model_view(cap)
    root = open_html(page, tmp_path, view.to_html())
    tokens_drawn = number(root, "drawn")
    page.page.check(".attnscope-mv-words")
    assert root.get_attribute("data-units") == "words"
    units = attnscope.aggregate(cap, "raw", words=True).query_units  # the words, and each special token
    assert len(units) < len(cap.tokens)
    members = np.zeros((len(units), len(cap.tokens)))
    for u, tokens in enumerate(units):
        members[u, tokens] = 1
    byte = np.rint(view.payload.decoded("encoder") * 255)  # the bytes the page holds, (layers, heads, q, k)
    summed = np.einsum("uq,lhqk,vk->lhuv", members, byte, members)  # a word's rows and columns summed
    merged = np.minimum(255, np.floor(summed / members.sum(axis=1)[:, None] + 0.5))  # rows: mean (Math.round)
    counts = (merged / 255 > THRESHOLD).sum(axis=(2, 3))
    assert drawn_per_cell(root) == {(layer, h): int(counts[layer, h]) for layer in range(6) for h in range(12)}
    page.page.click(".attnscope-mv-cell[data-layer='1'][data-head='4']")
    shown = page.page.locator(".attnscope-mv-queries .attnscope-mv-token").all_inner_texts()
    assert shown == ["[CLS]", "Unbelievably", ",", "the", "tokenisation", "splits", "words", ".", "[SEP]"]
    assert number(root, "detail-drawn") == int(counts[1, 4])
    page.page.uncheck(".attnscope-mv-words")
    assert root.get_attribute("data-units") == "tokens" and number(root, "drawn") == tokens_drawn
    assert page.errors == []


def test_sentence_pair_filter_keeps_only_the_chosen_direction(page, tmp_path, pair_capture):
    view = attnscope.model_view(pair_capture)
    root = open_html(page, tmp_path, view.to_html())
    b, n = pair_capture.tokens.sentence_b_start, len(pair_capture.tokens)
    a_side, b_side = range(0, b), range(b, n)
    assert page.page.locator(".attnscope-mv-filter").is_visible()
    for value, rows, cols in [
        ("AB", a_side, b_side),
        ("BA", b_side, a_side),
        ("AA", a_side, a_side),
        ("BB", b_side, b_side),
        ("all", range(n), range(n)),
    ]:
        page.page.select_option(".attnscope-mv-filter", value)
        assert root.get_attribute("data-filter") == value
        assert drawn_per_cell(root) == expected_per_cell(view, "encoder", rows, cols), value
    page.page.select_option(".attnscope-mv-filter", "BA")
    page.page.click(".attnscope-mv-cell[data-layer='1'][data-head='1']")
    assert page.page.locator(".attnscope-mv-queries .attnscope-mv-token").count() == n - b
    assert page.page.locator(".attnscope-mv-keys .attnscope-mv-token").count() == b


def test_single_sentence_has_no_pair_filter(page, tmp_path, pub_capture):
    open_html(page, tmp_path, attnscope.model_view(pub_capture).to_html())
    assert not page.page.locator(".attnscope-mv-filter").is_visible()
    assert not page.page.locator(".attnscope-mv-stack").is_visible()


def test_threshold_decides_what_is_drawn(page, tmp_path, pub_capture):
    view = attnscope.model_view(pub_capture, threshold=0.2)
    root = open_html(page, tmp_path, view.to_html())
    assert drawn_per_cell(root) == expected_per_cell(view, "encoder", threshold=0.2)
    assert number(root, "drawn") < sum(expected_per_cell(view, "encoder").values())


def test_encoder_decoder_switches_stacks_of_different_depths(page, tmp_path, tiny):
    cap = attnscope.capture(tiny("bart"), "The girl ran to a local pub.", target="She escaped.")
    view = attnscope.model_view(cap)
    root = open_html(page, tmp_path, view.to_html())
    assert page.page.locator(".attnscope-mv-stack").is_visible()
    depths = {}
    for role in ("encoder", "decoder", "cross"):
        page.page.select_option(".attnscope-mv-stack", role)
        att = cap.stacks[role].attentions
        depths[role] = att.shape[0]
        assert root.get_attribute("data-stack") == role
        assert number(root, "cells") == att.shape[0] * att.shape[1]
        assert drawn_per_cell(root) == expected_per_cell(view, role), role
    assert depths["encoder"] != depths["decoder"]  # 2 and 3 layers: the grid follows each stack's depth
    page.page.click(".attnscope-mv-cell[data-layer='2'][data-head='1']")  # a cross-attention layer the encoder lacks
    keys = page.page.locator(".attnscope-mv-keys .attnscope-mv-token").all_inner_texts()
    assert keys == cap.tokens.display
    assert (
        page.page.locator(".attnscope-mv-queries .attnscope-mv-token").all_inner_texts() == cap.decoder_tokens.display
    )
    page.page.select_option(".attnscope-mv-stack", "encoder")
    assert root.get_attribute("data-layer") == "" and not page.page.locator(".attnscope-mv-detail").is_visible()
    assert page.errors == []


@pytest.mark.parametrize("style", ["lines", "matrix"])
def test_causal_model_greys_future_tokens_in_the_enlarged_view(page, tmp_path, tiny, style):
    cap = attnscope.capture(tiny("gpt2"), PUB)
    view = attnscope.model_view(cap, style=style)
    root = open_html(page, tmp_path, view.to_html())
    assert root.get_attribute("data-stack") == "decoder" and root.get_attribute("data-style") == style
    assert drawn_per_cell(root) == expected_per_cell(view, "decoder")
    page.page.click(".attnscope-mv-cell[data-layer='1'][data-head='2']")
    assert page.page.locator(".attnscope-mv-future").count() == 0
    page.page.hover(".attnscope-mv-queries .attnscope-mv-token[data-index='3']")
    future = page.page.locator(".attnscope-mv-keys .attnscope-mv-future")
    assert future.count() == len(cap.tokens) - 4
    assert [int(i) for i in future.evaluate_all("nodes => nodes.map((n) => n.dataset.index)")] == list(
        range(4, len(cap.tokens))
    )
    assert all(p <= 3 for p, _ in tooltip_weights(page))  # a causal query has no weight on later keys
    if style == "matrix":  # the cells a causal query cannot see are shaded grey, the others are not
        unit = page.page.locator(".attnscope-mv-detail-canvas").bounding_box()["width"] / len(cap.tokens)
        future_alpha = page.page.evaluate(ALPHA, [int(6.5 * unit), int(2.5 * unit)])
        assert future_alpha > 0 and cap.attentions[1, 2, 2, 6] == 0
    assert page.errors == []


def test_display_mode_forces_a_theme_and_the_default_follows_the_page(page, tmp_path, pub_capture):
    background = "(n) => getComputedStyle(n).backgroundColor"
    views = [attnscope.model_view(pub_capture, display_mode=mode) for mode in ("dark", "light", None)]
    open_html(page, tmp_path, html_page([v.fragment() for v in views]))
    roots = page.page.locator(".attnscope-mv")
    dark, light, auto = (roots.nth(i) for i in range(3))
    for scheme in ("light", "dark"):
        page.page.emulate_media(color_scheme=scheme)
        assert dark.evaluate(background) == "rgb(13, 17, 23)"
        assert light.evaluate(background) == "rgb(255, 255, 255)"
        assert auto.evaluate(background) == ("rgb(13, 17, 23)" if scheme == "dark" else "rgb(255, 255, 255)")
    assert [r.get_attribute("data-theme") for r in (dark, light, auto)] == ["dark", "light", "auto"]


@pytest.mark.parametrize(("style", "element"), [("lines", "line"), ("matrix", "rect")])
def test_svg_export_holds_one_element_per_drawn_weight(page, tmp_path, pub_capture, style, element):
    view = attnscope.model_view(pub_capture, style=style, include_layers=[0, 5])
    root = open_html(page, tmp_path, view.to_html())
    with page.page.expect_download() as info:
        page.page.click(".attnscope-mv-svg")
    download = info.value
    assert download.suggested_filename == f"attnscope-model-view-encoder-{style}.svg"
    svg = ET.parse(download.path()).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert svg.tag == f"{ns}svg"
    cells = svg.findall(f"{ns}g")
    assert len(cells) == number(root, "cells") == 24
    per_cell = drawn_per_cell(root)
    for group in cells:
        key = (int(group.get("data-layer")), int(group.get("data-head")))
        assert len(group.findall(f"{ns}{element}")) == per_cell[key]
    assert sum(per_cell.values()) == number(root, "drawn")


def test_png_export_is_a_real_image_of_the_grid(page, tmp_path, pub_capture):
    open_html(page, tmp_path, attnscope.model_view(pub_capture, display_mode="dark").to_html())
    with page.page.expect_download() as info:
        page.page.click(".attnscope-mv-png")
    data = open(info.value.path(), "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    canvas = page.page.locator(".attnscope-mv-canvas").bounding_box()
    assert width > canvas["width"] and height > canvas["height"]  # the grid plus its labels
    assert len(data) > 10_000  # thumbnails, not a blank image
    assert page.errors == []


def test_two_model_views_of_different_models_in_one_page_do_not_interfere(page, tmp_path, pub_capture, tiny):
    gpt2 = attnscope.capture(tiny("gpt2"), PUB)
    views = [attnscope.model_view(pub_capture), attnscope.model_view(gpt2, style="matrix")]
    open_html(page, tmp_path, html_page([v.fragment() for v in views]))
    roots = page.page.locator(".attnscope-mv")
    assert roots.count() == 2
    first, second = roots.nth(0), roots.nth(1)
    assert (
        number(first, "cells") == 72 and number(second, "cells") == gpt2.attentions.shape[0] * gpt2.attentions.shape[1]
    )
    assert (first.get_attribute("data-style"), second.get_attribute("data-style")) == ("lines", "matrix")
    second.locator(".attnscope-mv-cell[data-layer='1'][data-head='0']").click()
    second.locator(".attnscope-mv-style").select_option("lines")
    assert second.get_attribute("data-layer") == "1"
    assert first.get_attribute("data-layer") == "" and first.get_attribute("data-style") == "lines"
    assert first.locator(".attnscope-mv-detail").is_hidden()
    assert drawn_per_cell(first) == expected_per_cell(views[0], "encoder")
    assert drawn_per_cell(second) == expected_per_cell(views[1], "decoder")
    assert page.errors == [] and page.blocked == []
