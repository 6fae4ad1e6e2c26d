"""Index arguments of the CLI: a directory, or the name of an index in attnscope's cache.

`attnscope serve` builds the default corpus's index into ``<cache>/indexes/ewt--<model>`` (the cache
is ``$ATTNSCOPE_CACHE``, by default ``~/.cache/attnscope``). Every option that takes an index
(``search --index``, ``atlas --index``, ``serve --corpus``) takes that index by name too: its full
directory name (``ewt--sentence-transformers--all-MiniLM-L6-v2``) or its corpus's name (``ewt``),
which picks the index of the command's model (``--model``, else the default model).
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import InputError

DEFAULT_CORPUS = "ewt"
"""The name the default corpus is served and cached under."""


def indexes_root() -> Path:
    """The cache folder of named indexes: ``<cache>/indexes``."""
    from .cache import cache_root

    return cache_root() / "indexes"


def cached_index_name(corpus: str, model_name: str) -> str:
    """The cache name of ``corpus``'s index for ``model_name``: ``ewt--sentence-transformers--all-MiniLM-L6-v2``."""
    return f"{corpus}--{re.sub(r'[^A-Za-z0-9._-]+', '--', model_name).strip('-')}"


def default_index_dir(model_name: str) -> Path:
    """Where the default corpus's index for ``model_name`` lives: ``<cache>/indexes/ewt--<model>``."""
    return indexes_root() / cached_index_name(DEFAULT_CORPUS, model_name)


def cached_index_names() -> list[str]:
    """The names of the complete indexes in the cache (folders holding a manifest), sorted."""
    from .index.layout import MANIFEST

    root = indexes_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / MANIFEST).is_file())


def _model_name(model: str | None) -> str:
    from .capture.sources import model_name

    return model_name("default" if model is None else str(model))


def resolve_index_location(value: str | Path, model: str | None = None, option: str = "--index") -> Path | str:
    """As `resolve_index`, but an fsspec URL of a remote store (``s3://bucket/ewt``) is kept as given:
    `Index.open` reads such an index in place."""
    text = str(value)
    if "://" in text and not text.startswith("file://"):
        return text
    return resolve_index(text[len("file://") :] if text.startswith("file://") else value, model, option)


def resolve_index(value: str | Path, model: str | None = None, option: str = "--index") -> Path:
    """The index directory ``value`` names: an existing path as given, else a cached index by name.

    A corpus name (``ewt``) picks the index of ``model`` (None: the default model), or the only cached
    index of that corpus when the default model has none. Raises `InputError` naming the cached
    indexes when ``value`` is neither an existing path nor a cached name, or is ambiguous.
    """
    text = str(value)
    path = Path(text).expanduser()
    if path.exists():
        return path
    names = cached_index_names()
    root = indexes_root()
    if text in names:
        return root / text
    candidates = [name for name in names if name.startswith(f"{text}--")]
    wanted = cached_index_name(text, _model_name(model))
    if wanted in candidates:
        return root / wanted
    if len(candidates) == 1 and model is None:
        return root / candidates[0]
    listing = (
        f"the cache ({root}) holds {', '.join(names)}"
        if names
        else f"the cache ({root}) holds no index yet "
        f"(`attnscope serve` builds the default corpus's, named {DEFAULT_CORPUS})"
    )
    if candidates:
        which = f"for model {_model_name(model)!r}" if model is not None else "that is the default model's"
        raise InputError(
            f"{option} {text}: the cache has no index of {text} {which}; {listing}. "
            "Give the full name, or --model for the index's model"
        )
    if "/" in text or "\\" in text:
        raise InputError(
            f"no index at {text}: the directory does not exist, and {listing} (build one with `attnscope index`)"
        )
    raise InputError(
        f"{option} {text}: no index at {text} (no such directory) and no cached index of that "
        f"name: {listing} (build one with `attnscope index`)"
    )
