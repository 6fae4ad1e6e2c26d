"""Every bad request gets a 4xx with the one error shape; the real `attnscope serve` binds loopback, same-origin."""

from __future__ import annotations

import importlib
from pathlib import Path

import httpx
import pytest

from attnscope.index import IndexMismatchError
from attnscope.server import AppState

from .conftest import PUB
from .index_fixtures import SMALL as SMALL_SENTENCES
from .index_fixtures import small_conllu
from .serve_process import serving
from .server_fixtures import SMALL, client, state  # noqa: F401 - fixtures

XSS = "<img src=x onerror=alert(1)>"


def attention(**fields):
    return ("POST", "/api/attention", {"json": {"model": "default", "text": PUB, **fields}})


def search(**fields):
    return ("POST", "/api/search", {"json": {"corpus": SMALL, "text": PUB, "token": 2, "layer": 0, **fields}})


def raw(path: str, body: bytes, content_type: str = "application/json"):
    return ("POST", path, {"content": body, "headers": {"content-type": content_type}})


# (request, status, code, field)
BAD_REQUESTS = {
    "unknown model": (attention(model="bert-base-uncased"), 404, "unknown_model", "model"),
    "unknown model named like markup": (attention(model=XSS), 404, "unknown_model", "model"),
    "unknown corpus": (search(corpus="ewt"), 404, "unknown_corpus", "corpus"),
    "empty text": (attention(text=""), 422, "validation_error", "text"),
    "blank text": (attention(text="  \n "), 422, "validation_error", "text"),
    "NUL in text": (attention(text="a\x00b"), 422, "validation_error", "text"),
    "lone surrogate": (
        raw("/api/attention", b'{"model": "default", "text": "\\ud800"}'),
        422,
        "validation_error",
        "text",
    ),
    "empty second text": (attention(text_pair=""), 422, "validation_error", "text_pair"),
    "text over the character limit": (attention(text="a" * 30_001), 422, "validation_error", "text"),
    "text over the token limit": (attention(text="word " * 600), 400, "too_many_tokens", "text"),
    "mask out of range": (attention(mask=[2, 99]), 400, "invalid_input", "mask.1"),
    "mask on a special token": (attention(mask=[0]), 400, "invalid_input", "mask.0"),
    "negative mask": (attention(mask=[-1]), 422, "validation_error", "mask.0"),
    "too many mask positions": (attention(mask=list(range(65))), 422, "validation_error", "mask"),
    "text as a number": (attention(text=5), 422, "validation_error", "text"),
    "mask as a string": (attention(mask="2"), 422, "validation_error", "mask"),
    "mask position as a string": (attention(mask=["2"]), 422, "validation_error", "mask.0"),
    "unknown field": (attention(layers=3), 422, "validation_error", "layers"),
    "missing text": (("POST", "/api/attention", {"json": {"model": "default"}}), 422, "validation_error", "text"),
    "malformed JSON": (raw("/api/attention", b'{"model": "default", "text": '), 400, "malformed_body", None),
    "body not UTF-8": (raw("/api/attention", b'{"model": "default", "text": "caf\xe9"}'), 400, "malformed_body", None),
    "empty body": (raw("/api/attention", b""), 400, "malformed_body", None),
    "JSON that is not an object": (raw("/api/attention", b"[1, 2]"), 422, "validation_error", None),
    "oversize body": (raw("/api/attention", b'{"text": "' + b"a" * 70_000 + b'"}'), 413, "payload_too_large", None),
    "prediction position out of range": (
        ("POST", "/api/predictions", {"json": {"model": "tiny-bert", "text": PUB, "position": 40}}),
        400,
        "invalid_input",
        "position",
    ),
    "top_k over 50": (
        ("POST", "/api/predictions", {"json": {"model": "tiny-bert", "text": PUB, "position": 1, "top_k": 51}}),
        422,
        "validation_error",
        "top_k",
    ),
    "predictions without position": (
        ("POST", "/api/predictions", {"json": {"model": "tiny-bert", "text": PUB}}),
        422,
        "validation_error",
        "position",
    ),
    "layer out of range": (search(layer=6), 400, "invalid_input", "layer"),
    "head out of range": (search(mode="heads", heads=[0, 12]), 400, "invalid_input", "heads.1"),
    "head named twice": (search(mode="heads", heads=[3, 5, 3]), 400, "invalid_input", "heads.2"),
    "head named twice for the aggregations": (
        (
            "POST",
            "/api/attention",
            {"json": {"model": "default", "text": PUB, "aggregations": ["rollout"], "heads": [2, 2]}},
        ),
        400,
        "invalid_input",
        "heads.1",
    ),
    "unknown aggregation": (
        ("POST", "/api/attention", {"json": {"model": "default", "text": PUB, "aggregations": ["weighted"]}}),
        422,
        "validation_error",
        "aggregations.0",
    ),
    "mean score of an embedding search": (search(score="mean"), 400, "invalid_input", "score"),
    "atlas without its corpus": (("GET", "/api/atlas", {}), 422, "validation_error", "corpus"),
    "no heads": (search(mode="heads", heads=[]), 422, "validation_error", "heads"),
    "token out of range": (search(token=99), 400, "invalid_input", "token"),
    "special token [CLS]": (search(token=0), 400, "invalid_input", "token"),
    "special token as a word": (search(token=0, unit="word"), 400, "invalid_input", "token"),
    "unknown search unit": (search(unit="sentence"), 422, "validation_error", "unit"),
    "unknown head score": (search(mode="heads", score="max"), 422, "validation_error", "score"),
    "unknown search mode": (search(mode="values"), 422, "validation_error", "mode"),
    "top 0": (search(top=0), 422, "validation_error", "top"),
    "top over 200": (search(top=201), 422, "validation_error", "top"),
    "layer as a float": (search(layer=1.0), 422, "validation_error", "layer"),
    "filter on an unknown field": (search(filters={"colour": ["red"]}), 400, "invalid_input", "filters.colour"),
    "filter with no values": (search(filters={"upos": []}), 422, "validation_error", "filters.upos"),
    "filter with an empty value": (search(filters={"upos": ""}), 400, "invalid_input", "filters.upos"),
    "unknown route": (("GET", "/api/heads", {}), 404, "not_found", None),
    "unknown route outside the API": (("GET", f"/{XSS}", {}), 404, "not_found", None),
    "wrong method": (("GET", "/api/attention", {}), 405, "method_not_allowed", None),
    "wrong method on a listing": (("DELETE", "/api/models", {}), 405, "method_not_allowed", None),
    "CORS preflight": (
        (
            "OPTIONS",
            "/api/attention",
            {"headers": {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}},
        ),
        405,
        "method_not_allowed",
        None,
    ),
}


def assert_error_shape(response: httpx.Response, status: int) -> dict:
    """The response is ``status`` with exactly ``{"error": {status, code, message, field}}`` as JSON."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert "access-control-allow-origin" not in response.headers
    body = response.json()
    assert list(body) == ["error"]
    error = body["error"]
    assert set(error) == {"status", "code", "message", "field"}
    assert error["status"] == status
    assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"]
    assert error["field"] is None or isinstance(error["field"], str)
    assert "Traceback" not in error["message"]
    return error


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_every_bad_request_gets_a_4xx_in_the_one_error_shape(client, name):
    (method, path, options), status, code, field = BAD_REQUESTS[name]
    error = assert_error_shape(client.request(method, path, **options), status)
    assert (error["code"], error["field"]) == (code, field), error["message"]


def test_errors_say_what_is_allowed(client):
    _, path, options = search(layer=6)
    assert "layers 0-5" in client.post(path, **options).json()["error"]["message"]
    message = client.post("/api/attention", json={"model": "nope", "text": PUB}).json()["error"]["message"]
    assert "'nope'" in message and "sentence-transformers/all-MiniLM-L6-v2" in message


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b'{"model": "default", "text": "caf\xe9"}', "is not valid UTF-8 (byte 0xe9 at offset 33)"),
        (b'{"model": "default", "text": ', "is not valid JSON (Expecting value at line 1 column 30)"),
        (b"", "is empty"),
    ],
)
def test_a_malformed_body_says_what_is_wrong_with_it(client, body, what):
    """The field report: a body that is not UTF-8 got 400 "There was an error parsing the body", one that is not
    JSON a 422 validation error: one kind of fault, one code."""
    error = assert_error_shape(
        client.post("/api/attention", content=body, headers={"content-type": "application/json"}), 400
    )
    assert error == {
        "status": 400,
        "code": "malformed_body",
        "field": None,
        "message": f"the request body {what}: send a JSON object, UTF-8 encoded (see /docs for each route's fields)",
    }


def test_a_local_model_is_served_by_its_readable_name_and_answers_to_its_path(client, tiny):
    """The field report: with a local model the API's (and the app's) model name was its full path."""
    handle = tiny("bert")
    assert handle.name.startswith("/") and handle.label == Path(handle.name).name
    listed = {m["name"]: m for m in client.get("/api/models").json()}
    assert set(listed) == {"sentence-transformers/all-MiniLM-L6-v2", handle.label}
    assert listed[handle.label]["aliases"] == ["tiny-bert"]  # the path is accepted, never shown
    assert handle.name not in client.get("/openapi.json").text
    for name in (handle.label, handle.name, "tiny-bert"):
        body = client.post("/api/attention", json={"model": name, "text": PUB}).json()
        assert body["model"] == handle.label
    predicted = client.post("/api/predictions", json={"model": handle.name, "text": PUB, "position": 1}).json()
    assert predicted["model"] == handle.label


def test_a_body_streamed_without_length_is_cut_at_the_limit(client):
    chunks = iter([b'{"model": "default", "text": "'] + [b"a" * 8192] * 10 + [b'"}'])
    assert_error_shape(client.post("/api/attention", content=chunks, headers={"content-type": "application/json"}), 413)


def test_markup_in_text_comes_back_as_json_data(client):
    response = client.post("/api/attention", json={"model": "default", "text": XSS})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert "".join(response.json()["tokens"]["tokens"][1:-1]) == "<imgsrc=xonerror=alert(1)>"
    error = client.post("/api/attention", json={"model": XSS, "text": PUB}).json()["error"]
    assert XSS in error["message"]  # quoted back as a JSON string, never as HTML


def test_unknown_names_never_load_anything(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a request tried to load a model")

    monkeypatch.setattr(importlib.import_module("attnscope.capture.loading"), "load", refuse)
    monkeypatch.setattr("attnscope.load", refuse)
    assert_error_shape(client.post("/api/attention", json={"model": "bert-base-uncased", "text": PUB}), 404)
    assert_error_shape(client.post("/api/predictions", json={"model": "gpt2", "text": PUB, "position": 1}), 404)


def test_a_corpus_is_refused_at_start_with_a_model_it_was_not_built_with(small_index, tiny):
    with pytest.raises(IndexMismatchError):
        AppState(models={}).add_corpus(SMALL, small_index, tiny("bert"))


def test_attnscope_serve_answers_over_real_http_on_loopback_without_cors(tmp_path):
    with serving(["--no-corpus"], tmp_path) as served:
        base = served.base
        models = httpx.get(f"{base}/api/models", headers={"Origin": "http://evil.example"}, timeout=5)
        assert models.status_code == 200
        assert "access-control-allow-origin" not in models.headers
        assert [m["aliases"] for m in models.json()] == [["default"]]
        assert httpx.get(f"{base}/api/corpora", timeout=5).json() == []
        schema = httpx.get(f"{base}/openapi.json", timeout=5)
        assert schema.status_code == 200 and "/api/attention" in schema.json()["paths"]
        assert_error_shape(httpx.get(f"{base}/api/nothing", timeout=5), 404)


def test_serve_builds_the_default_corpus_index_once_and_reuses_it(tmp_path):
    ewt = tmp_path / "ewt"
    ewt.mkdir()
    for part in ("dev", "test"):
        text = small_conllu().replace("# sent_id = ", f"# sent_id = {part}-")
        (ewt / f"en_ewt-ud-{part}.conllu").write_text(text, encoding="utf-8")
    env = {"ATTNSCOPE_EWT_DIR": str(ewt), "ATTNSCOPE_CACHE": str(tmp_path / "cache")}
    for start in range(2):
        with serving([], tmp_path, env=env) as served:
            base = served.base
            corpora = httpx.get(f"{base}/api/corpora", timeout=5).json()
            assert [(c["name"], c["corpus"], c["sentences"]) for c in corpora] == [
                ("ewt", "ud_english_ewt", 2 * (len(SMALL_SENTENCES) + 1))
            ]
            found = httpx.post(f"{base}/api/search", json={"corpus": "ewt", "text": PUB, "token": 2, "layer": 1}).json()
            assert len(found["matches"]) > 0
        logs = sorted(tmp_path.glob("serve-*.log"), key=lambda p: p.stat().st_mtime)
        built = "building the default corpus index" in logs[-1].read_text()
        assert built == (start == 0), logs[-1].read_text()
    assert (tmp_path / "cache" / "indexes" / "ewt--sentence-transformers--all-MiniLM-L6-v2" / "manifest.json").is_file()


def test_serve_refuses_no_corpus_with_a_corpus_before_loading_anything(tmp_path):
    from typer.testing import CliRunner

    from attnscope.cli import app

    result = CliRunner().invoke(app, ["serve", "--no-corpus", "--corpus", str(tmp_path)])
    assert result.exit_code == 2 and "--no-corpus and --corpus contradict each other" in result.output
    assert "Traceback" not in result.output
