"""R1: the API fuzzed from its own OpenAPI schema (schemathesis): valid and invalid requests, never a 5xx.

A bounded number of cases per operation, against the real default model, a tiny BERT with a
masked-LM head and the small corpus index; every error has the one error shape.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from attnscope.server import create_app

from .server_fixtures import state  # noqa: F401 - fixture

CASES = 50
"""Cases per operation and generation mode (positive: valid bodies; negative: bodies the schema forbids)."""


MODES = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]


def _operations(state) -> list:  # noqa: F811 - the fixture
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(state))
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_fuzzed_requests_get_an_answer_or_a_4xx_in_the_one_error_shape(state, mode):  # noqa: F811 - the fixture
    operations = _operations(state)
    assert {op.path for op in operations} >= {
        "/api/models",
        "/api/corpora",
        "/api/attention",
        "/api/predictions",
        "/api/search",
        "/api/atlas",
    }
    for operation in operations:
        if (
            mode is schemathesis.GenerationMode.NEGATIVE
            and not operation.definition.raw.get("parameters")
            and operation.method.upper() == "GET"
        ):
            continue  # a GET route without parameters takes no input, so there is nothing to make invalid

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=CASES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def check(case) -> None:
            response = case.call()
            assert response.status_code < 500, (
                f"{case.method} {case.path} {case.body!r} -> {response.status_code} {response.text[:300]}"
            )
            if response.status_code >= 400:
                error = response.json()["error"]
                assert error["status"] == response.status_code
                assert error["code"] and error["message"]

        check()
