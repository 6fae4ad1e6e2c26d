"""Token sequences as the views show them: display strings, special-token flags, sentence B, words.

From captured `Tokens` (words from the tokenizer's word ids) or from BertViz-style token strings
(specials recognised by their form, words by subword markers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..capture.inputs import CONTINUATION, END_OF_WORD, SPACE_MARKERS, Tokens


@dataclass
class TokenSequence:
    """One token sequence a stack reads: display strings, special-token flags, sentence B start, words.

    ``words`` gives each token's word number (``None`` for special tokens) and ``word_labels`` each
    word's text, so a view can merge subword rows and columns into words.
    """

    tokens: list[str]
    special: list[bool]
    sentence_b_start: int | None = None
    words: list[int | None] = field(default_factory=list)
    word_labels: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "special": self.special, "sentence_b_start": self.sentence_b_start,
                "words": self.words, "word_labels": self.word_labels}


def sequence_from_tokens(tokens: Tokens) -> TokenSequence:
    """The view's sequence for captured `Tokens`: words from the tokenizer's word ids, labelled by their text."""
    words: list[int | None] = []
    spans: dict[int, list[int]] = {}
    numbering: dict[tuple[int, int], int] = {}
    for i, (word, special) in enumerate(zip(tokens.word_ids, tokens.special)):
        if special or word is None:
            words.append(None)
            continue
        number = numbering.setdefault((tokens.segments[i], word), len(numbering))
        words.append(number)
        spans.setdefault(number, []).append(i)
    labels = []
    for number in range(len(numbering)):
        members = spans[number]
        offsets = [tokens.offsets[i] for i in members]
        text = tokens.texts[tokens.segments[members[0]]] if tokens.texts else ""
        if text and all(offsets):
            labels.append(text[min(o[0] for o in offsets):max(o[1] for o in offsets)].strip() or tokens.display[members[0]])
        else:
            labels.append("".join(tokens.display[i] for i in members))
    return TokenSequence(list(tokens.display), list(tokens.special), tokens.sentence_b_start, words, labels)


def sequence_from_strings(raw: Sequence[str], sentence_b_start: int | None, tidy: bool) -> TokenSequence:
    """The view's sequence for BertViz-style token strings: specials by their form, words by subword markers.

    A token continues the previous word when it starts with ``##`` (WordPiece), or, in a sequence
    that marks word starts (``Ġ``, ``▁``), when it has no such marker; punctuation is a word of its own.
    """
    special = [looks_special(t) for t in raw]
    marks_starts = any(t.startswith(SPACE_MARKERS) for t in raw)
    words: list[int | None] = []
    labels: list[str] = []
    joinable = False  # whether the previous token can take a continuation
    for token, sp in zip(raw, special):
        if sp:
            words.append(None)
            joinable = False
            continue
        piece = prettify(token).removeprefix(CONTINUATION) or token
        punctuation = not any(c.isalnum() for c in piece)
        continues = token.startswith(CONTINUATION) or (marks_starts and not token.startswith(SPACE_MARKERS))
        if continues and joinable and not punctuation:
            labels[-1] += piece
        else:
            labels.append(piece)
        words.append(len(labels) - 1)
        joinable = not punctuation
    shown = [prettify(t) for t in raw] if tidy else list(raw)
    return TokenSequence(shown, special, sentence_b_start, words, labels)


_SPECIAL = re.compile(r"^(\[[A-Z_]+\]|<\|?[^<>|\s]+\|?>)$")  # [CLS], </s>, <pad>, <|endoftext|>


def looks_special(token: str) -> bool:
    """Whether a bare token string looks like a tokenizer's special token (``[CLS]``, ``</s>``, ``<|endoftext|>``).

    BertViz-style input carries no special-token flags, so hiding special tokens goes by their form.
    """
    return bool(_SPECIAL.match(token))


def prettify(token: str) -> str:
    """A subword token without tokenizer space markers (``Ġthe`` -> ``the``, ``▁the`` -> ``the``, ``##s`` kept)."""
    text = token.replace(END_OF_WORD, "")
    for marker in SPACE_MARKERS:
        text = text.replace(marker, " ")
    return text.strip() or token
