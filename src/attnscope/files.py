"""Writing a file atomically, with the permissions every new file gets: the one way attnscope writes files.

A file is written beside its target under a temporary name, then moved over the target in one step
(`os.replace`), so a reader never sees half a file and a failed write leaves the old file as it was.
The temporary file is created by `open`, whose mode is 0o666 less the process's umask, exactly as
for any file a program creates (``-rw-r--r--`` under the usual umask 022). `tempfile.mkstemp`
would make it ``-rw-------`` whatever the umask, and the rename would keep that.

A write that fails for a reason of the file system (the target is a directory, no permission, a
missing directory, a full disk...) raises `WriteError` naming the path and the reason (`write_error`),
never a bare `OSError`; `writing` does the same for a block that writes many files (an index build).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import WriteError

_REASONS = {
    errno.ENOSPC: "the disk is full (no space left on the device)",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EFBIG: "the file is larger than this process may write (the file size limit, `ulimit -f`)",
    errno.ENAMETOOLONG: "the name is too long for the file system",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.EISDIR: "it is a directory; name a file to write",
    errno.ELOOP: "the path has a loop of symbolic links",
    errno.EXDEV: "the temporary file and the target are on different file systems",
}


def write_error(error: OSError, path: str | os.PathLike[str]) -> WriteError:
    """The `WriteError` for ``error`` met while writing ``path``: the path, then what is wrong in words."""
    target = Path(path)
    parent = target.parent
    code = error.errno
    if code in (errno.EACCES, errno.EPERM):
        reason = f"permission denied: this user may not write in {parent}"
    elif code == errno.ENOENT and not parent.is_dir():
        reason = f"its directory {parent} does not exist"
    elif code == errno.EISDIR or (target.is_dir() and code in (errno.ENOTEMPTY, errno.EEXIST)):
        reason = _REASONS[errno.EISDIR]
    else:
        reason = (_REASONS.get(code) if code is not None else None) or (error.strerror or str(error)).rstrip(
            "."
        ).lower()
    return WriteError(f"cannot write {target}: {reason}")


def check_writable_target(path: str | os.PathLike[str]) -> Path:
    """``path`` as a `Path` if a file can be written there; else `WriteError` saying why, before any work.

    Refused: a directory, anything that exists and is not a regular file (a device such as /dev/null, a
    pipe: replacing it would put a regular file in its place), and a path whose directory is missing.
    """
    target = Path(path)
    if target.is_dir():
        raise WriteError(f"cannot write {target}: {_REASONS[errno.EISDIR]}")
    if target.exists() and not stat.S_ISREG(target.stat().st_mode):
        raise WriteError(f"cannot write {target}: it is not a regular file (a device, pipe or socket): name a file")
    if not target.parent.is_dir():
        raise WriteError(f"cannot write {target}: its directory {target.parent} does not exist")
    return target


@contextlib.contextmanager
def writing(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn an `OSError` raised in the block into a `WriteError` naming the file it was about (its
    ``filename``) or else ``path``: for blocks that write many files under ``path``."""
    try:
        yield
    except OSError as error:
        raise write_error(error, error.filename or path) from None


def _temporary(target: Path, unique: bool) -> Path:
    """The temporary name beside ``target``: unique per write, or fixed (``<name>.tmp``) where one writer
    owns the directory and a rerun should overwrite what a killed run left."""
    return target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp" if unique else f"{target.name}.tmp")


def _discard(temporary: Path) -> None:
    with contextlib.suppress(OSError):
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def _replacing(target: Path, unique: bool) -> Iterator[Path]:
    """A temporary path beside ``target`` that the block fills and a clean exit moves over ``target``;
    any exception removes it (an `OSError` becomes a `WriteError` naming ``target``)."""
    temporary = _temporary(target, unique)
    try:
        yield temporary
        os.replace(temporary, target)
    except OSError as error:
        _discard(temporary)
        raise write_error(error, target) from None
    except BaseException:
        _discard(temporary)
        raise


@contextlib.contextmanager
def atomic_file(
    path: str | os.PathLike[str],
    mode: str = "w",
    *,
    encoding: str | None = "utf-8",
    durable: bool = False,
    unique: bool = True,
) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on a clean exit it replaces ``path``.

    ``mode`` is "w" (text, ``encoding``) or "wb". ``durable`` flushes the data to disk (fsync) before
    the rename. An exception inside the block removes the temporary file and leaves ``path`` untouched.
    An `OSError` (in the block, or opening, flushing or moving the file) becomes a `WriteError` naming
    ``path`` and the reason; ``path`` must not be a directory or a device (`check_writable_target`).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_file writes new files: mode must be 'w' or 'wb', got {mode!r}")
    target = check_writable_target(path)
    with _replacing(target, unique) as temporary:
        with open(temporary, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())


def replace_atomically(path: str | os.PathLike[str], write: Callable[[Path], None], *, unique: bool = True) -> Path:
    """Have ``write`` create and fill a temporary file beside ``path`` (for writers that take a path,
    such as ``pyarrow.parquet.write_table``), then move it over ``path`` in one step. An `OSError` becomes
    a `WriteError` as in `atomic_file`."""
    target = check_writable_target(path)
    with _replacing(target, unique) as temporary:
        write(temporary)
    return target


def write_text_atomically(path: str | os.PathLike[str], text: str, *, durable: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path`` as a `Path`."""
    with atomic_file(path, "w", durable=durable) as handle:
        handle.write(text)
    return Path(path)
