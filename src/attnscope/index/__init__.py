"""Reference-corpus indexes: build (`build_index`), open and search (`Index`), matches and summaries."""

from .build import BuildOptions, BuildReport, build_index
from .manifest import IndexFormatError, IndexMismatchError, Manifest
from .query import DEFAULT_TOP, MODES, Query
from .search import Index
from .search_workers import SearchWorkerError, SearchWorkers
from .summaries import Match, SearchResult, Summary

__all__ = [
    "BuildOptions",
    "BuildReport",
    "DEFAULT_TOP",
    "Index",
    "IndexFormatError",
    "IndexMismatchError",
    "MODES",
    "Manifest",
    "Match",
    "Query",
    "SearchWorkerError",
    "SearchWorkers",
    "SearchResult",
    "Summary",
    "build_index",
]
