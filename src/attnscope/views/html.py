"""Self-contained HTML for the views: the package's bundled ES modules and CSS inlined, the data as JSON + base64.

The page needs no network: the JS and CSS are read from ``attnscope/static`` with `importlib.resources`
and written into the HTML. A view's JS is its committed bundle (``static/bundles/<view>.js``, built by esbuild
from ``static/<view>.js`` and what it imports: ``js/build.mjs``, ``make js``), the same text the notebook
widget loads as its ``_esm``. Inlined in a page, the bundle defines `VIEW_GLOBAL` for the lines after it,
which mount the view on a stand-in model (the ``static_model`` bundle, `MODEL_GLOBAL`) in place of anywidget's.
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
    path = resources.files("attnscope") / "static"
    for part in name.split("/"):  # "bundles/head_view.js"
        path = path / part
    text = path.read_text(encoding="utf-8")
    if "</script" in text.lower() or "</style" in text.lower():
        raise RuntimeError(f"static/{name} contains a closing script/style tag and cannot be inlined")
    return text


VIEW_GLOBAL = "attnscopeView"
"""What a view's bundle names its module's exports, as js/build.mjs builds it: ``attnscopeView.default.render``."""
MODEL_GLOBAL = "attnscopeStaticModel"
"""What the ``static_model`` bundle names its exports: ``attnscopeStaticModel.createStaticModel(state)``."""


def bundle(name: str) -> str:
    """The committed bundle ``static/bundles/<name>.js``: one self-contained script (see js/build.mjs for each kind)."""
    return static_text(f"bundles/{name}.js")


def page_script(module: str, mount: str) -> str:
    """The text of one module script that runs a view in a page without a kernel: the stand-in model's bundle,
    the view's bundle, then ``mount`` (JS that may call `VIEW_GLOBAL` and `MODEL_GLOBAL`)."""
    return f"{bundle('static_model')}\n{bundle(module)}\n{mount}"


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
        f"{VIEW_GLOBAL}.default.render({{ model: {MODEL_GLOBAL}.createStaticModel(state), el }});\n"
    )
    return (
        f"<style>{static_text(module + '.css')}</style>\n"
        f'<div id="{uid}" class="attnscope-host"></div>\n'
        f'<script type="application/json" id="{uid}-data">{json_for_script(state)}</script>\n'
        f'<script type="module">\n{page_script(module, bootstrap)}</script>\n'
    )


def page(fragments: list[str], title: str = "attnscope") -> str:
    """A complete HTML document holding the given view fragments, one after another."""
    body = "\n".join(fragments)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<title>{title}</title>\n<meta name="color-scheme" content="light dark">\n</head>\n'
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def write_atomically(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and `os.replace`: never a half-written file,
    with the umask's permissions like any new file (`files.write_text_atomically`)."""
    return write_text_atomically(path, text)
