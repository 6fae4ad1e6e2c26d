"""A prompt of exactly so many tokens for a model (the app's long-input tests and bench/app.py)."""

from __future__ import annotations

from .long_context import long_text


def prompt_of(handle, tokens: int, seed: int = 0) -> str:
    """Seeded words (`long_context.long_text`) cut to a text that ``handle`` tokenises into exactly ``tokens``
    tokens, special tokens included."""
    text = long_text(tokens, seed)
    while len(_ids(handle, text)) <= tokens + 2:
        text = f"{text} {long_text(tokens, seed + 1)}"
    for at in (tokens, tokens - 1, tokens + 1, tokens - 2, tokens + 2):
        cut = _cut(handle, text, at)
        if len(_ids(handle, cut)) == tokens:
            return cut
    raise AssertionError(f"no prompt of exactly {tokens} tokens found")


def _ids(handle, text: str) -> list[int]:
    return list(handle.tokenizer(text)["input_ids"])


def _cut(handle, text: str, tokens: int) -> str:
    """The text up to the end of its ``tokens``-th token (special tokens counted), by the tokenizer's offsets."""
    encoded = handle.tokenizer(text, return_offsets_mapping=True)
    ends = [end for start, end in encoded["offset_mapping"] if end > start]
    special = len(encoded["input_ids"]) - len(ends)
    return text[: ends[tokens - special - 1]]
