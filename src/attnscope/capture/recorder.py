"""The attention functions attnscope registers with transformers, and the context that records through them.

During a capture the model's attention implementation is switched to one of two modes (`MODES`):

- ``"eager"`` (``IMPLEMENTATION``): our function calls the model family's *own* eager attention (so
  weights are exactly what the model computes) and records its inputs and outputs: queries and keys
  after rotary embeddings, values, the mask and any additive bias, the weights and the per-head outputs.
  Eager attention materialises ``heads × query × key`` weights per layer.
- ``"on_demand"`` (``IMPLEMENTATION_ON_DEMAND``, masks in SDPA's boolean form): the layer's output comes
  from transformers' SDPA attention (``torch.nn.functional.scaled_dot_product_attention`` with the
  model's scale, grouped-query heads and mask), and what determines the weights is recorded instead of
  them: queries and keys after rotary embeddings (keys at their key/value head count), the scale, and the
  mask's structure (`MaskStructure`: causal, sliding window, padding), and any position bias per head
  (`PositionBias`: T5's relative buckets passed as ``position_bias``, ALiBi passed so or folded into the
  additive mask). Nothing of size ``query × key`` is kept. A module whose attention SDPA cannot express
  exactly falls back to its family's eager attention (`eager_reason`): a softcap, attention sinks or a
  ``position_bias`` argument (weights still computed on demand from the recorded terms), or a mask that is
  not a pattern or a bias that is neither a function of key − query nor of the key alone (weights kept
  dense).

Outside a capture the functions compute attention and record nothing. The model's implementation is
restored when the context exits.
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
from .mask_structure import MaskStructure
from .position_bias import PositionBias, Terms, read_terms

IMPLEMENTATION = "attnscope_capture"
IMPLEMENTATION_ON_DEMAND = "attnscope_on_demand"
MODES = ("eager", "on_demand")

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


def _on_demand_function(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """SDPA's output for modules it computes exactly (weights not materialised), eager's for the others."""
    recorder = _ACTIVE.get()
    is_causal = kwargs.get("is_causal")
    is_causal = getattr(module, "is_causal", True) if is_causal is None else is_causal
    causal_without_mask = bool(is_causal) and query.shape[2] > 1  # as transformers' SDPA function decides
    bias = kwargs.get("position_bias")
    terms = recorder.terms(attention_mask, bias, causal_without_mask, query, key) if recorder else None
    reason = eager_reason(module, kwargs, terms, recorder.sdpa_supported if recorder else True)
    if reason is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        output, weights = sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    else:
        mask = _additive_mask(attention_mask, causal_without_mask, query, key)
        eager = eager_function_for(type(module))
        output, weights = eager(module, query, key, value, mask, scaling=scaling, dropout=dropout, **kwargs)
    if recorder is not None:
        recorder.record_on_demand(
            module, query, key, value, attention_mask, scaling, kwargs, output, weights, terms, reason
        )
    return output, weights


def eager_reason(module: Any, kwargs: dict[str, Any], terms: Terms | None, sdpa_supported: bool = True) -> str | None:
    """Why a module's attention must run eager in on-demand mode (None: SDPA computes it exactly)."""
    if kwargs.get("softcap") is not None:
        return "its scores are softcapped"
    if _sinks(module, kwargs) is not None:
        return "it has attention sinks"
    if terms is None or terms.structure is None:
        return "its mask is not a causal, sliding-window or padding pattern"
    if terms.bias_reason is not None:
        return terms.bias_reason
    if kwargs.get("position_bias") is not None:
        return "it adds a position bias (kept per head)"
    if not sdpa_supported:
        return "the model does not support SDPA attention"
    return None


def _additive_mask(
    mask: torch.Tensor | None, causal_without_mask: bool, query: torch.Tensor, key: torch.Tensor
) -> torch.Tensor | None:
    """The eager form of an SDPA mask: 0 where a key is seen, the dtype's minimum where it is hidden."""
    if mask is None and causal_without_mask:
        rows = torch.arange(query.shape[2], device=query.device)[:, None]
        mask = (torch.arange(key.shape[2], device=query.device)[None, :] <= rows)[None, None]
    if mask is None or mask.dtype != torch.bool:
        return mask
    return torch.where(mask, torch.zeros((), dtype=query.dtype), torch.finfo(query.dtype).min)


_registered = False


def ensure_registered() -> None:
    """Register our attention functions with their mask formats (eager's, SDPA's) under our names (idempotent)."""
    global _registered
    if _registered:
        return
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask, sdpa_mask

    AttentionInterface.register(IMPLEMENTATION, _attention_function)
    AttentionMaskInterface.register(IMPLEMENTATION, eager_mask)
    AttentionInterface.register(IMPLEMENTATION_ON_DEMAND, _on_demand_function)
    AttentionMaskInterface.register(IMPLEMENTATION_ON_DEMAND, sdpa_mask)
    _registered = True


@dataclass
class LayerCall:
    """One call of an attention module: the tensors kept for the fields asked, batch first.

    ``tensors`` holds any of: queries (b, h, q, d), keys/values (b, kv, k, d), attentions (b, h, q, k),
    head_outputs (b, q, h, d), mask (b, 1|h, q, k) additive or bool (True: seen), bias (b|1, h, q, k).
    On demand, ``structure`` is the mask's (None where it is not a pattern), ``position_bias`` any bias
    kept per head, and ``eager_reason`` says why the module ran eager attention (None where SDPA computed
    it); ``attentions`` are then kept only for eager modules whose weights cannot be rebuilt from the
    recorded terms.
    """

    role: str
    module_name: str
    scaling: float
    softcap: float | None
    heads: int
    kv_heads: int
    sinks: torch.Tensor | None = None
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    structure: MaskStructure | None = None
    eager_reason: str | None = None
    on_demand: bool = False
    position_bias: PositionBias | None = None


class Recorder:
    """Collects `LayerCall`s during one forward pass, keeping only the ``fields`` asked for."""

    def __init__(self, model: torch.nn.Module, fields: set[str], role_of: Callable[[str, Any], str]):
        self.fields = fields
        self.calls: list[LayerCall] = []
        self._names = {id(m): n for n, m in model.named_modules()}
        self._role_of = role_of
        self.sdpa_supported = bool(getattr(model, "_supports_sdpa", True))
        # mask and bias tensors seen in this forward pass (kept so their ids stay theirs) and their terms
        self._terms: dict[Any, tuple[tuple[torch.Tensor | None, torch.Tensor | None], Terms]] = {}

    def terms(
        self,
        mask: torch.Tensor | None,
        bias: torch.Tensor | None,
        causal_without_mask: bool,
        query: torch.Tensor,
        key: torch.Tensor,
    ) -> Terms:
        """The mask's structure and the position bias (`read_terms`), read once per pair of tensors and shape
        (layers of one kind share theirs: T5's layers one bias)."""
        shape = (query.shape[2], key.shape[2])
        found = (("none", causal_without_mask) if mask is None else id(mask), None if bias is None else id(bias), shape)
        if found not in self._terms:
            self._terms[found] = ((mask, bias), read_terms(mask, bias, causal_without_mask, *shape))
        return self._terms[found][1]

    def _call(
        self, module: Any, query: torch.Tensor, key: torch.Tensor, scaling: float | None, kwargs: dict
    ) -> LayerCall:
        name = self._names.get(id(module), type(module).__name__)
        return LayerCall(
            role=self._role_of(name, module),
            module_name=name,
            scaling=query.size(-1) ** -0.5 if scaling is None else float(scaling),
            softcap=kwargs.get("softcap"),
            heads=query.shape[1],
            kv_heads=key.shape[1],
            sinks=_sinks(module, kwargs),
        )

    def record_on_demand(
        self,
        module: Any,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None,
        scaling: float | None,
        kwargs: dict[str, Any],
        output: torch.Tensor,
        weights: torch.Tensor | None,
        terms: Terms | None,
        reason: str | None,
    ) -> None:
        """Keep what determines this module's weights (queries, keys, scale, mask structure, position bias per
        head), not them; eager weights only where an unpatterned mask or a bias of no kept form keeps them from
        being rebuilt."""
        call = self._call(module, query, key, scaling, kwargs)
        terms = terms or Terms(None)
        call.structure, call.eager_reason, call.on_demand = terms.structure, reason, True
        call.position_bias = terms.bias
        kept: dict[str, torch.Tensor | None] = {"queries": query, "keys": key}
        dense = terms.structure is None or terms.bias_reason is not None
        given = terms.structure is None or terms.folded  # a mask whose pattern is not all it holds
        optional = {
            "values": value,
            "head_outputs": output,
            "attentions": weights if dense else None,
            "bias": kwargs.get("position_bias"),
            # such a mask is kept as given when `allowed` or `bias` is asked for
            "mask": mask if given and self.fields & {"allowed", "bias"} else None,
        }
        kept.update({name: t for name, t in optional.items() if name in self.fields or name == "mask"})
        for name, tensor in kept.items():
            if tensor is not None:
                call.tensors[name] = tensor.detach()
        self.calls.append(call)

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
        call = self._call(module, query, key, scaling, kwargs)
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
def recording(
    model: PreTrainedModel, fields: set[str], role_of: Callable[[str, Any], str], mode: str = "eager"
) -> Iterator[Recorder]:
    """Switch ``model`` to the recording attention of ``mode`` (`MODES`) for one block; restore every
    config afterwards."""
    ensure_registered()
    configs = _configs(model)
    previous = [(c, c._attn_implementation_internal) for c in configs]
    recorder = Recorder(model, fields, role_of)
    token = _ACTIVE.set(recorder)
    try:
        with quiet_transformers():
            model.set_attn_implementation(IMPLEMENTATION_ON_DEMAND if mode == "on_demand" else IMPLEMENTATION)
        yield recorder
    finally:
        _ACTIVE.reset(token)
        for config, implementation in previous:
            config._attn_implementation_internal = implementation
