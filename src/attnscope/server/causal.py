"""What the server refuses for a causal decoder in every route that takes ``mask``: masking, with the reason.

A causal model predicts the next token from the ones before it; it never learnt a mask token, so a masked
position would show an untrained input. The routes refuse it (400 ``causal_model_no_masking``, field ``mask``)
whether or not the tokenizer has a mask token; the app says the same text (`causal_masking_message`).
"""

from __future__ import annotations

from ..capture.loading import ModelHandle
from .errors import ApiError


def causal_masking_message(name: str) -> str:
    """Why a causal decoder's positions are not masked: the one text the API and the app say."""
    return (
        f"model {name!r} is a causal decoder: a causal model predicts the next token from the tokens before it and "
        "was never trained to fill in a masked one, so masking would show an untrained input, not a hidden word: "
        "leave mask out (masking is for masked-language models such as BERT and RoBERTa)"
    )


def refuse_causal_mask(handle: ModelHandle, name: str, mask: list[int]) -> None:
    """400 ``causal_model_no_masking`` (field ``mask``) when ``mask`` names positions of a causal decoder's input."""
    if mask and handle.kind == "decoder":
        raise ApiError(400, "causal_model_no_masking", causal_masking_message(name), "mask")
