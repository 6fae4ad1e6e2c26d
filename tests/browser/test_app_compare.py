"""The app's "compare with" control in Chromium against a real `attnscope serve` on loopback (the default model and
the zeroed copy, served from its folder): the diff view drawn beside the attention view, A − B cells coloured as
Python's palette colours the library's difference, a click showing the matched head, "none" back to one model."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlencode, urlsplit

import numpy as np
import pytest

import attnscope
from attnscope.quantise import quantise
from attnscope.views.diff_payload import diff_payload, diverging_rgb

from ..conftest import PUB
from ..serve_process import serving
from ..zeroed_model import ZEROED
from .test_app import AppPage, open_app
from .test_diff_view import ROOT, pixels

ZEROED_NAME = "zeroed-2-5"


@pytest.fixture(scope="module")
def server(zeroed_path, tmp_path_factory):
    """`attnscope serve` with the default model and the zeroed copy's folder (served as "zeroed-2-5"), no corpus."""
    cwd = tmp_path_factory.mktemp("serve-compare")
    with serving(["--model", "default", "--model", str(zeroed_path), "--no-corpus"], cwd) as served:
        yield served.base


@pytest.fixture
def app(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    guarded = AppPage(context.new_page(), server)
    yield guarded
    assert guarded.blocked == [], "the app reached beyond its server"
    context.close()


@pytest.fixture(scope="module")
def expected(default_model, zeroed_path):
    """The library's comparison of the same text, the copy loaded from the same folder."""
    comparison = attnscope.compare_models(default_model, attnscope.load(str(zeroed_path)), PUB)
    comparison.model_a, comparison.model_b = default_model.label, ZEROED_NAME
    return comparison


def compare_with(app: AppPage, name: str) -> None:
    app.page.select_option("#compare", name)
    app.page.wait_for_selector("#compare-view[data-state=ready] .attnscope-dv[data-ready=true]")


def query(app: AppPage) -> dict[str, list[str]]:
    return parse_qs(urlsplit(app.page.url).query)


def test_comparing_with_a_served_model_draws_the_diff_and_none_returns_to_one_model(app, expected):
    open_app(app, "?" + urlencode({"text": PUB}))
    asked: list[str] = []
    app.page.on("request", lambda r: asked.append(r.post_data or "") if r.url.endswith("/api/compare") else None)
    assert app.page.locator("#compare option").all_inner_texts() == ["none", expected.model_a, ZEROED_NAME]
    compare_with(app, ZEROED_NAME)
    assert query(app)["compare"] == [ZEROED_NAME]
    assert app.page.locator("#attention").is_hidden() and app.page.locator("#attention-toolbar").is_hidden()
    root = app.page.locator(f"#compare-view {ROOT}")
    assert root.get_attribute("data-level") == "token"
    limit = diff_payload(expected).header["limit_code"]
    assert int(root.get_attribute("data-limit-code")) == limit
    layer, head = ZEROED
    cell = int(app.page.get_attribute(".attnscope-dv-heads", "data-pitch"))  # thumbnail + gap, px
    app.page.click(".attnscope-dv-heads", position={"x": head * cell + 5, "y": layer * cell + 5})
    match = expected.matched(layer, head)
    assert match is not None
    assert (root.get_attribute("data-layer"), root.get_attribute("data-head")) == (str(layer), str(head))
    assert root.get_attribute("data-partner") == f"{match.layer_b}-{match.head_b}"
    caption = app.page.locator(".attnscope-dv-panel-b .attnscope-dv-panel-caption").inner_text()
    assert caption.startswith(f"B {match.layer_b}-{match.head_b}")
    codes = quantise(expected.attention_a[layer, head]).astype(int) - quantise(
        expected.attention_b[match.layer_b, match.head_b]
    )
    drawn = pixels(app, "diff")[..., :3]
    assert np.array_equal(drawn, diverging_rgb(codes, limit))  # cell (q, k) at pixel (k, q)
    q, k = np.unravel_index(np.argmax(np.abs(codes)), codes.shape)  # the most changed cell, by itself
    assert codes[q, k] != 0 and tuple(drawn[q, k]) == tuple(diverging_rgb(np.array(codes[q, k]), limit))
    distance = app.page.locator(f".attnscope-dv-distance[data-layer='{layer}'][data-head='{head}']").inner_text()
    assert float(distance) == pytest.approx(float(expected.distances[layer, head]), abs=0.0051)

    app.page.select_option("#compare", "")
    app.page.wait_for_selector("#compare-view[data-state=idle]", state="attached")
    assert "compare" not in query(app)
    assert app.page.locator("#compare-view").is_hidden() and app.page.locator(ROOT).count() == 0
    assert app.page.locator("#attention .attnscope-hv").is_visible()
    assert app.page.locator("#attention-toolbar").is_visible()
    assert len(asked) == 1 and json.loads(asked[0]) == {"model": expected.model_a, "compare": ZEROED_NAME, "text": PUB}
    assert app.errors == []


def test_a_link_keeps_the_comparison_and_a_refused_one_draws_nothing(app, expected):
    open_app(app, "?" + urlencode({"text": PUB, "compare": ZEROED_NAME}))
    app.page.wait_for_selector("#compare-view[data-state=ready] .attnscope-dv[data-ready=true]")
    assert app.page.locator("#compare").input_value() == ZEROED_NAME
    app.page.fill("#text", " ".join(["word"] * 600))  # past the model's 512 positions
    app.page.click("#run")
    app.page.wait_for_selector("#compare-view[data-state=error]", state="attached")
    assert app.page.locator(ROOT).count() == 0
    note = app.page.locator("#compare-note").inner_text()
    assert note.startswith(f"Could not compare with {ZEROED_NAME}: the input is 602 tokens long")
    open_app(app, "?" + urlencode({"text": PUB, "compare": "nope"}))
    assert "compare=nope was ignored: it is not served here" in app.page.locator("#link-dropped").inner_text()
    assert "compare" not in query(app) and app.page.locator("#compare").input_value() == ""
    assert app.page.locator("#attention .attnscope-hv").is_visible()
