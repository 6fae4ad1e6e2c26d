"""How many tokens the server takes per input of each model, and why: the model's positions, and memory.

Attention grows with the square of the input, so the server draws short inputs as every weight (the head view's
dense payload, `DENSE_VIEW_BYTES` at most) and longer ones through the long-context head view (each query's
strongest keys, computed layer by layer on request from a capture on demand, `server.long_attention`). What a
request then holds is estimated from the model's shapes before anything runs (`memory_estimate`): the queries and
keys a capture on demand keeps (or the dense weights of a short input), the language-model head's logits and their
probabilities (predictions at every position) and one layer's activations. An input is refused (400
``too_many_tokens``, naming the limit) when it is longer than the model has positions, longer than the server's own
cap (``Limits.max_tokens``, if set), or when its estimate is over the memory one request may take
(``Limits.memory_bytes``), with the estimate and the longest input that fits.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..capture.loading import ModelHandle
from ..errors import count

MEMORY_BYTES = 3 * 2**30
"""Memory one attention request may take by its estimate (3 GiB: a few at once on a 24 GiB machine)."""
DENSE_VIEW_BYTES = 32 * 2**20
"""Bytes of every layer's uint8 weights (layers × heads × tokens²) up to which an input is sent whole (the head
view as it always was); past it the long-context head view draws it (SmolLM2's 270 heads past 352 tokens; a
BERT-base's 144 past 482)."""
_GIB = 2**30


@dataclass(frozen=True)
class MemoryEstimate:
    """What an attention request on ``tokens`` tokens would hold at most, in bytes, by part (named as the error
    message says them), and whether it is drawn as a long view."""

    tokens: int
    long_view: bool
    parts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def said(self) -> str:
        """The estimate in words: "about 1.9 GiB (queries and keys kept 0.4 GiB, ...)"."""
        parts = ", ".join(f"{name} {size / _GIB:.2f} GiB" for name, size in self.parts.items() if size)
        return f"about {self.total / _GIB:.2f} GiB ({parts})"


@dataclass(frozen=True)
class TokenLimit:
    """The most tokens one input of a model may have here, and which limit sets it: "positions" (the model's),
    "server" (``Limits.max_tokens``) or "memory" (``Limits.memory_bytes``)."""

    tokens: int
    reason: str

    def said(self, name: str, handle: ModelHandle, memory_bytes: int) -> str:
        """The limit in words, as ``GET /api/models`` and the errors give it."""
        if self.reason == "positions":
            return f"model {name!r} has {count(handle.max_length, 'position')}"
        if self.reason == "server":
            return "this server's limit per input"
        return f"the memory one request may take here ({memory_bytes / _GIB:.1f} GiB)"


def long_view(handle: ModelHandle, tokens: int) -> bool:
    """Whether an input of ``tokens`` tokens is drawn by the long-context head view: every layer's weights as
    bytes (all stacks) would take more than `DENSE_VIEW_BYTES`."""
    return sum(s.layers * s.heads for s in handle.stacks.values()) * tokens * tokens > DENSE_VIEW_BYTES


def input_length(handle: ModelHandle, text: str, pair: str | None) -> int:
    """Tokens the model's tokenizer makes of ``text`` (and ``pair``), special tokens included, without refusing any
    length (`capture.inputs.encode` refuses inputs past the model's positions, with another message)."""
    texts = (text,) if pair is None else (text, pair)
    return len(handle.tokenizer(*texts, verbose=False)["input_ids"])


def predicts(handle: ModelHandle) -> bool:
    """Whether ``POST /api/attention`` computes predictions at every position for this model (it has a
    language-model head and is not an encoder-decoder, whose head needs a target)."""
    return handle.has_lm_head and handle.kind != "encoder-decoder"


def memory_estimate(handle: ModelHandle, tokens: int) -> MemoryEstimate:
    """The most an attention request on ``tokens`` tokens holds (see the module docstring), from the model's shapes."""
    config = handle.model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    stacks = handle.stacks.values()
    parts: dict[str, int] = {}
    long = long_view(handle, tokens)
    if long:  # float32 queries (heads) and keys (kv_heads) after rotary embeddings, per layer
        kept = sum(s.layers * (s.heads + s.kv_heads) * s.head_dim for s in stacks)
        parts["queries and keys kept"] = kept * tokens * 4
    else:  # float32 weights kept by the capture, and their bytes in the payload
        parts["attention weights"] = sum(s.layers * s.heads for s in stacks) * tokens * tokens * 5
    vocabulary = int(getattr(text, "vocab_size", 0) or 0)
    if predicts(handle):  # float32 logits, and the probabilities softmax makes of them
        parts["logits and probabilities"] = tokens * vocabulary * 8
    width = int(getattr(text, "intermediate_size", 0) or 4 * getattr(text, "hidden_size", 0) or 0)
    parts["one layer's activations"] = tokens * width * 4 * 3
    return MemoryEstimate(tokens, long, parts)


def token_limit(handle: ModelHandle, memory_bytes: int, max_tokens: int | None = None) -> TokenLimit:
    """The most tokens an input of ``handle`` may have: its positions, ``max_tokens`` when smaller, and the longest
    input whose `memory_estimate` is within ``memory_bytes`` (found by bisection: the estimate grows with tokens)."""
    limit = TokenLimit(handle.max_length, "positions")
    if max_tokens is not None and max_tokens < limit.tokens:
        limit = TokenLimit(max_tokens, "server")
    if memory_estimate(handle, limit.tokens).total <= memory_bytes:
        return limit
    low, high = 0, limit.tokens  # memory_estimate(low) fits (0 tokens hold nothing), (high) does not
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if memory_estimate(handle, middle).total <= memory_bytes else (low, middle)
    return TokenLimit(low, "memory")


def too_many_tokens(
    handle: ModelHandle, name: str, tokens: int, what: str, memory_bytes: int, max_tokens: int | None = None
) -> str | None:
    """Why an input (``what``: "input" or "target") of ``tokens`` tokens is refused, naming the limit and what to do;
    None when it is taken."""
    limit = token_limit(handle, memory_bytes, max_tokens)
    if tokens <= limit.tokens:
        return None
    field = "text" if what == "input" else what
    why = limit.said(name, handle, memory_bytes)
    if limit.reason == "memory":
        estimate = memory_estimate(handle, tokens)
        return (
            f"the {what} is {count(tokens, 'token')} long, and its attention with model {name!r} would need "
            f"{estimate.said()}, over {why}: shorten the {field} to at most {count(limit.tokens, 'token')}"
        )
    return (
        f"the {what} is {count(tokens, 'token')} long; model {name!r} takes at most {count(limit.tokens, 'token')} "
        f"per input here ({why}): shorten the {field}"
    )
