"""The page of two atlases compared, in a real browser, offline: the A − B cells carry Python's differences in
the diverging palette (white at 0), the switch shows A, B and A − B, the tables list the most changed heads,
and models of different shapes stand side by side."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from attnscope.analysis.patterns import PatternScores
from attnscope.atlas import compare_atlases
from attnscope.views.atlas_compare import atlas_compare_page

from .conftest import open_view
from .test_atlas_page import CELLS, HEADS, LAYERS, ROWS, colour, constructed_atlas

POSITIVE, NEGATIVE = (33, 102, 172), (179, 88, 6)


def diverging(value: float, scale: float) -> str:
    """The colour atlas_diverging.js gives a difference: white at 0, POSITIVE at +scale, NEGATIVE at −scale
    (JS's Math.round: halves up)."""
    end = NEGATIVE if value < 0 else POSITIVE
    t = min(1.0, abs(value) / scale)
    rgb = [math.floor(255 + (e - 255) * t + 0.5) for e in end]
    return f"rgb({rgb[0]}, {rgb[1]}, {rgb[2]})"


def changed(atlas):
    """``atlas`` with head 2-5's previous share raised by 0.5 (capped at 1) and head 4-1's lowered by 0.25."""
    previous = atlas.patterns.previous.copy()
    previous[2, 5] = min(1.0, previous[2, 5] + 0.5)
    previous[4, 1] -= 0.25
    return replace(atlas, model="finetuned", patterns=replace(atlas.patterns, previous=previous))


def open_page(page, tmp_path, html: str):
    open_view(page, tmp_path, html, ".attnscope-atlas-compare", "atlas-compare.html")
    return page.page


def cells(p) -> dict[tuple[int, int], dict]:
    return {(c["layer"], c["head"]): c for c in p.evaluate(CELLS)}


def test_the_difference_cells_match_python_and_the_switch_shows_each_side(page, tmp_path):
    a = constructed_atlas("base")
    comparison = compare_atlases(a, changed(a))
    p = open_page(page, tmp_path, atlas_compare_page(comparison, score="previous"))
    difference = np.array(comparison.to_dict()["scores"][0]["difference"])  # what the page was given
    scale = np.abs(difference).max()
    shown = cells(p)
    assert len(shown) == LAYERS * HEADS
    for (layer, head), cell in shown.items():
        assert cell["value"] == pytest.approx(comparison.score("previous").difference[layer, head], abs=1e-6)
        assert cell["colour"] == diverging(difference[layer, head], scale)
    assert shown[(0, 0)]["colour"] == "rgb(255, 255, 255)"  # unchanged: white
    assert shown[(2, 5)]["colour"] == "rgb(179, 88, 6)"  # the largest change, B higher: the full orange
    assert shown[(2, 5)]["text"] == "−0.50" and shown[(4, 1)]["text"] == "+0.25"
    assert shown[(4, 1)]["colour"] == "rgb(144, 179, 214)"  # A higher by half the scale: halfway to blue
    assert p.get_attribute('.attnscope-atlas-side[data-side="a-b"]', "aria-pressed") == "true"
    assert "orange where B is higher" in p.text_content(".attnscope-atlas-legend")

    for side, grid in (("a", comparison.score("previous").a), ("b", comparison.score("previous").b)):
        p.click(f'.attnscope-atlas-side[data-side="{side}"]')
        assert p.get_attribute(f'.attnscope-atlas-side[data-side="{side}"]', "aria-pressed") == "true"
        for (layer, head), cell in cells(p).items():
            assert cell["value"] == pytest.approx(grid[layer, head], abs=1e-6)
            assert cell["colour"] == colour(cell["value"])
    p.click('.attnscope-atlas-side[data-side="a-b"]')
    p.select_option(".attnscope-atlas-score", "entropy")  # not changed: every cell white
    assert {cell["colour"] for cell in cells(p).values()} == {"rgb(255, 255, 255)"}
    assert page.errors == [] and page.blocked == []


def test_the_tables_list_the_most_changed_heads_and_open_them(page, tmp_path):
    a = constructed_atlas("base")
    comparison = compare_atlases(a, changed(a))
    p = open_page(page, tmp_path, atlas_compare_page(comparison, score="previous"))
    rows = p.evaluate(ROWS, ".attnscope-atlas-changes")
    assert [(float(r["change"]), float(r["difference"])) for r in rows[:2]] == [(0.5, -0.5), (0.25, 0.25)]
    heads = p.eval_on_selector_all(".attnscope-atlas-changes tbody tr", "(rs) => rs.map((r) => r.cells[0].textContent)")
    assert heads[:2] == ["2-5", "4-1"]
    assert len(rows) == LAYERS * HEADS and all(float(r["change"]) == 0 for r in rows[2:])
    first = comparison.score("previous").most_changed(2)
    assert [(c.layer, c.head) for c in first] == [(2, 5), (4, 1)]

    scores = p.evaluate(ROWS, ".attnscope-atlas-scores")
    assert scores[0]["score"] == "previous" and scores[0]["head"] == f"{first[0].layer}-{first[0].head}"
    p.click('.attnscope-atlas-scores tr[data-score="previous"]')
    selected = p.locator(".attnscope-atlas-selected")
    assert (selected.get_attribute("data-layer"), selected.get_attribute("data-head")) == (
        str(first[0].layer),
        str(first[0].head),
    )
    p.focus('.attnscope-atlas-changes tr[data-layer="2"][data-head="5"]')
    p.keyboard.press("Enter")
    assert p.get_attribute('.attnscope-atlas-cell[data-layer="2"][data-head="5"]', "aria-pressed") == "true"
    assert "A − B −" in selected.text_content()
    assert page.errors == []


def test_models_of_different_shapes_stand_side_by_side(page, tmp_path):
    a = constructed_atlas("base")
    small = PatternScores(
        **{name: getattr(a.patterns, name)[:2, :4] for name in ("previous", "next", "self", "first", "special")},
        entropy=a.patterns.entropy[:2, :4],
        labels=[row[:4] for row in a.patterns.labels[:2]],
    )
    b = replace(a, model="small", layers=2, heads=4, patterns=small, relations=None)
    comparison = compare_atlases(a, b)
    p = open_page(page, tmp_path, atlas_compare_page(comparison))
    assert p.locator(".attnscope-atlas-side").count() == 0 and p.locator(".attnscope-atlas-changes").count() == 0
    grids = p.eval_on_selector_all(
        ".attnscope-atlas-grid", "(gs) => gs.map((g) => [g.dataset.side, g.querySelectorAll('button').length])"
    )
    assert grids == [["a", LAYERS * HEADS], ["b", 8]]
    b_cells = p.eval_on_selector_all(
        '.attnscope-atlas-grid[data-side="b"] .attnscope-atlas-cell', "(cs) => cs.map((c) => Number(c.dataset.value))"
    )
    assert b_cells == pytest.approx(b.patterns.previous.reshape(-1).tolist(), abs=1e-6)
    scores = {r["score"]: r for r in p.evaluate(ROWS, ".attnscope-atlas-scores")}
    layer, head, value = comparison.score("previous").best("b")
    assert (layer, head) == (1, 3) and float(scores["previous"]["best_b"]) == pytest.approx(value, abs=1e-6)
    cell = '.attnscope-atlas-scores tr[data-score="previous"] td[data-key="best_b"]'
    assert p.text_content(cell) == f"1-3 ({value:.2f})"
    assert "Only one atlas has nsubj dependent_to_head" in p.text_content(".attnscope-atlas-notices")
    assert page.errors == []
