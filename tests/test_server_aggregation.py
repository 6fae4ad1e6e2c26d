"""POST /api/aggregation answers with what `analysis.aggregate` computes, and refuses bad heads by field."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

import attnscope
from attnscope.analysis.aggregate import aggregate, normalise_rows
from attnscope.quantise import MAX_ERROR
from attnscope.server import AppState, create_app
from attnscope.views.sequences import sequence_from_tokens

from .conftest import PUB
from .server_fixtures import client, state  # noqa: F401 - fixtures
from .test_server_api import decode

WORDS = "Unbelievably, the tokenisation splits words."


def post(client, **body):  # noqa: F811 - the fixture
    return client.post("/api/aggregation", json={"model": "default", "text": PUB, **body})


@pytest.mark.parametrize("method", ["raw", "mean", "rollout", "value_norm", "value_norm_sum"])
def test_each_method_decodes_to_the_library_aggregation(client, default_model, method):
    response = post(client, method=method, heads=[2, 7, 9])
    assert response.status_code == 200, response.text
    body = response.json()
    expected = aggregate(attnscope.capture(default_model, PUB, fields="all"), method, heads=[2, 7, 9])
    weights = expected.weights if expected.per_head else expected.weights[:, None]
    if expected.unit == "norm":
        weights = normalise_rows(weights)
    assert body["weights"]["shape"] == list(weights.shape)
    assert body["weights"]["shape"][1] == (3 if method in ("raw", "value_norm") else 1)
    assert np.abs(decode(body["weights"]) - weights).max() <= MAX_ERROR + 1e-6
    assert (body["method"], body["unit"], body["rows_scaled"]) == (method, expected.unit, expected.unit == "norm")
    assert body["heads"] == [2, 7, 9] and body["layers"] == list(range(6))
    if method == "rollout":  # rollout rows sum to 1 and the last layer mixes every token in
        assert np.allclose(decode(body["weights"]).sum(-1), 1, atol=0.03)


def test_weighted_heads_and_weighted_rollout_use_the_given_weights(client, default_model):
    cap = attnscope.capture(default_model, PUB, fields="all")
    for method in ("weighted", "rollout"):
        body = post(client, method=method, heads=[0, 5], head_weights=[3, 1]).json()
        assert body["head_weights"] == [0.75, 0.25]
        expected = aggregate(cap, method, heads=[0, 5], head_weights=[3, 1]).weights[:, None]
        assert np.abs(decode(body["weights"]) - expected).max() <= MAX_ERROR + 1e-6


def test_words_merge_subwords_and_name_each_unit_by_its_text(client, default_model):
    body = post(client, text=WORDS, method="mean", words=True).json()
    cap = attnscope.capture(default_model, WORDS)
    expected = aggregate(cap, "mean", words=True)
    assert body["words"] is True and body["units"] == expected.query_units
    assert body["unit_text"] == ["[CLS]", "Unbelievably", ",", "the", "tokenisation", "splits", "words", ".", "[SEP]"]
    assert len(cap.tokens) > len(body["units"])  # some words are several tokens
    assert np.abs(decode(body["weights"])[:, 0] - expected.weights).max() <= MAX_ERROR + 1e-6


def test_a_masked_pair_is_aggregated_as_captured(client, default_model):
    body = post(client, text_pair="She walked home.", mask=[3], method="rollout").json()
    cap = attnscope.capture(default_model, PUB, "She walked home.", mask=[3], warn=False)
    assert body["tokens"]["masked"] == [3] and body["tokens"]["sentence_b_start"] == cap.tokens.sentence_b_start
    assert np.abs(decode(body["weights"])[:, 0] - aggregate(cap, "rollout").weights).max() <= MAX_ERROR + 1e-6


@pytest.mark.parametrize(
    "body, field, words",
    [
        ({"heads": [1, 1]}, "heads.1", "head 1 more than once"),
        ({"heads": [12]}, "heads.0", "heads 0-11"),
        ({"method": "weighted"}, "method", "needs head_weights"),
        ({"method": "mean", "head_weights": [1.0]}, "head_weights", "'weighted' and 'rollout' methods only"),
        ({"method": "weighted", "heads": [0, 1], "head_weights": [1.0]}, "head_weights", "1 number but 2 heads"),
        ({"method": "weighted", "heads": [0, 1], "head_weights": [0, 0]}, "head_weights", "all zero"),
        ({"method": "entropy"}, "method", "rollout"),
        ({"method": "rollout", "head_weights": [-1.0]}, "head_weights.0", "greater than or equal to 0"),
        ({"mask": [99]}, "mask.0", "99"),
    ],
)
def test_bad_aggregation_requests_name_the_field_and_what_is_allowed(client, body, field, words):
    response = post(client, **body)
    assert 400 <= response.status_code < 500
    error = response.json()["error"]
    assert error["field"] == field and words in error["message"], error


def test_a_masked_word_reads_as_its_mask_tokens(client):
    units = post(client, text=WORDS, method="raw", words=True).json()["units"]
    word = units[4]  # "tokenisation": several tokens
    assert len(word) > 1
    body = post(client, text=WORDS, method="raw", words=True, mask=word).json()
    assert body["unit_text"][4] == "[MASK]" * len(word) and body["units"][4] == word
    assert body["unit_text"][1] == "Unbelievably" and body["tokens"]["masked"] == word


NASA = "The NASA Allergies made Sneezing worse at Zürich."


def test_words_read_as_typed_the_same_in_the_app_and_the_notebook_views(client, default_model):
    body = post(client, text=NASA, method="mean", words=True).json()
    assert body["unit_text"] == [
        "[CLS]",
        "The",
        "NASA",
        "Allergies",
        "made",
        "Sneezing",
        "worse",
        "at",
        "Zürich",
        ".",
        "[SEP]",
    ]
    assert body["unit_text"][1:-1] == sequence_from_tokens(attnscope.encode(default_model, NASA)).word_labels


def test_byte_level_words_read_without_their_space_and_a_space_token_is_no_part_of_a_word(tiny):
    served = AppState(models={})
    served.add_model("gpt2", tiny("gpt2"))
    text = "I love the café in Zürich 😀."
    with TestClient(create_app(served), raise_server_exceptions=False) as gpt2:
        body = gpt2.post(
            "/api/aggregation", json={"model": "gpt2", "text": text, "method": "mean", "words": True}
        ).json()
    tokens = attnscope.encode(tiny("gpt2"), text)
    labels = dict(zip(map(tuple, body["units"]), body["unit_text"]))
    assert [labels[u] for u in map(tuple, body["units"]) if labels[u] != "␣"] == [
        "I",
        "love",
        "the",
        "café",
        "in",
        "Zürich",
        "😀.",
    ]
    for unit, label in labels.items():
        if label == "␣":  # a token that stands for a space is a unit of its own
            assert len(unit) == 1 and tokens.word_ids[unit[0]] is None
    assert body["unit_text"] == sequence_labels(tokens)


def sequence_labels(tokens) -> list[str]:
    """What the notebook views label each unit of ``tokens`` in word mode (a word's label, or the token)."""
    sequence = sequence_from_tokens(tokens)
    seen, labels = set(), []
    for token, word in zip(sequence.tokens, sequence.words):
        if word is None:
            labels.append(token)
        elif word not in seen:
            seen.add(word)
            labels.append(sequence.word_labels[word])
    return labels
