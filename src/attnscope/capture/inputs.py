"""Turning user text into model inputs: tokens with display forms, offsets, word ids, segments, masking."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import FieldError, InputError, count
from ..selection import check_choice
from .token_text import CONTINUATION, END_OF_WORD, SPACE_MARKERS, display_form, display_forms, is_blank

__all__ = [
    "CONTINUATION",
    "END_OF_WORD",
    "SPACE_MARKERS",
    "Tokens",
    "apply_mask",
    "decoder_tokens",
    "display_form",
    "encode",
    "masking_caveat",
    "special_token_ids",
    "typed_masks",
]


@dataclass(frozen=True)
class Tokens:
    """One tokenised input, position by position (all lists have one entry per token).

    ``display`` is the text each token stands for (``##ing`` -> ``ing``, ``Ġthe`` -> ``the``,
    ``▁the`` -> ``the``, byte-level ``Ã©`` -> ``é``; a token holding part of a character shows those
    bytes as ``\\xe6``: see `token_text`); ``raw`` is the vocabulary string. ``offsets`` are
    ``(start, end)`` character spans in the text of the token's segment (``None`` for special tokens;
    the unknown token is an ordinary token with offsets), as the tokenizer gives them: a byte-level
    token's span may include its leading space, and the byte tokens of one character all span it
    (`written` reads them as the text is written). ``word_ids`` number the words across the whole
    input (segment B continues after A); a token that stands for whitespace only (``␣``) belongs to no
    word (None). ``segments`` are 0 for sentence A, 1 for sentence B. ``generated`` lists the positions
    a model generated (`attnscope.generate`); empty for a text or ids given.
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
    generated: tuple[int, ...] = ()

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
            "generated": list(self.generated),
        }


def special_token_ids(tokenizer: Any) -> set[int]:
    """Ids of the tokenizer's special tokens ([CLS], </s>, <pad>...), without the unknown token.

    The unknown token stands for real characters of the text (an emoji, a rare script), so it is an
    ordinary token with offsets; only where the same id also plays another role (GPT-2's
    ``<|endoftext|>`` is unknown, start and end token at once) does it stay special.
    """
    ids = {int(i) for i in tokenizer.all_special_ids}
    unknown = getattr(tokenizer, "unk_token_id", None)
    if unknown is None:
        return ids
    stamp = (tuple(sorted(ids)), unknown)
    try:
        cached = _special_ids.get(tokenizer)
    except TypeError:  # a tokenizer that cannot be weakly referenced
        cached = None
    if cached is not None and cached[0] == stamp:
        return set(cached[1])
    other_roles = set()
    for role, value in tokenizer.special_tokens_map.items():
        if role == "unk_token":
            continue
        for token in value if isinstance(value, (list, tuple)) else [value]:
            token_id = tokenizer.convert_tokens_to_ids(str(token))
            if isinstance(token_id, int):
                other_roles.add(token_id)
    result = frozenset(ids if unknown in other_roles else ids - {unknown})
    try:
        _special_ids[tokenizer] = (stamp, result)
    except TypeError:
        pass
    return set(result)


_special_ids: weakref.WeakKeyDictionary[Any, tuple[tuple, frozenset[int]]] = weakref.WeakKeyDictionary()


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

    ``mask`` lists token positions to replace with the tokenizer's mask token; a mask token typed in the
    text (``[MASK]`` for BERT, ``<mask>`` for RoBERTa) is a masked position too (`typed_masks`), with its
    offsets, in ``Tokens.masked``. Inputs longer than the
    model's maximum raise `InputError` unless ``truncate`` is set; then the tail is cut (the longer
    segment first for pairs) and ``Tokens.truncated`` counts the dropped tokens.
    """
    tokenizer = handle.tokenizer
    texts = (
        (_check_text(text, "text"),)
        if text_pair is None
        else (
            _check_text(text, "text"),
            _check_text(text_pair, "second text (sentence B)"),
        )
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
    special_ids = special_token_ids(tokenizer)
    sequence_ids = full.sequence_ids() if hasattr(full, "sequence_ids") else [0] * len(ids)
    typed = typed_masks(tokenizer, ids, sequence_ids)
    special = [
        sid is None or (tid in special_ids and i not in typed) for i, (sid, tid) in enumerate(zip(sequence_ids, ids))
    ]
    segments = _segments(sequence_ids)
    offsets = [None if sp else (int(a), int(b)) for sp, (a, b) in zip(special, full["offset_mapping"])]
    display = display_forms(raw, special, tokenizer)
    for position in typed:
        display[position] = str(tokenizer.mask_token)
    words = words_without_blanks(
        words_of_tokens(full.word_ids(), offsets, segments, texts), display, offsets, segments, texts
    )
    word_ids = global_word_ids(words, sequence_ids)
    tokens = Tokens(ids, raw, display, offsets, word_ids, special, segments, texts, masked=typed, truncated=dropped)
    return apply_mask(tokens, mask, handle) if mask else tokens


def typed_masks(tokenizer: Any, ids: Sequence[int], sequence_ids: Sequence[int | None]) -> tuple[int, ...]:
    """Positions where the text itself holds the mask token (``[MASK]``, ``<mask>``... typed as BertViz and
    exBERT users do): masked positions of the input, like those masked by position, not special tokens.
    A mask token the tokenizer adds itself (no sequence id) is not one."""
    mask_id = getattr(tokenizer, "mask_token_id", None)
    if mask_id is None or getattr(tokenizer, "mask_token", None) is None:
        return ()
    return tuple(i for i, (sid, tid) in enumerate(zip(sequence_ids, ids)) if sid is not None and tid == mask_id)


def _segments(sequence_ids: list[int | None]) -> list[int]:
    """Segment of each position; special tokens belong to the segment before them (A at the start)."""
    segments, current = [], 0
    for sid in sequence_ids:
        if sid is not None:
            current = sid
        segments.append(current)
    return segments


def words_of_tokens(
    word_ids: list[int | None], offsets: list[tuple[int, int] | None], segments: list[int], texts: tuple[str, ...]
) -> list[int | None]:
    """The tokenizer's word ids, or words split at whitespace where the tokenizer has no word splitting.

    SentencePiece tokenizers that read the whole text as one piece (Llama-2's, with no pre-tokenizer or
    a Metaspace that does not split) number every token word 0: a word then spans whitespace, and the
    words are taken from the offsets instead: a token starts a word when whitespace precedes it or
    begins its span (``▁café``).
    """
    spans = {i: o for i, o in enumerate(offsets) if o is not None and word_ids[i] is not None}

    def starts_word(i: int, previous: int) -> bool:
        (start, end), (_, before) = spans[i], spans[previous]
        text = texts[segments[i]] if segments[i] < len(texts) else ""
        return any(c.isspace() for c in text[before:start]) or (start < end and text[start : start + 1].isspace())

    ordinary = list(spans)
    pairs = [(p, i) for p, i in zip(ordinary, ordinary[1:]) if segments[p] == segments[i]]
    if not any(word_ids[p] == word_ids[i] and starts_word(i, p) for p, i in pairs):
        return word_ids
    derived: list[int | None] = [None] * len(word_ids)
    number, previous = -1, None
    for i in ordinary:
        if previous is None or segments[previous] != segments[i]:
            number = 0
        elif starts_word(i, previous):
            number += 1
        derived[i], previous = number, i
    return derived


def words_without_blanks(
    word_ids: list[int | None],
    display: list[str],
    offsets: list[tuple[int, int] | None],
    segments: list[int],
    texts: tuple[str, ...],
) -> list[int | None]:
    """Word ids with the tokens that stand for whitespace only (`token_text.is_blank`) in no word, the
    rest numbered again from 0 in each segment (a byte-level ``Ġ`` the tokenizer put in the next
    word's pre-token, or a lone ``▁``, is not part of that word's text)."""
    out: list[int | None] = []
    renumber: dict[tuple[int, int], int] = {}
    counts: dict[int, int] = {}
    for p, word in enumerate(word_ids):
        span = offsets[p]
        text = texts[segments[p]] if segments[p] < len(texts) else ""
        if word is None or is_blank(display[p], text[span[0] : span[1]] if span else None):
            out.append(None)
            continue
        key = (segments[p], word)
        if key not in renumber:
            renumber[key] = counts.get(segments[p], 0)
            counts[segments[p]] = renumber[key] + 1
        out.append(renumber[key])
    return out


def global_word_ids(word_ids: list[int | None], sequence_ids: list[int | None]) -> list[int | None]:
    """Word ids that keep counting through sentence B instead of restarting at 0."""
    a_words = [w for w, s in zip(word_ids, sequence_ids) if s == 0 and w is not None]
    shift = (max(a_words) + 1) if a_words else 0
    return [None if w is None else (w + shift if s == 1 else w) for w, s in zip(word_ids, sequence_ids)]


def apply_mask(tokens: Tokens, positions: Sequence[int], handle: Any) -> Tokens:
    """Replace the tokens at ``positions`` with the mask token; positions must be ordinary tokens."""
    tokenizer = handle.tokenizer
    if tokenizer.mask_token is None or tokenizer.mask_token_id is None:
        why = (
            "a causal decoder predicts the next token and is never trained on a mask token, so masking is not "
            "meaningful there; "
            if handle.kind == "decoder"
            else ""
        )
        raise InputError(
            f"model {handle.name!r} has no mask token, so positions cannot be masked: {why}masking is "
            "for masked-language models such as BERT and RoBERTa, trained to predict a hidden word"
        )
    ids, raw, display = list(tokens.ids), list(tokens.raw), list(tokens.display)
    original = dict(tokens.original)
    what = f"this input of {count(len(ids), 'token')}"
    for i, position in enumerate(positions):  # in the order given, so an error names the entry at fault (mask.1)
        if tokens.special[check_choice("mask", position, len(ids), what, unit="mask position", field=f"mask.{i}")]:
            raise FieldError(
                f"mask position {position} is the special token {tokens.raw[position]!r}: "
                "only ordinary tokens can be masked",
                f"mask.{i}",
            )
    for position in sorted(set(positions)):
        if position not in tokens.masked:  # a mask token typed in the text hides nothing
            original[position] = display[position]
        ids[position] = tokenizer.mask_token_id
        raw[position] = display[position] = tokenizer.mask_token
    masked = tuple(sorted(set(tokens.masked) | set(positions)))
    return Tokens(
        ids,
        raw,
        display,
        tokens.offsets,
        tokens.word_ids,
        tokens.special,
        tokens.segments,
        tokens.texts,
        masked=masked,
        truncated=tokens.truncated,
        original=original,
    )


MASKING_MODELS = (
    "Masking is meaningful with a checkpoint that has a masked-language-model head, trained to predict "
    "the word behind its mask token: BERT, RoBERTa, DistilBERT, ALBERT or XLM-R, or ELECTRA's generator "
    "(e.g. bert-base-uncased, roberta-base); BART's denoising head too."
)
MASK_MISLEADS = (
    "what a masked position attends to, and what a corpus search for it finds (often unrelated "
    "tokens such as proper nouns), says little about the word it hides."
)


def masking_caveat(handle: Any) -> str | None:
    """Why masking a position with ``handle``'s model may mislead, or None when masking means what it says.

    The mask token means "a word goes here" only to a model trained to predict masked words. A checkpoint
    without a masked-LM head (sentence encoders such as the default all-MiniLM-L6-v2, ELECTRA's
    discriminator, a bare ``BertModel``) was never trained on the mask token, and a causal decoder never
    saw one (when its tokenizer has a mask token at all): there the masked position's attention, hidden
    states and corpus neighbours describe an untrained embedding, not a hidden word. Returns None for
    models with a masked-LM (or denoising seq2seq) head and for tokenizers without a mask token, as
    GPT-2's, Llama's and T5's (masking is refused there, by `apply_mask`, with the reason). The one text the
    app (``/api/models``' ``masking_note``), the CLI and the Python warning (`MaskingWarning`) show.
    """
    tokenizer = handle.tokenizer
    mask = getattr(tokenizer, "mask_token", None)
    if mask is None or getattr(tokenizer, "mask_token_id", None) is None:
        return None
    if handle.kind == "decoder":
        return (
            f"model {handle.name!r} is a causal decoder: it never saw the mask token {mask} in training, "
            f"so {MASK_MISLEADS} {MASKING_MODELS}"
        )
    if handle.has_lm_head:
        return None
    return (
        f"model {handle.name!r} has no masked-language-model head, so its mask token {mask} was not trained "
        f"to stand for a word: {MASK_MISLEADS} {MASKING_MODELS}"
    )


def decoder_tokens(handle: Any, target: str | None) -> Tokens:
    """Decoder input for an encoder-decoder: the start token, then the target text's tokens if given."""
    tokenizer, config = handle.tokenizer, handle.model.config
    candidates = (
        getattr(config, "decoder_start_token_id", None),
        getattr(getattr(config, "decoder", None), "decoder_start_token_id", None),
        tokenizer.bos_token_id,
        tokenizer.cls_token_id,
        tokenizer.pad_token_id,
    )
    start = next((c for c in candidates if isinstance(c, int)), None)
    if start is None:
        raise InputError(
            f"model {handle.name!r} names no decoder start token (decoder_start_token_id in its "
            "config), and its tokenizer has no start, [CLS] or padding token to use instead"
        )
    offsets: list[tuple[int, int] | None]
    words: list[int | None]
    if target is None:
        ids, offsets, words = [start], [None], [None]
    else:
        body = tokenizer(text_target=_check_text(target, "target text"), return_offsets_mapping=True, verbose=False)
        ids = [start] + list(body["input_ids"])
        offsets = [None] + [(int(a), int(b)) for a, b in body["offset_mapping"]]
        words = [None] + list(body.word_ids())
        if len(ids) > handle.max_length:
            raise InputError(
                f"the target is {len(ids)} tokens long; model {handle.name!r} takes at most {handle.max_length}"
            )
    special_ids = special_token_ids(tokenizer)
    special = [i == 0 or tid in special_ids for i, tid in enumerate(ids)]
    offsets = [None if sp else o for sp, o in zip(special, offsets)]
    raw = tokenizer.convert_ids_to_tokens(ids)
    display = display_forms(raw, special, tokenizer)
    texts = () if target is None else (target,)
    words = words_without_blanks(words, display, offsets, [0] * len(ids), texts)
    return Tokens(ids, raw, display, offsets, words, special, [0] * len(ids), texts)
