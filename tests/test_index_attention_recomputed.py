"""Issue 19, storage choices: an index built with ``attention="recomputed"`` (``--attention recomputed``)
stores no attention; a search recomputes its matches' attention with the query's model, and finds what
the stored index finds, its weights within the stored blocks' 7-bit bound."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

import attnscope
from attnscope.corpus import open_corpus
from attnscope.errors import InputError
from attnscope.index import BuildOptions, Index, Query, build_index
from attnscope.index.attention_source import BlockCache, RecomputedAttention
from attnscope.index.manifest import IndexFormatError
from attnscope.index.summaries import make_matches
from attnscope.server import AppState, create_app

from .conftest import PUB
from .index_fixtures import EWT_DEV, small_conllu

ATTENTION_FILES = {"attention.bin", "attention_spans.npy"}
BOUND = 1 / 254  # 7-bit stored attention: each weight within 0.5/127 of the model's
ROUNDING = 1e-4  # `Match.attention` is rounded to 4 decimals on both sides

QUERIES = [
    (PUB, 2, Query(mode="embedding", layer=3, top=30)),
    (PUB, 6, Query(mode="heads", layer=2, heads=(0, 5, 7), top=20)),
    ("She walked home unbelievably fast.", 4, Query(mode="embedding", layer=5, unit="word", top=15)),
    (PUB, 12, Query(mode="heads", layer=1, per_sentence=True, score="mean", top=25)),
    (PUB, 2, Query(mode="embedding", layer=0, filters={"upos": ["NOUN", "VERB"]}, top=10)),
]


def _ewt_slice(path: Path, sentences: int) -> Path:
    """The first ``sentences`` sentences of the EWT dev file, written to ``path``."""
    blocks = EWT_DEV.read_text(encoding="utf-8").split("\n\n")[:sentences]
    path.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def pair(default_model, tmp_path_factory) -> tuple[Index, Index]:
    """The small treebank and 300 EWT dev sentences, indexed with stored and with recomputed attention."""
    root = tmp_path_factory.mktemp("recomputed")
    corpus = root / "corpus.conllu"
    ewt = _ewt_slice(root / "ewt.conllu", 300)
    corpus.write_text(small_conllu() + ewt.read_text(encoding="utf-8"), encoding="utf-8")
    built = []
    for attention in ("stored", "recomputed"):
        options = BuildOptions(batch_tokens=512, attention=attention)
        build_index(open_corpus(corpus), default_model, root / attention, options=options)
        built.append(Index.open(root / attention))
    return built[0], built[1]


def _without_attention(match: dict) -> dict:
    return {k: v for k, v in match.items() if k not in ("attention", "max_attention", "offset")}


@pytest.mark.parametrize("number", range(len(QUERIES)))
def test_recomputed_matches_equal_the_stored_within_the_7_bit_bound(pair, default_model, number):
    stored, recomputed = pair
    text, token, query = QUERIES[number]
    a = stored.query(default_model, text, token, query)
    b = recomputed.query(default_model, text, token, query)
    assert len(a.matches) == len(b.matches) > 0
    decided = 0
    for x, y in zip(a.matches, b.matches):
        assert _without_attention(x.__dict__) == _without_attention(y.__dict__)  # rows, scores, context
        assert np.max(np.abs(np.subtract(x.attention, y.attention))) <= BOUND + ROUNDING
        top_two = np.sort(x.attention)[-2:] if len(x.attention) > 1 else np.array([0.0, 1.0])
        if top_two[1] - top_two[0] > 2 * (BOUND + ROUNDING):  # the stored weights decide the argmax
            decided += 1
            assert (x.max_attention, x.offset) == (y.max_attention, y.offset)
    assert decided >= len(a.matches) // 2, "most matches have a clear strongest token"
    assert a.summary.matched == b.summary.matched
    if [m.max_attention for m in a.matches] == [m.max_attention for m in b.matches]:
        assert a.to_dict()["summary"] == b.to_dict()["summary"]


def test_recomputed_attention_equals_a_fresh_capture(pair, default_model):
    _, recomputed = pair
    source = recomputed.attention_source(default_model)
    assert isinstance(source, RecomputedAttention)
    sentences = [3, 10, 57, 200]
    for sentence in sentences:
        text = str(recomputed.tables.sentences["text"][sentence])
        cap = attnscope.capture(default_model, text, fields=["attentions"])
        keep = [i for i, special in enumerate(cap.tokens.special) if not special]
        n = len(keep)
        (rows,) = source.rows([(sentence, range(n))], 4, range(recomputed.manifest.heads))
        exact = cap.attentions[4][:, keep][:, :, keep]
        np.testing.assert_allclose(rows, exact, atol=1e-5)


def test_the_recomputed_index_has_no_attention_files_and_is_smaller_by_them(pair):
    stored, recomputed = pair
    a, b = stored.manifest, recomputed.manifest
    assert (a.attention, b.attention) == ("stored", "recomputed")
    assert json.loads((recomputed.directory / "manifest.json").read_text())["attention"] == "recomputed"
    assert ATTENTION_FILES <= set(a.files) and not ATTENTION_FILES & set(b.files)
    assert not any((recomputed.directory / name).exists() for name in ATTENTION_FILES)
    assert set(a.files) - ATTENTION_FILES == set(b.files)
    for name in b.files:  # every other file is the stored build's, byte for byte
        assert (stored.directory / name).read_bytes() == (recomputed.directory / name).read_bytes(), name
    saved = sum(a.files[name] for name in ATTENTION_FILES)
    assert sum(a.files.values()) - sum(b.files.values()) == saved > 0


def test_stored_attention_is_refused_clearly_on_a_recomputed_index(pair):
    _, recomputed = pair
    with pytest.raises(IndexFormatError, match="--attention recomputed"):
        recomputed.attention.weights(0)
    with pytest.raises(IndexFormatError, match="stores no attention"):
        make_matches(recomputed, np.array([0]), np.ones(1, np.float32), 0, [0])


def test_recomputed_blocks_are_cached_and_the_cache_is_bounded(pair, default_model):
    _, recomputed = pair
    cache = BlockCache()
    source = RecomputedAttention(recomputed.tables, default_model, cache)
    first = source.blocks([1, 2, 30], 2)
    assert len(cache) == 3 and cache.nbytes == sum(b.nbytes for b in first.values())
    again = source.blocks([30, 1], 2)
    assert again[30] is first[30] and again[1] is first[1]  # read from the cache, not computed again
    small = BlockCache(max_bytes=first[2].nbytes)
    bounded = RecomputedAttention(recomputed.tables, default_model, small)
    bounded.blocks([1, 2, 30], 2)
    assert len(small) == 1 and small.nbytes <= max(b.nbytes for b in first.values())


def test_a_sentence_that_tokenises_otherwise_is_refused(pair, default_model):
    _, recomputed = pair
    copy = Index.open(recomputed.directory)
    texts = copy.tables.sentences["text"].copy()
    texts[2] = texts[2] + " and more words"
    copy.tables.sentences["text"] = texts
    with pytest.raises(IndexFormatError, match="index sentence 2 .* cannot be recomputed"):
        copy.attention_source(default_model).rows([(2, [0])], 1, [0])


def test_an_old_manifest_without_the_option_reads_as_stored(small_index, default_model, tmp_path):
    copy = Path(shutil.copytree(small_index.directory, tmp_path / "old"))
    raw = json.loads((copy / "manifest.json").read_text())
    del raw["attention"]
    (copy / "manifest.json").write_text(json.dumps(raw))
    old = Index.open(copy)
    assert old.manifest.attention == "stored"
    query = Query(mode="embedding", layer=2, top=5)
    expected = small_index.query(default_model, PUB, 2, query).to_dict()
    assert old.query(default_model, PUB, 2, query).to_dict() == expected
    raw["attention"] = "sometimes"
    (copy / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(IndexFormatError, match="attention 'sometimes'"):
        Index.open(copy)


def test_a_bad_attention_option_is_refused(default_model, small_corpus, tmp_path):
    with pytest.raises(InputError, match=r"attention='kept' \(--attention\) is not a choice: use one of stored, rec"):
        BuildOptions(attention="kept").check()
    with pytest.raises(InputError, match="attention='kept'"):
        build_index(small_corpus, default_model, tmp_path / "x", options=BuildOptions(attention="kept"))
    assert not (tmp_path / "x").exists()
    env = dict(os.environ, HF_HUB_OFFLINE="1", COLUMNS="200")
    corpus = tmp_path / "small.conllu"
    corpus.write_text(small_conllu(), encoding="utf-8")
    command = [sys.executable, "-m", "attnscope.cli", "index", str(corpus), "--out", str(tmp_path / "y")]
    run = {"capture_output": True, "text": True, "env": env, "timeout": 300}
    refused = subprocess.run([*command, "--attention", "kept"], **run)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "--attention" in refused.stderr and "stored, recomputed" in refused.stderr
    built = subprocess.run([*command, "--attention", "recomputed"], **run)
    assert built.returncode == 0, built.stderr
    assert "attention: recomputed" in built.stdout
    assert Index.open(tmp_path / "y").manifest.attention == "recomputed"


def test_a_decoder_index_recomputes_causal_attention(tiny, small_corpus, tmp_path):
    handle = tiny("smollm2")
    indexes = []
    for attention in ("stored", "recomputed"):
        build_index(small_corpus, handle, tmp_path / attention, options=BuildOptions(attention=attention))
        indexes.append(Index.open(tmp_path / attention))
    query = Query(mode="heads", layer=1, top=12)
    a, b = (index.query(handle, PUB, 3, query) for index in indexes)
    assert [m.row for m in a.matches] == [m.row for m in b.matches]
    for x, y in zip(a.matches, b.matches):
        assert np.max(np.abs(np.subtract(x.attention, y.attention))) <= BOUND + ROUNDING
        assert all(w == 0 for w in y.attention[x.position + 1 :])  # causal: nothing after the match


def test_the_server_searches_a_recomputed_index(pair, default_model):
    stored, recomputed = pair
    state = AppState(models={})
    state.add_model("default", default_model)
    state.add_corpus("recomputed", recomputed, default_model)
    body = {"corpus": "recomputed", "text": PUB, "token": 2, "mode": "embedding", "layer": 3, "top": 8}
    with TestClient(create_app(state), raise_server_exceptions=False) as client:
        response = client.post("/api/search", json=body)
    assert response.status_code == 200, response.text
    expected = stored.query(default_model, PUB, 2, Query(mode="embedding", layer=3, top=8))
    found = response.json()["matches"]
    assert [m["row"] for m in found] == [m.row for m in expected.matches]
    for got, want in zip(found, expected.matches):
        assert np.max(np.abs(np.subtract(got["attention"], want.attention))) <= BOUND + ROUNDING


def test_recomputing_runs_the_model_only_up_to_the_searched_layer(pair, default_model):
    _, recomputed = pair
    layers = default_model.model.encoder.layer
    ran: list[int] = []
    hooks = [layer.register_forward_hook(lambda *_, n=n: ran.append(n)) for n, layer in enumerate(layers)]
    try:
        source = RecomputedAttention(recomputed.tables, default_model, BlockCache())
        blocks = source.blocks([5, 6], 1)
    finally:
        for hook in hooks:
            hook.remove()
    assert ran == [0]  # layer 1's attention is recorded inside layer 1, which never finishes; 2-5 never start
    assert sorted(blocks) == [5, 6] and blocks[5].shape[0] == recomputed.manifest.heads
    full = attnscope.capture(default_model, str(recomputed.tables.sentences["text"][5]), fields=["attentions"])
    keep = [i for i, special in enumerate(full.tokens.special) if not special]
    np.testing.assert_allclose(blocks[5], full.attentions[1][:, keep][:, :, keep], atol=1e-5)
    after = attnscope.capture(default_model, PUB, fields=["attentions"])  # the model runs whole again afterwards
    assert after.attentions.shape[0] == len(layers)
