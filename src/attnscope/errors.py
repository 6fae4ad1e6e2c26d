"""The exceptions attnscope raises for bad input: each says what was wrong, where, and what is allowed."""

from __future__ import annotations

import numbers


class AttnscopeError(ValueError):
    """Base class: a user-facing error whose message is meant to be shown as is (no traceback)."""


class ModelNotFoundError(AttnscopeError):
    """A model name or path that neither exists locally nor could be fetched."""


class InputError(AttnscopeError):
    """Text, positions or options that the model cannot take (empty, too long, out of range...)."""


class CorpusError(InputError):
    """A corpus that cannot be opened: missing files, a failed download, an unusable spaCy pipeline."""


class CorpusFormatError(CorpusError):
    """A corpus file that is not what its format says: the message names the file and line (``file:line: ...``)."""


class NoLanguageModelHeadError(AttnscopeError):
    """Predictions were asked of a model loaded without a language-model head."""


class UnavailableFieldError(AttnscopeError):
    """A captured field was asked for that this capture does not hold (not requested, or not capturable)."""


class AttnscopeWarning(UserWarning):
    """Base class of attnscope's warnings: a result that is valid but easy to misread."""


class MaskingWarning(AttnscopeWarning):
    """Positions were masked with a model whose mask token was never trained to stand for a word
    (see `attnscope.masking_caveat`)."""


def check_range(name: str, value: int, size: int, what: str) -> int:
    """Return ``value`` if ``0 <= value < size``; otherwise raise an error naming the allowed range.

    >>> check_range("layer", 3, 6, "this model")
    3
    """
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise InputError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if not 0 <= value < size:
        allowed = f"{name}s 0-{size - 1}" if size > 0 else f"no {name}s"
        raise InputError(f"{name} {value} is out of range: {what} has {allowed}")
    return value
