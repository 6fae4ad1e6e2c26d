"""The attention function attnscope registers with transformers, and the context that records through it.

During a capture the model's attention implementation is switched to ``IMPLEMENTATION``. Our function
calls the model family's *own* eager attention (so weights are exactly what the model computes) and
records its inputs and outputs: queries and keys after rotary embeddings, values, the mask and any
additive bias, the weights and the per-head outputs. Outside a capture the function behaves like
eager attention and records nothing. The model's implementation is restored when the context exits.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from transformers import PreTrainedModel

from .loading import quiet_transformers

IMPLEMENTATION = "attnscope_capture"

_ACTIVE: ContextVar[Recorder | None] = ContextVar("attnscope_recorder", default=None)


def _generic_eager(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eager attention for families whose module file has no eager function of its own."""
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    scale = query.size(-1) ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(2, 3)) * scale
    if kwargs.get("position_bias") is not None:
        scores = scores + kwargs["position_bias"]
    if attention_mask is not None:
        scores = scores + attention_mask[..., : key.shape[-2]]
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    output = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return output, weights


_EAGER: dict[type, Callable[..., Any]] = {}  # per attention module class: a handful in any process


def eager_function_for(module_type: type) -> Callable[..., Any]:
    """The eager attention function of the modeling file that defines ``module_type`` (looked up once)."""
    found = _EAGER.get(module_type)
    if found is None:
        namespace = importlib.import_module(module_type.__module__)
        function = getattr(namespace, "eager_attention_forward", None)
        found = _EAGER[module_type] = function if callable(function) else _generic_eager
    return found


def _attention_function(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    eager = eager_function_for(type(module))
    output, weights = eager(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs)
    recorder = _ACTIVE.get()
    if recorder is not None:
        recorder.record(module, query, key, value, attention_mask, scaling, kwargs, output, weights)
    return output, weights


_registered = False


def ensure_registered() -> None:
    """Register our attention function and the eager mask format under ``IMPLEMENTATION`` (idempotent)."""
    global _registered
    if _registered:
        return
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(IMPLEMENTATION, _attention_function)
    AttentionMaskInterface.register(IMPLEMENTATION, eager_mask)
    _registered = True


@dataclass
class LayerCall:
    """One call of an attention module: the tensors kept for the fields asked, batch first.

    ``tensors`` holds any of: queries (b, h, q, d), keys/values (b, kv, k, d), attentions (b, h, q, k),
    head_outputs (b, q, h, d), mask (b, 1|h, q, k) additive, bias (b|1, h, q, k).
    """

    role: str
    module_name: str
    scaling: float
    softcap: float | None
    heads: int
    kv_heads: int
    sinks: torch.Tensor | None = None
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)


class Recorder:
    """Collects `LayerCall`s during one forward pass, keeping only the ``fields`` asked for."""

    def __init__(self, model: torch.nn.Module, fields: set[str], role_of: Callable[[str, Any], str]):
        self.fields = fields
        self.calls: list[LayerCall] = []
        self._names = {id(m): n for n, m in model.named_modules()}
        self._role_of = role_of

    def record(
        self,
        module: Any,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None,
        scaling: float | None,
        kwargs: dict[str, Any],
        output: torch.Tensor,
        weights: torch.Tensor,
    ) -> None:
        name = self._names.get(id(module), type(module).__name__)
        scale = query.size(-1) ** -0.5 if scaling is None else float(scaling)
        call = LayerCall(
            role=self._role_of(name, module),
            module_name=name,
            scaling=scale,
            softcap=kwargs.get("softcap"),
            heads=query.shape[1],
            kv_heads=key.shape[1],
            sinks=_sinks(module, kwargs),
        )
        wanted = {
            "attentions": weights,
            "queries": query,
            "keys": key,
            "values": value,
            "head_outputs": output,
            # the mask yields both `allowed` and any finite additive term folded into it
            "mask": mask if self.fields & {"allowed", "bias"} else None,
            "bias": kwargs.get("position_bias") if "bias" in self.fields else None,
        }
        for name_, tensor in wanted.items():
            if tensor is not None and (name_ in self.fields or name_ in ("mask", "bias")):
                call.tensors[name_] = tensor.detach()
        self.calls.append(call)


def _sinks(module: Any, kwargs: dict[str, Any]) -> torch.Tensor | None:
    """Per-head attention-sink logits (GPT-OSS): an extra softmax column that is then dropped."""
    sinks = kwargs.get("s_aux")
    if sinks is None:
        sinks = getattr(module, "sinks", None)
    return sinks.detach().float().reshape(-1).cpu() if isinstance(sinks, torch.Tensor) else None


def _configs(model: torch.nn.Module) -> list[Any]:
    """Every config object reachable from the model: its own, its sub-configs, its sub-models'."""
    seen: dict[int, Any] = {}
    pending = [model.config] + [m.config for m in model.modules() if hasattr(m, "config")]
    while pending:
        config = pending.pop()
        if id(config) in seen or not hasattr(config, "_attn_implementation_internal"):
            continue
        seen[id(config)] = config
        for key in getattr(config, "sub_configs", {}) or {}:
            sub = getattr(config, key, None)
            if sub is not None:
                pending.append(sub)
    return list(seen.values())


@contextlib.contextmanager
def recording(model: PreTrainedModel, fields: set[str], role_of: Callable[[str, Any], str]) -> Iterator[Recorder]:
    """Switch ``model`` to the recording attention for one block; restore every config afterwards."""
    ensure_registered()
    configs = _configs(model)
    previous = [(c, c._attn_implementation_internal) for c in configs]
    recorder = Recorder(model, fields, role_of)
    token = _ACTIVE.set(recorder)
    try:
        with quiet_transformers():
            model.set_attn_implementation(IMPLEMENTATION)
        yield recorder
    finally:
        _ACTIVE.reset(token)
        for config, implementation in previous:
            config._attn_implementation_internal = implementation
