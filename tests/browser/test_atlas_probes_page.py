"""The head atlas page with probe scores, in a real browser, offline: the grid colours by any probe score,
the heads table has a sortable column per probe score, and the page says the probe's size, seed and the
model's copying figure."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from attnscope.analysis.probes import PROBES, Copying, ProbeScores, ProbeSpec
from attnscope.views.atlas import atlas_page

from .test_atlas_page import CELLS, HEADS, LAYERS, ROWS, colour, constructed_atlas, open_page


def probe_atlas(model: str):
    """The constructed atlas with distinct, seeded probe scores and a copying figure."""
    rng = np.random.default_rng(11)
    scores = {name: rng.random((LAYERS, HEADS)) for name in PROBES}
    probes = ProbeScores(PROBES, scores, ProbeSpec(50, 2, 8, 0), 0, 100, Copying(-14.24, -2.56, 392))
    return replace(constructed_atlas(model), probes=probes)


def test_the_grid_colours_and_the_table_sorts_by_a_probe_score(page, tmp_path, default_model):
    atlas = probe_atlas(default_model.name)
    p = open_page(page, tmp_path, atlas_page(atlas))
    groups = p.evaluate(
        "() => [...document.querySelectorAll('.attnscope-atlas-score optgroup')].map((g) => "
        "[g.label, [...g.querySelectorAll('option')].map((o) => o.value)])"
    )
    assert ["Probe scores", [f"probe_{name}" for name in PROBES]] in groups

    p.select_option(".attnscope-atlas-score", "probe_induction")
    induction = atlas.probes.scores["induction"]
    shown = p.evaluate(CELLS)
    assert len(shown) == LAYERS * HEADS
    for cell in shown:
        value = induction[cell["layer"], cell["head"]]
        assert cell["value"] == pytest.approx(value, abs=1e-6) and cell["text"] == f"{value:.2f}"
        assert cell["colour"] == colour(cell["value"])
    rows = p.evaluate(ROWS, ".attnscope-atlas-heads")
    assert [float(r["probe_induction"]) for r in rows] == pytest.approx(
        sorted(induction.reshape(-1), reverse=True), abs=1e-6
    )
    p.click('.attnscope-atlas-heads button[data-key="probe_duplicate"]')
    duplicate = [float(r["probe_duplicate"]) for r in p.evaluate(ROWS, ".attnscope-atlas-heads")]
    assert duplicate == pytest.approx(sorted(atlas.probes.scores["duplicate"].reshape(-1), reverse=True), abs=1e-6)
    best = np.unravel_index(np.argmax(induction), induction.shape)
    p.click(f'.attnscope-atlas-cell[data-layer="{best[0]}"][data-head="{best[1]}"]')
    assert f"induction {induction[best]:.3f}" in p.text_content(".attnscope-atlas-selected")
    summary = " ".join(p.text_content(".attnscope-atlas-probes").split())
    assert "8 sequences of 50 random tokens, each repeated 2 times (seed 0)" in summary
    assert "mean log-probability -2.56 on the repeated tokens against -14.24 on their first occurrence" in summary
    assert page.errors == [] and page.blocked == []


def test_an_atlas_without_probes_offers_no_probe_scores(page, tmp_path, default_model):
    p = open_page(page, tmp_path, atlas_page(constructed_atlas(default_model.name)))
    assert p.query_selector(".attnscope-atlas-probes") is None
    assert p.query_selector('.attnscope-atlas-score option[value^="probe_"]') is None
    assert page.errors == []
