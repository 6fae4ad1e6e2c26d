"""Reading the views' payload as the server sends it (``POST /api/attention``'s ``payload``): the tests' one decoder."""

from __future__ import annotations

import base64

import numpy as np


def stack_of(payload: dict, role: str) -> dict:
    """The header's entry for stack ``role`` ("encoder", "decoder", "cross")."""
    (stack,) = [s for s in payload["header"]["stacks"] if s["role"] == role]
    return stack


def decode_layers(payload: dict, key: str) -> np.ndarray:
    """The layers under data ``key`` (a role, or ``"<role>/<method>"`` for a carried aggregation) as floats
    ``byte / 255``, shape (layers, heads, query, key); heads is 1 for an aggregation that combines heads."""
    encoding = payload["header"]["encoding"]
    assert (encoding["dtype"], encoding["scale"], encoding["sparse"]) == ("uint8", 255, False), encoding
    role, _, method = key.partition("/")
    stack = stack_of(payload, role)
    heads = stack["aggregations"][method] if method else stack["heads"]
    shape = (heads, stack["query"], stack["key"])
    layers = [np.frombuffer(base64.b64decode(data), dtype=np.uint8).reshape(shape) for data in payload["layers"][key]]
    return np.stack(layers).astype(np.float64) / 255
