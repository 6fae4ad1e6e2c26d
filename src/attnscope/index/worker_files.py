"""The files a search worker reads: its own shards' files, wherever the index is stored.

A worker opens the index where the driver names it (`search_workers`): a folder on a disk it shares with
the driver (read in place), or an fsspec URL (``s3://...``), of which it copies into a local cache only
the files it searches (its group's shards of the (kind, layer) sets asked for, the manifest and the
ranges), never the whole index: workers on other machines read their own shards. A cached copy is
dropped whole when the stored manifest changes (another index at the same URL).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from ..files import writing
from .layout import MANIFEST
from .manifest import IndexFormatError
from .storage import Store


class WorkerFiles:
    """The local folder a worker reads the index at ``location`` from; `fetch` makes files present in it."""

    def __init__(self, location: str, cache: Path | None = None):
        self.store = Store.at(location)
        if self.store.is_local:
            self.folder = Path(self.store.root)
            return
        if not self.store.exists(MANIFEST):
            raise IndexFormatError(f"{self.store.url} is not an attnscope index: it has no {MANIFEST} (yet)")
        if cache is None:
            from ..cache import cache_root

            cache = cache_root() / "search-workers"
        self.folder = cache / hashlib.sha256(self.store.url.encode()).hexdigest()[:16]
        manifest = self.store.read(MANIFEST)
        with writing(self.folder):
            if not (self.folder / MANIFEST).is_file() or (self.folder / MANIFEST).read_bytes() != manifest:
                shutil.rmtree(self.folder, ignore_errors=True)
                self.folder.mkdir(parents=True)
                self._put(MANIFEST, manifest)

    def fetch(self, names: Iterable[str]) -> Path:
        """Copy the files ``names`` (paths under the index, ``shards/00001/ivf.heads.2.faiss``) into the local
        folder unless they are there already; returns the folder. Nothing to do for a local index."""
        if self.store.is_local:
            return self.folder
        for name in names:
            target = self.folder / name
            if target.is_file():
                continue
            partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
            with writing(target):
                target.parent.mkdir(parents=True, exist_ok=True)
                self.store.fs.get_file(self.store.path(name), str(partial))
                os.replace(partial, target)
        return self.folder

    def _put(self, name: str, data: bytes) -> None:
        partial = self.folder / f"{name}.{os.getpid()}.partial"
        partial.write_bytes(data)
        os.replace(partial, self.folder / name)
