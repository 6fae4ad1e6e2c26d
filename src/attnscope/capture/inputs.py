"""Turning user text into model inputs: tokens with display forms, offsets, word ids, segments, masking."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ..errors import InputError, check_range

# Markers that tokenizers put on subwords: WordPiece continuation, byte-level BPE space, SentencePiece space.
CONTINUATION = "##"
SPACE_MARKERS = ("Ġ", "▁")
END_OF_WORD = "</w>"


@dataclass(frozen=True)
class Tokens:
    """One tokenised input, position by position (all lists have one entry per token).

    ``display`` is the readable form (``##ing`` -> ``ing``, ``Ġthe`` -> ``the``, ``▁the`` -> ``the``);
    ``raw`` is the vocabulary string. ``offsets`` are ``(start, end)`` character spans in the text of
    the token's segment (``None`` for special tokens). ``word_ids`` number the words across the whole
    input (segment B continues after A). ``segments`` are 0 for sentence A, 1 for sentence B.
    """

    ids: list[int]
    raw: list[str]
    display: list[str]
    offsets: list[tuple[int, int] | None]
    word_ids: list[int | None]
    special: list[bool]
    segments: list[int]
    texts: tuple[str, ...]
    masked: tuple[int, ...] = ()
    truncated: int = 0
    original: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def sentence_b_start(self) -> int | None:
        """Index of the first token of sentence B (BertViz's ``sentence_b_start``), or None."""
        return next((i for i, s in enumerate(self.segments) if s == 1), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokens": list(self.display),
            "raw": list(self.raw),
            "ids": list(self.ids),
            "offsets": [list(o) if o else None for o in self.offsets],
            "word_ids": list(self.word_ids),
            "special": list(self.special),
            "segments": list(self.segments),
            "sentence_b_start": self.sentence_b_start,
            "masked": list(self.masked),
            "truncated": self.truncated,
        }


def display_form(raw: str, tokenizer: Any, special: bool) -> str:
    """The readable form of one vocabulary token, without subword and space markers."""
    if special:
        return raw
    text = raw
    if text.startswith(CONTINUATION) and len(text) > len(CONTINUATION):
        text = text[len(CONTINUATION):]
    elif text.endswith(END_OF_WORD):
        text = text[: -len(END_OF_WORD)]
    elif any(m in text for m in SPACE_MARKERS):
        try:  # lets byte-level BPE turn its byte alphabet back into characters
            text = tokenizer.convert_tokens_to_string([raw])
        except Exception:  # noqa: BLE001 - a tokenizer that cannot decode one token keeps the raw form
            text = raw
        for marker in SPACE_MARKERS:
            text = text.replace(marker, " ")
    text = text.strip()
    return text if text else "␣"


def _check_text(text: Any, what: str) -> str:
    if not isinstance(text, str):
        raise InputError(f"{what} must be a string, got {type(text).__name__}")
    if not text.strip():
        raise InputError(f"{what} is empty: give at least one word")
    if "\x00" in text:
        raise InputError(f"{what} contains a NUL character (binary data?): give plain text")
    return text


def encode(
    handle: Any,
    text: str,
    text_pair: str | None = None,
    *,
    mask: Sequence[int] = (),
    truncate: bool = False,
    add_special_tokens: bool = True,
) -> Tokens:
    """Tokenise a text (or a text pair, segments A and B) for ``handle``'s model.

    ``mask`` lists token positions to replace with the tokenizer's mask token. Inputs longer than the
    model's maximum raise `InputError` unless ``truncate`` is set; then the tail is cut (the longer
    segment first for pairs) and ``Tokens.truncated`` counts the dropped tokens.
    """
    tokenizer = handle.tokenizer
    texts = (_check_text(text, "text"),) if text_pair is None else (
        _check_text(text, "text"),
        _check_text(text_pair, "second text (sentence B)"),
    )
    full = tokenizer(*texts, add_special_tokens=add_special_tokens, return_offsets_mapping=True, verbose=False)
    length = len(full["input_ids"])
    dropped = 0
    if length > handle.max_length:
        if not truncate:
            raise InputError(
                f"the input is {length} tokens long; model {handle.name!r} takes at most "
                f"{handle.max_length}. Shorten the text, or pass truncate=True (--truncate) to cut it."
            )
        full = tokenizer(
            *texts,
            add_special_tokens=add_special_tokens,
            return_offsets_mapping=True,
            truncation="longest_first",
            max_length=handle.max_length,
        )
        dropped = length - len(full["input_ids"])
    ids = list(full["input_ids"])
    raw = tokenizer.convert_ids_to_tokens(ids)
    special_ids = set(tokenizer.all_special_ids)
    sequence_ids = full.sequence_ids() if hasattr(full, "sequence_ids") else [0] * len(ids)
    special = [sid is None or tid in special_ids for sid, tid in zip(sequence_ids, ids)]
    segments = _segments(sequence_ids)
    word_ids = _global_word_ids(full.word_ids(), sequence_ids)
    offsets = [None if sp else (int(a), int(b)) for sp, (a, b) in zip(special, full["offset_mapping"])]
    display = [display_form(r, tokenizer, sp) for r, sp in zip(raw, special)]
    tokens = Tokens(ids, raw, display, offsets, word_ids, special, segments, texts, truncated=dropped)
    return apply_mask(tokens, mask, handle) if mask else tokens


def _segments(sequence_ids: list[int | None]) -> list[int]:
    """Segment of each position; special tokens belong to the segment before them (A at the start)."""
    segments, current = [], 0
    for sid in sequence_ids:
        if sid is not None:
            current = sid
        segments.append(current)
    return segments


def _global_word_ids(word_ids: list[int | None], sequence_ids: list[int | None]) -> list[int | None]:
    """Word ids that keep counting through sentence B instead of restarting at 0."""
    a_words = [w for w, s in zip(word_ids, sequence_ids) if s == 0 and w is not None]
    shift = (max(a_words) + 1) if a_words else 0
    return [None if w is None else (w + shift if s == 1 else w) for w, s in zip(word_ids, sequence_ids)]


def apply_mask(tokens: Tokens, positions: Sequence[int], handle: Any) -> Tokens:
    """Replace the tokens at ``positions`` with the mask token; positions must be ordinary tokens."""
    tokenizer = handle.tokenizer
    if tokenizer.mask_token is None or tokenizer.mask_token_id is None:
        raise InputError(
            f"model {handle.name!r} has no mask token, so positions cannot be masked "
            "(masking is for masked-language models such as BERT)"
        )
    ids, raw, display = list(tokens.ids), list(tokens.raw), list(tokens.display)
    original = dict(tokens.original)
    for position in sorted(set(positions)):
        check_range("mask position", position, len(ids), f"this input of {len(ids)} tokens")
        if tokens.special[position]:
            raise InputError(
                f"mask position {position} is the special token {tokens.raw[position]!r}: "
                "only ordinary tokens can be masked"
            )
        original[position] = display[position]
        ids[position] = tokenizer.mask_token_id
        raw[position] = display[position] = tokenizer.mask_token
    masked = tuple(sorted(set(tokens.masked) | set(positions)))
    return Tokens(
        ids, raw, display, tokens.offsets, tokens.word_ids, tokens.special, tokens.segments, tokens.texts,
        masked=masked, truncated=tokens.truncated, original=original,
    )


def decoder_tokens(handle: Any, target: str | None) -> Tokens:
    """Decoder input for an encoder-decoder: the start token, then the target text's tokens if given."""
    tokenizer, config = handle.tokenizer, handle.model.config
    start = config.decoder_start_token_id
    if start is None:
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.pad_token_id
    if target is None:
        ids, offsets, words = [start], [None], [None]
    else:
        body = tokenizer(text_target=_check_text(target, "target text"), return_offsets_mapping=True,
                         verbose=False)
        ids = [start] + list(body["input_ids"])
        offsets = [None] + [(int(a), int(b)) for a, b in body["offset_mapping"]]
        words = [None] + list(body.word_ids())
        if len(ids) > handle.max_length:
            raise InputError(
                f"the target is {len(ids)} tokens long; model {handle.name!r} takes at most {handle.max_length}"
            )
    special_ids = set(tokenizer.all_special_ids)
    special = [i == 0 or tid in special_ids for i, tid in enumerate(ids)]
    offsets = [None if sp else o for sp, o in zip(special, offsets)]
    raw = tokenizer.convert_ids_to_tokens(ids)
    display = [display_form(r, tokenizer, sp) for r, sp in zip(raw, special)]
    texts = () if target is None else (target,)
    return Tokens(ids, raw, display, offsets, words, special, [0] * len(ids), texts)
