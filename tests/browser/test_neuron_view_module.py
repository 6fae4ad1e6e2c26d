"""The neuron view ES module (its bundle, static/bundles/neuron_view.js: the widget's _esm) on its own,
with a stand-in model as anywidget's front-end tests do: layers as DataView, lazy layers over custom
messages, the selection written back, changes from Python redrawn."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

import attnscope
from attnscope.views.html import bundle
from attnscope.views.neuron import NEURON_MESSAGE
from attnscope.views.neuron_data import CAPTURE_FIELDS

from ..conftest import PUB
from .stand_in_model import install as install_stand_in_model

# The stand-in model (stand_in_model.py). Only the selected layer is given at first, as the widget does;
# `window.reply` answers a request.
MOUNT = """
async ([source, header, arrays, selection]) => {
  const module = await import("data:text/javascript;base64," + source);
  const asView = (b64) => { const s = atob(b64); const u = new Uint8Array(s.length + 3);
    for (let i = 0; i < s.length; i++) u[i + 3] = s.charCodeAt(i); return new DataView(u.buffer, 3, s.length); };
  const values = { header, arrays: Object.fromEntries(Object.entries(arrays).map(([role, list]) =>
    [role, list.map((b64, i) => (i === selection.layer ? asView(b64) : null))])), ...selection };
  window.layers = arrays; window.asView = asView;
  window.model = window.standInModel(values);
  window.reply = (msg) =>
    window.fire("msg:custom", msg, msg.indices.map((i) => window.asView(window.layers[msg.role][i])));
  window.cleanup = module.default.render({ model: window.model, el: document.getElementById("host") });
  return typeof module.default.render === "function" && module.render === undefined;  // anywidget: default export only
}
"""


@pytest.fixture(scope="module")
def cap(default_model):
    return attnscope.capture(default_model, PUB, fields=CAPTURE_FIELDS)


def mount(page, cap):
    view = attnscope.neuron_view(cap, layer=0, head=1, query=2)
    state = view.html_state()
    selection = {k: state[k] for k in ("stack", "layer", "head", "token", "display_mode")}
    page.page.set_content("<!DOCTYPE html><div id='host'></div>")
    install_stand_in_model(page.page)
    source = base64.b64encode(bundle("neuron_view").encode()).decode()
    arrays = view.neuron.layers_base64()  # plain bytes, as the widget's buffers are (a page's are deflated)
    assert page.page.evaluate(MOUNT, [source, json.loads(json.dumps(view.header)), arrays, selection]) is True
    return page.page.locator("#host .attnscope-nv")


def softmax(root) -> np.ndarray:
    return np.array(root.locator("[data-kind='softmax']").evaluate_all("ns => ns.map(n => Number(n.dataset.value))"))


def test_module_draws_from_dataview_bytes_with_a_stand_in_model(page, cap):
    root = mount(page, cap)
    assert root.get_attribute("data-ready") == "true"
    assert (root.get_attribute("data-layer"), root.get_attribute("data-head"), root.get_attribute("data-query")) == (
        "0",
        "1",
        "2",
    )
    np.testing.assert_allclose(softmax(root), cap.attentions[0, 1, 2], atol=1e-5)
    assert page.page.evaluate("window.sent") == [] and page.errors == [] and page.blocked == []


def test_a_missing_layer_is_asked_for_and_drawn_when_it_arrives(page, cap):
    root = mount(page, cap)
    page.page.select_option("#host .attnscope-nv-layer", "4")
    assert page.page.evaluate("window.sent") == [{"type": NEURON_MESSAGE, "role": "encoder", "indices": [4]}]
    assert root.get_attribute("data-loading") == "true" and root.locator("svg").count() == 0
    page.page.evaluate(f"window.reply({{ type: '{NEURON_MESSAGE}', role: 'encoder', indices: [4] }})")
    assert root.get_attribute("data-loading") == "false"
    np.testing.assert_allclose(softmax(root), cap.attentions[4, 1, 2], atol=1e-5)
    page.page.select_option("#host .attnscope-nv-layer", "0")
    page.page.select_option("#host .attnscope-nv-layer", "4")
    assert len(page.page.evaluate("window.sent")) == 1  # each layer is asked for once


def test_selection_is_written_back_to_the_model(page, cap):
    root = mount(page, cap)
    page.page.select_option("#host .attnscope-nv-head", "7")
    root.locator(".nv-query[data-index='9']").click()
    sets = dict((k, v) for k, v in page.page.evaluate("window.sets"))
    assert sets == {"stack": "encoder", "layer": 0, "head": 7, "token": {"side": "query", "index": 9}, "filter": "all"}
    assert page.page.evaluate("window.saves") == 2
    np.testing.assert_allclose(softmax(root), cap.attentions[0, 7, 9], atol=1e-5)


def test_changes_from_python_redraw_and_cleanup_detaches(page, cap):
    root = mount(page, cap)
    page.page.evaluate("window.pySet('head', 3); window.pySet('token', {side: 'query', index: 5})")
    assert (root.get_attribute("data-head"), root.get_attribute("data-query")) == ("3", "5")
    assert page.page.locator("#host .attnscope-nv-head").input_value() == "3"
    np.testing.assert_allclose(softmax(root), cap.attentions[0, 3, 5], atol=1e-5)
    page.page.evaluate("window.pySet('display_mode', 'dark')")
    assert "attnscope-nv-dark" in root.get_attribute("class")
    assert page.page.evaluate("window.sets") == []  # Python's changes are not echoed back
    page.page.evaluate("window.cleanup()")
    assert page.page.locator("#host .attnscope-nv").count() == 0
    page.page.evaluate(
        f"window.pySet('layer', 2); window.reply({{type: '{NEURON_MESSAGE}', role: 'encoder', indices: [2]}})"
    )
    assert page.errors == []
