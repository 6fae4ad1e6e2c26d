"""`attnscope diff`, run as a user runs it: a real subprocess on the default model and tiny random models."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import PUB

ATTNSCOPE = [sys.executable, "-m", "attnscope.cli", "diff"]


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", COLUMNS="150")
    return subprocess.run([*ATTNSCOPE, *args], capture_output=True, text=True, env=env, timeout=300, cwd=cwd)


def test_a_model_against_itself_writes_the_page_and_prints_zero_distances(tmp_path):
    out = tmp_path / "diff.html"
    result = run(PUB, "--model", "default", "--model", "default", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["level"] == "token" and document["shape_a"] == [6, 12]
    assert len(document["distances"]) == 6 and all(row == [0.0] * 12 for row in document["distances"])
    assert len(document["matching"]) == 72
    assert all(m["a"] == m["b"] and m["distance"] == 0 for m in document["matching"])
    page = out.read_text(encoding="utf-8")
    assert 'class="attnscope-host"' in page and "https://" not in page and "<script src" not in page
    assert f"{out} (" in result.stderr  # the page's name goes to stderr, the JSON alone to stdout


def test_different_tokenizers_compare_words_and_pair_every_head_of_a(tiny_path, tmp_path):
    result = run(PUB, "--model", str(tiny_path("gpt2")), "--model", "default", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["level"] == "word" and document["distances"] is None  # 2 × 4 heads against 6 × 12
    assert document["units"][:3] == ["The", "girl", "ran"]
    assert [m["a"] for m in document["matching"]] == [[layer, head] for layer in range(2) for head in range(4)]
    assert len({tuple(m["b"]) for m in document["matching"]}) == 8
    assert document["unaligned_b"][0] == 0 and len(document["unaligned_b"]) == 2  # [CLS] and [SEP]
    assert list(tmp_path.iterdir()) == []  # --json alone writes no page


def test_page_without_json_goes_to_the_default_name(tmp_path, tiny_path):
    result = run("Dogs bark.", "--model", str(tiny_path("bert")), "--model", str(tiny_path("bert")), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["attnscope-diff.html"]
    assert "attnscope-diff.html (" in result.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["--model", "default", "--model", "no-such/model"], "model 'no-such/model' was not found"),
        (["--model", "default"], "give two models, --model A --model B; got 1"),
        (["--model", "default", "--model", "default", "--level", "sentence"], "--level must be one of auto, token"),
        (["--model", "default", "--model", "TINY_GPT2", "--level", "token"], "level='token' needs one tokenisation"),
        (["--model", "default", "--model", "TINY_T5", "--stack", "encoder", "--stack", "cross"], "cross-attention"),
        (["--model", "default", "--model", "TINY_GPT2", "--stack", "decoder"], "no 'decoder' attention in"),
    ],
)
def test_bad_input_is_one_error_line_and_nothing_written(args, message, tiny_path, tmp_path):
    out = tmp_path / "diff.html"
    names = {"TINY_GPT2": str(tiny_path("gpt2")), "TINY_T5": str(tiny_path("t5"))}
    result = run(PUB, *[names.get(a, a) for a in args], "--out", str(out))
    assert result.returncode == 2, result.stdout
    assert message in " ".join(result.stderr.split()) and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_words_that_do_not_align_are_refused(tiny_path, tmp_path):
    """A zero-width space: the default model's WordPiece drops it (no word), GPT-2's byte-level BPE keeps it as a
    word; no unit is shared: an error, no page."""
    out = tmp_path / "diff.html"
    result = run("\u200b", "--model", "default", "--model", str(tiny_path("gpt2")), "--out", str(out))
    assert result.returncode == 2, result.stdout
    assert "error: no word of A overlaps a word of B" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
