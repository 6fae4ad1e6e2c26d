"""Aligning two tokenisations of one text, so attention of two models can be compared position by position.

With one tokenizer the units are the tokens themselves. With two, they are words: each model's words (the
tokens of one word id, special tokens excluded) become character spans of the text, and spans that overlap,
on either side, are joined into one unit until the two sides cut the text the same way ("don't" is one word
for a byte-level BPE and "don", "'", "t" for WordPiece: one unit). A unit is aligned when both models have a
word in it; special tokens (``[CLS]``, ``<s>``...), and words that the other side has no text for, are
unaligned and listed. Attention over units is merged as `aggregate.merge_units` merges words (rows: the mean
over a unit's tokens; columns: the sum), as Clark et al. (2019) did.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..capture.inputs import Tokens
from ..capture.written import words_texts
from ..errors import InputError
from .aggregate import words_of

LEVELS = ("auto", "token", "word")
"""How two captures are aligned: "token" (one tokenizer: the same ids), "word" (character spans of words),
or "auto" (tokens when the ids are equal, else words)."""


@dataclass
class Alignment:
    """Units shared by two tokenisations of one text.

    ``level`` is "token" or "word"; ``units_a[u]`` / ``units_b[u]`` are the token positions of unit ``u`` in A
    and in B (sorted); ``labels[u]`` what the unit reads (A's text over its tokens). ``unaligned_a`` /
    ``unaligned_b`` are the positions in no unit (special tokens, or text the other side has no word for);
    ``tokens_a`` / ``tokens_b`` each side's tokens as displayed, so a view can say which those are.
    """

    level: str
    units_a: list[list[int]]
    units_b: list[list[int]]
    labels: list[str]
    unaligned_a: list[int]
    unaligned_b: list[int]
    tokens_a: list[str] = field(default_factory=list)
    tokens_b: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.units_a)

    def members(self, side: str, tokens: int) -> np.ndarray:
        """``(units, tokens)`` 0/1 float64: which tokens of ``side`` ("a" or "b") each unit holds."""
        units = self.units_a if side == "a" else self.units_b
        out = np.zeros((len(units), tokens), dtype=np.float64)
        for u, positions in enumerate(units):
            out[u, positions] = 1.0
        return out


def align(a: Tokens, b: Tokens, level: str = "auto") -> Alignment:
    """Align ``a`` and ``b``, two tokenisations of the same text (or pair of texts).

    Raises `InputError` when the texts differ (quoting where), when ``level`` is not one of `LEVELS`, when
    "token" is asked of two different tokenisations, or when no word of one side overlaps a word of the other.
    """
    if level not in LEVELS:
        raise InputError(f"level must be one of {', '.join(map(repr, LEVELS))}, got {level!r}")
    _check_same_text(a, b)
    same = list(a.ids) == list(b.ids) and list(a.offsets) == list(b.offsets)
    if level == "token" and not same:
        raise InputError(
            f"level='token' needs one tokenisation on both sides, but A has {len(a)} tokens and B {len(b)}"
            f"{'' if len(a) != len(b) else ' with other ids'}: compare at level='word' (or 'auto')"
        )
    if level == "token" or (level == "auto" and same):
        units = [[i] for i in range(len(a))]
        shared = Alignment("token", units, [list(u) for u in units], list(a.display), [], [])
    else:
        shared = _word_alignment(a, b)
    shared.tokens_a, shared.tokens_b = list(a.display), list(b.display)
    return shared


def _check_same_text(a: Tokens, b: Tokens) -> None:
    if len(a.texts) != len(b.texts):
        raise InputError(f"the two inputs differ: A has {len(a.texts)} text(s) and B {len(b.texts)}")
    for n, (x, y) in enumerate(zip(a.texts, b.texts)):
        if x != y:
            at = next((i for i, (c, d) in enumerate(zip(x, y)) if c != d), min(len(x), len(y)))
            raise InputError(
                f"the two inputs differ: text {n + 1} reads {x[max(at - 10, 0) : at + 10]!r} in A and "
                f"{y[max(at - 10, 0) : at + 10]!r} in B at character {at}: compare one text through both models"
            )


def word_spans(tokens: Tokens) -> dict[int, tuple[int, int, int]]:
    """Each word's ``(segment, start, end)`` character span (whitespace trimmed), by word number."""
    spans: dict[int, tuple[int, int, int]] = {}
    for position, word in enumerate(words_of(tokens)):
        offset = tokens.offsets[position]
        if word is None or offset is None or offset[0] >= offset[1]:
            continue
        segment = tokens.segments[position]
        text = tokens.texts[segment] if segment < len(tokens.texts) else ""
        start, end = offset
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start == end:
            continue
        if word in spans:
            _, s, e = spans[word]
            start, end = min(s, start), max(e, end)
        spans[word] = (segment, start, end)
    return spans


def _word_alignment(a: Tokens, b: Tokens) -> Alignment:
    spans_a, spans_b = word_spans(a), word_spans(b)
    events = sorted([(*span, "a", w) for w, span in spans_a.items()] + [(*span, "b", w) for w, span in spans_b.items()])
    groups: list[tuple[list[int], list[int]]] = []  # words of A and of B per group of overlapping spans
    reach = (-1, -1)  # (segment, end) of the current group
    for segment, start, end, side, word in events:
        if not groups or (segment, start) >= reach:
            groups.append(([], []))
            reach = (segment, end)
        reach = max(reach, (segment, end))
        groups[-1][0 if side == "a" else 1].append(word)
    word_of_a, word_of_b = words_of(a), words_of(b)
    units_a, units_b = [], []
    for words_a, words_b in groups:
        if words_a and words_b:
            units_a.append([p for p, w in enumerate(word_of_a) if w in set(words_a)])
            units_b.append([p for p, w in enumerate(word_of_b) if w in set(words_b)])
    if not units_a:
        raise InputError("no word of A overlaps a word of B in the text: nothing can be compared")
    held_a = {p for unit in units_a for p in unit}
    held_b = {p for unit in units_b for p in unit}
    return Alignment(
        "word",
        units_a,
        units_b,
        words_texts(a, units_a),
        [p for p in range(len(a)) if p not in held_a],
        [p for p in range(len(b)) if p not in held_b],
    )


def merged(attention: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(..., tokens, tokens)`` attention merged into ``(..., units, units)`` and renormalised.

    A row per unit (the mean of its tokens' rows), a column per unit (the sum over its tokens), then each row
    divided by what it kept, so it sums to 1 over the aligned units; a row that kept nothing stays zero.
    ``members`` from `Alignment.members`. Returns the merged weights (float64) and the kept mass,
    ``(..., units)``: 1 at the token level, less where attention went to unaligned tokens (often most of it,
    for heads that park attention on ``[CLS]`` or ``<s>``).
    """
    weights = np.asarray(attention, dtype=np.float64)
    rows = members / np.maximum(members.sum(axis=1, keepdims=True), 1.0)
    out = np.einsum("ut,...tv->...uv", rows, weights @ members.T)
    kept = out.sum(axis=-1)
    return np.divide(out, kept[..., None], out=np.zeros_like(out), where=kept[..., None] > 0), kept
