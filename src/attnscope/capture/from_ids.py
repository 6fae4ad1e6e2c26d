"""`Tokens` from token ids taken as given (generated ids, ids from another tool), never re-tokenised.

A text decoded from ids does not always tokenise back to those ids (a generated continuation often
does not), so a capture of exact ids builds its tokens from the ids themselves:

- ``raw`` from the vocabulary (``convert_ids_to_tokens``), ``display`` by `token_text`'s rules,
  ``special`` from `inputs.special_token_ids`;
- ``texts``: each segment's ordinary tokens decoded by the tokenizer (no clean-up of spaces); when
  some token's text cannot be found there in order (a decoder that rewrites text, as WordPiece's
  clean-up turning ``do not`` into ``don't``), the text spelled from the tokens' own pieces instead;
- ``offsets`` into that text, derived from the pieces: a token spans the characters its bytes
  spell, with the whitespace it carries in front (as `encode` gives byte-level and SentencePiece
  tokens); the tokens of one split character all span that character, as `encode` gives them;
- ``word_ids``: when the text re-encodes to exactly the given ids, the tokenizer's own offsets and
  words, so the result equals `encode`'s; otherwise words from the tokenizer's pre-tokenizer run on
  the text (whitespace where it has none or it normalises the text to another length), through the
  same rules as `encode` (`inputs.words_of_tokens`, blank tokens in no word, sentence B counting on).
"""

from __future__ import annotations

import codecs
import numbers
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

from ..errors import InputError, count
from .inputs import Tokens, global_word_ids, special_token_ids, words_of_tokens, words_without_blanks
from .token_text import CONTINUATION, display_forms, scheme_of, token_bytes

Span = tuple[int, int]


def check_ids(handle: Any, ids: Any, what: str) -> list[int]:
    """``ids`` as a list of ints, each a token of ``handle``'s vocabulary; `InputError` naming the position.

    Accepts a list or tuple of ints, a 1-D tensor or array, or a batch of one (``(1, n)``, as a
    tokenizer's ``return_tensors="pt"`` gives).
    """
    if hasattr(ids, "tolist"):  # torch tensors and numpy arrays, without importing either
        ids = ids.tolist()
    if isinstance(ids, (str, bytes)) or not isinstance(ids, (list, tuple)):
        raise InputError(f"{what} must be a list of token ids (ints), got {type(ids).__name__}")
    if len(ids) == 1 and isinstance(ids[0], (list, tuple)):
        ids = ids[0]  # a batch of one
    if not ids:
        raise InputError(f"{what} is empty: give at least one token id")
    size = vocabulary_size(handle)
    for position, value in enumerate(ids):
        if isinstance(value, (list, tuple)):
            raise InputError(
                f"{what} holds a batch of {count(len(ids), 'sequence')}: pass one sequence's ids ({what}[0])"
            )
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise InputError(f"{what}[{position}] is {value!r}, not a token id: ids are ints 0-{size - 1}")
        if not 0 <= int(value) < size:
            raise InputError(
                f"{what}[{position}] is {int(value)}, outside the vocabulary of model {handle.name!r}: "
                f"token ids are 0-{size - 1}"
            )
    return [int(v) for v in ids]


def vocabulary_size(handle: Any) -> int:
    """How many ids have both a token string and an embedding: the smaller of the tokenizer's vocabulary
    and the model's input embedding table (models often pad their table beyond the tokenizer's)."""
    size = len(handle.tokenizer)
    embeddings = getattr(handle.model, "get_input_embeddings", lambda: None)()
    rows = getattr(embeddings, "num_embeddings", None)
    return min(size, int(rows)) if isinstance(rows, int) else size


def tokens_from_ids(handle: Any, ids: Any, pair_ids: Any = None, *, what: str = "input_ids") -> Tokens:
    """`Tokens` of ``ids`` exactly as given (sentence A), then ``pair_ids`` as sentence B (segment 1).

    Special tokens are not added: the ids are the model's whole input, ``[CLS]``/``<s>`` included when
    the caller wants them (as a tokenizer's ``input_ids`` or ``model.generate``'s ``sequences`` hold
    them). A mask token among the ids is a masked position (``Tokens.masked``), as one typed in a text
    is for `encode`. See the module docstring for texts, offsets and words. Raises `InputError` for ids that are
    not ints, outside the vocabulary, empty, or more than the model's positions (naming the position
    and the allowed range).
    """
    first = check_ids(handle, ids, what)
    second = check_ids(handle, pair_ids, f"{what}_pair") if pair_ids is not None else []
    total = len(first) + len(second)
    if total > handle.max_length:
        raise InputError(
            f"{what} holds {count(total, 'token')}; model {handle.name!r} takes at most {handle.max_length} "
            "positions: pass fewer ids"
        )
    tokenizer = handle.tokenizer
    all_ids = first + second
    raw = [str(r) for r in tokenizer.convert_ids_to_tokens(all_ids)]
    special_ids = special_token_ids(tokenizer)
    mask_id = getattr(tokenizer, "mask_token_id", None) if getattr(tokenizer, "mask_token", None) else None
    typed = tuple(p for p, i in enumerate(all_ids) if mask_id is not None and i == mask_id)
    special = [i in special_ids and p not in typed for p, i in enumerate(all_ids)]
    display = display_forms(raw, special, tokenizer)
    for position in typed:
        display[position] = str(tokenizer.mask_token)
    sequence_ids: list[int | None] = [None if sp else (0 if p < len(first) else 1) for p, sp in enumerate(special)]
    segments = [0] * len(first) + [1] * len(second)
    texts: list[str] = []
    offsets: list[Span | None] = [None] * len(all_ids)
    words: list[int | None] = [None] * len(all_ids)
    for start, stop in ((0, len(first)), (len(first), total))[: 1 + bool(second)]:
        positions = [p for p in range(start, stop) if not special[p]]
        text, spans, segment_words = _segment(tokenizer, [all_ids[p] for p in positions], [raw[p] for p in positions])
        texts.append(text)
        for p, span, word in zip(positions, spans, segment_words):
            offsets[p], words[p] = span, word
    local = words_without_blanks(
        words_of_tokens(words, offsets, segments, tuple(texts)), display, offsets, segments, tuple(texts)
    )
    words = global_word_ids(local, sequence_ids)
    return Tokens(all_ids, raw, display, offsets, words, special, segments, tuple(texts), masked=typed)


def _segment(tokenizer: Any, ids: list[int], raw: list[str]) -> tuple[str, list[Span | None], list[int | None]]:
    """One segment's text, its ordinary tokens' spans and word ids (see the module docstring)."""
    if not ids:
        return "", [], []
    decoded = tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    try:
        again = tokenizer(decoded, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    except NotImplementedError:  # a Python tokenizer gives no offsets: derive them from the pieces
        again = {"input_ids": []}
    if list(again["input_ids"]) == ids:
        exact: list[Span | None] = [(int(a), int(b)) for a, b in again["offset_mapping"]]
        return decoded, exact, list(again.word_ids())
    pieces = _pieces(tokenizer, raw)
    text = decoded
    spans = _align(decoded, pieces)
    if spans is None:
        text = _spelled(tokenizer, raw, pieces)
        spans = _align(text, pieces)
    if spans is None:  # not reached for the known families: each piece is in the text spelled from it
        return text, [None] * len(ids), [None] * len(ids)
    return text, list(spans), _pre_token_words(tokenizer, text, spans)


def _pieces(tokenizer: Any, raw: list[str]) -> list[tuple[str, int]]:
    """Each token's text and how many tokens its characters span: a character split over several tokens
    (byte-level BPE, byte fallback) is given whole to its group (the first token holds the group's text,
    and how many tokens share it; the others hold an empty text and 0). Bytes that form no character
    read as U+FFFD, one per maximal invalid run, as ``bytes.decode(errors="replace")`` reads them."""
    scheme = scheme_of(tokenizer)
    ends = list(accumulate(len(token_bytes(t, scheme)) for t in raw))
    data = b"".join(token_bytes(t, scheme) for t in raw)
    characters = _characters(data)
    starts = {start for start, _, _ in characters} | {len(data)}
    out: list[tuple[str, int]] = []
    group_start, next_char = 0, 0
    for i, end in enumerate(ends):
        if end not in starts:  # a character continues into the next token
            continue
        text = ""
        while next_char < len(characters) and characters[next_char][0] < end:
            text += characters[next_char][2]
            next_char += 1
        out.append((text, i - group_start + 1))
        out.extend(("", 0) for _ in range(i - group_start))
        group_start = i + 1
    return out


def _characters(data: bytes) -> list[tuple[int, int, str]]:
    """``data`` as UTF-8 characters with their byte ranges: ``(start, end, character)``, an invalid run
    of bytes as one U+FFFD over the run (Unicode's maximal subparts, as Python's decoder replaces them)."""
    out = []
    position = 0
    while position < len(data):
        size = _character_size(data, position)
        out.append((position, position + size, data[position : position + size].decode("utf-8", "replace")))
        position += size
    return out


def _character_size(data: bytes, position: int) -> int:
    """How many bytes from ``position`` make one character, or one maximal invalid subpart (at least 1)."""
    longest = min(4, len(data) - position)
    for size in range(1, longest + 1):
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        try:
            if decoder.decode(data[position : position + size]):
                return size
        except UnicodeDecodeError:
            return max(size - 1, 1)
    return longest


def _align(text: str, pieces: list[tuple[str, int]]) -> list[Span] | None:
    """Spans of the pieces found in ``text`` in order, only whitespace between them; None if one is missing.

    A piece's span covers its characters and the whitespace it carries in front, as far as the text
    has it; every token of a group (see `_pieces`) gets the group's span; a whitespace-only piece
    covers that whitespace where the text has it (an empty span where it does not).
    """
    spans: list[Span] = []
    cursor = 0
    for piece, size in pieces:
        if size == 0:
            continue
        core = piece.strip()
        if not core:
            end = cursor + len(piece) if text.startswith(piece, cursor) else cursor
            spans.extend([(cursor, end)] * size)
            cursor = end
            continue
        found = text.find(core, cursor)
        if found < 0 or text[cursor:found].strip():
            return None
        lead = len(piece) - len(piece.lstrip())
        start = max(cursor, found - lead)
        spans.extend([(start, found + len(core))] * size)
        cursor = found + len(core)
    return spans


def _spelled(tokenizer: Any, raw: list[str], pieces: list[tuple[str, int]]) -> str:
    """The text the pieces spell, joined as the tokenizer family joins them: WordPiece puts a space
    before each token that does not continue a word (``##``); the others join their bytes as they are."""
    scheme = scheme_of(tokenizer)
    joined = ""
    for i, ((piece, _), token) in enumerate(zip(pieces, raw)):
        word_piece = scheme.continuation == CONTINUATION and not scheme.space_marker and not scheme.byte_level
        if word_piece and i > 0 and not token.startswith(CONTINUATION):
            joined += " "
        joined += piece
    return joined


def _pre_token_words(tokenizer: Any, text: str, spans: Sequence[Span]) -> list[int | None]:
    """Each token's word: the number of the tokenizer's pre-token its characters start in (the word ids
    `encode` gets from the tokenizer); 0 for all when the tokenizer has no pre-tokenizer, or normalises
    the text to another length, so that `inputs.words_of_tokens` splits words at whitespace instead."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    pre = getattr(backend, "pre_tokenizer", None)
    normalizer = getattr(backend, "normalizer", None)
    normalised = normalizer.normalize_str(text) if normalizer is not None else text
    if pre is None or len(normalised) != len(text):
        return [0] * len(spans)
    bounds = [b for _, b in pre.pre_tokenize_str(normalised)]
    words: list[int | None] = []
    for start, end in spans:
        inner = start + (len(text[start:end]) - len(text[start:end].lstrip())) if end > start else start
        number = next((n for n, (a, b) in enumerate(bounds) if a <= inner < b), None)
        if number is None:  # a span past every pre-token (whitespace only): the last one ending at or before
            number = max((n for n, (a, b) in enumerate(bounds) if b <= inner), default=0)
        words.append(number)
    return words
