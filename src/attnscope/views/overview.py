"""The model view at long context (M3): every head of the model at once, pooled, with a zoom down to single tokens.

At thousands of tokens a head's ``n × n`` weights cannot cross to the browser for every head (270 heads of
SmolLM2 at 8,192 tokens are 18 GB of bytes). So `ModelOverview` shows each head pooled over block × block
cells (at most ``cells`` × ``cells`` per head, 128 by default: 64 × 64-token blocks at 8,192 tokens), as the
maximum of each block or, switched, its mean; the header says how the cells are pooled. A click on a head
opens it larger; a click or a dragged rectangle in it zooms: the module asks Python for the region
(`overview_zoom`), which answers with exact float32 weights: the region pooled from the exact weights while it
is larger than ``cells`` tokens each way, then the weights themselves, one cell per token, with the tokens'
labels. Escape zooms out, then closes the head.

The standalone HTML (`ModelOverview.to_html`, `save`) has no Python to ask, so it carries what a reader needs
offline within ``max_bytes`` (`HTML_MAX_BYTES`, 100 MB, by default): the overview of every head (both planes),
then, when the file stays within the cap with it, each head pooled once more finely (blocks of half the
overview's, or the largest smaller divisor: 64 → 32 tokens; computed then, one more pass over every weight,
about as long as the overview took); a zoom past the finest carried level shows that level and says so.
Without room for the finer level it carries the overview's two planes, then its max plane alone; a file that
cannot hold even that within ``max_bytes`` is refused with the sizes. At SmolLM2's 270 heads the overview is
8.8 MB of bytes and the finer level 35 MB (both planes; base64 adds a third). The page carries the planes
deflated (views/compression.py; its header's encoding names the compression, and the module inflates them with
the browser's `DecompressionStream`); the plan above is chosen on the planes' bytes before deflating, and the
page written is checked against ``max_bytes``. The static copy a notebook keeps for front ends without
widgets carries the overview only.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import traitlets

from ..errors import InputError
from .compression import compressed_header
from .html import bundle, page, static_text, view_fragment, write_atomically
from .overview_data import PLANES
from .overview_inputs import OverviewInput
from .overview_zoom import ZOOM_MESSAGE, answer_zoom
from .widget import AttentionWidget

OVERVIEW_CELLS = 128
"""Default cells along a head's longer side in the overview (the block is ``ceil(tokens / cells)``)."""
HTML_MAX_BYTES = 100_000_000
"""Default cap on the standalone HTML's size (bytes, UTF-8), what it carries included (see the module's docstring)."""
THEMES = ("auto", "dark", "light")


class ModelOverview(AttentionWidget):
    """The model view's long-context overview widget.

    ``levels`` holds, per stack role, the pooled levels the module draws (`OverviewLevel.wire`): in a notebook
    the overview only (zooms ask Python); in a page what `to_html` carries. Synced both ways: ``stack``,
    ``layer`` and ``head`` (the open head, model numbers; None when none is open), ``region`` (the zoomed
    ``[query start, query stop, key start, key stop]``, None for the whole head), ``pooling`` ("max" or
    "mean": the plane drawn) and ``theme``.
    """

    module = "model_view_overview"
    kind = "model view"
    message = ZOOM_MESSAGE
    _esm = bundle("model_view_overview")
    _css = static_text("model_view_overview.css")
    levels = traitlets.Dict().tag(sync=True)
    stack = traitlets.Unicode().tag(sync=True)
    layer = traitlets.Int(allow_none=True, default_value=None).tag(sync=True)
    head = traitlets.Int(allow_none=True, default_value=None).tag(sync=True)
    region = traitlets.List(traitlets.Int(), allow_none=True, default_value=None).tag(sync=True)
    pooling = traitlets.Unicode("max").tag(sync=True)
    theme = traitlets.Unicode("auto").tag(sync=True)

    def __init__(self, data: OverviewInput, *, stack: str | None = None, theme: str = "auto", **kwargs: Any) -> None:
        self.overview = data
        role = stack if stack is not None else next(iter(data.stacks))
        if role not in data.stacks:
            raise InputError(f"stack {role!r} is not in this view: it has {', '.join(data.stacks)}")
        super().__init__(
            header=self._header(role),
            levels={r: [s.levels[0].wire()] for r, s in data.stacks.items()},
            stack=role,
            theme=theme,
            **kwargs,
        )

    def _header(self, role: str) -> dict[str, Any]:
        return {
            "version": 1,
            "view": "overview",
            "model": self.overview.model,
            "kind": self.overview.kind,
            "cells": self.overview.cells,
            "planes": list(PLANES),
            "sequences": {name: seq.to_dict() for name, seq in self.overview.sequences.items()},
            "stacks": [s.header() for s in self.overview.stacks.values()],
            "selection": {"stack": role},
        }

    def _answer(self, _widget: Any, content: Any, _buffers: Any) -> None:
        """Answer a zoom request (`overview_zoom`); other messages are not this view's."""
        if isinstance(content, dict) and content.get("type") == ZOOM_MESSAGE:
            reply, buffers = answer_zoom(content, self.overview.stacks, self.overview.cells)
            self.send(reply, buffers=buffers)

    @traitlets.validate("stack")
    def _valid_stack(self, proposal: dict[str, Any]) -> str:
        value = proposal["value"]
        if value not in self.overview.stacks:
            raise InputError(f"stack {value!r} is not in this view: it has {', '.join(self.overview.stacks)}")
        return value

    @traitlets.validate("pooling")
    def _valid_pooling(self, proposal: dict[str, Any]) -> str:
        if proposal["value"] not in PLANES:
            raise InputError(f"pooling must be 'max' or 'mean', got {proposal['value']!r}")
        return proposal["value"]

    @traitlets.validate("theme")
    def _valid_theme(self, proposal: dict[str, Any]) -> str:
        if proposal["value"] not in THEMES:
            raise InputError(f"theme must be one of {', '.join(map(repr, THEMES))}; got {proposal['value']!r}")
        return proposal["value"]

    @traitlets.validate("layer")
    def _valid_layer(self, proposal: dict[str, Any]) -> int | None:
        return self._labelled("layer", proposal["value"], self.overview.stacks[self._role()].layers)

    @traitlets.validate("head")
    def _valid_head(self, proposal: dict[str, Any]) -> int | None:
        return self._labelled("head", proposal["value"], self.overview.stacks[self._role()].heads)

    @traitlets.validate("region")
    def _valid_region(self, proposal: dict[str, Any]) -> list[int] | None:
        value = proposal["value"]
        if value is None:
            return None
        _, _, queries, keys = self.overview.stacks[self._role()].shape
        if len(value) != 4:
            raise InputError(f"region must be [query start, query stop, key start, key stop]; got {value!r}")
        q0, q1, k0, k1 = value
        if not (0 <= q0 < q1 <= queries and 0 <= k0 < k1 <= keys):
            raise InputError(
                f"region {value} is out of range: query positions 0-{queries - 1}, key positions 0-{keys - 1}, "
                "each start < stop"
            )
        return list(value)

    def _role(self) -> str:
        return self.stack or next(iter(self.overview.stacks))

    @staticmethod
    def _labelled(name: str, value: Any, labels: list[int]) -> int | None:
        if value is not None and value not in labels:
            raise InputError(f"{name} {value} is not in this view: it has {name}s {labels[0]}-{labels[-1]}")
        return value

    @property
    def selection(self) -> dict[str, Any]:
        """What the user looks at: stack, open layer and head (model numbers), zoomed region, pooling."""
        return {
            "stack": self.stack,
            "layer": self.layer,
            "head": self.head,
            "region": list(self.region) if self.region is not None else None,
            "pooling": self.pooling,
        }

    def html_state(self, levels: int = 1, planes: tuple[str, ...] = PLANES) -> dict[str, Any]:
        """The module's values in a page: the first ``levels`` levels of every stack, the named ``planes``
        (deflated, as the header's encoding says)."""
        carried = {
            role: [level.wire(planes, base64_text=True, deflated=True) for level in s.levels[:levels]]
            for role, s in self.overview.stacks.items()
        }
        names = ("stack", "layer", "head", "region", "pooling", "theme")
        header = compressed_header(self.header)
        return {"header": header, "levels": carried, **{name: getattr(self, name) for name in names}}

    def carried_bytes(self, levels: int, planes: tuple[str, ...]) -> int:
        """The base64 text of the planes `html_state` would carry with ``levels`` and ``planes`` before they are
        deflated, in bytes: a bound on what the page carries (the finer level's counted before it is computed)."""
        total = 0
        for stack in self.overview.stacks.values():
            total += 4 * -(-stack.levels[0].nbytes(planes) // 3)
            if levels > 1:
                total += 4 * -(-stack.finer_nbytes(planes) // 3)
        return total

    def to_html(self, max_bytes: int = HTML_MAX_BYTES) -> str:
        """A self-contained HTML document of at most ``max_bytes`` (UTF-8): the overview of every head, and the
        finer level while it fits (see the module's docstring). Raises `InputError` when the overview's max
        plane alone does not fit."""
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
            raise InputError(f"max_bytes must be a positive integer (bytes), got {max_bytes!r}")
        plans = [(2, PLANES), (1, PLANES), (1, ("max",))]
        title = html.escape(self.title())
        smallest = 0
        for levels, planes in plans:
            if self.carried_bytes(levels, planes) > max_bytes:
                continue
            if levels == 2:
                for stack in self.overview.stacks.values():
                    stack.finer()  # computed only once it fits
            text = page([view_fragment(self.module, self.html_state(levels, planes))], title=title)
            size = len(text.encode("utf-8"))
            if size <= max_bytes:
                return text
            smallest = size
        needed = smallest or self.carried_bytes(1, ("max",))
        raise InputError(
            f"the overview needs {needed / 1e6:,.1f} MB of HTML, over max_bytes={max_bytes:,}: pass a larger "
            "max_bytes, fewer layers or heads (include_layers, include_heads) or fewer cells"
        )

    def save(self, path: str | os.PathLike[str], max_bytes: int = HTML_MAX_BYTES) -> Path:
        """Write `to_html` (at most ``max_bytes``) to ``path`` atomically and return the path."""
        return write_atomically(path, self.to_html(max_bytes))
