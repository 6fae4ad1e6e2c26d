"""Aggregation methods are defined once (`analysis.methods`): `aggregate`, the views' payload (whose
header carries the labels the browser shows) and the API's schema all read them from there."""

from __future__ import annotations

from attnscope.analysis import METHODS, methods
from attnscope.server.schemas import AttentionRequest
from attnscope.views import payload_from_arrays
from attnscope.views.aggregated import CARRIED, VIEW_AGGREGATIONS

from .test_views_model import TOKENS, softmax_layers


def test_the_payload_header_carries_each_offered_method_with_its_label_from_python():
    header = payload_from_arrays(softmax_layers(), TOKENS, aggregations=["rollout"]).header()
    offered = header["stacks"][0]["aggregation_methods"]
    assert [m["name"] for m in offered] == ["raw", "mean", "rollout"]
    assert [(m["label"], m["about"]) for m in offered] == [
        (methods.BY_NAME[m["name"]].label, METHODS[m["name"]]) for m in offered
    ]
    assert [m["per_head"] for m in offered] == [True, False, False]
    assert offered[2]["note"] == "every head combined"


def test_a_stack_of_one_head_offers_no_mean():
    header = payload_from_arrays(softmax_layers(heads=1), TOKENS, aggregations=[]).header()
    assert [m["name"] for m in header["stacks"][0]["aggregation_methods"]] == ["raw"]


def test_the_views_and_the_api_name_the_methods_of_analysis_methods():
    assert VIEW_AGGREGATIONS == ("raw", "mean", *CARRIED) == ("raw", "mean", "rollout", "value_norm", "value_norm_sum")
    assert methods.NAMES == tuple(METHODS)
    schema = AttentionRequest.model_json_schema()["properties"]["aggregations"]
    assert tuple(schema["items"]["enum"]) == CARRIED
