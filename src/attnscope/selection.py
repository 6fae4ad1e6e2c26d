"""The one check of a chosen layer, head or position number, and of a list of them.

Every caller (the views, `analysis.aggregate`, the index's queries, the API, the CLI) checks its layers,
heads and positions here, so a bad one reads the same everywhere:

- ``head 12 is out of range: this index has heads 0-11`` (`errors.check_range`'s message);
- ``layer 0 is not among the included layers: include_layers keeps layers 1, 3; pass one of them as layer``;
- ``heads must be a list of head numbers, got 3``;
- ``heads is empty: name at least one head (this stack has heads 0-11), or leave heads out for all of them``;
- ``heads names head 3 more than once: name each head once``.

Each error is a `FieldError` naming the parameter, or the list entry at fault (``heads.2``).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from .errors import FieldError, InputError, allowed_range, check_range, plural


def check_choice(
    option: str,
    value: Any,
    size: int,
    what: str,
    *,
    unit: str | None = None,
    kept: Sequence[int] | None = None,
    kept_by: str | None = None,
    field: str | None = None,
) -> int:
    """``value`` as an int if it is one of ``0..size-1`` (of ``what``: "this index", "the encoder stack");
    with ``kept`` (the numbers an option ``kept_by`` kept, e.g. include_layers) it must be one of those.

    ``unit`` is what the number counts ("head", "mask position"; default ``option``); ``field`` is what the
    error names as the field at fault (default ``option``). Raises `FieldError`.
    """
    unit, field = unit or option, field or option
    if kept is None:
        try:
            return check_range(unit, value, size, what)
        except InputError as error:
            raise FieldError(str(error), field) from None
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise FieldError(f"{unit} must be an integer, got {value!r}", field)
    if value not in kept:
        shown = ", ".join(map(str, kept))
        raise FieldError(
            f"{unit} {value} is not among the included {plural(unit)}: {kept_by} keeps {plural(unit)} "
            f"{shown}; pass one of them as {option}",
            field,
        )
    return int(value)


def check_choices(
    option: str,
    values: Sequence[int] | None,
    size: int,
    what: str,
    *,
    unit: str,
    kept: Sequence[int] | None = None,
    kept_by: str | None = None,
    allow_empty: bool = False,
    merge_repeats: bool = False,
) -> list[int]:
    """The numbers ``values`` names, each checked by `check_choice` (entry ``i``'s error names field
    ``option.i``); None means all of them (``kept``, else ``0..size-1``).

    A list must name at least one unless ``allow_empty``; a number named twice is refused, or with
    ``merge_repeats`` kept once (the result is then sorted). Otherwise the order given is kept.
    """
    if values is None:
        return list(kept) if kept is not None else list(range(size))
    if isinstance(values, (int, str, bytes)) or not hasattr(values, "__iter__"):
        raise FieldError(f"{option} must be a list of {unit} numbers, got {values!r}", option)
    values = list(values)
    if not values and not allow_empty:
        have = f"{plural(unit)} {', '.join(map(str, kept))}" if kept is not None else allowed_range(unit, size)
        raise FieldError(
            f"{option} is empty: name at least one {unit} ({what} has {have}), or leave {option} out for all of them",
            option,
        )
    chosen: list[int] = []
    for i, value in enumerate(values):
        number = check_choice(option, value, size, what, unit=unit, kept=kept, kept_by=kept_by, field=f"{option}.{i}")
        if number in chosen and not merge_repeats:
            raise FieldError(f"{option} names {unit} {number} more than once: name each {unit} once", f"{option}.{i}")
        chosen.append(number)
    return sorted(set(chosen)) if merge_repeats else chosen
