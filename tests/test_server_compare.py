"""The app's "compare with" route (``POST /api/compare``, B5): one text through two served models as the diff view's
payload, its values checked against the library, and every bad request a 4xx in the one error shape (in process)."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from fastapi.testclient import TestClient

import attnscope
from attnscope.quantise import quantise
from attnscope.server import AppState, create_app
from attnscope.server.compare_routes import compare_memory
from attnscope.server.state import Limits
from attnscope.views.compression import inflate
from attnscope.views.diff_payload import diff_payload

from .conftest import PUB
from .zeroed_model import ZEROED


@pytest.fixture(scope="module")
def zeroed(zeroed_path):
    """The zeroed copy loaded from its folder, as `attnscope serve --model FOLDER` loads it."""
    return attnscope.load(str(zeroed_path))


@pytest.fixture(scope="module")
def served(default_model, zeroed, tiny):
    """default, the zeroed copy (served as "zeroed-2-5"), tiny GPT-2 (another tokenizer) and tiny BART."""
    state = AppState(models={})
    state.add_model("default", default_model)
    state.add_model(zeroed.name, zeroed)
    state.add_model("gpt2", tiny("gpt2"))
    state.add_model("bart", tiny("bart"))
    with TestClient(create_app(state), raise_server_exceptions=False) as client:
        yield client


def error(response, status: int, code: str, field: str | None) -> str:
    body = response.json()
    assert response.status_code == status and set(body) == {"error"}, body
    assert (body["error"]["status"], body["error"]["code"], body["error"]["field"]) == (status, code, field), body
    return body["error"]["message"]


def side(payload: dict, name: str) -> np.ndarray:
    """Side ``name`` ("a" or "b") of the payload's layers as bytes, (layers, heads, units, units)."""
    header = payload["header"]
    assert header["encoding"]["compression"] == "deflate-raw"
    u = len(header["units"])
    heads = header["shape_a" if name == "a" else "shape_b"][1]
    return np.stack(
        [
            np.frombuffer(inflate(base64.b64decode(data), "deflate-raw"), dtype=np.uint8).reshape(heads, u, u)
            for data in payload["layers"][name]
        ]
    )


def test_the_default_model_compared_with_itself_gives_zero_everywhere(served, default_model):
    response = served.post("/api/compare", json={"model": "default", "compare": "default", "text": PUB})
    assert response.status_code == 200, response.text
    body = response.json()
    header = body["payload"]["header"]
    name = default_model.label  # served under its hub id, answering to "default" too
    assert (body["model"], body["compare"], body["level"]) == (name, name, "token")
    assert header["shape_a"] == header["shape_b"] == [6, 12]
    assert np.array_equal(header["distances"], np.zeros((6, 12)))
    assert all(m[:2] == m[2:4] and m[4] == 0 for m in header["matching"]) and len(header["matching"]) == 72
    assert header["unaligned_a"] == header["unaligned_b"] == []
    assert np.array_equal(side(body["payload"], "a"), side(body["payload"], "b"))


def test_the_zeroed_head_is_the_most_changed_of_its_layer_and_the_payload_is_the_librarys(
    served, default_model, zeroed
):
    response = served.post("/api/compare", json={"model": "default", "compare": "zeroed-2-5", "text": PUB})
    assert response.status_code == 200, response.text
    payload = response.json()["payload"]
    distances = np.array(payload["header"]["distances"])
    layer, head = ZEROED
    assert int(np.argmax(distances[layer])) == head and distances[layer, head] > 0.1
    assert np.all(distances[:layer] == 0)  # nothing before the changed layer moves
    expected = attnscope.compare_models(default_model, zeroed, PUB)
    assert np.allclose(distances, expected.distances, atol=1e-6)
    assert np.array_equal(side(payload, "a"), quantise(expected.attention_a))
    assert np.array_equal(side(payload, "b"), quantise(expected.attention_b))
    expected.model_a, expected.model_b = default_model.label, "zeroed-2-5"
    header = dict(payload["header"])
    assert header.pop("encoding")["compression"] == "deflate-raw"
    assert header == {k: v for k, v in diff_payload(expected).header.items() if k != "encoding"}
    assert str(zeroed.name) not in response.text  # the served name, never the folder's path


def test_two_tokenizers_compare_at_the_word_level_naming_what_did_not_align(served, default_model, tiny):
    response = served.post("/api/compare", json={"model": "default", "compare": "gpt2", "text": PUB})
    assert response.status_code == 200, response.text
    header = response.json()["payload"]["header"]
    expected = attnscope.compare_models(default_model, tiny("gpt2"), PUB)
    assert response.json()["level"] == header["level"] == "word"
    assert header["units"] == expected.alignment.labels
    unaligned = [(u["position"], u["token"]) for u in header["unaligned_a"]]
    assert unaligned == [(p, expected.alignment.tokens_a[p]) for p in expected.alignment.unaligned_a]
    assert unaligned[0] == (0, "[CLS]") and unaligned[-1][1] == "[SEP]"
    assert header["distances"] is None and header["shape_b"] == list(expected.shape_b)
    assert [m[:4] for m in header["matching"]] == [
        [m.layer_a, m.head_a, m.layer_b, m.head_b] for m in expected.matching
    ]


def test_a_comparison_over_the_memory_one_request_may_take_is_refused_before_it_runs(default_model):
    text = " ".join(["word"] * 300)
    tokens = len(attnscope.capture(default_model, text, fields=["attentions"], top_k=0).tokens)
    needed = compare_memory(default_model, "encoder", tokens, default_model, "encoder", tokens)
    state = AppState(models={}, limits=Limits(memory_bytes=needed // 2))
    state.add_model("default", default_model)
    with TestClient(create_app(state), raise_server_exceptions=False) as client:
        assert client.post("/api/attention", json={"model": "default", "text": text}).status_code == 200
        message = error(
            client.post("/api/compare", json={"model": "default", "compare": "default", "text": text}),
            400,
            "too_many_tokens",
            "text",
        )
        assert f"comparing {tokens} tokens of model {default_model.label!r}" in message
        assert f"shorten the text to about {int(tokens / 2**0.5)} tokens" in message


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"compare": "nope"}, 404, "unknown_model", "compare"),
        ({"model": "nope"}, 404, "unknown_model", "model"),
        ({"text": " ".join(["word"] * 600)}, 400, "too_many_tokens", "text"),
        ({"compare": "bart", "stack_b": "cross"}, 400, "incompatible_stacks", "stack_b"),
        ({"stack_b": "cross"}, 400, "incompatible_stacks", "stack_b"),
        ({"stack_a": "decoder"}, 400, "no_such_stack", "stack_a"),
        ({"compare": "bart", "stack_b": "decoder"}, 400, "needs_target", "stack_b"),
        ({"compare": "gpt2", "level": "token"}, 400, "tokens_differ", "level"),
        ({"compare": "gpt2", "text": "\u200b"}, 400, "invalid_input", "text"),  # no word of A: nothing aligns
        ({"level": "letters"}, 422, "validation_error", "level"),
        ({"text": ""}, 422, "validation_error", "text"),
        ({"compare": 3}, 422, "validation_error", "compare"),
        ({"mask": [1]}, 422, "validation_error", "mask"),
    ],
)
def test_bad_compare_requests_get_a_4xx_in_the_one_shape(served, body, status, code, field):
    request = {"model": "default", "compare": "default", "text": PUB, **body}
    message = error(served.post("/api/compare", json=request), status, code, field)
    assert message


def test_the_openapi_schema_lists_the_served_models_for_both_sides(served):
    properties = served.get("/openapi.json").json()["components"]["schemas"]["CompareRequest"]["properties"]
    assert "default" in properties["model"]["enum"] and properties["compare"]["enum"] == properties["model"]["enum"]
