"""GET /api/atlas: a served corpus's head atlas, computed once in the background and cached beside its index."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from attnscope.atlas import ATLAS_JSON, compute_atlas, read_atlas
from attnscope.index import Index
from attnscope.server import AppState, create_app

SMALL = "small"


def serve(index_dir, default_model) -> TestClient:
    state = AppState(models={})
    state.add_corpus(SMALL, Index.open(index_dir), default_model)
    return TestClient(create_app(state), raise_server_exceptions=False)


def poll(client: TestClient, until: str, seconds: float = 300) -> list[dict]:
    """Every answer of GET /api/atlas until its status is ``until``."""
    answers = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answers.append(client.get("/api/atlas", params={"corpus": SMALL}).json())
        if answers[-1]["status"] == until:
            return answers
        time.sleep(0.05)
    raise AssertionError(f"the atlas did not become {until!r}: {answers[-1]}")


@pytest.fixture()
def index_dir(small_index, tmp_path):
    return shutil.copytree(small_index.directory, tmp_path / SMALL)


def test_the_atlas_is_computed_in_the_background_then_served_and_cached(
    index_dir, default_model, small_corpus, small_index
):
    client = serve(index_dir, default_model)
    answers = poll(client, "ready")
    first, last = answers[0], answers[-1]
    assert first["status"] == "computing" and first["atlas"] is None and first["done"] <= first["total"]
    assert [a["done"] for a in answers] == sorted(a["done"] for a in answers)
    model_tokens = sum(small_index.tables.sentences["model_tokens"])  # special tokens included
    assert last["done"] == last["total"] == model_tokens > last["atlas"]["tokens"] > 0
    assert (last["corpus"], last["model"], last["message"]) == (SMALL, default_model.name, None)
    direct = compute_atlas(default_model, small_corpus)
    np.testing.assert_allclose(last["atlas"]["patterns"]["previous"], direct.patterns.previous, atol=1e-5)
    names = [r["relation"] for r in last["atlas"]["relations"]]
    assert names == list(direct.relations.names)
    assert read_atlas(index_dir / ATLAS_JSON).to_dict() == last["atlas"]
    # a second server over the same index answers from the cache at once, with nothing to compute
    again = serve(index_dir, default_model).get("/api/atlas", params={"corpus": SMALL}).json()
    assert again["status"] == "ready" and again["atlas"] == last["atlas"] and again["done"] == model_tokens


def test_an_index_that_cannot_be_written_still_gets_its_atlas_with_a_notice(index_dir, default_model):
    (index_dir / ATLAS_JSON).mkdir()  # the cache cannot be written: a directory holds its name
    ready = poll(serve(index_dir, default_model), "ready")[-1]
    assert "could not be cached beside the index" in ready["atlas"]["notices"][-1]
    assert "atlas.json" in ready["atlas"]["notices"][-1]


def test_a_failed_atlas_is_reported_once_then_computed_again(index_dir, default_model):
    state = AppState(models={})
    state.add_corpus(SMALL, Index.open(index_dir), default_model)
    sentences = state.corpora[SMALL].index.tables.sentences
    counts = sentences["model_tokens"]
    sentences["model_tokens"] = counts + (np.arange(len(counts)) == 0)  # the index now disagrees with the model
    client = TestClient(create_app(state), raise_server_exceptions=False)
    failed = poll(client, "failed")[-1]
    assert failed["atlas"] is None and "could not be computed" in failed["message"]
    assert "sentence 0 of the index" in failed["message"] and "does not match this model" in failed["message"]
    sentences["model_tokens"] = counts
    assert client.get("/api/atlas", params={"corpus": SMALL}).json()["status"] == "computing"  # started over
    assert poll(client, "ready")[-1]["atlas"]["corpus"] == read_atlas(index_dir).corpus


def test_an_unknown_or_missing_corpus_is_refused(index_dir, default_model):
    client = serve(index_dir, default_model)
    unknown = client.get("/api/atlas", params={"corpus": "nope"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["field"] == "corpus" and "'small'" in unknown.json()["error"]["message"]
    missing = client.get("/api/atlas")
    assert missing.status_code == 422 and "corpus" in missing.json()["error"]["message"]
    assert not (index_dir / ATLAS_JSON).exists()  # refused requests start nothing
