"""`attnscope atlas`, run as a user runs it: a real subprocess on the real default model and a small treebank."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from .test_atlas import SNIPPET, conllu_word

ATTNSCOPE = [sys.executable, "-m", "attnscope.cli"]


def run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", COLUMNS="150")
    return subprocess.run([*ATTNSCOPE, "atlas", *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def snippet_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli-atlas") / "snippet.conllu"
    path.write_text(SNIPPET, encoding="utf-8")
    return path


def test_atlas_names_the_heads_per_pattern_and_the_best_head_per_relation(snippet_path, tmp_path):
    out = tmp_path / "atlas"
    result = run("--corpus", str(snippet_path), "--out", str(out), "--min-arcs", "0")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "3 sentences" in text and "6 layers × 12 heads" in text
    assert "previous token: 0-2 (1.00)" in text  # MiniLM's previous-token head
    assert "first token: " in text and "broad (high entropy): " in text and "mixed (none dominates): " in text
    document = json.loads((out / "atlas.json").read_text())
    rows = {row["relation"]: row for row in document["relations"]}
    for line in text.splitlines():  # each relation's row: arcs, best heads with accuracies, the baseline
        cells = line.split()
        if cells and cells[0] in rows:
            row = rows[cells[0]]
            assert int(cells[1]) == row["pairs"]
            assert float(cells[3]) == pytest.approx(max(map(max, row["dependent_to_head"])), abs=0.005)
            assert f"{row['baseline']:.2f} ({row['baseline_offset']:+d})" == " ".join(cells[-2:])
    assert "0.67 (+1)" in next(line for line in text.splitlines() if line.split()[:1] == ["nsubj"])
    assert {p.name for p in out.iterdir()} == {"atlas.json", "atlas.parquet", "atlas.html"}
    page = (out / "atlas.html").read_text()
    assert "attnscope-atlas" in page and "http://127.0.0.1:8000/" in page and "https://" not in page
    assert "scoring heads" in result.stderr


def test_json_output_is_the_atlas_document(snippet_path, tmp_path):
    result = run("--corpus", str(snippet_path), "--out", str(tmp_path), "--relation", "obl", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [row["relation"] for row in document["relations"]] == ["obl"]
    assert document["layers"] == 6 and len(document["patterns"]["labels"][0]) == 12


def test_a_corpus_without_dependency_annotations_gets_patterns_and_a_notice(tmp_path):
    path = tmp_path / "bare.conllu"
    words = [
        conllu_word(1, "Dogs", "NOUN", "_", "_"),
        conllu_word(2, "bark", "VERB", "_", "_", "SpaceAfter=No"),
        conllu_word(3, ".", "PUNCT", "_", "_"),
    ]
    path.write_text("# text = Dogs bark.\n" + "\n".join(words) + "\n\n", encoding="utf-8")
    result = run("--corpus", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "notice: the corpus 'bare' has no dependency annotations" in " ".join(result.stdout.split())
    assert "previous token: " in result.stdout and "Best head per relation" not in result.stdout
    assert json.loads((tmp_path / "out" / "atlas.json").read_text())["relations"] is None


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--relation", "nsubj", "--relation", "dobj"],
            "relation 'dobj' is not in the corpus; it has: nsubj, punct, case, det, obl, advmod, amod, aux",
        ),
        (["--relation", "root"], "relation 'root' has no head word to attend to"),
        (
            ["--probes", "induction,inductoin"],
            "probe 'inductoin' is not known: the probes are induction, duplicate, previous, first (or none)",
        ),
        (["--index", "."], "name a corpus (--corpus ewt, a .conllu file or directory, a .txt file) or an index"),
    ],
)
def test_bad_input_exits_2_with_a_message_no_traceback_and_writes_nothing(snippet_path, tmp_path, args, message):
    result = run("--corpus", str(snippet_path), "--out", str(tmp_path / "out"), *args)
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not (tmp_path / "out").exists()


def test_an_index_gets_its_atlas_cached_in_it(small_index, tmp_path):
    index = shutil.copytree(small_index.directory, tmp_path / "index")
    result = run("--index", str(index), "--relation", "det")
    assert result.returncode == 0, result.stderr
    assert {"atlas.json", "atlas.parquet", "atlas.html"} <= {p.name for p in index.iterdir()}
    assert "det " in result.stdout and "on small " in result.stdout
    cached = json.loads((index / "atlas.json").read_text())
    assert len(cached["relations"]) > 1  # the cache holds every relation; --relation narrows what is shown


def test_an_index_from_another_model_is_refused(small_index, tiny_path, tmp_path):
    result = run(
        "--index",
        str(small_index.directory),
        "--model",
        str(tiny_path("bert", head=False)),
        "--out",
        str(tmp_path / "out"),
    )
    assert result.returncode == 2
    assert "was built with the weights of 'sentence-transformers/all-MiniLM-L6-v2'" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert not (small_index.directory / "atlas.json").exists() and not (tmp_path / "out").exists()
