"""Long prompts in the server: a 4,096-token prompt on SmolLM2 answered with the long-context head view's payload,
its layers asked for one by one (each query's strongest keys, as `analysis.long.top_keys` finds them on the same
capture), rows and exact weights on request, no dense stack materialised; the token limit per model, naming why."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from attnscope.capture.lazy import LazyAttention
from attnscope.errors import InputError
from attnscope.server import AppState, create_app
from attnscope.server.state import Limits
from attnscope.server.token_limits import memory_estimate, token_limit, too_many_tokens
from attnscope.views.long_payload import sparse_rows

from .long_context import decode_top_layer, top_keys
from .long_prompt import prompt_of

TOKENS = 4096
GUARD = 64 * 2**20
"""The most a long input's view may materialise at once here: less than one layer (604 MiB at 4,096 tokens)."""


@pytest.fixture(scope="module")
def served(smollm2, default_model):
    state = AppState(models={}, limits=Limits(max_dense_bytes=GUARD))
    state.add_model("smollm2", smollm2)
    state.add_model("default", default_model)
    with TestClient(create_app(state), raise_server_exceptions=False) as client:
        yield state, client


@pytest.fixture(scope="module")
def long_answer(served, smollm2):
    """The one 4,096-token request of this module (a capture on demand: tens of seconds on two cores)."""
    state, client = served
    response = client.post("/api/attention", json={"model": "smollm2", "text": prompt_of(smollm2, TOKENS)})
    assert response.status_code == 200, response.text
    body = response.json()
    return body, state.long_views.get(body["long_view"]["id"])


def test_a_long_prompt_is_answered_with_the_long_views_payload_and_no_layer(long_answer, smollm2):
    body, _ = long_answer
    header = body["payload"]["header"]
    assert len(body["tokens"]["tokens"]) == TOKENS
    assert body["payload"]["layers"] == {}
    assert header["lines"]["kind"] == "top_keys" and header["lines"]["k"] == 8
    assert header["lines"]["model_shape"] == {"decoder": [30, 9, TOKENS, TOKENS]}
    assert [(s["role"], s["layers"], s["heads"], s["query"], s["key"]) for s in header["stacks"]] == [
        ("decoder", 30, 9, TOKENS, TOKENS)
    ]
    assert body["long_view"]["top_k"] == 8
    assert len(body["predictions"]) == TOKENS  # the next token's, at every position, as for short inputs


@pytest.mark.parametrize("layer", [0, 17, 29])
def test_a_long_prompts_layer_is_each_querys_top_keys_of_the_same_capture(served, long_answer, layer):
    state, client = served
    body, view = long_answer
    response = client.get(f"/api/attention/{body['long_view']['id']}/layers/decoder/{layer}")
    assert response.status_code == 200 and response.headers["content-type"] == "application/octet-stream"
    lazy = view.capture.stacks["decoder"].attentions
    found = top_keys(lazy, layer, 8)
    assert response.content == sparse_rows(found.indices, found.weights, narrow=True)[0]
    rows = decode_top_layer(response.content, 9, TOKENS)
    for head, query in [(0, 0), (3, 1), (8, 2047), (4, 4095)]:  # against the row's own weights, sorted here
        weights = lazy.rows(layer, head, query, query + 1)[0]
        keys, codes, _ = rows[head * TOKENS + query]
        strongest = np.argsort(-weights, kind="stable")[: min(8, query + 1)]
        assert set(keys.tolist()) == set(strongest.tolist())
        assert codes.tolist() == np.round(weights[keys] * 255).astype(int).tolist()


def test_a_long_prompts_stack_is_never_materialised(long_answer):
    _, view = long_answer
    lazy = view.capture.stacks["decoder"].attentions
    assert isinstance(lazy, LazyAttention) and lazy.max_dense_bytes == GUARD
    with pytest.raises(InputError, match="max_dense_bytes"):  # the guard the layers above were computed under
        lazy.layer(0)


def test_rows_and_exact_weights_of_a_long_prompt_on_request(served, long_answer):
    _, client = served
    body, view = long_answer
    ident, lazy = body["long_view"]["id"], view.capture.stacks["decoder"].attentions
    band = {"role": "decoder", "layer": 5, "start": 4000, "stop": 4010}
    rows = client.post(f"/api/attention/{ident}/rows", json=band)
    found = top_keys(lazy, 5, 8, rows=range(4000, 4010))
    assert rows.status_code == 200 and rows.content == sparse_rows(found.indices, found.weights, narrow=True)[0]
    cells = [[0, 4095, 0], [8, 4095, 4095], [2, 100, 7]]
    weights = client.post(f"/api/attention/{ident}/weights", json={"role": "decoder", "layer": 5, "cells": cells})
    expected = [float(lazy.tile(5, h, [q], [k])[0, 0]) for h, q, k in cells]
    assert weights.status_code == 200  # float32 weights, computed by other blocks than a tile: to its rounding
    assert weights.json()["weights"] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("request_", "status", "code", "field", "message"),
    [
        (
            "layers/decoder/30",
            400,
            "invalid_input",
            "layer",
            "layer 30 is out of range: the decoder stack of this input has layers 0-29",
        ),
        ("layers/encoder/0", 400, "invalid_input", "role", "role must be one of decoder, got 'encoder'"),
        (
            "gone/layers/decoder/0",
            404,
            "unknown_long_view",
            "id",
            "no long input 'gone' is kept here (the server "
            "keeps the last few long inputs): ask for its attention again (POST /api/attention)",
        ),
    ],
)
def test_bad_long_view_requests_get_the_one_error_shape(served, long_answer, request_, status, code, field, message):
    _, client = served
    path = request_ if request_.startswith("gone") else f"{long_answer[0]['long_view']['id']}/{request_}"
    response = client.get(f"/api/attention/{path}")
    assert response.status_code == status
    assert response.json() == {"error": {"status": status, "code": code, "message": message, "field": field}}


def test_aggregations_that_need_every_weight_are_refused_at_length_with_the_reason(served, smollm2):
    _, client = served
    text = prompt_of(smollm2, 400)
    response = client.post("/api/attention", json={"model": "smollm2", "text": text, "aggregations": ["rollout"]})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "status": 400,
        "code": "not_offered_at_length",
        "message": "aggregations 'rollout' is not offered for an input of 400 tokens, which the long-context view "
        "draws as each query's strongest keys: rollout multiplies whole layers; ask analysis.long.rollout_rows for "
        "chosen query rows",
        "field": "aggregations.0",
    }


def test_a_prompt_over_the_memory_limit_is_refused_with_the_estimate(served, smollm2):
    state, client = served
    name, kept = state.name_of(smollm2), len(state.long_views)
    response = client.post("/api/attention", json={"model": "smollm2", "text": prompt_of(smollm2, 6394)})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "status": 400,
        "code": "too_many_tokens",
        "message": f"the input is 6,394 tokens long, and its attention with model {name!r} would need about 3.00 GiB "
        "(queries and keys kept 0.55 GiB, logits and probabilities 2.34 GiB, one layer's activations 0.11 GiB), over "
        "the memory one request may take here (3.0 GiB): shorten the text to at most 6,393 tokens",
        "field": "text",
    }
    assert len(state.long_views) == kept  # refused before any capture


def test_each_model_lists_its_token_limit_and_why(served, smollm2, default_model):
    state, client = served
    listed = {m["name"]: (m["max_tokens"], m["max_tokens_reason"]) for m in client.get("/api/models").json()}
    assert listed == {
        state.name_of(smollm2): (6393, "the memory one request may take here (3.0 GiB)"),
        state.name_of(default_model): (512, f"model {state.name_of(default_model)!r} has 512 positions"),
    }


def test_the_token_limit_is_the_models_positions_when_memory_allows(smollm2):
    assert token_limit(smollm2, 64 * 2**30) == token_limit(smollm2, 64 * 2**30, 10_000)
    assert token_limit(smollm2, 64 * 2**30).tokens == smollm2.max_length == 8192
    assert too_many_tokens(smollm2, "smol", 8193, "input", 64 * 2**30) == (
        "the input is 8,193 tokens long; model 'smol' takes at most 8,192 tokens per input here (model 'smol' has "
        "8,192 positions): shorten the text"
    )
    assert too_many_tokens(smollm2, "smol", 8192, "input", 64 * 2**30) is None


def test_the_memory_estimate_is_what_a_long_capture_keeps(long_answer, smollm2):
    _, view = long_answer
    kept = sum(part.queries.nbytes + part.keys.nbytes for part in view.capture.stacks["decoder"].attentions.layers)
    assert memory_estimate(smollm2, TOKENS).parts["queries and keys kept"] == kept
