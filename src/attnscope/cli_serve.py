"""``attnscope serve``: the explorer app and its JSON API (FastAPI under uvicorn) over configured models and corpora.

Without ``--corpus`` the first model gets the default corpus, UD English EWT dev+test, whose index is
built on first start (with a progress bar) into attnscope's cache and reused afterwards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from .cli_checks import check_port
from .cli_common import fail
from .cli_indexes import DEFAULT_CORPUS, default_index_dir, resolve_index
from .errors import AttnscopeError, InputError

if TYPE_CHECKING:
    from .server import AppState

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _default_corpus(state: AppState, console: Console) -> None:
    """Serve the default corpus for the state's first model, building its index first if it is missing or stale.

    Stale: built for other weights, damaged, or annotated otherwise than the default corpus is now
    (e.g. before it had silver entity types, or with another version of their pipeline).
    """
    from .cli_corpus import build_with_progress
    from .corpus import default_corpus_annotator, open_corpus
    from .files import writing
    from .index import BuildOptions, Index
    from .index.manifest import IndexFormatError, IndexMismatchError

    handle = next(iter(state.models.values()))
    directory = default_index_dir(handle.name)
    index = None
    if directory.is_dir():
        try:
            index = Index.open(directory)
            index.verify(handle)
        except (IndexFormatError, IndexMismatchError) as error:
            console.print(f"the cached index {directory} is unusable ({error}); building it again", highlight=False)
            index = None
    if index is not None and index.manifest.annotator != default_corpus_annotator():
        console.print(
            f"the cached index {directory} was annotated as {index.manifest.annotator!r}; the default "
            f"corpus is now {default_corpus_annotator()!r}: building it again",
            highlight=False,
        )
        index = None
    if index is None:
        console.print(
            f"building the default corpus index (UD English EWT dev+test, with silver entity types from "
            f"spaCy's en_core_web_sm) for {handle.name} "
            f"into {directory}; this happens once",
            highlight=False,
        )
        with writing(directory.parent):
            directory.parent.mkdir(parents=True, exist_ok=True)
        build_with_progress(
            open_corpus(DEFAULT_CORPUS),
            handle,
            directory,
            BuildOptions(),
            overwrite=directory.exists(),
            console=console,
        )
        index = Index.open(directory)
    state.add_corpus(DEFAULT_CORPUS, index, handle)


def serve(
    model: list[str] = typer.Option(
        [],
        "--model",
        "-m",
        help="A model to serve: hub name, local path, 'default' or 'smollm2' (repeatable; default: 'default').",
    ),
    corpus: list[str] = typer.Option(
        [],
        "--corpus",
        "-c",
        help="An index to search: its directory, or the name of a cached index such as 'ewt' (repeatable; built by "
        "`attnscope index`). Default: UD English EWT for the first model, indexed on first start.",
    ),
    no_corpus: bool = typer.Option(False, "--no-corpus", help="Serve no corpus (attention and predictions only)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind: loopback unless you mean to expose it."),
    port: int = typer.Option(8000, "--port", "-p", help="Port to listen on (1-65535)."),
) -> None:
    """Serve the explorer app at / and its JSON API (OpenAPI at /docs) for the given models and corpus indexes."""
    import uvicorn

    from .server import AppState, create_app

    console = Console(stderr=True)
    sock = None
    try:
        if no_corpus and corpus:
            raise InputError("--no-corpus and --corpus contradict each other: give one of them")
        sock = check_port(host, port)  # bound now, before any model loads; the server listens on it
        first_model = model[0] if model else None
        directories = [resolve_index(item, first_model, "--corpus") for item in corpus]
        state = AppState.configure(model or ["default"], directories)
        if not corpus and not no_corpus:
            _default_corpus(state, console)
    except AttnscopeError as error:
        if sock is not None:
            sock.close()
        fail(error)
    if host not in LOOPBACK:
        console.print(
            f"[yellow]warning:[/] binding {escape(host)}: the API is reachable from other machines", highlight=False
        )
    names = ", ".join(state.models) + (f"; corpora: {', '.join(state.corpora)}" if state.corpora else "")
    shown_host = f"[{host}]" if ":" in host else host
    console.print(escape(f"serving {names}\nopen http://{shown_host}:{port}/ (API docs at /docs)"), highlight=False)
    uvicorn.Server(uvicorn.Config(create_app(state), host=host, port=port, log_level="warning")).run(sockets=[sock])
