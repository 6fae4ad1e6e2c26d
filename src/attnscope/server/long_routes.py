"""Long inputs in the app: ``POST /api/attention``'s long-context payload, and the routes its view asks layers with.

An input past `token_limits.DENSE_VIEW_BYTES` is captured on demand (queries and keys, never the weights of a
whole stack: its `LazyAttention` refuses anything larger than ``Limits.max_dense_bytes``) and answered with the
long head view's payload (`views.long_payload`: each query's `DEFAULT_TOP_K` strongest keys per head) without
any layer in it, and ``long_view`` naming the id its layers are asked for by:

- ``GET /api/attention/{id}/layers/{role}/{layer}``: one layer's top keys as the payload's sparse bytes
  (``application/octet-stream``, `TopKeysPayload.layer_bytes`), the layers beside it then computed ahead;
- ``POST /api/attention/{id}/rows``: rows ``start:stop`` of a layer, every head (`TopKeysPayload.rows_bytes`),
  answered in milliseconds while the whole layer is computed;
- ``POST /api/attention/{id}/weights``: the model's exact float32 weights of chosen (head, query, key) cells
  (`TopKeysPayload.exact_weights`), what a hover shows.

An id no longer kept (`long_store.LongViews` keeps the last few inputs) gets a 404 saying to ask for the input's
attention again. Aggregations that need every weight (the mean of heads, rollout, value norms) are refused at this
length with the reason (`views.long_payload.NOT_OFFERED`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field

from ..capture.engine import capture
from ..capture.inputs import Tokens
from ..capture.lazy import LazyAttention
from ..capture.loading import ModelHandle
from ..capture.result import Capture
from ..errors import check_range, count
from ..views.long_payload import DEFAULT_TOP_K, MAX_CELLS, NOT_OFFERED, TopKeysPayload, capture_payload
from .errors import ApiError, in_field
from .long_store import LongView, long_view_id
from .schemas import AttentionRequest, ErrorResponse, LongViewInfo, PayloadOut
from .schemas import Request as Body
from .state import AppState
from .token_limits import DENSE_VIEW_BYTES

_ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorResponse} for status in (400, 404, 422)}
router = APIRouter(prefix="/api/attention", responses=_ERRORS)


class RowsRequest(Body):
    """``POST /api/attention/{id}/rows``: rows ``start:stop`` (query positions) of one layer of a stack."""

    role: str
    layer: int = Field(ge=0)
    start: int = Field(ge=0)
    stop: int = Field(ge=1)


class WeightsRequest(Body):
    """``POST /api/attention/{id}/weights``: exact weights of ``cells``, each [head, query, key], of one layer."""

    role: str
    layer: int = Field(ge=0)
    cells: list[list[int]] = Field(min_length=1, max_length=MAX_CELLS)


class WeightsResponse(Body):
    """The float32 weights of the cells asked for, in their order (a float32 is exactly a JSON double)."""

    weights: list[float]


def long_attention(
    state: AppState, handle: ModelHandle, name: str, body: AttentionRequest, tokens: Tokens, top_k: int
) -> tuple[Capture, PayloadOut, LongViewInfo]:
    """The capture, payload (no layers) and `LongViewInfo` of a long input: kept from an earlier request of the same
    input, or captured on demand now (``top_k`` predictions per position) and kept. A 400 about ``aggregations``
    when it names one that needs every weight."""
    refuse_aggregations_at_length(body.aggregations, len(tokens))
    ident = long_view_id(name, body.text, body.text_pair, body.mask)
    view = state.long_views.get(ident)
    if view is None:
        with in_field(None):
            cap = capture(
                handle,
                body.text,
                body.text_pair,
                mask=body.mask,
                fields=["attentions"],
                top_k=top_k,
                warn=False,
                tokens=tokens,
                attention="on_demand",
            )
        return keep_long_view(state, ident, cap)
    return view.capture, *_answer(view)


def refuse_aggregations_at_length(aggregations: list[str], tokens: int) -> None:
    """A 400 about ``aggregations`` when it names one that needs every weight of an input of ``tokens`` tokens."""
    if aggregations:
        method = aggregations[0]
        raise ApiError(
            400,
            "not_offered_at_length",
            f"aggregations {method!r} is not offered for an input of {count(tokens, 'token')}, which the "
            f"long-context view draws as each query's strongest keys: {NOT_OFFERED.get(method, '')}",
            "aggregations.0",
        )


def keep_long_view(state: AppState, ident: str, cap: Capture) -> tuple[Capture, PayloadOut, LongViewInfo]:
    """Keep ``cap`` (a long input's capture: POST /api/attention's, or a continuation's) under ``ident`` for its
    layers to be asked for, its stacks never materialised past ``Limits.max_dense_bytes``; the capture, the payload
    without layers and its `LongViewInfo`."""
    for stack in cap.stacks.values():
        if isinstance(stack.attentions, LazyAttention):
            stack.attentions.max_dense_bytes = state.limits.max_dense_bytes
    payload = capture_payload(cap, top_k=DEFAULT_TOP_K)
    assert isinstance(payload, TopKeysPayload)  # top_k given: always the top keys
    view = state.long_views.add(LongView(ident, cap, payload))
    return view.capture, *_answer(view)


def _answer(view: LongView) -> tuple[PayloadOut, LongViewInfo]:
    tokens = len(view.capture.tokens)
    info = LongViewInfo(
        id=view.id,
        top_k=view.payload.top_k,
        note=f"an input of {count(tokens, 'token')} is drawn as each query's "
        f"{count(view.payload.top_k, 'strongest key')} per head, one layer at a time: every weight of every layer "
        f"would be over {DENSE_VIEW_BYTES // 2**20} MiB",
    )
    return PayloadOut(header=view.payload.header(), layers={}), info


def _view(request: Request, ident: str) -> TopKeysPayload:
    view = request.app.state.attnscope.long_views.get(ident)
    if view is None:
        raise ApiError(
            404,
            "unknown_long_view",
            f"no long input {ident!r:.40} is kept here (the server keeps the last few long inputs): ask for its "
            "attention again (POST /api/attention)",
            "id",
        )
    return view.payload


def _check_layer(payload: TopKeysPayload, role: str, layer: int) -> None:
    if role not in payload.stacks:
        roles = ", ".join(payload.stacks)
        raise ApiError(400, "invalid_input", f"role must be one of {roles}, got {role!r:.40}", "role")
    with in_field("layer"):
        check_range("layer", layer, payload.kept(role).shape[0], f"the {role} stack of this input")


@router.get(
    "/{ident}/layers/{role}/{layer}",
    response_class=Response,
    summary="One layer of a long input: each query's strongest keys per head, as the payload's sparse bytes",
)
def long_layer(ident: str, role: str, layer: int, request: Request) -> Response:
    payload = _view(request, ident)
    _check_layer(payload, role, layer)
    data = payload.layer_bytes(role, layer)
    payload.prefetch(role, [layer + 1, layer - 1])
    return Response(data, media_type="application/octet-stream")


@router.post(
    "/{ident}/rows",
    response_class=Response,
    summary="Rows of one layer of a long input (every head), as sparse bytes, while the whole layer is computed",
)
def long_rows(ident: str, body: RowsRequest, request: Request) -> Response:
    payload = _view(request, ident)
    _check_layer(payload, body.role, body.layer)
    with in_field(None):
        data = payload.rows_bytes(body.role, body.layer, body.start, body.stop)
    return Response(data, media_type="application/octet-stream")


@router.post(
    "/{ident}/weights",
    response_model=WeightsResponse,
    summary="The exact float32 weights of chosen (head, query, key) cells of a long input's layer",
)
def long_weights(ident: str, body: WeightsRequest, request: Request) -> WeightsResponse:
    payload = _view(request, ident)
    _check_layer(payload, body.role, body.layer)
    with in_field("cells"):
        weights = payload.exact_weights(body.role, body.layer, body.cells)
    return WeightsResponse(weights=weights)
