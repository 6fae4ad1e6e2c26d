"""Capturing a continuation from the forward passes that generated it, so the prompt is run once.

``model.generate`` runs the prompt once (its prefill), then one forward pass per new token over the key/value
cache. `PassRecorder` listens to those passes: the recorder (`recorder.recording`, eager mode: the model's own
eager attention, so generation computes exactly what plain ``model.generate`` computes on a model loaded with
eager attention) keeps each pass's attention per layer, and a hook on the base model keeps each pass's final
hidden states (and every layer's, when asked). One more pass over the last generated token (which ``generate``
chooses but never runs) completes the sequence. `PassRecorder.capture` then joins the passes into the `Capture`
one forward pass over prompt plus continuation would give (`engine.capture(input_ids=...)`):

- attention weights: the prompt's rows (prompt × prompt) and each new token's row over the keys it saw, placed
  in the (tokens × tokens) square; the keys it did not see are 0, as causal eager attention makes them;
- queries and head outputs: each pass's rows, in order; keys and values: the last pass's cache, all positions;
- the mask: each pass's rows, keys after them hidden; hidden states: each pass's rows;
- predictions at every position: the language-model head over the final hidden states of every position.

Equal to the one-pass capture within float rounding (the cached keys and values are the same computation).
`capture` returns None, and the caller captures the final ids in one pass as before, when the passes cannot be
joined exactly: a model with a position bias, a cache that drops keys (sliding windows), logits that are not
the head's output as it is (softcapping, scaling), or a model outside the attention interface.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import torch

from .engine import DTYPES, EAGER_LIMIT_BYTES, captures_from_run
from .from_ids import tokens_from_ids
from .loading import ModelHandle
from .recorder import LayerCall, Recorder, recording
from .result import Capture


def joinable(handle: ModelHandle, longest: int, attention: str) -> bool:
    """Whether a continuation of ``handle``'s model of at most ``longest`` tokens, captured with ``attention``
    ("auto", "eager" or "on_demand"), can be captured from its generation's passes: a causal decoder loaded with
    eager attention (as `load` loads every model), captured eagerly ("auto" within `EAGER_LIMIT_BYTES`)."""
    if handle.kind != "decoder" or getattr(handle.model.config, "_attn_implementation", None) != "eager":
        return False
    if attention == "auto":
        stack = handle.stacks[handle.main_stack]
        return stack.layers * stack.heads * longest * longest * 4 <= EAGER_LIMIT_BYTES
    return attention == "eager"


@dataclass
class _Pass:
    """One forward pass of the base model: where its recorded calls end, its final hidden states (1, q, hidden)
    and every layer's ((layers + 1) × (1, q, hidden)) when asked."""

    calls_end: int
    last_hidden: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None


@dataclass
class PassRecorder:
    """What the forward passes of one generation computed (see the module's docstring); ``wanted`` are the
    capture's fields."""

    handle: ModelHandle
    wanted: set[str]
    passes: list[_Pass] = field(default_factory=list)
    _recorder: Recorder | None = None
    _keep_cache: bool = False

    def generate_options(self) -> dict[str, Any]:
        """What ``model.generate`` must be asked for: the raw logits (to check the head) and hidden states."""
        return {"output_logits": True, "output_hidden_states": "hidden_states" in self.wanted}

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """Record every forward pass of the model in this block (the caller holds the model's lock)."""
        model = self.handle.model
        base = model.base_model
        engine_role = self.handle.main_stack
        with recording(model, self.wanted, lambda name, module: engine_role, "eager") as recorder:
            self._recorder = recorder
            hook = base.register_forward_hook(self._after_pass)
            try:
                yield
            finally:
                hook.remove()

    def _after_pass(self, module: Any, args: Any, output: Any) -> None:
        assert self._recorder is not None
        calls = self._recorder.calls
        start = self.passes[-1].calls_end if self.passes else 0
        if not self._keep_cache:  # a step's keys and values are the cache so far: the last pass holds them all
            for call in calls[start:]:
                call.tensors.pop("keys", None)
                call.tensors.pop("values", None)
        hidden = getattr(output, "hidden_states", None) if "hidden_states" in self.wanted else None
        self.passes.append(_Pass(len(calls), output.last_hidden_state, tuple(hidden) if hidden else None))

    def last_pass(self, out: Any) -> None:
        """Run the last generated token over ``model.generate``'s cache (``out``: its dict output), inside
        `recording`: its attention row, keys and values of every position, and its hidden states."""
        sequence = out.sequences
        self._keep_cache = True
        self.handle.model(
            input_ids=sequence[:, -1:],
            attention_mask=torch.ones_like(sequence),
            past_key_values=out.past_key_values,
            use_cache=True,
            output_hidden_states="hidden_states" in self.wanted,
        )

    def capture(self, sequence: list[int], first_logits: torch.Tensor, dtype: str, top_k: int) -> Capture | None:
        """The joined `Capture` of ``sequence`` (prompt plus continuation, as generated), or None when the passes
        cannot be joined exactly. ``first_logits`` (vocabulary,): ``generate``'s raw logits of its first step."""
        with torch.inference_mode():
            return self._join(sequence, first_logits, dtype, top_k)

    def _join(self, sequence: list[int], first_logits: torch.Tensor, dtype: str, top_k: int) -> Capture | None:
        assert self._recorder is not None
        calls = self._recorder.calls
        layers = self.handle.stacks[self.handle.main_stack].layers
        spans, start, previous = [], 0, 0
        for done in self.passes:
            spans.append((start, start + done.last_hidden.shape[1], calls[previous : done.calls_end]))
            start, previous = spans[-1][1], done.calls_end
        if start != len(sequence) or any(len(c) != layers for _, _, c in spans) or not self._head_as_is(first_logits):
            return None
        joined = []
        for layer in range(layers):
            call = join_layer([(s, e, c[layer]) for s, e, c in spans], len(sequence))
            if call is None:
                return None
            joined.append(call)
        weights = _weights(spans, len(sequence)) if "attentions" in self.wanted else None
        head = self.handle.model.get_output_embeddings()
        final = torch.cat([p.last_hidden for p in self.passes], dim=1)
        outputs = SimpleNamespace(logits=head(final), hidden_states=self._hidden_states())
        tokens = tokens_from_ids(self.handle, sequence)
        wanted = self.wanted - {"attentions"}  # the weights are placed in one array here, not stacked per layer
        cap = captures_from_run(self.handle, [tokens], None, outputs, joined, wanted, dtype, top_k, "eager")[0]
        if weights is not None:
            cap.main.attentions = weights.to(dtype=DTYPES[dtype]).numpy()
        return cap

    def _head_as_is(self, first_logits: torch.Tensor) -> bool:
        """Whether the model's logits are its output embedding's output as it is (no softcap, no scale): the
        head over the prompt's last hidden state gives ``generate``'s first logits exactly."""
        head = self.handle.model.get_output_embeddings()
        if head is None or not self.passes:
            return False
        mine = head(self.passes[0].last_hidden[:, -1:, :])[0, -1].float()
        return mine.shape == first_logits.shape and bool(torch.equal(mine, first_logits.float()))

    def _hidden_states(self) -> tuple[torch.Tensor, ...] | None:
        if "hidden_states" not in self.wanted or any(p.hidden_states is None for p in self.passes):
            return None
        per_pass = [p.hidden_states for p in self.passes]
        return tuple(torch.cat(layer, dim=1) for layer in zip(*per_pass))


def join_layer(parts: list[tuple[int, int, LayerCall]], n: int) -> LayerCall | None:
    """One layer's calls of consecutive passes (each: first and end position of its queries, its call) as the
    call one pass over ``n`` tokens would have made; None when they cannot be joined exactly (a position bias,
    another module, a pass that did not see exactly the keys before its end)."""
    first = parts[0][2]
    for start, stop, call in parts:
        if call.module_name != first.module_name or "bias" in call.tensors:
            return None
        shapes = [tuple(t.shape[-2:]) for name, t in call.tensors.items() if name in ("attentions", "mask")]
        if any(shape != (stop - start, stop) for shape in shapes) or start >= stop:
            return None
    last = parts[-1][2]
    joined = LayerCall(
        role=first.role,
        module_name=first.module_name,
        scaling=first.scaling,
        softcap=first.softcap,
        heads=first.heads,
        kv_heads=first.kv_heads,
        sinks=first.sinks,
    )
    for name in ("keys", "values"):
        if name in last.tensors:
            if last.tensors[name].shape[2] != n:
                return None
            joined.tensors[name] = last.tensors[name]
    for name, axis in (("queries", 2), ("head_outputs", 1)):
        if name in first.tensors:
            joined.tensors[name] = torch.cat([c.tensors[name] for _, _, c in parts], dim=axis)
    if any("mask" in c.tensors for _, _, c in parts):
        dtype = next(c.tensors["mask"].dtype for _, _, c in parts if "mask" in c.tensors)
        if dtype == torch.bool:
            return None  # eager masks are additive
        hidden = torch.finfo(dtype).min
        rows = [(s, e, c.tensors.get("mask", torch.zeros((1, 1, e - s, e), dtype=dtype))) for s, e, c in parts]
        joined.tensors["mask"] = _square(rows, n, hidden)
    return joined


def _weights(spans: list[tuple[int, int, list[LayerCall]]], n: int) -> torch.Tensor:
    """(layers, heads, n, n) attention weights from each pass's rows (``start:stop`` over keys ``0:stop``, as
    `join_layer` checked), 0 on the keys after each row: in one array, every weight copied once."""
    first = spans[0][2][0].tensors["attentions"]
    out = torch.zeros((len(spans[0][2]), first.shape[1], n, n), dtype=first.dtype)
    for start, stop, calls in spans:
        for layer, call in enumerate(calls):
            out[layer, :, start:stop, :stop] = call.tensors["attentions"][0]
    return out


def _square(rows: list[tuple[int, int, torch.Tensor]], n: int, fill: float) -> torch.Tensor:
    """(batch, heads, n, n) from blocks of query rows ``start:stop`` over keys ``0:stop``, ``fill`` elsewhere."""
    first = rows[0][2]
    out = torch.full((first.shape[0], first.shape[1], n, n), fill, dtype=first.dtype, device=first.device)
    for start, stop, block in rows:
        out[:, :, start:stop, :stop] = block
    return out
