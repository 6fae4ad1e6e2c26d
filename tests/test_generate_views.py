"""M4 in the views: generated tokens marked with each step's top-k, and model.generate's step-wise attentions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

import attnscope
from attnscope.errors import InputError
from attnscope.views.bertviz_inputs import stack_layers
from attnscope.views.payload import payload_from_arrays, payload_from_capture

PROMPT = "The girl ran to a local pub to"


@pytest.fixture(scope="module")
def eager_generation(tiny_path):
    """A tiny Llama (SmolLM2's kind) run eagerly by model.generate with output_attentions, and its handle."""
    path = tiny_path("smollm2")
    model = transformers.AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager").eval()
    handle = attnscope.load(str(path))
    ids = torch.tensor([attnscope.encode(handle, PROMPT).ids])
    with torch.no_grad():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=6,
            do_sample=False,
            output_attentions=True,
            return_dict_in_generate=True,
        )
    return handle, out, ids.shape[1]


def test_the_payload_header_marks_generated_tokens_and_their_steps(tiny):
    cap = attnscope.generate(tiny("gpt2"), PROMPT, max_new_tokens=4, top_k=3)
    sequence = payload_from_capture(cap).header()["sequences"]["decoder"]
    assert cap.generation is not None
    assert sequence["generated"] == list(cap.tokens.generated) == [s.position for s in cap.generation.steps]
    first = sequence["steps"][0]
    step = cap.generation.steps[0]
    assert first["position"] == step.position and first["token"] == cap.tokens.display[step.position]
    assert first["top"] == [[t, i, p] for t, i, p in zip(step.top_tokens, step.top_ids, step.top_probabilities)]
    assert len(first["top"]) == 3
    assert (
        payload_from_capture(attnscope.capture(tiny("gpt2"), PROMPT)).header()["sequences"]["decoder"]["generated"]
        == []
    )


def test_step_wise_attentions_are_assembled_into_the_capture_of_the_read_tokens(eager_generation):
    handle, out, prompt_length = eager_generation
    steps = out.attentions
    assert len(steps) == 6 and steps[0][0].shape[2] == prompt_length and steps[1][0].shape[2] == 1
    assembled = stack_layers(steps, 0, "attention")
    read = out.sequences[0][:-1]  # the last generated token is never read back
    cap = attnscope.capture(handle, input_ids=read)
    assert assembled.shape == cap.attentions.shape == (2, 4, len(read), len(read))
    np.testing.assert_allclose(assembled, cap.attentions, atol=1e-6)
    tokens = handle.tokenizer.convert_ids_to_tokens(read)
    payload = payload_from_arrays(steps, tokens)
    assert list(payload.stacks) == ["decoder"] and payload.causal["decoder"]


def test_tokens_of_the_whole_sequence_with_step_wise_attentions_say_which_to_drop(eager_generation):
    handle, out, _ = eager_generation
    tokens = handle.tokenizer.convert_ids_to_tokens(out.sequences[0])
    with pytest.raises(InputError) as caught:
        attnscope.head_view(out.attentions, tokens)
    message = str(caught.value)
    assert "attentions from model.generate: one tuple per generated step (6 steps)" in message
    assert "the last generated token is never read back" in message and "pass tokens[:-1]" in message
    assert "attnscope.generate(handle, prompt, max_new_tokens=...)" in message


def test_step_wise_attentions_that_make_no_one_matrix_are_refused_with_what_to_call(eager_generation):
    _, out, prompt_length = eager_generation
    skipped = (out.attentions[0], *out.attentions[2:])  # a step left out: keys no longer match the rows read
    with pytest.raises(InputError) as caught:
        stack_layers(skipped, 0, "attention")
    message = str(caught.value)
    assert "attention holds attentions from model.generate: one tuple per generated step (5 steps)" in message
    p = prompt_length
    keys, read = [p, p + 2, p + 3, p + 4, p + 5], [p, p + 1, p + 2, p + 3, p + 4]
    assert f"their key lengths {keys} do not grow with the tokens read {read}" in message
    assert "attnscope.capture(handle, input_ids=outputs.sequences[0])" in message
    no_weights = tuple(tuple(None for _ in step) for step in out.attentions)  # what SDPA returns
    with pytest.raises(InputError, match="step 0 has no weights .*attn_implementation='eager'"):
        stack_layers(no_weights, 0, "attention")


def test_an_encoder_decoders_step_wise_decoder_and_cross_attentions_are_assembled_exactly(tiny_path):
    path = tiny_path("bart")
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(path, attn_implementation="eager").eval()
    handle = attnscope.load(str(path))
    ids = torch.tensor([attnscope.encode(handle, "The girl ran home.").ids])
    with torch.no_grad():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=5,
            min_new_tokens=5,
            do_sample=False,
            output_attentions=True,
            return_dict_in_generate=True,
        )
    read = out.sequences[0][:-1]
    cap = attnscope.capture(handle, input_ids=ids[0], target_ids=read)
    decoder = stack_layers(out.decoder_attentions, 0, "decoder_attention")
    cross = stack_layers(out.cross_attentions, 0, "cross_attention")
    assert decoder.shape == (3, 4, len(read), len(read)) and cross.shape == (3, 4, len(read), ids.shape[1])
    np.testing.assert_allclose(decoder, cap.stack("decoder").attentions, atol=1e-6)
    np.testing.assert_allclose(cross, cap.stack("cross").attentions, atol=1e-6)
