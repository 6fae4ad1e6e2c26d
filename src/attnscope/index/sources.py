"""What a build reads its pieces from: a corpus's files (slices planned from their bytes, read by any
worker that reaches them) or a corpus already read into memory (this process only)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..corpus import AnnotatedSentence, Corpus
from ..corpus.slices import plan_slices, read_slice
from ..corpus.source import CorpusSlice, CorpusSource
from ..errors import InputError
from .plan import BYTES_PER_TOKEN, Piece, PieceReader, Plan, sentence_pieces


def file_pieces(source: CorpusSource, piece_tokens: int) -> list[Piece]:
    """The pieces of ``source``'s files: slices of about ``piece_tokens`` tokens (estimated from bytes),
    each with its bytes' SHA-256 so that a worker can tell a file changed since the plan."""
    per_token = BYTES_PER_TOKEN[source.format]
    slices = plan_slices(source, max(1, int(piece_tokens * per_token)))
    return [
        Piece(s.file, s.start, s.end, s.line, s.sentence, s.checksum, max(1, int(s.size / per_token))) for s in slices
    ]


@dataclass(frozen=True)
class SliceReader:
    """Reads a file piece's sentences (`attnscope.corpus.read_slice`); picklable, so Ray sends it to workers."""

    source: CorpusSource

    def __call__(self, piece: Piece) -> Sequence[AnnotatedSentence]:
        if piece.file < 0:
            raise InputError("this plan's pieces are sentences of a corpus in memory, not slices of its files")
        part = CorpusSlice(piece.file, piece.start, piece.end, piece.line, piece.before, piece.digest)
        return read_slice(self.source, part)

    def __reduce__(self) -> tuple[Any, ...]:  # loaded spaCy pipelines stay here: a worker loads them by name
        return (SliceReader, (replace(self.source, spacy_nlp=None, ner_nlp=None),))


@dataclass(frozen=True)
class MemoryReader:
    """Reads a piece of a corpus held in memory (sentences ``start``..``end``)."""

    sentences: Sequence[AnnotatedSentence]

    def __call__(self, piece: Piece) -> Sequence[AnnotatedSentence]:
        return self.sentences[piece.start : piece.end]


def corpus_record(corpus: Corpus | CorpusSource) -> dict[str, Any]:
    """What a plan records of the corpus: the manifest's corpus fields, and the source when it has files
    a worker can read (``source``, `CorpusSource.to_dict`)."""
    record: dict[str, Any] = {
        "name": corpus.name,
        "checksum": corpus.checksum,
        "files": [str(f) for f in corpus.files],
        "annotator": corpus.annotator,
        "silver": dict(corpus.silver),
    }
    if isinstance(corpus, CorpusSource):
        record["source"] = corpus.to_dict()
    return record


def pieces_and_reader(corpus: Corpus | CorpusSource, piece_tokens: int) -> tuple[list[Piece], PieceReader]:
    """A corpus's pieces and how to read them: file slices for a `CorpusSource`, sentence runs for a `Corpus`."""
    if isinstance(corpus, CorpusSource):
        return file_pieces(corpus, piece_tokens), SliceReader(corpus)
    return sentence_pieces(corpus.sentences, piece_tokens), MemoryReader(corpus.sentences)


def plan_reader(plan: Plan, corpus_root: str | os.PathLike[str] | None = None) -> PieceReader:
    """The reader of a plan's pieces for a worker that has only the plan (another process or machine).
    ``corpus_root``: where this machine holds the corpus, when not at the paths the plan records
    (`remapped`); each piece's bytes are still checked against the SHA-256 the plan recorded.
    Raises `InputError` when the plan's corpus was given in memory and has no files to read, or a file
    is not under ``corpus_root``."""
    source = plan.corpus.get("source")
    if source is None:
        raise InputError(
            f"the plan's corpus {plan.corpus.get('name')!r} was given in memory, so only the process that planned "
            f"it can build its shards; plan from the corpus's files (`attnscope index CORPUS --out DIR --plan-only`)"
        )
    corpus = CorpusSource.from_dict(source)
    if corpus_root is not None:
        corpus = replace(corpus, files=remapped(corpus.files, corpus_root))
    return SliceReader(corpus)


def corpus_folder(files: Sequence[str]) -> str:
    """The folder a plan's corpus files share (a one-file corpus: the file's folder)."""
    return os.path.commonpath([os.path.dirname(os.path.abspath(f)) for f in files])


def remapped(files: Sequence[str], corpus_root: str | os.PathLike[str]) -> tuple[str, ...]:
    """``files`` moved from the folder they share (`corpus_folder`) to ``corpus_root``, keeping their paths
    below it: with files ``/data/ewt/a.conllu`` and ``/data/ewt/dev/b.conllu``, root ``/mnt/ewt`` gives
    ``/mnt/ewt/a.conllu`` and ``/mnt/ewt/dev/b.conllu``. Raises `InputError` naming the first file that
    is not there."""
    root = Path(corpus_root).expanduser().absolute()
    if not root.is_dir():
        raise InputError(f"--corpus-root {corpus_root}: no such folder (give the folder holding the corpus files)")
    common = corpus_folder(files)
    moved = tuple(str(root / os.path.relpath(os.path.abspath(f), common)) for f in files)
    for planned, here in zip(files, moved):
        if not Path(here).is_file():
            raise InputError(
                f"--corpus-root {corpus_root}: the plan's corpus file {planned} (below {common}) is not at {here}"
            )
    return moved
