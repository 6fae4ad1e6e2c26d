"""Every failure as the one error shape ``{"error": {"status", "code", "message", "field"}}``.

`ApiError` is what the routes raise; the handlers registered by `install_error_handlers` turn it,
attnscope's own errors, request validation errors and Starlette's HTTP errors (404, 405, ...) into
that shape. An unexpected exception becomes a 500 with no traceback in the response (it is logged).

``field`` follows one convention: the dotted path of the request field at fault as the request names
it, whether it came in the body or the query string (``text``, ``corpus``, ``mask.0``, ``filters.upos``),
down to the list entry when one entry is at fault (``heads.1``: out of range, or a head named twice);
null when the fault is the request as a whole (a malformed body, an unknown route).

A body that cannot be read as JSON at all (not UTF-8, not JSON, empty) is one kind of fault: 400
``malformed_body``, whose message says what is wrong. A body that is JSON of the wrong shape is a 422
``validation_error`` naming the field.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import AttnscopeError, FieldError, NoLanguageModelHeadError
from ..index import IndexFormatError, IndexMismatchError
from ..index.search_workers import SearchWorkerError
from .schemas import ErrorBody, ErrorResponse

log = logging.getLogger("attnscope.server")

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """An error response to send: HTTP ``status``, a stable ``code``, a ``message`` and the request ``field`` at
    fault."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def error_response(
    status: int, code: str, message: str, field: str | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The one error shape as a response."""
    body = ErrorResponse(error=ErrorBody(status=status, code=code, message=message, field=field))
    return JSONResponse(body.model_dump(), status_code=status, headers=dict(headers) if headers else None)


def code_of(error: AttnscopeError) -> str:
    """A stable machine code for an attnscope error."""
    if isinstance(error, NoLanguageModelHeadError):
        return "no_language_model_head"
    if isinstance(error, IndexMismatchError):
        return "index_mismatch"
    if isinstance(error, IndexFormatError):
        return "index_format"
    if isinstance(error, SearchWorkerError):
        return "search_workers_unavailable"
    return "invalid_input"


def status_of(error: AttnscopeError) -> int:
    """The HTTP status for an attnscope error: 503 when the index's search workers are gone (the request was
    fine; retry later), else 400 (the request was at fault)."""
    return 503 if isinstance(error, SearchWorkerError) else 400


@contextmanager
def in_field(field: str | None) -> Iterator[None]:
    """Report any attnscope error raised in the block as a 400 about request field ``field``; a `FieldError`
    names its own field (``heads.1``: the Python API and the requests name their fields alike)."""
    try:
        yield
    except AttnscopeError as error:
        at = error.field if isinstance(error, FieldError) else field
        raise ApiError(status_of(error), code_of(error), str(error), at) from error


_SOURCES = ("body", "query", "path", "header", "cookie")


def _location(loc: tuple[Any, ...]) -> str | None:
    """A validation error's location as a dotted field name, without where it came from (``body``, ``query``)."""
    parts = [str(p) for p in (loc[1:] if loc and loc[0] in _SOURCES else loc)]
    return ".".join(parts) or None


def malformed_body(cause: BaseException | None) -> JSONResponse:
    """The 400 for a body that is not JSON at all: ``cause`` is the decoding error, if known."""
    if isinstance(cause, UnicodeDecodeError):
        what = f"is not valid UTF-8 (byte 0x{cause.object[cause.start]:02x} at offset {cause.start})"
    elif cause is None:
        what = "is empty"
    else:
        what = "is not valid JSON" + (
            f" ({cause.msg} at line {cause.lineno} column {cause.colno})"
            if isinstance(cause, json.JSONDecodeError)
            else ""
        )
    return error_response(
        400,
        "malformed_body",
        f"the request body {what}: send a JSON object, UTF-8 encoded (see /docs for each route's fields)",
    )


def _validation_message(error: dict[str, Any]) -> str:
    where = _location(tuple(error.get("loc", ())))
    if where is None:
        return "the request body must be a JSON object (see /docs for each route's fields)"
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{where}: {message}"


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error response the one shape."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.code, error.message, error.field)

    @app.exception_handler(AttnscopeError)
    async def attnscope_error(_: Request, error: AttnscopeError) -> JSONResponse:
        field = error.field if isinstance(error, FieldError) else None
        return error_response(status_of(error), code_of(error), str(error), field)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        errors = list(error.errors())
        first = errors[0] if errors else {}
        if first.get("type") == "json_invalid":
            return malformed_body(error.__cause__ or ValueError())
        if first.get("type") == "missing" and tuple(first.get("loc", ())) == ("body",):
            return malformed_body(None)
        message = _validation_message(first)
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        return error_response(422, "validation_error", message, _location(tuple(first.get("loc", ()))))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        status = error.status_code
        if status == 400 and isinstance(error.__cause__, ValueError):  # FastAPI could not decode the body
            return malformed_body(error.__cause__)
        if status == 404:
            message = f"no such route: {request.method} {request.url.path}; the API lives under /api (see /docs)"
        elif status == 405:
            allowed = (error.headers or {}).get("Allow", "")
            message = f"method {request.method} is not allowed on {request.url.path}" + (
                f": use {allowed}" if allowed else ""
            )
        else:
            message = str(error.detail)
        return error_response(status, _HTTP_CODES.get(status, "http_error"), message, headers=error.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "the server failed on this request; its log has the details")
