"""B1 in a real browser: the head and model views' aggregation control (mean of heads, rollout, value
norms) draws what `attnscope.aggregate` computes, checked against values computed here in Python."""

from __future__ import annotations

import numpy as np
import pytest

import attnscope
from attnscope.analysis.aggregate import normalise_rows

from ..conftest import PUB
from .conftest import open_view

THRESHOLD = 0.01


def decoded(weights: np.ndarray) -> np.ndarray:
    """Weights as the browser sees them after one-byte quantisation."""
    return np.rint(np.clip(np.asarray(weights, dtype=np.float64), 0, 1) * 255) / 255


def mean_as_drawn(raw: np.ndarray, heads) -> np.ndarray:
    """The head view's mean of heads (attention_data.js's meanWeights): the heads' bytes summed, times
    1 / (255 · heads) in float32, unrounded."""
    quantised = np.rint(np.clip(raw.astype(np.float64), 0, 1) * 255).astype(np.float32)
    return (quantised[list(heads)].sum(axis=0) * np.float32(1 / (255 * len(heads)))).astype(np.float64)


def mean_as_painted(raw: np.ndarray, heads) -> np.ndarray:
    """The model view's mean of heads (meanLayer, painted as bytes): the mean of the heads' bytes, rounded half
    up to a byte (Math.round)."""
    quantised = np.rint(np.clip(raw.astype(np.float64), 0, 1) * 255)
    return np.floor(quantised[list(heads)].mean(axis=0) + 0.5) / 255


def count(weights: np.ndarray) -> int:
    return int((weights > THRESHOLD).sum())


def open_html(page, tmp_path, html: str, selector: str):
    return open_view(page, tmp_path, html, selector)


def drawn(root) -> int:
    return int(root.get_attribute("data-lines-drawn"))


def tooltip(page) -> list[tuple[int, float]]:
    items = page.page.locator(".attnscope-hv-tooltip .attnscope-hv-weight").all()
    return [(int(i.get_attribute("data-position")), float(i.get_attribute("data-weight"))) for i in items]


@pytest.fixture(scope="module")
def full_capture(default_model):
    return attnscope.capture(default_model, PUB, fields="all")


def test_head_view_switches_between_raw_rollout_and_value_norms(page, tmp_path, full_capture):
    root = open_html(page, tmp_path, attnscope.head_view(full_capture, layer=3).to_html(), ".attnscope-hv")
    options = page.page.locator(".attnscope-hv-aggregation option").evaluate_all("os => os.map((o) => o.value)")
    assert options == ["raw", "mean", "rollout", "value_norm", "value_norm_sum"]
    raw = full_capture.attentions[3]
    assert root.get_attribute("data-aggregation") == "raw" and drawn(root) == count(decoded(raw))

    rollout = attnscope.aggregate(full_capture, "rollout").weights
    page.page.select_option(".attnscope-hv-aggregation", "rollout")
    assert root.get_attribute("data-aggregation") == "rollout"
    assert drawn(root) == count(decoded(rollout[3])) != count(decoded(raw))
    assert page.page.locator(".attnscope-hv-head[disabled]").count() == 12  # rollout combines every head
    page.page.select_option(".attnscope-hv-layer", "0")
    assert drawn(root) == count(decoded(rollout[0]))

    per_head = normalise_rows(attnscope.aggregate(full_capture, "value_norm").weights)
    page.page.select_option(".attnscope-hv-aggregation", "value_norm")
    assert drawn(root) == count(decoded(per_head[0]))
    page.page.dblclick(".attnscope-hv-head[data-head='5']")
    assert drawn(root) == count(decoded(per_head[0, 5]))
    assert "each row scaled to sum to 1" in page.page.inner_text(".attnscope-hv-note")

    summed = normalise_rows(attnscope.aggregate(full_capture, "value_norm_sum").weights)
    page.page.select_option(".attnscope-hv-aggregation", "value_norm_sum")
    assert drawn(root) == count(decoded(summed[0]))
    page.page.select_option(".attnscope-hv-aggregation", "raw")
    assert drawn(root) == count(decoded(full_capture.attentions[0, 5]))  # back to the solo head
    assert page.errors == [] and page.blocked == []


def test_mean_of_the_shown_heads_follows_the_head_toggles(page, tmp_path, full_capture):
    root = open_html(
        page,
        tmp_path,
        attnscope.head_view(full_capture, layer=2, heads=[0, 3, 7], aggregation="mean").to_html(),
        ".attnscope-hv",
    )
    raw = full_capture.attentions[2]
    assert root.get_attribute("data-aggregation") == "mean"
    assert drawn(root) == count(mean_as_drawn(raw, [0, 3, 7]))
    page.page.click(".attnscope-hv-head[data-head='7']")  # hide head 7: the mean of 0 and 3
    assert drawn(root) == count(mean_as_drawn(raw, [0, 3]))
    girl = full_capture.tokens.display.index("girl")
    page.page.hover(f".attnscope-hv-queries .attnscope-hv-token[data-index='{girl}']")
    assert page.page.locator(".attnscope-hv-tip-head").count() == 1  # one combined line set, not one per head
    assert "mean of heads 0, 3" in page.page.inner_text(".attnscope-hv-tooltip")
    mean = attnscope.aggregate(full_capture, "mean", heads=[0, 3], layers=[2]).weights[0]
    shown = tooltip(page)
    assert shown and all(abs(value - mean[girl, key]) <= 1 / 255 for key, value in shown)
    assert shown[0][0] == int(np.argmax(mean[girl]))
    assert page.errors == []


def test_value_norm_tooltips_are_the_row_scaled_norms(page, tmp_path, full_capture):
    root = open_html(
        page,
        tmp_path,
        attnscope.head_view(full_capture, layer=4, heads=[2], aggregation="value_norm").to_html(),
        ".attnscope-hv",
    )
    scaled = normalise_rows(attnscope.aggregate(full_capture, "value_norm", layers=[4], heads=[2]).weights[0, 0])
    assert drawn(root) == count(decoded(scaled))
    page.page.hover(".attnscope-hv-queries .attnscope-hv-token[data-index='5']")
    weights = tooltip(page)
    assert weights and all(abs(value - scaled[5, key]) <= 1 / 255 for key, value in weights)
    assert page.page.locator(".attnscope-hv-tip-head").get_attribute("data-head") == "2"


def test_combined_lines_are_painted_in_the_text_colour(page, tmp_path, full_capture):
    page.page.emulate_media(color_scheme="light")
    root = open_html(
        page, tmp_path, attnscope.head_view(full_capture, aggregation="rollout", layer=1).to_html(), ".attnscope-hv"
    )
    rollout = attnscope.aggregate(full_capture, "rollout", layers=[1]).weights[0]
    off_diagonal = rollout - np.diag(np.diag(rollout))  # a line that crosses the canvas, not a flat one
    query, key = np.unravel_index(int(np.argmax(off_diagonal)), rollout.shape)
    pixel = page.page.evaluate(
        """([query, key]) => {
          const root = document.querySelector('.attnscope-hv');
          const canvas = root.querySelector('canvas');
          const row = parseFloat(getComputedStyle(root).getPropertyValue('--attnscope-row'));
          const ratio = canvas.width / parseFloat(canvas.style.width);
          const y = Math.floor(((query + key) / 2 + 0.5) * row * ratio);
          return Array.from(canvas.getContext('2d').getImageData(Math.floor(canvas.width / 2), y, 1, 1).data);
        }""",
        [int(query), int(key)],
    )
    assert pixel[:3] == pytest.approx([0x1F, 0x23, 0x28], abs=12)  # --attnscope-fg in the light theme
    assert pixel[3] >= 0.8 * 255 * min(1.0, float(rollout[query, key]))
    assert root.get_attribute("data-aggregation") == "rollout"


def test_encoder_decoder_cross_stack_offers_no_rollout(page, tmp_path, tiny):
    cap = attnscope.capture(tiny("bart"), "The girl ran to a local pub.", target="She escaped.", fields="all")
    root = open_html(page, tmp_path, attnscope.head_view(cap, aggregation="rollout").to_html(), ".attnscope-hv")
    assert drawn(root) == count(decoded(attnscope.aggregate(cap, "rollout").weights[0]))
    page.page.select_option(".attnscope-hv-stack", "cross")
    values = page.page.locator(".attnscope-hv-aggregation option").evaluate_all("os => os.map((o) => o.value)")
    assert values == ["raw", "mean", "value_norm", "value_norm_sum"]
    assert root.get_attribute("data-aggregation") == "raw"
    page.page.select_option(".attnscope-hv-aggregation", "value_norm_sum")
    cross = normalise_rows(attnscope.aggregate(cap, "value_norm_sum", stack="cross").weights)
    assert drawn(root) == count(decoded(cross[0]))
    assert page.errors == []


# --- model view ---------------------------------------------------------------------------------------

CELLS = """root => [...root.querySelectorAll('.attnscope-mv-cell')].map(
  (c) => [c.dataset.layer, c.dataset.head, Number(c.dataset.drawn)])"""


def cells(root) -> list[tuple[str, str, int]]:
    return [tuple(c) for c in root.evaluate(CELLS)]


def test_model_view_shows_one_thumbnail_per_layer_for_combinations(page, tmp_path, full_capture):
    root = open_html(page, tmp_path, attnscope.model_view(full_capture).to_html(), ".attnscope-mv")
    layers, heads = full_capture.attentions.shape[:2]
    assert len(cells(root)) == layers * heads
    rollout = attnscope.aggregate(full_capture, "rollout").weights
    page.page.select_option(".attnscope-mv-aggregation", "rollout")
    assert root.get_attribute("data-aggregation") == "rollout"
    assert cells(root) == [(str(layer), "", count(decoded(rollout[layer]))) for layer in range(layers)]
    assert page.page.locator(".attnscope-mv-head-label").all_inner_texts() == ["Rollout"]

    page.page.select_option(".attnscope-mv-aggregation", "mean")
    raw = full_capture.attentions
    assert cells(root) == [
        (str(layer), "", count(mean_as_painted(raw[layer], range(heads)))) for layer in range(layers)
    ]

    per_head = normalise_rows(attnscope.aggregate(full_capture, "value_norm").weights)
    page.page.select_option(".attnscope-mv-aggregation", "value_norm")
    assert cells(root) == [
        (str(layer), str(head), count(decoded(per_head[layer, head])))
        for layer in range(layers)
        for head in range(heads)
    ]
    assert page.errors == [] and page.blocked == []


def test_model_view_enlarges_a_combined_thumbnail(page, tmp_path, full_capture):
    view = attnscope.model_view(full_capture, aggregation="value_norm_sum")
    root = open_html(page, tmp_path, view.to_html(), ".attnscope-mv")
    summed = normalise_rows(attnscope.aggregate(full_capture, "value_norm_sum").weights)
    assert [n for _, _, n in cells(root)] == [count(decoded(summed[layer])) for layer in range(6)]
    page.page.click(".attnscope-mv-cell[data-layer='3']")
    assert root.get_attribute("data-layer") == "3" and root.get_attribute("data-head") == ""
    assert int(root.get_attribute("data-detail-drawn")) == count(decoded(summed[3]))
    assert "‖Σαf(x)‖" in page.page.inner_text(".attnscope-mv-detail-title")
    page.page.hover(".attnscope-mv-queries .attnscope-mv-token[data-index='4']")
    items = page.page.locator(".attnscope-mv-tooltip .attnscope-mv-weight").all()
    weights = [(int(i.get_attribute("data-position")), float(i.get_attribute("data-weight"))) for i in items]
    assert weights and all(abs(value - summed[3, 4, key]) <= 1 / 255 for key, value in weights)
    assert page.errors == []


def test_model_view_aggregations_use_the_included_heads(page, tmp_path, full_capture):
    view = attnscope.model_view(full_capture, include_layers=[1, 4], include_heads=[0, 5], aggregation="rollout")
    root = open_html(page, tmp_path, view.to_html(), ".attnscope-mv")
    rollout = attnscope.aggregate(full_capture, "rollout", heads=[0, 5]).weights  # every layer, the kept heads
    assert cells(root) == [("1", "", count(decoded(rollout[1]))), ("4", "", count(decoded(rollout[4])))]
    assert page.errors == []


# --- the widget contract, with the head view module on a stand-in model -------------------------------


def test_the_choice_is_written_back_and_missing_aggregated_layers_are_asked_for(page):
    from attnscope.analysis.aggregate import combine_heads, rollout

    from .test_head_view_module import mount, weights

    root, payload = mount(page, lazy=True)  # only layer 0 of each data key crossed at first
    assert payload.data_keys() == ["encoder", "encoder/rollout"]  # BertViz-style arrays: rollout, no value norms
    expected = rollout(combine_heads(weights()[:, 0]))  # (layers, batch, heads, q, k) -> every head's mean, rolled out
    page.page.select_option("#host .attnscope-hv-aggregation", "rollout")
    assert dict(page.page.evaluate("window.sets"))["aggregation"] == "rollout"
    assert drawn(root) == count(decoded(expected[0]))
    page.page.select_option("#host .attnscope-hv-layer", "1")
    assert root.get_attribute("data-loading") == "true"
    assert page.page.evaluate("window.sent") == [
        {"type": "attnscope-layers", "role": "encoder/rollout", "indices": [1]}
    ]
    layer = payload.layers_base64()["encoder/rollout"][1]
    page.page.evaluate(
        "([b]) => window.deliver({type: 'attnscope-layers', role: 'encoder/rollout', indices: [1]}, [b])", [layer]
    )
    assert root.get_attribute("data-loading") == "false"
    assert drawn(root) == count(decoded(expected[1]))
    page.page.select_option("#host .attnscope-hv-layer", "0")
    page.page.evaluate("window.pySet('aggregation', 'raw')")  # a change made in Python
    assert root.get_attribute("data-aggregation") == "raw"
    assert drawn(root) == count(decoded(weights()[0, 0]))
    page.page.evaluate("window.pySet('aggregation', 'value_norm')")  # not offered here: ignored
    assert root.get_attribute("data-aggregation") == "raw"
    assert page.errors == []
