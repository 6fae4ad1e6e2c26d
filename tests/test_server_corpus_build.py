"""Issue 17, corpus search with decoders: `attnscope serve --model default --model smollm2` starts without
waiting for SmolLM2's corpus; the first ``GET /api/corpus-build`` starts its index in the background (the
default layers only), answers with its progress, and once it is ready the corpus is listed and searched,
with the "Next" summary; a layer the index does not store is refused in the one error shape. A second
start serves the cached index at once."""

from __future__ import annotations

import httpx

from attnscope.cli_serve import default_layers
from attnscope.errors import CorpusError
from attnscope.server import AppState
from attnscope.server.corpus_builds import Offer

from .conftest import PUB
from .decoder_corpus import SMOLLM2_LAYERS, small_ewt_env, wait_for_build
from .index_fixtures import SMALL as SMALL_SENTENCES
from .serve_process import serving
from .test_server_errors import assert_error_shape


def test_a_decoder_gets_its_corpus_built_in_the_background_then_searched(tmp_path, smollm2_first_load):
    env = small_ewt_env(tmp_path, smollm2_first_load.cache_root)
    with serving(["--model", "default", "--model", "smollm2"], tmp_path, env=env) as served:
        base = served.base
        corpora = httpx.get(f"{base}/api/corpora", timeout=10).json()
        assert [c["name"] for c in corpora] == ["ewt"]  # the first model's, built before the server listened
        smollm2 = next(
            m["name"] for m in httpx.get(f"{base}/api/models", timeout=10).json() if "smollm2" in m["aliases"]
        )
        answers = wait_for_build(base, "smollm2")
        first, last = answers[0], answers[-1]
        assert first["status"] in ("reading", "indexing") and first["model"] == smollm2  # started by this request
        assert first["layers"] == SMOLLM2_LAYERS and first["corpus"].startswith("ewt--")
        assert last["status"] == "ready", last
        tokens = [a for a in answers if a["status"] in ("indexing", "ready") and a["total"]]
        assert all(a["done"] <= a["total"] for a in tokens)
        assert [a["done"] for a in tokens] == sorted(a["done"] for a in tokens)  # progress only grows
        assert last["done"] == last["total"] > 0

        listed = {c["name"]: c for c in httpx.get(f"{base}/api/corpora", timeout=10).json()}
        built = listed[last["corpus"]]
        assert built["model"] == smollm2 and built["stored_layers"] == SMOLLM2_LAYERS and built["layers"] == 30
        assert built["sentences"] == 2 * (len(SMALL_SENTENCES) + 1) and built["tokens"] == last["total"]
        assert listed["ewt"]["stored_layers"] == list(range(6))
        none = httpx.get(f"{base}/api/corpus-build", params={"model": "default"}, timeout=10).json()
        assert none["status"] == "none" and "served with corpus ewt" in none["message"]

        for mode in ("embedding", "heads"):
            body = {"corpus": last["corpus"], "text": PUB, "token": 3, "layer": 8, "mode": mode, "top": 10}
            found = httpx.post(f"{base}/api/search", json=body, timeout=60)
            assert found.status_code == 200, found.text
            result = found.json()
            assert len(result["matches"]) == 10
            assert sum(result["summary"]["next"]["upos"].values()) == 10
            for m in result["matches"]:
                after = m["matched"][-1] + 1
                assert m["next_position"] == (after if after < len(m["tokens"]) else None)
            refused = httpx.post(f"{base}/api/search", json={**body, "layer": 5}, timeout=60)
            error = assert_error_shape(refused, 400)
            assert error["field"] == "layer" and "keeps layers 0, 8, 16, 24, 29" in error["message"]
        assert_error_shape(httpx.get(f"{base}/api/corpus-build", params={"model": "nope"}, timeout=10), 404)

    with serving(["--model", "default", "--model", "smollm2"], tmp_path, env=env) as served:  # from the cache
        names = [c["name"] for c in httpx.get(f"{served.base}/api/corpora", timeout=10).json()]
        assert names == ["ewt", last["corpus"]]
        again = httpx.get(f"{served.base}/api/corpus-build", params={"model": "smollm2"}, timeout=10).json()
        assert again["status"] == "none"


def test_a_failed_build_is_reported_once_and_the_next_request_starts_it_again(tiny, tmp_path):
    handle = tiny("gpt2")
    state = AppState(models={})
    state.add_model("tiny-gpt2", handle)
    calls = []

    def source():
        calls.append(1)
        raise CorpusError(f"{tmp_path / 'missing'} does not hold en_ewt-ud-dev.conllu")

    state.builds.offer(Offer("ewt--tiny", handle, tmp_path / "ewt--tiny", (1,), source))
    first = state.builds.status(handle, state.serve_built_corpus)
    assert first is not None and (first.stage, first.corpus, first.layers) == ("reading", "ewt--tiny", [1])
    state.builds.wait(handle, timeout=60)
    failed = state.builds.status(handle, state.serve_built_corpus)
    assert failed is not None and failed.stage == "failed"
    assert failed.error == (
        f"the index of corpus 'ewt--tiny' could not be built: {tmp_path / 'missing'} does not hold en_ewt-ud-dev.conllu"
    )
    again = state.builds.status(handle, state.serve_built_corpus)  # reported once: this request starts it over
    assert again is not None and again.stage == "reading"
    state.builds.wait(handle, timeout=60)
    assert len(calls) == 2 and "ewt--tiny" not in state.corpora


def test_deep_models_default_corpus_stores_every_eighth_layer_and_the_last():
    assert default_layers(6) is None and default_layers(12) is None
    assert default_layers(30) == (0, 8, 16, 24, 29)
    assert default_layers(13) == (0, 8, 12) and default_layers(17) == (0, 8, 16)
