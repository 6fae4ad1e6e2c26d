"""Comparisons the diff view tests share: the default model against a copy of its capture with one head made
uniform (2-5) and two heads of layer 1 swapped (3 and 7), so the matching moves them; captures are copied and
edited, which `compare` cannot tell from a second model's."""

from __future__ import annotations

import copy

import numpy as np

import attnscope
from attnscope.analysis.comparison import Comparison

from .conftest import PUB

UNIFORM = (2, 5)
SWAPPED = (1, 3, 7)


def edited_comparison(handle: attnscope.ModelHandle, text: str = PUB) -> Comparison:
    """A = the default model's capture of ``text``; B = the same with head 2-5 uniform and heads 1-3 and 1-7 swapped."""
    a = attnscope.capture(handle, text, fields=["attentions"])
    b = copy.deepcopy(a)
    stack = b.stack("encoder")
    weights = np.array(stack.attentions)
    layer, head = UNIFORM
    weights[layer, head] = 1.0 / weights.shape[-1]
    layer, x, y = SWAPPED
    weights[layer, [x, y]] = weights[layer, [y, x]]
    stack.attentions = weights
    return attnscope.compare(a, b)
