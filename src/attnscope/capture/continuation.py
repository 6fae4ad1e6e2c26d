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

On demand (``attention="on_demand"``, or "auto" past `EAGER_LIMIT_BYTES` at the most tokens the continuation can
reach) the passes keep queries and keys instead of weights (the eager weights of one layer live only while it
runs, as in plain ``generate``), each pass's mask is checked to be causal over exactly the keys before its end,
and the joined capture holds a `LazyAttention` over the causal structure, as `engine.capture` on demand would.

Equal to the one-pass capture within float rounding (the cached keys and values are the same computation).
`capture` returns None, and the caller captures the final ids in one pass as before, when the passes cannot be
joined exactly: a model with a position bias, a cache that drops keys (sliding windows), logits that are not
the head's output as it is (softcapping, scaling), or a model outside the attention interface. Models not loaded
with eager attention (`joinable`) and encoder-decoders are captured in one more pass too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from .engine import DTYPES, EAGER_LIMIT_BYTES, captures_from_run
from .from_ids import tokens_from_ids
from .loading import ModelHandle
from .mask_structure import MaskStructure
from .recorder import LayerCall, Recorder, recording
from .result import Capture


def joinable(handle: ModelHandle) -> bool:
    """Whether a continuation of ``handle``'s model can be captured from its generation's passes: a causal decoder
    loaded with eager attention (as `load` loads every model), whose passes the recorder hears exactly."""
    return handle.kind == "decoder" and getattr(handle.model.config, "_attn_implementation", None) == "eager"


def eager_fits(handle: ModelHandle, tokens: int) -> bool:
    """Whether ``attention="auto"`` captures ``tokens`` tokens of a decoder eagerly (within `EAGER_LIMIT_BYTES`)."""
    stack = handle.stacks[handle.main_stack]
    return stack.layers * stack.heads * tokens * tokens * 4 <= EAGER_LIMIT_BYTES


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
    capture's fields, ``attention`` its mode ("auto", "eager" or "on_demand", as `engine.capture` takes it;
    ``longest``: the most tokens the continuation can reach, which decides "auto" before generating). On demand,
    the passes keep queries, keys and masks, not weights, and the capture's weights are a `LazyAttention`."""

    handle: ModelHandle
    wanted: set[str]
    attention: str = "auto"
    longest: int = 0
    passes: list[_Pass] = field(default_factory=list)
    _recorder: Recorder | None = None
    _keep_cache: bool = False

    @property
    def lazy(self) -> bool:
        """Whether the passes keep what determines the weights instead of them (on demand)."""
        return self.attention == "on_demand" or (self.attention == "auto" and not eager_fits(self.handle, self.longest))

    def _recorded(self) -> set[str]:
        if not self.lazy:
            return set(self.wanted)
        return (self.wanted - {"attentions"}) | {"queries", "keys", "allowed"}  # "allowed": the masks are kept

    def generate_options(self) -> dict[str, Any]:
        """What ``model.generate`` must be asked for: the raw logits (to check the head) and hidden states."""
        return {"output_logits": True, "output_hidden_states": "hidden_states" in self.wanted}

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """Record every forward pass of the model in this block (the caller holds the model's lock)."""
        model = self.handle.model
        base = model.base_model
        engine_role = self.handle.main_stack
        with recording(model, self._recorded(), lambda name, module: engine_role, "eager") as recorder:
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
        joined: list[LayerCall] = []
        checked: dict[int, bool] = {}
        for layer in range(layers):
            parts = [(s, e, c[layer]) for s, e, c in spans]
            if self.lazy:
                call = join_on_demand(parts, len(sequence), self.wanted, checked)
            else:
                call = join_layer(parts, len(sequence))
            if call is None:
                return None
            joined.append(call)
        if self.lazy:
            return self._lazy_capture(sequence, joined, dtype, top_k)
        weights = _weights(spans, len(sequence)) if "attentions" in self.wanted else None
        outputs = self._outputs()
        tokens = tokens_from_ids(self.handle, sequence)
        wanted = self.wanted - {"attentions"}  # the weights are placed in one array here, not stacked per layer
        cap = captures_from_run(self.handle, [tokens], None, outputs, joined, wanted, dtype, top_k, "eager")[0]
        if weights is not None:
            cap.main.attentions = weights.to(dtype=DTYPES[dtype]).numpy()
        return cap

    def _outputs(self) -> SimpleNamespace:
        """The model's outputs one pass would have given: logits of every position and hidden states if wanted."""
        head = self.handle.model.get_output_embeddings()
        final = torch.cat([p.last_hidden for p in self.passes], dim=1)
        return SimpleNamespace(logits=head(final), hidden_states=self._hidden_states())

    def _lazy_capture(self, sequence: list[int], calls: list[LayerCall], dtype: str, top_k: int) -> Capture:
        """An on-demand capture of the joined calls; under "auto", materialised when ``sequence`` (shorter than
        ``longest`` where the model ended its text) fits eager capture, as one pass over it would have been."""
        tokens = tokens_from_ids(self.handle, sequence)
        outputs = self._outputs()
        cap = captures_from_run(self.handle, [tokens], None, outputs, calls, self.wanted, dtype, top_k, "on_demand")[0]
        if self.attention == "auto" and eager_fits(self.handle, len(sequence)) and "attentions" in self.wanted:
            cap.main.attentions = np.asarray(cap.main.attentions).astype(np.dtype(dtype), copy=False)
            cap.attention_mode = "eager"
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
    joined = _call_like(first)
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


def _call_like(first: LayerCall, **extra: Any) -> LayerCall:
    """An empty call of ``first``'s module with its settings (role, scaling, softcap, heads, sinks)."""
    return LayerCall(
        role=first.role,
        module_name=first.module_name,
        scaling=first.scaling,
        softcap=first.softcap,
        heads=first.heads,
        kv_heads=first.kv_heads,
        sinks=first.sinks,
        **extra,
    )


def join_on_demand(
    parts: list[tuple[int, int, LayerCall]], n: int, wanted: set[str], checked: dict[int, bool]
) -> LayerCall | None:
    """One layer's calls of consecutive passes (as `join_layer`) as an on-demand call over ``n`` tokens: queries
    and head outputs of every pass, keys and values of the last, the causal mask as its structure; None unless
    every pass's mask is causal over exactly the keys before its end, with nothing added. ``checked``: each mask's
    verdict by ``id``, shared by the layers of one join (the tensors stay alive in the calls meanwhile)."""
    first, last = parts[0][2], parts[-1][2]
    for start, stop, call in parts:
        if call.module_name != first.module_name or "bias" in call.tensors or not _causal(call, start, stop, checked):
            return None
    if last.tensors["keys"].shape[2] != n or ("values" in wanted and last.tensors["values"].shape[2] != n):
        return None
    joined = _call_like(first, structure=MaskStructure(causal=True), on_demand=True)
    joined.tensors["queries"] = torch.cat([c.tensors["queries"] for _, _, c in parts], dim=2)
    joined.tensors["keys"] = last.tensors["keys"]
    if "values" in wanted:
        joined.tensors["values"] = last.tensors["values"]
    if "head_outputs" in wanted:
        joined.tensors["head_outputs"] = torch.cat([c.tensors["head_outputs"] for _, _, c in parts], dim=1)
    return joined


def _causal(call: LayerCall, start: int, stop: int, checked: dict[int, bool]) -> bool:
    """Whether the call's queries (positions ``start:stop``) saw exactly the keys up to their own position, through
    an additive mask of 0 and the dtype's minimum (or none, for one query, which then sees every key)."""
    queries = call.tensors["queries"].shape[2]
    mask = call.tensors.get("mask")
    if queries != stop - start:
        return False
    if mask is None:
        return queries == 1
    if id(mask) not in checked:  # the layers of a pass share one mask tensor (alive while the calls are): read once
        checked[id(mask)] = _causal_mask(mask, start, stop)
    return checked[id(mask)]


def _causal_mask(mask: torch.Tensor, start: int, stop: int) -> bool:
    queries = stop - start
    if mask.dtype == torch.bool or mask.dim() != 4 or mask.shape[1] != 1 or tuple(mask.shape[-2:]) != (queries, stop):
        return False
    seen = mask > torch.finfo(mask.dtype).min / 2
    rows = torch.arange(start, stop, device=mask.device)[:, None]
    causal = torch.arange(stop, device=mask.device)[None, :] <= rows
    return bool(torch.equal(seen[0, 0], causal)) and not bool(torch.where(seen, mask, 0).any())


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
