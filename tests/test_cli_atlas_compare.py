"""`attnscope atlas --model A --compare B`, run as a user runs it: a real subprocess, the real default model,
a tiny model of another shape, B's atlas saved before, and the bad inputs that must change nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

import attnscope
from attnscope.atlas import compute_atlas, write_atlas
from attnscope.capture.sources import model_name
from attnscope.cli_indexes import cached_index_name
from attnscope.corpus import open_corpus
from attnscope.index import build_index

from .test_atlas import conllu_word
from .test_cli_atlas import ATTNSCOPE, snippet_path  # noqa: F401  (snippet_path: the fixture)


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = dict(os.environ, HF_HUB_OFFLINE="1", COLUMNS="150", **(env or {}))
    return subprocess.run([*ATTNSCOPE, "atlas", *args], capture_output=True, text=True, env=environment, timeout=300)


FILES = {"atlas-compare.json", "atlas-compare.parquet", "atlas-compare.html"}


def test_the_default_model_against_itself_changes_no_head(snippet_path, tmp_path):
    out = tmp_path / "out"
    result = run("--corpus", str(snippet_path), "--model", "default", "--compare", "default", "--out", str(out))
    assert result.returncode == 0, result.stderr
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert "(A, 6 × 12 heads) against sentence-transformers/all-MiniLM-L6-v2 (B, 6 × 12 heads) on snippet" in lines[0]
    assert "previous token no head changed" in lines and "entropy no head changed" in lines
    assert {p.name for p in out.iterdir()} == FILES
    document = json.loads((out / "atlas-compare.json").read_text())
    assert document["same_shape"] and len(document["scores"]) == 6 + 2 * 8  # patterns, 8 relations × 2 directions
    for score in document["scores"]:
        assert all(value == 0 for row in score["difference"] for value in row), score["key"]
    page = (out / "atlas-compare.html").read_text()
    assert "attnscope-atlas-compare" in page and "https://" not in page


def test_a_zeroed_query_head_is_printed_as_the_most_changed(snippet_path, zeroed_copy, tmp_path):
    saved = tmp_path / "zeroed"
    write_atlas(compute_atlas(zeroed_copy, open_corpus(snippet_path)), saved)  # B's atlas, saved before
    result = run("--corpus", str(snippet_path), "--compare", str(saved), "--json", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    entropy = next(s for s in document["scores"] if s["key"] == "entropy")
    top = entropy["most_changed"][0]
    assert (top["layer"], top["head"]) == (2, 5) and top["b"] == pytest.approx(1.0, abs=1e-6)
    assert entropy["difference"][0] == [0.0] * 12 and entropy["difference"][1] == [0.0] * 12
    assert {p.name for p in (tmp_path / "out").iterdir()} == FILES


def test_models_of_different_shapes_are_printed_side_by_side(snippet_path, tiny_path, tmp_path):
    tiny = str(tiny_path("bert", head=False))
    result = run("--corpus", str(snippet_path), "--compare", tiny, "--out", str(tmp_path / "out"), "--min-arcs", "3")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "The models differ in shape: the best head per score of each" in text
    document = json.loads((tmp_path / "out" / "atlas-compare.json").read_text())
    assert not document["same_shape"]
    best = {s["key"]: s for s in document["scores"]}["previous"]
    a, b = best["best_a"], best["best_b"]
    row = f"previous token {a['layer']}-{a['head']} ({a['value']:.2f}) {b['layer']}-{b['head']} ({b['value']:.2f})"
    assert row in text
    assert "nsubj dependent→head" in text and "det dependent→head" not in text  # det has 2 arcs: under --min-arcs


@pytest.fixture(scope="module")
def other_corpus_atlas(default_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("other") / "other.conllu"
    words = [conllu_word(1, "Dogs", "NOUN", 2, "nsubj"), conllu_word(2, "bark", "VERB", 0, "root")]
    path.write_text("# text = Dogs bark\n" + "\n".join(words) + "\n\n", encoding="utf-8")
    directory = path.parent / "atlas"
    write_atlas(compute_atlas(default_model, open_corpus(path)), directory)
    return directory


@pytest.mark.parametrize(
    "args,message",
    [
        (["--compare", "no-such/model-xyz"], "no-such/model-xyz"),
        (
            ["--compare", "{other}"],
            "the atlases would be computed on different corpora: --compare {other}/atlas.json is B's atlas",
        ),
        (
            ["--compare", "{other}/atlas.json"],
            "'sentence-transformers/all-MiniLM-L6-v2') on 'other' (checksum",
        ),
        (
            ["--compare", "{snippet_atlas}", "--probes", "induction"],
            "score 'probe_induction' is in the atlas of A ('sentence-transformers/all-MiniLM-L6-v2') but not of B",
        ),
        (["--compare", "default", "--index", "."], "name a corpus (--corpus ewt, a .conllu file or directory"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_writes_nothing(
    snippet_path,
    other_corpus_atlas,
    default_model,
    tmp_path,
    args,
    message,
):
    snippet_atlas = tmp_path / "snippet-atlas"
    write_atlas(compute_atlas(default_model, open_corpus(snippet_path)), snippet_atlas)  # no probe scores
    names = {"other": str(other_corpus_atlas), "snippet_atlas": str(snippet_atlas)}
    args = [arg.format(**names) for arg in args]
    result = run("--corpus", str(snippet_path), "--out", str(tmp_path / "out"), *args)
    assert result.returncode == 2, result.stdout
    assert message.format(**names) in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not (tmp_path / "out").exists()


def test_with_index_each_models_own_cached_index_is_used(small_index, small_corpus, tiny_path, tmp_path):
    tiny = str(tiny_path("bert", head=False))
    root = tmp_path / "cache" / "indexes"
    shutil.copytree(small_index.directory, root / cached_index_name("small", model_name("default")))
    build_index(small_corpus, attnscope.load(tiny), root / cached_index_name("small", model_name(tiny)))
    env = {"ATTNSCOPE_CACHE": str(tmp_path / "cache")}
    result = run("--index", "small", "--compare", tiny, "--json", "--out", str(tmp_path / "out"), env=env)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["a"]["corpus"] == document["b"]["corpus"] == "small" and not document["same_shape"]
    assert document["b"]["model"] == model_name(tiny)
    for name in ("default", tiny):  # each atlas is cached in its model's index
        assert (root / cached_index_name("small", model_name(name)) / "atlas.json").is_file()

    one = run("--index", str(small_index.directory), "--compare", tiny, "--out", str(tmp_path / "one"))
    assert one.returncode == 2 and "holds one model's tokens" in " ".join(one.stderr.split())
    assert not (tmp_path / "one").exists()
