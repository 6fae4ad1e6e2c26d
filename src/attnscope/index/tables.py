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
        sentence = sentences[item.sentence]
        for position in item.positions:
            word_index = item.words[position]
            word = sentence.words[word_index] if word_index is not None else None
            start, end = item.tokens.offsets[position] or (-1, -1)
            tokens["sentence"].append(number)
            tokens["position"].append(int(position))
            tokens["word"].append(-1 if word_index is None else word_index)
            tokens["token"].append(item.tokens.display[position])
            tokens["start"].append(start)
            tokens["end"].append(end)
            for name in kept:
                found = getattr(word, name) if word is not None else None
                tokens[name].append(-2 if name == "head" and found is None else found)
    pq.write_table(pa.table(tokens), directory / TOKENS)
    pq.write_table(pa.table(rows), directory / SENTENCES)


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
