"""The explorer app's token labels in Chromium against a real `attnscope serve`: subword pieces marked as BertViz
marks them, the note where a token is masked on a model that was not trained to fill in masks, and the keyboard
focus kept on the token or head the user was on through every redraw."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest

import attnscope

# app: the page fixture, here on this module's server
from .test_app import AppPage, app, open_app, run_sentence  # noqa: F401

ALLERGIES = "She has allergies to peanuts; it was mismanaged."
PUB = "The girl ran to a local pub to escape the din of her city."


@pytest.fixture(scope="module")
def server(small_app):
    return small_app


def focused(app: AppPage) -> dict:
    """What has the keyboard focus: its id, classes and data attributes."""
    return app.page.evaluate("""() => { const el = document.activeElement;
        return { id: el.id, classes: [...el.classList], ...el.dataset }; }""")


def wait_loads(app: AppPage, more_than: int) -> None:
    app.page.wait_for_function(
        "(n) => document.getElementById('app').dataset.attention === 'ready' && "
        "Number(document.getElementById('app').dataset.loads) > n",
        arg=more_than,
    )


def loads(app: AppPage) -> int:
    return int(app.page.get_attribute("#app", "data-loads") or 0)


def test_continuation_pieces_are_marked_in_the_attention_view(app, server, default_model):
    open_app(app, "?" + urlencode({"text": ALLERGIES}))
    page = app.page
    tokens = attnscope.encode(default_model, ALLERGIES)
    answer = httpx.post(f"{server}/api/attention", json={"model": "default", "text": ALLERGIES}, timeout=60).json()
    assert answer["tokens"]["word_ids"] == list(tokens.word_ids)
    labels = page.eval_on_selector_all(
        ".attnscope-hv-queries .attnscope-hv-token",
        """els => els.map(e => [e.textContent,
        e.classList.contains('attnscope-hv-continuation'), getComputedStyle(e, '::before').content])""",
    )
    assert [text for text, _, _ in labels] == tokens.display
    marked = [text for text, cont, _ in labels if cont]
    assert marked == ["er", "gies", "mana", "ged"]  # "all ##er ##gies", "mis ##mana ##ged"
    assert {before for _, cont, before in labels if cont} == {'"##"'}
    assert {before for _, cont, before in labels if not cont} == {"none"}
    keys = page.eval_on_selector_all(
        ".attnscope-hv-keys .attnscope-hv-continuation", "els => els.map(e => e.textContent)"
    )
    assert keys == marked
    er = str(tokens.display.index("er"))
    assert (
        page.locator(".attnscope-hv-queries").get_by_role("button", name="##er", exact=True).get_attribute("data-index")
        == er
    )  # as read aloud

    page.check("#words")  # whole words: nothing is a piece
    page.wait_for_function(
        "() => document.getElementById('app').dataset.aggregation === 'ready' && "
        "[...document.querySelectorAll('.attnscope-hv-queries .attnscope-hv-token')]"
        ".some(e => e.textContent === 'allergies')"
    )
    assert page.locator(".attnscope-hv-queries .attnscope-hv-continuation").count() == 0
    assert app.errors == []


def test_masking_on_a_model_without_a_masked_lm_head_says_what_mask_means(app, server, tiny, default_model):
    open_app(app, "?" + urlencode({"text": PUB}))
    page = app.page
    assert page.is_hidden("#mask-note")
    before = loads(app)
    page.dblclick(".attnscope-hv-queries .attnscope-hv-token[data-index='9']")
    wait_loads(app, before)
    assert page.locator(".attnscope-hv-queries .attnscope-hv-masked").get_attribute("data-index") == "9"
    note = page.locator("#mask-note")
    assert note.is_visible() and note.get_attribute("role") == "note"
    caveat = attnscope.masking_caveat(default_model)  # the one text the CLI and Python show
    assert note.inner_text() == "M" + caveat[1:]
    assert note.inner_text().startswith(
        "Model 'sentence-transformers/all-MiniLM-L6-v2' has no masked-language-model "
        "head, so its mask token [MASK] was not trained to stand for a word: "
    )
    assert "a corpus search for it finds (often unrelated tokens such as proper nouns)" in caveat
    # it sits where the user masks: above the tokens, in the attention panel
    assert page.evaluate("""() => { const n = document.getElementById('mask-note');
        return n.closest('section').getAttribute('aria-labelledby') === 'attention-title'
          && n.compareDocumentPosition(document.querySelector('.attnscope-hv-queries .attnscope-hv-token'))
            === Node.DOCUMENT_POSITION_FOLLOWING; }""")
    before = loads(app)
    page.dblclick(".attnscope-hv-queries .attnscope-hv-token[data-index='9']")  # unmasked: nothing to explain
    wait_loads(app, before)
    assert page.is_hidden("#mask-note")

    models = httpx.get(f"{server}/api/models").json()
    assert [m["masking_note"] is None for m in models] == [False, True]  # default, then the tiny masked LM
    page.select_option("#model", tiny("bert").label)
    run_sentence(app, PUB)
    before = loads(app)
    page.dblclick(".attnscope-hv-queries .attnscope-hv-token[data-index='3']")
    wait_loads(app, before)
    assert page.locator(".attnscope-hv-queries .attnscope-hv-masked").get_attribute("data-index") == "3"
    assert page.is_hidden("#mask-note") and page.inner_text("#mask-note") == ""
    assert app.errors == []


def test_m_masks_and_unmasks_with_the_focus_kept_on_the_token(app, server):
    open_app(app, "?" + urlencode({"text": PUB}))
    page = app.page
    page.focus(".attnscope-hv-queries .attnscope-hv-token[data-index='9']")
    before = loads(app)
    page.keyboard.press("m")
    wait_loads(app, before)
    assert page.locator(".attnscope-hv-queries .attnscope-hv-token[data-index='9']").inner_text() == "[MASK]"
    now = focused(app)
    assert (now["id"], now["side"], now["index"]) == ("", "query", "9")
    assert {"attnscope-hv-token", "attnscope-hv-masked", "attnscope-hv-pinned"} <= set(now["classes"])
    assert page.is_visible("#tooltip") and "(position 9)" in page.inner_text("#tooltip")  # the focus shows its token
    before = loads(app)
    page.keyboard.press("m")
    wait_loads(app, before)
    assert page.locator(".attnscope-hv-queries .attnscope-hv-token[data-index='9']").inner_text() == "escape"
    assert focused(app)["index"] == "9" and "attnscope-hv-masked" not in focused(app)["classes"]
    page.keyboard.press("ArrowDown")  # and the keyboard goes on from there
    assert focused(app)["index"] == "10"
    assert app.errors == []


def test_the_focus_stays_through_layer_head_and_words_changes(app, server):
    open_app(app, "?" + urlencode({"text": "Unbelievably, the tokenisation splits words.", "show": "rollout"}))
    page = app.page
    page.focus("#layer")
    page.keyboard.press("ArrowDown")
    assert page.get_attribute("#attention .attnscope-hv", "data-layer") == "1" and focused(app)["id"] == "layer"

    page.focus("#words")
    page.keyboard.press("Space")  # words are merged in the page: nothing is asked of the server
    page.wait_for_selector("#attention .attnscope-hv[data-units=words]")
    assert "words=on" in page.url and focused(app)["id"] == "words"

    # a head toggle in words mode with a combined method reloads the words' weights
    page.focus(".attnscope-hv-head[data-head='4']")
    count = int(page.get_attribute("#app", "data-aggregations"))
    page.keyboard.press("Space")
    page.wait_for_function(
        "(n) => document.getElementById('app').dataset.aggregation === 'ready' && "
        "Number(document.getElementById('app').dataset.aggregations) > n",
        arg=count,
    )
    assert "4" not in page.get_attribute("#attention .attnscope-hv", "data-heads").split(",")
    assert focused(app)["head"] == "4" and "attnscope-hv-head" in focused(app)["classes"]

    # masking a word by keyboard in words mode: the focus stays on the word
    word = page.locator(".attnscope-hv-queries .attnscope-hv-token", has_text="tokenisation").get_attribute(
        "data-index"
    )
    page.focus(f".attnscope-hv-queries .attnscope-hv-token[data-index='{word}']")
    count = int(page.get_attribute("#app", "data-aggregations"))
    page.keyboard.press("m")
    page.wait_for_function(
        "(n) => document.getElementById('app').dataset.aggregation === 'ready' && "
        "Number(document.getElementById('app').dataset.aggregations) > n",
        arg=count,
    )
    assert focused(app)["index"] == word and "attnscope-hv-masked" in focused(app)["classes"]
    assert app.errors == []
