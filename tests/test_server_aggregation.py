"""POST /api/attention carries the aggregations asked for (``aggregations``, combining ``heads``) in its payload,
as `analysis.aggregate` computes them, and refuses bad heads and unknown methods by field; the payload's
header carries each sequence's words (the browser merges subwords) and masked positions."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

import attnscope
from attnscope.analysis.aggregate import aggregate, normalise_rows
from attnscope.quantise import MAX_ERROR
from attnscope.server import AppState, create_app, routes
from attnscope.views.aggregated import CARRIED, COMBINING

from .conftest import PUB
from .payload_decode import decode_layers, stack_of
from .server_fixtures import client, state  # noqa: F401 - fixtures

WORDS = "Unbelievably, the tokenisation splits words."


def post(client, **body):  # noqa: F811 - the fixture
    return client.post("/api/attention", json={"model": "default", "text": PUB, **body})


def expected_layers(cap, method: str, heads=None) -> np.ndarray:
    """The library's aggregation as the payload carries it: (layers, heads', query, key), norm rows scaled to 1."""
    result = aggregate(cap, method, heads=heads)
    weights = result.weights if result.per_head else result.weights[:, None]
    return normalise_rows(weights) if result.unit == "norm" else weights


@pytest.fixture(scope="module")
def full_capture(default_model):
    return attnscope.capture(default_model, PUB, fields="all")


@pytest.mark.parametrize("method", CARRIED)
def test_each_carried_method_decodes_to_the_library_aggregation(client, full_capture, method):
    response = post(client, aggregations=[method])
    assert response.status_code == 200, response.text
    payload = response.json()["payload"]
    assert list(payload["layers"]) == ["encoder", f"encoder/{method}"]
    weights = decode_layers(payload, f"encoder/{method}")
    expected = expected_layers(full_capture, method)
    assert weights.shape == expected.shape == (6, 12 if method == "value_norm" else 1, *expected.shape[2:])
    assert np.abs(weights - expected).max() <= MAX_ERROR + 1e-6
    stack = stack_of(payload, "encoder")
    assert stack["aggregations"] == {method: weights.shape[1]}
    assert stack["combined_heads"] == list(range(12))  # all heads by default
    assert [m["name"] for m in stack["aggregation_methods"]] == ["raw", "mean", method]
    if method == "rollout":  # rollout rows sum to 1
        assert np.allclose(weights.sum(-1), 1, atol=0.03)


def test_no_aggregations_are_carried_unless_asked(client):
    payload = post(client).json()["payload"]
    assert list(payload["layers"]) == ["encoder"] and stack_of(payload, "encoder")["aggregations"] == {}
    assert payload["header"]["selection"]["aggregation"] == "raw"


def test_combined_methods_combine_the_heads_asked_for_and_value_norms_keep_every_head(client, full_capture):
    response = post(client, aggregations=list(CARRIED), heads=[2, 7])
    assert response.status_code == 200, response.text
    payload = response.json()["payload"]
    assert stack_of(payload, "encoder")["combined_heads"] == [2, 7]
    for method in COMBINING:
        weights = decode_layers(payload, f"encoder/{method}")
        assert np.abs(weights - expected_layers(full_capture, method, heads=[2, 7])).max() <= MAX_ERROR + 1e-6
        assert np.abs(weights - expected_layers(full_capture, method)).max() > 0.05, method  # not all heads
    per_head = decode_layers(payload, "encoder/value_norm")
    assert np.abs(per_head - expected_layers(full_capture, "value_norm")).max() <= MAX_ERROR + 1e-6


def test_a_masked_pair_is_aggregated_as_captured_and_its_header_names_the_masked_position(client, default_model):
    body = post(client, text_pair="She walked home.", mask=[3], aggregations=["rollout"]).json()
    cap = attnscope.capture(default_model, PUB, "She walked home.", mask=[3], warn=False)
    assert body["tokens"]["masked"] == [3] and body["tokens"]["sentence_b_start"] == cap.tokens.sentence_b_start
    sequence = body["payload"]["header"]["sequences"]["encoder"]
    assert sequence["masked"] == [3] and sequence["sentence_b_start"] == cap.tokens.sentence_b_start
    weights = decode_layers(body["payload"], "encoder/rollout")[:, 0]
    assert np.abs(weights - aggregate(cap, "rollout").weights).max() <= MAX_ERROR + 1e-6
    assert post(client).json()["payload"]["header"]["sequences"]["encoder"]["masked"] == []


@pytest.mark.parametrize(
    "heads, field, words", [([1, 1], "heads.1", "head 1 more than once"), ([0, 12], "heads.1", "heads 0-11")]
)
def test_bad_heads_are_refused_by_entry_before_the_model_runs(client, monkeypatch, heads, field, words):
    ran: list[str] = []
    real = routes.capture

    def counting(*args, **kwargs):
        ran.append("capture")
        return real(*args, **kwargs)

    monkeypatch.setattr(routes, "capture", counting)
    response = post(client, aggregations=["rollout"], heads=heads)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_input", field) and words in error["message"], error
    assert ran == []


@pytest.mark.parametrize(
    "body, field",
    [
        ({"aggregations": ["entropy"]}, "aggregations.0"),
        ({"aggregations": ["rollout", "raw"]}, "aggregations.1"),  # the browser makes raw and mean
        ({"aggregations": ["mean"]}, "aggregations.0"),
        ({"aggregations": "rollout"}, "aggregations"),
        ({"heads": []}, "heads"),
        ({"heads": [-1]}, "heads.0"),
    ],
)
def test_unknown_aggregations_and_malformed_heads_are_422_naming_the_field(client, body, field):
    response = post(client, **body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("validation_error", field), error


def test_a_masked_word_reads_as_its_mask_tokens(client):
    sequence = post(client, text=WORDS).json()["payload"]["header"]["sequences"]["encoder"]
    word = [i for i, w in enumerate(sequence["words"]) if w == 3]  # "tokenisation": several tokens
    assert len(word) > 1 and sequence["word_labels"][3] == "tokenisation"
    body = post(client, text=WORDS, mask=word).json()
    masked = body["payload"]["header"]["sequences"]["encoder"]
    assert masked["word_labels"][3] == "[MASK]" * len(word) and masked["words"] == sequence["words"]
    assert masked["word_labels"][0] == "Unbelievably" and masked["masked"] == body["tokens"]["masked"] == word


NASA = "The NASA Allergies made Sneezing worse at Zürich."


def test_words_read_as_typed_in_the_payload_header(client):
    sequence = post(client, text=NASA).json()["payload"]["header"]["sequences"]["encoder"]
    assert sequence["word_labels"] == ["The", "NASA", "Allergies", "made", "Sneezing", "worse", "at", "Zürich", "."]


def test_byte_level_words_read_without_their_space_and_a_space_token_is_no_part_of_a_word(tiny):
    served = AppState(models={})
    served.add_model("gpt2", tiny("gpt2"))
    text = "I love the café in Zürich 😀."
    with TestClient(create_app(served), raise_server_exceptions=False) as gpt2:
        body = gpt2.post("/api/attention", json={"model": "gpt2", "text": text}).json()
    sequence = body["payload"]["header"]["sequences"]["decoder"]
    assert sequence["word_labels"] == ["I", "love", "the", "café", "in", "Zürich", "😀."]
    tokens = attnscope.encode(tiny("gpt2"), text)
    for i, token in enumerate(sequence["tokens"]):
        if token == "␣":  # a token that stands for a space belongs to no word
            assert sequence["words"][i] is None and tokens.word_ids[i] is None
