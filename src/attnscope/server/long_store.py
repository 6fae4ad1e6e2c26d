"""The long inputs whose attention the server keeps, so that the long-context view asks for their layers one by one.

A long input (`token_limits.long_view`) is captured on demand once (`LazyAttention`: queries and keys, memory
linear in tokens) and kept here under an id, with its head-view payload (`views.long_payload.TopKeysPayload`,
which computes each layer's top keys when asked and keeps a few). Only the last ``capacity`` inputs are kept
(about 0.4 GiB each for SmolLM2 at 4,096 tokens); a request about one that was dropped is told to ask for the
input's attention again. The id is a digest of the model and the input, so the same input asked again reuses
its capture.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from ..capture.result import Capture
from ..views.long_payload import TopKeysPayload

LONG_INPUTS_KEPT = 2
"""Long inputs kept at once (the most recently asked last)."""


@dataclass
class LongView:
    """One long input's capture and its head-view payload, under ``id``."""

    id: str
    capture: Capture
    payload: TopKeysPayload


def long_view_id(model: str, text: str, pair: str | None, mask: Sequence[int]) -> str:
    """The id of a long input: a digest of the served model's name, the texts and the masked positions."""
    key = json.dumps([model, text, pair, sorted(mask)], ensure_ascii=False)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


class LongViews:
    """The last ``capacity`` long inputs' `LongView`s by id (thread-safe: routes run in a thread pool)."""

    def __init__(self, capacity: int = LONG_INPUTS_KEPT):
        self.capacity = capacity
        self._views: OrderedDict[str, LongView] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, ident: str) -> LongView | None:
        """The view kept under ``ident`` (now the most recently asked), or None when it is not kept."""
        with self._lock:
            view = self._views.get(ident)
            if view is not None:
                self._views.move_to_end(ident)
            return view

    def add(self, view: LongView) -> LongView:
        """Keep ``view``, dropping the least recently asked beyond ``capacity``."""
        with self._lock:
            self._views[view.id] = view
            self._views.move_to_end(view.id)
            while len(self._views) > max(1, self.capacity):
                self._views.popitem(last=False)
        return view

    def __len__(self) -> int:
        with self._lock:
            return len(self._views)
