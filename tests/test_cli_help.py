"""`attnscope <command> --help`, read as a user reads it: on/off flags appear as bare flags
(``--json``), never as options taking a value (``--json <bool>``); options that take a value show its type."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import typer

from attnscope.cli import app

ATTNSCOPE = [sys.executable, "-m", "attnscope.cli"]
COMMAND = typer.main.get_command(app)
COMMANDS = sorted(COMMAND.commands)  # type: ignore[attr-defined]
OPTION_ROW = re.compile(r"^│\s*\*?\s*(--[\w-]+)(?:,\s*--[\w-]+)?\s+(?:-\w\s+)?(<[^>]*>|[A-Z][A-Z_]*(?=\s{2}))?")


def help_rows(*command: str) -> dict[str, str | None]:
    """Each option in ``attnscope COMMAND --help``: its long name and the value type it shows (None: none)."""
    env = dict(os.environ, COLUMNS="250", NO_COLOR="1", TERM="dumb")
    result = subprocess.run([*ATTNSCOPE, *command, "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = {}
    for line in result.stdout.splitlines():
        match = OPTION_ROW.match(line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_every_command_is_checked():
    assert COMMANDS == ["atlas", "diff", "index", "index-commit", "index-shard", "inspect", "search", "serve", "view"]


@pytest.mark.parametrize("command", [[], *[[name] for name in COMMANDS]], ids=lambda c: " ".join(c) or "attnscope")
def test_flags_render_as_plain_flags_and_values_show_their_type(command):
    rows = help_rows(*command)
    click_command = COMMAND.commands[command[0]] if command else COMMAND  # type: ignore[attr-defined]
    ctx = click_command.make_context("attnscope", [], resilient_parsing=True)
    options = [p for p in click_command.get_params(ctx) if p.param_type_name == "option"]
    assert {next(o for o in p.opts if o.startswith("--")) for p in options} == set(rows)
    for param in options:
        name = next(o for o in param.opts if o.startswith("--"))
        if param.is_flag:
            assert rows[name] is None, f"{' '.join(command)} {name} shows {rows[name]} as if it took a value"
        else:
            assert rows[name], f"{' '.join(command)} {name} takes a value but shows no type"
    flags = {next(o for o in p.opts if o.startswith("--")) for p in options if p.is_flag}
    assert "--help" in flags
    if command == ["inspect"]:
        assert {"--json", "--truncate", "--trust-remote-code"} <= flags and rows["--model"] == "<str>"
