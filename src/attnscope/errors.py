"""The exceptions attnscope raises for bad input: each says what was wrong, where, and what is allowed."""

from __future__ import annotations

import numbers


class AttnscopeError(ValueError):
    """Base class: a user-facing error whose message is meant to be shown as is (no traceback)."""


class ModelNotFoundError(AttnscopeError):
    """A model name or path that neither exists locally nor could be fetched."""


class InputError(AttnscopeError):
    """Text, positions or options that the model cannot take (empty, too long, out of range...)."""


class FieldError(InputError):
    """An `InputError` about one parameter, or one entry of a list parameter: ``field`` names it as the
    Python API spells it, dotted down to the entry at fault (``heads.1``, ``filters.upos``, ``layer``). The
    server reports it as the request field at fault, since the requests use the same names."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


class CorpusError(InputError):
    """A corpus that cannot be opened: missing files, a failed download, an unusable spaCy pipeline."""


class CorpusFormatError(CorpusError):
    """A corpus file that is not what its format says: the message names the file and line (``file:line: ...``)."""


class WriteError(AttnscopeError):
    """A file or directory attnscope was asked to write could not be written: the message names the path
    and why (a directory in the way, no permission, a missing directory, a full disk...)."""


class NoLanguageModelHeadError(AttnscopeError):
    """Predictions were asked of a model loaded without a language-model head."""


class UnavailableFieldError(AttnscopeError):
    """A captured field was asked for that this capture does not hold (not requested, or not capturable)."""


class AttnscopeWarning(UserWarning):
    """Base class of attnscope's warnings: a result that is valid but easy to misread."""


class MaskingWarning(AttnscopeWarning):
    """Positions were masked with a model whose mask token was never trained to stand for a word
    (see `attnscope.masking_caveat`)."""


def check_range(name: str, value: object, size: int, what: str, *, unit: str | None = None) -> int:
    """Return ``value`` if ``0 <= value < size``; otherwise raise an error naming the allowed range.

    ``what`` names what has the range, in the singular ("this model", "the encoder stack", "this input
    of 17 tokens"); ``unit`` is what the values count when ``name`` is a parameter rather than a noun
    (``check_range("sentence_b_start", 17, 17, "the encoder sequence of 17 tokens", unit="token position")``).

    >>> check_range("layer", 3, 6, "this model")
    3
    """
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise InputError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if not 0 <= value < size:
        raise InputError(f"{name} {value} is out of range: {what} has {allowed_range(unit or name, size)}")
    return value


def allowed_range(unit: str, size: int) -> str:
    """The values ``0..size-1`` of ``unit`` in words: "layers 0-11", "only head 0", "no positions"."""
    if size <= 0:
        return f"no {plural(unit)}"
    if size == 1:
        return f"only {unit} 0"
    return f"{plural(unit)} 0-{size - 1}"


def count(number: int, noun: str) -> str:
    """``number`` and ``noun`` in agreement: "1 token", "6 tokens", "0 tokens", "1 batch index", "2 batch indices",
    "60,280 tokens" (thousands separated).

    >>> count(1, "query token"), count(6, "query token")
    ('1 query token', '6 query tokens')
    """
    return f"{number:,} {noun if number == 1 else plural(noun)}"


def plural(noun: str) -> str:
    """The English plural of a noun phrase's last word ("mask position" -> "mask positions",
    "batch index" -> "batch indices"); a parameter name (``sentence_b_start``) becomes "values of ..."."""
    if "_" in noun:
        return f"values of {noun}"
    head, _, last = noun.rpartition(" ")
    if last.endswith(("ex", "ix")):
        last = last[:-2] + "ices"
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        last += "es"
    elif last.endswith("y") and last[-2:-1] not in tuple("aeiou"):
        last = last[:-1] + "ies"
    else:
        last += "s"
    return f"{head} {last}" if head else last
