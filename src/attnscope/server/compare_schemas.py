"""Request and response models of ``POST /api/compare`` (`compare_routes`): the app's "compare with" control.

Kept apart from `schemas` (the other routes' models) so that the comparison route owns its wire format.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from .schemas import Request, Text

StackName = Literal["encoder", "decoder", "cross"]
Level = Literal["auto", "token", "word"]


class CompareRequest(Request):
    """``POST /api/compare``: ``text`` (and ``text_pair``) through model A (``model``, the attention view's) and
    model B (``compare``), compared head by head (`attnscope.analysis.comparison.compare`).

    ``level`` aligns tokens ("token": one tokenizer), words ("word": character spans, for two tokenizers) or
    either ("auto": tokens when both tokenise alike); ``stack_a`` / ``stack_b`` name the stacks compared (each
    model's self-attention over the text by default: "decoder" for a causal decoder, else "encoder"). The same
    model twice is allowed: every distance is then 0.
    """

    model: str = Field(description="Model A: a configured model's name (see GET /api/models).")
    compare: str = Field(description="Model B, compared with A: a configured model's name (A's own is allowed).")
    text: Text
    text_pair: Text | None = Field(None, description="Optional second text (sentence B), through both models.")
    level: Level = Field("auto", description="Align tokens, words, or tokens when both tokenise alike (auto).")
    stack_a: StackName | None = Field(None, description="A's stack (default: its self-attention over the text).")
    stack_b: StackName | None = Field(None, description="B's stack (default: its self-attention over the text).")


class DiffPayloadOut(BaseModel):
    """The diff view's payload (`views.diff_payload`), as a standalone diff page carries it: ``header`` (shapes,
    aligned ``units``, ``unaligned_a``/``unaligned_b`` positions with their tokens, ``distances`` (A's heads
    against the same heads of B in bits, null when the shapes differ), ``pair_distances``, ``matching``,
    ``nearest``, the palettes and ``limit_code``) and ``layers``: per side ("a", "b") one base64 string per layer
    of uint8 ``round(w * 255)`` of shape (heads, units, units), deflated (raw DEFLATE: the header's
    ``encoding.compression`` says "deflate-raw")."""

    header: dict[str, Any]
    layers: dict[str, list[str]]


class CompareResponse(BaseModel):
    """Models A and B as served, the level the units are (``level``: "token" or "word"), and the diff view's
    ``payload`` (its header lists the positions of each model that could not be aligned)."""

    model: str
    compare: str
    level: str
    payload: DiffPayloadOut
