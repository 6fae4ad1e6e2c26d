"""The head view ES module (its bundle, static/bundles/head_view.js: the widget's _esm) on its own, as anywidget's
front-end tests do: a plain page, a stand-in model."""

from __future__ import annotations

import base64
import json

import numpy as np

from attnscope.views import payload_from_arrays
from attnscope.views.html import bundle

from .stand_in_model import install as install_stand_in_model

TOKENS = ["[CLS]", "the", "cat", "sat", "[SEP]"]

# The stand-in model (stand_in_model.py) over the payload; binary layers arrive as DataView, as widget buffers
# do; null = not sent yet. `window.deliver` answers with layers as the widget does.
MOUNT = """
async ([source, header, layers]) => {
  const url = "data:text/javascript;base64," + source;
  const module = await import(url);
  const view = (b64) => { const s = atob(b64); const u = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i); return new DataView(u.buffer); };
  const values = { header, layers: Object.fromEntries(Object.entries(layers).map(([role, list]) =>
    [role, list.map((b64) => b64 === null ? null : view(b64))])) };
  window.model = window.standInModel(values);
  window.deliver = (msg, buffers) => window.fire("msg:custom", msg, buffers.map(view));
  const el = document.getElementById("host");
  window.cleanup = module.default.render({ model: window.model, el });
  return typeof module.default.render === "function" && module.render === undefined;  // anywidget: default export only
}
"""


def weights() -> np.ndarray:
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(2, 1, 3, 5, 5)) * 3
    e = np.exp(scores)
    return e / e.sum(-1, keepdims=True)  # (layers, batch, heads, query, key)


def mount(page, lazy: bool = False):
    source = bundle("head_view").encode()
    payload = payload_from_arrays(list(weights()), TOKENS)
    layers = payload.layers_base64()
    if lazy:  # as the widget does: only the selected layer at first
        layers = {role: [b if i == 0 else None for i, b in enumerate(items)] for role, items in layers.items()}
    page.page.set_content("<!DOCTYPE html><div id='host'></div>")
    install_stand_in_model(page.page)
    assert page.page.evaluate(MOUNT, [base64.b64encode(source).decode(), json.dumps(payload.header()), layers]) is True
    return page.page.locator("#host .attnscope-hv"), payload


def count(payload, layer: int, heads) -> int:
    return int((payload.decoded("encoder")[layer][list(heads)] > 0.01).sum())


def test_module_renders_from_dataview_layers_with_a_stand_in_model(page):
    root, payload = mount(page)
    assert root.get_attribute("data-ready") == "true"
    assert int(root.get_attribute("data-lines-drawn")) == count(payload, 0, range(3))
    assert page.errors == [] and page.blocked == []


def test_selection_is_written_back_to_the_model(page):
    root, payload = mount(page)
    page.page.select_option("#host .attnscope-hv-layer", "1")
    page.page.click("#host .attnscope-hv-head[data-head='0']")
    page.page.click("#host .attnscope-hv-queries .attnscope-hv-token[data-index='2']")
    sets = dict((k, v) for k, v in page.page.evaluate("window.sets"))
    assert sets["layer"] == 1 and sets["heads"] == [1, 2]
    assert sets["token"] == {"side": "query", "index": 2, "unit": "token"}
    assert page.page.evaluate("window.saves") >= 3
    assert int(root.get_attribute("data-lines-drawn")) == int(
        (payload.decoded("encoder")[1][[1, 2]][:, 2] > 0.01).sum()
    )


def test_changes_from_python_redraw_and_cleanup_detaches(page):
    root, payload = mount(page)
    page.page.evaluate("window.pySet('layer', 1); window.pySet('heads', [2])")
    assert root.get_attribute("data-layer") == "1" and root.get_attribute("data-heads") == "2"
    assert int(root.get_attribute("data-lines-drawn")) == count(payload, 1, [2])
    page.page.evaluate("window.cleanup()")
    assert page.page.locator("#host .attnscope-hv").count() == 0
    page.page.evaluate("window.pySet('layer', 0)")  # no listener left to throw on a removed view
    assert page.errors == []


def test_layers_missing_from_the_model_are_asked_for_and_drawn_on_arrival(page):
    root, payload = mount(page, lazy=True)
    assert int(root.get_attribute("data-lines-drawn")) == count(payload, 0, range(3))
    page.page.select_option("#host .attnscope-hv-layer", "1")
    assert root.get_attribute("data-loading") == "true"
    assert int(root.get_attribute("data-lines-drawn")) == 0
    assert page.page.evaluate("window.sent") == [{"type": "attnscope-layers", "role": "encoder", "indices": [1]}]
    page.page.select_option("#host .attnscope-hv-layer", "0")
    page.page.select_option("#host .attnscope-hv-layer", "1")
    assert len(page.page.evaluate("window.sent")) == 1  # asked once, not again while on its way
    layer = payload.layers_base64()["encoder"][1]
    page.page.evaluate(
        "([b]) => window.deliver({type: 'attnscope-layers', role: 'encoder', indices: [1]}, [b])", [layer]
    )
    assert root.get_attribute("data-loading") == "false"
    assert int(root.get_attribute("data-lines-drawn")) == count(payload, 1, range(3))
    assert page.errors == []
