"""Matching a tokenizer's subword tokens to a sentence's words, so that every subword inherits its word's annotations.

Works from character spans only (`Word.start`/`end` and `Tokens.offsets`), so it serves any
tokenizer and any corpus, multi-word tokens included.
"""

from __future__ import annotations

import bisect
from itertools import accumulate
from typing import TYPE_CHECKING

from ..capture.token_text import is_blank
from ..errors import InputError
from .sentence import AnnotatedSentence

if TYPE_CHECKING:
    from ..capture.inputs import Tokens


def word_of_tokens(sentence: AnnotatedSentence, tokens: Tokens) -> list[int | None]:
    """For each token of ``tokens`` (from ``encode(handle, sentence.text)``), the index of its word in
    ``sentence.words``.

    A token belongs to the word whose span overlaps its span the most (a tie goes to the earlier
    word; a zero-width token to the word that contains its position). Special tokens, tokens that
    stand for whitespace only (`is_blank`: part of no word, whatever span the tokenizer gave them) and
    tokens that overlap no word get ``None``. Runs in O((tokens + words) log words) for words in text order.
    """
    if tokens.texts and tokens.texts[0] != sentence.text:
        raise InputError(
            f"the tokens were made from another text ({tokens.texts[0][:40]!r}) than sentence "
            f"{sentence.sent_id!r}; expected encode(handle, sentence.text)"
        )
    words = sentence.words
    order = sorted(range(len(words)), key=lambda i: (words[i].start, i))
    starts = [words[i].start for i in order]
    # The running maximum of word ends, in start order: every word before bisect_right(reach, a) ends at or before a.
    reach = list(accumulate((words[i].end for i in order), max))
    result: list[int | None] = []
    for span, display in zip(tokens.offsets, tokens.display):
        if span is None or is_blank(display, sentence.text[span[0] : span[1]]):
            result.append(None)
            continue
        a, b = span
        first, last = candidate_words(starts, reach, a, b)
        best, best_overlap = None, 0
        for i in order[first:last]:
            word = words[i]
            overlap = min(b, word.end) - max(a, word.start)
            if b == a and word.start <= a < word.end:
                overlap = 1  # a zero-width token inside this word
            if overlap > best_overlap or (overlap == best_overlap > 0 and best is not None and i < best):
                best, best_overlap = i, overlap
        result.append(best)
    return result


def candidate_words(starts: list[int], reach: list[int], a: int, b: int) -> tuple[int, int]:
    """The words (positions ``first..last`` in start order) that a token spanning ``a..b`` may overlap.

    ``starts``: the words' starts, ascending; ``reach``: the running maximum of their ends in that
    order. Two binary searches: the words before ``first`` end at or before ``a``, those from
    ``last`` on start at or after ``b`` (for a zero-width token, after ``a``).
    """
    first = bisect.bisect_right(reach, a)
    last = bisect.bisect_left(starts, b) if b > a else bisect.bisect_right(starts, a)
    return first, last
