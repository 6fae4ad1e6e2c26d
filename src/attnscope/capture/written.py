"""Tokens read as the text they cover: each token's piece of the text as written, and what a word reads.

Tokenizers' character offsets do not tile the text. Byte-level BPE gives a token its leading space
(``" le"`` for ``le``) and every byte token of one character the character's whole span (😀 as four
tokens, each spanning 😀); SentencePiece's lone ``▁`` gets the span of the next character. Read
naively, contexts repeat characters ("Züürich", "😀😀😀😀") and lose spaces ("andlef t"). One rule,
used by the corpus contexts, the search, the views and the app, reads them as the text is written:

- a token's *piece* is the text its span covers, less what earlier tokens already showed and less
  surrounding whitespace: a character split over several tokens is shown by the first, the others
  have empty pieces; whitespace at either end of a span is the space before a piece (``space_before``);
- a *blank* token (one that stands for whitespace only: `token_text.is_blank`) has an empty piece and
  is part of no word;
- joining the pieces, with a space wherever ``space_before`` says, gives the text back (whitespace
  runs read as one space);
- a word (or any run of tokens) reads as its pieces joined that way (`words_text`): the text as
  written, stripped, blank tokens left out; a masked token reads as the mask token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .token_text import is_blank

if TYPE_CHECKING:
    from .inputs import Tokens


@dataclass(frozen=True)
class Piece:
    """One token's piece of the text: ``text`` as written (empty for a blank token or a later piece of a
    split character), ``space_before`` (whitespace separates it from the previous piece that shows
    text), and the characters it covers, ``start``..``end`` (start == end when it covers none; -1, -1
    for a token without a span, whose ``text`` is then the model's token)."""

    text: str
    space_before: bool
    start: int
    end: int


def written_pieces(
    text: str,
    spans: Sequence[tuple[int, int] | None],
    shown: Sequence[str],
    blank: Sequence[bool],
    replaced: Sequence[bool] = (),
) -> list[Piece]:
    """The pieces of a run of tokens over ``text`` (see the module docstring).

    ``spans`` are the tokens' character spans in ``text`` (None, or a span outside the text: no span);
    ``shown`` what a token without a span shows (its display form); ``blank`` flags blank tokens;
    ``replaced`` flags tokens shown as ``shown`` over their span (masked tokens: the mask token).
    """
    pieces: list[Piece] = []
    consumed = 0  # the text before this has been shown by earlier pieces
    last: int | None = None  # end of the last piece that showed text; None before any
    after_unspanned = False
    for i, span in enumerate(spans):
        swapped = i < len(replaced) and replaced[i]
        if span is None or not 0 <= span[0] <= span[1] <= len(text):
            pieces.append(Piece(shown[i], bool(pieces), -1, -1))
            last, after_unspanned = None, True
            continue
        start = max(span[0], consumed)
        end = max(span[1], start)
        if blank[i] and not swapped:
            pieces.append(Piece("", False, start, start))
            continue
        covered = text[start:end]
        core = covered.lstrip()
        start += len(covered) - len(core)
        core = core.rstrip()
        end = start + len(core)
        if not core and not swapped:  # a later piece of a character an earlier token showed
            pieces.append(Piece("", False, start, start))
            continue
        space = after_unspanned or (last is not None and text[last:start] != "")
        pieces.append(Piece(shown[i] if swapped else core, space, start, end))
        consumed, last, after_unspanned = max(consumed, end), end, False
    return pieces


def blank_tokens(tokens: Tokens) -> list[bool]:
    """Which of ``tokens`` are blank (stand for whitespace only); special tokens never are."""
    flags = []
    for p, (display, span, special) in enumerate(zip(tokens.display, tokens.offsets, tokens.special)):
        text = tokens.texts[tokens.segments[p]] if tokens.segments[p] < len(tokens.texts) else ""
        covered = text[span[0] : span[1]] if span is not None else None
        flags.append(not special and p not in tokens.masked and is_blank(display, covered))
    return flags


def token_pieces(tokens: Tokens, positions: Sequence[int], blank: Sequence[bool] | None = None) -> list[Piece]:
    """The pieces of ``positions`` (ascending, one segment's) of ``tokens``, read as one run: the first
    position starts afresh, so a run that starts inside a split character shows that character.
    ``blank``: `blank_tokens` of ``tokens``, when the caller has it."""
    segment = tokens.segments[positions[0]] if positions else 0
    text = tokens.texts[segment] if segment < len(tokens.texts) else ""
    blank = blank_tokens(tokens) if blank is None else blank
    return written_pieces(
        text,
        [None if tokens.special[p] else tokens.offsets[p] for p in positions],
        [tokens.display[p] for p in positions],
        [blank[p] for p in positions],
        [p in tokens.masked for p in positions],
    )


def joined(pieces: Sequence[Piece]) -> str:
    """Pieces as one string: a space wherever a piece has ``space_before`` (never at the start)."""
    out: list[str] = []
    for piece in pieces:
        if piece.text:
            out.append((" " if piece.space_before and out else "") + piece.text)
    return "".join(out)


def words_text(tokens: Tokens, positions: Sequence[int]) -> str:
    """What a word (or any run of positions) reads, the one rule every view uses: the text as written
    over its tokens, stripped, blank tokens left out, a masked token as the mask token (a masked word
    reads as its mask tokens). Special tokens, and tokens without a span, read as the model's token;
    positions that show no text at all (a lone blank token) read as their display forms."""
    return words_texts(tokens, [positions])[0]


def words_texts(tokens: Tokens, units: Sequence[Sequence[int]]) -> list[str]:
    """`words_text` of each unit (a list of positions) of ``tokens``, in one pass over the tokens."""
    blank = blank_tokens(tokens)
    out = []
    for unit in units:
        positions = sorted(unit)
        runs: list[list[int]] = []
        for p in positions:
            if runs and tokens.segments[p] == tokens.segments[runs[-1][-1]]:
                runs[-1].append(p)
            else:
                runs.append([p])
        text = " ".join(filter(None, (joined(token_pieces(tokens, run, blank)) for run in runs)))
        out.append(text or "".join(tokens.display[p] for p in positions))
    return out
