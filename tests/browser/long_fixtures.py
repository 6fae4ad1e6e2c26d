"""The long-context browser tests' capture: a tiny Llama on a 2,000-token text, attention on demand (import the
fixture into a test module to use it; one capture per session)."""

from __future__ import annotations

import pytest

import attnscope

from ..long_context import build_long_llama, long_text, on_demand


@pytest.fixture(scope="session")
def long_capture(tmp_path_factory):
    handle = attnscope.load(str(build_long_llama(tmp_path_factory.mktemp("long-llama"))))
    cap = on_demand(handle, long_text(1000), rows=64)
    assert cap.attentions.shape[2] > 1900
    return cap
