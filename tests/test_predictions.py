"""C5: top-k predictions for masked, causal and seq2seq models; a model without a head says so."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attnscope
from attnscope.errors import NoLanguageModelHeadError

from .conftest import PUB


def test_masked_lm_predictions_equal_softmax_of_the_models_logits(tiny):
    handle = tiny("bert")
    cap = attnscope.capture(handle, PUB, mask=[9], top_k=5)
    assert cap.predictions.mode == "masked"
    with torch.no_grad():
        logits = handle.model(input_ids=torch.tensor([cap.tokens.ids])).logits[0, 9]
    probabilities = torch.softmax(logits, -1)
    expected = torch.topk(probabilities, 5)
    assert cap.predictions.token_ids[9].tolist() == expected.indices.tolist()
    np.testing.assert_allclose(cap.predictions.probabilities[9], expected.values.numpy(), rtol=1e-5)
    top = cap.top_k(9)
    assert len(top) == 5 and top[0][1] >= top[-1][1]
    assert top[0][0] == handle.tokenizer.convert_ids_to_tokens(int(expected.indices[0])).removeprefix("##")


def test_causal_predictions_are_for_the_next_token(tiny):
    handle = tiny("gpt2")
    cap = attnscope.capture(handle, "The girl ran to a", top_k=3)
    assert cap.predictions.mode == "next"
    with torch.no_grad():
        logits = handle.model(input_ids=torch.tensor([cap.tokens.ids])).logits[0, -1]
    assert cap.predictions.token_ids[-1].tolist() == torch.topk(logits, 3).indices.tolist()


def test_seq2seq_predictions_are_decoder_tokens(tiny):
    handle = tiny("t5")
    cap = attnscope.capture(handle, "The girl ran.", target="She", top_k=4)
    assert cap.predictions.mode == "next"
    assert cap.predictions.token_ids.shape == (len(cap.decoder_tokens), 4)


def test_model_without_lm_head_says_so(default_model):
    assert default_model.has_lm_head is False
    cap = attnscope.capture(default_model, PUB, mask=[9], warn=False)
    assert cap.predictions is None
    with pytest.raises(NoLanguageModelHeadError, match="has no language-model head"):
        cap.top_k(9)


def test_checkpoint_without_head_loads_without_a_random_head(tiny):
    body = tiny("bert", head=False)
    assert body.has_lm_head is False
    assert attnscope.capture(body, PUB).predictions is None
    assert tiny("bert").has_lm_head is True
