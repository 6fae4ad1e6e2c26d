"""V3: the neuron view's sentence filter (All, A→A, A→B, B→A, B→B), as the head and model views offer it.

The filter's first letter is the sentence of the query tokens that can be chosen, the second that of
the key rows shown. It is validated wherever it enters (``neuron_view``, ``show``, the widget trait),
travels in ``selection`` and in the static page's state, and moves a query outside its sentence to the
query that sentence starts on. What the browser draws under each filter is checked in
tests/browser/test_neuron_filter.py.
"""

from __future__ import annotations

import inspect

import pytest

import attnscope
from attnscope.errors import InputError
from attnscope.views.neuron import neuron_view, show
from attnscope.views.neuron_data import CAPTURE_FIELDS, SENTENCE_FILTERS

from .conftest import PUB

A, B = "The girl ran to a local pub.", "She wanted to escape the din."
B_START = 10  # [CLS] the girl ran to a local pub . [SEP] | she wanted to escape the din . [SEP]
ALLOWED = "it is one of 'all', 'AA', 'AB', 'BA', 'BB'"


@pytest.fixture(scope="module")
def pair(default_model):
    return attnscope.capture(default_model, A, B, fields=CAPTURE_FIELDS)


@pytest.fixture(scope="module")
def single(default_model):
    return attnscope.capture(default_model, PUB, fields=CAPTURE_FIELDS)


def test_the_pair_is_split_where_sentence_b_starts(pair):
    assert pair.tokens.sentence_b_start == B_START and len(pair.tokens) == 18
    view = neuron_view(pair)
    assert view.neuron.pair_start("encoder") == B_START
    assert list(view.neuron.sentence_positions("encoder", "A")) == list(range(0, 10))
    assert list(view.neuron.sentence_positions("encoder", "B")) == list(range(10, 18))


@pytest.mark.parametrize("value, query", [("all", 1), ("AA", 1), ("AB", 1), ("BA", 10), ("BB", 10)])
def test_each_filter_starts_on_the_first_ordinary_query_of_its_sentence(pair, value, query):
    view = neuron_view(pair, filter=value)
    assert view.selection == {"stack": "encoder", "layer": 0, "head": 0, "query": query, "filter": value}
    assert view.filter == view.header["selection"]["filter"] == view.html_state()["filter"] == value
    assert view.get_state()["filter"] == value  # the synced trait the module reads


def test_a_causal_pair_starts_each_filter_on_the_last_query_of_its_sentence(tiny):
    cap = attnscope.capture(tiny("gpt2"), A, B, fields=CAPTURE_FIELDS)
    b, n = cap.tokens.sentence_b_start, len(cap.tokens)
    assert 0 < b < n
    assert neuron_view(cap, filter="AB").selection["query"] == b - 1
    assert neuron_view(cap, filter="BA").selection["query"] == n - 1


def test_setting_the_filter_moves_a_query_outside_its_sentence_and_keeps_one_inside(pair):
    view = neuron_view(pair, query=3, layer=2, head=4)
    view.filter = "BB"
    assert view.selection == {"stack": "encoder", "layer": 2, "head": 4, "query": 10, "filter": "BB"}
    view.token = {"side": "query", "index": 14}
    view.filter = "BA"  # same query sentence: the query stays
    assert view.query == 14
    view.filter = "AA"
    assert view.query == 1
    view.filter = "all"
    view.token = {"side": "query", "index": 12}
    assert view.selection == {"stack": "encoder", "layer": 2, "head": 4, "query": 12, "filter": "all"}


def test_the_front_ends_filter_and_query_arrive_together(pair):
    view = neuron_view(pair)
    view.set_state({"filter": "BA", "token": {"side": "query", "index": 13}})  # what the module saves at once
    assert view.selection["filter"] == "BA" and view.query == 13


def test_a_query_outside_the_filters_sentence_is_refused(pair):
    view = neuron_view(pair, filter="BB")
    message = r"query position 3 is not shown by filter 'BB': it shows the queries of sentence B \(positions 10-17\)"
    with pytest.raises(InputError, match=message):
        view.token = {"side": "query", "index": 3}
    assert view.query == 10
    with pytest.raises(InputError, match=r"query position 12 is not shown by filter 'AB'.*\(positions 0-9\)"):
        neuron_view(pair, filter="AB", query=12)


@pytest.mark.parametrize("value", ["ab", "A→B", "", "ABC", None, 3, ["A", "B"]])
def test_a_value_that_is_no_sentence_filter_is_refused_naming_the_allowed_ones(pair, value):
    view = neuron_view(pair, filter="AB")
    with pytest.raises(InputError, match=f"filter .* is not a sentence filter: {ALLOWED}"):
        view.filter = value
    assert view.filter == "AB"
    if value is not None:  # None is neuron_view's default: "all"
        with pytest.raises(InputError, match=f"is not a sentence filter: {ALLOWED}"):
            neuron_view(pair, filter=value)


def test_a_pair_filter_needs_a_sentence_pair(single):
    message = (
        "filter 'AB' needs a sentence pair, and the encoder stack shows one text, not a sentence pair: "
        "the only filter allowed here is 'all'"
    )
    with pytest.raises(InputError, match=message):
        neuron_view(single, filter="AB")
    view = neuron_view(single, filter="all")
    for value in SENTENCE_FILTERS[1:]:
        with pytest.raises(InputError, match=f"filter '{value}' needs a sentence pair"):
            view.filter = value
    assert view.selection["filter"] == "all"


def test_only_a_stack_of_the_pair_keeps_a_pair_filter(tiny):
    view = neuron_view(tiny("t5"), A, B, target="She went home.", filter="BB")
    assert view.selection["stack"] == "encoder" and view.neuron.pair_start("encoder") is not None
    view.stack = "cross"  # decoder queries on encoder keys: no pair to filter
    assert view.selection["filter"] == "all"
    with pytest.raises(
        InputError, match="filter 'AB' needs a sentence pair, and the cross stack shows decoder queries on encoder keys"
    ):
        view.filter = "AB"
    with pytest.raises(InputError, match="filter 'BB' needs a sentence pair, and the decoder stack"):
        neuron_view(tiny("t5"), A, B, target="She went home.", stack="decoder", filter="BB")


def test_show_and_neuron_view_take_the_filter_by_keyword_only(default_model):
    for function in (show, neuron_view):
        assert inspect.signature(function).parameters["filter"].kind is inspect.Parameter.KEYWORD_ONLY
    hf, tok = default_model.model, default_model.tokenizer
    view = show(hf, "bert", tok, A, B, layer=3, head=2, filter="BA")
    assert view.selection == {"stack": "encoder", "layer": 3, "head": 2, "query": 10, "filter": "BA"}
    assert neuron_view(hf, "bert", tok, A, B, filter="AB").selection["filter"] == "AB"
    with pytest.raises(InputError, match="filter 'BB' needs a sentence pair"):
        show(hf, "bert", tok, A, filter="BB")
