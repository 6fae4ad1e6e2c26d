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
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CorpusError(f"{path} does not exist; expected a corpus file") from None
    except OSError as error:
        raise CorpusError(f"{path} cannot be read: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise CorpusFormatError(
            f"{path}:{line}: byte {error.start} (0x{data[error.start]:02x}) is not valid UTF-8; "
            f"corpus files must be UTF-8 text: re-encode the file as UTF-8 "
            f"(for example `iconv -f latin1 -t utf-8 {path.name} > {path.stem}.utf8{path.suffix}`)"
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise CorpusFormatError(
            f"{path}:{line}: NUL character at character {nul} (binary data?); expected plain UTF-8 text"
        )
    return text[len(BOM) :] if text.startswith(BOM) else text
