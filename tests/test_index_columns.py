"""B6: token tables with dictionary-encoded string columns read like the object arrays they replace, in a
fraction of the memory."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from attnscope.index.columns import Column, isin
from attnscope.index.tables import Tables, read_columns

ROWS = ["NOUN", "VERB", None, "NOUN", "ADJ", None, "VERB", "NOUN"]


def objects(rows: list) -> np.ndarray:
    array = np.empty(len(rows), dtype=object)
    array[:] = rows
    return array


@pytest.mark.parametrize(
    "make",
    [
        Column.from_values,
        lambda rows: Column.from_arrow(pa.chunked_array([pa.array(rows[:3]), pa.array(rows[3:])])),
        lambda rows: Column.from_arrow(pa.array(rows).dictionary_encode()),
    ],
)
def test_a_column_reads_like_its_object_array(make):
    column, plain = make(ROWS), objects(ROWS)
    assert len(column) == len(plain) and list(column) == ROWS and column.dtype == object
    assert [column[i] for i in range(len(ROWS))] == ROWS and column[2] is None and column[-1] == "NOUN"
    assert list(column[2:6]) == list(plain[2:6])
    rows = np.array([7, 0, 5, 1])
    assert list(column[rows]) == list(plain[rows]) and set(column[rows]) == {"NOUN", "VERB", None}
    np.testing.assert_array_equal(column == "NOUN", plain == "NOUN")
    np.testing.assert_array_equal(column != "VERB", plain != "VERB")
    assert not (column == "PROPN").any()
    for values in (["VERB"], ["NOUN", "ADJ"], ["PROPN"], []):
        np.testing.assert_array_equal(column.isin(values), np.isin(plain, values))
        np.testing.assert_array_equal(isin(column, values), isin(plain, values))
    np.testing.assert_array_equal(np.asarray(column), plain)
    assert column.codes.dtype == np.uint8


def test_codes_widen_with_the_number_of_distinct_values():
    assert Column.from_values([str(i) for i in range(256)]).codes.dtype == np.uint8
    assert Column.from_values([str(i) for i in range(257)]).codes.dtype == np.uint16
    wide = Column.from_values([str(i % 70_000) for i in range(140_000)])
    assert wide.codes.dtype == np.int32 and wide[69_999] == "69999" and wide[70_000] == "0"


def test_tables_read_strings_as_columns_and_numbers_as_narrow_integers(tmp_path):
    tokens = {
        "sentence": [0, 0, 1, 1, 1],
        "word": [0, -1, 0, 1, 1],
        "token": ["dogs", "bark", "the", "cat", "##s"],
        "upos": ["NOUN", None, "DET", "NOUN", "NOUN"],
    }
    pq.write_table(pa.table(tokens), tmp_path / "tokens.parquet", row_group_size=2)  # three row groups
    pq.write_table(pa.table({"text": ["Dogs bark", "the cats"], "first_row": [0, 2]}), tmp_path / "sentences.parquet")
    tables = Tables.read(tmp_path)
    assert isinstance(tables.tokens["token"], Column) and list(tables.tokens["upos"]) == tokens["upos"]
    assert list(tables.tokens["token"]) == tokens["token"]
    assert tables.tokens["sentence"].dtype == np.int32 and list(tables.tokens["word"]) == tokens["word"]
    assert tables.sentences["text"].dtype == object and list(tables.sentences["text"]) == ["Dogs bark", "the cats"]
    huge = tmp_path / "huge.parquet"
    pq.write_table(pa.table({"start": [0, 2**40]}), huge)
    assert read_columns(huge, encode=True)["start"].dtype == np.int64  # too large for int32: kept
