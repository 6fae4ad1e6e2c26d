"""The JSON API answers with what the library computes: the same tokens, attention, predictions and matches."""

from __future__ import annotations

import json

import numpy as np
import pytest

import attnscope
from attnscope.index import Query
from attnscope.quantise import MAX_ERROR

from .conftest import PUB
from .payload_decode import decode_layers
from .server_fixtures import SMALL, client, state  # noqa: F401 - fixtures

PAIR = "She walked home."


def test_models_lists_each_configured_model_with_its_shape_and_lm_head(client, default_model, tiny):
    models = {m["name"]: m for m in client.get("/api/models").json()}
    assert set(models) == {default_model.name, tiny("bert").label}  # a local model by its folder's name
    default = models[default_model.name]
    assert (default["layers"], default["heads"], default["has_lm_head"]) == (6, 12, False)
    assert default["aliases"] == ["default"] and default["max_length"] == default_model.max_length
    assert models[tiny("bert").label]["has_lm_head"] is True


def test_corpora_lists_the_index_with_its_counts(client, small_index, default_model):
    (corpus,) = client.get("/api/corpora").json()
    m = small_index.manifest
    assert corpus == {
        "name": SMALL,
        "model": default_model.name,
        "corpus": m.corpus,
        "tokens": m.tokens,
        "sentences": m.sentences,
        "layers": m.layers,
        "heads": m.heads,
        "fields": list(m.fields),
        "annotator": "conllu (gold)",
        "silver": {},
        "stored_layers": list(range(m.layers)),
        "codes": "sq",
    }


def test_attention_decodes_to_the_captured_weights_within_1_510(client, default_model):
    response = client.post("/api/attention", json={"model": "default", "text": PUB, "text_pair": PAIR})
    assert response.status_code == 200
    body = response.json()
    cap = attnscope.capture(default_model, PUB, PAIR)
    weights = decode_layers(body["payload"], "encoder")
    assert weights.shape == cap.attentions.shape and list(body["payload"]["layers"]) == ["encoder"]
    assert np.abs(weights - cap.attentions).max() <= MAX_ERROR + 1e-6
    tokens = body["tokens"]
    assert tokens["tokens"] == cap.tokens.display
    assert tokens["segments"] == cap.tokens.segments and tokens["special"] == cap.tokens.special
    assert tokens["sentence_b_start"] == cap.tokens.sentence_b_start
    assert tokens["offsets"] == [list(o) if o else None for o in cap.tokens.offsets]


def test_attention_of_a_masked_input_is_the_masked_capture(client, default_model):
    body = client.post("/api/attention", json={"model": "default", "text": PUB, "mask": [2]}).json()
    cap = attnscope.capture(default_model, PUB, mask=[2], warn=False)
    assert body["tokens"]["masked"] == [2] and body["tokens"]["tokens"][2] == "[MASK]"
    assert np.abs(decode_layers(body["payload"], "encoder") - cap.attentions).max() <= MAX_ERROR + 1e-6


def test_attention_without_lm_head_has_null_predictions_and_says_why(client):
    body = client.post("/api/attention", json={"model": "default", "text": PUB, "mask": [3]}).json()
    assert body["predictions"] is None
    assert "has no language-model head" in body["predictions_note"]


def test_attention_with_a_masked_lm_head_gives_top_5_at_every_position(client, tiny):
    handle = tiny("bert")
    body = client.post("/api/attention", json={"model": handle.name, "text": PUB, "mask": [2, 4]}).json()
    cap = attnscope.capture(handle, PUB, mask=[2, 4], top_k=5)
    assert [p["position"] for p in body["predictions"]] == list(range(len(cap.tokens)))
    assert body["tokens"]["masked"] == [2, 4]
    for entry in body["predictions"]:
        expected = cap.top_k(entry["position"])
        assert [c["token"] for c in entry["candidates"]] == [t for t, _ in expected]
        assert [c["probability"] for c in entry["candidates"]] == pytest.approx([p for _, p in expected], abs=1e-6)
    assert body["predictions_note"] is None


def test_predictions_equal_the_captures_top_k(client, tiny):
    handle = tiny("bert")
    body = client.post(
        "/api/predictions", json={"model": handle.name, "text": PUB, "mask": [3], "position": 3, "top_k": 7}
    ).json()
    expected = attnscope.capture(handle, PUB, mask=[3], top_k=7).top_k(3)
    assert (body["position"], body["token"], body["mode"]) == (3, "[MASK]", "masked")
    assert [(c["token"], pytest.approx(c["probability"], abs=1e-6)) for c in body["candidates"]] == expected


def test_predictions_of_a_model_without_lm_head_are_refused_with_400(client):
    response = client.post("/api/predictions", json={"model": "default", "text": PUB, "mask": [3], "position": 3})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("no_language_model_head", "model")
    assert "no language-model head" in error["message"]


def _expected(result) -> dict:
    """A result as it reads after a JSON round trip."""
    return json.loads(json.dumps(result.to_dict()))


@pytest.mark.parametrize(
    "query",
    [
        {"mode": "embedding", "layer": 3},
        {"mode": "heads", "layer": 2, "heads": [0, 5, 7], "top": 4},
        {"mode": "embedding", "layer": 5, "filters": {"upos": ["NOUN", "VERB"]}, "top": 10},
    ],
)
def test_search_returns_what_the_index_query_returns(client, small_index, default_model, query):
    response = client.post("/api/search", json={"corpus": SMALL, "text": PUB, "token": 2, **query})
    assert response.status_code == 200
    expected = small_index.query(
        default_model,
        PUB,
        2,
        Query(
            mode=query["mode"],
            layer=query["layer"],
            heads=tuple(query["heads"]) if "heads" in query else None,
            top=query.get("top", 50),
            filters=query.get("filters"),
        ),
    )
    assert response.json() == _expected(expected)
    assert response.json()["matches"], "the small index has matches for every query here"


@pytest.mark.parametrize(
    "options",
    [
        {"unit": "word", "mode": "embedding", "layer": 4},
        {"per_sentence": True, "mode": "heads", "layer": 3, "heads": [1, 2, 3], "score": "mean", "top": 3},
        {"unit": "word", "per_sentence": True, "mode": "heads", "layer": 2, "filters": {"upos": ["ADV"]}},
    ],
)
def test_search_by_word_one_per_sentence_and_mean_scores_equal_the_index_query(
    client, small_index, default_model, options
):
    text = "She walked home unbelievably fast."
    token = attnscope.encode(default_model, text).word_ids.index(3)  # the first token of "unbelievably"
    response = client.post("/api/search", json={"corpus": SMALL, "text": text, "token": token, **options})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = small_index.query(
        default_model,
        text,
        token,
        Query(
            mode=options["mode"],
            layer=options["layer"],
            heads=tuple(options["heads"]) if "heads" in options else None,
            top=options.get("top", 50),
            filters=options.get("filters"),
            unit=options.get("unit", "token"),
            per_sentence=options.get("per_sentence", False),
            score=options.get("score", "sum"),
        ),
    )
    assert body == _expected(expected)
    assert body["unit"] == options.get("unit", "token") and body["score_meaning"] == expected.score_meaning
    if options.get("per_sentence"):
        assert len({m["sentence"] for m in body["matches"]}) == len(body["matches"])
    for m in body["matches"]:
        assert "".join((" " if s else "") + t for t, s in zip(m["surface"], m["space_before"])) == m["text"]


def test_search_answers_the_words_of_a_split_word_as_one_word(client, default_model):
    text = "She walked home unbelievably fast."
    tokens = attnscope.encode(default_model, text)
    first = next(p for p, w in enumerate(tokens.word_ids) if w == 3)  # "unbelievably", several tokens
    pieces = [p for p, w in enumerate(tokens.word_ids) if w == 3]
    assert len(pieces) > 1
    body = client.post(
        "/api/search", json={"corpus": SMALL, "text": text, "token": pieces[-1], "layer": 5, "unit": "word", "top": 3}
    ).json()
    assert (body["query_positions"], body["query_text"]) == (pieces, "unbelievably")
    best = body["matches"][0]  # the same word in the small treebank's s2
    assert best["sent_id"] == "s2" and "".join(best["surface"][p] for p in best["matched"]) == "unbelievably"
    assert best["continues"][best["matched"][0]] is False and all(best["continues"][p] for p in best["matched"][1:])
    assert best["score"] > 0.99 and first == pieces[0]


def test_search_refuses_a_special_token_before_the_model_runs(client):
    error = client.post("/api/search", json={"corpus": SMALL, "text": PUB, "token": 0, "layer": 1}).json()["error"]
    assert (error["status"], error["field"]) == (400, "token")
    assert error["message"].startswith(
        "token 0 is the special token '[CLS]': special tokens are not in the corpus index"
    )


def test_search_with_a_mask_queries_the_masked_text(client, small_index, default_model):
    body = client.post("/api/search", json={"corpus": SMALL, "text": PUB, "token": 2, "layer": 1, "mask": [2]}).json()
    expected = small_index.query(default_model, PUB, 2, Query(mode="embedding", layer=1), mask=[2], warn=False)
    assert body == _expected(expected)
    assert body["token_text"] == "[MASK]"


def test_search_from_sentence_b_of_a_pair_uses_the_pair_tokens(client, small_index, default_model):
    pair = "She left for the quiet of the hills."
    tokens = attnscope.encode(default_model, PUB, pair)
    hills = tokens.display.index("hills")
    assert hills > len(attnscope.encode(default_model, PUB)), "the token lies past sentence A's end"
    body = client.post(
        "/api/search", json={"corpus": SMALL, "text": PUB, "text_pair": pair, "token": hills, "layer": 2}
    ).json()
    expected = small_index.query(default_model, PUB, hills, Query(mode="embedding", layer=2), text_pair=pair)
    assert body == _expected(expected)
    assert (body["token_text"], body["text_pair"]) == ("hills", pair)
    alone = client.post(
        "/api/search",
        json={
            "corpus": SMALL,
            "text": pair,
            "token": tokens.display.index("hills") - tokens.sentence_b_start + 1,
            "layer": 2,
        },
    ).json()
    assert alone["token_text"] == "hills"
    assert [m["score"] for m in alone["matches"]] != [m["score"] for m in body["matches"]], (
        "in a pair the token's representation depends on sentence A"
    )


def test_the_openapi_schema_documents_every_route_and_the_error_shape(client):
    schema = client.get("/openapi.json").json()
    assert {"/api/models", "/api/corpora", "/api/attention", "/api/predictions", "/api/search"} <= set(schema["paths"])
    error = schema["paths"]["/api/search"]["post"]["responses"]["404"]["content"]["application/json"]["schema"]
    assert error["$ref"].endswith("/ErrorResponse")


def test_a_filter_value_given_as_a_string_is_one_value(client, small_index, default_model):
    as_list = client.post(
        "/api/search",
        json={"corpus": SMALL, "text": PUB, "token": 2, "layer": 5, "filters": {"upos": ["NOUN"]}, "top": 10},
    )
    as_string = client.post(
        "/api/search",
        json={"corpus": SMALL, "text": PUB, "token": 2, "layer": 5, "filters": {"upos": "NOUN"}, "top": 10},
    )
    assert as_string.status_code == 200, as_string.text
    assert as_string.json() == as_list.json() and as_string.json()["matches"]
    assert {m["metadata"]["upos"][m["position"]] for m in as_string.json()["matches"]} == {"NOUN"}
    python = small_index.query(default_model, PUB, 2, Query("embedding", 5, top=10, filters={"upos": "NOUN"}))
    assert as_string.json() == _expected(python)


def test_searches_of_one_input_run_the_model_once(client, state, small_index, default_model):
    """Another token, layer, mode or unit of the input searched last reuses its capture (server/query_store.py);
    another mask is another input."""
    store = state.query_captures
    misses, hits = store.misses, store.hits
    text = "A fresh sentence, searched three ways."
    asked = [
        {"token": 2, "layer": 1},
        {"token": 4, "layer": 5, "mode": "heads", "heads": [3]},
        {"token": 2, "layer": 3, "unit": "word", "top": 5},
    ]
    for query in asked:
        response = client.post("/api/search", json={"corpus": SMALL, "text": text, **query})
        assert response.status_code == 200, response.text
    assert (store.misses, store.hits) == (misses + 1, hits + 2)
    fresh = small_index.query(default_model, text, 4, Query(mode="heads", layer=5, heads=(3,)))
    again = client.post("/api/search", json={"corpus": SMALL, "text": text, **asked[1]})
    assert again.json() == _expected(fresh)  # what was kept gives what a new capture gives
    masked = client.post("/api/search", json={"corpus": SMALL, "text": text, "token": 2, "layer": 1, "mask": [4]})
    assert masked.status_code == 200 and store.misses == misses + 2


def test_kept_search_inputs_stay_within_their_bytes(default_model, small_index):
    from attnscope.server.query_store import QueryCaptures

    first = small_index.query_capture(default_model, PUB)
    store = QueryCaptures(max_bytes=first.main.hidden_states.nbytes + first.main.head_outputs.nbytes)
    assert store.get("a", lambda: first) is first
    second = store.get("b", lambda: small_index.query_capture(default_model, "Dogs bark."))
    assert len(store) == 1 and store.get("b", lambda: first) is second  # "a" went: the two exceed the bound
    assert store.get("a", lambda: first) is first and len(store) == 1 and (store.misses, store.hits) == (3, 1)
