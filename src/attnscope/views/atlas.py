"""The head atlas page: the grid and tables (``static/atlas.js``) over an example sentence's head and
neuron views, which follow the head the user opens; one self-contained HTML file, no network needed.

The atlas module dispatches ``attnscope-atlas-open`` with ``{layer, head}``; each example view's
static model listens for it and selects that layer and head, exactly as Python sets a widget's traits.
"""

from __future__ import annotations

import html
import os
import uuid
from pathlib import Path
from typing import Any

from ..atlas.model import Atlas
from ..capture.result import Capture
from ..errors import InputError
from .head import head_view
from .html import (
    MODEL_GLOBAL,
    VIEW_GLOBAL,
    json_for_script,
    page,
    page_script,
    static_text,
    view_fragment,
    write_atomically,
)
from .neuron import neuron_view

DEFAULT_APP_URL = "http://127.0.0.1:8000/"
"""Where `attnscope serve` listens by default; the page links each head there
(``?model=M&text=<the example>&layer=L&heads=H``, the app's own query string)."""
OPEN_EVENT = "attnscope-atlas-open"
FOLLOW = {
    "head_view": 'model.set("layer", detail.layer); model.set("heads", [detail.head]);',
    "neuron_view": 'model.set("layer", detail.layer); model.set("head", detail.head);',
}
"""How each example view's model takes the head the atlas opened (the traits the widget has)."""


def _following_fragment(module: str, state: dict[str, Any]) -> str:
    """A view fragment like `view_fragment`'s, whose model also follows `OPEN_EVENT` on the page."""
    uid = f"attnscope-{uuid.uuid4().hex}"
    script = page_script(
        module,
        (
            f'const state = JSON.parse(document.getElementById("{uid}-data").textContent);\n'
            f"const model = {MODEL_GLOBAL}.createStaticModel(state);\n"
            f'{VIEW_GLOBAL}.default.render({{ model, el: document.getElementById("{uid}") }});\n'
            f'document.addEventListener("{OPEN_EVENT}", ({{ detail }}) => {{ {FOLLOW[module]} }});\n'
        ),
    )
    return "\n".join(
        [
            f"<style>{static_text(module + '.css')}</style>",
            f'<div id="{uid}" class="attnscope-host"></div>',
            f'<script type="application/json" id="{uid}-data">{json_for_script(state)}</script>',
            f'<script type="module">\n{script}</script>\n',
        ]
    )


def atlas_page(
    atlas: Atlas,
    example: Capture | None = None,
    *,
    app_url: str | None = DEFAULT_APP_URL,
    selected: tuple[int, int] = (0, 0),
    score: str = "previous",
) -> str:
    """The atlas as a complete HTML document.

    ``example`` (a `Capture` of the atlas's model with ``fields="all"``) adds its head view and neuron
    view, which switch to each head the user opens; ``app_url`` is the explorer app each head links
    to (None: no link); ``selected`` is the head opened at first, ``score`` what colours the grid.
    """
    layer, head = selected
    if not (0 <= layer < atlas.layers and 0 <= head < atlas.heads):
        raise InputError(
            f"selected head {layer}-{head} is out of range: the atlas has layers 0-{atlas.layers - 1} "
            f"and heads 0-{atlas.heads - 1}"
        )
    state = {
        "atlas": atlas.to_dict(),
        "app_url": app_url,
        "score": score,
        "selected": [layer, head],
        "example_text": example.tokens.texts[0] if example is not None else None,
    }
    fragments = [view_fragment("atlas", state)]
    if example is not None:
        if example.model != atlas.model:
            raise InputError(
                f"the example was captured with {example.model!r}, the atlas with {atlas.model!r}: "
                f"capture it with the atlas's model"
            )
        text = html.escape(" ".join(example.tokens.texts))
        fragments.append(f'<h3 class="attnscope-atlas-example">The opened head on an example sentence: {text}</h3>')
        fragments.append(_following_fragment("head_view", head_view(example, layer=layer, heads=[head]).html_state()))
        fragments.append(_following_fragment("neuron_view", neuron_view(example, layer=layer, head=head).html_state()))
    return page(fragments, title=html.escape(f"attnscope head atlas: {atlas.model} on {atlas.corpus}"))


def save_atlas_page(path: str | os.PathLike[str], atlas: Atlas, example: Capture | None = None, **options: Any) -> Path:
    """Write `atlas_page` to ``path`` atomically and return the path."""
    return write_atomically(path, atlas_page(atlas, example, **options))
