"""examples/finetune_default.py, the script that makes the fine-tuned copy of the default model for the model
diff example: its argument errors, and a run of two steps that writes a loadable copy, changed only from the
first layer it trained on, the same bytes when run again with the same seed."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import attnscope
from attnscope.analysis.comparison_texts import compare_texts

from .conftest import PUB

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "finetune_default.py"


@pytest.fixture(scope="module")
def script():
    """The script as a module (registered, as its dataclass needs), to call its argument parser in process."""
    spec = importlib.util.spec_from_file_location("finetune_default", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, spec.name, module)
        spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--steps", "0"], "--steps 0 is out of range: allowed at least 1"),
        (["--steps", "ten"], "argument --steps: invalid int value: 'ten'"),
        (["--probe-steps", "-1"], "--probe-steps -1 is out of range: allowed 0 or more"),
        (["--batch-size", "257"], "--batch-size 257 is out of range: allowed 1-256"),
        (["--lr", "1.5"], "--lr 1.5 is out of range: allowed between 0 and 1 (exclusive)"),
        (["--freeze-layers", "7"], "--freeze-layers 7 is out of range: allowed 0-6 (the model has layers 0-5)"),
        (["--minutes", "nan"], "--minutes nan is out of range: allowed above 0"),
        (["--train-sentences", "0"], "--train-sentences 0 is out of range: allowed at least 1"),
        (["--eval-sentences", "0"], "--eval-sentences 0 is out of range: allowed at least 1"),
    ],
)
def test_an_option_out_of_range_exits_2_naming_it(script, argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        script.arguments([*argv, "--out", str(tmp_path / "copy")])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_folders_exit_2_naming_them(script, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    a_file = tmp_path / "file"
    a_file.write_text("")
    cases = [
        (["--out", str(taken)], f"--out {taken} already holds files: pass --overwrite"),
        (["--out", str(a_file)], f"--out {a_file} is a file: name a folder for the copy"),
        (["--out", str(tmp_path / "new"), "--treebank", str(tmp_path)], f"--treebank: {tmp_path} does not hold"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as stop:
            script.arguments(argv)
        assert stop.value.code == 2
        assert message in capsys.readouterr().err
    assert (taken / "notes.txt").read_text() == "mine"


def run_script(out: Path, *extra: str) -> subprocess.CompletedProcess:
    short = ["--steps", "2", "--probe-steps", "1", "--train-sentences", "16", "--eval-sentences", "4"]
    command = [sys.executable, str(SCRIPT), *short, "--batch-size", "4", "--freeze-layers", "3", "--out", str(out)]
    return subprocess.run([*command, *extra], capture_output=True, text=True, timeout=900)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_short_run_writes_a_loadable_copy_changed_from_the_first_trained_layer(default_model, tmp_path):
    out = tmp_path / "copy"
    run = run_script(out)
    assert run.returncode == 0, run.stderr
    assert "UPOS accuracy before fine-tuning (linear layer alone, 1 steps)" in run.stdout
    assert "UPOS accuracy after fine-tuning (2 steps" in run.stdout
    record = json.loads((out / "finetune.json").read_text())
    assert (record["steps"], record["probe_steps"], record["arguments"]["freeze_layers"]) == (2, 1, 3)
    assert 0 <= record["accuracy_before"] <= 1 and 0 <= record["accuracy_after"] <= 1
    assert [p.name for p in tmp_path.iterdir()] == ["copy"]  # no temporary folder left beside it
    umask = os.umask(0)
    os.umask(umask)
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o666 & ~umask}

    tuned = attnscope.load(str(out))
    assert tuned.stacks["encoder"].layers == 6 and tuned.stacks["encoder"].heads == 12
    result = compare_texts(default_model, tuned, [PUB, "Dogs bark."])
    assert np.all(result.distances[:3] == 0)  # the embeddings and layers 0-2 were frozen: the same attention
    assert np.all(result.distances[3:] > 0)  # every head of the trained layers moved

    weights = digest(out / "model.safetensors")
    again = run_script(out, "--overwrite")
    assert again.returncode == 0, again.stderr
    assert digest(out / "model.safetensors") == weights  # seeded: the same copy, replaced whole
    assert [p.name for p in tmp_path.iterdir()] == ["copy"]
