"""The JSON API on encoder-decoder models (T5, BART, BERT2BERT) and a causal decoder: the attention sent is the stack
it says (an encoder-decoder's encoder self-attention), and predictions say what they are: an encoder-decoder predicts
with its decoder, so its predictions need a target text, and the API says so instead of failing."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

import attnscope
from attnscope.quantise import MAX_ERROR
from attnscope.server import AppState, create_app

from .payload_decode import decode_layers

SEQ2SEQ = ["t5", "bart", "bert2bert"]
TEXT = "Hello there"
TARGET = "Hi you"


@pytest.fixture(scope="module")
def client(tiny):
    state = AppState(models={})
    for name in [*SEQ2SEQ, "gpt2", "bert"]:
        state.add_model(name, tiny(name))
    with TestClient(create_app(state), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize("arch", SEQ2SEQ)
def test_an_encoder_decoder_sends_its_encoder_self_attention_and_says_why_there_are_no_predictions(client, tiny, arch):
    handle = tiny(arch)
    response = client.post("/api/attention", json={"model": arch, "text": TEXT})
    assert response.status_code == 200, response.text
    body = response.json()
    cap = attnscope.capture(handle, TEXT)
    encoder = cap.stack("encoder").attentions
    assert body["stack"] == "encoder" and body["tokens"]["tokens"] == cap.tokens.display
    # the payload holds the capture's stacks (the decoder's only its start token, without a target), shown first
    # the encoder's
    assert body["payload"]["header"]["selection"]["stack"] == "encoder"
    weights = decode_layers(body["payload"], "encoder")
    assert weights.shape == encoder.shape
    assert weights.shape[0] == handle.stacks["encoder"].layers != handle.stacks["decoder"].layers
    assert np.abs(weights - encoder).max() <= MAX_ERROR + 1e-6
    assert body["predictions"] is None and body["predictions_mode"] is None
    assert body["predictions_note"] == (
        f"model {handle.label!r} is an encoder-decoder: its language-model head predicts the decoder's next token, "
        "which needs a target text (the decoder's input), not the input's own tokens: POST /api/predictions with a "
        "target gives them"
    )
    # Show's aggregations read the same stack
    aggregated = client.post("/api/attention", json={"model": arch, "text": TEXT, "aggregations": ["rollout"]}).json()
    assert "encoder/rollout" in aggregated["payload"]["layers"]
    assert decode_layers(aggregated["payload"], "encoder/rollout").shape == (len(encoder), 1, *encoder.shape[2:])


@pytest.mark.parametrize("arch", SEQ2SEQ)
def test_encoder_decoder_predictions_need_a_target_and_then_are_the_decoders_next_tokens(client, tiny, arch):
    handle = tiny(arch)
    refused = client.post("/api/predictions", json={"model": arch, "text": TEXT, "position": 1})
    assert refused.status_code == 400
    assert refused.json()["error"] == {
        "status": 400,
        "code": "needs_target",
        "field": "target",
        "message": f"model {handle.label!r} is an encoder-decoder: it predicts with its decoder, the token that comes "
        "next in a target text: give target (the decoder's input) and a position among its tokens (0 is "
        "the decoder's start token)",
    }
    cap = attnscope.capture(handle, TEXT, target=TARGET, top_k=3)
    last = len(cap.decoder_tokens) - 1
    body = client.post(
        "/api/predictions", json={"model": arch, "text": TEXT, "target": TARGET, "position": last, "top_k": 3}
    ).json()
    assert (body["position"], body["token"], body["mode"]) == (last, cap.decoder_tokens.display[last], "next")
    assert [(c["token"], pytest.approx(c["probability"], abs=1e-6)) for c in body["candidates"]] == cap.top_k(last)
    outside = client.post(
        "/api/predictions", json={"model": arch, "text": TEXT, "target": TARGET, "position": last + 1}
    )
    assert outside.status_code == 400 and outside.json()["error"]["field"] == "position"
    assert outside.json()["error"]["message"] == (
        f"position {last + 1} is out of range: the target of {last + 1} tokens has positions 0-{last}"
    )


@pytest.mark.parametrize("arch, stack, mode", [("gpt2", "decoder", "next"), ("bert", "encoder", "masked")])
def test_other_models_say_which_stack_and_what_their_predictions_are(client, tiny, arch, stack, mode):
    body = client.post("/api/attention", json={"model": arch, "text": TEXT}).json()
    assert (body["stack"], body["predictions_mode"], body["predictions_note"]) == (stack, mode, None)
    assert [s["role"] for s in body["payload"]["header"]["stacks"]] == [stack]  # the stack named is the one sent
    assert body["payload"]["header"]["selection"]["stack"] == stack
    assert [p["position"] for p in body["predictions"]] == list(range(len(body["tokens"]["tokens"])))
    refused = client.post("/api/predictions", json={"model": arch, "text": TEXT, "target": TARGET, "position": 0})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["code"], error["field"]) == ("target_not_taken", "target")
    assert error["message"] == (
        f"model {tiny(arch).label!r} is not an encoder-decoder, and only encoder-decoders take a "
        "target: leave target out and give a position among the text's tokens"
    )
