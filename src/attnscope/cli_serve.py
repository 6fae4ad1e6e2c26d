"""``attnscope serve``: the explorer app's JSON API (FastAPI under uvicorn) over configured models and corpora."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from .cli import _fail, app
from .errors import AttnscopeError, InputError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@app.command()
def serve(
    model: list[str] = typer.Option([], "--model", "-m", help="A model to serve (repeatable; default: the default model)."),
    corpus: list[Path] = typer.Option([], "--corpus", "-c", help="An index directory to search (repeatable; built by `attnscope index`)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind: loopback unless you mean to expose it."),
    port: int = typer.Option(8000, "--port", "-p", help="Port to listen on (1-65535)."),
) -> None:
    """Serve the JSON API (OpenAPI at /docs) for the given models and corpus indexes; nothing else is loaded."""
    import uvicorn

    from .server import AppState, create_app

    console = Console(stderr=True)
    try:
        if not 1 <= port <= 65535:
            raise InputError(f"port {port} is out of range: use 1-65535")
        for directory in corpus:
            if not directory.is_dir():
                raise InputError(f"--corpus {directory}: no such index directory (build one with `attnscope index`)")
        state = AppState.configure(model or ["default"], corpus)
    except AttnscopeError as error:
        _fail(error)
        return
    if host not in LOOPBACK:
        console.print(f"[yellow]warning:[/] binding {host}: the API is reachable from other machines", highlight=False)
    names = ", ".join(state.models) + (f"; corpora: {', '.join(state.corpora)}" if state.corpora else "")
    console.print(f"serving {names} on http://{host}:{port} (API docs at /docs)", highlight=False)
    uvicorn.run(create_app(state), host=host, port=port, log_level="info")
