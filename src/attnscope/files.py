"""Writing a file atomically, with the permissions every new file gets: the one way attnscope writes files.

A file is written beside its target under a temporary name, then moved over the target in one step
(`os.replace`), so a reader never sees half a file and a failed write leaves the old file as it was.
The temporary file is created by `open`, whose mode is 0o666 less the process's umask, exactly as
for any file a program creates (``-rw-r--r--`` under the usual umask 022). `tempfile.mkstemp`
would make it ``-rw-------`` whatever the umask, and the rename would keep that.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import IO, Any, Callable, Iterator


def _temporary(target: Path, unique: bool) -> Path:
    """The temporary name beside ``target``: unique per write, or fixed (``<name>.tmp``) where one writer
    owns the directory and a rerun should overwrite what a killed run left."""
    return target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp" if unique else f"{target.name}.tmp")


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], mode: str = "w", *, encoding: str | None = "utf-8",
                durable: bool = False, unique: bool = True) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on a clean exit it replaces ``path``.

    ``mode`` is "w" (text, ``encoding``) or "wb". ``durable`` flushes the data to disk (fsync) before
    the rename. An exception inside the block removes the temporary file and leaves ``path`` untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_file writes new files: mode must be 'w' or 'wb', got {mode!r}")
    target = Path(path)
    temporary = _temporary(target, unique)
    try:
        with open(temporary, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def replace_atomically(path: str | os.PathLike[str], write: Callable[[Path], None], *, unique: bool = True) -> Path:
    """Have ``write`` create and fill a temporary file beside ``path`` (for writers that take a path,
    such as ``pyarrow.parquet.write_table``), then move it over ``path`` in one step."""
    target = Path(path)
    temporary = _temporary(target, unique)
    try:
        write(temporary)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target


def write_text_atomically(path: str | os.PathLike[str], text: str, *, durable: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path`` as a `Path`."""
    with atomic_file(path, "w", durable=durable) as handle:
        handle.write(text)
    return Path(path)
