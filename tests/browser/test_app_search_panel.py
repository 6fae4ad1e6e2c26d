"""The explorer app's search panel in Chromium against a real `attnscope serve` (the small corpus): a search runs only
for a token the index holds (a special token disables the buttons and the hint says why), the head score can be
chosen whenever heads are selected, a failed search clears the results and says why beside them (the filter to blame
marked at its input and left out of the URL), and Back gives the keyboard focus to the match that was opened."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from .test_app import AppPage, app, open_app  # noqa: F401 - app: the page fixture, here on this module's server
from .test_app_links import DEFAULT, url_state

PUB = "The girl ran to a local pub to escape the din of her city."
RAN = 3  # [CLS] the girl ran


@pytest.fixture(scope="module")
def server(small_app):
    return small_app


def panel(app: AppPage) -> dict:
    """What the search panel shows: its state, error, title, rows, histograms, buttons, hint and filter input."""
    return app.page.evaluate("""() => { const $ = (id) => document.getElementById(id);
        return { state: $('results').dataset.state, error: $('results-error').textContent,
          title: $('results-title').textContent, matches: document.querySelectorAll('.as-match').length,
          bars: document.querySelectorAll('.as-bar').length, embedding: !$('search-embedding').disabled,
          heads: !$('search-heads').disabled, hint: $('search-hint').textContent, filter: $('search-filter').value,
          invalid: $('search-filter').getAttribute('aria-invalid'),
          filterError: $('search-filter-error').hidden ? null : $('search-filter-error').textContent }; }""")


def searches(app: AppPage) -> int:
    return int(app.page.get_attribute("#results", "data-searches") or 0)


def type_filter(app: AppPage, text: str) -> None:
    app.page.fill("#search-filter", text)
    app.page.dispatch_event("#search-filter", "change")


def test_a_special_token_disables_the_search_buttons_and_says_why(app):
    open_app(app, "?" + urlencode({"text": PUB}))
    page = app.page
    assert (panel(app)["embedding"], panel(app)["hint"]) == (False, "Click a token to search the corpus for it.")
    page.click(".attnscope-hv-queries .attnscope-hv-token[data-index='0']")
    shown = panel(app)
    assert (shown["embedding"], shown["heads"]) == (False, False)
    assert (
        shown["hint"] == "“[CLS]” is a special token, which the corpus index does not hold: select another token "
        "to search."
    )
    page.click(f".attnscope-hv-queries .attnscope-hv-token[data-index='{RAN}']")
    assert (panel(app)["embedding"], panel(app)["heads"], panel(app)["hint"]) == (True, True, "")
    page.click(".attnscope-hv-heads-none")  # no head: the heads button waits for one, the embedding button does not
    assert (panel(app)["embedding"], panel(app)["heads"]) == (True, False)
    assert panel(app)["hint"] == "Select at least one head to search by heads."

    # hiding the special tokens while [CLS] is selected clears the selection (and its token in the URL)
    page.click(".attnscope-hv-heads-all")
    page.click(".attnscope-hv-queries .attnscope-hv-token[data-index='0']")
    assert url_state(app)["token"] == "0"
    page.check("#hide-special")
    assert "token" not in url_state(app) and page.get_attribute("#attention .attnscope-hv", "data-pinned") == ""
    assert panel(app)["hint"] == "Click a token to search the corpus for it."
    assert app.errors == []


def test_the_head_score_can_be_chosen_whenever_heads_are_selected(app):
    open_app(app, "?" + urlencode({"text": PUB, "token": str(RAN)}))
    page = app.page
    score = page.locator("#search-score")
    assert score.is_visible() and score.is_enabled()  # before any search by heads
    page.select_option("#search-score", "mean")
    assert url_state(app)["scoring"] == "mean" and "search" not in url_state(app)
    page.click(".attnscope-hv-heads-none")
    assert score.is_disabled() and score.get_attribute("title").startswith("Select heads")
    page.click(".attnscope-hv-head[data-head='4']")
    assert score.is_enabled()
    page.click(".attnscope-hv-head[data-head='7']")
    page.click("#search-heads")
    page.wait_for_selector("#results[data-state=ready]")
    assert (
        page.inner_text("#results-score") == "Score: mean of 2 heads' cosines of the head embeddings at layer 0 "
        "(their sum / 2, at most 1)."
    )
    assert url_state(app)["scoring"] == "mean" and url_state(app)["search"] == "heads"
    # the mean stays chosen for the next head search, and an embedding search (which has no head score) still runs
    before = searches(app)
    page.click("#search-embedding")
    page.wait_for_function(f"() => Number(document.getElementById('results').dataset.searches) > {before}")
    assert panel(app)["state"] == "ready" and panel(app)["error"] == "" and panel(app)["matches"] > 0
    assert page.inner_text("#results-score").startswith("Score: cosine")
    assert app.errors == []


def test_a_failed_search_clears_the_results_and_says_why_beside_them(app):
    open_app(
        app, "?" + urlencode({"text": PUB, "token": str(RAN), "search": "embedding", "filter": "upos=VERB upos=NOUN"})
    )
    page = app.page
    page.wait_for_selector("#results[data-state=ready]")
    before = panel(app)
    assert before["matches"] > 0 and before["bars"] > 0 and before["title"] and before["error"] == ""

    type_filter(app, "UPOS=VERB")  # the report: a field named in the wrong case
    page.wait_for_selector("#results[data-state=error]")
    reason = (
        "cannot filter on “UPOS”: corpus small has the fields upos, lemma, deprel (names are case-sensitive: "
        "did you mean “upos”?)"
    )
    assert panel(app) == {
        "state": "error",
        "title": "",
        "matches": 0,
        "bars": 0,
        "embedding": True,
        "heads": True,
        "hint": "",
        "error": f"Search failed: {reason}. The filter “UPOS=VERB” was not applied: correct it and search again.",
        "filter": "UPOS=VERB",
        "invalid": "true",
        "filterError": f"Not applied: {reason}",
    }
    assert url_state(app) == {"model": DEFAULT, "corpus": "small", "text": PUB, "layer": "0", "token": str(RAN)}
    assert (
        page.evaluate("document.getElementById('search-filter').getAttribute('aria-describedby')").split()[0]
        == "search-filter-error"
    )

    count = searches(app)
    page.click("#search-embedding")  # the filter still at its input fails again, nothing is sent
    assert panel(app)["state"] == "error" and panel(app)["error"].startswith("Search failed: cannot filter on “UPOS”")
    assert searches(app) == count and "search" not in url_state(app)

    type_filter(app, "upos=VERB")  # corrected: the marks go, the search runs again from its button
    assert (panel(app)["invalid"], panel(app)["filterError"]) == (None, None)
    page.click("#search-embedding")
    page.wait_for_selector("#results[data-state=ready]")
    assert panel(app)["error"] == "" and panel(app)["matches"] > 0
    assert (url_state(app)["filter"], url_state(app)["search"]) == ("upos=VERB", "embedding")

    # a filter the server refuses (more values than a filter takes): the same, with the server's reason
    type_filter(app, "lemma=" + ",".join(f"w{i}" for i in range(101)))
    page.wait_for_selector("#results[data-state=error]")
    shown = panel(app)
    assert (shown["matches"], shown["bars"], shown["title"], shown["invalid"]) == (0, 0, "", "true")
    assert shown["error"].startswith(
        "Search failed: filters.lemma: Value should have at most 100 items after validation, not 101"
    )
    assert shown["error"].endswith("was not applied: correct it and search again.")
    assert "filter" not in url_state(app) and "search" not in url_state(app)
    assert app.errors == ["Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"]


def test_back_gives_the_focus_to_the_match_that_was_opened(app):
    open_app(app, "?" + urlencode({"text": PUB, "token": str(RAN), "search": "embedding", "top": "5"}))
    page = app.page
    page.wait_for_selector("#results[data-state=ready]")
    links = page.locator(".as-match a.as-open")
    assert links.count() == 5
    sent = page.locator(".as-match").nth(2).get_attribute("data-sent-id")
    links.nth(2).focus()
    loads = int(page.get_attribute("#app", "data-loads"))
    page.keyboard.press("Enter")
    page.wait_for_function("(n) => Number(document.getElementById('app').dataset.loads) > n", arg=loads)
    assert page.evaluate("document.activeElement.classList.contains('attnscope-hv-pinned')")

    page.go_back()
    page.wait_for_selector("#results[data-state=ready]")
    page.wait_for_function("() => document.activeElement && document.activeElement.matches('.as-match a.as-open')")
    focused = page.evaluate("""() => { const rows = [...document.querySelectorAll('.as-match')];
        const row = document.activeElement.closest('.as-match');
        return { rank: rows.indexOf(row), sent: row.dataset.sentId }; }""")
    assert focused == {"rank": 2, "sent": sent}
    assert app.errors == []
