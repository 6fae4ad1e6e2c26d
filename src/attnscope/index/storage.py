"""Where a sharded build keeps its files: a local directory or any location fsspec reaches.

A `Store` is a root (``/data/ewt-index``, ``file:///data/x``, ``memory://x``, ``s3://bucket/x`` with
the matching fsspec package installed) and the file system that serves it. Every file is written
whole or not at all: on a local disk through a temporary name and a rename (`attnscope.files`), on an
object store as one upload (an object appears only once it is complete). So a reader that sees a
file sees all of it, and a prefix whose marker file is missing simply does not exist yet: the build's
markers (a shard's ``done.json``, the index's ``manifest.json``) are always written last.

An index on a remote store is read in place (`remote.RemoteFiles`): the files that faiss must read
from a local path are fetched into attnscope's cache when first used, attention blocks read as ranges.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import InputError
from ..files import atomic_file, writing


@dataclass(frozen=True)
class Store:
    """A root location and its fsspec file system; names below it use ``/`` (``shards/00003/done.json``)."""

    fs: Any
    root: str
    url: str

    @classmethod
    def at(cls, location: str | os.PathLike[str]) -> Store:
        """The store at ``location``: a local path or an fsspec URL. Raises `InputError` for a protocol
        fsspec does not know (naming the package that would add it, when fsspec says)."""
        import fsspec

        text = os.fspath(location)
        if "://" not in text:
            text = str(Path(text).expanduser().absolute())
        try:
            fs, root = fsspec.core.url_to_fs(text)
        except (ImportError, ValueError) as error:
            raise InputError(f"cannot use the storage location {text!r}: {error}") from None
        return cls(fs, root.rstrip("/") or "/", text)

    @property
    def protocols(self) -> tuple[str, ...]:
        """The names fsspec gives the store's file system (``("file", "local")``, ``("memory",)``...)."""
        protocol = self.fs.protocol
        return tuple(protocol) if isinstance(protocol, tuple | list) else (protocol,)

    @property
    def is_local(self) -> bool:
        """Whether the files are on this machine's file system (``Path(store.path(name))`` works)."""
        return "file" in self.protocols

    @property
    def in_process(self) -> bool:
        """Whether the files live in this process's memory (``memory://``): no other process reaches them,
        and they are gone when it ends."""
        return "memory" in self.protocols

    def path(self, name: str) -> str:
        """The file system path of ``name`` under the root."""
        return f"{self.root}/{name}" if name else self.root

    def exists(self, name: str) -> bool:
        return bool(self.fs.exists(self.path(name)))

    def size(self, name: str) -> int:
        """The size of the file ``name`` in bytes; `FileNotFoundError` when it does not exist."""
        return int(self.fs.size(self.path(name)))

    def read(self, name: str) -> bytes:
        return bytes(self.fs.cat_file(self.path(name)))

    def write(self, name: str, data: bytes) -> None:
        """Write the file ``name`` whole (creating its folders), replacing any older one."""
        with self.writer(name) as handle:
            handle.write(data)

    @contextlib.contextmanager
    def writer(self, name: str) -> Iterator[IO[bytes]]:
        """A binary handle for streaming a large file ``name``; it exists, whole, only after a clean exit."""
        target = self.path(name)
        if self.is_local:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            with atomic_file(target, "wb", durable=True, unique=False) as handle:
                yield handle
            return
        buffer = tempfile.SpooledTemporaryFile(max_size=64 << 20)
        with buffer:
            yield buffer
            buffer.seek(0)
            with writing(target), self.fs.open(target, "wb") as handle:
                shutil.copyfileobj(buffer, handle, 8 << 20)

    def put(self, local: Path, name: str) -> None:
        """Copy the local file ``local`` to ``name`` (moved when both are on this machine)."""
        if self.is_local:
            target = Path(self.path(name))
            target.parent.mkdir(parents=True, exist_ok=True)
            with writing(target):
                shutil.move(local, target)
            return
        with open(local, "rb") as source, self.writer(name) as handle:
            shutil.copyfileobj(source, handle, 8 << 20)

    def names(self, prefix: str) -> list[str]:
        """The names of the files directly under the folder ``prefix`` (not its subfolders), sorted."""
        base = self.path(prefix)
        if not self.fs.isdir(base):
            return []
        found = self.fs.ls(base, detail=True)
        return sorted(item["name"].rstrip("/").rsplit("/", 1)[-1] for item in found if item["type"] == "file")

    def remove(self, name: str) -> None:
        """Remove the file or folder ``name`` (nothing when it is absent)."""
        target = self.path(name)
        if self.fs.exists(target):
            self.fs.rm(target, recursive=True)

    def download(self, prefix: str, local: Path) -> None:
        """Copy every file under ``prefix`` (recursively) into the local folder ``local``."""
        base = self.path(prefix)
        for path in self.fs.find(base):
            relative = path[len(base) :].lstrip("/") if path.startswith(base) else path.rsplit("/", 1)[-1]
            target = local / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            self.fs.get_file(path, str(target))
