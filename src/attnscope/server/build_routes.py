"""``GET /api/corpus-build``: a served model's corpus index, built on first use in the background (corpus_builds.py).

Its own router, so that the routes of the other features stay in routes.py.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi import Query as QueryParameter
from pydantic import BaseModel, Field

from .schemas import ErrorResponse
from .state import AppState

_ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorResponse} for status in (400, 404, 422)}
router = APIRouter(prefix="/api", responses=_ERRORS)


class CorpusBuildResponse(BaseModel):
    """Where ``model``'s corpus index built on first use stands.

    ``status``: "none" (this server builds no corpus for the model: it has its corpora already, or serves
    none; ``message`` says which), "reading" (the corpus is being read and annotated), "indexing" (``done``
    of ``total`` tokens so far), "ready" (served as ``corpus``: see GET /api/corpora) or "failed"
    (``message`` says why; the next request starts over). ``layers``: the layers the index stores (a search
    works at these only); null for every layer."""

    model: str
    status: Literal["none", "reading", "indexing", "ready", "failed"]
    corpus: str | None = None
    layers: list[int] | None = None
    done: int = Field(default=0, ge=0)
    total: int = Field(default=0, ge=0)
    message: str | None = None


@router.get(
    "/corpus-build",
    response_model=CorpusBuildResponse,
    summary="A model's corpus index, built on first use in the background: starts it, says how far it is",
)
def corpus_build(
    request: Request, model: str = QueryParameter(description="A served model's name (see GET /api/models).")
) -> CorpusBuildResponse:
    state: AppState = request.app.state.attnscope
    handle = state.model(model)
    name = state.name_of(handle)
    job = state.builds.status(handle, state.serve_built_corpus)
    if job is None:
        own = [c for c, served in state.corpora.items() if served.model is handle]
        why = f"it is served with corpus {', '.join(own)}" if own else "this server builds no corpus for it"
        return CorpusBuildResponse(model=name, status="none", message=f"no corpus is built for model {name!r}: {why}")
    stage = "reading" if job.stage == "waiting" else job.stage
    return CorpusBuildResponse(
        model=name,
        status=stage,
        corpus=job.corpus,
        layers=job.layers,
        done=job.done,
        total=job.total,
        message=job.error,
    )
