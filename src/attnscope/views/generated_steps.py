"""Attention from ``model.generate(..., output_attentions=True, return_dict_in_generate=True)`` read as one matrix.

``generate`` returns its attentions step by step: a tuple with one entry per generated token, each a
tuple with one ``(batch, heads, new queries, keys so far)`` array per layer. The first step holds the
prompt's rows (the whole prompt is read at once), each later step the one row of the token read
then, over the keys up to it; the last generated token is never read back, so it has no row. For
self-attention the steps' keys are the rows read so far, and their rows stacked, with zeros at the
keys a row could not yet see (a causal model gives them no weight), are exactly the attention of one
forward pass over those tokens; a cross-attention's steps (a view's ``cross_attention``) all read the
same encoder keys. Anything else (a sliding-window cache that drops old keys, a step without weights)
is refused with what it is and what to call instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import InputError, count

INSTEAD = (
    "capture the whole sequence in one pass instead: attnscope.generate(handle, prompt, max_new_tokens=...), "
    "or attnscope.capture(handle, input_ids=outputs.sequences[0]) for ids you generated"
)


def is_stepwise(attention: Any) -> bool:
    """Whether ``attention`` is ``generate``'s step-wise attention: a tuple/list whose entries are tuples/lists
    of layers (per-layer attention, as a forward pass gives it, has arrays as entries)."""
    return isinstance(attention, (tuple, list)) and bool(attention) and isinstance(attention[0], (tuple, list))


def describe(steps: Any) -> str:
    """What step-wise attention is, in words, for errors."""
    return (
        f"attentions from model.generate: one tuple per generated step ({count(len(steps), 'step')}), each with "
        "one (batch, heads, new tokens, keys so far) array per layer"
    )


def assemble_steps(steps: Any, what: str, read: Callable[[Any, str], np.ndarray]) -> list[np.ndarray]:
    """Step-wise attention as one ``(batch, heads, query, key)`` array per layer (see the module docstring).

    ``query`` counts the tokens read (the prompt and every generated token but the last). Raises
    `InputError` saying what the steps are and what to call instead when they do not make one matrix:
    a step without weights (the model ran under SDPA), layers or heads that change between steps, key
    lengths that do not grow with the rows read (self-attention; ``what`` names the argument, and only
    ``cross_attention``'s keys stay the same at every step).
    ``read`` turns one layer's tensor or array into a numpy array (`bertviz_inputs.as_numpy`).
    """
    layers = len(steps[0])
    arrays: list[list[np.ndarray]] = []
    for i, step in enumerate(steps):
        if not isinstance(step, (tuple, list)) or len(step) != layers or any(a is None for a in step):
            held = (
                "no weights (the model ran under SDPA: load it with attn_implementation='eager')"
                if (isinstance(step, (tuple, list)) and any(a is None for a in step))
                else f"{len(step) if isinstance(step, (tuple, list)) else 'no'} layers where step 0 has {layers}"
            )
            raise InputError(f"{what} holds {describe(steps)}; step {i} has {held}. {INSTEAD}")
        arrays.append([read(a, what) for a in step])
    shapes = [[a.shape for a in step] for step in arrays]
    first = shapes[0][0]
    if any(len(s) != 4 or s[:2] != first[:2] or s != step[0] for step in shapes for s in step):
        raise InputError(f"{what} holds {describe(steps)}, but their shapes differ ({first} at step 0): {INSTEAD}")
    rows = [step[0][2] for step in shapes]
    keys = [step[0][3] for step in shapes]
    counted = [int(r) for r in np.cumsum(rows)]
    cross = what.startswith("cross")  # only a view's cross_attention reads the same keys at every step
    if keys != counted and not (cross and len(set(keys)) == 1):
        expected = "stay the same (cross-attention)" if cross else f"grow with the tokens read {counted}"
        raise InputError(
            f"{what} holds {describe(steps)}; their key lengths {keys} do not {expected} (a sliding-window "
            f"cache keeps only recent keys), so they are not one attention matrix. {INSTEAD}"
        )
    batch, heads, total, width = first[0], first[1], counted[-1], keys[-1]
    assembled = []
    for layer in range(layers):
        matrix = np.zeros((batch, heads, total, width), dtype=arrays[0][layer].dtype)
        start = 0
        for step, size, seen in zip(arrays, rows, keys):
            matrix[:, :, start : start + size, :seen] = step[layer]
            start += size
        assembled.append(matrix)
    return assembled


def check_step_tokens(steps: Any, tokens: Any, what: str, tokens_name: str) -> None:
    """Refuse, with the fix, tokens of the whole generated sequence given with its step-wise attention:
    the last generated token was never read, so the assembled attention has one row fewer."""
    if not is_stepwise(steps) or tokens is None or isinstance(tokens, str):
        return
    try:
        rows = sum(int(np.shape(step[0])[2]) for step in steps if step and step[0] is not None)
        given = len(tokens[0]) if hasattr(tokens, "shape") and len(np.shape(tokens)) == 2 else len(tokens)
    except (TypeError, IndexError):
        return
    if given == rows + 1:
        raise InputError(
            f"{what} holds {describe(steps)}: they cover the {count(rows, 'token')} the model read; the last "
            f"generated token is never read back, so it has no attention. {tokens_name} has {given}: pass "
            f"{tokens_name}[:-1], or {INSTEAD}"
        )
