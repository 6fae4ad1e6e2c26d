"""M4: generate a continuation and capture prompt plus continuation, each step's top-k next tokens kept."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attnscope
from attnscope.errors import InputError, NoLanguageModelHeadError

PROMPT = "The girl ran to a local pub to"
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def model_greedy(handle, prompt_ids: list[int], n: int) -> list[int]:
    ids = torch.tensor([prompt_ids])
    out = handle.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False)
    return out[0].tolist()


@pytest.mark.parametrize("family", ["gpt2", "smollm2"])
def test_greedy_continuation_is_model_generates_greedy_continuation(tiny, family):
    handle = tiny(family)
    cap = attnscope.generate(handle, PROMPT, max_new_tokens=12)
    prompt_ids = attnscope.encode(handle, PROMPT).ids
    expected = model_greedy(handle, prompt_ids, 12)
    assert cap.tokens.ids == expected
    assert cap.generation is not None and cap.generation.prompt_length == len(prompt_ids)
    assert cap.tokens.generated == cap.generation.generated == tuple(range(len(prompt_ids), len(expected)))
    assert [s.token_id for s in cap.generation.steps] == expected[len(prompt_ids) :]
    assert all(s.token_id == s.top_ids[0] for s in cap.generation.steps)  # greedy takes the most likely
    assert cap.attentions.shape == (2, 4, len(expected), len(expected))


def test_the_capture_equals_one_forward_pass_over_the_generated_ids(tiny):
    handle = tiny("smollm2")
    cap = attnscope.generate(handle, PROMPT, max_new_tokens=6)
    again = attnscope.capture(handle, input_ids=cap.tokens.ids)
    # joined from generate's own passes (tests/test_continuation.py): equal within float rounding
    np.testing.assert_allclose(cap.attentions, again.attentions, rtol=0, atol=1e-5)
    assert again.tokens.generated == ()  # ids given are not generated ones


def test_a_continuation_captured_on_demand_has_the_eager_weights(tiny):
    from attnscope.capture.lazy import LazyAttention

    handle = tiny("smollm2")
    eager = attnscope.generate(handle, PROMPT, max_new_tokens=6, attention="eager")
    lazy = attnscope.generate(handle, PROMPT, max_new_tokens=6, attention="on_demand")
    assert lazy.tokens.ids == eager.tokens.ids and lazy.tokens.generated == eager.tokens.generated
    assert isinstance(lazy.attentions, LazyAttention) and not isinstance(eager.attentions, LazyAttention)
    np.testing.assert_allclose(lazy.attentions.layer(1), np.asarray(eager.attentions)[1], rtol=0, atol=1e-6)


def test_seeded_sampling_is_reproducible_and_leaves_the_random_state(tiny):
    handle = tiny("gpt2")
    state = torch.get_rng_state()
    first = attnscope.generate(handle, PROMPT, max_new_tokens=15, do_sample=True, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    second = attnscope.generate(handle, PROMPT, max_new_tokens=15, do_sample=True, seed=7)
    other = attnscope.generate(handle, PROMPT, max_new_tokens=15, do_sample=True, seed=8)
    assert first.tokens.ids == second.tokens.ids
    assert first.tokens.ids != other.tokens.ids
    assert first.generation is not None and first.generation.do_sample and first.generation.seed == 7


@pytest.mark.parametrize(("do_sample", "temperature"), [(False, 1.0), (True, 0.7)])
def test_each_steps_top_k_is_the_softmax_of_the_logits_it_chose_from(tiny, do_sample, temperature):
    handle = tiny("smollm2")
    cap = attnscope.generate(
        handle, PROMPT, max_new_tokens=5, do_sample=do_sample, temperature=temperature, seed=1, top_k=4
    )
    assert cap.generation is not None
    with torch.no_grad():
        logits = handle.model(torch.tensor([cap.tokens.ids])).logits[0].float()
    for step in cap.generation.steps:
        probabilities = torch.softmax(logits[step.position - 1] / temperature, dim=-1)
        top = torch.topk(probabilities, 4)
        assert list(step.top_ids) == top.indices.tolist()
        np.testing.assert_allclose(step.top_probabilities, top.values.numpy(), atol=1e-6)
        assert step.probability == pytest.approx(float(probabilities[step.token_id]), abs=1e-6)
        assert sum(step.top_probabilities) <= 1 + 1e-6
        assert list(step.top_probabilities) == sorted(step.top_probabilities, reverse=True)
        assert step.token == cap.tokens.display[step.position]


def test_chat_applies_the_tokenizers_template(tiny_path):
    handle = attnscope.load(str(tiny_path("smollm2")))  # a handle of its own: its tokenizer gets a template
    handle.tokenizer.chat_template = CHATML
    cap = attnscope.generate(handle, "Where did the girl go?", max_new_tokens=3, chat=True)
    expected = "<|im_start|>user\nWhere did the girl go?<|im_end|>\n<|im_start|>assistant\n"
    assert cap.generation is not None
    prompt = cap.tokens.ids[: cap.generation.prompt_length]
    assert prompt == handle.tokenizer(expected, add_special_tokens=False)["input_ids"]
    assert handle.tokenizer.decode(prompt) == expected
    assert cap.tokens.raw[0] == "<|im_start|>" and cap.tokens.special[0]
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    two = attnscope.generate(handle, messages, max_new_tokens=2, chat=True)
    assert two.generation is not None
    assert handle.tokenizer.decode(two.tokens.ids[: two.generation.prompt_length]).startswith(
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi"
    )


def test_encoder_decoder_generation_marks_the_decoder_tokens(tiny):
    handle = tiny("bart")
    cap = attnscope.generate(handle, "The girl ran home.", max_new_tokens=6)
    ids = torch.tensor([attnscope.encode(handle, "The girl ran home.").ids])
    expected = handle.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False)
    assert cap.decoder_tokens is not None and cap.decoder_tokens.ids == expected[0].tolist()
    assert cap.decoder_tokens.generated == tuple(range(1, len(expected[0]))) != ()
    assert cap.tokens.generated == ()
    assert cap.generation is not None and [s.position for s in cap.generation.steps] == list(
        cap.decoder_tokens.generated
    )


@pytest.mark.parametrize(
    ("family", "kwargs", "message"),
    [
        ("gpt2", {"chat": True}, "tokenizer has no chat template, so chat=True cannot format the prompt"),
        ("gpt2", {"max_new_tokens": 0}, "max_new_tokens must be a positive integer, got 0"),
        ("gpt2", {"max_new_tokens": 125}, "takes at most 128 positions; ask for at most"),
        ("gpt2", {"temperature": 0}, "temperature must be a number above 0, got 0"),
        ("gpt2", {"top_k": 0}, "top_k (next tokens kept per step) must be a positive integer"),
        ("gpt2", {"seed": -1}, "seed must be a non-negative integer or None"),
        ("gpt2", {"prompt": [{"role": "user", "content": "Hi"}]}, "a list of messages needs chat=True"),
        ("bert", {}, "is an encoder: it reads a whole text and does not generate one"),
        ("gpt2", {"fields": ["attentions", "logits"]}, "logits"),
        ("gpt2", {"dtype": "int8"}, "dtype 'int8' is not supported: use one of float32, float16"),
        ("gpt2", {"attention": "flash"}, "attention 'flash' is not a capture mode: use one of 'auto'"),
    ],
)
def test_bad_generation_options_are_refused(tiny, family, kwargs, message):
    options = {"prompt": PROMPT, **kwargs}
    with pytest.raises(InputError) as caught:
        attnscope.generate(tiny(family), **options)
    assert message in str(caught.value)


def test_a_model_without_its_language_model_head_cannot_generate(tiny):
    with pytest.raises(NoLanguageModelHeadError, match="without a language-model head"):
        attnscope.generate(tiny("gpt2", head=False), PROMPT)
