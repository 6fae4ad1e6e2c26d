"""Opening a corpus from what a user names: ``"ewt"``, a directory, a ``.conllu`` file or a ``.txt`` file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from ..errors import CorpusError
from .conllu import read_conllu
from .ewt import EWT_NAME, ewt_files, is_ewt_directory
from .sentence import AnnotatedSentence, Corpus, fields_present, files_checksum
from .spacy_text import check_sentences, load_pipeline, pipeline_description, read_text

if TYPE_CHECKING:
    from spacy.language import Language

GOLD = "conllu (gold)"
SPECS = "'ewt', a directory of .conllu files, a .conllu file, or a .txt file (with a spaCy pipeline)"


def open_corpus(spec: str | Path, *, spacy_pipeline: str | Language | None = None) -> Corpus:
    """Read the corpus ``spec`` names, whole, into a `Corpus`.

    ``spec`` is ``"ewt"`` (UD English EWT dev + test, from the cache or downloaded), a directory
    (the EWT files if it holds both, otherwise all its ``*.conllu`` files, sorted by name), a
    ``.conllu`` file, or a ``.txt`` file annotated by ``spacy_pipeline`` (a pipeline name, path or
    loaded `Language`).
    """
    if isinstance(spec, str) and spec.strip().lower() == "ewt":
        _no_pipeline(spacy_pipeline, spec)
        return _conllu_corpus(EWT_NAME, ewt_files())
    path = Path(spec).expanduser()
    if path.is_dir():
        _no_pipeline(spacy_pipeline, path)
        if is_ewt_directory(path):
            return _conllu_corpus(EWT_NAME, ewt_files(path))
        files = sorted(p for p in path.glob("*.conllu") if p.is_file())
        if not files:
            raise CorpusError(f"the directory {path} holds no .conllu files; expected {SPECS}")
        return _conllu_corpus(path.resolve().name, files)
    if not path.exists():
        raise CorpusError(f"corpus {str(spec)!r} was not found; expected {SPECS}")
    suffix = path.suffix.lower()
    if suffix == ".conllu":
        _no_pipeline(spacy_pipeline, path)
        return _conllu_corpus(path.stem, [path])
    if suffix == ".txt":
        if spacy_pipeline is None:
            raise CorpusError(f"{path} is raw text, which needs a spaCy pipeline to annotate it; "
                              f"name one, e.g. spacy_pipeline='en_core_web_sm' (--spacy-pipeline)")
        nlp = load_pipeline(spacy_pipeline)
        check_sentences(nlp)
        return _corpus(path.stem, [path], read_text(path, nlp), pipeline_description(nlp))
    raise CorpusError(f"{path} is neither a .conllu nor a .txt file; expected {SPECS}")


def _no_pipeline(spacy_pipeline: object, spec: object) -> None:
    if spacy_pipeline is not None:
        raise CorpusError(f"a spaCy pipeline was given, but {str(spec)!r} is a CoNLL-U corpus with its own "
                          f"annotations; a pipeline is only for .txt files: leave it out")


def _conllu_corpus(name: str, files: list[Path]) -> Corpus:
    sentences = (sentence for path in files for sentence in read_conllu(path))
    return _corpus(name, files, sentences, GOLD)


def _corpus(name: str, files: list[Path], sentences: Iterable[AnnotatedSentence], annotator: str) -> Corpus:
    read = tuple(sentences)
    if not read:
        raise CorpusError(f"the corpus {name!r} holds no sentences; expected {SPECS}")
    first: dict[str, AnnotatedSentence] = {}
    for sentence in read:
        other = first.setdefault(sentence.sent_id, sentence)
        if other is not sentence:
            raise CorpusError(f"{sentence.source}:{sentence.line}: sent_id {sentence.sent_id!r} is already used "
                              f"by {other.source}:{other.line}; expected unique sentence ids across the corpus")
    return Corpus(name=name, files=tuple(files), checksum=files_checksum(files), sentences=read,
                  fields=fields_present(read), annotator=annotator)
