"""attnscope's cache directory: where the default corpus is downloaded, indexes are built and built-in
models are converted, once, for every later run."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "ATTNSCOPE_CACHE"
"""The environment variable that moves the cache root (default ``~/.cache/attnscope``)."""


def cache_root() -> Path:
    """attnscope's cache directory: ``$ATTNSCOPE_CACHE``, by default ``~/.cache/attnscope``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "attnscope")
