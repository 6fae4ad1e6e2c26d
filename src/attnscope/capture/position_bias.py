"""A position bias kept per head as what determines it, in memory linear in tokens.

Some models add a finite term to the attention scores before the softmax: T5's (mT5's, LongT5's...)
bucketed relative-position bias, passed to the attention function as ``position_bias`` (1, heads, query,
key); ALiBi (Bloom, MPT, Falcon), a slope per head times each key's position, passed the same way or
folded into the additive mask (batch, heads, query, key). Held whole that is ``heads × query × key``. What
determines it is far smaller:

- a **relative** bias is a function of ``key − query`` per head (T5, bidirectional or causal; ALiBi
  written as slope × distance): one vector of ``queries + keys − 1`` values per head;
- a **by-key** bias is the same for every query row (ALiBi as slope × key position, the form Bloom, MPT
  and Falcon build): one vector of ``keys`` values per head.

`position_bias_of` reads a bias tensor once and checks, on the keys each query row sees (`MaskStructure`;
hidden keys may hold anything), that one of these forms rebuilds every value exactly, bit for bit; it
returns None otherwise, and the caller keeps the layer's dense weights. Because the values are the
model's own, the scores computed from them (``scale · q·kᵀ + bias``) are the ones eager attention adds,
so weights agree to float32 rounding even where a large by-key term (a per-row constant, to softmax)
would cost precision if it were rewritten as a relative one. `split_mask` separates a bias folded into
an additive mask from the mask's pattern.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .mask_structure import MaskStructure, structure_of

_CHECK_WEIGHTS = 2**22  # bias values compared at once while checking a form (bounds the temporaries)


@dataclass(frozen=True)
class PositionBias:
    """An additive term of the scores per head, kept as one vector per (batch entry,) head.

    ``values``: (batch | 1, heads | 1, length) float32 (a size-1 axis is shared by every entry or head).
    ``relative``: the term of query ``q`` on key ``k`` is ``values[..., k - q + offset]`` (length
    queries + keys − 1 at recording, ``offset`` = queries − 1); otherwise it is ``values[..., k]``
    (length keys, the same for every query row). Positions count from 0 as the recorded tensors did, so
    an input's first queries and keys keep theirs.
    """

    values: np.ndarray
    relative: bool
    offset: int = 0

    def for_input(self, b: int) -> PositionBias:
        """The bias of batch entry ``b``: ``values`` (1, heads | 1, length), a view."""
        entry = b if self.values.shape[0] > 1 else 0
        return PositionBias(self.values[entry : entry + 1], self.relative, self.offset)

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes)

    def add_to(self, scores: torch.Tensor, heads: list[int], positions: np.ndarray, start: int, stop: int) -> None:
        """Add the term of ``heads`` on query ``positions`` × keys ``start:stop`` to ``scores`` (len(heads),
        len(positions), stop − start), in place, one head at a time (a single input's bias: batch 1)."""
        values = torch.from_numpy(self.values[0])
        shared = values.shape[0] == 1
        if self.relative:
            # row i of the block is the window of ``values`` starting at start − positions[i] + offset
            first = torch.from_numpy(start - positions.astype(np.int64) + self.offset)
            for slot, head in enumerate(heads):
                windows = values[0 if shared else head].unfold(0, stop - start, 1)  # a view: (L - span + 1, span)
                scores[slot].add_(windows[first])
        else:
            for slot, head in enumerate(heads):
                scores[slot].add_(values[0 if shared else head, start:stop])


@dataclass(frozen=True)
class Terms:
    """What one attention call's mask and bias come to: the mask's ``structure`` (None: not a pattern), the
    position ``bias`` kept per head (None: none, or not kept), ``bias_reason`` why a bias could not be kept
    (the layer's weights are then kept dense), and whether the mask itself carries a finite term
    (``folded``)."""

    structure: MaskStructure | None
    bias: PositionBias | None = None
    bias_reason: str | None = None
    folded: bool = False


def read_terms(
    mask: torch.Tensor | None, bias: torch.Tensor | None, causal_without_mask: bool, queries: int, keys: int
) -> Terms:
    """The terms of an attention call of ``queries × keys`` from what the attention function receives:
    ``mask`` (None, bool, or additive float, a bias possibly folded into it), ``bias`` (a ``position_bias``
    argument, added before the mask) and whether no mask means causal (`structure_of`)."""
    pattern, folded = (mask, None) if mask is None else (split_mask(mask) or (None, None))
    if mask is not None and pattern is None:
        return Terms(None)  # heads hide different keys
    structure = structure_of(pattern, causal_without_mask)
    if structure is None or (bias is None and folded is None):
        return Terms(structure, folded=folded is not None)
    found = [position_bias_of(term, structure, queries, keys) for term in (bias, folded) if term is not None]
    if not all(ok for ok, _ in found):
        reason = "it adds a position bias that is neither a function of key − query nor of the key alone"
        return Terms(structure, bias_reason=reason, folded=folded is not None)
    kept = [b for _, b in found if b is not None]
    if len(kept) > 1:
        reason = "it adds a position bias and its mask another finite term (two additions are not kept)"
        return Terms(structure, bias_reason=reason, folded=True)
    return Terms(structure, kept[0] if kept else None, folded=folded is not None)


def split_mask(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """An additive float mask (batch, 1 | heads, query, key) as its pattern and the finite term folded into it.

    Returns ``(seen, term)``: ``seen`` (batch, 1, query, key) bool, True where a key is not hidden (hidden:
    at most the dtype's minimum / 2), and ``term`` (batch, 1 | heads, query, key), the mask's values where
    they are seen, 0 elsewhere (None when every seen value is 0). None when the heads hide different keys
    (not one pattern). A bool mask is its own pattern with no term."""
    if mask.dim() != 4:
        return None
    if mask.dtype == torch.bool:
        return mask, None
    hidden = mask <= torch.finfo(mask.dtype).min / 2
    if hidden.shape[1] > 1 and not bool((hidden == hidden[:, :1]).all()):
        return None
    term = torch.where(hidden, torch.zeros((), dtype=mask.dtype), mask)
    return ~hidden[:, :1], (term if bool(term.any()) else None)


def position_bias_of(
    bias: torch.Tensor, structure: MaskStructure, queries: int, keys: int
) -> tuple[bool, PositionBias | None]:
    """``bias`` (batch | 1, heads | 1, query | 1, key), as the attention function received it, in the form
    that rebuilds it exactly on every key each row sees (``structure``, over ``queries × keys``).

    Returns ``(True, PositionBias)``; ``(True, None)`` when the bias is 0 on every seen key (nothing to
    add); ``(False, None)`` when neither a relative nor a by-key form rebuilds it, or its shape does not
    broadcast to (batch, heads, queries, keys)."""
    if bias.dim() != 4 or bias.shape[2] not in (1, queries) or bias.shape[3] != keys:
        return False, None
    bias = bias.detach().to("cpu", torch.float32)
    if bias.shape[2] == 1:  # one row for every query: by key as given
        found = PositionBias(np.ascontiguousarray(bias[:, :, 0].numpy()), relative=False)
        return True, (found if bool(bias.any()) else None)
    for relative in (True, False):
        values = _rebuilt(bias, structure, relative)
        if values is not None:
            found = PositionBias(values.numpy(), relative, queries - 1 if relative else 0)
            return True, (found if bool(values.any()) else None)
    return False, None


def _rebuilt(bias: torch.Tensor, structure: MaskStructure, relative: bool) -> torch.Tensor | None:
    """The per-head vectors of the ``relative`` (or by-key) form if they rebuild ``bias`` on every seen key,
    else None: each vector entry's largest and smallest seen value, which must agree. Rows are compared in
    chunks, stopping at the first disagreement."""
    entries, heads, queries, keys = bias.shape
    length = queries + keys - 1 if relative else keys
    high = torch.full((entries, heads, length), -torch.inf)
    low = torch.full((entries, heads, length), torch.inf)
    step = max(1, _CHECK_WEIGHTS // max(1, heads * keys))
    batch = 1 if structure.key_valid is None else structure.key_valid.shape[0]
    for start in range(0, queries, step):
        rows = np.arange(start, min(start + step, queries))
        cols = np.arange(keys)[None, :]
        index = torch.from_numpy(cols - rows[:, None] + (queries - 1) if relative else cols.repeat(len(rows), 0))
        for e in range(entries):
            seen = _seen(structure, rows, keys, range(batch) if entries == 1 else [e])
            chunk = bias[e, :, rows[0] : rows[-1] + 1]  # (heads, rows, key)
            flat_index = index.reshape(1, -1).expand(heads, -1)
            shown = chunk.masked_fill(~seen, -torch.inf).reshape(heads, -1)
            high[e].scatter_reduce_(1, flat_index, shown, "amax")
            shown = chunk.masked_fill(~seen, torch.inf).reshape(heads, -1)
            low[e].scatter_reduce_(1, flat_index, shown, "amin")
        unseen = torch.isneginf(high) & torch.isposinf(low)
        if not bool(((high == low) | unseen).all()):
            return None
    return torch.where(unseen, torch.zeros(()), high)


def _seen(structure: MaskStructure, rows: np.ndarray, keys: int, entries: range | list[int]) -> torch.Tensor:
    """(len(rows), keys) bool: keys the query ``rows`` see in any of batch ``entries``."""
    seen = np.zeros((len(rows), keys), dtype=bool)
    for b in entries:
        seen |= structure.for_input(b, keys).allowed(rows, keys)
    return torch.from_numpy(seen)
