"""Tiny decoders whose attention adds an ALiBi bias through transformers' attention interface, for the tests.

Bloom, MPT and Falcon (transformers 5) compute attention inside their own modules, so their ALiBi never
reaches an attention function. These models send it there the two ways a model on the interface can: as
a ``position_bias`` argument (how T5 passes its bias; MPT's form, slope × key position) or folded into
the additive mask (Falcon's form, per head). Built from the tiny Llama's weights, with its rotary embedding
unused and each attention module's class swapped for one of these (a real forward pass through
transformers' masks and attention functions; nothing is stubbed).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import transformers
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.bloom.modeling_bloom import _get_alibi_slopes
from transformers.models.llama.modeling_llama import LlamaAttention

FORMS = ("by_key", "relative", "folded", "content")
"""``by_key``: slope × key position as ``position_bias`` (1, heads, query, key); ``relative``: slope × (key −
query) so; ``folded``: slope × key position / sqrt(head_dim) added to the additive mask (batch, heads, query,
key), as Falcon does; ``content``: a bias that is no function of positions (fixed random values per query and
key), which no kept form rebuilds."""


class _AlibiAttention(LlamaAttention):
    form = "by_key"

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: Any = None,
        attention_mask: torch.Tensor | None = None,
        past_key_values: Any = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (*hidden_states.shape[:-1], -1, self.head_dim)
        query = self.q_proj(hidden_states).view(shape).transpose(1, 2)
        key = self.k_proj(hidden_states).view(shape).transpose(1, 2)
        value = self.v_proj(hidden_states).view(shape).transpose(1, 2)
        queries, keys, heads = query.shape[2], key.shape[2], query.shape[1]
        slopes = _get_alibi_slopes(heads, query.device)[:, None, None]  # (heads, 1, 1)
        positions = torch.arange(keys, dtype=torch.float32)
        if self.form == "relative":
            kwargs["position_bias"] = (slopes * (positions[None, :] - torch.arange(queries)[:, None]))[None]
        elif self.form == "by_key":
            kwargs["position_bias"] = (slopes * positions).expand(heads, queries, keys)[None]
        elif self.form == "content":
            noise = torch.Generator().manual_seed(self.layer_idx)
            kwargs["position_bias"] = torch.randn((1, heads, queries, keys), generator=noise)
        else:
            attention_mask = _folded(attention_mask, slopes * positions / math.sqrt(self.head_dim), queries, keys)
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention_forward)
        output, weights = attention(self, query, key, value, attention_mask, scaling=self.scaling, **kwargs)
        return self.o_proj(output.reshape(*hidden_states.shape[:-1], -1).contiguous()), weights


def eager_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    position_bias: torch.Tensor | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """These models' eager attention (the capture's eager mode calls it): scale · q·kᵀ, + position_bias,
    + the additive mask, softmax in float32."""
    groups = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if position_bias is not None:
        scores = scores + position_bias
    if attention_mask is not None:
        scores = scores + attention_mask
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


def _folded(mask: torch.Tensor | None, alibi: torch.Tensor, queries: int, keys: int) -> torch.Tensor:
    """The additive form of ``mask`` (None: causal; bool: True seen) plus ``alibi`` (heads, 1, key): (batch,
    heads, query, key)."""
    if mask is None:
        mask = torch.ones(queries, keys, dtype=torch.bool).tril()[None, None]
    if mask.dtype == torch.bool:
        mask = torch.where(mask, 0.0, torch.finfo(torch.float32).min)
    return mask + alibi[None]


def alibi_model(path: Any, form: str) -> transformers.PreTrainedModel:
    """The tiny Llama saved at ``path`` turned into an ALiBi decoder of ``form`` (`FORMS`), in eval mode."""
    model = transformers.AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager")
    attention = type(f"Alibi{form.title()}Attention", (_AlibiAttention,), {"form": form})
    for layer in model.model.layers:
        layer.self_attn.__class__ = attention
    return model.eval()
