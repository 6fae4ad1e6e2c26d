"""The causal-decoder routes: ``POST /api/continue`` (Continue in the app: generate, then show prompt plus
continuation) and its checks: a causal decoder with a language-model head, and a continuation within the model's
positions and the server's limit (masking a causal model's input is refused by `causal.refuse_causal_mask`).

A route is a plain function (run in the threadpool: generation holds its model's lock). Generation is
`capture.generation.generate`: ``model.generate`` (greedy, or sampled with a seed), its forward passes joined
into the capture of the final ids as generated (or one more capture of them, on demand), so the attention and
the predictions at every position are what ``POST /api/attention`` would give for those ids (to float rounding).
"""

from __future__ import annotations

from typing import cast

from fastapi import APIRouter, Request

from ..analysis.aggregate import check_heads
from ..analysis.methods import NORM_METHODS
from ..capture.generation import generate
from ..capture.inputs import encode
from ..capture.loading import ModelHandle
from ..errors import count
from ..views.payload import payload_from_capture
from .decoder_schemas import ContinueRequest, ContinueResponse
from .errors import ApiError, in_field
from .long_routes import keep_long_view, refuse_aggregations_at_length
from .long_store import long_view_id
from .routes import _candidates, _tokens_out  # the attention route's own helpers: one answer shape
from .schemas import ErrorResponse, PayloadOut, PositionPredictions, PredictionMode, StackRole
from .state import AppState
from .token_limits import long_view, token_limit

TOP_PREDICTIONS = 5
"""Predictions kept at every position of a continuation (as ``POST /api/attention`` keeps)."""

router = APIRouter(prefix="/api", responses={s: {"model": ErrorResponse} for s in (400, 404, 413, 422)})


def check_continuation(state: AppState, handle: ModelHandle, name: str, prompt: int, new: int) -> None:
    """Refuse a continuation the model or the server cannot hold: ``prompt`` tokens plus ``new`` ones past the
    model's positions (400 ``past_model_positions``) or past the server's tokens per input (400 ``too_many_tokens``);
    the field is ``text`` when the prompt alone is too long, else ``max_new_tokens``."""
    server = token_limit(handle, state.limits.memory_bytes, state.limits.max_tokens)
    for limit, code, holder in (
        (
            handle.max_length,
            "past_model_positions",
            f"model {name!r} takes at most {count(handle.max_length, 'position')}",
        ),
        (
            server.tokens,
            "too_many_tokens",
            f"this server takes at most {count(server.tokens, 'token')} per input "
            f"({server.said(name, handle, state.limits.memory_bytes)})",
        ),
    ):
        if prompt + new <= limit:
            continue
        if prompt >= limit:
            raise ApiError(
                400,
                code,
                f"the prompt is {count(prompt, 'token')} long: {holder}, so nothing can follow it: shorten the text",
                "text",
            )
        raise ApiError(
            400,
            code,
            f"the prompt is {count(prompt, 'token')} long and max_new_tokens is {new}: {holder}; "
            f"ask for at most {limit - prompt} new tokens or shorten the prompt",
            "max_new_tokens",
        )


def _refuse_non_causal(handle: ModelHandle, name: str) -> None:
    if handle.kind != "decoder" or not handle.has_lm_head:
        why = "it has no language-model head" if handle.kind == "decoder" else f"it is an {handle.kind}"
        raise ApiError(
            400,
            "not_a_causal_model",
            f"model {name!r} cannot continue a text: {why}; Continue needs a causal decoder with a language-model "
            "head (GET /api/models: kind 'decoder', has_lm_head true)",
            "model",
        )


@router.post(
    "/continue",
    response_model=ContinueResponse,
    summary="Generate tokens after a prompt with a causal decoder; attention and predictions over both",
)
def continue_text(body: ContinueRequest, request: Request) -> ContinueResponse:
    state: AppState = request.app.state.attnscope
    handle = state.model(body.model)
    name = state.name_of(handle)
    _refuse_non_causal(handle, name)
    if body.seed is not None and not body.do_sample:
        raise ApiError(
            400,
            "seed_without_sampling",
            "seed applies only when do_sample is true: greedy decoding has no randomness",
            "seed",
        )
    with in_field("text"):
        prompt = encode(handle, body.text)
    check_continuation(state, handle, name, len(prompt), body.max_new_tokens)
    with in_field(None):
        check_heads(body.heads, handle.stacks[handle.main_stack].heads, f"model {name!r}")
    norms = any(method in NORM_METHODS for method in body.aggregations)
    long_input = long_view(handle, len(prompt) + body.max_new_tokens)  # the most it can be (the model may stop early)
    if long_input:
        refuse_aggregations_at_length(body.aggregations, len(prompt) + body.max_new_tokens)
    with in_field(None):
        cap = generate(
            handle,
            body.text,
            body.max_new_tokens,
            seed=body.seed,
            do_sample=body.do_sample,
            temperature=body.temperature,
            top_k=TOP_PREDICTIONS,
            fields=["attentions", "values"] if norms else ["attentions"],
            attention="on_demand" if long_input else "auto",  # weights computed when a layer is asked for
        )
    long = None
    if long_input:  # drawn by the long-context view, as POST /api/attention's long inputs
        ident = long_view_id(name, " ".join(map(str, cap.tokens.ids)), None, [])  # what was captured: its ids
        _, payload_out, long = keep_long_view(state, ident, cap)
    else:
        with in_field("aggregations"):
            payload = payload_from_capture(
                cap, aggregation="raw", aggregations=body.aggregations, combine_heads=body.heads, sparse=False
            )
        payload_out = PayloadOut(header=payload.header(), layers=payload.layers_base64())
    mode = cap.predictions.mode if cap.predictions is not None else None
    return ContinueResponse(
        model=name,
        stack=cast(StackRole, handle.main_stack),
        tokens=_tokens_out(cap.tokens),
        payload=payload_out,
        long_view=long,
        predictions=[PositionPredictions(position=p, candidates=_candidates(cap, p)) for p in range(len(cap.tokens))],
        predictions_mode=cast(PredictionMode | None, mode),
        masking_note=None,  # nothing is masked: the request takes no mask
        generated=list(cap.tokens.generated),
        prompt_tokens=len(prompt),
        do_sample=body.do_sample,
        seed=body.seed,
        temperature=body.temperature,
    )
