"""`create_app`: the FastAPI application over an `AppState`.

Same-origin only (no CORS middleware, so no ``Access-Control-Allow-Origin`` is ever sent); request
bodies over the state's limit are refused with 413 before they are parsed; every error response
has the one shape of `schemas.ErrorResponse`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from .build_routes import router as builds
from .compare_routes import router as compare_router
from .decoder_routes import router as decoder_router
from .errors import error_response, install_error_handlers
from .long_routes import router as long_router
from .pages import router as pages
from .routes import router
from .state import AppState


class BodyLimit:
    """ASGI middleware: answer 413 (the one error shape) to a request whose body exceeds ``max_bytes``.

    A declared ``Content-Length`` over the limit is refused before reading; otherwise the body is
    read (at most ``max_bytes`` of it) before the app sees it, so a body streamed without a length
    is refused as soon as it passes the limit, and the app is handed the buffered body.
    """

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "payload_too_large", f"the request body is over {self.max_bytes:,} bytes: send a shorter text"
        )
        await response(scope, receive, send)


def create_app(state: AppState) -> FastAPI:
    """The attnscope API over ``state``'s models and corpora; serve it with uvicorn."""
    # FastAPIOffline serves /docs with Swagger UI from its own package files instead of a CDN.
    app = FastAPIOffline(
        title="attnscope",
        version=__version__,
        static_url="/docs-assets",
        redoc_url=None,
        description="What Transformer models attend to: attention, predictions and corpus search.",
    )
    app.state.attnscope = state
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(builds)
    app.include_router(decoder_router)
    app.include_router(compare_router)
    app.include_router(long_router)
    app.include_router(pages)
    app.add_middleware(BodyLimit, max_bytes=state.limits.max_body_bytes)
    _name_the_served(app, state)
    return app


def _name_the_served(app: FastAPI, state: AppState) -> None:
    """List the served model and corpus names as enums in the OpenAPI schema (docs and fuzzers see them).

    Requests are still checked by the routes: a name outside the list gets the 404 of `AppState.model`.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        components = schema.get("components", {}).get("schemas", {})
        models = sorted({*state.models, *state.listed_aliases()})
        for name in ("AttentionRequest", "PredictionsRequest", "ContinueRequest", "CompareRequest"):
            if name in components:
                components[name]["properties"]["model"]["enum"] = models
        if "CompareRequest" in components:
            components["CompareRequest"]["properties"]["compare"]["enum"] = models
        if state.corpora and "SearchRequest" in components:
            components["SearchRequest"]["properties"]["corpus"]["enum"] = sorted(state.corpora)
        for parameter in schema.get("paths", {}).get("/api/atlas", {}).get("get", {}).get("parameters", []):
            if parameter.get("name") == "corpus" and state.corpora:
                parameter["schema"]["enum"] = sorted(state.corpora)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
