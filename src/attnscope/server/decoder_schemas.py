"""Request and response models of the causal-decoder routes (`decoder_routes`): Continue, generation in the app.

Kept apart from `schemas` (the other routes' models) so that each route module owns its wire format.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ..views.aggregated import CARRIED, COMBINING
from .schemas import MAX_POSITIONS, AttentionResponse, CarriedAggregation, Position, Request, Text

MAX_NEW_TOKENS = 200
"""Most tokens one ``POST /api/continue`` generates."""


class ContinueRequest(Request):
    """``POST /api/continue``: generate up to ``max_new_tokens`` tokens after ``text`` with a causal decoder,
    then answer as ``POST /api/attention`` does for prompt plus continuation.

    Greedy by default (the most likely token at each step); with ``do_sample`` sampled from softmax(logits /
    ``temperature``) over the whole vocabulary, the same tokens for the same ``seed``. ``aggregations`` and
    ``heads`` as in ``POST /api/attention``.
    """

    model: str = Field(description="A configured causal decoder's name (see GET /api/models: kind 'decoder').")
    text: Text = Field(description="The prompt, tokenised as POST /api/attention tokenises it.")
    max_new_tokens: int = Field(
        20, ge=1, le=MAX_NEW_TOKENS, description="Tokens to generate (fewer if the model ends)."
    )
    do_sample: bool = Field(False, description="Sample each token (true) or take the most likely one (false).")
    seed: int | None = Field(
        None, ge=0, le=2**32 - 1, description="The sampling seed: the same tokens for the same seed."
    )
    temperature: float = Field(1.0, gt=0, le=10, description="Sampling temperature (do_sample only).")
    aggregations: Annotated[list[CarriedAggregation], Field(max_length=len(CARRIED))] = Field(
        default_factory=list, description="As in POST /api/attention: " + ", ".join(CARRIED) + "."
    )
    heads: Annotated[list[Position], Field(min_length=1, max_length=MAX_POSITIONS)] | None = Field(
        None, description=f"As in POST /api/attention: the heads {', '.join(COMBINING)} combine (default: all)."
    )


class ContinueResponse(AttentionResponse):
    """`AttentionResponse` over prompt plus continuation, and what was generated: ``generated`` (the positions the
    model chose, after the prompt's ``prompt_tokens``; the payload's sequence marks them too, with each step's
    top next tokens), and how (``do_sample``, ``seed``, ``temperature``)."""

    generated: list[int]
    prompt_tokens: int
    do_sample: bool
    seed: int | None
    temperature: float
