"""M3: the head view at long context in a real browser. A 2,000-token capture on demand draws each query's strongest
keys for a band of query rows that scrolling moves, keys outside the band at its edges; a hovered token's weights
are the model's float32 weights, carried by the page or asked of Python through the widget's message."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

import attnscope
from attnscope.quantise import quantise
from attnscope.views import long_payload
from attnscope.views.html import bundle, static_text
from attnscope.views.long_requests import WEIGHTS_MESSAGE

from ..long_context import top_keys
from .conftest import open_view
from .long_fixtures import long_capture  # noqa: F401 - a fixture
from .stand_in_model import install as install_stand_in_model

BAND, SLOTS, ROW = 30, 6, 20  # head_view_long.js: BAND_ROWS, EDGE_SLOTS, ROW


@pytest.fixture(scope="module")
def found(long_capture):
    return top_keys(long_capture.attentions, 0, 8)


def drawn(found, rows, heads=range(4)) -> int:
    """Lines the view draws for query rows ``rows``: carried keys whose byte is not 0 (threshold 0)."""
    ok = (found.indices >= 0) & (quantise(found.weights) > 0)
    return int(ok[list(heads)][:, list(rows)].sum())


def attr(root, name: str) -> str:
    return root.get_attribute(f"data-{name}")


def scroll_to_row(page, root, row: int) -> None:
    root.locator(".attnscope-hv-scroll").evaluate(f"(node) => {{ node.scrollTop = {row * ROW}; }}")
    root.element_handle().wait_for_element_state("stable")
    page.page.wait_for_function(f"(node) => node.dataset.band.startsWith('{row}-')", arg=root.element_handle())


def tooltip_weights(page) -> dict[int, list[tuple[int, str, str, str]]]:
    """Per head: (position, data-weight, data-exact, the weight's text) of each weight the tooltip lists."""
    out = {}
    for line in page.page.locator(".attnscope-hv-tooltip .attnscope-hv-tip-head").all():
        out[int(line.get_attribute("data-head"))] = [
            (
                int(w.get_attribute("data-position")),
                w.get_attribute("data-weight"),
                w.get_attribute("data-exact"),
                w.inner_text().rsplit(" ", 1)[1],
            )
            for w in line.locator(".attnscope-hv-weight").all()
        ]
    return out


def test_a_long_view_draws_a_band_of_rows_and_scrolling_brings_later_rows(page, tmp_path, long_capture, found):
    root = open_view(page, tmp_path, attnscope.head_view(long_capture, top_k=8).to_html(), ".attnscope-hv")
    queries = long_capture.attentions.shape[2]
    assert attr(root, "band") == f"0-{BAND}" and attr(root, "loading") == "false"
    assert int(attr(root, "lines")) == drawn(found, range(queries))
    assert int(attr(root, "lines-drawn")) == drawn(found, range(BAND))
    assert page.page.locator(".attnscope-hv-queries .attnscope-hv-token").count() == BAND  # only the band's tokens
    assert int(page.page.locator(".attnscope-hv-canvas").get_attribute("height")) <= (2 * SLOTS + BAND) * ROW
    scroll_to_row(page, root, 1500)
    assert attr(root, "band") == f"1500-{1500 + BAND}"
    assert int(attr(root, "lines-drawn")) == drawn(found, range(1500, 1500 + BAND))
    positions = page.page.locator(".attnscope-hv-queries .attnscope-hv-token").evaluate_all(
        "nodes => nodes.map((n) => Number(n.dataset.index))"
    )
    assert positions == list(range(1500, 1500 + BAND))
    band = slice(1500, 1500 + BAND)
    reached = found.indices[:, band][(found.indices[:, band] >= 0) & (quantise(found.weights[:, band]) > 0)]
    earlier = {int(k) for k in reached if k < 1500}
    edge = [int(k) for k in attr(root, "edge-keys").split(",")]
    assert set(edge) <= earlier and len(edge) == min(len(earlier), SLOTS if len(earlier) <= SLOTS else SLOTS - 1)
    assert page.errors == [] and page.blocked == []


def test_head_toggles_and_go_to_change_the_band_lines(page, tmp_path, long_capture, found):
    root = open_view(page, tmp_path, attnscope.head_view(long_capture, top_k=8).to_html(), ".attnscope-hv")
    page.page.fill(".attnscope-hv-goto", "1200")
    page.page.press(".attnscope-hv-goto", "Enter")
    page.page.wait_for_function("document.querySelector('.attnscope-hv').dataset.band.startsWith('1198-')")
    page.page.click(".attnscope-hv-head[data-head='2']")
    assert attr(root, "heads") == "0,1,3"
    assert int(attr(root, "lines-drawn")) == drawn(found, range(1198, 1198 + BAND), heads=[0, 1, 3])
    page.page.dblclick(".attnscope-hv-head[data-head='1']")
    assert attr(root, "heads") == "1"
    assert int(attr(root, "lines")) == drawn(found, range(long_capture.attentions.shape[2]), heads=[1])
    first = int(attr(root, "edge-keys").split(",")[0])
    page.page.click(f".attnscope-hv-keys .attnscope-hv-edge-key[data-index='{first}']")  # scrolls to that key
    page.page.wait_for_function(
        f"document.querySelector('.attnscope-hv').dataset.band.startsWith('{max(0, first - 2)}-')"
    )
    assert page.errors == []


def test_hovering_a_query_shows_its_lines_and_exact_weights_carried_by_the_page(page, tmp_path, long_capture, found):
    root = open_view(page, tmp_path, attnscope.head_view(long_capture, top_k=8).to_html(), ".attnscope-hv")
    scroll_to_row(page, root, 900)
    query = 911
    page.page.hover(f".attnscope-hv-queries .attnscope-hv-token[data-index='{query}']")
    assert attr(root, "token") == f"query:{query}"
    assert int(attr(root, "lines-drawn")) == drawn(found, [query])
    shown = tooltip_weights(page)
    assert sorted(shown) == [0, 1, 2, 3]
    for head, items in shown.items():
        exact = long_capture.attentions.rows(0, head, query, query + 1)[0]
        assert items and all(flag == "true" for _, _, flag, _ in items)
        keys, codes = found.indices[head, query], quantise(found.weights[head, query])
        for position, weight, _, text in items:
            assert float(weight) == float(found.weights[head, query][list(keys).index(position)])  # the float32 itself
            assert abs(float(weight) - float(exact[position])) <= 1e-6
            assert float(text) == pytest.approx(float(weight), rel=1e-6)
        carried = [int(k) for k, c in zip(keys, codes) if k >= 0 and c > 0]
        assert sorted(p for p, *_ in items) == sorted(carried)
    assert "exact float32 weights, carried in this page" in page.page.inner_text(".attnscope-hv-tooltip")
    assert page.errors == []


def test_a_page_past_its_budget_says_its_weights_are_bytes(page, tmp_path, long_capture, monkeypatch):
    monkeypatch.setattr(long_payload, "HTML_EXACT_BUDGET", 1000)
    root = open_view(page, tmp_path, attnscope.head_view(long_capture, top_k=8).to_html(), ".attnscope-hv")
    page.page.hover(".attnscope-hv-queries .attnscope-hv-token[data-index='20']")
    assert attr(root, "token") == "query:20"
    items = tooltip_weights(page)[0]
    assert items and all(flag == "false" and text.startswith("≈") for _, _, flag, text in items)
    assert "within ±0.00196 of the model's" in page.page.inner_text(".attnscope-hv-tooltip")
    assert page.errors == []


MOUNT = """
async ([source, header, layers]) => {
  const module = await import("data:text/javascript;base64," + source);
  const view = (b64) => { const s = atob(b64); const u = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i); return new DataView(u.buffer); };
  const values = { header, layers: Object.fromEntries(Object.entries(layers).map(([role, list]) =>
    [role, list.map((b64) => b64 === null ? null : view(b64))])) };
  window.model = window.standInModel(values);
  window.deliver = (msg, buffers) => window.fire("msg:custom", msg, buffers.map(view));
  window.cleanup = module.default.render({ model: window.model, el: document.getElementById("host") });
}
"""


def mount_widget(page, view) -> list:
    """Mount ``view``'s module on a stand-in model holding what the widget holds; returns the list its Python side
    sends into (replies are delivered by `answer`)."""
    sent = []
    view.send = lambda content, buffers=None: sent.append((content, list(buffers or [])))
    layers = {
        role: [None if b is None else base64.b64encode(b).decode() for b in items]
        for role, items in view.layers.items()
    }
    page.page.set_content("<!DOCTYPE html><div id='host'></div>")
    page.page.add_style_tag(content=static_text("head_view.css"))  # the widget's _css, as anywidget adds it
    install_stand_in_model(page.page)
    page.page.evaluate(MOUNT, [base64.b64encode(bundle("head_view").encode()).decode(), view.header, layers])
    return sent


def answer(page, view, sent, kind: str) -> None:
    """Hand the module's requests of type ``kind`` to Python, and deliver what Python sends back."""
    for request in [m for m in page.page.evaluate("window.sent") if m["type"] == kind]:
        view._handle_custom_msg(request, [])
    deliver(page, sent, kind)


def deliver(page, sent, kind: str) -> None:
    for content, buffers in [m for m in sent if m[0]["type"] == kind]:
        encoded = [base64.b64encode(b).decode() for b in buffers]
        page.page.evaluate("([m, b]) => window.deliver(m, b)", [json.loads(json.dumps(content)), encoded])
    sent[:] = [m for m in sent if m[0]["type"] != kind]


def test_a_notebook_view_asks_python_for_the_exact_weights_it_shows(page, long_capture):
    view = attnscope.head_view(long_capture, top_k=8, layer=1)
    sent = mount_widget(page, view)
    root = page.page.locator("#host .attnscope-hv")
    page.page.hover("#host .attnscope-hv-keys .attnscope-hv-token[data-index='3']")  # a key: weights from queries
    assert attr(root, "token") == "key:3"
    assert all(flag == "false" for items in tooltip_weights(page).values() for *_, flag, _ in items)
    assert "asking Python" in page.page.inner_text(".attnscope-hv-tooltip")
    requests = [m for m in page.page.evaluate("window.sent") if m["type"] == WEIGHTS_MESSAGE]
    assert requests and requests[-1]["layer"] == 1 and all(len(c) == 3 for c in requests[-1]["cells"])
    replies = []
    for request in requests:  # what the kernel does with each (the pointer may have crossed other tokens)
        view._handle_custom_msg(request, [])
        replies.append(sent[-1][0])
    deliver(page, sent, WEIGHTS_MESSAGE)
    answered = {tuple(c): w for r in replies for c, w in zip(r["cells"], r["weights"])}
    shown = tooltip_weights(page)
    for head, items in shown.items():
        for position, weight, flag, text in items:
            assert flag == "true" and float(weight) == answered[(head, position, 3)]  # Python's float32, as sent
            assert float(text) == pytest.approx(float(weight), rel=1e-6)
            row = long_capture.attentions.rows(1, head, position, position + 1)[0]
            assert abs(float(weight) - float(row[3])) <= 1e-6
    assert "exact float32 weights, from Python" in page.page.inner_text(".attnscope-hv-tooltip")
    np.testing.assert_array_equal(sorted(shown), range(4))
    page.page.evaluate("window.pySet('merge_subwords', true)")  # words merge every weight: they stay off here
    assert attr(root, "units") == "tokens" and page.page.locator("#host .attnscope-hv-merge").is_disabled()
    assert page.errors == []


def test_a_notebook_view_draws_the_rows_shown_before_the_whole_layer_arrives(page, long_capture):
    view = attnscope.head_view(long_capture, top_k=8)
    sent = mount_widget(page, view)
    root = page.page.locator("#host .attnscope-hv")
    page.page.select_option("#host .attnscope-hv-layer", "1")
    assert attr(root, "loading") == "true"
    answer(page, view, sent, "attnscope-rows")  # the band's rows, computed at once; the layer is not delivered yet
    found = top_keys(long_capture.attentions, 1, 8)
    assert attr(root, "rows") == "partial" and attr(root, "loading") == "false"
    assert int(attr(root, "lines-drawn")) == drawn(found, range(BAND))
    assert "the whole layer on its way" in page.page.inner_text("#host .attnscope-hv-status")
    scroll_to_row(page, root, 1500)
    answer(page, view, sent, "attnscope-rows")
    assert int(attr(root, "lines-drawn")) == drawn(found, range(1500, 1500 + BAND))
    answer(page, view, sent, "attnscope-layers")  # now the layer: answered once the worker has computed it
    view.payload.settle()
    deliver(page, sent, "attnscope-layers")
    assert attr(root, "rows") == "all" and int(attr(root, "lines")) == drawn(found, range(found.indices.shape[1]))
    assert int(attr(root, "lines-drawn")) == drawn(found, range(1500, 1500 + BAND))
    assert page.page.inner_text("#host .attnscope-hv-status") == ""
    assert page.errors == []
