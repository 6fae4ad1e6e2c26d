"""The head atlas page in a real browser, offline: the grid shows and colours the chosen score, the tables
sort, and opening a head points the example sentence's head and neuron views at it."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

import attnscope
from attnscope.analysis.patterns import PatternScores, label_heads
from attnscope.atlas import Atlas, RelationScores
from attnscope.views.atlas import atlas_page

from ..conftest import PUB
from .conftest import open_view

LAYERS, HEADS = 6, 12
LOW, HIGH = np.array([247, 251, 255]), np.array([8, 48, 107])
RELATIONS = ("nsubj", "det")


def colour(value: float) -> str:
    """The grid colour atlas.js gives a score: LOW at 0, HIGH at 1, linear in between."""
    rgb = np.rint(LOW + (HIGH - LOW) * min(1.0, max(0.0, value))).astype(int)
    return f"rgb({rgb[0]}, {rgb[1]}, {rgb[2]})"


def constructed_atlas(model: str, corpus: str = "constructed", relations: bool = True) -> Atlas:
    """An atlas with known, distinct scores: head (l, h) has previous share (l * 12 + h) / 71, and so on."""
    index = np.arange(LAYERS * HEADS, dtype=np.float64).reshape(LAYERS, HEADS) / (LAYERS * HEADS - 1)
    shares = {
        "previous": index,
        "next": 1 - index,
        "self": np.full_like(index, 0.05),
        "first": np.roll(index, 7),
        "special": (index * 3) % 1,
    }
    entropy = np.abs(np.sin(index * 5))
    patterns = PatternScores(**shares, entropy=entropy, labels=label_heads(shares, entropy))
    scores = None
    if relations:
        rng = np.random.default_rng(0)
        scores = RelationScores(
            RELATIONS,
            np.array([120, 80]),
            rng.random((2, LAYERS, HEADS)),
            rng.random((2, LAYERS, HEADS)),
            np.array([0.4, 0.7]),
            np.array([1, -2]),
        )
    return Atlas(
        model=model,
        model_fingerprint="f",
        tokenizer_fingerprint="t",
        stack="encoder",
        layers=LAYERS,
        heads=HEADS,
        corpus=corpus,
        corpus_checksum="c",
        annotator="conllu (gold)",
        sentences=10,
        tokens=100,
        patterns=patterns,
        relations=scores,
        notices=() if relations else ("the corpus has no dependency annotations",),
    )


@pytest.fixture(scope="module")
def example(default_model):
    return attnscope.capture(default_model, PUB, fields="all")


@pytest.fixture
def atlas(default_model) -> Atlas:
    return constructed_atlas(default_model.name)


def open_page(page, tmp_path, html: str):
    open_view(page, tmp_path, html, ".attnscope-atlas", "atlas.html")
    return page.page


CELLS = """() => [...document.querySelectorAll('.attnscope-atlas-cell')].map((c) => ({
  layer: Number(c.dataset.layer), head: Number(c.dataset.head), value: Number(c.dataset.value),
  text: c.textContent, colour: getComputedStyle(c).backgroundColor, beats:
    c.classList.contains('attnscope-atlas-beats')}))"""
ROWS = """(selector) => [...document.querySelectorAll(selector + ' tbody tr')].map((r) =>
  Object.fromEntries([...r.querySelectorAll('td')].map((td) => [td.dataset.key, td.dataset.value])))"""


def cells(page) -> dict[tuple[int, int], dict]:
    return {(c["layer"], c["head"]): c for c in page.evaluate(CELLS)}


def test_the_grid_shows_and_colours_the_chosen_score(page, tmp_path, atlas):
    p = open_page(page, tmp_path, atlas_page(atlas))
    shown = cells(p)
    assert len(shown) == LAYERS * HEADS
    for (layer, h), cell in shown.items():
        value = atlas.patterns.previous[layer, h]
        assert cell["value"] == pytest.approx(value, abs=1e-6) and cell["text"] == f"{value:.2f}"  # 6 decimals in JSON
        assert cell["colour"] == colour(cell["value"])
    assert shown[(0, 0)]["colour"] == "rgb(247, 251, 255)" and shown[(5, 11)]["colour"] == "rgb(8, 48, 107)"

    p.select_option(".attnscope-atlas-score", "entropy")
    for (layer, h), cell in cells(p).items():
        assert cell["value"] == pytest.approx(atlas.patterns.entropy[layer, h], abs=1e-6)
        assert cell["colour"] == colour(cell["value"])

    p.select_option(".attnscope-atlas-score", "nsubj head_to_dependent")
    accuracy, baseline = atlas.relations.head_to_dependent[0], atlas.relations.baseline[0]
    for (layer, h), cell in cells(p).items():
        assert cell["value"] == pytest.approx(accuracy[layer, h], abs=1e-6) and cell["colour"] == colour(cell["value"])
        assert cell["beats"] == (accuracy[layer, h] > baseline)
    legend = p.text_content(".attnscope-atlas-legend")
    assert "baseline 0.40 at offset +1" in legend
    assert page.errors == [] and page.blocked == []


def test_the_heads_table_sorts_by_any_column(page, tmp_path, atlas):
    p = open_page(page, tmp_path, atlas_page(atlas))
    rows = p.evaluate(ROWS, ".attnscope-atlas-heads")
    assert len(rows) == LAYERS * HEADS
    assert [float(r["previous"]) for r in rows] == pytest.approx(
        sorted(atlas.patterns.previous.reshape(-1), reverse=True), abs=1e-6
    )
    assert p.get_attribute('.attnscope-atlas-heads th:has(button[data-key="previous"])', "aria-sort") == "descending"

    p.click('.attnscope-atlas-heads button[data-key="previous"]')  # again: lowest first
    lowest_first = [float(r["previous"]) for r in p.evaluate(ROWS, ".attnscope-atlas-heads")]
    assert lowest_first == pytest.approx(sorted(atlas.patterns.previous.reshape(-1)), abs=1e-6)
    p.click('.attnscope-atlas-heads button[data-key="entropy"]')
    entropy = [float(r["entropy"]) for r in p.evaluate(ROWS, ".attnscope-atlas-heads")]
    assert entropy == pytest.approx(sorted(atlas.patterns.entropy.reshape(-1), reverse=True), abs=1e-6)
    p.click('.attnscope-atlas-heads button[data-key="head"]')  # names sort A to Z first: 0-0, 0-1, ...
    first = p.evaluate(ROWS, ".attnscope-atlas-heads")[:3]
    assert [r["head"] for r in first] == ["0", "1", "2"]

    # colouring by a relation adds its column to the table and sorts by it, highest first; a click reverses
    p.select_option(".attnscope-atlas-score", "det dependent_to_head")
    det = [float(r["det dependent_to_head"]) for r in p.evaluate(ROWS, ".attnscope-atlas-heads")]
    assert det == pytest.approx(sorted(atlas.relations.dependent_to_head[1].reshape(-1), reverse=True), abs=1e-6)
    p.click('.attnscope-atlas-heads button[data-key="det dependent_to_head"]')
    det = [float(r["det dependent_to_head"]) for r in p.evaluate(ROWS, ".attnscope-atlas-heads")]
    assert det == pytest.approx(sorted(atlas.relations.dependent_to_head[1].reshape(-1)), abs=1e-6)
    p.select_option(".attnscope-atlas-score", "special")
    special = [float(r["special"]) for r in p.evaluate(ROWS, ".attnscope-atlas-heads")]
    assert special == pytest.approx(sorted(atlas.patterns.special.reshape(-1), reverse=True), abs=1e-6)
    assert "det dependent_to_head" not in p.evaluate(ROWS, ".attnscope-atlas-heads")[0]

    relations = p.evaluate(ROWS, ".attnscope-atlas-relations")
    assert [r["relation"] for r in relations] == ["nsubj", "det"]  # most arcs first
    assert float(relations[0]["dependent_to_head"]) == pytest.approx(
        atlas.relations.dependent_to_head[0].max(), abs=1e-6
    )
    p.click('.attnscope-atlas-relations button[data-key="baseline"]')
    assert [r["relation"] for r in p.evaluate(ROWS, ".attnscope-atlas-relations")] == ["det", "nsubj"]
    assert page.errors == []


def test_opening_a_head_points_the_example_views_at_it(page, tmp_path, atlas, example):
    p = open_page(page, tmp_path, atlas_page(atlas, example))
    p.wait_for_selector(".attnscope-hv[data-ready=true]")
    p.wait_for_selector(".attnscope-nv[data-ready=true]")

    def opened():
        pressed = p.eval_on_selector_all(
            ".attnscope-hv-head",
            "(bs) => bs.filter((b) => b.getAttribute('aria-pressed') === 'true').map((b) => Number(b.dataset.head))",
        )
        return (
            p.input_value(".attnscope-hv-layer"),
            pressed,
            p.input_value(".attnscope-nv-layer"),
            p.input_value(".attnscope-nv-head"),
        )

    assert opened() == ("0", [0], "0", "0")
    p.click('.attnscope-atlas-cell[data-layer="2"][data-head="5"]')
    assert opened() == ("2", [5], "2", "5")
    selected = p.locator(".attnscope-atlas-selected")
    assert selected.get_attribute("data-layer") == "2" and selected.get_attribute("data-head") == "5"
    assert "Head 2-5" in selected.text_content()
    link = urlsplit(p.get_attribute(".attnscope-atlas-app", "href"))
    assert (link.scheme, link.netloc, link.path) == ("http", "127.0.0.1:8000", "/")
    assert parse_qs(link.query) == {"model": [atlas.model], "text": [PUB], "layer": ["2"], "heads": ["5"]}
    assert p.get_attribute('.attnscope-atlas-cell[data-layer="2"][data-head="5"]', "aria-pressed") == "true"

    # a row of the heads table, by keyboard
    p.focus('.attnscope-atlas-heads tr[data-layer="4"][data-head="1"]')
    p.keyboard.press("Enter")
    assert opened() == ("4", [1], "4", "1")

    # a relation's best head: the grid switches to that relation and direction and opens the head
    p.click('.attnscope-atlas-relations tr[data-relation="det"] td[data-key="head_to_dependent"]')
    layer, head = np.unravel_index(int(np.argmax(atlas.relations.head_to_dependent[1])), (LAYERS, HEADS))
    assert p.input_value(".attnscope-atlas-score") == "det head_to_dependent"
    assert opened() == (str(layer), [int(head)], str(layer), str(head))
    assert page.errors == [] and page.blocked == []


def test_an_atlas_without_relations_shows_its_notice_and_only_patterns(page, tmp_path, default_model):
    atlas = constructed_atlas(default_model.name, relations=False)
    p = open_page(page, tmp_path, atlas_page(atlas, app_url=None))
    assert "no dependency annotations" in p.text_content(".attnscope-atlas-notices")
    options = p.eval_on_selector_all(".attnscope-atlas-score option", "(os) => os.map((o) => o.value)")
    assert options == ["previous", "next", "self", "first", "special", "entropy"]
    assert p.locator(".attnscope-atlas-relations").count() == 0
    p.click('.attnscope-atlas-cell[data-layer="1"][data-head="1"]')
    assert p.locator(".attnscope-atlas-app").count() == 0  # no explorer app named: no link
    assert page.errors == []


def test_names_from_the_corpus_and_model_are_shown_as_text(page, tmp_path, default_model):
    hostile = "<img src=x onerror=alert(1)>"
    p = open_page(page, tmp_path, atlas_page(constructed_atlas(default_model.name, corpus=hostile)))
    assert hostile in p.text_content(".attnscope-atlas-title")
    assert p.locator(".attnscope-atlas img").count() == 0 and page.errors == []
