"""Indexes in the CLI, as a user meets them (real subprocesses): the index `attnscope serve` cached is
reachable by name, an unknown name lists the cached ones, and layers, heads and filters are checked
against the index's manifest before the model loads."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from attnscope.cli_indexes import default_index_dir

ATTNSCOPE = [sys.executable, "-m", "attnscope.cli"]
DEFAULT_NAME = "ewt--sentence-transformers--all-MiniLM-L6-v2"


def run(cache, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", COLUMNS="200", ATTNSCOPE_CACHE=str(cache))
    return subprocess.run([*ATTNSCOPE, *args], capture_output=True, text=True, env=env, timeout=300)


def message(result: subprocess.CompletedProcess) -> str:
    return " ".join(result.stderr.split())


@pytest.fixture
def cache(small_index, tmp_path):
    """An attnscope cache (``ATTNSCOPE_CACHE``) holding the small index where `attnscope serve` caches EWT's."""
    root = tmp_path / "cache"
    shutil.copytree(small_index.directory, root / "indexes" / DEFAULT_NAME)
    return root


def test_the_default_index_dir_is_named_after_the_corpus_and_model(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNSCOPE_CACHE", str(tmp_path))
    assert default_index_dir("sentence-transformers/all-MiniLM-L6-v2") == tmp_path / "indexes" / DEFAULT_NAME


def test_search_takes_a_cached_index_by_corpus_name_and_notes_masking(cache):
    result = run(
        cache,
        "search",
        "The pub was loud.",
        "--index",
        "ewt",
        "--token",
        "2",
        "--layer",
        "5",
        "--top",
        "3",
        "--mask",
        "3",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["token_text"] == "pub" and len(found["matches"]) == 3
    assert "note: model 'sentence-transformers/all-MiniLM-L6-v2' has no masked-language-model head" in message(result)


def test_search_takes_a_cached_index_by_full_name(cache):
    result = run(
        cache,
        "search",
        "The pub was loud.",
        "--index",
        DEFAULT_NAME,
        "--token",
        "2",
        "--layer",
        "5",
        "--top",
        "3",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["token_text"] == "pub"
    assert "note:" not in result.stderr


def test_atlas_takes_a_cached_index_by_name_and_caches_its_atlas_in_it(cache):
    result = run(cache, "atlas", "--index", "ewt", "--relation", "det")
    assert result.returncode == 0, result.stderr
    assert (cache / "indexes" / DEFAULT_NAME / "atlas.json").is_file()
    assert not (cache.parent / "ewt").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["search", "x", "--token", "1", "--layer", "1", "--index"],
        ["atlas", "--index"],
        ["serve", "--port", "1", "--corpus"],
    ],
)
def test_an_unknown_index_name_lists_the_cached_indexes(cache, command):
    result = run(cache, *command, "nope")
    assert result.returncode == 2
    option = "--corpus" if command[0] == "serve" else "--index"
    assert (
        f"{option} nope: no index at nope (no such directory) and no cached index of that name: the cache "
        f"({cache / 'indexes'}) holds {DEFAULT_NAME}"
    ) in message(result)
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_an_empty_cache_says_how_indexes_get_there(tmp_path):
    result = run(tmp_path, "search", "x", "--index", "ewt", "--token", "1", "--layer", "1")
    assert result.returncode == 2
    assert (
        f"--index ewt: no index at ewt (no such directory) and no cached index of that name: the cache "
        f"({tmp_path / 'indexes'}) holds no index yet (`attnscope serve` builds the default corpus's, named ewt)"
    ) in message(result)


def test_a_corpus_name_with_several_models_cached_asks_which(cache):
    first = cache / "indexes" / DEFAULT_NAME
    for model in ("org--model-a", "org--model-b"):
        shutil.copytree(first, cache / "indexes" / f"ewt--{model}")
    shutil.rmtree(first)
    result = run(cache, "search", "x", "--index", "ewt", "--token", "1", "--layer", "1")
    assert result.returncode == 2
    assert (
        "--index ewt: the cache has no index of ewt that is the default model's; the cache "
        f"({cache / 'indexes'}) holds ewt--org--model-a, ewt--org--model-b. Give the full name, or --model "
        "for the index's model"
    ) in message(result)


@pytest.fixture
def unloadable(small_index, tmp_path):
    """A copy of the small index whose manifest names a model that cannot load: any error about layers,
    heads or filters that it gives was found before loading the model."""
    directory = shutil.copytree(small_index.directory, tmp_path / "index")
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["model"] = str(tmp_path / "no-such-model")
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--layer", "6"], "layer 6 is out of range: this index has layers 0-5"),
        (["--layer", "1", "--heads", "3,12"], "head 12 is out of range: this index has heads 0-11"),
        (["--layer", "1", "--filter", "colour=red"], "cannot filter on 'colour': this index's tokens have the fields"),
        (
            ["--layer", "1", "--score", "mean"],
            "score 'mean' (--score mean) is for head searches (mode 'heads', --heads), "
            "which add up or average several heads' cosines; an embedding search's score is one cosine: "
            "leave score out, or search by heads",
        ),
        (
            ["--layer", "1", "--probes", "2"],
            "probes (--probes) is for approximate indexes; this index is exact (every "
            "vector is compared, there are no clusters to scan): leave probes out",
        ),
    ],
)
def test_search_checks_layer_heads_and_filters_against_the_manifest_before_loading_the_model(
    unloadable, tmp_path, args, expected
):
    result = run(tmp_path, "search", "Dogs bark.", "--index", str(unloadable), "--token", "1", *args)
    assert result.returncode == 2
    assert expected in message(result)
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_search_that_passes_the_manifest_checks_goes_on_to_load_the_model(unloadable, tmp_path):
    result = run(tmp_path, "search", "Dogs bark.", "--index", str(unloadable), "--token", "1", "--layer", "1")
    assert result.returncode == 2 and f"the path {tmp_path / 'no-such-model'} does not exist" in message(result)


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--workers", "4"], "--workers need --engine ray (they set up the Ray engine)"),
        (["--engine", "ray", "--address", "auto", "--plan-only"], "--address need --engine ray (--plan-only builds"),
        (["--attention", "recomputed", "--attention-bits", "8"], "--attention-bits has no effect with --attention"),
        (["--approximate", "never", "--merge", "disk"], "--merge disk has no effect on exact 8-bit sets"),
        (["--codes", "pq7"], "--codes pq7: m must divide the vector width 384 (1-384)"),
        (["--fan-out", "--plan-only"], "--fan-out is the commit's choice: give it to `attnscope index-commit`"),
        (["--fan-out", "--merge", "disk"], "--merge disk has no effect with --fan-out"),
    ],
)
def test_index_refuses_options_without_effect_before_reading_the_corpus(tmp_path, extra, expected):
    corpus = tmp_path / "small.conllu"
    corpus.write_text("# text = Hi.\n1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n\n", encoding="utf-8")
    result = run(tmp_path / "cache", "index", str(corpus), "--out", str(tmp_path / "out"), *extra)
    assert result.returncode == 2 and expected in message(result), result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()
    assert not (tmp_path / "out.partial").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["index", "ewt", "--out", "memory://x"],
        ["index-shard", "memory://x", "--shard", "0"],
        ["index-commit", "memory://x"],
    ],
)
def test_a_memory_store_is_refused_by_the_commands_that_build(tmp_path, args):
    """A memory:// store is gone when the command ends (the library, in one process, may use one)."""
    result = run(tmp_path / "cache", *args)
    assert result.returncode == 2 and "memory:// store lives in" in message(result), result.stderr
