"""Issue 17, corpus search with decoders: `attnscope index --layers` stores only the chosen layers (their
vectors and attention), records them in the manifest, searches at them and refuses any other layer;
for a causal model each match names the token after it and the summary counts those tokens ("Next")."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

import attnscope
from attnscope.cli_corpus import parse_layers
from attnscope.cli_search import print_result
from attnscope.corpus import open_corpus
from attnscope.errors import FieldError, InputError
from attnscope.index import BuildOptions, Index, Query, build_index
from attnscope.index.layout import codes_file, read_codes
from attnscope.index.summaries import END

from .conftest import PUB
from .index_fixtures import small_conllu

ATTNSCOPE = [sys.executable, "-m", "attnscope.cli"]


def run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", COLUMNS="100")
    return subprocess.run([*ATTNSCOPE, *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def llama_indexes(tiny_path, tmp_path_factory) -> tuple[Path, Path, Path]:
    """A tiny Llama (2 layers, causal), and the small corpus indexed with it at every layer and at layer 1 only
    (the second through the CLI, as a user builds it)."""
    root = tmp_path_factory.mktemp("layers")
    corpus = root / "small.conllu"
    corpus.write_text(small_conllu(), encoding="utf-8")
    model = tiny_path("llama")
    build_index(open_corpus(corpus), attnscope.load(str(model)), root / "all", options=BuildOptions(batch_tokens=64))
    built = run(
        "index", str(corpus), "--out", str(root / "one"), "--model", str(model), "--layers", "1", "--batch-tokens", "64"
    )
    assert built.returncode == 0, built.stderr
    assert "layers stored: 1 of 2" in built.stdout
    return model, root / "all", root / "one"


def test_an_index_with_layers_stores_those_layers_only_and_records_them(llama_indexes):
    _, everything, one = llama_indexes
    manifest = json.loads((one / "manifest.json").read_text())
    assert manifest["stored_layers"] == [1] and manifest["layers"] == 2
    assert json.loads((everything / "manifest.json").read_text())["stored_layers"] == [0, 1]
    assert sorted(p.name for p in one.glob("*.codes.zst")) == ["heads.1.codes.zst", "hidden.1.codes.zst"]
    tokens = manifest["tokens"]
    for kind in ("hidden", "heads"):  # the stored layer's codes are the full build's, byte for byte
        kept = read_codes(one / codes_file(kind, 1), tokens)
        assert np.array_equal(kept, read_codes(everything / codes_file(kind, 1), tokens))
    a, b = Index.open(everything), Index.open(one)
    assert b.attention.spans.shape == (manifest["sentences"], 2)
    for sentence in range(manifest["sentences"]):
        assert np.array_equal(a.attention.layer_block(sentence, 1), b.attention.layer_block(sentence, 1))


def test_bytes_per_token_shrink_with_the_stored_layers(llama_indexes):
    _, everything, one = llama_indexes
    m_all, m_one = Index.open(everything).manifest, Index.open(one).manifest
    raw = {  # uncompressed code bytes per token: 8 bits per value, hidden state and head embedding per layer
        name: sum(
            read_codes(d / codes_file(k, layer), m.tokens).shape[1]
            for k in ("hidden", "heads")
            for layer in m.layer_numbers
        )
        for name, d, m in (("all", everything, m_all), ("one", one, m_one))
    }
    assert raw == {"all": 2 * (32 + 32), "one": 32 + 32}
    on_disk = {name: sum(m.files.values()) for name, m in (("all", m_all), ("one", m_one))}
    stored = {
        name: sum(v for k, v in m.files.items() if k.endswith(".codes.zst") or k == "attention.bin")
        for name, m in (("all", m_all), ("one", m_one))
    }
    assert stored["one"] < 0.6 * stored["all"] and on_disk["one"] < on_disk["all"]


def test_a_search_works_at_a_stored_layer_and_refuses_another_naming_the_stored(llama_indexes, tiny):
    model, _, one = llama_indexes
    index, handle = Index.open(one), tiny("llama")
    for mode in ("embedding", "heads"):
        result = index.query(handle, PUB, 2, Query(mode, 1, top=5))
        assert len(result.matches) == 5
        console = Console(width=120, record=True, file=io.StringIO())
        print_result(result, "small", index.tables.fields, console=console)
        printed = console.export_text()
        assert "upos of the next token" in printed and "upos they attend to most" in printed
        with pytest.raises(FieldError) as refused:
            index.query(handle, PUB, 2, Query(mode, 0))
        assert refused.value.field == "layer"
        assert "layer 0 is not among the included layers" in str(refused.value) and "keeps layers 1" in str(
            refused.value
        )
    found = run("search", PUB, "--index", str(one), "--token", "2", "--layer", "0", "--model", str(model))
    said = " ".join(found.stderr.split())
    assert found.returncode != 0 and "keeps layers 1" in said and "Traceback" not in said
    found = run("search", PUB, "--index", str(one), "--token", "2", "--layer", "1", "--model", str(model), "--json")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["summary"]["next"]


def test_bad_layers_are_refused_before_any_work(tiny_path, tmp_path):
    corpus = tmp_path / "small.conllu"
    corpus.write_text(small_conllu(), encoding="utf-8")
    built = run(
        "index", str(corpus), "--out", str(tmp_path / "x"), "--model", str(tiny_path("llama")), "--layers", "0,5"
    )
    said = " ".join(built.stderr.split())  # as one line: the console wraps it
    assert built.returncode != 0 and "layers (--layers) 5 out of range: model" in said, built.stderr
    assert "has 2 layers, numbered 0-1" in said
    assert "Traceback" not in built.stderr and not (tmp_path / "x").exists()
    with pytest.raises(InputError, match="give layer numbers separated by commas"):
        parse_layers("0,x")
    for layers, message in (((1, 1), "names a layer twice"), ((), "is empty"), ((-1,), "layer numbers from 0")):
        with pytest.raises(InputError, match=message):
            BuildOptions(layers=layers).check()


def reference_next(index: Index, rows: list[list[int]], field: str) -> Counter:
    """The "Next" histogram by a plain loop over the index's token table: the row after each match's last
    row, when it is in the same sentence."""
    tokens = index.tables.tokens
    counts: Counter = Counter()
    for matched in rows:
        after = matched[-1] + 1
        if after < len(tokens["sentence"]) and tokens["sentence"][after] == tokens["sentence"][matched[-1]]:
            value = tokens[field][after]
            counts["_" if value is None else str(value)] += 1
        else:
            counts[END] += 1
    return counts


@pytest.mark.parametrize("unit", ["token", "word"])
def test_next_summaries_equal_a_loop_over_the_token_table(llama_indexes, tiny, unit):
    _, everything, _ = llama_indexes
    index, handle = Index.open(everything), tiny("llama")
    result = index.query(handle, "She walked home fast.", 2, Query("embedding", 1, top=40, unit=unit))
    assert len(result.matches) >= 10
    rows = []
    for m in result.matches:
        first = m.row - m.position  # the sentence's first row
        rows.append([first + p for p in m.matched])
        after = m.matched[-1] + 1
        assert m.next_position == (after if after < len(m.tokens) else None)
    for field in index.tables.fields:
        assert Counter(result.summary.next[field]) == reference_next(index, rows, field)
        assert sum(result.summary.next[field].values()) == len(result.matches)
    assert any(m.next_position is None for m in result.matches) or END not in result.summary.next["upos"]


def test_an_encoder_gets_no_next_summary(small_index, default_model):
    result = small_index.query(default_model, PUB, 2, Query("embedding", 1, top=10))
    assert result.summary.next == {} and all(m.next_position is None for m in result.matches)
    assert result.to_dict()["summary"]["next"] == {}
