"""The explorer app's page never overflows the window, from 1280 px down to a 360 px phone (Chromium, a real
`attnscope serve` with the small corpus): a sentence pair with long words, Show's longest label, a search with the
widest metadata columns and the head atlas open; what is wider than its panel (the attention view's two token
columns and their lines, the atlas grid) scrolls inside it, and the predictions tooltip stays in the window."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from .test_app import AppPage

PUB = "The girl ran to a local pub to escape the din of her city."
LONG = "Unbelievably, counterrevolutionaries mismanaged the internationalisation."


@pytest.fixture(scope="module")
def server(small_app):
    return small_app


@pytest.mark.parametrize("width", [360, 400, 600, 800, 1024, 1280])
def test_the_page_is_never_wider_than_the_window(browser, server, width):
    context = browser.new_context(viewport={"width": width, "height": 800})
    app = AppPage(context.new_page(), server)
    query = {
        "text": PUB,
        "pair": LONG,
        "token": "3",
        "search": "embedding",
        "span": "5",
        "atlas": "open",
        "show": "value_norm_sum",
    }
    app.page.goto(f"{server}/?{urlencode(query)}")
    app.page.wait_for_selector("#app[data-attention=ready][data-aggregation=ready]")
    app.page.wait_for_selector("#results[data-state=ready]")
    app.page.wait_for_selector("#atlas[data-state=ready] .attnscope-atlas[data-ready=true]", timeout=300_000)
    page = app.page
    assert page.evaluate("document.documentElement.scrollWidth") == width
    panels = page.eval_on_selector_all(".as-panel", "ps => ps.map(p => p.getBoundingClientRect().right)")
    assert max(panels) <= width
    columns = page.eval_on_selector(".attnscope-hv-body", "c => [c.scrollWidth, c.clientWidth]")
    if width <= 400:  # the tokens and their lines scroll inside the attention panel, all of them reachable
        assert columns[0] > columns[1]
    last = page.locator(".attnscope-hv-keys .attnscope-hv-token").last
    last.scroll_into_view_if_needed()
    last.hover()
    tip = page.eval_on_selector("#tooltip", "t => [t.hidden, t.getBoundingClientRect().right]")
    assert tip[0] is False and tip[1] <= width
    assert page.evaluate("document.documentElement.scrollWidth") == width
    assert app.errors == [] and app.blocked == []
    context.close()
