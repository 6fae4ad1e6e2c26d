"""What the server tests share: an in-process client over the default model, tiny BERT and the small index."""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient

from attnscope.index import Index
from attnscope.server import AppState, create_app

SMALL = "small"
"""The name the small index is served under."""


@pytest.fixture(scope="module")
def state(default_model, tiny, small_index, tmp_path_factory) -> AppState:
    """The served models and a copy of the small index (its head atlas is written beside it when asked for)."""
    copy = shutil.copytree(small_index.directory, tmp_path_factory.mktemp("served") / SMALL)
    served = AppState(models={})
    served.add_model("default", default_model)
    served.add_model("tiny-bert", tiny("bert"))
    served.add_corpus(SMALL, Index.open(copy), default_model)
    yield served
    served.atlases.wait(SMALL)


@pytest.fixture(scope="module")
def client(state) -> TestClient:
    with TestClient(create_app(state), raise_server_exceptions=False) as test_client:
        yield test_client
