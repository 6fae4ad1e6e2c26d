"""Token sequences as the views show them: display strings, special-token flags, sentence B, words.

From captured `Tokens` (words from the tokenizer's word ids) or from BertViz-style token strings
(specials recognised by their form, words by subword markers).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..capture.inputs import Tokens
from ..capture.token_text import CONTINUATION, SPACE_MARKERS, guess_scheme, is_byte_token, readable, token_bytes
from ..capture.written import words_texts
from ..errors import InputError

SENTENCE_FILTERS = ("all", "AA", "AB", "BA", "BB")
"""The sentence filters of a pair, as every view names them: the first letter is the sentence of the
queries shown, the second that of the keys ("AB": sentence A's queries, sentence B's keys)."""


def check_filter_name(value: Any) -> str:
    """``value`` if it is one of `SENTENCE_FILTERS`; otherwise `InputError` naming them."""
    if not isinstance(value, str) or value not in SENTENCE_FILTERS:
        names = ", ".join(repr(f) for f in SENTENCE_FILTERS)
        raise InputError(
            f"filter {value!r} is not a sentence filter: it is one of {names} (the first letter "
            f"is the queries' sentence, the second the keys')"
        )
    return value


@dataclass
class TokenSequence:
    """One token sequence a stack reads: display strings, special-token flags, sentence B start, words.

    ``words`` gives each token's word number (``None`` for special tokens) and ``word_labels`` each
    word's text, so a view can merge subword rows and columns into words. ``continues`` marks the
    tokens that continue the previous token's word and whose label does not already say so (WordPiece's
    ``##`` kept in BertViz-style strings): the views mark them ``##`` before the label, as the app does.
    ``masked`` lists the token positions replaced by the mask token (by position, or typed in the text:
    `Tokens.masked`); empty for BertViz-style strings, which do not say. ``generated`` lists the positions
    a model generated (`Tokens.generated`) and ``steps`` each one's generation step (`GenerationStep.to_dict`:
    the chosen token and the step's top-k next tokens with probabilities); both empty otherwise.
    """

    tokens: list[str]
    special: list[bool]
    sentence_b_start: int | None = None
    words: list[int | None] = field(default_factory=list)
    word_labels: list[str] = field(default_factory=list)
    continues: list[bool] = field(default_factory=list)
    masked: list[int] = field(default_factory=list)
    generated: list[int] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokens": self.tokens,
            "special": self.special,
            "sentence_b_start": self.sentence_b_start,
            "words": self.words,
            "word_labels": self.word_labels,
            "continues": self.continues,
            "masked": self.masked,
            "generated": self.generated,
            "steps": self.steps,
        }


def continuations(words: Sequence[int | None], special: Sequence[bool]) -> list[bool]:
    """Which tokens continue the previous token's word: ordinary tokens with the word number of the token
    before them ("all ##er ##gies"); a word's first piece and special tokens never do."""
    return [not special[i] and i > 0 and words[i] is not None and words[i] == words[i - 1] for i in range(len(words))]


def sequence_from_tokens(tokens: Tokens) -> TokenSequence:
    """The view's sequence for captured `Tokens`: words from the tokenizer's word ids, labelled by their
    text as written (`capture.written.words_texts`, the rule the app and the search use too)."""
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
    labels = words_texts(tokens, [spans[number] for number in range(len(numbering))])
    return TokenSequence(
        list(tokens.display),
        list(tokens.special),
        tokens.sentence_b_start,
        words,
        labels,
        continuations(words, tokens.special),
        list(tokens.masked),
        list(tokens.generated),
    )


def sequence_from_strings(raw: Sequence[str], sentence_b_start: int | None, tidy: bool) -> TokenSequence:
    """The view's sequence for BertViz-style token strings: specials by their form, words by subword markers.

    With ``tidy`` each token shows the text it stands for, as captured tokens do (`token_text`): the
    tokenizer family is guessed from the strings (`guess_scheme`), so byte-level BPE's ``ĠcafÃ©`` reads
    ``café``, SentencePiece's ``▁the`` reads ``the`` and a byte token ``<0xE6>`` reads ``\\xe6``;
    WordPiece's ``##`` stays, as BertViz shows it. A token continues the previous word when it starts
    with ``##`` (WordPiece), or, in a sequence that marks word starts (``Ġ``, ``▁``), when it has no such
    marker; punctuation is a word of its own. Word labels are the words' text, bytes joined first.
    With ``tidy``, the pieces of a word after its first are marked (``continues``) unless they read ``##``.
    """
    special = [looks_special(t) for t in raw]
    scheme = guess_scheme([t for t, sp in zip(raw, special) if not sp])
    marks_starts = any(t.startswith(SPACE_MARKERS) for t in raw)
    words: list[int | None] = []
    pieces: list[bytes] = []
    joinable = False  # whether the previous token can take a continuation
    for token, sp in zip(raw, special):
        if sp:
            words.append(None)
            joinable = False
            continue
        data = token_bytes(token.removeprefix(CONTINUATION) or token, scheme)
        punctuation = _is_punctuation(data)
        joins = token.startswith(CONTINUATION) or (marks_starts and not token.startswith(SPACE_MARKERS))
        if joins and joinable and not punctuation:
            pieces[-1] += data
        else:
            pieces.append(data)
        words.append(len(pieces) - 1)
        joinable = not punctuation
    labels = [readable(piece) for piece in pieces]
    shown = [t if sp else readable(token_bytes(t, scheme)) for t, sp in zip(raw, special)] if tidy else list(raw)
    # untidied strings show their own markers; tidied WordPiece keeps "##", which marks the piece already
    continues = [c and tidy and not t.startswith(CONTINUATION) for c, t in zip(continuations(words, special), shown)]
    return TokenSequence(shown, special, sentence_b_start, words, labels, continues)


def _is_punctuation(data: bytes) -> bool:
    """Whether a token's bytes are whole characters none of which is a letter or digit (a space counts);
    a token holding part of a character is not punctuation: it belongs to the word around it."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(c.isalnum() for c in text)


_SPECIAL = re.compile(r"^(\[[A-Z_]+\]|<\|?[^<>|\s]+\|?>)$")  # [CLS], </s>, <pad>, <|endoftext|>
_UNKNOWN = re.compile(r"^(\[UNK\]|<\|?unk\|?>)$", re.IGNORECASE)


def looks_special(token: str) -> bool:
    """Whether a bare token string looks like a tokenizer's special token (``[CLS]``, ``</s>``, ``<|endoftext|>``).

    BertViz-style input carries no special-token flags, so hiding special tokens goes by their form.
    The unknown token (``[UNK]``, ``<unk>``) and byte tokens (``<0xE6>``) stand for characters of the
    text, so they are ordinary tokens, as in captures.
    """
    return bool(_SPECIAL.match(token)) and not _UNKNOWN.match(token) and not is_byte_token(token)


def prettify(token: str) -> str:
    """A bare token string as the text it stands for, read on its own (``Ġthe`` -> ``the``, ``▁the`` -> ``the``,
    ``##s`` kept); `sequence_from_strings` reads a whole sequence, which tells byte-level BPE apart better."""
    return token if looks_special(token) else readable(token_bytes(token, guess_scheme([token])))
