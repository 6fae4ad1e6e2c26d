"""The index's two tables, as Parquet: one row per indexed token (with its word's annotations) and
one row per sentence (text, source, where its tokens start)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..corpus import METADATA_FIELDS, AnnotatedSentence
from .columns import Column
from .extract import PlannedSentence
from .layout import SENTENCES, TOKENS
from .unreadable import damaged_index, decoding

WORD_FIELDS = METADATA_FIELDS + ("head", "form")
"""Per-token columns taken from the token's word: the annotations, the word's head and its form."""


def write_tables(
    directory: Path, planned: Sequence[PlannedSentence], sentences: Sequence[AnnotatedSentence], fields: Sequence[str]
) -> None:
    """Write ``tokens.parquet`` (one row per index row, in row order) and ``sentences.parquet`` (the
    planned sentences in corpus order, each with where its rows start)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    kept = [f for f in WORD_FIELDS if f in fields or f in ("head", "form")]
    tokens: dict[str, list] = {name: [] for name in ("sentence", "position", "word", "token", "start", "end", *kept)}
    rows: dict[str, list] = {
        name: []
        for name in (
            "corpus_index",
            "sent_id",
            "text",
            "source",
            "line",
            "first_row",
            "rows",
            "model_tokens",
            "truncated",
        )
    }
    for item in planned:  # sentences in corpus order
        sentence = sentences[item.sentence]
        for name, value in (
            ("corpus_index", item.sentence),
            ("sent_id", sentence.sent_id),
            ("text", sentence.text),
            ("source", sentence.source),
            ("line", sentence.line),
            ("first_row", item.first_row),
            ("rows", item.rows),
            ("model_tokens", len(item.tokens)),
            ("truncated", item.tokens.truncated),
        ):
            rows[name].append(value)
    for number, item in sorted(enumerate(planned), key=lambda pair: pair[1].first_row):  # tokens in row order
        _sentence_tokens(tokens, number, item, sentences[item.sentence], kept)
    pq.write_table(pa.table(tokens), directory / TOKENS)
    pq.write_table(pa.table(rows), directory / SENTENCES)


def _sentence_tokens(
    tokens: dict[str, list], number: int, item: PlannedSentence, sentence: AnnotatedSentence, kept: list[str]
) -> None:
    """Append one planned sentence's indexed tokens (in position order) to the token table's columns."""
    positions = item.positions.tolist()
    indices = [item.words[position] for position in positions]
    words = [sentence.words[index] if index is not None else None for index in indices]
    spans = [item.tokens.offsets[position] or (-1, -1) for position in positions]
    tokens["sentence"] += [number] * len(positions)
    tokens["position"] += positions
    tokens["word"] += [-1 if index is None else index for index in indices]
    tokens["token"] += [item.tokens.display[position] for position in positions]
    tokens["start"] += [span[0] for span in spans]
    tokens["end"] += [span[1] for span in spans]
    for name in kept:
        found = [getattr(word, name) if word is not None else None for word in words]
        tokens[name] += [-2 if value is None else value for value in found] if name == "head" else found


@dataclass
class Tables:
    """Both tables in memory, for fast per-row access: numbers as numpy columns (int32 where the values
    fit), the token table's strings as dictionary-encoded `Column` s (codes into the distinct values:
    1-4 bytes a row instead of a Python object), the sentence table's strings as object arrays."""

    tokens: dict[str, Any]
    sentences: dict[str, Any]

    @classmethod
    def read(cls, directory: Path) -> Tables:
        return cls(read_columns(directory / TOKENS, encode=True), read_columns(directory / SENTENCES, encode=False))

    @property
    def fields(self) -> list[str]:
        """The annotation columns this index has (upos, deprel, ...)."""
        return [f for f in METADATA_FIELDS if f in self.tokens]

    @cached_property
    def words(self):  # -> grouping.Words
        """Each row's corpus word: its first row, size and rows (`grouping.Words`), made on first use."""
        from .grouping import Words

        return Words(self)

    def sentence_rows(self, sentence: int) -> range:
        first = int(self.sentences["first_row"][sentence])
        return range(first, first + int(self.sentences["rows"][sentence]))


def read_columns(path: Path, encode: bool) -> dict[str, Any]:
    """The columns of a Parquet table: strings as `Column` s when ``encode`` (read as dictionaries, never
    as one Python object per row), otherwise as object arrays; integers as int32 when they fit."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with decoding(str(path), damaged_index):
        schema = pq.read_schema(path)
        strings = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
        table = pq.read_table(path, read_dictionary=strings if encode else None)
    columns: dict[str, Any] = {}
    for name in table.column_names:
        column = table.column(name)
        if encode and name in strings:
            columns[name] = Column.from_arrow(column)
        else:
            columns[name] = _narrow_integers(column.to_numpy(zero_copy_only=False))
    return columns


def _narrow_integers(array: np.ndarray) -> np.ndarray:
    """``array`` as int32 when it is a 64-bit integer array whose values all fit."""
    if array.dtype != np.int64 or not len(array):
        return array
    small = np.iinfo(np.int32)
    return array.astype(np.int32) if small.min <= array.min() and array.max() <= small.max else array
