"""Dictionary-encoded string columns: each row a small integer code into the column's distinct values.

A token table's string columns (token, form, upos, lemma, ...) repeat a few thousand values over
millions of rows. Held as numpy object arrays they cost a pointer and a Python ``str`` per row (about
60 bytes); as codes they cost 1, 2 or 4 bytes per row plus the distinct values once. A `Column` reads
like the object array it replaces: ``column[row]`` is the value (a ``str``, or None where the row has
none), ``column[rows]`` / ``column[a:b]`` an object array of those rows' values (made for them only),
``column == value`` a boolean mask, `isin` the mask of `numpy.isin`; ``numpy.asarray(column)`` makes
the whole object array (avoid it on large tables).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import cached_property
from typing import Any

import numpy as np

CODE_TYPES = (np.uint8, np.uint16, np.int32)
"""Code dtypes, the smallest that numbers every distinct value being used."""


class Column:
    """A string column as ``codes`` (one per row) into ``values`` (object array of the distinct values,
    None included when some row has none)."""

    __hash__ = None  # type: ignore[assignment]  # == compares row by row, as for numpy arrays

    def __init__(self, codes: np.ndarray, values: np.ndarray):
        self.codes, self.values = codes, values

    @cached_property
    def _code(self) -> dict[str | None, int]:
        """Value -> code, made on the first comparison (most columns are only read row by row)."""
        return {value: code for code, value in enumerate(self.values.tolist())}

    @classmethod
    def from_arrow(cls, array: Any) -> Column:
        """The column of a pyarrow (chunked) array of strings, dictionary-encoded or not; nulls become None."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(array, pa.ChunkedArray):
            if array.num_chunks == 0:
                return cls(np.zeros(0, dtype=np.uint8), _objects([]))
            if not pa.types.is_dictionary(array.type):
                array = pc.dictionary_encode(array)
            array = array.unify_dictionaries().combine_chunks()
        elif not pa.types.is_dictionary(array.type):
            array = pc.dictionary_encode(array)
        values = array.dictionary.to_pylist()
        indices = array.indices
        if indices.null_count:
            indices = indices.fill_null(len(values))
            values.append(None)
        return cls(_narrow(indices.to_numpy(zero_copy_only=False), len(values)), _objects(values))

    @classmethod
    def from_values(cls, rows: Iterable[str | None]) -> Column:
        """The column of ``rows`` (strings or None)."""
        code: dict[str | None, int] = {}
        codes = [code.setdefault(value, len(code)) for value in rows]
        return cls(_narrow(np.asarray(codes, dtype=np.int64), len(code)), _objects(list(code)))

    def __len__(self) -> int:
        return len(self.codes)

    def __iter__(self) -> Iterator[str | None]:
        values = self.values
        return (values[code] for code in self.codes.tolist())

    def __getitem__(self, key: Any) -> Any:
        """A row's value for an integer; an object array of the rows' values for a slice or rows."""
        return self.values[self.codes[key]]

    def __eq__(self, other: object) -> Any:
        if isinstance(other, (str, type(None))):
            code = self._code.get(other)
            return np.zeros(len(self), dtype=bool) if code is None else self.codes == code
        return np.asarray(self) == other

    def __ne__(self, other: object) -> Any:
        return ~np.asarray(self.__eq__(other), dtype=bool)

    def isin(self, values: Iterable[str | None]) -> np.ndarray:
        """(rows,) bool: whether each row's value is one of ``values``."""
        codes = [self._code[v] for v in values if v in self._code]
        return np.isin(self.codes, np.asarray(codes, dtype=self.codes.dtype))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = self.values[self.codes]
        return array if dtype is None else array.astype(dtype)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(object)

    @property
    def nbytes(self) -> int:
        """Bytes of the codes and of the distinct values (their Python objects included)."""
        import sys

        return int(self.codes.nbytes + self.values.nbytes + sum(sys.getsizeof(v) for v in self.values.tolist()))

    def __repr__(self) -> str:
        return f"Column({len(self)} rows, {len(self.values)} distinct values, codes {self.codes.dtype})"


def isin(column: Any, values: Iterable[str | None]) -> np.ndarray:
    """`numpy.isin` for a `Column` or a plain array."""
    if isinstance(column, Column):
        return column.isin(values)
    return np.isin(column, np.asarray(list(values), dtype=object))


def _narrow(codes: np.ndarray, size: int) -> np.ndarray:
    for dtype in CODE_TYPES:
        if size <= np.iinfo(dtype).max + 1:
            return codes.astype(dtype, copy=False)
    return codes.astype(np.int64, copy=False)


def _objects(values: list[str | None]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array
