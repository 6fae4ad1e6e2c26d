"""``attnscope atlas --model A --compare B``: two models' head atlases over one corpus, compared score by
score (`atlas.compare`); printed (the heads that changed most per score, or each model's best head when
the models differ in shape) and written as ``atlas-compare.json``, ``atlas-compare.parquet`` and an
interactive ``atlas-compare.html``. B is a model, or an atlas saved before (``atlas.json`` or its directory)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import InputError, count

DEFAULT_OUT = Path("attnscope-atlas")


@dataclass(frozen=True)
class CompareRequest:
    """What `attnscope atlas` was asked, as far as a comparison needs it (see cli_atlas.atlas's options)."""

    corpus: str | None
    index: Path | None
    model: str | None
    compare: str
    out: Path | None
    relations: tuple[str, ...]
    spacy: str | None
    batch_tokens: int
    long: str
    trust_remote_code: bool
    probes: tuple[str, ...] | None


def saved_atlas(value: str) -> Path | None:
    """The ``atlas.json`` that ``--compare`` names (the file, or a directory holding one); None for a model."""
    from .atlas import ATLAS_JSON

    path = Path(value).expanduser()
    if path.is_file() and path.suffix == ".json":
        return path
    if path.is_dir() and (path / ATLAS_JSON).is_file():
        return path / ATLAS_JSON
    return None


def wanted_scores(request: CompareRequest) -> list[str] | None:
    """The scores both atlases must have: those the options named (--probes, --relation), with every
    pattern score; None when none were named (every score both have is compared)."""
    from .analysis.relations import DIRECTIONS
    from .atlas import SCORES

    if not request.relations and not request.probes:
        return None
    return [
        *SCORES,
        *(f"probe_{name}" for name in request.probes or ()),
        *(f"{name} {direction}" for name in request.relations for direction in DIRECTIONS),
    ]


def both_atlases(request: CompareRequest, progress: Callable[[int, int], None]) -> tuple[Any, Any]:
    """A's atlas and B's: computed on the corpus, or read (or computed and cached) from each model's index;
    B read from its ``atlas.json`` when ``--compare`` names one. Every name is resolved and every model
    loaded before the first atlas is computed, so a bad one fails at once."""
    from .atlas import read_atlas

    saved = saved_atlas(request.compare)
    b_atlas = read_atlas(saved) if saved is not None else None
    if request.index is not None:
        return _index_atlases(request, b_atlas, progress)
    from .atlas import compute_atlas
    from .corpus import open_corpus

    source = open_corpus(str(request.corpus), spacy_pipeline=request.spacy)
    if b_atlas is not None and b_atlas.corpus_checksum != source.checksum:
        raise InputError(
            f"the atlases would be computed on different corpora: --compare {saved} is B's atlas ({b_atlas.model!r}) "
            f"on {b_atlas.corpus!r} (checksum {b_atlas.corpus_checksum[:12]}), --corpus is {source.name!r} (checksum "
            f"{source.checksum[:12]}); compute both on the same corpus"
        )
    handles = [_load(request.model or "default", request)]
    if b_atlas is None:
        handles.append(_load(request.compare, request))
    options: dict[str, Any] = dict(
        relations=list(request.relations) or None,
        batch_tokens=request.batch_tokens,
        long=request.long,
        progress=progress,
        probes=request.probes,
    )
    atlases = [compute_atlas(handle, source, **options) for handle in handles]
    return atlases[0], b_atlas if b_atlas is not None else atlases[1]


def _load(model: str, request: CompareRequest) -> Any:
    from . import load

    return load(model, trust_remote_code=request.trust_remote_code)


def _index_atlases(request: CompareRequest, b_atlas: Any, progress: Callable[[int, int], None]) -> tuple[Any, Any]:
    """With ``--index``: A's atlas of its index and B's of B's own cached index of the same corpus (found by
    the corpus's cache name), each read from the index's cache or computed and cached there."""
    from .atlas import atlas_for_index
    from .cli_indexes import resolve_index
    from .index import Index

    assert request.index is not None
    directory = resolve_index(request.index, request.model)
    opened = Index.open(directory)
    handle = _load(request.model or opened.manifest.model, request)
    pairs = [(opened, handle)]
    if b_atlas is None:
        other = resolve_index(request.index, request.compare, option="--compare")
        if other.resolve() == directory.resolve():
            raise InputError(
                f"--compare {request.compare}: the index {directory} holds one model's tokens ({handle.name!r}); "
                f"give --index as a cached corpus name (e.g. ewt) so each model's own index is found, or --corpus, "
                f"or B's atlas.json"
            )
        pairs.append((Index.open(other), _load(request.compare, request)))
    atlases = [
        atlas_for_index(
            index,
            model,
            relations=list(request.relations) or None,
            batch_tokens=request.batch_tokens,
            progress=progress,
            probes=request.probes,
        )
        for index, model in pairs
    ]
    return atlases[0], b_atlas if b_atlas is not None else atlases[1]


def run_compare(request: CompareRequest, progress: Callable[[int, int], None]) -> tuple[Any, list[Path]]:
    """Compute both atlases, compare them and write the files (nothing is written if any step fails)."""
    from .atlas import compare_atlases, write_comparison
    from .atlas.compare import COMPARE_HTML
    from .views.atlas_compare import save_atlas_compare_page

    target = request.out or DEFAULT_OUT
    if target.exists() and not target.is_dir():
        raise InputError(f"--out {target} is a file; name a directory for atlas-compare.json, .parquet and .html")
    a, b = both_atlases(request, progress)
    comparison = compare_atlases(a, b, wanted_scores(request))
    written = list(write_comparison(comparison, target))
    written.append(save_atlas_compare_page(target / COMPARE_HTML, comparison))
    return comparison, written


def main(
    request: CompareRequest,
    top: int,
    min_arcs: int,
    as_json: bool,
    progress_bar: Callable[[Console], AbstractContextManager[Callable[[int, int], None]]],
    titles: Mapping[str, str],
) -> None:
    """The command: errors on stderr with exit status 2 (`cli_common.fail`), nothing written. ``progress_bar``
    and ``titles`` (what the patterns are called) are `attnscope atlas`'s own, passed in by cli_atlas.py."""
    from .cli_common import fail
    from .errors import AttnscopeError

    started = time.perf_counter()
    try:
        if (request.corpus is None) == (request.index is None):
            raise InputError(
                "name a corpus (--corpus ewt, a .conllu file or directory, a .txt file) or an index "
                "(--index DIR), one of the two"
            )
        with progress_bar(Console(stderr=True)) as progress:
            comparison, written = run_compare(request, progress)
    except AttnscopeError as error:
        fail(error)
    except OSError as error:
        fail(AttnscopeError(f"{error.filename or request.out}: {error.strerror or error}"))
    if as_json:
        sys.stdout.write(json.dumps(comparison.to_dict(), ensure_ascii=False) + "\n")
        return
    print_comparison(comparison, top, 0 if request.relations else min_arcs, written, started, titles)


def _label(key: str, titles: Mapping[str, str]) -> str:
    if key.startswith("probe_"):
        return f"probe: {key.removeprefix('probe_')}"
    if " " in key:
        from .atlas import ARROWS

        relation, direction = key.split(" ", 1)
        return f"{relation} {ARROWS[direction]}"
    return titles.get(key, key)


def print_comparison(
    comparison: Any, top: int, min_arcs: int, written: Sequence[Path], started: float, titles: Mapping[str, str]
) -> None:
    """The comparison on stdout: what was compared, then per score the most changed heads (same shapes) or
    each model's best head (different shapes); relations with fewer than ``min_arcs`` arcs left out."""
    console = Console(highlight=False, soft_wrap=True)
    a, b = comparison.a, comparison.b
    console.print(
        f"[bold]{escape(a.model)}[/] (A, {a.layers} × {a.heads} heads) against [bold]{escape(b.model)}[/] "
        f"(B, {b.layers} × {b.heads} heads) on [bold]{escape(a.corpus)}[/]: {count(a.sentences, 'sentence')}"
    )
    if comparison.left_out:
        console.print(f"[yellow]notice:[/] only one atlas has {escape(', '.join(comparison.left_out))}: not compared")
    shown = [s for s in comparison.scores if s.arcs is None or s.arcs >= min_arcs]
    if comparison.same_shape:
        table = Table(
            title="Most changed heads per score: layer-head A → B (A − B)", title_justify="left", box=box.SIMPLE_HEAD
        )
        table.add_column("score")
        table.add_column("most changed heads")
        for score in shown:
            changes = [c for c in score.most_changed(top) if c.difference != 0]
            cells = ", ".join(f"{c.layer}-{c.head} {c.a:.2f} → {c.b:.2f} ({c.difference:+.2f})" for c in changes)
            table.add_row(escape(_label(score.key, titles)), cells or "[dim]no head changed[/]")
    else:
        table = Table(
            title="The models differ in shape: the best head per score of each",
            title_justify="left",
            box=box.SIMPLE_HEAD,
        )
        for name in ("score", "A: best head", "B: best head"):
            table.add_column(name)
        for score in shown:
            best = [f"{layer}-{head} ({value:.2f})" for layer, head, value in (score.best("a"), score.best("b"))]
            table.add_row(escape(_label(score.key, titles)), *best)
    console.print(table)
    hidden = len(comparison.scores) - len(shown)
    if hidden:
        console.print(f"[dim]{count(hidden, 'score')} of rarer relations left out here (--min-arcs 0 prints them)[/]")
    names = ", ".join(str(path) for path in written)
    console.print(f"\nwrote {names} ({time.perf_counter() - started:.1f} s in all); open {written[-1]} in any browser")
