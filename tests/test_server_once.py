"""A request is tokenised once and a search's query is checked once, however many layers handle it:
the routes tokenise (to check positions against the tokens) and the capture runs on those tokens; the
route checks the query (`Index.check_query`) and `Index.query` and `Index.search` take it as checked."""

from __future__ import annotations

import shutil

import pytest

from attnscope.capture import engine as capture_engine
from attnscope.capture import inputs as capture_inputs
from attnscope.index import Index, Query
from attnscope.index import search as index_search
from attnscope.server import routes

from .conftest import PUB
from .server_fixtures import SMALL, client, state  # noqa: F401 - fixtures


@pytest.fixture
def tokenised(monkeypatch):
    """The texts the tokenizer was run on (through `encode`) during a test, one entry a call."""
    calls: list[str] = []
    real = capture_inputs.encode

    def counting(handle, text, *args, **kwargs):
        calls.append(text)
        return real(handle, text, *args, **kwargs)

    for module in (capture_engine, routes):
        monkeypatch.setattr(module, "encode", counting)
    return calls


@pytest.mark.parametrize(
    "route, body",
    [
        ("/api/attention", {"model": "default", "text": PUB, "mask": [3]}),
        ("/api/attention", {"model": "default", "text": PUB, "aggregations": ["value_norm_sum"], "heads": [1, 2]}),
        ("/api/predictions", {"model": "tiny-bert", "text": PUB, "mask": [3], "position": 3}),
        ("/api/search", {"corpus": SMALL, "text": PUB, "token": 2, "layer": 1, "mask": [3]}),
    ],
)
def test_each_route_tokenises_the_request_text_once(client, tokenised, route, body):  # noqa: F811 - the fixture
    response = client.post(route, json=body)
    assert response.status_code == 200, response.text
    assert tokenised == [PUB]


def test_a_search_checks_its_layer_heads_and_filters_once(client, monkeypatch):  # noqa: F811 - the fixture
    checked: list[str] = []
    real_choices, real_filter = index_search.check_choices, Index.check_filter

    def count_heads(*args, **kwargs):
        checked.append("heads")
        return real_choices(*args, **kwargs)

    def count_filter(self, name):
        checked.append(f"filter {name}")
        return real_filter(self, name)

    monkeypatch.setattr(index_search, "check_choices", count_heads)
    monkeypatch.setattr(Index, "check_filter", count_filter)
    response = client.post(
        "/api/search",
        json={
            "corpus": SMALL,
            "text": PUB,
            "token": 2,
            "layer": 1,
            "mode": "heads",
            "heads": [0, 3],
            "filters": {"upos": ["NOUN", "VERB"]},
        },
    )
    assert response.status_code == 200, response.text
    assert checked == ["heads", "filter upos"]


def test_a_checked_query_is_not_checked_again_by_its_index_but_is_by_another(small_index, tmp_path):
    checked = small_index.check_query(Query("heads", 1, (0, 3), filters={"upos": "NOUN"}))
    assert (checked.heads, checked.filters) == ((0, 3), {"upos": ["NOUN"]})
    assert small_index.check_query(checked) is checked
    other = Index.open(shutil.copytree(small_index.directory, tmp_path / "other"))
    again = other.check_query(checked)
    assert again is not checked and again.checked_for == str(other.directory)
