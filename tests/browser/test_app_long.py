"""A 4,096-token prompt in the explorer app (Chromium, a real `attnscope serve --model smollm2 --no-corpus`): drawn by
the long-context head view (a band of query rows, its lines from the server's layer of each query's strongest keys),
a layer change fetching that layer alone, words, the top share and Show's aggregations off with the reason."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import numpy as np
import pytest

from attnscope.cache import CACHE_ENV

from ..long_context import decode_top_layer
from ..long_prompt import prompt_of
from ..serve_process import serving
from .test_app import AppPage, app, run_sentence  # noqa: F401 - app: the page fixture, here on this module's server

TOKENS = 4096
SLOW = 900_000  # ms: the capture at 4,096 tokens takes tens of seconds on two loaded cores


@pytest.fixture(scope="module")
def server(smollm2_first_load, tmp_path_factory):
    env = {CACHE_ENV: str(smollm2_first_load.cache_root)}  # the session's converted SmolLM2
    with serving(["--model", "smollm2", "--no-corpus"], tmp_path_factory.mktemp("serve-long"), env=env) as served:
        yield served.base


@pytest.fixture(scope="module")
def prompt(smollm2) -> str:
    return prompt_of(smollm2, TOKENS)


def root(app: AppPage) -> dict:
    return app.page.evaluate("() => ({ ...document.querySelector('#attention .attnscope-hv').dataset })")


def drawn(layer: int) -> str:
    """The view once the whole of ``layer`` has arrived and is drawn (not only the band's rows)."""
    return f"#attention .attnscope-hv[data-layer='{layer}'][data-rows='all'][data-loading='false']"


def lines_of(base: str, ident: str, layer: int) -> int:
    """Lines the app draws of a layer with every head shown: the server's top keys whose byte is not 0."""
    data = httpx.get(f"{base}/api/attention/{ident}/layers/decoder/{layer}", timeout=300).content
    return int(sum(np.count_nonzero(codes) for _, codes, _ in decode_top_layer(data, 9, TOKENS)))


def test_a_4096_token_prompt_draws_and_a_layer_change_fetches_that_layer(app, server, prompt, smollm2):
    page, asked = app.page, []
    page.on("request", lambda r: asked.append((r.method, r.url.removeprefix(server))))
    name = httpx.get(f"{server}/api/models").json()[0]["name"]
    with page.expect_response(lambda r: r.url.endswith("/api/attention"), timeout=SLOW) as answered:
        page.goto(app.origin + "/?" + urlencode({"model": name, "text": prompt, "layer": "3", "words": "1"}))
    ident = answered.value.json()["long_view"]["id"]
    page.wait_for_selector("#app[data-attention=ready]", timeout=SLOW)
    page.wait_for_selector(drawn(3), timeout=SLOW)
    shown = root(app)
    assert shown["band"] == "0-30" and int(shown["linesDrawn"]) > 0 and shown["units"] == "tokens"
    assert int(shown["lines"]) == lines_of(server, ident, 3)
    assert page.locator("#attention .attnscope-hv-queries .attnscope-hv-token").count() == 30

    asked.clear()
    page.select_option("#layer", "7")
    page.wait_for_selector(drawn(7), timeout=SLOW)
    layers = [url for method, url in asked if "/layers/" in url]
    assert layers == [f"/api/attention/{ident}/layers/decoder/7"]
    assert ("POST", "/api/attention") not in asked  # the input is not asked for again
    assert int(root(app)["lines"]) == lines_of(server, ident, 7)

    page.eval_on_selector("#attention .attnscope-hv-scroll", "(el) => { el.scrollTop = 2000 * 20; }")
    page.wait_for_selector("#attention .attnscope-hv[data-band='2000-2030']", timeout=SLOW)
    assert root(app)["edgeKeys"] != "" and int(root(app)["linesDrawn"]) > 0  # lines to earlier keys end at the edge
    assert app.errors == []


def test_at_length_words_the_top_share_and_aggregations_are_off_saying_why(app, server, prompt):
    name = httpx.get(f"{server}/api/models").json()[0]["name"]
    app.page.goto(app.origin + "/?" + urlencode({"model": name, "text": prompt}))
    app.page.wait_for_selector("#app[data-attention=ready][data-long=true]", timeout=SLOW)
    controls = app.page.evaluate("""() => ({
        words: [document.getElementById('words').disabled, document.getElementById('words').parentElement.title],
        share: [document.getElementById('top-share').disabled, document.getElementById('top-share').title],
        show: [...document.getElementById('show').options].map(o => [o.value, o.disabled, o.title]),
        note: document.getElementById('length-note').textContent })""")
    assert controls["words"] == [
        True,
        "words merge every weight of a row: at long context only each query's strongest keys are carried",
    ]
    assert controls["share"][0] is True and controls["share"][1].startswith("a share of each row's attention needs")
    assert controls["show"][0] == ["raw", False, ""]
    assert {value: disabled for value, disabled, _ in controls["show"][1:]} == {
        value: True for value, _, _ in controls["show"][1:]
    }
    assert dict((v, t) for v, _, t in controls["show"])["rollout"] == (
        "rollout multiplies whole layers; ask analysis.long.rollout_rows for chosen query rows"
    )
    assert controls["note"].startswith(
        "An input of 4,096 tokens is drawn as each query's 8 strongest keys per head, one layer at a time"
    )
    assert app.errors == []


def test_a_link_showing_an_aggregation_of_a_long_input_shows_its_lines_and_says_why(app, server, prompt):
    name = httpx.get(f"{server}/api/models").json()[0]["name"]
    app.page.goto(app.origin + "/?" + urlencode({"model": name, "text": prompt, "show": "rollout"}))
    app.page.wait_for_selector("#app[data-attention=ready][data-long=true]", timeout=SLOW)
    dropped = app.page.eval_on_selector_all("#link-dropped li", "ls => ls.map(l => l.textContent)")
    assert dropped == [
        "show=rollout was ignored: aggregations 'rollout' is not offered for an input of 4,096 tokens, which the "
        "long-context view draws as each query's strongest keys: rollout multiplies whole layers; ask "
        "analysis.long.rollout_rows for chosen query rows"
    ]
    assert app.page.input_value("#show") == "raw" and "show=" not in app.page.url
    assert app.errors == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"]


def test_a_short_input_after_a_long_one_is_drawn_whole_with_the_controls_back(app, server, prompt):
    name = httpx.get(f"{server}/api/models").json()[0]["name"]
    app.page.goto(app.origin + "/?" + urlencode({"model": name, "text": prompt}))
    app.page.wait_for_selector("#app[data-attention=ready][data-long=true]", timeout=SLOW)
    run_sentence(app, "The girl ran to a local pub to escape the din of her city.")
    app.page.wait_for_selector("#app[data-attention=ready][data-long=false]", timeout=SLOW)
    state = app.page.evaluate("""() => ({
        long: document.querySelector('#attention .attnscope-hv').classList.contains('attnscope-hv-long'),
        words: document.getElementById('words').disabled, share: document.getElementById('top-share').disabled,
        show: [...document.getElementById('show').options].filter(o => o.disabled).length,
        note: document.getElementById('length-note').hidden })""")
    assert state == {"long": False, "words": False, "share": False, "show": 0, "note": True}
    assert int(root(app)["lines"]) > 0 and app.errors == []
