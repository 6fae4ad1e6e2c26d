"""Streaming a corpus file line by line to find where its sentences (CoNLL-U) or paragraphs (text)
start, without parsing or annotating them: what `attnscope.corpus.slices` plans slices from.

Both formats cut at the same place: a non-blank line after a blank one (a line of whitespace only) or
at the file's start. A CoNLL-U sentence is its block of non-blank lines (`parse_conllu`); a text
paragraph is a run of non-blank lines too (the blank-line split of `attnscope.corpus.spacy_text`).
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CorpusError, CorpusFormatError
from .text_file import decode_utf8


@dataclass
class Unit:
    """A sentence block (CoNLL-U) or a paragraph (text), filled in as its lines are read: its first
    line; CoNLL-U: its ``# sent_id`` value (None without one) and the line of that comment; text: its
    length in characters, leading and trailing whitespace left out."""

    line: int
    sent_id: str | None = None
    id_line: int = 0
    start: int = 0  # text: the character where the paragraph starts, and where it ends so far
    end: int = 0
    words: bool = False  # CoNLL-U: a word line was read (comments after it are not the sentence's)

    @property
    def characters(self) -> int:
        return self.end - self.start


def lines(path: Path) -> Iterator[tuple[int, int, bytes, str]]:
    """(byte offset, 1-based line number, raw bytes, decoded text) of each line of ``path``, newline
    included; the errors of `read_utf8` (not UTF-8, NUL, unreadable) for the line at fault."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise CorpusError(f"{path} does not exist; expected a corpus file") from None
    except OSError as error:
        raise CorpusError(f"{path} cannot be read: {error.strerror or error}") from None
    offset = 0
    with handle:
        for number, raw in enumerate(handle, 1):
            yield offset, number, raw, decode_utf8(raw, path, number, offset)
            offset += len(raw)


def scan_units(path: Path, conllu: bool) -> Iterator[tuple[int, int, bytes, Unit | None]]:
    """Each line of ``path`` as (byte offset, line number, raw bytes, the `Unit` it starts or None).
    A unit is complete once the next one starts, or once the iteration ends."""
    blank, unit, characters = True, None, 0
    for offset, number, raw, text in lines(path):
        content = text[:-1] if text.endswith("\n") else text
        started = None
        if content.strip():
            if blank:
                unit = started = Unit(number)
                unit.start = characters + len(content) - len(content.lstrip())
            assert unit is not None
            if conllu:
                _conllu_line(unit, number, content)
            else:
                unit.end = characters + len(content.rstrip())
        blank = not content.strip()
        characters += len(text)
        yield offset, number, raw, started


def _conllu_line(unit: Unit, number: int, content: str) -> None:
    """Note a sentence's first ``# sent_id`` comment (as `parse_conllu` reads it) before its words."""
    if not content.startswith("#"):
        unit.words = True
        return
    key, sep, value = content[1:].partition("=")
    value = value.strip()
    if not unit.words and sep and key.strip() == "sent_id" and value and unit.sent_id is None:
        unit.sent_id, unit.id_line = value, number


class DuplicateIds:
    """Sentence ids seen so far, 8 bytes each (a 64-bit hash); `check` finds the ids used twice."""

    def __init__(self) -> None:
        self.hashes = array("q")

    def add(self, sent_id: str) -> None:
        self.hashes.append(_hash(sent_id))

    def check(self, paths: list[Path]) -> None:
        """Raise the error `open_corpus` gives for the first sentence id used twice, if any: a second use
        within a file (`parse_conllu`'s error) before one across files. Hash collisions of different ids
        are told apart by reading the files again, only when some hash repeats."""
        values, counts = np.unique(np.frombuffer(self.hashes, dtype=np.int64), return_counts=True)
        repeated = set(values[counts > 1].tolist())
        if not repeated:
            return
        seen: dict[str, list[tuple[int, int, int]]] = {}  # id -> (file, first line, id line) of each use
        for number, path in enumerate(paths):
            for sent_id, line, id_line in _ids(path):
                if _hash(sent_id) in repeated:
                    seen.setdefault(sent_id, []).append((number, line, id_line))
        uses = sorted((use, sent_id) for sent_id, found in seen.items() for use in found[1:])
        for (number, _, id_line), sent_id in uses:
            earlier = [u for u in seen[sent_id] if u[0] == number and u[2] < id_line]
            if earlier:
                raise CorpusFormatError(
                    f"{paths[number]}:{id_line}: sent_id {sent_id!r} is already used by the sentence on line "
                    f"{earlier[0][2]}; expected a unique sent_id for each sentence"
                )
        for (number, line, _), sent_id in uses:
            other_file, other_line, _ = seen[sent_id][0]
            raise CorpusError(
                f"{paths[number].name}:{line}: sent_id {sent_id!r} is already used by "
                f"{paths[other_file].name}:{other_line}; expected unique sentence ids across the corpus"
            )


def _ids(path: Path) -> Iterator[tuple[str, int, int]]:
    """(sent_id, first line, line of the id) of each sentence of a CoNLL-U file, ``<stem>-<n>`` without one."""
    pending: Unit | None = None
    count = 0
    for *_, unit in scan_units(path, True):
        if unit is not None and pending is not None:
            yield _id(path, pending, count)
        if unit is not None:
            pending, count = unit, count + 1
    if pending is not None:
        yield _id(path, pending, count)


def _id(path: Path, unit: Unit, number: int) -> tuple[str, int, int]:
    if unit.sent_id is None:
        return f"{path.stem}-{number}", unit.line, unit.line
    return unit.sent_id, unit.line, unit.id_line


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little", signed=True)
