"""A causal decoder in the server: masking refused with the reason, Continue (``POST /api/continue``) answering as
``POST /api/attention`` does for prompt plus continuation, and its errors in the one shape (tiny GPT-2, in process)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

import attnscope
from attnscope.server import AppState, create_app
from attnscope.server.state import Limits

from .payload_decode import decode_layers

TEXT = "Hello there, general Kenobi."
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def served(default_model, tiny):
    """default (an encoder), tiny GPT-2 (128 positions) as "gpt2", up to 4,096 tokens per input."""
    state = AppState(models={}, limits=Limits(max_tokens=4096))
    state.add_model("default", default_model)
    state.add_model("gpt2", tiny("gpt2"))
    with TestClient(create_app(state), raise_server_exceptions=False) as client:
        yield client


def error(response, status: int, code: str, field: str | None) -> str:
    body = response.json()
    assert response.status_code == status and set(body) == {"error"}, body
    assert (body["error"]["status"], body["error"]["code"], body["error"]["field"]) == (status, code, field), body
    return body["error"]["message"]


@pytest.mark.parametrize("route", ["/api/attention", "/api/predictions"])
def test_masking_a_causal_models_input_is_refused_with_the_reason(served, route):
    body = {"model": "gpt2", "text": TEXT, "mask": [1], **({"position": 0} if route.endswith("predictions") else {})}
    message = error(served.post(route, json=body), 400, "causal_model_no_masking", "mask")
    assert "a causal model predicts the next token" in message and "leave mask out" in message
    info = next(m for m in served.get("/api/models").json() if "gpt2" in m["aliases"])
    assert info["masking_refused"] == message
    assert next(m for m in served.get("/api/models").json() if "default" in m["aliases"])["masking_refused"] is None


def test_continue_answers_with_prompt_and_generated_tokens_as_attnscope_generate_does(served, tiny):
    cap = attnscope.generate(tiny("gpt2"), TEXT, max_new_tokens=6, top_k=5)
    body = served.post("/api/continue", json={"model": "gpt2", "text": TEXT, "max_new_tokens": 6}).json()
    assert body["tokens"]["tokens"] == list(cap.tokens.display)
    assert body["generated"] == list(cap.tokens.generated) == list(range(body["prompt_tokens"], len(cap.tokens)))
    assert (body["predictions_mode"], body["do_sample"], body["seed"]) == ("next", False, None)
    for entry in body["predictions"]:
        expected = cap.top_k(entry["position"])
        assert [c["token"] for c in entry["candidates"]] == [t for t, _ in expected]
        assert [c["probability"] for c in entry["candidates"]] == pytest.approx([p for _, p in expected], abs=1e-5)
    sequence = next(iter(body["payload"]["header"]["sequences"].values()))
    assert sequence["generated"] == body["generated"]
    layers = decode_layers(body["payload"], "decoder")
    assert layers.shape[-2:] == (len(cap.tokens), len(cap.tokens))
    assert abs(layers - np.asarray(cap.attentions)).max() <= 1 / 510 + 1e-6


def test_a_long_continuation_is_answered_with_the_long_views_payload_and_its_layers(served, tiny, monkeypatch):
    from attnscope.server import token_limits
    from attnscope.views.long_payload import DEFAULT_TOP_K, capture_payload

    monkeypatch.setattr(token_limits, "DENSE_VIEW_BYTES", 1)  # every input is drawn by the long-context view
    cap = attnscope.generate(tiny("gpt2"), TEXT, max_new_tokens=6, top_k=5)
    body = served.post("/api/continue", json={"model": "gpt2", "text": TEXT, "max_new_tokens": 6}).json()
    assert body["tokens"]["tokens"] == list(cap.tokens.display) and body["generated"] == list(cap.tokens.generated)
    assert body["payload"]["layers"] == {} and body["long_view"]["top_k"] == DEFAULT_TOP_K
    expected = capture_payload(cap, top_k=DEFAULT_TOP_K)
    for layer in range(cap.attentions.shape[0]):
        answer = served.get(f"/api/attention/{body['long_view']['id']}/layers/decoder/{layer}")
        assert answer.status_code == 200 and answer.content == expected.layer_bytes("decoder", layer)
    json = {"model": "gpt2", "text": TEXT, "max_new_tokens": 6, "aggregations": ["rollout"]}
    refused = error(served.post("/api/continue", json=json), 400, "not_offered_at_length", "aggregations.0")
    assert "not offered" in refused


def test_seeded_sampling_gives_the_same_tokens_for_the_same_seed_and_grows_the_same_run(served):
    def tokens(n: int, seed: int) -> list[str]:
        json = {"model": "gpt2", "text": TEXT, "max_new_tokens": n, "do_sample": True, "seed": seed}
        return served.post("/api/continue", json=json).json()["tokens"]["tokens"]

    first = tokens(5, 3)
    assert tokens(5, 3) == first and tokens(5, 4) != first
    assert tokens(9, 3)[: len(first)] == first  # Continue once more: the same run, 4 tokens further


def test_continue_past_the_models_positions_says_how_many_tokens_may_follow(served, tiny):
    prompt = len(attnscope.capture(tiny("gpt2"), TEXT).tokens)
    body = {"model": "gpt2", "text": TEXT, "max_new_tokens": 128 - prompt + 1}
    message = error(served.post("/api/continue", json=body), 400, "past_model_positions", "max_new_tokens")
    name = tiny("gpt2").label
    assert message == (
        f"the prompt is {prompt} tokens long and max_new_tokens is {128 - prompt + 1}: model {name!r} takes at "
        f"most 128 positions; ask for at most {128 - prompt} new tokens or shorten the prompt"
    )
    assert served.post("/api/continue", json={**body, "max_new_tokens": 128 - prompt}).status_code == 200


def test_continue_past_the_servers_tokens_per_input_is_refused(default_model, tiny):
    state = AppState(models={}, limits=Limits(max_tokens=24))
    state.add_model("gpt2", tiny("gpt2"))
    with TestClient(create_app(state), raise_server_exceptions=False) as client:
        prompt = len(attnscope.capture(tiny("gpt2"), TEXT).tokens)
        json = {"model": "gpt2", "text": TEXT, "max_new_tokens": 20}
        message = error(client.post("/api/continue", json=json), 400, "too_many_tokens", "max_new_tokens")
        assert f"ask for at most {24 - prompt} new tokens" in message
        long = {**json, "text": " ".join(["word"] * 30)}
        assert "nothing can follow it" in error(client.post("/api/continue", json=long), 400, "too_many_tokens", "text")


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"model": "default"}, 400, "not_a_causal_model", "model"),
        ({"seed": 3}, 400, "seed_without_sampling", "seed"),
        ({"max_new_tokens": 0}, 422, "validation_error", "max_new_tokens"),
        ({"max_new_tokens": 201}, 422, "validation_error", "max_new_tokens"),
        ({"mask": [1]}, 422, "validation_error", "mask"),
        ({"model": "nope"}, 404, "unknown_model", "model"),
        ({"heads": [9]}, 400, "invalid_input", "heads.0"),
    ],
)
def test_bad_continue_requests_get_a_4xx_in_the_one_shape(served, body, status, code, field):
    error(served.post("/api/continue", json={"model": "gpt2", "text": TEXT, **body}), status, code, field)


def test_make_run_serves_the_default_model_and_smollm2():
    dry = subprocess.run(
        ["make", "-n", "-o", "venv", "-o", ".venv/.installed-run", "run"], cwd=ROOT, capture_output=True, text=True
    )
    assert dry.returncode == 0, dry.stderr
    command = next(line for line in dry.stdout.splitlines() if "attnscope serve" in line)
    assert re.search(r"attnscope serve --model default --model smollm2 --port 8000$", command), command
