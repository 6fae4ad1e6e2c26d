"""``attnscope diff``: one text through two models, compared head by head (B5), as a page and/or as JSON.

The page is the diff view (`views.diff`): A, B and A − B per head, the per-head distances, each head against its
matched head of the other model; it is written atomically (never a half-written file) and only once everything
succeeded. ``--json`` prints `Comparison.to_dict` on stdout: ``distances`` (a layers × heads list of A's heads
against the same heads of B, null when the stacks differ in shape), ``matching`` (each head of A paired with one
of B), ``nearest``, the units and what could not be aligned. Every bad input (an unknown model, stacks that
cannot be compared, words that do not align, a level or file that cannot be used) is one ``error:`` line on
stderr and exit status 2, with nothing written.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .cli_common import fail
from .errors import AttnscopeError, InputError

DEFAULT_OUT = "attnscope-diff.html"


def diff(
    text: str = typer.Argument(..., help="The text to run through both models."),
    models: list[str] = typer.Option(
        [], "--model", "-m", help="Model A, then model B (give it twice): hub name, local path, 'default' or 'smollm2'."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help=f"HTML file to write (default: {DEFAULT_OUT}, or none with --json)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON (distances, matching, ...)."),
    level: str = typer.Option(
        "auto", "--level", help="Align tokens ('token': one tokenizer), words ('word'), or 'auto' (tokens when equal)."
    ),
    stacks: list[str] = typer.Option(
        [], "--stack", help="Stack of A, then of B: encoder or decoder (default: each model's self-attention)."
    ),
    truncate: bool = typer.Option(False, "--truncate", help="Cut inputs longer than a model's maximum."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Allow code from the checkpoints."),
) -> None:
    """Compare two models' attention over one text: a diff page (works offline) and, with --json, the numbers."""
    import attnscope

    from .analysis.alignment import LEVELS
    from .files import check_writable_target

    try:
        if len(models) != 2:
            raise InputError(f"give two models, --model A --model B; got {len(models)} ({', '.join(models) or 'none'})")
        if level not in LEVELS:
            raise InputError(f"--level must be one of {', '.join(LEVELS)}, got {level!r}")
        if len(stacks) > 2:
            raise InputError(f"--stack takes at most two values (A's, then B's), got {len(stacks)}")
        target = None if as_json and out is None else check_writable_target(out or Path(DEFAULT_OUT))
        captures = []
        for name in models:
            handle = attnscope.load(name, trust_remote_code=trust_remote_code)
            captures.append(attnscope.capture(handle, text, truncate=truncate, fields=["attentions"]))
        named = (stacks + [None, None])[:2]
        comparison = attnscope.compare(captures[0], captures[1], level=level, stack_a=named[0], stack_b=named[1])
        page = attnscope.diff_view(comparison).to_html() if target is not None else None
        if target is not None and page is not None:
            from .views.html import write_atomically

            written = write_atomically(target, page)
    except AttnscopeError as error:
        fail(error)
    if as_json:
        print(json.dumps(comparison.to_dict(), ensure_ascii=False))
    if target is not None:
        summary = f"{written} ({written.stat().st_size:,} bytes): open it in any browser, no network needed"
        typer.echo(summary, err=as_json)
