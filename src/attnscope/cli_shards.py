"""``attnscope index-shard`` and ``attnscope index-commit``: the build's steps for any scheduler.

``attnscope index CORPUS --out DIR --plan-only`` writes the plan; then each shard is built by
``attnscope index-shard DIR --shard N`` (a Slurm array task, a Kubernetes job...: any machine that
reaches DIR and the corpus files), in any order, at the same time or not, rerun when it failed; then
``attnscope index-commit DIR`` checks every shard and makes the index. DIR is a path or an fsspec URL.
"""

from __future__ import annotations

import typer

from .cli_common import fail
from .errors import AttnscopeError, InputError, count


def _plan(out: str):  # -> (Store, Plan)
    from .index.plan import read_plan
    from .index.storage import Store

    store = Store.at(out)
    if store.in_process:
        raise InputError(f"{out}: a memory:// store lives in one process only, so no plan can be there for this one")
    plan = read_plan(store)
    if plan is None:
        raise InputError(
            f"{store.url} holds no build plan: plan one first with `attnscope index CORPUS --out {out} --plan-only`"
        )
    return store, plan


def _corpus_here(plan) -> None:
    """`InputError` when a corpus file of ``plan`` is not at the path it records (saying what to do)."""
    from pathlib import Path

    for name in plan.corpus.get("source", {}).get("files", []):
        if not Path(name).is_file():
            raise InputError(
                f"the plan's corpus file {name} is not on this machine: if the corpus is elsewhere here, name its "
                "folder with --corpus-root PATH"
            )


def index_shard(
    out: str = typer.Argument(..., help="The build's folder (path or fsspec URL), as planned."),
    shard: int = typer.Option(..., "--shard", min=0, help="The shard to build, 0 to the plan's count - 1."),
    model: str | None = typer.Option(
        None, "--model", "-m", help="How to load the plan's model here (default: the name the plan records)."
    ),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Allow code from the checkpoint."),
    corpus_root: str | None = typer.Option(
        None,
        "--corpus-root",
        help="Where this machine holds the corpus, when not at the plan's paths: the folder standing for the "
        "one the plan's files share (their bytes are checked against the plan's SHA-256).",
    ),
) -> None:
    """Build one shard of a planned index (nothing when it is already built)."""
    from . import load
    from .index.shard import build_shard
    from .index.sources import plan_reader

    try:
        store, plan = _plan(out)
        if shard >= len(plan.shards):
            raise InputError(f"--shard {shard} is not in the plan: it has shards 0-{len(plan.shards) - 1}")
        read = plan_reader(plan, corpus_root)
        if corpus_root is None:
            _corpus_here(plan)
        handle = load(model or plan.model, trust_remote_code=trust_remote_code)
        report = build_shard(store, plan, shard, handle, read)
    except AttnscopeError as error:
        fail(error)
    if report.resumed:
        print(f"shard {shard} of {len(plan.shards)} was already built: {count(report.rows, 'token')}")
    else:
        print(
            f"shard {shard} of {len(plan.shards)}: {count(report.rows, 'token')} from "
            f"{count(report.sentences, 'sentence')} in {report.seconds:.1f} s"
        )


def index_commit(
    out: str = typer.Argument(..., help="The build's folder (path or fsspec URL)."),
    fan_out: bool = typer.Option(
        False, "--fan-out", help="Keep each shard's vector sets apart: searched shard by shard, the top-k merged."
    ),
    merge: str = typer.Option(
        "auto",
        "--merge",
        help="How approximate sets are joined: memory, disk (faiss on-disk lists, memory of one shard) or auto "
        "(disk for a set over 1 GiB).",
    ),
) -> None:
    """Check every shard of a planned index and join them into the index (its manifest written last)."""
    from .index.commit import commit
    from .index.merge import check_merge

    try:
        check_merge(merge)
        store, plan = _plan(out)
        manifest = commit(store, plan, fan_out=fan_out, merge=merge)
    except AttnscopeError as error:
        fail(error)
    size = sum(manifest.files.values())
    print(
        f"{store.url}: {count(manifest.tokens, 'token')} from {count(manifest.sentences, 'sentence')} in "
        f"{count(len(plan.shards), 'shard')}, {size / 1e6:.1f} MB on disk"
    )
