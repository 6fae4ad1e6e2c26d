"""CLI options take effect or are refused before any work, with exit 2 and a message (real subprocesses):
view options a view would not use, --target and --stack against the model, encoder-decoders shown
stack by stack, and `index` and `serve` checking their options and port before loading anything."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import attnscope

from .index_fixtures import small_conllu

ATTNSCOPE = [sys.executable, "-m", "attnscope.cli"]


def run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", COLUMNS="200")
    return subprocess.run([*ATTNSCOPE, *args], capture_output=True, text=True, env=env, timeout=timeout)


def message(result: subprocess.CompletedProcess) -> str:
    return " ".join(result.stderr.split())


def view_state(path: Path) -> dict:
    html = path.read_text(encoding="utf-8")
    return json.loads(re.search(r'<script type="application/json"[^>]*>(.*?)</script>', html, re.S).group(1))


@pytest.mark.parametrize(
    "args,expected",
    [
        (
            ["view", "--view", "neuron", "--head", "1", "--head", "2"],
            "the neuron view shows one head at a time; got 2 --head options (1, 2): give one --head",
        ),
        (
            ["view", "--view", "model", "--layer", "1"],
            "--layer is for the head and neuron views: the model view shows every layer at once (--head keeps only the "
            "heads named)",
        ),
        (
            ["view", "--target", "Le chat."],
            "--target is the decoder's input of an encoder-decoder model; model '{model}' is an encoder-only model, "
            "which reads only the text (and --pair): leave --target out",
        ),
        (
            ["inspect", "--target", "Le chat."],
            "--target is the decoder's input of an encoder-decoder model; model '{model}' is an encoder-only model",
        ),
        (
            ["view", "--stack", "cross"],
            "--stack cross: model '{model}' has no cross stack; it has encoder (only encoder-decoders have encoder, "
            "decoder and cross stacks)",
        ),
        (["view", "--stack", "values"], "--stack must be one of encoder, decoder, cross, got 'values'"),
    ],
)
def test_options_a_view_or_model_would_not_use_are_refused_before_loading(config_only, args, expected):
    command, *options = args
    out = config_only / "v.html"
    result = run(
        command,
        "The cat sat.",
        "--model",
        str(config_only),
        *options,
        *(["--out", str(out)] if command == "view" else []),
    )
    assert result.returncode == 2, result.stdout
    assert message(result).startswith("error: " + expected.format(model=config_only))
    assert "Traceback" not in result.stderr and not out.exists()


def test_capture_refuses_a_target_for_a_model_without_decoder_input(default_model, tiny):
    for handle, kind in ((default_model, "an encoder-only"), (tiny("gpt2"), "a decoder-only")):
        with pytest.raises(attnscope.InputError) as error:
            attnscope.capture(handle, "The cat sat.", target="Le chat.")
        assert str(error.value) == (
            f"target is the decoder's input of an encoder-decoder model; model "
            f"{handle.name!r} is {kind} model, which reads only the text (and text_pair): "
            "leave target out"
        )


@pytest.mark.parametrize("arch,architecture", [("t5", "t5"), ("bert2bert", "bert encoder, bert decoder")])
def test_inspect_shows_each_stacks_tokens_and_where_predictions_are(tiny_path, tiny, arch, architecture):
    path = tiny_path(arch)
    handle = tiny(arch)
    cap = attnscope.capture(handle, "The cat sat.", target="Le chat.", top_k=5)
    result = run("inspect", "The cat sat.", "--model", str(path), "--target", "Le chat.")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"{path.name} — encoder-decoder ({architecture}): encoder: 2 layers × 4 heads, "
        "decoder: 3 layers × 4 heads, cross: 3 layers × 4 heads"
    )
    assert lines[1] == "encoder tokens: " + "  ".join(f"{i}{t}" for i, t in enumerate(cap.tokens.display))
    assert lines[2] == "decoder tokens: " + "  ".join(f"{i}{t}" for i, t in enumerate(cap.decoder_tokens.display))
    last = len(cap.decoder_tokens) - 1
    shown = ", ".join(f"{t} {p:.3f}" for t, p in cap.top_k(last))
    assert lines[-1] == (
        f"the decoder's next token after decoder position {last} ({cap.decoder_tokens.display[last]}): {shown}"
    )
    report = json.loads(run("inspect", "The cat sat.", "--model", str(path), "--target", "Le chat.", "--json").stdout)
    assert report["decoder_tokens"] == cap.decoder_tokens.display
    assert report["predictions_at"] == {"stack": "decoder", "mode": "next", "positions": [last], "hidden": {}}
    assert list(report["predictions"]) == [str(last)]


def test_inspect_says_where_a_masked_lm_predicts(tiny_path):
    masked = run("inspect", "The cat sat.", "--model", str(tiny_path("bert")), "--mask", "2")
    assert masked.returncode == 0, masked.stderr
    assert masked.stdout.splitlines()[-1].startswith("predictions at masked position 2 (hiding 'cat'): ")
    plain = run("inspect", "The cat sat.", "--model", str(tiny_path("bert")), "--json")
    report = json.loads(plain.stdout)
    assert report["predictions"] is None and report["predictions_note"] == (
        "no position is masked, so there is nothing to predict: mask one (--mask N, or type the mask token [MASK] "
        "in the text) to see the model's candidates there"
    )


def test_view_shows_the_stack_asked_for(tiny_path, tmp_path):
    """The field report: `--view neuron --layer 2` on T5 failed with "the encoder stack has layers 0-1"."""
    path = tiny_path("t5")
    refused = run(
        "view",
        "The cat sat.",
        "--model",
        str(path),
        "--target",
        "Le chat.",
        "--view",
        "neuron",
        "--layer",
        "2",
        "--out",
        str(tmp_path / "no.html"),
    )
    assert refused.returncode == 2
    assert message(refused) == (
        f"error: layer 2 is out of range: the encoder stack of model '{path}' has layers "
        "0-1 (the decoder stack has layers 0-2: add --stack decoder)"
    )
    for kind, stack in (("neuron", "decoder"), ("head", "cross"), ("model", "decoder")):
        out = tmp_path / f"{kind}.html"
        layer = ["--layer", "2"] if kind != "model" else []
        result = run(
            "view",
            "The cat sat.",
            "--model",
            str(path),
            "--target",
            "Le chat.",
            "--view",
            kind,
            "--stack",
            stack,
            *layer,
            "--out",
            str(out),
        )
        assert result.returncode == 0, result.stderr
        state = view_state(out)
        assert state["stack"] == stack
        if kind != "model":
            assert state["layer"] == 2


def test_index_checks_its_options_and_out_before_any_work(config_only, tmp_path):
    """The field report: `index --long maybe` and `index --out <file>` were refused after the progress bar started."""
    corpus = tmp_path / "small.conllu"
    corpus.write_text(small_conllu(), encoding="utf-8")
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    for options, expected in (
        (
            ["--out", str(tmp_path / "idx"), "--long", "maybe"],
            "long='maybe' is not a policy for over-long sentences: use one of truncate, skip",
        ),
        (
            ["--out", str(a_file)],
            f"cannot build an index at {a_file}: it is a file; name a directory to create for the index",
        ),
    ):
        result = run("index", str(corpus), "--model", str(config_only), *options)  # the model would not load
        assert result.returncode == 2
        assert message(result) == f"error: {expected}"
        assert "indexing" not in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config-only", "small.conllu", "taken"]


def test_serve_refuses_a_port_in_use_before_loading_anything(config_only):
    """The field report: `serve --port <in use>` printed the other server's address, then exited 3."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = run("serve", "--no-corpus", "--model", str(config_only), "--port", str(port), timeout=120)
    assert result.returncode == 2
    assert message(result) == (
        f"error: cannot listen on 127.0.0.1 port {port}: another program is listening there "
        "(another attnscope serve?): stop it, or choose another --port"
    )
    assert "open http" not in result.stderr + result.stdout
