"""The inputs searched last, with what a search reads of them, so that searching another token, layer, mode or
heads of the same input does not run the model again.

A search needs the input's hidden states and per-head outputs at every layer (`Index.query_capture`); for a
512-token prompt through SmolLM2 that capture is most of a search's time (about 1 s on 2 cores, more under
load), and the app's user typically searches several tokens or layers of one input in a row. The last inputs'
captures are kept here under a digest of the served model's name, the texts and the masked positions, the
most recently used last, while their arrays total at most ``max_bytes`` (the last one is always kept).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

from ..capture.result import Capture

QUERY_BYTES = 512 * 2**20
"""Bytes of kept captures' arrays (hidden states and head outputs) beyond which the least recently used go."""


def query_input_id(model: str, text: str, pair: str | None, mask: Sequence[int]) -> str:
    """The id of a searched input: a digest of the served model's name, the texts and the masked positions."""
    key = json.dumps([model, text, pair, sorted(mask)], ensure_ascii=False)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _nbytes(cap: Capture) -> int:
    main = cap.main
    return sum(a.nbytes for a in (main.hidden_states, main.head_outputs) if a is not None)


class QueryCaptures:
    """The last searched inputs' captures by id (thread-safe: routes run in a thread pool). ``hits`` and
    ``misses`` count the lookups."""

    def __init__(self, max_bytes: int = QUERY_BYTES):
        self.max_bytes = max_bytes
        self.hits = self.misses = 0
        self._captures: OrderedDict[str, Capture] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, ident: str, make: Callable[[], Capture]) -> Capture:
        """The capture kept under ``ident`` (now the most recently used), else ``make()``'s, kept. Two requests
        about one new input may both run ``make``; the capture is the same either way."""
        with self._lock:
            cap = self._captures.get(ident)
            if cap is not None:
                self._captures.move_to_end(ident)
                self.hits += 1
                return cap
            self.misses += 1
        cap = make()
        with self._lock:
            self._captures[ident] = cap
            self._captures.move_to_end(ident)
            while len(self._captures) > 1 and sum(map(_nbytes, self._captures.values())) > self.max_bytes:
                self._captures.popitem(last=False)
        return cap

    def __len__(self) -> int:
        with self._lock:
            return len(self._captures)
