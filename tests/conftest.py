"""Shared fixtures: the real default model, the built-in SmolLM2, and tiny random models of other architectures."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Tests never reach the network: an unknown model name must fail at once, not after hub retries.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# Property tests draw the same inputs on every run and never fail on the machine's speed (no deadline,
# no too-slow health check), so a result never depends on the seed of the day or the load of a shared
# machine. ATTNSCOPE_EXPLORE=1 lets them draw new inputs each run, to look for new failures by hand.
settings.register_profile(
    "repeatable", derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("explore", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("explore" if os.environ.get("ATTNSCOPE_EXPLORE") else "repeatable")

import attnscope  # noqa: E402

from .bertviz_notebooks import bertviz_models, bertviz_notebook  # noqa: E402,F401

# Session fixtures that several test modules share, registered once here so they are built once.
from .index_fixtures import ewt_index, silver_index, small_corpus, small_index, written_index  # noqa: E402,F401
from .smollm2_fixture import smollm2, smollm2_cache, smollm2_first_load  # noqa: E402,F401
from .spacy_pipeline import english_pipeline  # noqa: E402,F401
from .tiny_models import build_model  # noqa: E402
from .zeroed_model import save_zeroed_copy, zeroed_query_copy  # noqa: E402

PUB = "The girl ran to a local pub to escape the din of her city."


@pytest.fixture(scope="session")
def default_model() -> attnscope.ModelHandle:
    return attnscope.load("default")


@pytest.fixture(scope="session")
def zeroed_copy() -> attnscope.ModelHandle:
    """The default model with head 2-5's queries zeroed (tests/zeroed_model.py): a changed checkpoint."""
    return zeroed_query_copy()


@pytest.fixture(scope="session")
def zeroed_path(zeroed_copy, tmp_path_factory) -> Path:
    """`zeroed_copy` saved as a checkpoint folder named ``zeroed-2-5`` (served and shown by that name)."""
    return save_zeroed_copy(zeroed_copy, tmp_path_factory.mktemp("zeroed") / "zeroed-2-5")


@pytest.fixture(scope="session")
def tiny_path(tmp_path_factory):
    """Path of a saved tiny model: ``tiny_path("gpt2")`` or ``tiny_path("bert", head=False)``."""
    cache: dict[tuple[str, bool], object] = {}

    def make(name: str, head: bool = True):
        key = (name, head)
        if key not in cache:
            cache[key] = build_model(name, tmp_path_factory.mktemp(f"{name}-{'head' if head else 'body'}"), head=head)
        return cache[key]

    return make


@pytest.fixture
def config_only(tiny_path, tmp_path) -> Path:
    """A folder with a tiny BERT's config (2 layers, 4 heads) and no weights: loading it fails, so an error
    that names an option must come before loading."""
    folder = tmp_path / "config-only"
    folder.mkdir()
    shutil.copy(tiny_path("bert") / "config.json", folder / "config.json")
    return folder


@pytest.fixture(scope="session")
def tiny(tiny_path):
    """A loaded tiny model handle, cached per architecture for the session."""
    cache: dict[tuple[str, bool], attnscope.ModelHandle] = {}

    def load(name: str, head: bool = True) -> attnscope.ModelHandle:
        key = (name, head)
        if key not in cache:
            cache[key] = attnscope.load(str(tiny_path(name, head)))
        return cache[key]

    return load
