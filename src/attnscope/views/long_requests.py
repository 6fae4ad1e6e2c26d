"""What the head view's module asks Python for at long context: exact weights, and a band of a layer's rows.

Exact weights: the module sends ``{"type": WEIGHTS_MESSAGE, "id": n, "role": r, "layer": i, "cells": [[head,
query, key], ...]}`` (indices into the payload's kept layers and heads, token positions) and gets back
``{"type": WEIGHTS_MESSAGE, "id": n, "role": r, "layer": i, "cells": [...], "weights": [w, ...]}``, each ``w``
the model's float32 weight as a JSON number (a float32 is exactly a double: nothing is rounded on the way).

Rows: while a layer's top keys are computed (tens of seconds at 8,192 tokens on two cores), the module asks for
the rows it shows: ``{"type": ROWS_MESSAGE, "role": r, "layer": i, "start": a, "stop": b}`` is answered with
the same fields and one buffer, rows ``a:b`` of every kept head in the layer's sparse layout
(`long_payload.sparse_rows`: ``heads × (b - a)`` rows), computed in milliseconds.

A bad request gets ``{"type": ..., "id" or the request's fields, "error": "..."}`` saying what was wrong, never
a traceback. Only a payload that computes its layers answers (`long_payload.TopKeysPayload`).
"""

from __future__ import annotations

from typing import Any

from ..errors import AttnscopeError

WEIGHTS_MESSAGE = "attnscope-weights"
"""The custom message the head view asks for exact weights with, and the reply's type."""
ROWS_MESSAGE = "attnscope-rows"
"""The custom message the head view asks for a band of a layer's rows with, and the reply's type."""
NOTHING_TO_ASK = "this view carries every weight it draws: it has no exact weights or rows to ask for"


def answer_weights(payload: Any, content: dict[str, Any]) -> dict[str, Any]:
    """The reply to one exact-weights request (see the module docstring); bad requests get an ``error``."""
    ident = content.get("id")
    reply: dict[str, Any] = {"type": WEIGHTS_MESSAGE, "id": ident if isinstance(ident, int) else None}
    exact = getattr(payload, "exact_weights", None)
    if exact is None:
        return {**reply, "error": NOTHING_TO_ASK}
    role, layer, cells = content.get("role"), content.get("layer"), content.get("cells")
    try:
        weights = exact(role, layer, cells)
    except AttnscopeError as error:
        return {**reply, "error": str(error)}
    return {**reply, "role": role, "layer": layer, "cells": cells, "weights": weights}


def answer_rows(payload: Any, content: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
    """The reply to one rows request and its buffers (one, or none with an ``error``)."""
    fields = {name: content.get(name) for name in ("role", "layer", "start", "stop")}
    reply: dict[str, Any] = {"type": ROWS_MESSAGE, **fields}
    rows = getattr(payload, "rows_bytes", None)
    if rows is None:
        return {**reply, "error": NOTHING_TO_ASK}, []
    try:
        data = rows(*fields.values())
    except AttnscopeError as error:
        return {**reply, "error": str(error)}, []
    return reply, [data]
