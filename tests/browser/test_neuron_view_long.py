"""M3: the neuron view at long context in a real browser. Any query row of a 2,000-token capture on demand is shown
from its queries and keys: the figure lists a window of queries and the row's strongest keys, and its softmax is the
model's attention row."""

from __future__ import annotations

import numpy as np

import attnscope

from .conftest import open_view
from .long_fixtures import long_capture  # noqa: F401 - a fixture
from .test_neuron_view import shown

SHOWN = 32  # neuron_terms.js: SHOWN_KEYS, SHOWN_QUERIES


def check_row(root, cap, layer: int, head: int, query: int) -> None:
    """The figure shows the row's 32 strongest keys, each with the model's weight, and 32 queries around ``query``."""
    assert root.get_attribute("data-query") == str(query)
    row = cap.attentions.rows(layer, head, query, query + 1)[0]
    values = shown(root)["softmax"]
    keys = values[:, 0].astype(int)
    assert len(keys) == SHOWN and set(np.argsort(-row, kind="stable")[:SHOWN]) == set(keys)
    np.testing.assert_allclose(values[:, 1], row[keys], atol=1e-6, rtol=0)
    listed = [int(i) for i in root.locator(".nv-query").evaluate_all("ns => ns.map(n => n.dataset.index)")]
    assert len(listed) == SHOWN and query in listed and listed == sorted(listed)


def test_any_query_row_of_a_long_capture_is_shown_from_its_queries_and_keys(page, tmp_path, long_capture):
    view = attnscope.neuron_view(long_capture, layer=1, head=2, query=1500)
    root = open_view(page, tmp_path, view.to_html(), ".attnscope-nv")
    check_row(root, long_capture, 1, 2, 1500)
    assert "long input: the 32 keys with the largest softmax of the row's 1501" in root.inner_text()
    page.page.fill(".attnscope-nv-query", "1900")
    page.page.press(".attnscope-nv-query", "Enter")
    check_row(root, long_capture, 1, 2, 1900)
    page.page.select_option(".attnscope-nv-layer", "0")
    page.page.select_option(".attnscope-nv-head", "3")
    root.locator(".nv-query[data-index='1895']").click()
    check_row(root, long_capture, 0, 3, 1895)
    assert page.errors == [] and page.blocked == []
