"""The issue's changed checkpoint, shared by the comparison tests and bench/diff.py: a second load of the default
model whose layer 2 head 5 has its query weights and bias zeroed, so its scores are 0 and it attends uniformly."""

from __future__ import annotations

from pathlib import Path

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


def save_zeroed_copy(handle: attnscope.ModelHandle, directory: Path) -> Path:
    """Save ``handle`` (`zeroed_query_copy`'s) with its tokenizer to ``directory``, a checkpoint that loads by path
    (``attnscope.load(str(directory))``, ``attnscope serve --model DIRECTORY``); returns ``directory``."""
    handle.model.save_pretrained(directory)
    handle.tokenizer.save_pretrained(directory)
    return directory
