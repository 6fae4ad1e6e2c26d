"""Which heads differ between two models over many texts: `compare` on each text, the per-head distances
averaged over every compared query row.

One sentence says little about a head (a head that tracks the previous noun has nothing to do in a sentence
without one); the mean over a few dozen sentences of a corpus ranks the heads a fine-tuning changed. Both
models must have the same layers × heads in the stack compared, since the distance is taken between heads at
the same place; `compare` on one text gives the nearest heads and the matching of models that differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..capture.engine import capture
from ..capture.loading import ModelHandle
from ..errors import InputError
from .comparison import METHOD, compare


@dataclass
class TextsComparison:
    """Per-head distances of two models over several texts.

    - ``distances``: (layers, heads) float64, bits: the mean row JSD of each head of A against the same head of
      B over all the texts' compared query rows (a text weighs by its number of rows, so the figure is the
      mean over every compared position of the corpus)
    - ``per_text``: (texts, layers, heads) each text's own distances (`Comparison.distances`)
    - ``rows``: (texts,) int, how many query rows each text contributed
    - ``levels``: the alignment level of each text ("token" or "word")
    """

    model_a: str
    model_b: str
    distances: np.ndarray
    per_text: np.ndarray
    rows: np.ndarray
    levels: list[str]
    method: str = METHOD

    def most_changed(self, k: int = 5) -> list[tuple[int, int, float]]:
        """The ``k`` heads with the largest mean distance, as (layer, head, bits), largest first (ties by place)."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InputError(f"k must be a positive integer (heads listed), got {k!r}")
        heads = self.distances.shape[1]
        order = np.argsort(-self.distances, axis=None, kind="stable")[:k]
        return [(int(i // heads), int(i % heads), float(self.distances.flat[i])) for i in order]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: models, method, text count, rows, ``distances`` as a layers × heads list, most changed."""
        return {
            "model_a": self.model_a,
            "model_b": self.model_b,
            "method": self.method,
            "texts": len(self.rows),
            "rows": int(self.rows.sum()),
            "distances": np.round(self.distances, 6).tolist(),
            "most_changed": [
                {"head": [layer, head], "distance": round(d, 6)} for layer, head, d in self.most_changed()
            ],
        }


def compare_texts(
    handle_a: ModelHandle, handle_b: ModelHandle, texts: Sequence[str], *, level: str = "auto"
) -> TextsComparison:
    """Capture each of ``texts`` with both models, `compare` them (``level`` as there) and average the per-head
    distances over all compared query rows.

    Raises `InputError` for no texts (or one string instead of a list), for stacks of different layers × heads,
    and as `attnscope.capture` and `compare` do for a text (the error names the text's index).
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence) or not texts:
        raise InputError(f"texts must be a non-empty list of strings, got {type(texts).__name__} {texts!r:.60}")
    per_text, rows, levels = [], [], []
    for index, text in enumerate(texts):
        try:
            cap_a = capture(handle_a, text, fields=["attentions"])
            cap_b = capture(handle_b, text, fields=["attentions"])
            result = compare(cap_a, cap_b, level=level, nearest=1)
        except InputError as error:
            raise InputError(f"text {index} ({text!r:.40}): {error}") from None
        if result.distances is None:
            (la, ha), (lb, hb) = result.shape_a, result.shape_b
            raise InputError(
                f"per-head distances need stacks of the same shape: {result.model_a!r} has {la} × {ha} heads, "
                f"{result.model_b!r} {lb} × {hb}; compare one text (compare_models) for each head's nearest "
                "heads and the matching"
            )
        per_text.append(result.distances)
        rows.append(int(result.rows.sum()))
        levels.append(result.alignment.level)
    stacked, counts = np.stack(per_text), np.asarray(rows)
    mean = np.tensordot(counts, stacked, axes=1) / counts.sum()
    return TextsComparison(handle_a.name, handle_b.name, mean, stacked, counts, levels)
