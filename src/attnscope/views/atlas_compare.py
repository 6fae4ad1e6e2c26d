"""The page of two head atlases compared (`atlas.compare`): per score a layers × heads grid of model A's
scores, B's, or their difference A − B on a diverging palette (``static/atlas_compare.js``), and tables of
the heads that changed most; one self-contained HTML file, no network needed."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from ..atlas.compare import AtlasComparison
from ..errors import InputError
from .html import page, static_text, view_fragment, write_atomically

SHOWN = ("a", "b", "a-b")
"""What the grid shows at first: A's scores, B's, or A − B (only when the two models have the same shape)."""


def atlas_compare_page(
    comparison: AtlasComparison,
    *,
    score: str | None = None,
    shown: str | None = None,
    selected: tuple[int, int] = (0, 0),
) -> str:
    """The comparison as a complete HTML document.

    ``score`` is the score the grid shows at first (a key of ``comparison.keys``; None: the first),
    ``shown`` "a", "b" or "a-b" (None: "a-b" when the shapes match, else both side by side), and
    ``selected`` the head marked at first. A bad value is an `InputError` naming what is allowed.
    """
    key = comparison.keys[0] if score is None else comparison.score(score).key
    side = shown if shown is not None else ("a-b" if comparison.same_shape else "a")
    if side not in SHOWN:
        raise InputError(f"shown {side!r} is not one of {', '.join(SHOWN)}")
    if side == "a-b" and not comparison.same_shape:
        raise InputError(
            f"A − B needs models of one shape: A has {comparison.a.layers} × {comparison.a.heads} heads, "
            f"B {comparison.b.layers} × {comparison.b.heads}; show a or b"
        )
    layer, head = selected
    if not (0 <= layer < comparison.a.layers and 0 <= head < comparison.a.heads):
        raise InputError(
            f"selected head {layer}-{head} is out of range: A has layers 0-{comparison.a.layers - 1} "
            f"and heads 0-{comparison.a.heads - 1}"
        )
    state: dict[str, Any] = {
        "comparison": comparison.to_dict(),
        "score": key,
        "shown": side,
        "selected": [layer, head],
    }
    fragments = [f"<style>{static_text('atlas.css')}</style>", view_fragment("atlas_compare", state)]
    title = f"attnscope head atlases compared: {comparison.a.model} − {comparison.b.model} on {comparison.a.corpus}"
    return page(fragments, title=html.escape(title))


def save_atlas_compare_page(path: str | os.PathLike[str], comparison: AtlasComparison, **options: Any) -> Path:
    """Write `atlas_compare_page` to ``path`` atomically and return the path."""
    return write_atomically(path, atlas_compare_page(comparison, **options))
