"""A corpus as a server serves it: its name, its index and the model its queries run with.

Its own module so that both the app state (state.py) and the atlas jobs (atlas_jobs.py) can name it
without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..capture.loading import ModelHandle
from ..index import Index


@dataclass(frozen=True)
class Corpus:
    """A configured corpus: its index (safe to search from several threads) and the configured model
    its queries run with."""

    name: str
    index: Index
    model: ModelHandle
