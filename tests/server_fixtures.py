"""What the server tests share: an in-process client over the default model, tiny BERT and the small index."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from attnscope.server import AppState, create_app

SMALL = "small"
"""The name the small index is served under."""


@pytest.fixture(scope="module")
def state(default_model, tiny, small_index) -> AppState:
    served = AppState(models={})
    served.add_model("default", default_model)
    served.add_model("tiny-bert", tiny("bert"))
    served.add_corpus(SMALL, small_index, default_model)
    return served


@pytest.fixture(scope="module")
def client(state) -> TestClient:
    with TestClient(create_app(state), raise_server_exceptions=False) as test_client:
        yield test_client
