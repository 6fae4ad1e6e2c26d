"""Helpers of the long-context view tests: a decoder with room for thousands of positions, on-demand captures
with small blocks, and a decoder of the top-keys layers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import transformers

import attnscope
from attnscope.analysis import long
from attnscope.capture.lazy import LazyAttention
from attnscope.capture.quiet import quiet_transformers

from .tiny_models import SMALL, llama_tokenizer

WORDS = (
    "the girl ran to a local pub to escape the din of her city while rain fell on the old roofs and "
    "a dog slept by the door as friends talked about books maps trains and the sea"
).split()


def long_text(words: int, seed: int = 0) -> str:
    """``words`` seeded words (about two tokens each for the tiny Llama's tokenizer)."""
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(WORDS, size=words))


def build_long_llama(directory: Path, positions: int = 4096, sharpen: float = 16.0) -> Path:
    """A tiny random Llama (2 layers, 4 heads, 2 key/value heads) with room for ``positions`` tokens, its query
    and key projections scaled by ``sharpen``."""
    tokenizer = llama_tokenizer()
    tokenizer.model_max_length = positions
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        num_key_value_heads=2,
        bos_token_id=1,
        eos_token_id=2,
        **{**SMALL, "max_position_embeddings": positions},
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():  # sharper attention than a random model's near-uniform rows: lines worth drawing
        for layer in model.model.layers:
            layer.self_attn.q_proj.weight.mul_(sharpen)
            layer.self_attn.k_proj.weight.mul_(sharpen)
    with quiet_transformers():
        model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def on_demand(handle, text: str, rows: int = 4, **options):
    """An on-demand capture whose stacks compute ``rows`` query rows per block."""
    cap = attnscope.capture(handle, text, attention="on_demand", **options)
    for stack in cap.stacks.values():
        if isinstance(stack.attentions, LazyAttention):
            stack.attentions.block_bytes = stack.attentions.shape[3] * 13 * rows
    return cap


def decode_top_layer(data: bytes, heads: int, queries: int, narrow: bool = True, exact: bool = False):
    """A top-keys layer's bytes as per-row lists: (keys, bytes[, float32 weights]) for each (head, query) row."""
    rows = heads * queries
    starts = np.frombuffer(data, dtype="<u4", count=rows + 1)
    total = int(starts[-1])
    at = 4 * (rows + 1)
    width = 2 if narrow else 4
    keys = np.frombuffer(data, dtype="<u2" if narrow else "<u4", count=total, offset=at)
    codes = np.frombuffer(data, dtype=np.uint8, count=total, offset=at + width * total)
    end = at + (width + 1) * total
    weights = np.frombuffer(data[end:], dtype="<f4") if exact else None
    assert len(data) == end + (4 * total if exact else 0)
    out = []
    for r in range(rows):
        part = slice(int(starts[r]), int(starts[r + 1]))
        out.append((keys[part], codes[part], None if weights is None else weights[part]))
    return out


def top_keys(attentions, layer: int, k: int = 8, *, heads=None, rows=None):
    """`attnscope.analysis.long.top_keys`, what the payload's lines are made of."""
    return long.top_keys(attentions, layer, k, heads=heads, rows=rows)
