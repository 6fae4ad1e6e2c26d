"""How the CLI finds a model, as a user meets it (real subprocesses): a path that does not exist, a hub
name with the hub offline or unreachable, a cached hub model without the hub, layer and head numbers
checked from the config before any weights load, and the note when masking cannot mean much."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ATTNSCOPE = [sys.executable, "-m", "attnscope.cli"]


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    """``attnscope ARGS`` with the hub offline unless ``env`` says otherwise (an empty value unsets a variable)."""
    merged = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200", **env}
    merged = {k: v for k, v in merged.items() if v != ""}
    return subprocess.run([*ATTNSCOPE, *args], capture_output=True, text=True, env=merged, timeout=300)


def message(result: subprocess.CompletedProcess) -> str:
    return " ".join(result.stderr.split())


def closed_port() -> int:
    """A loopback port nothing listens on: bound, then released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    "given,shown",
    [
        ("./no/such/dir", "the path ./no/such/dir does not exist"),
        ("no/such/dir", "the path no/such/dir does not exist"),
        (
            "~/no-such-attnscope-model",
            f"the path ~/no-such-attnscope-model ({Path.home()}/no-such-attnscope-model) does not exist",
        ),
    ],
)
def test_a_missing_local_path_is_named_as_a_path(given, shown):
    result = run("inspect", "Hi", "--model", given)
    assert result.returncode == 2
    assert f"model '{given}': {shown}" in message(result)
    assert "Repo id" not in result.stderr and "Hugging Face" not in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_missing_absolute_path_is_named_as_a_path(tmp_path):
    missing = tmp_path / "x"
    result = run("view", "Hi", "--model", str(missing))
    assert result.returncode == 2
    assert f"model '{missing}': the path {missing} does not exist" in message(result)
    assert "Repo id" not in result.stderr and "Traceback" not in result.stderr


def test_an_unknown_hub_name_offline_fails_at_once_naming_the_model_and_the_cache(tmp_path):
    result = run("inspect", "Hi", "--model", "no-such-org/no-such-model", HF_HUB_CACHE=str(tmp_path))
    assert result.returncode == 2
    assert (
        f"model 'no-such-org/no-such-model' was not found: it is not in the local Hugging Face cache ({tmp_path}), "
        "and the hub is offline (HF_HUB_OFFLINE is set)"
    ) in message(result)
    assert "Retrying" not in result.stderr and "Traceback" not in result.stderr


def test_an_unknown_hub_name_with_the_hub_unreachable_fails_without_retries(tmp_path):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    result = run(
        "inspect",
        "Hi",
        "--model",
        "no-such-org/no-such-model",
        HF_HUB_OFFLINE="",
        TRANSFORMERS_OFFLINE="",
        HF_ENDPOINT=endpoint,
        HF_HUB_CACHE=str(tmp_path),
    )
    assert result.returncode == 2
    text = message(result)
    assert (
        f"model 'no-such-org/no-such-model' was not found: it is not in the local Hugging Face cache ({tmp_path}), "
        f"and the hub at {endpoint} is unreachable ("
    ) in text
    assert "Connection refused" in text
    assert "Retrying" not in result.stderr and "Traceback" not in result.stderr


def cache_model(source: Path, hub: Path, repo: str) -> None:
    """Lay ``source``'s files out as the Hugging Face cache holds a downloaded ``repo``."""
    commit = "0" * 40
    folder = hub / f"models--{repo.replace('/', '--')}"
    shutil.copytree(source, folder / "snapshots" / commit)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)


def test_a_cached_hub_model_loads_without_the_hub_and_without_retries(tiny_path, tmp_path):
    cache_model(tiny_path("bert"), tmp_path / "hub", "tiny-org/tiny-bert")
    result = run(
        "inspect",
        "Dogs bark.",
        "--model",
        "tiny-org/tiny-bert",
        "--json",
        HF_HUB_OFFLINE="",
        TRANSFORMERS_OFFLINE="",
        HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}",
        HF_HUB_CACHE=str(tmp_path / "hub"),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["model"]["name"] == "tiny-org/tiny-bert" and report["model"]["stacks"]["encoder"]["layers"] == 2
    assert "Retrying" not in result.stderr


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--layer", "2"], "layer 2 is out of range: the encoder stack of model '{model}' has layers 0-1"),
        (["--head", "1", "--head", "4"], "head 4 is out of range: the encoder stack of model '{model}' has heads 0-3"),
        (
            ["--view", "neuron", "--layer", "-1"],
            "layer -1 is out of range: the encoder stack of model '{model}' has layers 0-1",
        ),
    ],
)
def test_view_checks_layer_and_head_from_the_config_before_loading_weights(config_only, args, expected):
    result = run("view", "Hi", "--model", str(config_only), *args, "--out", str(config_only / "v.html"))
    assert result.returncode == 2
    assert expected.format(model=config_only) in message(result)  # the weights were never needed
    assert "Traceback" not in result.stderr and not (config_only / "v.html").exists()
    loads = run("view", "Hi", "--model", str(config_only), "--out", str(config_only / "v.html"))
    assert loads.returncode == 2 and "is not a loadable model" in message(loads)


def test_masking_with_a_model_without_a_masked_lm_head_prints_a_note():
    result = run("inspect", "The girl ran to a local pub.", "--mask", "3", "--json")
    assert result.returncode == 0, result.stderr
    note = message(result)
    assert (
        "note: model 'sentence-transformers/all-MiniLM-L6-v2' has no masked-language-model head, so its mask "
        "token [MASK] was not trained to stand for a word"
    ) in note
    assert "Masking is meaningful with a checkpoint that has a masked-language-model head" in note
    assert "MaskingWarning" not in result.stderr  # the note is printed once, not also as a Python warning
    assert json.loads(result.stdout)["tokens"][3] == "[MASK]"
    unmasked = run("inspect", "The girl ran to a local pub.", "--json")
    assert unmasked.returncode == 0 and "note:" not in unmasked.stderr


def test_masking_with_a_masked_lm_prints_no_note(tiny_path):
    result = run("inspect", "Dogs bark.", "--model", str(tiny_path("bert")), "--mask", "1", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["model"]["has_lm_head"] is True
    assert "note:" not in result.stderr
