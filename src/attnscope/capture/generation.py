"""Generating a continuation and capturing prompt plus continuation as one forward pass over the exact ids.

`generate` runs transformers' ``model.generate`` (greedy by default, or sampling from the full
softmax at a temperature, reproducible with a seed) and keeps each step's top-k next tokens from the
distribution the step chose from. The capture equals one forward pass over the final ids as given
(`engine.capture` with ``input_ids``, or ``target_ids`` for an encoder-decoder). For a causal decoder
captured eagerly it is joined from ``generate``'s own passes (`continuation`: the prompt's prefill and one
pass per new token, plus one over the last token), so the prompt runs once; otherwise (on-demand attention,
encoder-decoders, passes that cannot be joined exactly) the final ids are captured in one more pass.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import torch

from ..errors import InputError, NoLanguageModelHeadError
from .continuation import PassRecorder, joinable
from .engine import capture, check_attention_mode, check_capture_options
from .inputs import display_forms, encode, special_token_ids
from .loading import ModelHandle
from .result import DEFAULT_FIELDS, Capture, Generation, GenerationStep

Messages = Sequence[dict[str, str]]


def generate(
    handle: ModelHandle,
    prompt: str | Messages,
    max_new_tokens: int = 20,
    *,
    chat: bool = False,
    seed: int | None = None,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int = 5,
    fields: Iterable[str] | str = DEFAULT_FIELDS,
    dtype: str = "float32",
    attention: str = "auto",
) -> Capture:
    """Continue ``prompt`` with ``handle``'s model and capture prompt plus continuation.

    ``prompt`` is a text, tokenised as `attnscope.capture` tokenises it (special tokens included), or
    with ``chat=True`` a user message (or a list of ``{"role", "content"}`` messages) put through the
    tokenizer's chat template with the assistant's turn opened (an `InputError` when the tokenizer has
    no template). Up to ``max_new_tokens`` tokens are generated (fewer when the model ends its text);
    greedy by default, or with ``do_sample`` sampled from softmax(logits / ``temperature``) over the
    whole vocabulary, the same tokens for the same ``seed`` (the global random state is left as it was).

    Returns a `Capture` of the final ids exactly as generated (``input_ids=``, never re-tokenised), with
    ``tokens.generated`` (the decoder tokens' for an encoder-decoder) the generated positions and
    ``generation`` their `GenerationStep` s: each step's ``top_k`` most likely next tokens with their
    probabilities in the distribution it chose from. ``fields``, ``dtype`` and ``attention`` (how attention is
    captured: "auto", "eager" or "on_demand") as `attnscope.capture`; predictions at every position are kept
    with the same ``top_k``.
    """
    _check_options(handle, max_new_tokens, seed, temperature, top_k)
    check_capture_options(fields, dtype)  # before any generation work
    check_attention_mode(attention)
    prompt_ids, kept_prompt = _prompt_ids(handle, prompt, chat)
    if handle.kind == "decoder" and len(prompt_ids) + max_new_tokens > handle.max_length:
        raise InputError(
            f"the prompt is {len(prompt_ids)} tokens long and max_new_tokens is {max_new_tokens}: model "
            f"{handle.name!r} takes at most {handle.max_length} positions; ask for at most "
            f"{max(handle.max_length - len(prompt_ids), 0)} new tokens or shorten the prompt"
        )
    passes = None
    if joinable(handle):
        passes = PassRecorder(handle, check_capture_options(fields, dtype), attention, len(prompt_ids) + max_new_tokens)
    sequence, scores, first_logits = _run(handle, prompt_ids, max_new_tokens, seed, do_sample, temperature, passes)
    start = len(prompt_ids) if handle.kind == "decoder" else 1  # a seq2seq decoder begins with its start token
    joined = None
    if passes is not None and first_logits is not None:
        joined = passes.capture(sequence, first_logits, dtype, top_k)
    if joined is not None:
        cap = joined
    elif handle.kind == "decoder":
        cap = capture(handle, input_ids=sequence, fields=fields, dtype=dtype, top_k=top_k, attention=attention)
    else:
        cap = capture(
            handle,
            input_ids=prompt_ids,
            target_ids=sequence,
            fields=fields,
            dtype=dtype,
            top_k=top_k,
            attention=attention,
        )
    generated = tuple(range(start, len(sequence)))
    steps = _steps(handle, sequence, scores, start, top_k)
    if handle.kind == "decoder":
        cap.tokens = replace(cap.tokens, generated=generated)
    else:
        assert cap.decoder_tokens is not None  # an encoder-decoder's capture has decoder tokens
        cap.decoder_tokens = replace(cap.decoder_tokens, generated=generated)
    cap.generation = Generation(
        kept_prompt, len(prompt_ids) if handle.kind == "decoder" else start, generated, steps, chat, do_sample,
        float(temperature), seed,
    )  # fmt: skip
    return cap


def _check_options(handle: ModelHandle, max_new_tokens: Any, seed: Any, temperature: Any, top_k: Any) -> None:
    if handle.kind == "encoder":
        raise InputError(
            f"model {handle.name!r} is an encoder: it reads a whole text and does not generate one; "
            "generate needs a causal decoder (GPT-2, Llama, SmolLM2...) or an encoder-decoder (T5, BART)"
        )
    if not handle.has_lm_head:
        raise NoLanguageModelHeadError(
            f"model {handle.name!r} was loaded without a language-model head, so it cannot choose next tokens: "
            "load a checkpoint with a causal-LM (or seq2seq LM) head to generate"
        )
    if not isinstance(max_new_tokens, numbers.Integral) or isinstance(max_new_tokens, bool) or max_new_tokens < 1:
        raise InputError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    if seed is not None and (not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0):
        raise InputError(f"seed must be a non-negative integer or None, got {seed!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise InputError(f"temperature must be a number above 0, got {temperature!r}")
    if not isinstance(top_k, numbers.Integral) or isinstance(top_k, bool) or top_k < 1:
        raise InputError(f"top_k (next tokens kept per step) must be a positive integer, got {top_k!r}")


def _prompt_ids(handle: ModelHandle, prompt: Any, chat: bool) -> tuple[list[int], Any]:
    """The prompt's ids, and the prompt as kept on the `Generation` (a text, or a tuple of messages)."""
    tokenizer = handle.tokenizer
    if not chat:
        if not isinstance(prompt, str):
            raise InputError(f"prompt must be a text, got {type(prompt).__name__}: a list of messages needs chat=True")
        return encode(handle, prompt).ids, prompt
    if getattr(tokenizer, "chat_template", None) is None:
        raise InputError(
            f"model {handle.name!r}'s tokenizer has no chat template, so chat=True cannot format the prompt "
            "as a conversation: pass chat=False to continue the prompt as plain text (or set "
            "handle.tokenizer.chat_template to the model's template)"
        )
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    for i, message in enumerate(messages):
        if not (isinstance(message, dict) and isinstance(message.get("role"), str) and "content" in message):
            raise InputError(f"prompt[{i}] must be a message {{'role': ..., 'content': ...}}, got {message!r:.80}")
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if not ids:
        raise InputError("the chat template made an empty prompt: give a message with some text")
    kept = prompt if isinstance(prompt, str) else tuple(dict(m) for m in messages)
    return ids, kept


def _run(
    handle: ModelHandle,
    prompt_ids: list[int],
    max_new_tokens: int,
    seed: int | None,
    do_sample: bool,
    temperature: float,
    passes: PassRecorder | None = None,
) -> tuple[list[int], list[torch.Tensor], torch.Tensor | None]:
    """``model.generate`` over the prompt: the whole sequence (the decoder's for an encoder-decoder), each
    step's scores, the logits the step chose from (after the temperature), (vocabulary,) each, and with
    ``passes`` (which then records generate's forward passes and one over the last token) the first step's raw
    logits (vocabulary,), else None."""
    model, tokenizer = handle.model, handle.tokenizer
    ids = torch.tensor([prompt_ids], dtype=torch.long, device=model.device)
    config = model.generation_config
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else config.pad_token_id
    if pad is None:
        pad = config.eos_token_id if isinstance(config.eos_token_id, int) else tokenizer.eos_token_id
    options: dict[str, Any] = {
        "max_new_tokens": int(max_new_tokens),
        "do_sample": bool(do_sample),
        "num_beams": 1,
        "return_dict_in_generate": True,
        "output_scores": True,
        "pad_token_id": pad,
    }
    if do_sample:  # sample from the whole softmax at this temperature: no top-k/top-p the user did not ask for
        options.update(temperature=float(temperature), top_k=0, top_p=1.0)
    devices = [model.device] if model.device.type == "cuda" else []
    with handle.lock, torch.inference_mode(), torch.random.fork_rng(devices=devices):
        if seed is not None:
            torch.manual_seed(int(seed))
        if passes is None:
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **options)
        else:
            with passes.recording():
                options.update(passes.generate_options())
                out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **options)
                passes.last_pass(out)
    sequence = out.sequences[0].tolist()
    first = out.logits[0][0].float().cpu() if passes is not None else None
    return [int(i) for i in sequence], [s[0].float().cpu() for s in out.scores], first


def _steps(
    handle: ModelHandle, sequence: list[int], scores: list[torch.Tensor], start: int, k: int
) -> tuple[GenerationStep, ...]:
    tokenizer = handle.tokenizer
    special = special_token_ids(tokenizer)
    steps = []
    for n, logits in enumerate(scores[: len(sequence) - start]):
        probabilities = torch.softmax(logits, dim=-1)
        top = torch.topk(probabilities, k=min(k, probabilities.shape[-1]))
        top_ids = [int(i) for i in top.indices]
        chosen = sequence[start + n]
        shown = display_forms(
            tokenizer.convert_ids_to_tokens([chosen, *top_ids]), [i in special for i in [chosen, *top_ids]], tokenizer
        )
        steps.append(
            GenerationStep(
                start + n,
                chosen,
                shown[0],
                float(probabilities[chosen]),
                tuple(top_ids),
                tuple(shown[1:]),
                tuple(float(p) for p in top.values),
            )
        )
    return tuple(steps)
