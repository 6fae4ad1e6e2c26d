"""The `attnscope inspect` command, run as a user runs it: a real subprocess on the real default model."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from .conftest import PUB

ATTNSCOPE = [sys.executable, "-m", "attnscope.cli"]


def run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", COLUMNS="120")
    return subprocess.run([*ATTNSCOPE, *args], capture_output=True, text=True, env=env, timeout=300)


def test_inspect_json_lists_tokens_shape_and_a_pattern_per_head():
    result = run("inspect", PUB, "--mask", "9", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["tokens"][0] == "[CLS]" and report["tokens"][9] == "[MASK]" and report["tokens"][-1] == "[SEP]"
    assert report["model"]["stacks"]["encoder"]["layers"] == 6
    patterns = report["patterns"]["encoder"]
    assert len(patterns) == 6 and all(len(layer) == 12 for layer in patterns)
    labels = {cell["pattern"] for layer in patterns for cell in layer}
    assert labels <= {"previous", "next", "self", "first", "special", "broad", "mixed"}
    assert {"first", "special"} <= labels  # MiniLM's middle layers attend to [CLS] (the first token) and [SEP]
    assert report["predictions"] is None and "no language-model head" in report["predictions_note"]


def test_inspect_prints_a_table_by_default():
    result = run("inspect")
    assert result.returncode == 0, result.stderr
    assert "6 layers × 12 heads" in result.stdout
    assert "9escape" in result.stdout
    assert "dominant pattern per head" in result.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["inspect", "", "--json"], "text is empty"),
        (["inspect", "Hi", "--mask", "7"], "mask position 7 is out of range"),
        (["inspect", "Hi", "--mask", "0"], "special token '[CLS]'"),
        (["inspect", "Hi", "--model", "no-such-org/no-such-model"], "was not found"),
    ],
)
def test_bad_input_exits_non_zero_with_a_message_and_no_traceback(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_view_writes_a_self_contained_head_view(tmp_path):
    out = tmp_path / "pub.html"
    result = run("view", PUB, "--layer", "2", "--head", "3", "--head", "5", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout and "no network needed" in result.stdout
    html = out.read_text(encoding="utf-8")
    state = json.loads(re.search(r'<script type="application/json"[^>]*>(.*?)</script>', html, re.S).group(1))
    assert state["layer"] == 2 and state["heads"] == [3, 5]
    assert state["header"]["sequences"]["encoder"]["tokens"][:3] == ["[CLS]", "the", "girl"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pub.html"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["view", "Hi", "--view", "tree"], "--view must be one of head"),
        (["view", "Hi", "--layer", "9"], "layer 9 is out of range"),
        (["view", "Hi", "--head", "12"], "head 12 is out of range"),
        (
            ["view", "Hi", "--out", "/no/such/dir/x.html"],
            "cannot write /no/such/dir/x.html: its directory /no/such/dir does not exist",
        ),
    ],
)
def test_view_bad_input_writes_nothing(args, message, tmp_path):
    result = run(*args)
    assert result.returncode == 2, result.stdout
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize("kind,selector", [("model", "attnscope-mv"), ("neuron", "attnscope-nv")])
def test_view_writes_model_and_neuron_views(kind, selector, tmp_path):
    out = tmp_path / f"{kind}.html"
    layer = ["--layer", "2"] if kind == "neuron" else []  # the model view shows every layer
    result = run("view", PUB, "--view", kind, *layer, "--head", "5", "--out", str(out))
    assert result.returncode == 0, result.stderr
    html = out.read_text(encoding="utf-8")
    state = json.loads(re.search(r'<script type="application/json"[^>]*>(.*?)</script>', html, re.S).group(1))
    assert f".{selector}" in html
    if kind == "neuron":
        assert (state["layer"], state["head"]) == (2, 5)
    else:
        assert state["header"]["stacks"][0]["head_labels"] == [5]
