"""B6: a PQ-coded index re-ranks its shortlist against exact vectors recomputed with the model.

The re-ranked results are the exact top k of the candidate sentences' tokens (checked against a brute-force
numpy search over captures of those sentences, one at a time); on a fixed corpus and query set re-ranking
raises the recall of pq8 codes against exact float32 search; a bad factor is refused by the CLI and the
server; without a model a PQ index searches its codes alone, and refuses a factor above 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from fastapi.testclient import TestClient

from attnscope.capture.engine import capture
from attnscope.corpus import open_corpus
from attnscope.errors import FieldError
from attnscope.index import BuildOptions, Index, Query, build_index
from attnscope.index.grouping import word_vector
from attnscope.index.query import query_vector, zero_other_heads
from attnscope.server import AppState, create_app

from .index_fixtures import EWT_DEV

SENTENCES = 120
LAYER = 3
PUB = "The girl ran to a local pub to escape the din of her city."


@pytest.fixture(scope="module")
def pq_index(default_model, tmp_path_factory) -> Index:
    """The first 120 sentences of EWT dev, every vector as 8 bytes of PQ codes (pq8: 48 values a piece), layers 1
    and 3."""
    folder = tmp_path_factory.mktemp("pq-rerank")
    blocks = EWT_DEV.read_text(encoding="utf-8").split("\n\n")[:SENTENCES]
    path = folder / "ewt120.conllu"
    path.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    options = BuildOptions(codes="pq8", layers=(1, LAYER))
    build_index(open_corpus(path), default_model, folder / "index", options=options)
    return Index.open(folder / "index")


@pytest.fixture(scope="module")
def exact(pq_index, default_model) -> dict[str, np.ndarray]:
    """Every indexed token's exact vectors at LAYER, in row order, from a capture of each sentence alone:
    ``hidden`` (tokens, 384) and ``heads`` (tokens, 384), unit length (per head)."""
    tables = pq_index.tables
    found = {kind: np.zeros((pq_index.size, 384), np.float32) for kind in ("hidden", "heads")}
    for sentence in range(len(tables.sentences["text"])):
        cap = capture(default_model, str(tables.sentences["text"][sentence]), fields=("hidden_states", "head_outputs"))
        span = tables.sentence_rows(sentence)  # the build numbers rows in its batches' order
        positions = np.asarray(tables.tokens["position"][span.start : span.stop], dtype=np.int64).tolist()
        found["hidden"][span.start : span.stop] = [query_vector(cap.main, "embedding", LAYER, p) for p in positions]
        found["heads"][span.start : span.stop] = [query_vector(cap.main, "heads", LAYER, p) for p in positions]
    return found


def _query(index: Index, handle, mode: str, token: int = 8) -> np.ndarray:
    cap = index.query_capture(handle, PUB)
    return query_vector(cap.main, mode, LAYER, token)


def _brute(scores: np.ndarray, rows: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((rows, -scores))[:top]
    return scores[order], rows[order]


def _candidate_rows(index: Index, query: Query, vector: np.ndarray, factor: int) -> np.ndarray:
    """Every row of the sentences that hold the best top x factor rows by the codes."""
    _, shortlist = index.search(replace(query, top=query.top * factor, rerank=1), vector)
    sentence = np.asarray(index.tables.tokens["sentence"])
    return np.flatnonzero(np.isin(sentence, sentence[shortlist]))


@pytest.mark.parametrize("mode", ["embedding", "heads"])
def test_reranked_results_are_the_exact_top_k_of_the_candidate_sentences(pq_index, exact, default_model, mode):
    heads = (2, 5) if mode == "heads" else None
    query = Query(mode, LAYER, heads, top=20, rerank=3)
    vector = _query(pq_index, default_model, mode)
    if mode == "heads":
        vector = zero_other_heads(vector, heads, 12)
    scores, rows = pq_index.search(query, vector, default_model)
    candidates = _candidate_rows(pq_index, query, vector, 3)
    table = exact["hidden" if mode == "embedding" else "heads"]
    want_scores, want_rows = _brute(table[candidates] @ vector, candidates, 20)
    assert rows.tolist() == want_rows.tolist()
    assert np.allclose(scores, want_scores, atol=1e-4)
    codes_scores, _ = pq_index.search(replace(query, rerank=1), vector)
    assert not np.allclose(codes_scores, scores, atol=1e-3)  # the codes' scores were not exact


def test_a_word_search_with_filters_one_per_sentence_reranks_exactly(pq_index, exact, default_model):
    query = Query("embedding", LAYER, top=10, filters={"upos": ["NOUN", "VERB"]}, unit="word", per_sentence=True)
    cap = pq_index.query_capture(default_model, PUB)
    vector = query_vector(cap.main, "embedding", LAYER, [8])
    scores, rows = pq_index.search(replace(query, rerank=4), vector, default_model)
    tables = pq_index.tables
    candidates = _candidate_rows(pq_index, query, vector, 4)
    words = tables.words
    word_of = np.asarray(tables.tokens["word"])
    upos = np.array([tables.tokens["upos"][int(r)] for r in range(pq_index.size)])
    firsts = sorted(
        {int(words.first[r]) for r in candidates if word_of[r] >= 0 and upos[words.first[r]] in query.filters["upos"]}
    )
    word_scores = np.array([word_vector(exact["hidden"][words.members(f)]) @ vector for f in firsts], np.float32)
    firsts_array = np.array(firsts)
    sentence = np.asarray(tables.tokens["sentence"])[firsts_array]
    best: dict[int, tuple[float, int]] = {}
    for s, score, row in zip(sentence.tolist(), word_scores.tolist(), firsts):
        if s not in best or (score, -row) > (best[s][0], -best[s][1]):
            best[s] = (score, row)
    want_scores, want_rows = _brute(
        np.array([b[0] for b in best.values()], np.float32), np.array([b[1] for b in best.values()]), 10
    )
    assert rows.tolist() == want_rows.tolist()
    assert np.allclose(scores, want_scores, atol=1e-4)
    assert len(set(np.asarray(tables.tokens["sentence"])[rows].tolist())) == len(rows) == 10
    assert all(upos[r] in ("NOUN", "VERB") for r in rows)


def _recall(truth: list[set[int]], found: list[np.ndarray]) -> float:
    return float(np.mean([len(t & set(f.tolist())) / len(t) for t, f in zip(truth, found)]))


def test_reranking_raises_the_recall_of_pq_codes_against_exact_search(pq_index, exact, default_model):
    table = exact["hidden"]
    queries = np.random.default_rng(0).choice(pq_index.size, size=40, replace=False)
    truth = [set(_brute(table @ table[q], np.arange(len(table)), 20)[1].tolist()) for q in queries]
    plain, reranked = [], []
    for q in queries:
        plain.append(pq_index.search(Query("embedding", LAYER, top=20, rerank=1), table[q])[1])
        reranked.append(pq_index.search(Query("embedding", LAYER, top=20), table[q], default_model)[1])
    plain_recall, reranked_recall = _recall(truth, plain), _recall(truth, reranked)
    assert plain_recall < 0.8 and reranked_recall >= 0.95, (plain_recall, reranked_recall)


def test_a_query_reports_its_factor_and_pq_reranks_by_default(pq_index, small_index, default_model):
    result = pq_index.query(default_model, PUB, 8, Query("embedding", LAYER, top=5))
    assert result.rerank == 4 and result.to_dict()["rerank"] == 4
    off = pq_index.query(default_model, PUB, 8, Query("embedding", LAYER, top=5, rerank=1))
    assert off.rerank == 1 and [m.score for m in off.matches] != [m.score for m in result.matches]
    codes = pq_index.manifest.codes
    assert off.score_meaning.endswith(f"; estimated from the corpus's {codes} codes (re-rank for exact scores)")
    assert "estimated" not in result.score_meaning
    assert small_index.query(default_model, PUB, 8, Query("embedding", LAYER, top=5)).rerank == 1  # 8-bit: off
    asked = small_index.query(default_model, PUB, 8, Query("embedding", LAYER, top=5, rerank=2))  # asked for: on
    assert asked.rerank == 2 and len(asked.matches) == 5


def test_a_pq_index_without_a_model_searches_its_codes_and_refuses_a_factor(pq_index, default_model):
    vector = _query(pq_index, default_model, "embedding")
    default = pq_index.search(Query("embedding", LAYER, top=10), vector)
    codes = pq_index.search(Query("embedding", LAYER, top=10, rerank=1), vector)
    assert np.array_equal(default[1], codes[1]) and np.array_equal(default[0], codes[0])
    with pytest.raises(FieldError, match="rerank 4 needs the index's model: re-ranking recomputes") as caught:
        pq_index.search(Query("embedding", LAYER, top=10, rerank=4), vector)
    assert caught.value.field == "rerank"
    for bad in (0, 17, 2.5, True):
        with pytest.raises(FieldError, match=r"rerank must be an integer from 1 \(no re-ranking\) to 16"):
            pq_index.check_query(Query("embedding", LAYER, rerank=bad))


def test_recomputed_vectors_stay_within_their_cache_bound(pq_index, default_model):
    small = Index.open(pq_index.directory, rerank_cache_bytes=40_000)
    vector = _query(small, default_model, "embedding")
    small.search(Query("embedding", LAYER, top=20), vector, default_model)
    cache = small._rerank_cache
    assert 1 <= len(cache) and cache.nbytes <= 40_000 + 384 * 4 * 128  # the newest block is always kept


def test_the_cli_refuses_a_bad_factor(pq_index):
    for bad in ("0", "17"):
        done = subprocess.run(
            [sys.executable, "-m", "attnscope", "search", PUB, "--index", str(pq_index.directory)]
            + ["--token", "escape", "--layer", "3", "--rerank", bad],
            capture_output=True,
            text=True,
            env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
            timeout=600,
        )
        assert done.returncode != 0
        assert f"rerank must be an integer from 1 (no re-ranking) to 16, got {bad}" in " ".join(done.stderr.split())
        assert "Traceback" not in done.stderr


def test_the_server_reranks_and_refuses_a_bad_factor(pq_index, default_model):
    state = AppState(models={})
    state.add_model("default", default_model)
    state.add_corpus("pq", pq_index, default_model)
    with TestClient(create_app(state), raise_server_exceptions=False) as client:
        body = {"corpus": "pq", "text": PUB, "token": 8, "layer": LAYER, "top": 5}
        assert client.post("/api/search", json=body).json()["rerank"] == 4
        assert client.post("/api/search", json={**body, "rerank": 1}).json()["rerank"] == 1
        for bad in (0, 17, "many"):
            response = client.post("/api/search", json={**body, "rerank": bad})
            assert response.status_code == 422
            error = response.json()["error"]
            assert error["field"] == "rerank" and error["code"] == "validation_error"
        assert "16" in client.post("/api/search", json={**body, "rerank": 17}).json()["error"]["message"]
