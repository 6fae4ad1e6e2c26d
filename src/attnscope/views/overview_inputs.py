"""The overview's input: a `Capture` (lazy or dense attention) or BertViz-style arrays, as `OverviewStack` s.

Each stack keeps its attention as given (a `LazyAttention` stays lazy: zooms compute from it) and is pooled
once (`overview_data.overview_stack`). Every option is checked before anything is pooled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..capture.lazy import LazyAttention
from ..capture.loading import readable_model_name
from ..capture.result import Capture
from ..errors import InputError
from ..selection import check_choices
from .bertviz_inputs import check_tokens, stack_layers
from .overview_data import OverviewStack, overview_stack
from .payload import ROLES, _is_causal, check_weights
from .sequences import TokenSequence, sequence_from_strings, sequence_from_tokens

MIN_CELLS, MAX_CELLS = 4, 1024
"""The allowed range of ``cells``, the overview's cells along a head's longer side."""


@dataclass
class OverviewInput:
    """What the overview widget shows: ``stacks`` by role, the token ``sequences`` they read, the model's name
    and kind, and ``cells``."""

    stacks: dict[str, OverviewStack]
    sequences: dict[str, TokenSequence]
    model: str | None
    kind: str | None
    cells: int


def check_cells(cells: Any) -> int:
    if isinstance(cells, bool) or not isinstance(cells, int) or not MIN_CELLS <= cells <= MAX_CELLS:
        raise InputError(
            f"cells must be an integer in {MIN_CELLS}-{MAX_CELLS} (a head's pooled cells along its longer side); "
            f"got {cells!r}"
        )
    return cells


def is_lazy(attention: Any) -> bool:
    """Whether ``attention`` is a capture holding any stack's attention on demand (a `LazyAttention`)."""
    return isinstance(attention, Capture) and any(
        isinstance(stack.attentions, LazyAttention) for stack in attention.stacks.values()
    )


def _build(
    given: dict[str, tuple[Any, tuple[str, str]]],
    sequences: dict[str, TokenSequence],
    *,
    cells: int,
    include_layers: Sequence[int] | None,
    include_heads: Sequence[int] | None,
    model: str | None,
    kind: str | None,
    causal: dict[str, bool],
) -> OverviewInput:
    """Check every stack's kept layers and heads and its tokens, then pool each stack."""
    cells = check_cells(cells)
    kept: dict[str, tuple[list[int], list[int]]] = {}
    for role, (weights, (qname, kname)) in given.items():
        layers, heads, queries, keys = weights.shape
        for side, size, name in (("query", queries, qname), ("key", keys, kname)):
            if size != len(sequences[name].tokens):
                raise InputError(
                    f"{role} attention has {size} {side} positions but {len(sequences[name].tokens)} {name} tokens "
                    "were given: pass the tokens the attention was computed on"
                )
        what = f"the {role} attention"
        kept[role] = (
            check_choices("include_layers", include_layers, layers, what, unit="layer"),
            check_choices("include_heads", include_heads, heads, what, unit="head"),
        )
    stacks = {
        role: overview_stack(
            role,
            weights,
            cells=cells,
            layers=kept[role][0],
            heads=kept[role][1],
            query_tokens=names[0],
            key_tokens=names[1],
            causal=causal.get(role, False),
        )
        for role, (weights, names) in given.items()
    }
    return OverviewInput(stacks, sequences, model, kind, cells)


def overview_from_capture(cap: Capture, **options: Any) -> OverviewInput:
    """Every stack a capture holds (encoder, decoder, cross); ``options``: cells, include_layers, include_heads."""
    main = "decoder" if cap.kind == "decoder" else "encoder"
    sequences = {main: sequence_from_tokens(cap.tokens)}
    if cap.decoder_tokens is not None and main == "encoder":
        sequences["decoder"] = sequence_from_tokens(cap.decoder_tokens)
    given: dict[str, tuple[Any, tuple[str, str]]] = {}
    for role in ROLES:
        if role in cap.stacks and cap.stacks[role].attentions is not None:
            weights = cap.stacks[role].attentions
            given[role] = (weights, ("decoder", "encoder") if role == "cross" else (role, role))
    if not given:
        raise InputError("this capture holds no attention weights: capture with fields=['attentions', ...]")
    causal = {role: role == "decoder" for role in given}
    return _build(given, sequences, model=readable_model_name(cap.model), kind=cap.kind, causal=causal, **options)


def overview_from_arrays(
    attention: Any,
    tokens: Any,
    sentence_b_start: int | None,
    *,
    encoder_attention: Any = None,
    decoder_attention: Any = None,
    cross_attention: Any = None,
    encoder_tokens: Any = None,
    decoder_tokens: Any = None,
    batch_index: int = 0,
    prettify_tokens: bool = True,
    **options: Any,
) -> OverviewInput:
    """BertViz's arguments (``attention`` with ``tokens``, or encoder/decoder/cross attention with their tokens)
    as dense stacks; ``options`` as `overview_from_capture`."""
    given: dict[str, tuple[Any, tuple[str, str]]] = {}
    sequences: dict[str, TokenSequence] = {}
    if attention is not None:
        if any(a is not None for a in (encoder_attention, decoder_attention, cross_attention)):
            raise InputError("pass either attention (with tokens) or encoder/decoder/cross attention, not both")
        weights = _dense(attention, batch_index, "attention")
        role = "decoder" if _is_causal(weights) else "encoder"  # as the dense model view reads it
        sequences[role] = sequence_from_strings(check_tokens(tokens, "tokens"), sentence_b_start, prettify_tokens)
        given[role] = (weights, (role, role))
        return _build(given, sequences, model=None, kind=None, causal={role: role == "decoder"}, **options)
    for role, arrays, names in (
        ("encoder", encoder_attention, ("encoder", "encoder")),
        ("decoder", decoder_attention, ("decoder", "decoder")),
        ("cross", cross_attention, ("decoder", "encoder")),
    ):
        if arrays is None:
            continue
        given[role] = (_dense(arrays, batch_index, f"{role}_attention"), names)
        for seq, raw in (("encoder", encoder_tokens), ("decoder", decoder_tokens)):
            if seq in names and seq not in sequences:
                start = sentence_b_start if seq == "encoder" else None
                sequences[seq] = sequence_from_strings(check_tokens(raw, f"{seq}_tokens"), start, prettify_tokens)
    if not given:
        raise InputError("no attention given: pass attention (with tokens), or encoder/decoder/cross attention")
    return _build(given, sequences, model=None, kind=None, causal={"decoder": True}, **options)


def _dense(arrays: Any, batch_index: int, what: str) -> np.ndarray:
    weights = stack_layers(arrays, batch_index, what)
    check_weights(weights, what)
    return np.asarray(weights, dtype=np.float32)
