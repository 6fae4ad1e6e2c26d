"""Keeping faiss's C++ messages off this process's standard output.

faiss's on-disk inverted lists print to the C library's stdout (file descriptor 1), not through Python:
"resizing <file>.ivfdata to N bytes" while a merge grows the lists' file, and "IO_FLAG_ONDISK_SAME_DIR:
updating ondisk filename ..." each time a merged index is read. Those lines would land in the middle of a
command's output (``attnscope search --json``). `quiet_stdout` points descriptor 1 at the null device
for the duration of such a call (C buffers flushed before and after, so nothing leaks out late), then
restores it. A lock keeps two threads from swapping the descriptor at once; Python's own ``print``
from another thread in that window is lost, so keep the calls inside short.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
from collections.abc import Iterator

_LOCK = threading.Lock()


def _flush_c() -> None:
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to flush (not on POSIX): nothing buffered there
        pass


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send what C code writes to file descriptor 1 to the null device while the block runs."""
    with _LOCK:
        sys.stdout.flush()
        _flush_c()
        try:
            saved = os.dup(1)
        except OSError:  # no descriptor 1 (a daemon): nothing to protect
            yield
            return
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 1)
            yield
        finally:
            _flush_c()
            os.dup2(saved, 1)
            os.close(saved)
