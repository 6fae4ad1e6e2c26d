"""One check for chosen layers, heads and positions (`attnscope.selection`), with one message format
wherever a list of head numbers is taken: the views, `aggregate`, the index's queries and the API."""

from __future__ import annotations

import pytest

import attnscope
from attnscope.analysis.aggregate import aggregate
from attnscope.errors import FieldError, InputError
from attnscope.index import Query
from attnscope.selection import check_choice, check_choices

from .conftest import PUB
from .test_views_model import TOKENS, softmax_layers


@pytest.mark.parametrize(
    "values, message, field",
    [
        ([0, 12], "head 12 is out of range: this index has heads 0-11", "heads.1"),
        ([3, 5, 3], "heads names head 3 more than once: name each head once", "heads.2"),
        ([1, "2"], "head must be an integer, got '2'", "heads.1"),
        ([1, True], "head must be an integer, got True", "heads.1"),
        (3, "heads must be a list of head numbers, got 3", "heads"),
        ("0,1", "heads must be a list of head numbers, got '0,1'", "heads"),
        (
            [],
            "heads is empty: name at least one head (this index has heads 0-11), or leave heads out for all of them",
            "heads",
        ),
    ],
)
def test_a_bad_list_of_heads_is_named_with_the_entry_at_fault(values, message, field):
    with pytest.raises(FieldError) as caught:
        check_choices("heads", values, 12, "this index", unit="head")
    assert str(caught.value) == message
    assert caught.value.field == field


def test_a_good_list_keeps_its_order_none_means_all_and_repeats_merge_only_when_asked():
    assert check_choices("heads", [7, 2], 12, "this index", unit="head") == [7, 2]
    assert check_choices("heads", None, 3, "this index", unit="head") == [0, 1, 2]
    assert check_choices("heads", [7, 2, 7], 12, "this view", unit="head", merge_repeats=True) == [2, 7]
    assert check_choices("heads", [], 12, "this view", unit="head", allow_empty=True) == []


def test_a_number_left_out_by_an_include_option_names_the_option_and_what_it_kept():
    with pytest.raises(FieldError) as caught:
        check_choice("layer", 0, 2, "the encoder attention", kept=[1, 3], kept_by="include_layers")
    assert str(caught.value) == (
        "layer 0 is not among the included layers: include_layers keeps layers 1, 3; pass one of them as layer"
    )
    assert check_choice("layer", 3, 2, "the encoder attention", kept=[1, 3], kept_by="include_layers") == 3
    assert check_choices("heads", None, 2, "the encoder attention", unit="head", kept=[2, 5]) == [2, 5]


def test_every_caller_words_a_head_named_twice_the_same_way(default_model, small_index):
    """The views, aggregate and the index (the API and the CLI go through the last two) share the message."""
    expected = "{} names head 1 more than once: name each head once"
    with pytest.raises(InputError, match=expected.format("include_heads")):
        attnscope.model_view(softmax_layers(), TOKENS, include_heads=[1, 2, 1])
    with pytest.raises(InputError, match=expected.format("heads")):
        aggregate(attnscope.capture(default_model, PUB), "mean", heads=[0, 1, 1])
    with pytest.raises(InputError, match=expected.format("heads")):
        small_index.check_query(Query("heads", 1, (0, 1, 1)))


def test_mask_positions_are_checked_in_the_order_given_and_name_their_entry(default_model):
    tokens = attnscope.encode(default_model, PUB)
    with pytest.raises(FieldError) as caught:
        attnscope.encode(default_model, PUB, mask=[3, 99])
    assert (str(caught.value), caught.value.field) == (
        f"mask position 99 is out of range: this input of {len(tokens)} tokens has mask positions 0-{len(tokens) - 1}",
        "mask.1",
    )
    with pytest.raises(FieldError) as caught:
        attnscope.encode(default_model, PUB, mask=[2, 0])
    assert (str(caught.value), caught.value.field) == (
        "mask position 0 is the special token '[CLS]': only ordinary tokens can be masked",
        "mask.1",
    )
    assert attnscope.encode(default_model, PUB, mask=[4, 2, 4]).masked == (2, 4)
