"""The explorer app's head atlas panel with a causal model, in Chromium against a real `attnscope serve`
on loopback: the server computes the index's atlas with the probe scores, and the panel colours its grid
by any of them and says the probe's size and the model's copying figure."""

from __future__ import annotations

import numpy as np
import pytest

import attnscope
from attnscope.analysis.probes import PROBES
from attnscope.atlas import ATLAS_JSON, read_atlas
from attnscope.corpus import open_corpus
from attnscope.index import BuildOptions, build_index

from ..serve_process import serving
from ..test_atlas import SNIPPET

# app: the page fixture, here on this module's server
from .test_app import AppPage, app, open_app  # noqa: F401


@pytest.fixture(scope="module")
def decoder_index(tiny_path, tmp_path_factory):
    """An index of three annotated sentences under a tiny SmolLM2-architecture (causal) model."""
    root = tmp_path_factory.mktemp("app-atlas-probes")
    (root / "snippet.conllu").write_text(SNIPPET, encoding="utf-8")
    handle = attnscope.load(str(tiny_path("smollm2")))
    build_index(open_corpus(root / "snippet.conllu"), handle, root / "index", options=BuildOptions(batch_tokens=64))
    return root / "index"


@pytest.fixture(scope="module")
def server(decoder_index, tiny_path, tmp_path_factory):
    args = ["--model", str(tiny_path("smollm2")), "--corpus", str(decoder_index)]
    with serving(args, tmp_path_factory.mktemp("serve")) as served:
        yield served.base


def test_the_atlas_panel_of_a_causal_model_colours_by_a_probe_score(app, decoder_index):
    open_app(app, "?text=Dogs bark at night.")
    page = app.page
    page.click("#atlas-toggle")
    page.wait_for_selector("#atlas[data-state=ready] .attnscope-atlas[data-ready=true]", timeout=300_000)
    atlas = read_atlas(decoder_index / ATLAS_JSON)  # written beside the index by the server
    assert atlas.probes is not None and atlas.probes.names == PROBES
    options = page.eval_on_selector_all(".attnscope-atlas-score option", "os => os.map(o => o.value)")
    assert [f"probe_{name}" for name in PROBES] == [o for o in options if o.startswith("probe_")]
    for name in ("induction", "first"):
        page.select_option(".attnscope-atlas-score", f"probe_{name}")
        cells = page.eval_on_selector_all(".attnscope-atlas-cell", "cs => cs.map(c => Number(c.dataset.value))")
        np.testing.assert_allclose(np.reshape(cells, (2, 4)), atlas.probes.scores[name], atol=1e-6)
    assert "score=probe_first" in page.url  # the choice is in the app's URL state
    summary = " ".join(page.inner_text(".attnscope-atlas-probes").split())
    copying = atlas.probes.copying
    assert "8 sequences of 50 random tokens, each repeated 2 times (seed 0)" in summary
    assert f"mean log-probability {copying.later:.2f} on the repeated tokens" in summary
    assert app.errors == []
