"""What every ``attnscope`` command shares: how a failure is reported (`fail`) and the masking note.

The command modules (cli.py, cli_corpus.py, cli_serve.py, cli_atlas.py) import these; cli.py assembles the
commands into the typer app, so no command module imports cli.py back.
"""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape


def fail(error: Exception) -> NoReturn:
    """Print ``error`` on stderr as ``error: ...`` (no traceback) and exit with status 2."""
    Console(stderr=True).print(f"[bold red]error:[/] {escape(str(error))}", highlight=False)
    raise typer.Exit(code=2)


def note_masking(handle: Any) -> None:
    """Print on stderr why masking with ``handle`` may mislead, when it may (`attnscope.masking_caveat`)."""
    from .capture.inputs import masking_caveat

    caveat = masking_caveat(handle)
    if caveat:
        Console(stderr=True).print(f"[yellow]note: {escape(caveat)}[/]", highlight=False)
