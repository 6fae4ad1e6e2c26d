"""The built-in SmolLM2-135M-Instruct, loaded once per session from a cache of its own.

The session's cache (``ATTNSCOPE_CACHE`` set to a fresh folder only while attnscope is called) starts
with a half-written conversion in it, as an interrupted first load leaves: the first load must convert
the GGUF file again (about 35 s) and replace it. Tests that load again set the same cache root.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

import attnscope
from attnscope.cache import CACHE_ENV
from attnscope.capture.builtin_models import SMOLLM2, BuiltinSource, builtin_source, cache_folder


@dataclass(frozen=True)
class FirstLoad:
    """The session's first ``attnscope.load("smollm2")``: the handle, the cache root it used, where
    `builtin_source` said it would load from before, and the file planted in the half-written cache."""

    handle: attnscope.ModelHandle
    cache_root: Path
    source_before: BuiltinSource
    planted: Path


@pytest.fixture(scope="session")
def smollm2_first_load(tmp_path_factory) -> FirstLoad:
    root = tmp_path_factory.mktemp("attnscope-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(root))
        folder = cache_folder(SMOLLM2)
        folder.mkdir(parents=True)
        planted = folder / "model.safetensors"
        planted.write_bytes(b"\0" * 1000)  # what a killed conversion leaves: weights cut short, no marker
        before = builtin_source(SMOLLM2)
        handle = attnscope.load("smollm2")
    return FirstLoad(handle, root, before, planted)


@pytest.fixture(scope="session")
def smollm2(smollm2_first_load) -> attnscope.ModelHandle:
    """The built-in SmolLM2 (see `smollm2_first_load`)."""
    return smollm2_first_load.handle


@pytest.fixture
def smollm2_cache(smollm2_first_load, monkeypatch) -> Path:
    """Points ``ATTNSCOPE_CACHE`` at the session's cache, which holds the converted SmolLM2, for one test."""
    monkeypatch.setenv(CACHE_ENV, str(smollm2_first_load.cache_root))
    return smollm2_first_load.cache_root
