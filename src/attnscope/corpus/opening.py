"""Opening a corpus from what a user names: ``"ewt"``, a directory, a ``.conllu`` file or a ``.txt`` file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CorpusError
from .conllu import read_conllu
from .ewt import EWT_NAME, ewt_files, is_ewt_directory
from .sentence import AnnotatedSentence, Corpus, fields_present, files_checksum
from .silver_ner import (
    DEFAULT_NER_PIPELINE,
    SILVER_FIELDS,
    add_silver_entities,
    entity_pipeline,
    installed_pipeline_description,
)
from .spacy_text import check_sentences, load_pipeline, pipeline_description, read_text
from .trees import tree_problem

if TYPE_CHECKING:
    from spacy.language import Language

GOLD = "conllu (gold)"
SPECS = "'ewt', a directory of .conllu files, a .conllu file, or a .txt file (with a spaCy pipeline)"


def open_corpus(
    spec: str | Path,
    *,
    spacy_pipeline: str | Language | None = None,
    silver_ner: bool | None = None,
    ner_pipeline: str | Language = DEFAULT_NER_PIPELINE,
) -> Corpus:
    """Read the corpus ``spec`` names, whole, into a `Corpus`.

    ``spec`` is ``"ewt"`` (UD English EWT dev + test, from the cache or downloaded), a directory
    (the EWT files if it holds both, otherwise all its ``*.conllu`` files, sorted by name), a
    ``.conllu`` file, or a ``.txt`` file annotated by ``spacy_pipeline`` (a pipeline name, path or
    loaded `Language`).

    ``silver_ner`` adds entity types (``ner``, ``ner_iob``) found by ``ner_pipeline`` to a CoNLL-U
    corpus's gold words, as a silver field (`Corpus.silver` names its pipeline): ``None`` (the
    default) does so for EWT only, ``True`` for any CoNLL-U corpus, ``False`` never. It takes about
    4 s for EWT dev + test on one core.
    """
    if isinstance(spec, str) and spec.strip().lower() == "ewt":
        _no_pipeline(spacy_pipeline, spec)
        return _conllu_corpus(EWT_NAME, ewt_files(), _ner(silver_ner, True, ner_pipeline))
    path = Path(spec).expanduser()
    if path.is_dir():
        _no_pipeline(spacy_pipeline, path)
        if is_ewt_directory(path):
            return _conllu_corpus(EWT_NAME, ewt_files(path), _ner(silver_ner, True, ner_pipeline))
        files = sorted(p for p in path.glob("*.conllu") if p.is_file())
        if not files:
            raise CorpusError(f"the directory {path} holds no .conllu files; expected {SPECS}")
        return _conllu_corpus(path.resolve().name, files, _ner(silver_ner, False, ner_pipeline))
    if not path.exists():
        raise CorpusError(f"corpus {str(spec)!r} was not found; expected {SPECS}")
    suffix = path.suffix.lower()
    if suffix == ".conllu":
        _no_pipeline(spacy_pipeline, path)
        return _conllu_corpus(path.stem, [path], _ner(silver_ner, False, ner_pipeline))
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
        nlp = load_pipeline(spacy_pipeline)
        check_sentences(nlp)
        annotator = pipeline_description(nlp)
        return _corpus(path.stem, [path], read_text(path, nlp), annotator, silver=annotator)
    raise CorpusError(f"{path} is neither a .conllu nor a .txt file; expected {SPECS}")


def default_corpus_annotator() -> str:
    """The `Corpus.annotator` that ``open_corpus("ewt")`` gives with the pipelines installed now
    (without loading spaCy): a cached index whose manifest says otherwise is out of date."""
    described = installed_pipeline_description(DEFAULT_NER_PIPELINE) or f"spacy {DEFAULT_NER_PIPELINE} (not installed)"
    return _silver_annotator(described)


def _silver_annotator(described: str) -> str:
    return f"{GOLD} + silver {'/'.join(SILVER_FIELDS)} from {described}"


def _ner(silver_ner: bool | None, is_ewt: bool, pipeline: str | Language) -> Language | None:
    """The entity pipeline to run over a CoNLL-U corpus, or None."""
    return entity_pipeline(pipeline) if (is_ewt if silver_ner is None else silver_ner) else None


def _no_pipeline(spacy_pipeline: object, spec: object) -> None:
    if spacy_pipeline is not None:
        raise CorpusError(
            f"a spaCy pipeline was given, but {str(spec)!r} is a CoNLL-U corpus with its own "
            f"annotations; a pipeline is only for .txt files: leave it out"
        )


def _conllu_corpus(name: str, files: list[Path], ner: Language | None) -> Corpus:
    sentences: Iterable[AnnotatedSentence] = (sentence for path in files for sentence in read_conllu(path))
    if ner is None:
        return _corpus(name, files, sentences, GOLD)
    described = pipeline_description(ner)
    return _corpus(
        name,
        files,
        add_silver_entities(tuple(sentences), ner),
        _silver_annotator(described),
        silver=described,
        silver_fields=SILVER_FIELDS,
    )


def _corpus(
    name: str,
    files: list[Path],
    sentences: Iterable[AnnotatedSentence],
    annotator: str,
    silver: str | None = None,
    silver_fields: Iterable[str] | None = None,
) -> Corpus:
    """The corpus of ``sentences``; ``silver`` describes the model that predicted ``silver_fields``
    (default: every field)."""
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
    predicted = {} if silver is None else {f: silver for f in fields if silver_fields is None or f in silver_fields}
    return Corpus(
        name=name,
        files=tuple(files),
        checksum=files_checksum(files),
        sentences=read,
        fields=fields,
        annotator=annotator,
        silver=predicted,
    )
