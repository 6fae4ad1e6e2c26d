"""An attention mask described by its structure instead of a ``query × key`` tensor.

The masks transformers builds for self- and cross-attention are combinations of a few patterns: causal
(a query sees keys at or before its position), a sliding window (and only the last ``window`` of those),
and padding (keys of a sequence that are padding are hidden from every query). `MaskStructure` keeps
those patterns in O(keys) memory; `structure_of` reads them off a mask tensor once and checks that they
rebuild it exactly, so attention computed from the structure is the attention the mask gave.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

_CHECK_ROWS = 1024  # rows of the mask compared at once while checking a structure (bounds the temporaries)


@dataclass(frozen=True)
class MaskStructure:
    """Which keys each query may see, as patterns.

    ``causal``: query ``q`` sees keys ``k <= q`` (positions counted from 0 in both, as SDPA's
    ``is_causal``). ``window``: with ``causal``, only keys with ``q - k < window`` (transformers'
    sliding window); None for no window. ``key_valid``: (batch, key) bool, False for padding keys that
    no query sees; None when every key is valid. Queries and keys beyond a sequence's length are cut
    away by the capture, so what is kept per input is its rows and columns of this pattern.
    """

    causal: bool
    window: int | None = None
    key_valid: np.ndarray | None = None

    def for_input(self, b: int, keys: int) -> MaskStructure:
        """The structure of batch entry ``b`` over its first ``keys`` keys (``key_valid`` None if all are)."""
        valid = None
        if self.key_valid is not None:
            valid = self.key_valid[b if self.key_valid.shape[0] > 1 else 0, :keys]
            valid = None if bool(valid.all()) else valid.copy()
        return MaskStructure(self.causal, self.window, valid)

    def allowed(self, rows: np.ndarray, keys: int) -> np.ndarray:
        """(len(rows), keys) bool: which keys the query positions ``rows`` see (for a single input)."""
        cols = np.arange(keys)
        seen = np.ones((len(rows), keys), dtype=bool)
        if self.causal:
            seen &= cols[None, :] <= rows[:, None]
            if self.window is not None:
                seen &= rows[:, None] - cols[None, :] < self.window
        if self.key_valid is not None:
            seen &= self.key_valid[None, :keys]
        return seen


def structure_of(mask: torch.Tensor | None, causal_without_mask: bool) -> MaskStructure | None:
    """The structure of an attention mask as transformers passes it to an attention function.

    ``mask``: None (nothing hidden, or causal when ``causal_without_mask``: SDPA's ``is_causal``),
    (batch, 1, query, key) bool (True where a key is seen) or float additive (0 seen, the dtype's
    minimum hidden). Returns None when the mask is not exactly causal / sliding window / padding: per-head
    masks, finite additive terms (a bias folded into the mask), or any other pattern.
    """
    if mask is None:
        return MaskStructure(causal=causal_without_mask)
    if mask.dim() != 4 or mask.shape[1] != 1:
        return None
    if mask.dtype == torch.bool:
        seen = mask[:, 0]
    else:
        hidden = mask <= torch.finfo(mask.dtype).min / 2
        if bool(torch.where(hidden, torch.zeros((), dtype=mask.dtype), mask).any()):
            return None  # a finite additive term: not a pattern
        seen = ~hidden[:, 0]
    batch, queries, keys = seen.shape
    rows = torch.arange(queries)[:, None]
    cols = torch.arange(keys)[None, :]
    key_valid = seen.any(dim=1)  # (batch, key): a key no query sees is padding
    causal = not bool((seen & (cols > rows)).any()) and queries > 1
    window = None
    if causal:
        distance = torch.where(seen, rows - cols, torch.full((), -1)).amax()
        window = int(distance) + 1 if int(distance) + 1 < queries else None
    structure = MaskStructure(causal, window, None if bool(key_valid.all()) else key_valid.cpu().numpy())
    return structure if _rebuilds(structure, seen) else None


def _rebuilds(structure: MaskStructure, seen: torch.Tensor) -> bool:
    """Whether ``structure`` gives exactly ``seen`` (batch, query, key), compared in row blocks."""
    batch, queries, keys = seen.shape
    for b in range(batch):
        entry = structure.for_input(b, keys)
        for start in range(0, queries, _CHECK_ROWS):
            rows = np.arange(start, min(start + _CHECK_ROWS, queries))
            expected = torch.from_numpy(entry.allowed(rows, keys))
            if not torch.equal(expected, seen[b, rows[0] : rows[-1] + 1].cpu()):
                return False
    return True
