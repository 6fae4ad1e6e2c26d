"""BertViz's notebooks, ported: every view their calls display draws offline, showing what the model computed.

The notebook of every scenario (`bertviz_notebooks`) ran once in a real kernel; for each scenario, the
static HTML copies of all the views its cells displayed (a call in a helper function, in a loop over
layers, followed by a statement, as the cell's value) are opened together in Chromium, with the network
refused. Each must draw with no console error: the head view the called layer's lines above the threshold
and the token labels of the tokens given, the model view every layer × head thumbnail (or the one layer
a loop asked for) with its lines, the neuron view the called layer and head with the model's softmax row.
The reference is the scenario's own setup code run here, in the test's process: transformers' attention.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import transformers

from attnscope.capture.loading import quiet_transformers
from attnscope.views import page as html_page

from ..bertviz_notebooks import SCENARIOS, SENTENCE_A, SENTENCE_B, TARGET, attnscope_views, cells_of
from .test_head_view import expected_lines
from .test_model_view import drawn_per_cell
from .test_neuron_view import shown

THRESHOLD = 0.01
ROOTS = {"head": ".attnscope-hv", "model": ".attnscope-mv", "neuron": ".attnscope-nv"}


def reference(scenario, models: dict[str, str]) -> tuple[np.ndarray, list[str]]:
    """The scenario's setup run here: (layers, heads, query, key) weights and the token strings of the
    stack its views show first."""
    namespace = {
        "AutoTokenizer": transformers.AutoTokenizer,
        "MODELS": models,
        "SENTENCE_A": SENTENCE_A,
        "SENTENCE_B": SENTENCE_B,
        "TARGET": TARGET,
    }
    with quiet_transformers(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Recommended: pip install sacremoses")
        exec(scenario.setup, namespace)
        attention, tokens = eval(scenario.shown, namespace)
    return np.stack([a[0].detach().numpy() for a in attention]), list(tokens)


def label(token: str) -> str:
    """A token string as the view labels it, less the "##" that marks a word's continuation (the view marks
    every continuation so): without the marks that BertViz's own prettifying drops (byte-level BPE's "Ġ",
    SentencePiece's "▁", XLM's "</w>"); a lone "Ġ" or "▁" is a space, "␣"."""
    text = token.removeprefix("##").replace("Ġ", "").replace("▁", "").replace("</w>", "")
    return text or "␣"


def displayed(book, scenario):
    """(what the view must show, its static HTML) for every view the scenario's cells displayed, in order."""
    found = []
    for cell in cells_of(book, scenario.name):
        views = attnscope_views(cell)
        assert len(views) == len(cell.metadata["attnscope"]["views"]), cell.metadata["attnscope"]["variant"]
        found += [(spec, data["text/html"]) for spec, (_, _, data) in zip(cell.metadata["attnscope"]["views"], views)]
    return found


def check_head(root, spec, weights, tokens) -> None:
    layer = spec["layer"] or 0
    assert root.get_attribute("data-layer") == str(layer)
    assert int(root.get_attribute("data-lines-drawn")) == expected_lines(weights[layer], range(weights.shape[1]))
    labels = root.locator(".attnscope-hv-queries .attnscope-hv-token").all_inner_texts()
    assert [t.removeprefix("##") for t in labels] == [label(t) for t in tokens]
    assert len(labels) == weights.shape[2]


def check_model(root, spec, weights) -> None:
    layers = range(weights.shape[0]) if spec["layer"] is None else [spec["layer"]]
    decoded = np.rint(np.clip(weights.astype(np.float64), 0, 1) * 255) / 255
    assert int(root.get_attribute("data-cells")) == len(layers) * weights.shape[1]
    assert drawn_per_cell(root) == {
        (layer, head): int((decoded[layer, head] > THRESHOLD).sum())
        for layer in layers
        for head in range(weights.shape[1])
    }


def check_neuron(root, spec, weights, tokens) -> None:
    assert (root.get_attribute("data-layer"), root.get_attribute("data-head")) == (
        str(spec["layer"]),
        str(spec["head"]),
    )
    query = int(root.get_attribute("data-query"))
    np.testing.assert_allclose(shown(root)["softmax"][:, 1], weights[spec["layer"], spec["head"], query], atol=1e-5)
    assert root.locator(".nv-query").count() == len(tokens)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_every_displayed_view_draws_offline_what_the_model_computed(
    scenario, bertviz_notebook, bertviz_models, page, tmp_path
):
    views = displayed(bertviz_notebook, scenario)
    assert views
    weights, tokens = reference(scenario, bertviz_models)
    path = tmp_path / f"{scenario.name}.html"
    path.write_text(html_page([fragment for _, fragment in views]), encoding="utf-8")
    page.page.goto(path.as_uri())
    page.page.wait_for_function(f"document.querySelectorAll('[data-ready=true]').length === {len(views)}")
    hosts = page.page.locator(".attnscope-host")
    assert hosts.count() == len(views)
    for index, (spec, _) in enumerate(views):
        root = hosts.nth(index).locator(ROOTS[spec["kind"]])
        where = f"view {index}: {spec}"
        if spec["kind"] == "head":
            check_head(root, spec, weights, tokens)
        elif spec["kind"] == "model":
            check_model(root, spec, weights)
        else:
            check_neuron(root, spec, weights, tokens)
        assert root.get_attribute("data-ready") == "true", where
    assert page.errors == [] and page.blocked == []
