"""The ``attnscope`` command line, assembled here: ``inspect`` and ``view`` are defined in this module; ``index``
and ``search`` in cli_corpus.py, ``index-shard`` and ``index-commit`` in cli_shards.py, ``serve`` in cli_serve.py,
``atlas`` in cli_atlas.py, ``diff`` in cli_diff.py.
Those modules define plain functions and import only what they use (`cli_common.fail`, ...); this one registers
them on `app`, so nothing imports cli.py back."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from .cli_atlas import atlas
from .cli_checks import check_layer_and_heads
from .cli_common import fail, note_masking
from .cli_corpus import index, search
from .cli_diff import diff
from .cli_report import inspect_report, print_report
from .cli_serve import serve
from .cli_shards import index_commit, index_shard
from .errors import AttnscopeError, InputError

DEFAULT_TEXT = "The girl ran to a local pub to escape the din of her city."


def _plain_flags(params: list[Any]) -> list[Any]:
    """Show on/off flags in ``--help`` as bare flags (``--json``), not as options taking a value: typer
    0.29 labels every flag ``<bool>``, as if ``--json <bool>`` were the way to write it."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class _Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_flags(super().get_params(ctx))


class _Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_flags(super().get_params(ctx))


class _Typer(typer.Typer):
    """A `typer.Typer` whose commands render flags plainly in ``--help`` (see `_plain_flags`)."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", _Command)
        return super().command(*args, **kwargs)


app = _Typer(
    help="attnscope: see what a Transformer attends to and what its representations encode.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=_Group,
)


@app.callback()
def main() -> None:
    """attnscope: capture, view and search what a Transformer's attention heads do."""


@app.command()
def inspect(
    text: str = typer.Argument(DEFAULT_TEXT, help="The text to run through the model."),
    model: str = typer.Option(
        "default", "--model", "-m", help="Hub name, local path, 'default' or 'smollm2' (built in)."
    ),
    pair: str | None = typer.Option(None, "--pair", help="A second text (sentence B)."),
    target: str | None = typer.Option(None, "--target", help="Decoder input for encoder-decoder models."),
    mask: list[int] = typer.Option([], "--mask", help="Token position to mask (repeatable, 0-indexed)."),
    top_k: int = typer.Option(
        5,
        "--top-k",
        min=1,
        max=50,
        help="Predictions to show: at masked positions, or of the next token (decoders, encoder-decoders).",
    ),
    truncate: bool = typer.Option(False, "--truncate", help="Cut inputs longer than the model's maximum."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Allow code from the checkpoint."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Show the tokens, the model's shape and each head's dominant attention pattern."""
    from . import capture as run_capture
    from . import load
    from .analysis import pattern_scores

    try:
        check_layer_and_heads(model, None, (), trust_remote_code, target=target)
        handle = load(model, trust_remote_code=trust_remote_code)
        cap = run_capture(
            handle,
            text,
            pair,
            target=target,
            mask=mask,
            truncate=truncate,
            top_k=top_k,
            warn=False,
            fields=["attentions", "allowed"],
        )
    except AttnscopeError as error:
        fail(error)
    if cap.masking_caveat:
        note_masking(handle)
    patterns = {}
    for role, stack in cap.stacks.items():
        if role == "cross":
            continue
        tokens = cap.tokens if role == "encoder" else (cap.decoder_tokens or cap.tokens)
        patterns[role] = pattern_scores(stack.require("attentions"), tokens.special, allowed=stack.allowed)
    report = inspect_report(handle, cap, patterns)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        return
    print_report(report)


VIEWS = ("head", "model", "neuron")


@app.command()
def view(
    text: str = typer.Argument(DEFAULT_TEXT, help="The text to run through the model."),
    kind: str = typer.Option("head", "--view", "-v", help="Which view: head, model or neuron."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="HTML file to write (default: attnscope-<view>-view.html)."
    ),
    model: str = typer.Option(
        "default", "--model", "-m", help="Hub name, local path, 'default' or 'smollm2' (built in)."
    ),
    pair: str | None = typer.Option(None, "--pair", help="A second text (sentence B)."),
    target: str | None = typer.Option(None, "--target", help="Decoder input for encoder-decoder models."),
    stack: str | None = typer.Option(
        None,
        "--stack",
        help="Stack shown first: encoder, decoder or cross (encoder-decoders have all three; default: the stack "
        "that reads the text).",
    ),
    layer: int | None = typer.Option(None, "--layer", help="Layer shown first (head and neuron views)."),
    heads: list[int] = typer.Option(
        [], "--head", help="Head to show (repeatable; default all; the neuron view takes one)."
    ),
    truncate: bool = typer.Option(False, "--truncate", help="Cut inputs longer than the model's maximum."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Allow code from the checkpoint."),
) -> None:
    """Write a view of the text's attention as one self-contained HTML file (works offline)."""
    import attnscope

    from .files import check_writable_target

    try:
        _check_view_options(kind, layer, heads)
        target_path = check_writable_target(out or Path(f"attnscope-{kind}-view.html"))
        check_layer_and_heads(model, layer, heads, trust_remote_code, stack=stack, target=target)
        handle = attnscope.load(model, trust_remote_code=trust_remote_code)
        fields = "all" if kind == "neuron" else ["attentions"]
        cap = attnscope.capture(handle, text, pair, target=target, truncate=truncate, fields=fields)
        options: dict[str, Any] = {"stack": stack, "layer": layer, "heads": heads or None}
        if kind == "model":
            options = {"stack": stack, "include_heads": heads or None}
        elif kind == "neuron":
            options = {"stack": stack, "layer": layer, "head": heads[0] if heads else None}
        written = getattr(attnscope, f"{kind}_view")(cap, **options).save(target_path)
    except AttnscopeError as error:
        fail(error)
    print(f"{written} ({written.stat().st_size:,} bytes): open it in any browser, no network needed")


def _check_view_options(kind: str, layer: int | None, heads: list[int]) -> None:
    """Refuse a view name that does not exist, and options the chosen view would not use."""
    if kind not in VIEWS:
        raise InputError(f"--view must be one of {', '.join(VIEWS)}, got {kind!r}")
    if kind == "neuron" and len(heads) > 1:
        raise InputError(
            f"the neuron view shows one head at a time; got {len(heads)} --head options "
            f"({', '.join(map(str, heads))}): give one --head"
        )
    if kind == "model" and layer is not None:
        raise InputError(
            "--layer is for the head and neuron views: the model view shows every layer at once "
            "(--head keeps only the heads named)"
        )


for command in (index, search, serve, atlas, diff):  # after inspect and view, in the order --help lists them
    app.command()(command)
app.command("index-shard")(index_shard)
app.command("index-commit")(index_commit)

if __name__ == "__main__":  # pragma: no cover - `python -m attnscope.cli`
    app()
