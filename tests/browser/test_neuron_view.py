"""V3 neuron view in a real browser, offline: the softmax it computes from q and k is the model's attention.

Every architecture the capture engine supports, through the exported HTML and the UI (selects, clicks,
keys): the displayed softmax row equals the captured attention row, the scaled dot products equal
`neuron_terms`, masked keys are the ones the mask hides, and T5's bias, Gemma 2's softcap and
GPT-OSS's sink are shown.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

import attnscope
from attnscope.analysis.neuron import neuron_terms
from attnscope.views import page as html_page
from attnscope.views.neuron_data import CAPTURE_FIELDS

from ..conftest import PUB
from ..tiny_models import ARCHITECTURES
from .conftest import open_view

TEXT = "The girl ran to a local pub."
TARGET = "She went home."
READ = """(root) => Object.fromEntries(["dot", "scaled", "capped", "bias", "softmax", "sink", "sink-logit"].map(
  (kind) => [kind, [...root.querySelectorAll(`[data-kind='${kind}']`)].map((n) =>
    [Number(n.dataset.key ?? -1), Number(n.dataset.value)])]))"""


def open_html(page, tmp_path, html: str, name: str = "view.html"):
    return open_view(page, tmp_path, html, ".attnscope-nv", name)


def shown(root) -> dict[str, np.ndarray]:
    """Every drawn number by kind, as (key, value) rows ordered by key."""
    values = root.evaluate(READ)
    return {kind: np.array(sorted(rows)).reshape(-1, 2) for kind, rows in values.items()}


def masked_keys(root) -> list[int]:
    return [int(k) for k in root.locator(".nv-row[data-masked=true]").evaluate_all("ns => ns.map(n => n.dataset.key)")]


def select(root, page, stack: str | None, layer: int, head: int, query: int) -> None:
    """Choose what is shown through the UI: selects for stack, layer and head, a click for the query."""
    if stack is not None:
        page.page.select_option(f"#{root_id(root)} .attnscope-nv-stack", stack)
    page.page.select_option(f"#{root_id(root)} .attnscope-nv-layer", str(layer))
    page.page.select_option(f"#{root_id(root)} .attnscope-nv-head", str(head))
    root.locator(f".nv-query[data-index='{query}']").click()
    assert (root.get_attribute("data-layer"), root.get_attribute("data-head"), root.get_attribute("data-query")) == (
        str(layer),
        str(head),
        str(query),
    )


def root_id(root) -> str:
    """A root's host element id, to scope selectors when several views share a page."""
    return root.evaluate("(r) => r.parentElement.id")


def check_row(root, cap, role: str, layer: int, head: int, query: int) -> dict[str, np.ndarray]:
    """Assert the drawn row equals the model's attention and the terms of `neuron_terms`."""
    stack = cap.stacks[role]
    terms = neuron_terms(stack, layer, head, query)
    values = shown(root)
    np.testing.assert_allclose(values["softmax"][:, 1], stack.attentions[layer, head, query], atol=1e-5, rtol=0)
    np.testing.assert_allclose(values["dot"][:, 1], terms.dots, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(values["scaled"][:, 1], terms.dots * terms.scaling, rtol=1e-9, atol=1e-12)
    capped = values["capped"] if terms.softcap else values["scaled"]
    np.testing.assert_allclose(capped[:, 1], terms.scaled, rtol=1e-9, atol=1e-12)
    assert masked_keys(root) == [int(k) for k in np.flatnonzero(~stack.allowed[layer, query])]
    return values


@pytest.mark.parametrize("arch", ["default"] + sorted(ARCHITECTURES))
def test_displayed_softmax_is_the_models_attention_for_every_architecture(page, tmp_path, arch, default_model, tiny):
    handle = default_model if arch == "default" else tiny(arch)
    target = TARGET if handle.kind == "encoder-decoder" else None
    cap = attnscope.capture(handle, PUB if arch == "default" else TEXT, target=target, fields=CAPTURE_FIELDS)
    root = open_html(page, tmp_path, attnscope.neuron_view(cap).to_html())
    roles = [r for r in ("encoder", "decoder", "cross") if r in cap.stacks]
    for role in roles:
        stack = cap.stacks[role]
        layer, head, query = stack.layers - 1, stack.heads - 1, stack.queries.shape[2] // 2
        select(root, page, role if len(roles) > 1 else None, layer, head, query)
        assert root.get_attribute("data-stack") == role
        values = check_row(root, cap, role, layer, head, query)
        terms = neuron_terms(stack, layer, head, query)
        assert (len(values["bias"]) > 0) == (terms.bias is not None) == (arch == "t5")
        if terms.bias is not None:
            np.testing.assert_allclose(values["bias"][:, 1], terms.bias, rtol=1e-7)
        assert (len(values["capped"]) > 0) == (arch == "gemma2")
        assert (len(values["sink"]) > 0) == (arch == "gpt_oss")
        if arch == "gpt_oss":
            share = 1 - stack.attentions[layer, head, query].sum()
            assert values["sink"][0, 1] == pytest.approx(share, abs=1e-5) and share > 1e-3
            assert values["sink-logit"][0, 1] == pytest.approx(float(stack.sinks[layer, head]), rel=1e-7)
    if arch == "gemma2":
        assert "softcap 0.5" in root.locator("svg").text_content()
    if arch in ("mistral", "gemma2", "gpt_oss", "gpt2", "llama"):  # causal (and sliding-window) keys are greyed
        assert len(masked_keys(root)) > 0
    assert page.errors == [] and page.blocked == []


def test_scaled_dot_products_are_labelled_with_their_scale(page, tmp_path, default_model):
    cap = attnscope.capture(default_model, PUB, fields=CAPTURE_FIELDS)
    root = open_html(page, tmp_path, attnscope.neuron_view(cap, layer=2, head=5, query=9).to_html())
    text = root.locator("svg").text_content()
    assert "scaled q·k" in text and f"× {32**-0.5:.6g}" in text
    assert "q × k (elementwise)" in text
    check_row(root, cap, "encoder", 2, 5, 9)
    terms = neuron_terms(cap.main, 2, 5, 9)
    values = lambda selector: root.locator(selector).evaluate_all("ns => ns.map(n => Number(n.dataset.value))")  # noqa: E731
    np.testing.assert_array_equal(values(".nv-row[data-key='4'] [data-kind='prod'] rect"), terms.products[4])
    np.testing.assert_array_equal(values(".nv-row[data-key='4'] [data-kind='k'] rect"), terms.keys[4])
    np.testing.assert_array_equal(values("[data-kind='q'] rect"), terms.query_vector)
    assert root.locator("[data-kind='k'] rect").count() == 17 * 32


def test_keyboard_moves_the_query_and_hover_shows_exact_values(page, tmp_path, default_model):
    cap = attnscope.capture(default_model, PUB, fields=CAPTURE_FIELDS)
    root = open_html(page, tmp_path, attnscope.neuron_view(cap, query=3).to_html())
    root.locator(".nv-query[data-index='3']").focus()
    page.page.keyboard.press("ArrowDown")
    assert root.get_attribute("data-query") == "4"
    page.page.keyboard.press("ArrowDown")  # focus followed the selection
    assert root.get_attribute("data-query") == "5"
    page.page.keyboard.press("End")
    assert root.get_attribute("data-query") == "16"
    page.page.keyboard.press("Home")
    assert root.get_attribute("data-query") == "0"
    check_row(root, cap, "encoder", 0, 0, 0)
    cell = root.locator("[data-kind='softmax'][data-key='2']")
    cell.hover()
    tip = root.locator(".attnscope-nv-tooltip")
    assert tip.is_visible() and cell.get_attribute("data-value") in tip.inner_text()
    assert "key 2" in tip.inner_text() and "softmax" in tip.inner_text()
    cell = root.locator(".nv-row[data-key='3'] [data-kind='prod'] rect").nth(7)
    cell.hover()
    assert tip.inner_text() == f"q×k · key 3 “{cap.tokens.display[3]}” · dim 7 = {cell.get_attribute('data-value')}"


def test_two_views_of_different_models_in_one_page_do_not_interfere(page, tmp_path, default_model, tiny):
    a = attnscope.capture(default_model, PUB, fields=CAPTURE_FIELDS)
    b = attnscope.capture(tiny("gpt2"), TEXT, fields=CAPTURE_FIELDS)
    html = html_page([attnscope.neuron_view(a).fragment(), attnscope.neuron_view(b, display_mode="dark").fragment()])
    path = tmp_path / "two.html"
    path.write_text(html, encoding="utf-8")
    page.page.goto(path.as_uri())
    page.page.wait_for_function("document.querySelectorAll('.attnscope-nv[data-ready=true]').length === 2")
    first, second = page.page.locator(".attnscope-nv").nth(0), page.page.locator(".attnscope-nv").nth(1)
    before = shown(first)
    select(second, page, None, 1, 2, 3)
    check_row(second, b, "decoder", 1, 2, 3)
    assert (first.get_attribute("data-layer"), first.get_attribute("data-query")) == ("0", "1")
    np.testing.assert_array_equal(shown(first)["softmax"], before["softmax"])
    check_row(first, a, "encoder", 0, 0, 1)
    background = lambda root: root.evaluate("(r) => getComputedStyle(r).backgroundColor")  # noqa: E731
    assert background(first) != background(second)  # the dark one stays dark, the other follows the page
    assert page.errors == [] and page.blocked == []


def test_display_modes_switch_the_theme(page, tmp_path, default_model):
    cap = attnscope.capture(default_model, "The girl ran.", fields=CAPTURE_FIELDS)
    page.page.emulate_media(color_scheme="dark")
    auto = open_html(page, tmp_path, attnscope.neuron_view(cap).to_html(), "auto.html")
    dark_bg = auto.evaluate("(r) => getComputedStyle(r).backgroundColor")
    light = open_html(page, tmp_path, attnscope.neuron_view(cap, display_mode="light").to_html(), "light.html")
    assert light.evaluate("(r) => getComputedStyle(r).backgroundColor") == "rgb(255, 255, 255)" != dark_bg
    assert "attnscope-nv-light" in light.get_attribute("class")


def test_png_and_svg_exports_are_real_files_of_what_is_shown(page, tmp_path, tiny):
    cap = attnscope.capture(tiny("t5"), TEXT, target=TARGET, fields=CAPTURE_FIELDS)
    root = open_html(page, tmp_path, attnscope.neuron_view(cap, display_mode="dark").to_html())
    select(root, page, "cross", 2, 1, 1)
    with page.page.expect_download() as info:
        root.locator(".attnscope-nv-png").click()
    png = info.value
    assert png.suggested_filename == "attnscope-neuron-cross-layer2-head1-query1.png"
    data = open(png.path(), "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    with page.page.expect_download() as info:
        root.locator(".attnscope-nv-svg-export").click()
    svg = info.value
    text = open(svg.path(), encoding="utf-8").read()
    tree = ET.fromstring(text)
    assert tree.tag == "{http://www.w3.org/2000/svg}svg"
    style = tree.find("{http://www.w3.org/2000/svg}style").text
    assert "var(" not in style and "#0d1117" in style  # the dark theme's colours, written in
    softmax = [float(n.get("data-value")) for n in tree.iter() if n.get("data-kind") == "softmax"]
    np.testing.assert_allclose(softmax, cap.stacks["cross"].attentions[2, 1, 1], atol=1e-5)
    assert page.errors == [] and page.blocked == []


def test_a_sentence_pair_marks_where_sentence_b_starts(page, tmp_path, default_model):
    cap = attnscope.capture(default_model, "The girl ran.", "She left.", fields=CAPTURE_FIELDS)
    root = open_html(page, tmp_path, attnscope.neuron_view(cap).to_html())
    lines = root.locator("line.nv-pair")
    assert lines.count() == 2
    row = root.locator(f".nv-row[data-key='{cap.tokens.sentence_b_start}'] [data-kind='k'] rect").first
    assert float(lines.first.get_attribute("y1")) == float(row.get_attribute("y")) - 0.5
    check_row(root, cap, "encoder", 0, 0, 1)
