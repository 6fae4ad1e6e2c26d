"""The model view ES module (its bundle, static/bundles/model_view.js: the widget's _esm) on its own, with a stand-in
model."""

from __future__ import annotations

import base64
import json

import numpy as np

from attnscope.views import payload_from_arrays
from attnscope.views.html import bundle

from .stand_in_model import install as install_stand_in_model

TOKENS = ["[CLS]", "the", "cat", "sat", "[SEP]"]

# The stand-in model (stand_in_model.py). With `lazy`, layers start missing and arrive as custom messages when
# the module asks and `window.answer` answers (like PayloadWidget with eager = False).
MOUNT = """
async ([source, header, layers, lazy]) => {
  const module = await import("data:text/javascript;base64," + source);
  const bytes = (b64) => { const s = atob(b64); const u = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i); return new DataView(u.buffer); };
  const full = Object.fromEntries(Object.entries(layers).map(([role, list]) => [role, list.map(bytes)]));
  const given = lazy ? Object.fromEntries(Object.entries(full).map(([r, l]) => [r, l.map(() => null)])) : full;
  const values = { header, layers: given, layer: null, heads: [], style: "auto", theme: "auto" };
  window.model = window.standInModel(values);
  window.answer = () => { for (const msg of window.sent.splice(0)) window.fire("msg:custom",
    { type: msg.type, role: msg.role, indices: msg.indices }, msg.indices.map((i) => full[msg.role][i])); };
  window.cleanup = module.default.render({ model: window.model, el: document.getElementById("host") });
  return typeof module.default.render === "function" && module.render === undefined;  // anywidget: default export only
}
"""


def weights() -> np.ndarray:
    rng = np.random.default_rng(5)
    e = np.exp(rng.normal(size=(3, 1, 4, 5, 5)) * 3)
    return e / e.sum(-1, keepdims=True)  # (layers, batch, heads, query, key)


def mount(page, lazy: bool = False, **options):
    payload = payload_from_arrays(list(weights()), TOKENS, **options)
    page.page.set_content("<!DOCTYPE html><div id='host'></div>")
    install_stand_in_model(page.page)
    source = base64.b64encode(bundle("model_view").encode()).decode()
    assert page.page.evaluate(MOUNT, [source, json.dumps(payload.header()), payload.layers_base64(), lazy]) is True
    return page.page.locator("#host .attnscope-mv"), payload


def last_sets(page) -> dict:
    return dict((k, v) for k, v in page.page.evaluate("window.sets"))


def counts(root) -> list[int]:
    return root.evaluate("r => [...r.querySelectorAll('.attnscope-mv-cell')].map((c) => Number(c.dataset.drawn))")


def test_module_renders_every_head_from_dataview_layers(page):
    root, payload = mount(page)
    assert root.get_attribute("data-ready") == "true"
    assert counts(root) == [int(n) for n in (payload.decoded("encoder") > 0.01).sum(axis=(2, 3)).ravel()]
    assert page.errors == [] and page.blocked == []


def test_selection_is_written_back_to_the_model(page):
    root, _ = mount(page, include_heads=[1, 3])
    page.page.click("#host .attnscope-mv-cell[data-layer='2'][data-head='3']")
    sets = last_sets(page)
    assert (sets["stack"], sets["layer"], sets["heads"], sets["token"]) == ("encoder", 2, [3], None)  # model numbers
    page.page.hover("#host .attnscope-mv-keys .attnscope-mv-token[data-index='2']")
    assert last_sets(page)["token"] == {"side": "key", "index": 2}
    page.page.select_option("#host .attnscope-mv-style", "matrix")
    page.page.check("#host .attnscope-mv-hide-special")
    sets = last_sets(page)
    assert (sets["thumbnails"], sets["hide_special"], sets["token"]) == ("matrix", True, None)
    page.page.keyboard.press("Escape")
    sets = last_sets(page)
    assert (sets["layer"], sets["heads"]) == (None, [])
    assert page.page.evaluate("window.saves") >= 4


def test_changes_from_python_open_cells_redraw_and_cleanup_detaches(page):
    root, payload = mount(page)
    page.page.evaluate("window.pySet('layer', 1); window.pySet('heads', [2])")
    assert (root.get_attribute("data-layer"), root.get_attribute("data-head")) == ("1", "2")
    assert int(root.get_attribute("data-detail-drawn")) == int((payload.decoded("encoder")[1, 2] > 0.01).sum())
    page.page.evaluate("window.sets = []; window.pySet('thumbnails', 'matrix'); window.pySet('threshold', 0.3)")
    assert root.get_attribute("data-style") == "matrix"
    assert counts(root) == [int(n) for n in (payload.decoded("encoder") > 0.3).sum(axis=(2, 3)).ravel()]
    assert page.page.evaluate("window.sets") == []  # changes from Python are not echoed back
    page.page.evaluate("window.pySet('theme', 'dark')")
    assert root.get_attribute("data-theme") == "dark"
    page.page.evaluate("window.pySet('merge_subwords', true)")  # one word per token here: the same weights
    assert root.get_attribute("data-units") == "words" and root.locator(".attnscope-mv-words").is_checked()
    assert counts(root) == [int(n) for n in (payload.decoded("encoder") > 0.3).sum(axis=(2, 3)).ravel()]
    assert page.page.evaluate("window.sets") == []
    page.page.evaluate("window.pySet('layer', null); window.pySet('heads', [])")
    assert root.get_attribute("data-layer") == "" and root.locator(".attnscope-mv-detail").is_hidden()
    page.page.evaluate("window.pySet('layer', 2)")  # a layer alone opens its first head and says so
    assert root.get_attribute("data-head") == "0" and last_sets(page)["heads"] == [0]
    page.page.evaluate("window.cleanup()")
    assert page.page.locator("#host .attnscope-mv").count() == 0
    page.page.evaluate("window.pySet('layer', 0); window.pySet('thumbnails', 'lines')")  # no listener left to throw
    assert page.errors == []


def test_missing_layers_are_asked_for_and_drawn_when_they_arrive(page):
    root, payload = mount(page, lazy=True)
    requests = page.page.evaluate("window.sent")
    assert sorted(r["indices"][0] for r in requests) == [0, 1, 2]
    assert {r["type"] for r in requests} == {"attnscope-layers"}
    assert root.get_attribute("data-ready") is None and root.get_attribute("data-drawn") == "0"
    page.page.evaluate("window.answer()")
    assert root.get_attribute("data-ready") == "true"
    assert int(root.get_attribute("data-drawn")) == int((payload.decoded("encoder") > 0.01).sum())
    assert page.errors == []
