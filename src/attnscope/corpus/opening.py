"""Opening a corpus from what a user names: ``"ewt"``, ``"kjv"``, a directory, a ``.conllu`` file or a ``.txt``
file: whole (`open_corpus`), or as a `CorpusSource` to read one slice at a time (`corpus_source`)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CorpusError
from .ewt import EWT_NAME, ewt_files, is_ewt_directory
from .kjv import is_kjv_spec, kjv_file, kjv_name, kjv_passage
from .sentence import METADATA_FIELDS, AnnotatedSentence, Corpus, fields_present, files_checksum
from .silver_ner import DEFAULT_NER_PIPELINE, SILVER_FIELDS, entity_pipeline, installed_pipeline_description
from .slices import read_file
from .source import CorpusSource
from .spacy_text import check_sentences, load_pipeline, pipeline_description
from .trees import tree_problem

if TYPE_CHECKING:
    from spacy.language import Language

GOLD = "conllu (gold)"
SPECS = (
    "'ewt', 'kjv' (or 'kjv:<passage>'), a directory of .conllu files, a .conllu file, "
    "or a .txt file (with a spaCy pipeline)"
)
TEXT_FIELDS = METADATA_FIELDS  # a text corpus's fields all come from its spaCy pipeline


def open_corpus(
    spec: str | Path,
    *,
    spacy_pipeline: str | Language | None = None,
    silver_ner: bool | None = None,
    ner_pipeline: str | Language = DEFAULT_NER_PIPELINE,
) -> Corpus:
    """Read the corpus ``spec`` names, whole, into a `Corpus`.

    ``spec`` is ``"ewt"`` (UD English EWT dev + test, from the cache or downloaded), ``"kjv"`` (the
    King James Bible from Debian's ``bible-kjv``, or ``"kjv:<passage>"``, see `attnscope.corpus.kjv`),
    a directory (the EWT files if it holds both, otherwise all its ``*.conllu`` files, sorted by
    name), a ``.conllu`` file, or a ``.txt`` file annotated by ``spacy_pipeline`` (a pipeline name,
    path or loaded `Language`).

    ``silver_ner`` adds entity types (``ner``, ``ner_iob``) found by ``ner_pipeline`` to a CoNLL-U
    corpus's gold words, as a silver field (`Corpus.silver` names its pipeline): ``None`` (the
    default) does so for EWT only, ``True`` for any CoNLL-U corpus, ``False`` never. It takes about
    4 s for EWT dev + test on one core.

    The result equals reading every slice of `plan_slices` with `read_slice`, in order;
    `Corpus.source` gives the `CorpusSource` to plan them from.
    """
    source = corpus_source(spec, spacy_pipeline=spacy_pipeline, silver_ner=silver_ner, ner_pipeline=ner_pipeline)
    sentences = (sentence for number in range(len(source.files)) for sentence in read_file(source, number))
    return _corpus(source, sentences)


def corpus_source(
    spec: str | Path,
    *,
    spacy_pipeline: str | Language | None = None,
    silver_ner: bool | None = None,
    ner_pipeline: str | Language = DEFAULT_NER_PIPELINE,
) -> CorpusSource:
    """The `CorpusSource` of the corpus ``spec`` names (the specs and errors of `open_corpus`), without
    reading its sentences: its files are found and checksummed, its pipelines loaded and checked."""
    if isinstance(spec, str) and spec.strip().lower() == "ewt":
        _no_pipeline(spacy_pipeline, spec)
        return _conllu_source(EWT_NAME, ewt_files(), silver_ner, True, ner_pipeline)
    if isinstance(spec, str) and is_kjv_spec(spec):
        if silver_ner:
            raise CorpusError(
                f"{spec!r} is raw text, whose entity types come from its spaCy pipeline; leave silver_ner out"
            )
        path = kjv_file(kjv_passage(spec))
        return _text_source(kjv_name(spec), path, spacy_pipeline or DEFAULT_NER_PIPELINE)
    path = Path(spec).expanduser()
    if path.is_dir():
        _no_pipeline(spacy_pipeline, path)
        if is_ewt_directory(path):
            return _conllu_source(EWT_NAME, ewt_files(path), silver_ner, True, ner_pipeline)
        files = sorted(p for p in path.glob("*.conllu") if p.is_file())
        if not files:
            raise CorpusError(f"the directory {path} holds no .conllu files; expected {SPECS}")
        return _conllu_source(path.resolve().name, files, silver_ner, False, ner_pipeline)
    if not path.exists():
        raise CorpusError(f"corpus {str(spec)!r} was not found; expected {SPECS}")
    suffix = path.suffix.lower()
    if suffix == ".conllu":
        _no_pipeline(spacy_pipeline, path)
        return _conllu_source(path.stem, [path], silver_ner, False, ner_pipeline)
    if suffix == ".txt":
        if spacy_pipeline is None:
            raise CorpusError(
                f"{path} is raw text, which needs a spaCy pipeline to annotate it; "
                f"name one, e.g. spacy_pipeline={DEFAULT_NER_PIPELINE!r} (--spacy-pipeline)"
            )
        if silver_ner:
            raise CorpusError(
                f"{path} is raw text, whose entity types come from its spaCy pipeline "
                f"({spacy_pipeline!r}); silver_ner is only for CoNLL-U corpora: leave it out"
            )
        return _text_source(path.stem, path, spacy_pipeline)
    raise CorpusError(f"{path} is neither a .conllu nor a .txt file; expected {SPECS}")


def default_corpus_annotator() -> str:
    """The `Corpus.annotator` that ``open_corpus("ewt")`` gives with the pipelines installed now
    (without loading spaCy): a cached index whose manifest says otherwise is out of date."""
    described = installed_pipeline_description(DEFAULT_NER_PIPELINE) or f"spacy {DEFAULT_NER_PIPELINE} (not installed)"
    return _silver_annotator(described)


def _silver_annotator(described: str) -> str:
    return f"{GOLD} + silver {'/'.join(SILVER_FIELDS)} from {described}"


def _no_pipeline(spacy_pipeline: object, spec: object) -> None:
    if spacy_pipeline is not None:
        raise CorpusError(
            f"a spaCy pipeline was given, but {str(spec)!r} is a CoNLL-U corpus with its own "
            f"annotations; a pipeline is only for .txt files: leave it out"
        )


def _conllu_source(
    name: str, files: list[Path], silver_ner: bool | None, is_ewt: bool, pipeline: str | Language
) -> CorpusSource:
    """A CoNLL-U corpus's source, with silver entities from ``pipeline`` when ``silver_ner`` says so
    (``None``: for EWT only)."""
    paths, checksum = tuple(os.path.abspath(p) for p in files), files_checksum(files)
    if not (is_ewt if silver_ner is None else silver_ner):
        return CorpusSource(name, paths, checksum, "conllu", GOLD)
    ner = entity_pipeline(pipeline)
    described = pipeline_description(ner)
    return CorpusSource(
        name,
        paths,
        checksum,
        "conllu",
        _silver_annotator(described),
        silver=dict.fromkeys(SILVER_FIELDS, described),
        ner_pipeline=pipeline_name(pipeline, ner),
        ner_nlp=ner,
    )


def _text_source(name: str, path: Path, pipeline: str | Language) -> CorpusSource:
    nlp = load_pipeline(pipeline)
    check_sentences(nlp)
    annotator = pipeline_description(nlp)
    return CorpusSource(
        name=name,
        files=(os.path.abspath(path),),
        checksum=files_checksum([path]),
        format="text",
        annotator=annotator,
        silver=dict.fromkeys(TEXT_FIELDS, annotator),
        spacy_pipeline=pipeline_name(pipeline, nlp),
        spacy_nlp=nlp,
    )


def pipeline_name(given: str | Language, nlp: Language) -> str:
    """The name another process loads a pipeline by: the name or path given, or for a pipeline given
    loaded, its package's name (``<lang>_<name>`` of its meta, as spaCy names packages)."""
    if isinstance(given, str):
        return given
    return f"{nlp.meta.get('lang', nlp.lang)}_{nlp.meta.get('name', 'pipeline')}"


def _corpus(source: CorpusSource, sentences: Iterable[AnnotatedSentence]) -> Corpus:
    """The corpus of ``sentences``, read from ``source``: every tree and sentence id checked; the
    silver fields are those of the source's that the sentences have."""
    name = source.name
    read = tuple(sentences)
    if not read:
        raise CorpusError(f"the corpus {name!r} holds no sentences; expected {SPECS}")
    first: dict[str, AnnotatedSentence] = {}
    for sentence in read:
        problem = tree_problem([word.head for word in sentence.words])
        if problem is not None:  # every reader checks or repairs its trees: this is a reader's bug
            raise CorpusError(
                f"{sentence.source}:{sentence.line}: sentence {sentence.sent_id!r} is not one "
                f"dependency tree: {problem.message()}"
            )
        other = first.setdefault(sentence.sent_id, sentence)
        if other is not sentence:
            raise CorpusError(
                f"{sentence.source}:{sentence.line}: sent_id {sentence.sent_id!r} is already used "
                f"by {other.source}:{other.line}; expected unique sentence ids across the corpus"
            )
    fields = fields_present(read)
    return Corpus(
        name=name,
        files=tuple(source.paths),
        checksum=source.checksum,
        sentences=read,
        fields=fields,
        annotator=source.annotator,
        silver={f: by for f, by in source.silver.items() if f in fields},
        origin=source,
    )
