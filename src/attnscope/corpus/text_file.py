"""Reading corpus files as UTF-8 text, with errors that name the file, line and byte that are wrong."""

from __future__ import annotations

from pathlib import Path

from ..errors import CorpusError, CorpusFormatError

BOM = "\ufeff"


def read_utf8(path: Path) -> str:
    """The text of ``path`` decoded as UTF-8, exactly as written (line ends kept; a leading BOM dropped).

    Raises `CorpusFormatError` for bytes that are not UTF-8 or for NUL characters (binary data), and
    `CorpusError` for a file that cannot be read.
    """
    return decode_utf8(read_bytes(path), path)


def read_bytes(path: Path, start: int = 0, size: int | None = None) -> bytes:
    """``size`` bytes of ``path`` from byte ``start`` (all the rest when None); `CorpusError` when the
    file cannot be read."""
    try:
        with open(path, "rb") as handle:
            handle.seek(start)
            return handle.read() if size is None else handle.read(size)
    except FileNotFoundError:
        raise CorpusError(f"{path} does not exist; expected a corpus file") from None
    except OSError as error:
        raise CorpusError(f"{path} cannot be read: {error.strerror or error}") from None


def decode_utf8(data: bytes, path: Path, first_line: int = 1, first_byte: int = 0) -> str:
    """``data``, the bytes of ``path`` from byte ``first_byte`` (the start of line ``first_line``),
    decoded as UTF-8; a BOM is dropped when it starts the file. Errors name the line and the byte (or
    the column) in the whole file, as a read of the whole file would."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = first_line + data.count(b"\n", 0, error.start)
        raise CorpusFormatError(
            f"{path}:{line}: byte {first_byte + error.start} (0x{data[error.start]:02x}) is not valid UTF-8; "
            f"corpus files must be UTF-8 text: re-encode the file as UTF-8 "
            f"(for example `iconv -f latin1 -t utf-8 {path.name} > {path.stem}.utf8{path.suffix}`)"
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        line, column = first_line + text.count("\n", 0, nul), nul - text.rfind("\n", 0, nul)
        raise CorpusFormatError(
            f"{path}:{line}: NUL character at column {column} (binary data?); expected plain UTF-8 text"
        )
    return text[len(BOM) :] if first_byte == 0 and text.startswith(BOM) else text
