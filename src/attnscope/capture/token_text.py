"""The text a token stands for: how each tokenizer family spells text in its vocabulary, read back.

Tokenizers keep their vocabulary in private alphabets: WordPiece marks continuations with ``##``;
SentencePiece writes spaces as ``▁`` and, with byte fallback (Llama-2, Mistral, Gemma), spells
characters outside its vocabulary as byte tokens ``<0xE6>``; byte-level BPE (GPT-2, RoBERTa, BART,
Llama-3, SmolLM2) maps every byte to a printable stand-in character, so ``Ġ`` is a space and ``Ã©``
the two bytes of ``é``. A token's *display form* is its text in plain Unicode:

- markers are removed and surrounding spaces stripped (``##ing`` -> ``ing``, ``Ġthe`` -> ``the``);
- a token that is only whitespace shows it visibly, one symbol per character: ``␣`` for a space,
  ``↵`` for a line break, ``⇥`` for a tab;
- bytes that do not form a whole UTF-8 character within the token (a token holding part of a
  character, as byte-level BPE and byte fallback make for ``東`` or ``😀``) are written as Python writes
  bytes, ``\\xe6``; the same notation marks control characters, while line breaks and tabs inside a
  token show as ``↵`` and ``⇥``. ``東`` split into three tokens reads ``\\xe6``, ``\\x9d``, ``\\xb1`` in
  every family. The token's offsets still span the whole character;
- special tokens (``[CLS]``, ``</s>``) and the unknown token (``[UNK]``) keep their vocabulary form.
"""

from __future__ import annotations

import json
import re
import unicodedata
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

CONTINUATION = "##"
"""WordPiece's mark on a token that continues a word."""
SPACE_MARKERS = ("Ġ", "▁")
"""Byte-level BPE's stand-in for a space, and SentencePiece's."""
END_OF_WORD = "</w>"
"""The suffix some BPE vocabularies (OpenAI GPT, CLIP) put on a word's last token."""

_BYTE_TOKEN = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
_VISIBLE_SPACE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


@lru_cache(maxsize=1)
def byte_alphabet() -> dict[str, int]:
    """Byte-level BPE's alphabet: each stand-in character and the byte it spells.

    Bytes that print as themselves in Latin-1 (``!``..``~``, ``¡``..``¬``, ``®``..``ÿ``) stand for
    themselves; the other 68 bytes (space, control characters, soft hyphen...) take the characters
    from U+0100 on, in byte order, so the space 0x20 is ``Ġ`` (U+0120) and the line feed ``Ċ``.
    """
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    alphabet = {chr(b): b for b in printable}
    shifted = [b for b in range(256) if b not in alphabet.values()]
    alphabet.update({chr(0x100 + n): b for n, b in enumerate(shifted)})
    return alphabet


@dataclass(frozen=True)
class TokenScheme:
    """How one tokenizer spells text in its vocabulary (read from its components, see `scheme_of`)."""

    byte_level: bool = False
    """Tokens are byte-level BPE strings (`byte_alphabet`)."""
    byte_fallback: bool = False
    """``<0xNN>`` tokens stand for single bytes (SentencePiece byte fallback)."""
    continuation: str = ""
    """The prefix that marks a word's continuation (WordPiece ``##``); empty when none."""
    space_marker: str = ""
    """The character that stands for a space (SentencePiece ``▁``); empty when none."""
    end_of_word: str = ""
    """A suffix on word-final tokens (``</w>``); empty when none."""
    plain: frozenset[str] = frozenset()
    """Added tokens, which byte-level tokenizers store as plain text rather than in their alphabet."""


def _state(component: Any) -> dict[str, Any]:
    """A tokenizers component (pre-tokenizer, decoder) as its JSON description; {} when it has none."""
    if component is None:
        return {}
    try:
        return json.loads(component.__getstate__())
    except (AttributeError, TypeError, ValueError):
        return {}


def _parts(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The component and, for a Sequence, its members (recursively)."""
    members = state.get("decoders") or state.get("pretokenizers") or state.get("normalizers") or []
    return [state] + [p for m in members for p in _parts(m)]


def _scheme_from_backend(tokenizer: Any, backend: Any) -> TokenScheme:
    parts = _parts(_state(getattr(backend, "pre_tokenizer", None))) + _parts(_state(getattr(backend, "decoder", None)))
    types = {p.get("type") for p in parts}
    model = getattr(backend, "model", None)
    model_type = type(model).__name__
    metaspace = next((p.get("replacement", "▁") for p in parts if p.get("type") == "Metaspace"), "")
    if not metaspace and any(p.get("type") == "Replace" and p.get("pattern", {}).get("String") == "▁" for p in parts):
        metaspace = "▁"  # Llama-2's decoder turns ▁ back into spaces without a Metaspace step
    byte_level = "ByteLevel" in types
    return TokenScheme(
        byte_level=byte_level,
        byte_fallback=not byte_level
        and (bool(getattr(model, "byte_fallback", False)) or "ByteFallback" in types or _has_byte_tokens(tokenizer)),
        continuation=(getattr(model, "continuing_subword_prefix", None) or "")
        if model_type in ("WordPiece", "BPE")
        else "",
        space_marker=metaspace,
        end_of_word=(getattr(model, "end_of_word_suffix", None) or "") if model_type == "BPE" else "",
        plain=frozenset(_added_tokens(tokenizer)) if byte_level else frozenset(),
    )


def _has_byte_tokens(tokenizer: Any) -> bool:
    """Whether the vocabulary has SentencePiece's byte tokens ``<0x00>``..``<0xFF>``."""
    try:
        ids = tokenizer.convert_tokens_to_ids(["<0x00>", "<0xE6>", "<0xFF>"])
    except Exception:  # noqa: BLE001 - a tokenizer without that lookup has no byte tokens we can use
        return False
    unknown = getattr(tokenizer, "unk_token_id", None)
    return all(isinstance(i, int) and i != unknown for i in ids)


def _added_tokens(tokenizer: Any) -> list[str]:
    try:
        return list(tokenizer.get_added_vocab())
    except Exception:  # noqa: BLE001 - tokenizers without added tokens
        return []


def _scheme_without_backend(tokenizer: Any) -> TokenScheme:
    """Python tokenizers (no ``tokenizers`` backend): recognised by what they carry."""
    if isinstance(getattr(tokenizer, "byte_decoder", None), dict):  # GPT-2's Python tokenizer
        return TokenScheme(byte_level=True, plain=frozenset(_added_tokens(tokenizer)))
    if getattr(tokenizer, "sp_model", None) is not None:
        return TokenScheme(byte_fallback=_has_byte_tokens(tokenizer), space_marker="▁")
    if hasattr(tokenizer, "wordpiece_tokenizer"):
        return TokenScheme(continuation=CONTINUATION)
    return TokenScheme(continuation=CONTINUATION, space_marker="▁")


_schemes: weakref.WeakKeyDictionary[Any, TokenScheme] = weakref.WeakKeyDictionary()


def scheme_of(tokenizer: Any) -> TokenScheme:
    """The `TokenScheme` of a transformers tokenizer, read once per tokenizer object."""
    try:
        return _schemes[tokenizer]
    except (KeyError, TypeError):
        pass
    backend = getattr(tokenizer, "backend_tokenizer", None)
    scheme = _scheme_from_backend(tokenizer, backend) if backend is not None else _scheme_without_backend(tokenizer)
    try:
        _schemes[tokenizer] = scheme
    except TypeError:  # an object that cannot be weakly referenced: computed again next time
        pass
    return scheme


def token_bytes(raw: str, scheme: TokenScheme) -> bytes:
    """The bytes of text one vocabulary string stands for, markers turned back into spaces.

    The continuation and end-of-word markers are dropped (they mark word boundaries, not text).
    """
    text = raw
    if scheme.end_of_word and text.endswith(scheme.end_of_word) and len(text) > len(scheme.end_of_word):
        text = text[: -len(scheme.end_of_word)]
    if scheme.continuation and text.startswith(scheme.continuation) and len(text) > len(scheme.continuation):
        text = text[len(scheme.continuation) :]
    if scheme.byte_level and raw not in scheme.plain:
        alphabet = byte_alphabet()
        if all(c in alphabet for c in text):
            return bytes(alphabet[c] for c in text)
    if scheme.byte_fallback:
        match = _BYTE_TOKEN.match(text)
        if match:
            return bytes([int(match.group(1), 16)])
    if scheme.space_marker:
        text = text.replace(scheme.space_marker, " ")
    return text.encode("utf-8", "surrogatepass")


def readable(data: bytes) -> str:
    """Bytes of text as a label: UTF-8 characters as themselves, surrounding whitespace stripped (shown
    as ``␣``/``↵``/``⇥`` when it is all there is), stray bytes and control characters as ``\\xNN``."""
    text = data.decode("utf-8", "backslashreplace")
    stripped = text.strip()
    if stripped and stripped.isprintable():  # the usual case, checked at C speed: nothing to make visible
        return stripped
    if not stripped:
        return "".join(_VISIBLE_SPACE.get(c, "␣") for c in text) or "␣"
    return "".join(_visible(c) for c in stripped)


def _visible(character: str) -> str:
    """A character inside a label: line breaks and tabs as symbols, other control characters as ``\\xNN``."""
    if character in "\n\t\r":
        return _VISIBLE_SPACE[character]
    return f"\\x{ord(character):02x}" if unicodedata.category(character) == "Cc" else character


BLANK_SYMBOLS = frozenset(_VISIBLE_SPACE.values())
"""The symbols a whitespace-only token's display is made of (`readable`)."""


def is_blank(display: str, covered: str | None = None) -> bool:
    """Whether a token stands for whitespace only (a byte-level ``Ġ`` or ``Ċ`` on its own, SentencePiece's
    lone ``▁``): its display is made of the whitespace symbols ``␣↵⇥␍`` (as `readable` shows whitespace),
    and ``covered``, the text its character span covers (None: no span), is not those symbols themselves.
    Such a token is part of no word and has no text as written: it reads as the space it stands for."""
    return bool(display) and all(c in BLANK_SYMBOLS for c in display) and covered != display


def display_form(raw: str, tokenizer: Any, special: bool) -> str:
    """The readable form of one vocabulary token (see the module docstring); special tokens as they are."""
    return raw if special else readable(token_bytes(raw, scheme_of(tokenizer)))


def display_forms(raw: Sequence[str], special: Sequence[bool], tokenizer: Any) -> list[str]:
    """`display_form` of each token of a sequence."""
    scheme = scheme_of(tokenizer)
    return [r if sp else readable(token_bytes(r, scheme)) for r, sp in zip(raw, special)]


def guess_scheme(tokens: Sequence[str]) -> TokenScheme:
    """The scheme of bare token strings (BertViz-style input, no tokenizer at hand), from their spelling.

    Byte-level BPE when every token is written in its alphabet and either uses one of its stand-ins for
    a space or control byte (``Ġ``, ``Ċ``) or decodes, joined, to UTF-8 that differs from the strings
    (``Ã©`` -> ``é``); byte tokens ``<0xNN>`` mean byte fallback; ``▁`` marks SentencePiece spaces
    (tokens with ``▁`` are left out of the byte-level decision and read as SentencePiece's).
    """
    alphabet = byte_alphabet()
    words = [t for t in tokens if not _BYTE_TOKEN.match(t) and "▁" not in t]
    spelled = bool(words) and all(c in alphabet for t in words for c in t)
    byte_level = False
    if spelled:
        joined = "".join(words)
        if any(ord(c) >= 0x100 for c in joined):
            byte_level = True
        else:
            try:
                byte_level = bytes(alphabet[c] for c in joined).decode("utf-8") != joined
            except UnicodeDecodeError:
                byte_level = False
    return TokenScheme(
        byte_level=byte_level,
        byte_fallback=any(_BYTE_TOKEN.match(t) for t in tokens),
        space_marker="▁",  # a token outside the byte alphabet is read as SentencePiece's, even in a mixed list
        end_of_word=END_OF_WORD,
    )


def is_byte_token(token: str) -> bool:
    """Whether ``token`` is a SentencePiece byte token such as ``<0xE6>``."""
    return bool(_BYTE_TOKEN.match(token))
