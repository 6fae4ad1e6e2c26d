"""Ways to combine attention beyond one head: head means and weighted combinations, attention rollout,
value-norm-weighted attention and word-level merging, with `aggregate` as the one entry point over a
`Capture`.

Pure numpy. The views, the app and the head atlas all call these, so "mean of heads", "rollout" or
"attention between words" mean the same thing everywhere. Shapes: attention ``(layers, heads, query,
key)``; values ``(layers, heads, key, head_dim)``; output projections ``(layers, heads, head_dim, hidden)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..capture.inputs import Tokens
from ..capture.result import Capture
from ..errors import InputError, count
from ..selection import check_choices
from .methods import METHODS, NORM_METHODS, PER_HEAD

_BLOCK = 1 << 24  # elements of a (heads, query block, key) temporary in `value_norms_summed`


@dataclass(frozen=True)
class WordAttention:
    """Attention between units: each word of a sentence, and each token that belongs to no word.

    ``weights`` is ``(..., units, units)``; ``unit_word[u]`` is the word index of unit ``u`` (``None``
    for a token outside every word, such as ``[CLS]``); ``unit_tokens[u]`` its token positions.
    """

    weights: np.ndarray
    unit_word: list[int | None]
    unit_tokens: list[list[int]]

    def unit_of_word(self, word: int) -> int:
        """The unit that holds word ``word``; ``KeyError`` when no token of it survived tokenisation."""
        for unit, w in enumerate(self.unit_word):
            if w == word:
                return unit
        raise KeyError(word)


@dataclass(frozen=True)
class Aggregation:
    """What `aggregate` returns: one method's result for one stack of a capture.

    ``weights`` is ``(layers, heads, query, key)`` for the per-head methods ("raw", "value_norm") and
    ``(layers, query, key)`` for the others; ``axes`` names them. ``layers`` and ``heads`` are the
    model's numbers of what it covers (the heads kept, or combined); ``head_weights`` the weights the
    heads were combined with (summing to 1), None for a plain mean or no combination. ``unit`` is
    "probability" (rows sum to 1, or less where a model has attention sinks) or "norm" (a length in the
    hidden state's units; rows do not sum to anything in particular). Rows are ``query_units`` and
    columns ``key_units``: the token positions of each, one per token unless ``words`` merged them.
    """

    method: str
    stack: str
    weights: np.ndarray
    layers: tuple[int, ...]
    heads: tuple[int, ...]
    head_weights: tuple[float, ...] | None
    unit: str
    query_units: list[list[int]]
    key_units: list[list[int]]
    words: bool = False

    @property
    def per_head(self) -> bool:
        return self.method in PER_HEAD

    @property
    def axes(self) -> tuple[str, ...]:
        return ("layer", "head", "query", "key") if self.per_head else ("layer", "query", "key")

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description without the weights."""
        return {
            "method": self.method,
            "stack": self.stack,
            "shape": list(self.weights.shape),
            "axes": list(self.axes),
            "layers": list(self.layers),
            "heads": list(self.heads),
            "head_weights": None if self.head_weights is None else list(self.head_weights),
            "unit": self.unit,
            "words": self.words,
        }


def check_heads(heads: Sequence[int] | None, count: int, what: str = "this stack") -> list[int]:
    """The chosen heads (all ``count`` when None), each in range and named once (`selection.check_choices`)."""
    return check_choices("heads", heads, count, what, unit="head")


def check_head_weights(head_weights: Sequence[float], heads: Sequence[int]) -> np.ndarray:
    """``head_weights`` for the chosen ``heads``, scaled to sum to 1; `InputError` unless there is one
    finite, non-negative number per head and not all are zero."""
    try:
        weights = np.asarray(head_weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"head_weights must be numbers, one per chosen head; got {head_weights!r}") from None
    if weights.ndim != 1 or len(weights) != len(heads):
        chosen = f"{count(len(heads), 'head')} {'is' if len(heads) == 1 else 'are'} chosen"
        raise InputError(
            f"head_weights has {count(weights.size, 'number')} but {chosen} "
            f"({', '.join(map(str, heads))}): give one weight >= 0 per chosen head"
        )
    bad = [i for i, w in enumerate(weights) if not (math.isfinite(w) and w >= 0)]
    if bad:
        raise InputError(f"head_weights must be finite numbers >= 0: got {weights[bad[0]]:g} for head {heads[bad[0]]}")
    if weights.sum() == 0:
        raise InputError("head_weights are all zero: give at least one chosen head a weight above 0")
    return weights / weights.sum()


def combine_heads(weights: np.ndarray, head_weights: np.ndarray | None = None) -> np.ndarray:
    """The heads of ``(..., heads, query, key)`` combined into ``(..., query, key)``: their mean, or the
    sum weighted by ``head_weights`` (one per head, as `check_head_weights` returns them)."""
    array = np.asarray(weights)
    if array.ndim < 3:
        raise ValueError(f"weights must be (..., heads, query, key), got shape {array.shape}")
    out = np.result_type(array.dtype, np.float32)
    if head_weights is None:
        return array.mean(axis=-3, dtype=np.float64).astype(out, copy=False)
    return np.einsum("...hqk,h->...qk", array.astype(np.float64, copy=False), head_weights).astype(out, copy=False)


def normalise_rows(weights: np.ndarray) -> np.ndarray:
    """``weights`` with each row (last axis) divided by its sum, so it sums to 1; all-zero rows stay zero."""
    array = np.asarray(weights)
    sums = array.sum(axis=-1, keepdims=True, dtype=np.float64)
    out = np.zeros(array.shape, dtype=np.result_type(array.dtype, np.float32))
    return np.divide(array, sums, out=out, where=sums > 0)


def rollout(layer_weights: np.ndarray) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020) of per-layer attention ``(layers, tokens, tokens)``.

    Each layer's matrix gets the residual connection, ``Â_l = 0.5·A_l + 0.5·I`` with rows scaled back
    to sum 1, and the layers are multiplied up: ``R_0 = Â_0``, ``R_l = Â_l · R_{l-1}``. Returns every
    ``R_l``, ``(layers, tokens, tokens)``: row ``i`` of ``R_l`` is how much of token ``i``'s
    representation after layer ``l`` traces back to each input token. Causal masks carry through
    (``R_l`` stays lower-triangular) and rows still sum to 1.
    """
    array = np.asarray(layer_weights)
    if array.ndim != 3 or array.shape[1] != array.shape[2]:
        raise ValueError(f"rollout needs square per-layer attention (layers, tokens, tokens), got shape {array.shape}")
    identity = np.eye(array.shape[1])
    result = np.empty(array.shape, dtype=np.result_type(array.dtype, np.float32))
    rolled = identity
    for layer in range(array.shape[0]):
        with_residual = normalise_rows(0.5 * array[layer].astype(np.float64) + 0.5 * identity)
        rolled = with_residual @ rolled
        result[layer] = rolled
    return result


def transformed_values(values: np.ndarray, output_projection: np.ndarray) -> np.ndarray:
    """``f^h(x_j) = v^h_j · W_O^h`` for one layer: values ``(heads, key, head_dim)`` and the layer's
    projection ``(heads, head_dim, hidden)`` give ``(heads, key, hidden)``, in float64."""
    return np.einsum(
        "hkd,hde->hke", np.asarray(values, dtype=np.float64), np.asarray(output_projection, dtype=np.float64)
    )


def _check_parts(attentions: np.ndarray, values: np.ndarray, output_projection: np.ndarray) -> None:
    a, v, w = (np.asarray(x).shape for x in (attentions, values, output_projection))
    if len(a) != 4 or len(v) != 4 or len(w) != 4:
        raise ValueError(
            f"expected attentions (layers, heads, query, key), values (layers, heads, key, head_dim) "
            f"and output_projection (layers, heads, head_dim, hidden); got {a}, {v}, {w}"
        )
    if a[:2] != v[:2] or v[:2] != w[:2] or a[3] != v[2] or v[3] != w[2]:
        raise ValueError(
            f"attentions {a}, values {v} and output_projection {w} do not fit: layers, heads, keys "
            "and head_dim must agree"
        )


def value_norms(attentions: np.ndarray, values: np.ndarray, output_projection: np.ndarray) -> np.ndarray:
    """Value-norm-weighted attention per head (Kobayashi et al. 2020): ``‖α^h_ij · f^h(x_j)‖``.

    ``attentions`` (layers, heads, query, key), ``values`` (layers, heads, key, head_dim) with one entry
    per query head (grouped key/value heads repeated), ``output_projection`` (layers, heads, head_dim,
    hidden). Returns (layers, heads, query, key): the length of what head ``h`` moves from key ``j``
    into query ``i``'s residual stream (the projection's bias left out, as in the paper).
    """
    _check_parts(attentions, values, output_projection)
    attentions = np.asarray(attentions)
    out = np.empty(attentions.shape, dtype=np.result_type(attentions.dtype, np.float32))
    for layer in range(attentions.shape[0]):
        norms = np.linalg.norm(transformed_values(values[layer], output_projection[layer]), axis=-1)  # (heads, key)
        out[layer] = attentions[layer] * norms[:, None, :]
    return out


def value_norms_summed(attentions: np.ndarray, values: np.ndarray, output_projection: np.ndarray) -> np.ndarray:
    """``‖Σ_h α^h_ij · f^h(x_j)‖`` over every head given (Kobayashi et al. 2020): (layers, query, key).

    Arguments as `value_norms`. Computed from each key's Gram matrix of its transformed values,
    ``G_j[h, g] = f^h(x_j)·f^g(x_j)``, so no (query, key, hidden) array is ever built.
    """
    _check_parts(attentions, values, output_projection)
    attentions = np.asarray(attentions)
    layers, heads, queries, keys = attentions.shape
    out = np.empty((layers, queries, keys), dtype=np.result_type(attentions.dtype, np.float32))
    block = max(1, _BLOCK // max(1, heads * keys))
    for layer in range(layers):
        f = transformed_values(values[layer], output_projection[layer])
        gram = np.einsum("hke,gke->khg", f, f)
        for start in range(0, queries, block):
            a = attentions[layer, :, start : start + block].astype(np.float64)
            squared = np.einsum("hqk,gqk,khg->qk", a, a, gram, optimize=True)
            out[layer, start : start + block] = np.sqrt(np.maximum(squared, 0.0))
    return out


def word_units(word_of: Sequence[int | None]) -> tuple[list[int | None], list[list[int]]]:
    """Group token positions into units, in order of first appearance: a unit per word, one per wordless token."""
    unit_word: list[int | None] = []
    unit_tokens: list[list[int]] = []
    unit_of: dict[int, int] = {}
    for position, word in enumerate(word_of):
        if word is None:
            unit_word.append(None)
            unit_tokens.append([position])
        elif word in unit_of:
            unit_tokens[unit_of[word]].append(position)
        else:
            unit_of[word] = len(unit_word)
            unit_word.append(word)
            unit_tokens.append([position])
    return unit_word, unit_tokens


def _members(units: list[list[int]], n: int) -> np.ndarray:
    members = np.zeros((len(units), n), dtype=np.float64)  # (units, tokens) 0/1
    for unit, positions in enumerate(units):
        members[unit, positions] = 1.0
    return members


def merge_units(
    weights: np.ndarray, query_word_of: Sequence[int | None], key_word_of: Sequence[int | None]
) -> tuple[np.ndarray, list[list[int]], list[list[int]]]:
    """``(..., query, key)`` weights merged into words on both sides, as Clark et al. (2019) did: a
    column per key word (the sum over its tokens), a row per query word (the mean over its tokens).

    Returns the merged weights and the query and key units (token positions of each, see `word_units`).
    """
    array = np.asarray(weights)
    nq, nk = len(query_word_of), len(key_word_of)
    if array.ndim < 2 or array.shape[-2:] != (nq, nk):
        raise ValueError(
            f"weights must end in ({nq}, {nk}) for {nq} query and {nk} key tokens, got shape {array.shape}"
        )
    _, query_units = word_units(query_word_of)
    _, key_units = word_units(key_word_of)
    rows = _members(query_units, nq)
    summed = array.astype(np.float64, copy=False) @ _members(key_units, nk).T  # columns: sum over a unit's tokens
    merged = np.einsum("ut,...tv->...uv", rows / rows.sum(axis=1, keepdims=True), summed)  # rows: mean
    return merged, query_units, key_units


def merge_words(weights: np.ndarray, word_of: Sequence[int | None]) -> WordAttention:
    """Word-level attention as Clark et al. (2019) computed it.

    Attention *to* a word is the sum of the attention to its subword tokens; attention *from* a word
    is the mean over its subword tokens' rows. Rows of the result still sum to what the token rows
    summed to (1 for softmax attention). ``word_of[t]`` is token ``t``'s word (``None`` for special
    tokens, which stay units of their own); ``weights`` is ``(..., tokens, tokens)``.
    """
    n = len(word_of)
    if np.ndim(weights) < 2 or np.shape(weights)[-2:] != (n, n):
        raise ValueError(f"weights must end in ({n}, {n}) for {n} tokens, got shape {np.shape(weights)}")
    merged, units, _ = merge_units(weights, word_of, word_of)
    return WordAttention(merged, word_units(word_of)[0], units)


def words_of(tokens: Tokens) -> list[int | None]:
    """Each token's word number (None for special tokens), for `merge_units`."""
    return [None if special else word for word, special in zip(tokens.word_ids, tokens.special)]


def _stack_tokens(cap: Capture, role: str) -> tuple[Tokens, Tokens]:
    """The (query, key) tokens of a stack: the decoder's for decoder queries, the encoder's for encoder keys."""
    decoder = cap.decoder_tokens if cap.decoder_tokens is not None else cap.tokens
    return {"encoder": (cap.tokens, cap.tokens), "decoder": (decoder, decoder), "cross": (decoder, cap.tokens)}[role]


def _check_layers(layers: Sequence[int] | None, count: int, role: str) -> list[int]:
    return check_choices("layers", layers, count, f"the {role} stack", unit="layer")


def _value_parts(cap: Capture, role: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    stack = cap.stack(role)
    attentions, values = stack.require("attentions"), stack.require("values")
    if stack.output_projection is None:
        reason = cap.missing.get("output_projection", "it was not captured")
        raise InputError(f"value-norm attention needs the {role} stack's output projection: {reason}")
    return attentions, values, stack.output_projection


def aggregate(
    capture: Capture,
    method: str = "mean",
    *,
    stack: str | None = None,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
    head_weights: Sequence[float] | None = None,
    words: bool = False,
) -> Aggregation:
    """One stack's attention combined by ``method`` (see `METHODS`), as an `Aggregation`.

    ``stack`` is "encoder", "decoder" or "cross" (default: the capture's main stack); ``layers`` and
    ``heads`` pick the model's layers and heads (default: all). "weighted" needs ``head_weights``, one
    number >= 0 per chosen head (scaled to sum to 1); "rollout" takes them too, in place of the mean.
    "rollout" runs through every layer up to the last one asked and needs a self-attention stack;
    "value_norm" and "value_norm_sum" need a capture with ``values`` (``fields="all"``). ``words`` merges
    tokens into words after aggregating (`merge_units`: sum over key subwords, mean over query
    subwords; for value norms that is the sum of the subwords' norms).
    """
    if method not in METHODS:
        raise InputError(f"unknown aggregation method {method!r}: choose one of {', '.join(METHODS)}")
    if not isinstance(capture, Capture):
        raise InputError(f"expected a Capture, got {type(capture).__name__}")
    role = stack if stack is not None else ("decoder" if capture.kind == "decoder" else "encoder")
    attentions = capture.stack(role).require("attentions")
    chosen_layers = _check_layers(layers, attentions.shape[0], role)
    chosen_heads = check_heads(heads, attentions.shape[1], f"the {role} stack")
    if head_weights is not None and method not in ("weighted", "rollout"):
        raise InputError(f"head_weights apply to the 'weighted' and 'rollout' methods only, not {method!r}")
    if method == "weighted" and head_weights is None:
        raise InputError(
            f"method 'weighted' needs head_weights: one number >= 0 for each of the {len(chosen_heads)} "
            f"chosen heads ({', '.join(map(str, chosen_heads))})"
        )
    scaled = None if head_weights is None else check_head_weights(head_weights, chosen_heads)
    if method == "raw":
        weights = attentions[chosen_layers][:, chosen_heads]
    elif method in ("mean", "weighted"):
        weights = np.stack([combine_heads(attentions[layer, chosen_heads], scaled) for layer in chosen_layers])
    elif method == "rollout":
        if role == "cross":
            raise InputError(
                "rollout follows attention through self-attention layers: the cross stack attends "
                "from decoder to encoder tokens; choose stack 'encoder' or 'decoder'"
            )
        deepest = max(chosen_layers) + 1
        combined = np.stack([combine_heads(attentions[layer, chosen_heads], scaled) for layer in range(deepest)])
        weights = rollout(combined)[chosen_layers]
    else:
        att, values, projection = _value_parts(capture, role)
        parts = (
            att[chosen_layers][:, chosen_heads],
            values[chosen_layers][:, chosen_heads],
            projection[chosen_layers][:, chosen_heads],
        )
        weights = value_norms(*parts) if method == "value_norm" else value_norms_summed(*parts)
    query_tokens, key_tokens = _stack_tokens(capture, role)
    if words:
        weights, query_units, key_units = merge_units(weights, words_of(query_tokens), words_of(key_tokens))
    else:
        query_units, key_units = [[i] for i in range(len(query_tokens))], [[j] for j in range(len(key_tokens))]
    return Aggregation(
        method,
        role,
        weights,
        tuple(chosen_layers),
        tuple(chosen_heads),
        None if scaled is None else tuple(float(w) for w in scaled),
        "norm" if method in NORM_METHODS else "probability",
        query_units,
        key_units,
        bool(words),
    )
