"""The ``/api`` routes: configured models and corpora, attention, predictions and corpus search.

``POST /api/attention`` answers with the views' payload (`views.payload`, the head view widget's state),
which carries the aggregations asked for (rollout, value norms) beside each head's attention; a long input
(`token_limits.long_view`) gets the long-context head view's payload instead, whose layers are asked for one by
one (`long_routes`). Each model takes inputs up to its own limit (`token_limits`: its positions, and memory).

Routes are plain functions (run in the threadpool: a capture holds its model's lock). They check
every position against the input or the index before any model runs, so errors name the field: each
request's text is tokenised once (`_encode`), and the capture runs on those tokens; a search's query is
checked once (`Index.check_query`), and searched as checked.
"""

from __future__ import annotations

from typing import Any, cast

from fastapi import APIRouter, Request
from fastapi import Query as QueryParameter

from ..analysis.aggregate import check_heads
from ..analysis.methods import BY_NAME, NORM_METHODS
from ..capture.engine import capture
from ..capture.inputs import Tokens, apply_mask, decoder_tokens, encode, masking_caveat
from ..capture.loading import ModelHandle
from ..capture.result import Capture
from ..errors import check_range, count
from ..index import Query, SearchResult
from ..index.query import check_query_token
from ..views.aggregated import CARRIED
from ..views.payload import payload_from_capture
from .causal import causal_masking_message, refuse_causal_mask
from .errors import ApiError, in_field
from .long_routes import long_attention
from .query_store import query_input_id
from .schemas import (
    AggregationInfo,
    AtlasResponse,
    AtlasStatus,
    AttentionRequest,
    AttentionResponse,
    Candidate,
    CorpusInfo,
    ErrorResponse,
    ModelInfo,
    PayloadOut,
    PositionPredictions,
    PredictionMode,
    PredictionsRequest,
    PredictionsResponse,
    SearchRequest,
    SearchResponse,
    StackInfo,
    StackRole,
    TokensOut,
)
from .state import AppState
from .token_limits import input_length, long_view, token_limit, too_many_tokens

TOP_PREDICTIONS = 5
"""Predictions returned at every position by ``POST /api/attention``."""

_ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorResponse} for status in (400, 404, 413, 422)}
router = APIRouter(prefix="/api", responses=_ERRORS)


def _state(request: Request) -> AppState:
    return request.app.state.attnscope


@router.get("/models", response_model=list[ModelInfo], summary="The models this server runs")
def list_models(request: Request) -> list[ModelInfo]:
    state = _state(request)
    return [
        _limited(_model_info(name, handle, state.aliases_of(name)), state, handle)
        for name, handle in state.models.items()
    ]


def _limited(info: ModelInfo, state: AppState, handle: ModelHandle) -> ModelInfo:
    """``info`` with the most tokens one input may have here, and what sets it (`token_limits`)."""
    limit = token_limit(handle, state.limits.memory_bytes, state.limits.max_tokens)
    info.max_tokens, info.max_tokens_reason = limit.tokens, limit.said(info.name, handle, state.limits.memory_bytes)
    return info


@router.get("/corpora", response_model=list[CorpusInfo], summary="The corpus indexes this server searches")
def list_corpora(request: Request) -> list[CorpusInfo]:
    out = []
    for name, corpus in _state(request).corpora.items():
        m = corpus.index.manifest
        out.append(
            CorpusInfo(
                name=name,
                model=_state(request).name_of(corpus.model),
                corpus=m.corpus,
                tokens=m.tokens,
                sentences=m.sentences,
                layers=m.layers,
                heads=m.heads,
                fields=list(m.fields),
                annotator=m.annotator,
                silver=dict(m.silver),
                stored_layers=m.layer_numbers,
                codes=m.codes,
            )
        )
    return out


@router.post(
    "/attention",
    response_model=AttentionResponse,
    summary="Tokens, every layer's attention and the aggregations asked for, as the views' payload",
)
def attention(body: AttentionRequest, request: Request) -> AttentionResponse:
    state = _state(request)
    handle = state.model(body.model)
    name = state.name_of(handle)
    tokens = _encode(state, handle, body.text, body.text_pair, body.mask)
    with in_field(None):  # before the model runs; an entry at fault is named (heads.1)
        check_heads(body.heads, handle.stacks[handle.main_stack].heads, f"model {name!r}")
    note = _no_predictions_note(handle, name)
    norms = any(method in NORM_METHODS for method in body.aggregations)
    long = None
    if long_view(handle, len(tokens)):  # drawn by the long-context view: its layers are asked for one by one
        cap, payload_out, long = long_attention(state, handle, name, body, tokens, 0 if note else TOP_PREDICTIONS)
    else:
        with in_field(None):
            cap = capture(
                handle,
                body.text,
                body.text_pair,
                mask=body.mask,
                fields=["attentions", "values"] if norms else ["attentions"],
                top_k=0 if note else TOP_PREDICTIONS,
                warn=False,
                tokens=tokens,
            )
        with in_field("aggregations"):
            payload = payload_from_capture(
                cap, aggregation="raw", aggregations=body.aggregations, combine_heads=body.heads, sparse=False
            )
        payload_out = PayloadOut(header=payload.header(), layers=payload.layers_base64())
    predictions, mode = None, None
    if note is None:
        predictions = [PositionPredictions(position=p, candidates=_candidates(cap, p)) for p in range(len(cap.tokens))]
        mode = cap.predictions.mode if cap.predictions is not None else None
    # cast: the response model validates these values against its literals when it is built
    return AttentionResponse(
        model=name,
        stack=cast(StackRole, handle.main_stack),
        tokens=_tokens_out(cap.tokens),
        payload=payload_out,
        predictions=predictions,
        predictions_mode=cast(PredictionMode | None, mode),
        predictions_note=note,
        masking_note=cap.masking_caveat,
        long_view=long,
    )


def _no_predictions_note(handle: ModelHandle, name: str) -> str | None:
    """Why ``POST /api/attention`` gives no predictions at the input's positions for this model; None when it does."""
    if not handle.has_lm_head:
        return (
            f"model {name!r} has no language-model head, so it cannot predict masked tokens: "
            "serve a checkpoint with a masked-LM or causal-LM head for predictions"
        )
    if handle.kind == "encoder-decoder":
        return (
            f"model {name!r} is an encoder-decoder: its language-model head predicts the decoder's next "
            "token, which needs a target text (the decoder's input), not the input's own tokens: "
            "POST /api/predictions with a target gives them"
        )
    return None


@router.post("/predictions", response_model=PredictionsResponse, summary="Top-k predicted tokens at one position")
def predictions(body: PredictionsRequest, request: Request) -> PredictionsResponse:
    state = _state(request)
    handle = state.model(body.model)
    if not handle.has_lm_head:
        raise ApiError(
            400,
            "no_language_model_head",
            f"model {state.name_of(handle)!r} has no language-model head, so it cannot predict tokens: "
            "use a model whose has_lm_head is true (GET /api/models)",
            "model",
        )
    seq2seq = handle.kind == "encoder-decoder"
    if seq2seq and body.target is None:
        raise ApiError(
            400,
            "needs_target",
            f"model {state.name_of(handle)!r} is an encoder-decoder: it predicts with its decoder, the token that "
            "comes next in a target text: give target (the decoder's input) and a position among its "
            "tokens (0 is the decoder's start token)",
            "target",
        )
    if not seq2seq and body.target is not None:
        raise ApiError(
            400,
            "target_not_taken",
            f"model {state.name_of(handle)!r} is not an encoder-decoder, and only encoder-decoders take a target: "
            "leave target out and give a position among the text's tokens",
            "target",
        )
    tokens = encoded = _encode(state, handle, body.text, body.text_pair, body.mask)
    if seq2seq:
        with in_field("target"):
            tokens = decoder_tokens(handle, body.target)
        _check_length(state, handle, len(tokens), "target")
    where = "the target" if seq2seq else "this input"
    with in_field("position"):
        check_range("position", body.position, len(tokens), f"{where} of {count(len(tokens), 'token')}")
    with in_field(None):
        cap = capture(
            handle,
            body.text,
            body.text_pair,
            target=body.target,
            mask=body.mask,
            fields=["attentions"],
            top_k=body.top_k,
            warn=False,
            tokens=encoded,
        )
    candidates = _candidates(cap, body.position)
    mode = cap.predictions.mode if cap.predictions is not None else "masked"
    return PredictionsResponse(
        model=state.name_of(handle),
        position=body.position,
        token=tokens.display[body.position],
        mode=mode,
        candidates=candidates,
        masking_note=cap.masking_caveat,
    )


@router.post("/search", response_model=SearchResponse, summary="A token's nearest neighbours in a corpus")
def search(body: SearchRequest, request: Request) -> SearchResult:
    state = _state(request)
    corpus = state.corpus(body.corpus)
    query = Query(
        mode=body.mode,
        layer=body.layer,
        heads=tuple(body.heads) if body.heads else None,
        top=body.top,
        filters=body.filters or None,
        unit=body.unit,
        per_sentence=body.per_sentence,
        score=body.score,
        rerank=body.rerank,
    )
    with in_field(None):  # layer, heads, score and filters, once; each error names its field (heads.1, filters.upos)
        query = corpus.index.check_query(query)
    tokens = _encode(state, corpus.model, body.text, body.text_pair, body.mask)
    with in_field("token"):
        check_query_token(tokens, body.token)
    ident = query_input_id(state.name_of(corpus.model), body.text, body.text_pair, body.mask)
    with in_field(None):
        captured = state.query_captures.get(
            ident,
            lambda: corpus.index.query_capture(
                corpus.model, body.text, body.text_pair, mask=body.mask, warn=False, tokens=tokens
            ),
        )
        result = corpus.index.query(
            corpus.model,
            body.text,
            body.token,
            query,
            mask=body.mask,
            text_pair=body.text_pair,
            warn=False,
            tokens=tokens,
            captured=captured,
        )
    return result


@router.get("/atlas", response_model=AtlasResponse, summary="A corpus's head atlas (computed once, in the background)")
def atlas(
    request: Request, corpus: str = QueryParameter(description="A configured corpus's name (see GET /api/corpora).")
) -> AtlasResponse:
    served = _state(request).corpus(corpus)
    job = _state(request).atlases.status(served)
    return AtlasResponse(
        corpus=served.name,
        model=_state(request).name_of(served.model),
        status=cast(AtlasStatus, job.status),
        done=job.done,
        total=job.total,
        message=job.error,
        atlas=job.atlas.to_dict() if job.atlas else None,
    )


def _encode(state: AppState, handle: ModelHandle, text: str, pair: str | None, mask: list[int]) -> Tokens:
    """Tokenise the input (once: the capture runs on these tokens), refusing more tokens than the server
    takes, any mask for a causal decoder (`refuse_causal_mask`) and bad mask positions (``mask``: the model has
    none; ``mask.1``: that entry is at fault)."""
    _check_length(state, handle, input_length(handle, text, pair), "text")  # before encode's own refusal
    with in_field("text"):
        tokens = encode(handle, text, pair)
    refuse_causal_mask(handle, state.name_of(handle), mask)
    if mask:
        with in_field("mask"):
            tokens = apply_mask(tokens, mask, handle)
    return tokens


def _check_length(state: AppState, handle: ModelHandle, tokens: int, field: str) -> None:
    """Refuse more ``tokens`` than the server takes per input of this model (400 about ``field``: "text" or
    "target"), naming the limit: the model's positions, or the memory the request would need (`token_limits`)."""
    limits = state.limits
    what = "input" if field == "text" else field
    why = too_many_tokens(handle, state.name_of(handle), tokens, what, limits.memory_bytes, limits.max_tokens)
    if why is not None:
        raise ApiError(400, "too_many_tokens", why, field)


def _candidates(cap: Capture, position: int) -> list[Candidate]:
    return [Candidate(token=t, probability=p) for t, p in cap.top_k(position)]


def _tokens_out(tokens: Tokens) -> TokensOut:
    return TokensOut(
        tokens=list(tokens.display),
        word_ids=list(tokens.word_ids),
        special=list(tokens.special),
        segments=list(tokens.segments),
        offsets=[list(o) if o else None for o in tokens.offsets],
        sentence_b_start=tokens.sentence_b_start,
        masked=list(tokens.masked),
    )


def _model_info(name: str, handle: ModelHandle, aliases: list[str]) -> ModelInfo:
    main = handle.stacks[handle.main_stack]
    return ModelInfo(
        name=name,
        aliases=aliases,
        kind=handle.kind,
        architecture=handle.architecture,
        has_lm_head=handle.has_lm_head,
        max_length=handle.max_length,
        layers=main.layers,
        heads=main.heads,
        stacks={k: StackInfo(**vars(v)) for k, v in handle.stacks.items()},
        mask_token=handle.mask_token,
        masking_note=masking_caveat(handle),
        masking_refused=causal_masking_message(name) if handle.kind == "decoder" else None,
        aggregations=[
            AggregationInfo(name=m.name, label=m.label, about=m.about, per_head=m.per_head, norm=m.norm)
            for m in (BY_NAME[name] for name in ("raw", *CARRIED))
        ],
    )
