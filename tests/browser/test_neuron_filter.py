"""V3 in a real browser: the neuron view's sentence filter against the captured attention.

A real sentence pair on the default model, shown through BertViz's ``show`` with the transformers model
and tokenizer: under each filter the query list is the queries' sentence, the key rows are the keys'
sentence, each drawn softmax is the model's attention (`attnscope.capture`) at that key, never
renormalised, and the line under the rows gives the shown keys' share of the row. The select is hidden
for one sentence; choosing a filter is written back to the widget's model, and the static copy opens
on the filter it was saved with.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

import attnscope
from attnscope.views.html import bundle
from attnscope.views.neuron import show
from attnscope.views.neuron_data import CAPTURE_FIELDS

from ..conftest import PUB
from .stand_in_model import install as install_stand_in_model
from .test_neuron_view import open_html, root_id
from .test_neuron_view_module import MOUNT

A, B = "The girl ran to a local pub.", "She wanted to escape the din."
B_START, COUNT = 10, 18
SENTENCE = {"A": list(range(0, B_START)), "B": list(range(B_START, COUNT))}
READ = """(root) => ({
  queries: [...root.querySelectorAll('.nv-query')].map((n) => Number(n.dataset.index)),
  keys: [...root.querySelectorAll('.nv-row')].map((n) => Number(n.dataset.key)),
  softmax: [...root.querySelectorAll("[data-kind='softmax']")].map((n) => Number(n.dataset.value)),
  share: [...root.querySelectorAll("[data-kind='share']")].map((n) => [Number(n.dataset.value), n.textContent]),
})"""


@pytest.fixture(scope="module")
def pair(default_model):
    return attnscope.capture(default_model, A, B, fields=CAPTURE_FIELDS)


def rows(value: str) -> tuple[list[int], list[int]]:
    """The query and key positions a filter shows."""
    if value == "all":
        return list(range(COUNT)), list(range(COUNT))
    return SENTENCE[value[0]], SENTENCE[value[1]]


def check_drawn(root, pair, value: str, layer: int, head: int) -> int:
    """Assert what is drawn under filter ``value`` against the capture; the selected query."""
    drawn, query = root.evaluate(READ), int(root.get_attribute("data-query"))
    queries, keys = rows(value)
    assert (root.get_attribute("data-filter"), drawn["queries"], drawn["keys"]) == (value, queries, keys)
    assert query in queries
    row = pair.attentions[layer, head, query]
    np.testing.assert_allclose(drawn["softmax"], row[keys], atol=1e-5, rtol=0)  # the model's row, sliced
    if value == "all":
        assert drawn["share"] == []
        return query
    [(share, text)] = drawn["share"]
    assert share == pytest.approx(sum(drawn["softmax"]), abs=1e-12)
    assert share == pytest.approx(float(row[keys].sum()), abs=1e-5) and 0 < share < 1
    prefix = f"softmax over all {COUNT} keys of the row; the {len(keys)} {value[1]} keys shown hold "
    assert text.startswith(prefix) and text.endswith(" of it")
    assert float(text[len(prefix) : -len(" of it")]) == pytest.approx(share, rel=5e-3)  # 3 significant digits
    return query


def test_each_filter_shows_its_sentences_with_the_models_softmax_over_every_key(page, tmp_path, default_model, pair):
    view = show(default_model.model, "bert", default_model.tokenizer, A, B, layer=2, head=5)
    root = open_html(page, tmp_path, view.to_html())
    select = f"#{root_id(root)} .attnscope-nv-filter"
    assert page.page.locator(select).is_visible() and root.get_attribute("data-filter") == "all"
    check_drawn(root, pair, "all", 2, 5)
    # the query moves into the new query sentence (to its first ordinary token) and stays when it is there
    for value, moved_to, click in [("AB", 1, 7), ("BB", 10, 15), ("BA", 15, 17), ("AA", 1, 0), ("all", 0, 12)]:
        page.page.select_option(select, value)
        assert check_drawn(root, pair, value, 2, 5) == moved_to
        root.locator(f".nv-query[data-index='{click}']").click()
        assert check_drawn(root, pair, value, 2, 5) == click
    page.page.select_option(f"#{root_id(root)} .attnscope-nv-layer", "4")
    page.page.select_option(select, "BA")
    check_drawn(root, pair, "BA", 4, 5)
    assert page.errors == [] and page.blocked == []


def test_the_static_copy_opens_on_its_filter_and_the_keys_move_within_the_sentence(page, tmp_path, pair):
    root = open_html(page, tmp_path, attnscope.neuron_view(pair, filter="BA", layer=1, head=3).to_html())
    assert page.page.locator(f"#{root_id(root)} .attnscope-nv-filter").input_value() == "BA"
    assert check_drawn(root, pair, "BA", 1, 3) == B_START
    root.locator(f".nv-query[data-index='{B_START}']").focus()
    for key, query in [("ArrowUp", B_START), ("End", COUNT - 1), ("ArrowDown", COUNT - 1), ("Home", B_START)]:
        page.page.keyboard.press(key)
        assert int(root.get_attribute("data-query")) == query
    assert root.locator("line.nv-pair").count() == 0  # one sentence a side: no boundary to draw
    assert page.errors == [] and page.blocked == []


def test_one_sentence_has_no_filter_to_choose(page, tmp_path, default_model):
    cap = attnscope.capture(default_model, PUB, fields=CAPTURE_FIELDS)
    root = open_html(page, tmp_path, attnscope.neuron_view(cap).to_html())
    assert not page.page.locator(f"#{root_id(root)} .attnscope-nv-filter").is_visible()
    assert root.get_attribute("data-filter") == "all" and root.locator("[data-kind='share']").count() == 0
    assert root.locator(".nv-row").count() == len(cap.tokens)
    assert page.errors == [] and page.blocked == []


def test_the_chosen_filter_is_written_back_and_pythons_is_drawn(page, pair):
    view = attnscope.neuron_view(pair, layer=0, head=1)
    state = view.html_state()
    selection = {k: state[k] for k in ("stack", "layer", "head", "token", "filter", "display_mode")}
    page.page.set_content("<!DOCTYPE html><div id='host'></div>")
    install_stand_in_model(page.page)
    source = base64.b64encode(bundle("neuron_view").encode()).decode()
    arrays = view.neuron.layers_base64()  # plain bytes, as the widget's buffers are (a page's are deflated)
    page.page.evaluate(MOUNT, [source, json.loads(json.dumps(view.header)), arrays, selection])
    root = page.page.locator("#host .attnscope-nv")
    page.page.select_option("#host .attnscope-nv-filter", "BB")
    sets = dict((k, v) for k, v in page.page.evaluate("window.sets"))
    assert sets["filter"] == "BB" and sets["token"] == {"side": "query", "index": B_START}
    view.set_state({"filter": sets["filter"], "token": sets["token"]})  # what the kernel receives
    assert view.selection["filter"] == "BB" and view.query == B_START
    check_drawn(root, pair, "BB", 0, 1)
    written = len(page.page.evaluate("window.sets"))
    page.page.evaluate("window.pySet('filter', 'AB'); window.pySet('token', {side: 'query', index: 1})")
    assert page.page.locator("#host .attnscope-nv-filter").input_value() == "AB"
    assert check_drawn(root, pair, "AB", 0, 1) == 1
    page.page.evaluate("window.pySet('token', {side: 'query', index: 12})")  # not among A's queries: ignored
    assert root.get_attribute("data-query") == "1"
    assert len(page.page.evaluate("window.sets")) == written  # Python's changes are not echoed back
    assert page.errors == [] and page.blocked == []
