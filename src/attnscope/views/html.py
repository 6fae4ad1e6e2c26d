"""Self-contained HTML for the views: the package's ES modules and CSS inlined, the data as JSON + base64.

The page needs no network: the JS and CSS are read from ``attnscope/static`` with `importlib.resources`
and written into the HTML, with a stand-in model (``static_model.js``) in place of anywidget's.
A view's module is ``common.js`` and ``contrast.js`` followed by ``<view>.js`` (`bundle`), one ES module, the
same text the notebook widget loads as its ``_esm``.
"""

from __future__ import annotations

import json
import os
import uuid
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ..files import write_text_atomically


@cache
def static_text(name: str) -> str:
    """The text of one shipped file under ``attnscope/static``; refuses text that would end an inline tag."""
    text = (resources.files("attnscope") / "static" / name).read_text(encoding="utf-8")
    if "</script" in text.lower() or "</style" in text.lower():
        raise RuntimeError(f"static/{name} contains a closing script/style tag and cannot be inlined")
    return text


PARTS: dict[str, tuple[str, ...]] = {
    "head_view": ("attention_data", "raster"),
    "model_view": ("attention_data", "raster", "model_view_detail"),
    "neuron_view": ("neuron_terms",),
    "app": ("attention_data", "raster", "static_model", "atlas", "app_state", "app_search", "app_attention",
            "app_links", "app_corpus", "app_search_panel", "app_atlas_panel"),
}
"""Extra files a view's module is made of, placed between the shared files (`SHARED`) and ``<module>.js``."""
SHARED = ("common", "contrast")
"""What every view's module starts with: the DOM helpers and the label colours that stay readable on any shade."""


def bundle(module: str) -> str:
    """One view's ES module: the shared helpers (`SHARED`), its `PARTS`, then ``<module>.js``."""
    return "\n".join(static_text(name + ".js") for name in (*SHARED, *PARTS.get(module, ()), module))


def json_for_script(value: Any) -> str:
    """JSON that is safe inside ``<script type="application/json">``: ``<``, ``>`` and ``&`` escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def view_fragment(module: str, state: dict[str, Any]) -> str:
    """One view as an HTML fragment: a style, a host element, its data and a module script.

    ``state`` holds the values the module reads with ``model.get`` (JSON-ready; binary as base64).
    Many fragments can live in one page or notebook: every id is unique, every CSS rule is scoped.
    """
    uid = f"attnscope-{uuid.uuid4().hex}"
    bootstrap = (
        f'const el = document.getElementById("{uid}");\n'
        f'const state = JSON.parse(document.getElementById("{uid}-data").textContent);\n'
        "render({ model: createStaticModel(state), el });\n"
    )
    return (
        f"<style>{static_text(module + '.css')}</style>\n"
        f'<div id="{uid}" class="attnscope-host"></div>\n'
        f'<script type="application/json" id="{uid}-data">{json_for_script(state)}</script>\n'
        f'<script type="module">\n{static_text("static_model.js")}\n{bundle(module)}\n{bootstrap}</script>\n'
    )


def page(fragments: list[str], title: str = "attnscope") -> str:
    """A complete HTML document holding the given view fragments, one after another."""
    body = "\n".join(fragments)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{title}</title>\n<meta name=\"color-scheme\" content=\"light dark\">\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def write_atomically(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and `os.replace`: never a half-written file,
    with the umask's permissions like any new file (`files.write_text_atomically`)."""
    return write_text_atomically(path, text)
