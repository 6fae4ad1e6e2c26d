"""Index and shard files that are present at their listed size but whose bytes do not decode (a damaged
copy, a bad disk): the reader's low-level error (faiss, Arrow, zstd, NumPy) becomes the caller's error,
naming the file and what to do, instead of a traceback from the library that read it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pyarrow
import zstandard

from ..errors import AttnscopeError, InputError
from .manifest import IndexFormatError

DECODE_ERRORS: tuple[type[BaseException], ...] = (
    RuntimeError,  # faiss
    OSError,  # Arrow's and NumPy's reads of damaged bytes
    ValueError,  # NumPy, Arrow's invalid data, codes of the wrong length
    EOFError,
    pyarrow.ArrowException,
    zstandard.ZstdError,
)


@contextmanager
def decoding(name: str, error: Callable[[str], AttnscopeError]) -> Iterator[None]:
    """Raise ``error("<name> cannot be read (<reason>)")`` for a decoding failure in the block; attnscope's
    own errors pass through unchanged."""
    try:
        yield
    except AttnscopeError:
        raise
    except DECODE_ERRORS as caught:
        reason = (str(caught).strip().splitlines() or [type(caught).__name__])[-1][:300]
        raise error(f"{name} cannot be read ({reason})") from None


def damaged_shard(number: int, folder: str) -> Callable[[str], InputError]:
    """The error for a file of shard ``number`` (in ``folder``) that does not decode: build the shard again."""
    return lambda problem: InputError(
        f"shard {number} is damaged: {problem}; remove {folder} and build the shard again "
        f"(`attnscope index-shard DIR --shard {number}`)"
    )


def damaged_plan(root: str) -> Callable[[str], InputError]:
    """The error for a file of the build plan in ``root`` (ranges, trained quantisers) that is missing or does
    not decode: plan the build again."""
    return lambda problem: InputError(
        f"the build plan in {root} is damaged: {problem}; remove the folder and plan the build again"
    )


def damaged_index(problem: str) -> IndexFormatError:
    """The error for a file of a committed index that does not decode."""
    return IndexFormatError(f"the index is damaged: {problem}; build it again (its manifest lists this file)")
