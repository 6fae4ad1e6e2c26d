"""Probe scores in the head atlas: a column per score in atlas.json and atlas.parquet, on by default for
causal models and off for encoders, chosen by name, cached beside an index, printed by `attnscope atlas`;
and on the real SmolLM2, the induction heads the atlas names."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import attnscope
from attnscope.analysis.probes import PROBES, run_probes
from attnscope.atlas import atlas_for_index, compute_atlas, read_atlas, store, write_atlas
from attnscope.atlas.compute import with_probes
from attnscope.corpus import open_corpus
from attnscope.errors import InputError

from .test_atlas import SNIPPET


@pytest.fixture(scope="module")
def snippet(tmp_path_factory):
    path = tmp_path_factory.mktemp("atlas-probes") / "snippet.conllu"
    path.write_text(SNIPPET, encoding="utf-8")
    return open_corpus(path)


@pytest.fixture(scope="module")
def decoder(tiny_path):
    return attnscope.load(str(tiny_path("smollm2")))


def test_a_causal_models_atlas_has_every_probe_score_in_json_and_parquet(decoder, snippet, tmp_path):
    atlas = compute_atlas(decoder, snippet)
    assert atlas.probes is not None and atlas.probes.names == PROBES
    expected = run_probes(decoder)  # the same default probe, seeded: the same scores
    for name in PROBES:
        np.testing.assert_array_equal(atlas.probes.scores[name], expected.scores[name])
    json_path, parquet_path = write_atlas(atlas, tmp_path)
    table = pq.read_table(parquet_path).to_pydict()
    for name in PROBES:
        assert table[f"probe_{name}"] == pytest.approx(atlas.probes.scores[name].reshape(-1).tolist())
    document = json.loads(json_path.read_text())["probes"]
    assert document["names"] == list(PROBES) and np.shape(document["induction"]) == (2, 4)
    assert (document["length"], document["repeats"], document["batch"], document["seed"]) == (50, 2, 8, 0)
    assert document["copying"]["tokens"] == 8 * 49 and document["copying"]["later"] < 0
    again = read_atlas(tmp_path)
    assert again.probes is not None and again.probes.spec == atlas.probes.spec
    np.testing.assert_allclose(again.probes.scores["first"], atlas.probes.scores["first"], atol=1e-6)
    assert again.probes.copying.first == pytest.approx(atlas.probes.copying.first, abs=1e-6)


def test_an_encoders_atlas_has_probe_scores_only_when_named(default_model, snippet):
    assert compute_atlas(default_model, snippet).probes is None
    atlas = compute_atlas(default_model, snippet, probes=["previous"])
    assert atlas.probes.names == ("previous",) and "probe_previous" in atlas.table()
    assert "probe_induction" not in atlas.table() and atlas.probes.copying is None
    # MiniLM's previous-token head on the corpus (0-2) is its previous-token head on random tokens too
    assert atlas.probes.top("previous", 1)[0][:2] == (0, 2)


def test_no_probes_and_an_unknown_probe(decoder, snippet):
    assert compute_atlas(decoder, snippet, probes=[]).probes is None
    assert "probe_first" not in compute_atlas(decoder, snippet, probes=()).table()
    with pytest.raises(InputError, match="probe 'copying' is not known: the probes are induction, duplicate"):
        compute_atlas(decoder, snippet, probes=["copying"])


def test_an_index_atlas_gets_probes_added_to_its_cache_when_asked(small_index, default_model, tmp_path, monkeypatch):
    index = Path(shutil.copytree(small_index.directory, tmp_path / "index"))
    first = atlas_for_index(index, default_model)  # an encoder: no probes by default
    assert first.probes is None
    monkeypatch.setattr(store, "score_sentences", lambda *a, **k: pytest.fail("the corpus was scored again"))
    with_first = atlas_for_index(index, default_model, probes=["first"])
    assert with_first.probes.names == ("first",)
    assert json.loads((index / "atlas.json").read_text())["probes"]["names"] == ["first"]
    assert atlas_for_index(index, default_model, probes=[]).probes is None
    np.testing.assert_allclose(with_first.patterns.previous, first.patterns.previous, atol=1e-6)  # from the cache


def test_with_probes_keeps_scores_already_computed(decoder, snippet, monkeypatch):
    atlas = compute_atlas(decoder, snippet, probes=["induction", "first"])
    import attnscope.atlas.compute as compute

    monkeypatch.setattr(compute, "run_probes", lambda *a, **k: pytest.fail("the probe ran again"))
    assert with_probes(atlas, decoder, ["first"]).probes.names == ("first",)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", COLUMNS="200")
    command = [sys.executable, "-m", "attnscope.cli", "atlas", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def test_the_cli_prints_the_heads_per_probe_and_the_copying_figure(tiny_path, tmp_path):
    corpus = tmp_path / "snippet.conllu"
    corpus.write_text(SNIPPET, encoding="utf-8")
    out = tmp_path / "out"
    model = str(tiny_path("smollm2"))
    result = run_cli("--corpus", str(corpus), "--model", model, "--out", str(out), "--top", "2")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "Heads by probe (layer-head (mean attention); 8 sequences of 50 random tokens × 2, seed 0;" in text
    atlas = read_atlas(out)
    for name, title in (("induction", "induction"), ("duplicate", "duplicate token")):
        (l1, h1, s1), (l2, h2, s2) = atlas.probes.top(name, 2)
        assert f"{title}: {l1}-{h1} ({s1:.2f}), {l2}-{h2} ({s2:.2f})" in text
    copying = atlas.probes.copying
    assert f"in-context copying: mean log-probability {copying.later:.2f} on the repeated tokens" in text
    chosen = run_cli("--corpus", str(corpus), "--model", model, "--out", str(out), "--probes", "none")
    assert chosen.returncode == 0 and "Heads by probe" not in chosen.stdout
    assert "probe_induction" not in pq.read_table(out / "atlas.parquet").column_names


def test_smollm2s_induction_heads_stand_far_above_the_median(smollm2):
    """Measured on CPU with the default probe (8 × 50 random tokens × 2, seed 0): head 18-6 scores 0.912,
    then 17-3 0.793, 17-4 0.777, 17-5 0.653, 18-7 0.639; the median head 0.004. The copying figure:
    −2.56 nats on the repeated tokens against −14.24 on their first occurrence."""
    result = run_probes(smollm2)
    top = result.top("induction", 5)
    assert [(layer, head) for layer, head, _ in top] == [(18, 6), (17, 3), (17, 4), (17, 5), (18, 7)]
    assert [score for _, _, score in top] == pytest.approx([0.912, 0.793, 0.777, 0.653, 0.639], abs=0.01)
    median = float(np.median(result.scores["induction"]))
    assert median < 0.01 and all(score > median + 0.6 for _, _, score in top)
    assert result.top("duplicate", 2)[0][:2] == (14, 3) and result.top("previous", 1)[0][:2] == (16, 0)
    assert result.copying is not None
    assert result.copying.later == pytest.approx(-2.56, abs=0.05)
    assert result.copying.first == pytest.approx(-14.24, abs=0.05)
