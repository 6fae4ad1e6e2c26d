"""The data a capture returns: per-stack attention parts, hidden states, tokens and predictions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError, NoLanguageModelHeadError, UnavailableFieldError, check_range, count
from .inputs import Tokens
from .lazy import LazyAttention

ATTENTION_FIELDS = ("attentions", "queries", "keys", "values", "head_outputs", "bias", "allowed")
"""Per-layer attention fields a capture can hold; ``hidden_states`` is the one non-attention field."""
ALL_FIELDS = ATTENTION_FIELDS + ("hidden_states",)
DEFAULT_FIELDS = ("attentions", "hidden_states")


@dataclass
class AttentionStack:
    """Everything captured for one stack of attention layers of one input.

    ``role`` is "encoder" or "decoder" (self-attention) or "cross" (decoder queries, encoder keys).
    Shapes (``query``/``key`` are token positions; grouped KV heads are expanded to one per query head):

    - ``attentions``:   (layers, heads, query, key), each row sums to 1. In a capture with
                        ``attention="on_demand"`` a `LazyAttention` computing them when asked; it has
                        ``.shape``, integer indexing (``[l]``, ``[l, h]``, ``[l, h, q]``) and
                        ``np.asarray`` like the array, and is annotated as one for the code that reads
                        those (`Capture.attentions` is typed as either)
    - ``queries``:      (layers, heads, query, head_dim), after rotary embeddings where the model has them
    - ``keys``:         (layers, heads, key, head_dim), after rotary embeddings
    - ``values``:       (layers, heads, key, head_dim)
    - ``head_outputs``: (layers, heads, query, head_dim), attention · values, before the output projection
    - ``bias``:         (layers, heads, query, key), additive score terms other than the mask
                        (T5's relative position bias, ALiBi); None when the model adds none
    - ``allowed``:      (layers, query, key) bool, False where the mask hides a key (causal, sliding
                        window, padding)
    - ``hidden_states``: (layers + 1, tokens, hidden): the embeddings' output, then each layer's output
    - ``scaling``:      (layers,) the factor applied to q·k; ``softcap`` per layer where the model caps scores
    - ``sinks``:        (layers, heads) attention-sink logits (GPT-OSS): an extra key that takes part in
                        the softmax and is then dropped, so rows sum to less than 1; None for most models
    - ``kv_head_of``:   (heads,) which key/value head each query head reads (grouped-query attention)
    - ``output_projection``: (layers, heads, head_dim, hidden) each layer's output projection W_O split
                        per head (bias excluded), kept with ``values``: a head's contribution to the
                        layer's output is ``head_outputs[l, h] @ output_projection[l, h]``. Read-only,
                        shared by the captures of one model; None when the model's could not be found
                        (``Capture.missing`` says why)
    """

    role: str
    layers: int
    heads: int
    attentions: np.ndarray | None = None
    queries: np.ndarray | None = None
    keys: np.ndarray | None = None
    values: np.ndarray | None = None
    head_outputs: np.ndarray | None = None
    bias: np.ndarray | None = None
    allowed: np.ndarray | None = None
    hidden_states: np.ndarray | None = None
    scaling: np.ndarray | None = None
    softcap: list[float | None] = field(default_factory=list)
    kv_head_of: np.ndarray | None = None
    sinks: np.ndarray | None = None
    output_projection: np.ndarray | None = None

    def require(self, name: str) -> np.ndarray:
        """The named field, or an `UnavailableFieldError` saying how to get it.

        On-demand ``attentions`` are materialised (or refused with their size when over their limit)."""
        value = getattr(self, name)
        if isinstance(value, LazyAttention):
            return np.asarray(value)
        if value is None:
            raise UnavailableFieldError(
                f"the {self.role} stack holds no {name!r}: capture it with fields=[..., {name!r}]"
                + (" (this model adds no such term)" if name == "bias" else "")
            )
        return value

    def scores(self, layer: int, head: int | None = None, query: int | None = None) -> np.ndarray:
        """Pre-softmax scores rebuilt from the parts: scale · q·kᵀ (+ softcap) + bias, masked with -inf.

        Returns (heads, query, key) float64, narrowed to one head and/or one query row when given;
        ``softmax(scores(l))`` equals ``attentions[l]``.
        """
        check_range("layer", layer, self.layers, f"the {self.role} stack")
        heads = slice(None) if head is None else slice(check_range("head", head, self.heads, "this stack"), head + 1)
        q = self.require("queries")[layer][heads]
        if query is not None:
            check_range("query position", query, q.shape[1], f"this input of {count(q.shape[1], 'token')}")
        rows = slice(None) if query is None else slice(query, query + 1)
        q = q[:, rows].astype(np.float64)
        k = self.require("keys")[layer][heads].astype(np.float64)
        scores = self.scaled(layer, np.einsum("hqd,hkd->hqk", q, k))
        if self.bias is not None:
            scores = scores + self.bias[layer][heads][:, rows].astype(np.float64)
        if self.allowed is not None:
            scores = np.where(self.allowed[layer][rows][None], scores, -np.inf)
        return scores

    def scaled(self, layer: int, dots: np.ndarray) -> np.ndarray:
        """q·k dot products of ``layer`` times its scaling, then through its softcap where it has one."""
        if self.scaling is None:
            raise UnavailableFieldError(
                f"the {self.role} stack holds no scaling: capture it with queries and keys "
                "(fields=[..., 'queries', 'keys'])"
            )
        scaled = dots * float(self.scaling[layer])
        cap = self.softcap[layer] if self.softcap else None
        return np.tanh(scaled / cap) * cap if cap else scaled

    def rebuilt_attentions(self, layer: int, head: int | None = None, query: int | None = None) -> np.ndarray:
        """softmax(scores(...)) over keys (and the sink, where the model has one): (heads, query, key)."""
        return self.softmax(layer, self.scores(layer, head, query), head)

    def softmax(self, layer: int, scores: np.ndarray, head: int | None = None) -> np.ndarray:
        """Softmax of (heads, query, key) ``scores`` over keys, with ``layer``'s attention sink where the
        model has one (``head`` narrows the sinks to one head, as `scores` narrows the rows)."""
        if self.sinks is not None:
            sinks = self.sinks[layer] if head is None else self.sinks[layer][head : head + 1]
            sink = np.broadcast_to(sinks.astype(np.float64)[:, None, None], scores.shape[:2] + (1,))
            scores = np.concatenate([scores, sink], axis=-1)
        scores = scores - scores.max(axis=-1, keepdims=True)
        weights = np.exp(scores)
        weights = weights / weights.sum(axis=-1, keepdims=True)
        return weights[..., : scores.shape[-1] - (self.sinks is not None)]


@dataclass
class Predictions:
    """Top-k predictions at every position of a stack.

    ``mode`` is "masked" (what the model puts at that position: masked-LM) or "next" (the token after
    the position: causal and seq2seq decoders). ``token_ids`` and ``probabilities`` are (positions, k).
    """

    mode: str
    token_ids: np.ndarray
    probabilities: np.ndarray
    tokens: list[list[str]]

    def at(self, position: int) -> list[tuple[str, float]]:
        """The top-k ``(token, probability)`` pairs at one position, most likely first."""
        check_range("position", position, len(self.tokens), f"this input of {count(len(self.tokens), 'token')}")
        return [(t, float(p)) for t, p in zip(self.tokens[position], self.probabilities[position])]


@dataclass(frozen=True)
class GenerationStep:
    """One step of `attnscope.generate`: the token it chose and the top-k of the distribution it chose from.

    ``position`` is where the chosen token sits in the capture's tokens (the decoder's for an
    encoder-decoder); ``probability`` is the chosen token's probability in the distribution the step
    sampled from (greedy: the model's softmax; sampling: softmax of the logits divided by the
    temperature); ``top_ids``, ``top_tokens`` (display forms) and ``top_probabilities`` are that
    distribution's k most likely tokens, most likely first (they sum to at most 1).
    """

    position: int
    token_id: int
    token: str
    probability: float
    top_ids: tuple[int, ...]
    top_tokens: tuple[str, ...]
    top_probabilities: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "token_id": self.token_id,
            "token": self.token,
            "probability": self.probability,
            "top": [[t, i, p] for t, i, p in zip(self.top_tokens, self.top_ids, self.top_probabilities)],
        }


@dataclass(frozen=True)
class Generation:
    """How a capture's continuation was generated (`attnscope.generate`).

    ``prompt_length`` tokens of prompt (chat template applied when ``chat``), then the generated
    positions ``generated`` (also ``Tokens.generated``), one `GenerationStep` each; ``do_sample``,
    ``temperature`` and ``seed`` say how each step chose (greedy: the most likely token).
    """

    prompt: str | tuple[dict[str, str], ...]
    prompt_length: int
    generated: tuple[int, ...]
    steps: tuple[GenerationStep, ...]
    chat: bool
    do_sample: bool
    temperature: float
    seed: int | None


@dataclass
class Capture:
    """What one input did inside the model: tokens, attention stacks, hidden states, predictions.

    ``stacks`` has "encoder" (encoder-only and encoder-decoder models), "decoder" (decoders and
    encoder-decoders) and "cross" (encoder-decoders). ``missing`` names the fields this model could
    not provide, with the reason. ``masking_caveat`` says why masked positions may mislead with this
    model (see `attnscope.masking_caveat`); None when nothing was masked or masking means what it says.
    ``generation`` says which tokens `attnscope.generate` generated and each step's top-k; None otherwise.
    ``attention_mode`` is the capture's ``attention`` ("eager" or "on_demand"); ``eager_modules`` names
    the attention modules that ran eager attention in on-demand mode, with the reason (softcap, sinks,
    position bias, unpatterned mask), or the model's class when it runs attention outside transformers'
    attention interface (its weights then held dense).
    """

    model: str
    kind: str
    tokens: Tokens
    stacks: dict[str, AttentionStack]
    decoder_tokens: Tokens | None = None
    predictions: Predictions | None = None
    missing: dict[str, str] = field(default_factory=dict)
    dtype: str = "float32"
    has_lm_head: bool = False
    masking_caveat: str | None = None
    generation: Generation | None = None
    attention_mode: str = "eager"
    eager_modules: dict[str, str] = field(default_factory=dict)

    @property
    def main(self) -> AttentionStack:
        """The self-attention stack over the user's text (the decoder's for decoder-only models)."""
        return self.stack("decoder" if self.kind == "decoder" else "encoder")

    @property
    def attentions(self) -> np.ndarray | LazyAttention:
        """The main stack's attention weights, (layers, heads, query, key) (a `LazyAttention` on demand)."""
        value: Any = self.main.attentions
        return value if isinstance(value, LazyAttention) else self.main.require("attentions")

    @property
    def hidden_states(self) -> np.ndarray:
        """The main stack's residual stream, (layers + 1, tokens, hidden)."""
        return self.main.require("hidden_states")

    def stack(self, role: str) -> AttentionStack:
        if role not in self.stacks:
            held = f"it has {', '.join(self.stacks)}" if self.stacks else "it holds no stack"
            why = "".join(f" ({reason})" for field, reason in self.missing.items() if field == "attentions")
            raise InputError(f"no {role!r} attention in this capture{why}: {held}")
        return self.stacks[role]

    def top_k(self, position: int) -> list[tuple[str, float]]:
        """The model's top predictions at ``position`` (see `Predictions`)."""
        if self.predictions is None:
            if not self.has_lm_head:
                raise NoLanguageModelHeadError(
                    f"model {self.model!r} has no language-model head, so it cannot predict tokens: "
                    "load a checkpoint that has a masked-LM or causal-LM head for predictions"
                )
            raise UnavailableFieldError("this capture holds no predictions: capture with top_k > 0")
        return self.predictions.at(position)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description of the shapes held, without the arrays."""
        return {
            "model": self.model,
            "kind": self.kind,
            "dtype": self.dtype,
            "tokens": list(self.tokens.display),
            "stacks": {
                role: {
                    "layers": s.layers,
                    "heads": s.heads,
                    "fields": [f for f in ALL_FIELDS if getattr(s, f) is not None],
                }
                for role, s in self.stacks.items()
            },
            "missing": dict(self.missing),
            "has_lm_head": self.has_lm_head,
            "masking_caveat": self.masking_caveat,
        }
