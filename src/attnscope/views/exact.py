"""Exact weights on request: what the head view's module asks Python for while a token is hovered.

The module sends ``{"type": WEIGHTS_MESSAGE, "id": n, "role": r, "layer": i, "cells": [[head, query, key],
...]}`` (indices into the payload's kept layers and heads, token positions) and gets back ``{"type":
WEIGHTS_MESSAGE, "id": n, "role": r, "layer": i, "cells": [...], "weights": [w, ...]}``, each ``w`` the
model's float32 weight as a JSON number (a float32 is exactly a double: nothing is rounded on the way),
or ``{"type": WEIGHTS_MESSAGE, "id": n, "error": "..."}`` saying what was wrong: never a traceback.
Only a payload that can compute weights answers (`long_payload.TopKeysPayload.exact_weights`).
"""

from __future__ import annotations

from typing import Any

from ..errors import AttnscopeError

WEIGHTS_MESSAGE = "attnscope-weights"
"""The custom message the head view asks for exact weights with, and the reply's type."""


def answer_weights(payload: Any, content: dict[str, Any]) -> dict[str, Any]:
    """The reply to one exact-weights request (see the module docstring); bad requests get an ``error``."""
    ident = content.get("id")
    reply: dict[str, Any] = {"type": WEIGHTS_MESSAGE, "id": ident if isinstance(ident, int) else None}
    exact = getattr(payload, "exact_weights", None)
    if exact is None:
        return {**reply, "error": "this view carries every weight it draws: it has no exact weights to ask for"}
    role, layer, cells = content.get("role"), content.get("layer"), content.get("cells")
    try:
        weights = exact(role, layer, cells)
    except AttnscopeError as error:
        return {**reply, "error": str(error)}
    return {**reply, "role": role, "layer": layer, "cells": cells, "weights": weights}
