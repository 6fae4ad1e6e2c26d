"""``attnscope serve``: the explorer app and its JSON API (FastAPI under uvicorn) over configured models and corpora.

Without ``--corpus`` the first model gets the default corpus, UD English EWT dev+test, whose index is
built on first start (with a progress bar) into attnscope's cache and reused afterwards. Every other
served model gets it too, its index built in the background when the app first asks for it
(server/corpus_builds.py), so the server does not wait for it. Deep models' indexes store every eighth
layer and the last (`default_layers`).
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from .cli_checks import check_port
from .cli_common import fail
from .cli_indexes import DEFAULT_CORPUS, default_index_dir, resolve_index_location
from .errors import AttnscopeError, InputError

if TYPE_CHECKING:
    from .server import AppState

LOOPBACK = ("127.0.0.1", "localhost", "::1")


DENSE_LAYERS = 12
"""Models of at most this many layers get every layer in their default corpus index; deeper ones every
`LAYER_STEP`-th layer and the last (SmolLM2's 30: 0, 8, 16, 24, 29): a 30-layer index of every layer is
about 34 KB a token (`attnscope index --layers`)."""
LAYER_STEP = 8


def default_layers(layers: int) -> tuple[int, ...] | None:
    """The layers the default corpus's index stores for a model of ``layers`` layers (None: every layer)."""
    if layers <= DENSE_LAYERS:
        return None
    return tuple(sorted({*range(0, layers, LAYER_STEP), layers - 1}))


def _cached_default(handle: Any, layers: tuple[int, ...] | None, console: Console) -> Any:
    """The cached default-corpus index of ``handle`` if it can be served as it is: None when it is missing or
    stale (built for other weights, damaged, annotated otherwise than the default corpus is now, e.g.
    before it had silver entity types, or storing other layers than ``layers``), saying why on ``console``."""
    from .corpus import default_corpus_annotator
    from .index import Index
    from .index.manifest import IndexFormatError, IndexMismatchError

    directory = default_index_dir(handle.name)
    if not directory.is_dir():
        return None
    try:
        index = Index.open(directory)
        index.verify(handle)
    except (IndexFormatError, IndexMismatchError) as error:
        console.print(f"the cached index {directory} is unusable ({error}); building it again", highlight=False)
        return None
    if index.manifest.annotator != default_corpus_annotator():
        console.print(
            f"the cached index {directory} was annotated as {index.manifest.annotator!r}; the default "
            f"corpus is now {default_corpus_annotator()!r}: building it again",
            highlight=False,
        )
        return None
    wanted = list(range(index.manifest.layers)) if layers is None else sorted(layers)
    if index.manifest.layer_numbers != wanted:
        console.print(f"the cached index {directory} stores other layers; building it again", highlight=False)
        return None
    return index


def _default_corpus(state: AppState, console: Console) -> None:
    """Serve the default corpus for the state's first model, building its index first if it is missing or
    stale (`_cached_default`); offer it to every other model, built on first use (`_offer_default`)."""
    from .cli_corpus import build_with_progress
    from .corpus import open_corpus
    from .files import writing
    from .index import BuildOptions, Index

    handles = list(state.models.values())
    handle = handles[0]
    layers = default_layers(handle.stacks[handle.main_stack].layers)
    index = _cached_default(handle, layers, console)
    directory = default_index_dir(handle.name)
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
            BuildOptions(layers=layers),
            overwrite=directory.exists(),
            console=console,
        )
        index = Index.open(directory)
    state.add_corpus(DEFAULT_CORPUS, index, handle)
    for other in handles[1:]:
        _offer_default(state, other, console)


def _offer_default(state: AppState, handle: Any, console: Console) -> None:
    """Serve the default corpus for ``handle`` (another served model) from its cached index, or offer it to be
    built in the background on first use (server/corpus_builds.py). Encoder-decoders are not indexed."""
    from .corpus import open_corpus
    from .server.corpus_builds import Offer

    if handle.kind == "encoder-decoder" or any(c.model is handle for c in state.corpora.values()):
        return
    layers = default_layers(handle.stacks[handle.main_stack].layers)
    directory = default_index_dir(handle.name)
    name = directory.name  # the cache name, which `attnscope search --index` takes too
    index = _cached_default(handle, layers, console)
    if index is not None:
        state.serve_built_corpus(name, index, handle)
        return
    state.builds.offer(Offer(name, handle, directory, layers, lambda: open_corpus(DEFAULT_CORPUS)))
    console.print(f"the default corpus for {state.name_of(handle)} is indexed when first asked for", highlight=False)


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
    search_workers: int | None = typer.Option(
        None,
        "--search-workers",
        help="Search each --corpus index with this many Ray actors, each holding a group of its shards.",
    ),
    address: str | None = typer.Option(
        None, "--address", help="With --search-workers: the Ray cluster to join ('auto', ray://host:10001)."
    ),
) -> None:
    """Serve the explorer app at / and its JSON API (OpenAPI at /docs) for the given models and corpus indexes."""
    import uvicorn

    from .index.search_workers import ray_cluster, search_workers_option
    from .server import AppState, create_app

    console = Console(stderr=True)
    sock, cluster, state = None, ExitStack(), None
    try:
        if no_corpus and corpus:
            raise InputError("--no-corpus and --corpus contradict each other: give one of them")
        workers = search_workers_option(search_workers, address)
        if workers is not None and not corpus:
            raise InputError("--search-workers searches the --corpus indexes: name at least one with --corpus")
        sock = check_port(host, port)  # bound now, before any model loads; the server listens on it
        if workers is not None:  # one cluster for every index's workers, stopped when the server stops
            cluster.enter_context(ray_cluster(workers))
        first_model = model[0] if model else None
        directories = [resolve_index_location(item, first_model, "--corpus") for item in corpus]
        state = AppState.configure(model or ["default"], directories, search_workers=workers)
        if not corpus and not no_corpus:
            _default_corpus(state, console)
    except AttnscopeError as error:
        if sock is not None:
            sock.close()
        if state is not None:
            state.close()
        cluster.close()
        fail(error)
    if host not in LOOPBACK:
        console.print(
            f"[yellow]warning:[/] binding {escape(host)}: the API is reachable from other machines", highlight=False
        )
    names = ", ".join(state.models) + (f"; corpora: {', '.join(state.corpora)}" if state.corpora else "")
    shown_host = f"[{host}]" if ":" in host else host
    console.print(escape(f"serving {names}\nopen http://{shown_host}:{port}/ (API docs at /docs)"), highlight=False)
    try:
        uvicorn.Server(uvicorn.Config(create_app(state), host=host, port=port, log_level="warning")).run(sockets=[sock])
    finally:
        state.close()
        cluster.close()
