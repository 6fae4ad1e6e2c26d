"""An index on a remote store (an fsspec URL such as ``s3://bucket/ewt``) read in place.

Opening one fetches only its small files (the manifest, the token and sentence tables, the quantiser
ranges, the attention spans) into a local folder in attnscope's cache
(``<cache>/remote-indexes/<hash of the URL>``). A vector set's file is fetched the first time a search
uses it (faiss reads local files only), and a match's attention block is read from the store as a byte
range (``attention.bin`` is never fetched whole): the blocks of one search's matches in one concurrent
request where the file system supports it (`fsspec`'s ``cat_ranges``). What was fetched stays for the
next open while the store's manifest is unchanged; a changed manifest empties the folder first.

Every file the manifest lists is checked against the store's listing (its size) when the index opens,
and each fetched file again after it arrives, so a damaged or half-copied index is refused
(`IndexFormatError`) rather than searched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..files import writing
from .layout import ATTENTION, MANIFEST, RANGES, SENTENCES, SPANS, TOKENS
from .manifest import IndexFormatError, Manifest, check_sizes, parse_manifest
from .storage import Store

EAGER = (TOKENS, SENTENCES, RANGES, SPANS)
"""The files fetched when a remote index opens (the rest are fetched, or read in ranges, when used)."""

RANGE_CACHE_BYTES = 32 << 20
"""The attention bytes a remote index keeps of the ranges it read (least recently used evicted first)."""


class RemoteFiles:
    """The files of one index on a remote ``store``, mirrored on demand into the local ``folder``.
    Safe to use from several threads (one fetch of a file at a time)."""

    def __init__(self, store: Store, folder: Path, manifest: Manifest, sizes: dict[str, int | None]):
        self.store, self.folder, self.manifest, self._sizes = store, folder, manifest, sizes
        self._lock = threading.Lock()
        self._ranges: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._range_bytes = 0
        self.fetched_bytes = 0
        """Bytes this object read from the store: whole files fetched and attention ranges."""

    @classmethod
    def open(cls, location: str, eager: Sequence[str] = EAGER) -> RemoteFiles:
        """The index at the fsspec URL ``location``, the files ``eager`` fetched (by default its small files;
        a search worker, which reads no tables, asks for the ranges only). Raises `IndexFormatError` when
        there is no complete index there (no manifest, or a listed file missing or of another size),
        `InputError` for a protocol fsspec does not know."""
        from ..cache import cache_root

        store = Store.at(location)
        if not store.exists(MANIFEST):
            raise IndexFormatError(f"{store.url} is not an attnscope index: it has no {MANIFEST} (yet)")
        raw = store.read(MANIFEST)
        manifest = parse_manifest(raw.decode("utf-8"), f"{store.url}/{MANIFEST}", store.url)
        sizes = listed_sizes(store)
        check_sizes(manifest, sizes, store.url)
        folder = cache_root() / "remote-indexes" / hashlib.sha256(store.url.encode()).hexdigest()[:16]
        with writing(folder):
            if not (folder / MANIFEST).is_file() or (folder / MANIFEST).read_bytes() != raw:
                shutil.rmtree(folder, ignore_errors=True)  # another version of the index: start again
            folder.mkdir(parents=True, exist_ok=True)
            files = cls(store, folder, manifest, sizes)
            for name in eager:
                if name in manifest.files:
                    files.local(name)
            fetched_whole(folder / MANIFEST, raw)  # last: the folder answers for this manifest
        return files

    def local(self, name: str) -> Path:
        """The local path of the index file ``name`` (``/``-separated, relative to the index), fetched from
        the store first if it is not here yet. Raises `IndexFormatError` when the fetched file's size is
        not the manifest's."""
        target = self.folder / name
        with self._lock:
            expected = self.manifest.files.get(name, self._sizes.get(name))
            if target.is_file() and (expected is None or target.stat().st_size == expected):
                return target
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
            with writing(target):
                try:
                    self.store.fs.get_file(self.store.path(name), str(partial))
                    size = partial.stat().st_size
                    if expected is not None and size != expected:
                        raise IndexFormatError(
                            f"{self.store.url} is damaged: {name} arrived with {size} bytes, "
                            f"the manifest lists {expected}"
                        )
                    os.replace(partial, target)
                    self.fetched_bytes += size
                finally:
                    partial.unlink(missing_ok=True)
            return target

    def read_ranges(self, name: str, spans: Sequence[tuple[int, int]]) -> list[bytes]:
        """The bytes ``start:end`` of the file ``name`` for each (start, end) in ``spans``, read from the
        store (in one concurrent request where the file system has one) unless read recently."""
        wanted = [(int(a), int(b)) for a, b in spans]
        with self._lock:
            missing = sorted({span for span in wanted if span not in self._ranges})
        if missing:
            path = self.store.path(name)
            got = self.store.fs.cat_ranges([path] * len(missing), [a for a, _ in missing], [b for _, b in missing])
            with self._lock:
                for span, data in zip(missing, got, strict=True):
                    if isinstance(data, Exception):
                        raise IndexFormatError(f"cannot read {name} of {self.store.url}: {data}")
                    self._remember(span, bytes(data))
                    self.fetched_bytes += len(data)
        with self._lock:
            found = []
            for span in wanted:
                data = self._ranges.get(span)
                if data is None:  # evicted by a read beside this one: read it alone
                    data = bytes(self.store.fs.cat_file(self.store.path(name), start=span[0], end=span[1]))
                found.append(data)
            return found

    def _remember(self, span: tuple[int, int], data: bytes) -> None:
        self._ranges[span] = data
        self._ranges.move_to_end(span)
        self._range_bytes += len(data)
        while len(self._ranges) > 1 and self._range_bytes > RANGE_CACHE_BYTES:
            _, dropped = self._ranges.popitem(last=False)
            self._range_bytes -= len(dropped)


class RemoteBytes:
    """The attention file of a remote index as `AttentionStore` reads it: ``data[start:end]`` gives those
    bytes as a uint8 array, read as a range; ``prefetch`` reads many ranges in one request."""

    def __init__(self, files: RemoteFiles, name: str = ATTENTION):
        self.files, self.name = files, name

    def __getitem__(self, span: slice) -> np.ndarray:
        (data,) = self.files.read_ranges(self.name, [(span.start, span.stop)])
        return np.frombuffer(data, dtype=np.uint8)

    def prefetch(self, spans: Sequence[tuple[int, int]]) -> None:
        self.files.read_ranges(self.name, spans)


def listed_sizes(store: Store) -> dict[str, int | None]:
    """Every file under the store's root (recursively), relative name -> size in bytes."""
    found = store.fs.find(store.root, detail=True)
    base = store.root.rstrip("/") + "/"
    sizes: dict[str, int | None] = {}
    for path, info in found.items():
        if info.get("type") == "file" and path.startswith(base):
            sizes[path[len(base) :]] = int(info["size"])
    return sizes


def fetched_whole(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary name, so the file is whole or absent."""
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    partial.write_bytes(data)
    os.replace(partial, path)
