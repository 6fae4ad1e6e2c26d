"""``POST /api/compare``: one text through two served models, compared head by head, as the diff view's payload.

The app's "compare with" control asks for it: model A is the attention view's model, model B the one chosen. The
route checks everything before any model runs, each refusal a 4xx in the one error shape naming its field: an
unknown model (404, ``model`` or ``compare``), a stack the model lacks or cannot show without a target, or two
stacks that cannot be compared (self-attention against cross-attention: 400, ``stack_a`` / ``stack_b``), a text
past either model's limit (400 ``too_many_tokens``, as ``POST /api/attention`` refuses it) or a comparison whose
memory estimate (`compare_memory`) is over what one request may take here. Then both models capture the text
(attention only; the same model twice captures once, and gives zeros), `analysis.comparison.compare` aligns and
measures them (tokens, or words through character spans when the tokenizers differ; text that aligns nowhere is a
400), and `views.diff_payload` makes the payload a standalone diff page carries: both sides' aligned weights as
one byte each, deflated, so the app draws it with the diff view's own modules.

A plain function (run in the threadpool: a capture holds its model's lock).
"""

from __future__ import annotations

import math

from fastapi import APIRouter, Request

from ..analysis.comparison import compare
from ..capture.engine import capture
from ..capture.inputs import Tokens
from ..capture.loading import ModelHandle
from ..capture.result import Capture
from ..errors import count
from ..views.compression import compressed_header
from ..views.diff_payload import diff_payload
from .compare_schemas import CompareRequest, CompareResponse, DiffPayloadOut
from .errors import ApiError, in_field
from .routes import _encode  # the attention route's tokenising, with its length checks: one refusal per limit
from .schemas import ErrorResponse
from .state import AppState

router = APIRouter(prefix="/api", responses={s: {"model": ErrorResponse} for s in (400, 404, 413, 422)})

BYTES_PER_WEIGHT = 15
"""Bytes a comparison holds per attention weight of either side, by its estimate: the capture's float32 weight,
the aligned float32 copy, its float32 square root (the Hellinger bounds), its byte and that byte deflated and as
base64 in the answer (at most 4/3 of a byte, taken as 3 with the JSON around it)."""
BYTES_PER_WEIGHT_B = 8
"""Bytes more per weight of B: the exact divergences keep B's heads as float64 (`head_distance.PairDistances`)."""
_GIB = 2**30


def compare_memory(
    handle_a: ModelHandle, role_a: str, tokens_a: int, handle_b: ModelHandle, role_b: str, tokens_b: int
) -> int:
    """Bytes a comparison of ``tokens_a`` tokens of A's stack ``role_a`` and ``tokens_b`` of B's ``role_b`` holds at
    most, by its estimate (`BYTES_PER_WEIGHT`, `BYTES_PER_WEIGHT_B`); the units are at most the tokens."""
    a, b = handle_a.stacks[role_a], handle_b.stacks[role_b]
    weights_a = a.layers * a.heads * tokens_a * tokens_a
    weights_b = b.layers * b.heads * tokens_b * tokens_b
    return BYTES_PER_WEIGHT * (weights_a + weights_b) + BYTES_PER_WEIGHT_B * weights_b


def _model(state: AppState, name: str, field: str) -> ModelHandle:
    """The served model ``name``; the 404 of `AppState.model`, naming request field ``field``."""
    try:
        return state.model(name)
    except ApiError as error:
        error.field = field
        raise


def _stack(handle: ModelHandle, name: str, asked: str | None, field: str) -> str:
    """The stack compared on one side: ``asked``, or the model's self-attention over the text; refused (400, naming
    ``field``) when the model lacks it or needs a target for it (the comparison takes none)."""
    role = asked or handle.main_stack
    if role not in handle.stacks:
        raise ApiError(
            400,
            "no_such_stack",
            f"model {name!r} has no {role!r} stack: its stacks are {', '.join(handle.stacks)}; "
            f"leave {field} out to compare its self-attention over the text",
            field,
        )
    if handle.kind == "encoder-decoder" and role != "encoder":
        raise ApiError(
            400,
            "needs_target",
            f"model {name!r} is an encoder-decoder: its {role!r} stack reads a target text (the decoder's input), "
            f"which a comparison does not take; compare its 'encoder' stack (leave {field} out)",
            field,
        )
    return role


def _check_stacks(role_a: str, role_b: str) -> None:
    """Refuse two stacks the comparison cannot set against each other (400, ``stack_b``)."""
    if (role_a == "cross") != (role_b == "cross"):
        raise ApiError(
            400,
            "incompatible_stacks",
            f"stack {role_a!r} of A and stack {role_b!r} of B cannot be compared: cross-attention (decoder queries "
            "over encoder keys) is only comparable with cross-attention; compare two self-attention stacks",
            "stack_b",
        )


def _check_memory(state: AppState, names: tuple[str, str], sides: tuple[tuple[ModelHandle, str, int], ...]) -> None:
    """Refuse a comparison whose `compare_memory` estimate is over what one request may take here (400
    ``too_many_tokens`` about ``text``), naming the estimate and about how many tokens of A would fit."""
    (handle_a, role_a, tokens_a), (handle_b, role_b, tokens_b) = sides
    needed = compare_memory(handle_a, role_a, tokens_a, handle_b, role_b, tokens_b)
    limit = state.limits.memory_bytes
    if needed <= limit:
        return
    fits = max(1, math.floor(tokens_a * math.sqrt(limit / needed)))  # the estimate grows with the square of the tokens
    raise ApiError(
        400,
        "too_many_tokens",
        f"comparing {count(tokens_a, 'token')} of model {names[0]!r} with {count(tokens_b, 'token')} of model "
        f"{names[1]!r} would need about {needed / _GIB:.2f} GiB, over the memory one request may take here "
        f"({limit / _GIB:.1f} GiB): shorten the text to about {count(fits, 'token')} of model {names[0]!r}",
        "text",
    )


def _check_level(level: str, tokens_a: Tokens, tokens_b: Tokens) -> None:
    """Refuse level "token" for two tokenisations that differ (400, ``level``): their tokens are not one sequence."""
    if level == "token" and (list(tokens_a.ids) != list(tokens_b.ids) or tokens_a.offsets != tokens_b.offsets):
        raise ApiError(
            400,
            "tokens_differ",
            f"level 'token' needs one tokenisation in both models, but A makes {count(len(tokens_a), 'token')} of the "
            f"text and B {count(len(tokens_b), 'token')}{'' if len(tokens_a) != len(tokens_b) else ' with other ids'}: "
            "compare at level 'word' (or 'auto')",
            "level",
        )


def _captured(handle: ModelHandle, body: CompareRequest, tokens: Tokens) -> Capture:
    """The text's attention through ``handle``, every weight (eager: the comparison reads them all, and
    `compare_memory` has bounded them); no predictions."""
    with in_field(None):
        return capture(
            handle,
            body.text,
            body.text_pair,
            fields=["attentions"],
            top_k=0,
            warn=False,
            tokens=tokens,
            attention="eager",
        )


@router.post(
    "/compare",
    response_model=CompareResponse,
    summary="One text through two models, compared head by head: A, B, A − B and per-head distances (diff view)",
)
def compare_route(body: CompareRequest, request: Request) -> CompareResponse:
    state: AppState = request.app.state.attnscope
    handle_a, handle_b = _model(state, body.model, "model"), _model(state, body.compare, "compare")
    name_a, name_b = state.name_of(handle_a), state.name_of(handle_b)
    _check_stacks(body.stack_a or handle_a.main_stack, body.stack_b or handle_b.main_stack)
    role_a = _stack(handle_a, name_a, body.stack_a, "stack_a")
    role_b = _stack(handle_b, name_b, body.stack_b, "stack_b")
    tokens_a = _encode(state, handle_a, body.text, body.text_pair, [])
    tokens_b = tokens_a if handle_b is handle_a else _encode(state, handle_b, body.text, body.text_pair, [])
    _check_memory(state, (name_a, name_b), ((handle_a, role_a, len(tokens_a)), (handle_b, role_b, len(tokens_b))))
    _check_level(body.level, tokens_a, tokens_b)
    cap_a = _captured(handle_a, body, tokens_a)
    cap_b = cap_a if handle_b is handle_a else _captured(handle_b, body, tokens_b)
    with in_field("text"):  # words that align nowhere, rows with no weight left: the text is at fault
        comparison = compare(cap_a, cap_b, level=body.level, stack_a=role_a, stack_b=role_b)
    comparison.model_a, comparison.model_b = name_a, name_b  # as served: never a path of this machine
    payload = diff_payload(comparison)
    return CompareResponse(
        model=name_a,
        compare=name_b,
        level=comparison.alignment.level,
        payload=DiffPayloadOut(header=compressed_header(payload.header), layers=payload.layers_base64()),
    )
