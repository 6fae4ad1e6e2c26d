"""The parts of one query token's attention in one head: BertViz's neuron view, for any architecture.

Works on a captured `AttentionStack` that holds queries and keys (``fields="all"``): the query
vector q, every key k, the elementwise products q×k, the dot products q·k, their scaled form, any
additive bias and the mask, and the softmax, which equals the model's own attention row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..capture.result import AttentionStack


@dataclass(frozen=True)
class NeuronTerms:
    """Everything that makes up ``attentions[layer, head, query, :]``. Shapes use ``key`` = key positions.

    - ``query_vector``: (head_dim,) q after rotary embeddings; ``keys``: (key, head_dim)
    - ``products``: (key, head_dim) the elementwise q×k, whose row sums are ``dots``
    - ``dots``: (key,) q·k; ``scaled``: (key,) ``scaling`` · q·k, then the softcap where the model has one
    - ``bias``: (key,) additive term (T5 position bias...) or None; ``allowed``: (key,) False where masked
    - ``scores``: (key,) what enters the softmax (-inf where masked)
    - ``softmax``: (key,) rebuilt from the terms; ``attention``: (key,) the weights the model produced
    - ``sink``: the head's attention-sink logit where the model has one (GPT-OSS), else None
    """

    layer: int
    head: int
    query: int
    scaling: float
    softcap: float | None
    query_vector: np.ndarray
    keys: np.ndarray
    products: np.ndarray
    dots: np.ndarray
    scaled: np.ndarray
    bias: np.ndarray | None
    allowed: np.ndarray
    scores: np.ndarray
    softmax: np.ndarray
    attention: np.ndarray
    sink: float | None


def neuron_terms(stack: AttentionStack, layer: int, head: int, query: int) -> NeuronTerms:
    """Decompose one attention row of ``stack`` into its terms (see `NeuronTerms`)."""
    scores = stack.scores(layer, head, query)  # (1, 1, key); validates layer, head and query
    scaling = stack.scaling
    assert scaling is not None  # stack.scores refuses a stack without it
    q = stack.require("queries")[layer, head, query].astype(np.float64)
    k = stack.require("keys")[layer, head].astype(np.float64)
    products = q[None, :] * k
    dots = products.sum(axis=-1)
    bias = None if stack.bias is None else stack.bias[layer, head, query].astype(np.float64)
    allowed = np.ones(k.shape[0], dtype=bool) if stack.allowed is None else stack.allowed[layer, query].copy()
    return NeuronTerms(
        layer=layer,
        head=head,
        query=query,
        scaling=float(scaling[layer]),
        softcap=stack.softcap[layer] if stack.softcap else None,
        query_vector=q,
        keys=k,
        products=products,
        dots=dots,
        scaled=stack.scaled(layer, dots),
        bias=bias,
        allowed=allowed,
        scores=scores[0, 0],
        softmax=stack.softmax(layer, scores, head)[0, 0],
        attention=stack.require("attentions")[layer, head, query].astype(np.float64),
        sink=None if stack.sinks is None else float(stack.sinks[layer, head]),
    )
