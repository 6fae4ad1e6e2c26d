"""What a capture gives every attention payload: its stacks' weights, the token sequences they read, which
sequence each stack's queries and keys are, and which stacks are causal (`payload.payload_from_capture`,
`long_payload.capture_payload`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..capture.result import Capture
from ..errors import InputError
from .sequences import TokenSequence, sequence_from_tokens

ROLES = ("encoder", "decoder", "cross")


@dataclass
class CaptureStacks:
    """What a capture gives every payload: its stacks' weights (arrays, or `LazyAttention` on demand) by role, the
    token sequences they read, each stack's (query, key) sequence names and whether it is causal."""

    stacks: dict[str, Any]
    sequences: dict[str, TokenSequence]
    stack_tokens: dict[str, tuple[str, str]]
    causal: dict[str, bool]


def capture_stacks(cap: Capture) -> CaptureStacks:
    """The stacks and sequences of a capture, as `payload_from_capture` builds on them; `InputError` for anything
    but a capture holding attention."""
    if not isinstance(cap, Capture):
        raise InputError(f"expected a Capture, got {type(cap).__name__}")
    main = "decoder" if cap.kind == "decoder" else "encoder"
    toks = cap.tokens
    sequences = {main: sequence_from_tokens(toks)}
    if cap.decoder_tokens is not None and main == "encoder":
        sequences["decoder"] = sequence_from_tokens(cap.decoder_tokens)
    if cap.generation is not None:  # the continuation is the decoder's (the main sequence of a decoder-only model)
        sequences["decoder"].steps = [step.to_dict() for step in cap.generation.steps]
    stacks, stack_tokens = {}, {}
    for role in ROLES:
        attentions = cap.stacks[role].attentions if role in cap.stacks else None
        if attentions is not None:
            stacks[role] = attentions  # quantise() converts; no float64 copy of every layer
            stack_tokens[role] = ("decoder", "encoder") if role == "cross" else (role, role)
    if not stacks:
        raise InputError("this capture holds no attention weights: capture with fields=['attentions', ...]")
    return CaptureStacks(stacks, sequences, stack_tokens, {role: role == "decoder" for role in stacks})
