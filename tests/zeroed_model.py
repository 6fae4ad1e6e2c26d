"""The issue's changed checkpoint, shared by the comparison tests and bench/diff.py: a second load of the default
model whose layer 2 head 5 has its query weights and bias zeroed, so its scores are 0 and it attends uniformly."""

from __future__ import annotations

import torch

import attnscope

ZEROED = (2, 5)
"""(layer, head) whose queries are zeroed."""


def zeroed_query_copy() -> attnscope.ModelHandle:
    """A fresh load of the default model with head `ZEROED`'s query weights and bias set to 0."""
    handle = attnscope.load("default")
    layer, head = ZEROED
    query = handle.model.encoder.layer[layer].attention.self.query
    width = handle.model.config.hidden_size // handle.model.config.num_attention_heads
    with torch.no_grad():
        query.weight[head * width : (head + 1) * width] = 0
        query.bias[head * width : (head + 1) * width] = 0
    return handle
