"""Assembling what the recorder saw in one batched forward pass into each input's `AttentionStack`s.

Recorded tensors are batch-first (`LayerCall`); each input's stacks cut its rows out (queries and keys
to its own length), expand grouped key/value heads, and in on-demand captures wrap queries, keys and
mask structures in a `LazyAttention` instead of weights.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch

from .inputs import Tokens
from .lazy import LazyAttention, LazyLayer
from .loading import ModelHandle
from .recorder import LayerCall
from .result import AttentionStack


def to_numpy(tensor: torch.Tensor, dtype: torch.dtype) -> np.ndarray:
    """The tensor on the CPU in ``dtype``, as numpy (sharing memory where no conversion is needed)."""
    return tensor.to(dtype=dtype, device="cpu").numpy()


def lengths(role: str, tokens: Tokens, dec: Tokens | None) -> tuple[int, int]:
    """(query length, key length) of a stack for one input."""
    n_enc, n_dec = len(tokens), len(dec) if dec is not None else 0
    return {"encoder": (n_enc, n_enc), "decoder": (n_dec or n_enc, n_dec or n_enc), "cross": (n_dec, n_enc)}[role]


def by_role(calls: list[LayerCall]) -> dict[str, list[LayerCall]]:
    by_role: dict[str, list[LayerCall]] = {}
    for call in calls:
        by_role.setdefault(call.role, []).append(call)
    return by_role


def stacks_from_calls(
    handle: ModelHandle,
    calls: list[LayerCall],
    b: int,
    tokens: Tokens,
    dec: Tokens | None,
    wanted: set[str],
    dtype: torch.dtype,
) -> dict[str, AttentionStack]:
    """Input ``b``'s stacks ("encoder", "decoder", "cross") from the recorded calls, with the ``wanted``
    fields in ``dtype`` (on-demand attentions: a `LazyAttention`, float32)."""
    per_role = by_role(calls)
    stacks = {}
    for role in ("encoder", "decoder", "cross"):
        role_calls = per_role.get(role)
        if not role_calls:
            continue
        nq, nk = lengths(role, tokens, dec)
        first = role_calls[0]
        groups = first.heads // first.kv_heads
        stack = AttentionStack(
            role=role,
            layers=len(role_calls),
            heads=first.heads,
            scaling=np.array([c.scaling for c in role_calls], dtype=np.float64),
            softcap=[c.softcap for c in role_calls],
            kv_head_of=np.arange(first.heads) // groups,
        )
        sinks = [c.sinks for c in role_calls if c.sinks is not None]
        if len(sinks) == len(role_calls):
            stack.sinks = torch.stack(sinks).numpy()

        def gather(name: str, cut, calls: list[LayerCall] = role_calls) -> np.ndarray | None:
            parts = [cut(c.tensors[name]) for c in calls if name in c.tensors]
            return to_numpy(torch.stack(parts), dtype) if len(parts) == len(calls) else None

        def row(t: torch.Tensor) -> torch.Tensor:  # a tensor's entry for input b (size-1 batches broadcast)
            return t[b if t.shape[0] > 1 else 0]

        if "attentions" in wanted and first.on_demand:
            # array-like (shape, integer indexing, np.asarray): see AttentionStack.attentions
            stack.attentions = cast(np.ndarray, _lazy_attentions(role_calls, b, row, nq, nk, stack))
        elif "attentions" in wanted:
            stack.attentions = gather("attentions", lambda t, nq=nq, nk=nk: row(t)[:, :nq, :nk])
        if "queries" in wanted:
            stack.queries = gather("queries", lambda t, nq=nq: row(t)[:, :nq])
        for name in ("keys", "values"):
            if name in wanted:
                setattr(
                    stack,
                    name,
                    gather(name, lambda t, nk=nk, groups=groups: row(t)[:, :nk].repeat_interleave(groups, dim=0)),
                )
        if "head_outputs" in wanted:
            stack.head_outputs = gather("head_outputs", lambda t, nq=nq: row(t)[:nq].transpose(0, 1))
        if wanted & {"allowed", "bias"}:
            _mask_and_bias(stack, role_calls, b, row, nq, nk, wanted, dtype)
        stacks[role] = stack
    return stacks


def _lazy_attentions(calls: list[LayerCall], b: int, row, nq: int, nk: int, stack: AttentionStack) -> LazyAttention:
    """Input ``b``'s weights of an on-demand stack: queries, keys, scale and mask structure per layer
    (views of the recorded batch tensors), or the eager weights of layers that could not keep those."""
    layers = []
    for call in calls:
        if "attentions" in call.tensors:
            dense = to_numpy(row(call.tensors["attentions"])[:, :nq, :nk], torch.float32)
            layers.append(LazyLayer(dense=dense, eager_reason=call.eager_reason))
            continue
        assert call.structure is not None  # a layer without weights kept had a patterned mask
        layers.append(
            LazyLayer(
                queries=to_numpy(row(call.tensors["queries"])[:, :nq], torch.float32),
                keys=to_numpy(row(call.tensors["keys"])[:, :nk], torch.float32),
                scale=call.scaling,
                softcap=call.softcap,
                sinks=None if call.sinks is None else call.sinks.numpy(),
                structure=call.structure.for_input(b, nk),
                eager_reason=call.eager_reason,
                bias=None if call.position_bias is None else call.position_bias.for_input(b),
            )
        )
    assert stack.kv_head_of is not None
    return LazyAttention(layers, stack.heads, nq, nk, stack.kv_head_of)


def _mask_and_bias(
    stack: AttentionStack,
    calls: list[LayerCall],
    b: int,
    row,
    nq: int,
    nk: int,
    wanted: set[str],
    dtype: torch.dtype,
) -> None:
    """Split each layer's additive mask into ``allowed`` (hidden or not) and any finite bias it carries
    (on demand: ``allowed`` from the mask's structure where it has one)."""
    allowed, biases = [], []
    for call in calls:
        mask = call.tensors.get("mask")
        bias = call.tensors.get("bias")
        bias = row(bias)[:, :nq, :nk].float() if bias is not None else None
        extra = None
        if mask is None:
            visible = torch.ones((nq, nk), dtype=torch.bool)
        else:
            m = row(mask)[:, :nq, :nk]
            if m.dtype == torch.bool:
                visible_heads = m
            else:
                visible_heads = m > torch.finfo(m.dtype).min / 2
                extra = torch.where(visible_heads, m, torch.zeros((), dtype=m.dtype)).float()
                extra = extra if bool(extra.any()) else None
            visible = visible_heads.all(dim=0)
        if call.structure is not None:  # the pattern, read from a mask kept only for a term folded into it
            visible = torch.from_numpy(call.structure.for_input(b, nk).allowed(np.arange(nq), nk))
        if extra is not None:
            bias = extra.expand(stack.heads, nq, nk) if bias is None else bias + extra
        allowed.append(visible.cpu())
        biases.append(bias)
    if "allowed" in wanted:
        stack.allowed = torch.stack(allowed).numpy()
    if "bias" in wanted and any(b is not None for b in biases):
        zeros = torch.zeros((stack.heads, nq, nk))
        stack.bias = to_numpy(torch.stack([b if b is not None else zeros for b in biases]), dtype)


def stacks_from_outputs(
    handle: ModelHandle, outputs: Any, b: int, tokens: Tokens, dec: Tokens | None, wanted: set[str], dtype: torch.dtype
) -> dict[str, AttentionStack]:
    """Fallback for models outside the attention interface: weights from ``output_attentions``."""
    sources = {
        "encoder": getattr(outputs, "encoder_attentions", None)
        or (getattr(outputs, "attentions", None) if handle.kind == "encoder" else None),
        "decoder": getattr(outputs, "decoder_attentions", None)
        or (getattr(outputs, "attentions", None) if handle.kind == "decoder" else None),
        "cross": getattr(outputs, "cross_attentions", None) if handle.kind == "encoder-decoder" else None,
    }
    stacks = {}
    for role, layers in sources.items():
        if not layers:
            continue
        nq, nk = lengths(role, tokens, dec)
        weights = torch.stack([layer[b, :, :nq, :nk] for layer in layers])
        stacks[role] = AttentionStack(role=role, layers=weights.shape[0], heads=weights.shape[1])
        if "attentions" in wanted:
            stacks[role].attentions = to_numpy(weights, dtype)
    return stacks
