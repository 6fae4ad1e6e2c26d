"""Corpora read one slice at a time: slices planned from the files' bytes alone, any one read on its own.

`plan_slices` streams the files once, line by line, and cuts them into byte ranges where a sentence
(CoNLL-U) or a paragraph (text) starts, about ``target_bytes`` each; it never parses a sentence or
runs spaCy, and holds one line at a time (plus 8 bytes per CoNLL-U sentence, to find duplicate
sentence ids across the whole corpus). `read_slice` reads one range into the very sentences that
`open_corpus` gives for it (same ids, text, words, lines, repaired heads and silver entities), so
the slices of a plan, read in order, are the whole corpus:

>>> source = corpus_source("ewt")
>>> pieces = plan_slices(source, 1 << 20)
>>> [s for piece in pieces for s in read_slice(source, piece)] == list(open_corpus("ewt").sentences)
True

Checked while planning, as `open_corpus` would: UTF-8 and NUL bytes, files without sentences,
paragraphs longer than the spaCy pipeline takes, and sentence ids used twice (within a file or across
files: the same errors, naming both places). Checked while reading: that the slice's bytes are still
those planned (its SHA-256), and that a pipeline loaded by name is the one the source was made with.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING

from ..errors import CorpusError, CorpusFormatError
from .conllu import parse_conllu
from .scan import DuplicateIds, Unit, scan_units
from .sentence import AnnotatedSentence
from .silver_ner import add_silver_entities, entity_pipeline
from .source import CorpusSlice, CorpusSource
from .spacy_text import annotate_text, check_paragraph, check_sentences, load_pipeline, pipeline_description
from .text_file import decode_utf8, read_bytes

if TYPE_CHECKING:
    from spacy.language import Language

LOADED: dict[str, Language] = {}
"""Pipelines loaded by name in this process (`read_slice`'s default cache): loaded once, reused."""


def plan_slices(source: CorpusSource, target_bytes: int) -> list[CorpusSlice]:
    """The slices of ``source``'s files, in order, covering every byte of every file: each at least
    ``target_bytes`` long (or the rest of its file) and holding at least one sentence (CoNLL-U) or
    paragraph (text); a slice never spans two files. ``target_bytes`` 1 gives one sentence or
    paragraph per slice, a size above the largest file one slice per file.

    Raises `CorpusError` / `CorpusFormatError` for what `open_corpus` would refuse before annotating
    (see the module's docstring)."""
    if not isinstance(target_bytes, int) or isinstance(target_bytes, bool) or target_bytes < 1:
        raise CorpusError(f"target_bytes must be a positive number of bytes, got {target_bytes!r}")
    conllu = source.format == "conllu"
    max_length = None if conllu else _pipeline(source, None).max_length
    ids = DuplicateIds()
    pieces: list[CorpusSlice] = []
    for number, path in enumerate(source.paths):
        pieces += _plan_file(number, path, conllu, target_bytes, ids, max_length)
    if conllu:
        ids.check(source.paths)
    return pieces


def _plan_file(
    number: int, path, conllu: bool, target_bytes: int, ids: DuplicateIds, max_length: int | None
) -> Iterator[CorpusSlice]:
    digest, start, line, before = hashlib.sha256(), 0, 1, 0
    units, previous, end = 0, None, 0
    for offset, row, raw, unit in scan_units(path, conllu):
        if unit is not None:
            if units > before and offset - start >= target_bytes:
                yield CorpusSlice(number, start, offset, line, before, digest.hexdigest())
                digest, start, line, before = hashlib.sha256(), offset, row, units
            if previous is not None:
                _check_unit(previous, path, units, ids, max_length)
            units, previous = units + 1, unit
        digest.update(raw)
        end = offset + len(raw)
    if previous is None:
        expected = (
            "expected CoNLL-U: '# ...' comment lines, then one line of 10 tab-separated columns per word, "
            "and a blank line after each sentence"
            if conllu
            else "expected UTF-8 text with paragraphs separated by blank lines"
        )
        raise CorpusFormatError(f"{path} holds no sentences; {expected}")
    _check_unit(previous, path, units, ids, max_length)
    yield CorpusSlice(number, start, end, line, before, digest.hexdigest())


def _check_unit(unit: Unit, path, number: int, ids: DuplicateIds, max_length: int | None) -> None:
    """Record a finished sentence's id (CoNLL-U), or check a finished paragraph's length (text)."""
    if max_length is None:
        ids.add(unit.sent_id or f"{path.stem}-{number}")
    else:
        check_paragraph(path, unit.line, unit.characters, max_length)


def read_slice(
    source: CorpusSource, piece: CorpusSlice, nlp_cache: MutableMapping[str, Language] | None = None
) -> list[AnnotatedSentence]:
    """The sentences of one slice of ``source``, exactly as `open_corpus` gives them.

    ``nlp_cache`` maps pipeline names to pipelines loaded already; a pipeline not in it is loaded and
    added (default: this process's `LOADED`). A pipeline the source holds loaded is used as it is.
    Raises `CorpusError` for a slice of another corpus (no such file) or whose bytes changed since it
    was planned, `CorpusFormatError` for a malformed sentence in it.
    """
    if not 0 <= piece.file < len(source.files):
        raise CorpusError(
            f"slice of file {piece.file}, but the corpus {source.name!r} has {len(source.files)} file(s): "
            f"a slice of another plan?"
        )
    path = source.paths[piece.file]
    data = read_bytes(path, piece.start, piece.size)
    if len(data) != piece.size or (piece.checksum and hashlib.sha256(data).hexdigest() != piece.checksum):
        raise CorpusError(
            f"{path}: bytes {piece.start}-{piece.end} (from line {piece.line}) are not those planned: the file "
            f"changed since its slices were planned; plan the corpus again"
        )
    return _read(source, piece.file, data, piece.line, piece.start, piece.sentence, nlp_cache, whole=False)


def read_file(source: CorpusSource, number: int) -> list[AnnotatedSentence]:
    """The sentences of file ``number`` of ``source``, the whole file read as one slice."""
    return _read(source, number, read_bytes(source.paths[number]), 1, 0, 0, None, whole=True)


def _read(
    source: CorpusSource,
    number: int,
    data: bytes,
    line: int,
    start: int,
    before: int,
    cache: MutableMapping[str, Language] | None,
    whole: bool,
) -> list[AnnotatedSentence]:
    """The sentences in ``data``: bytes of file ``number`` from byte ``start``, line ``line``, after
    ``before`` sentences (CoNLL-U) or paragraphs (text); ``whole`` when that is the whole file."""
    path = source.paths[number]
    text = decode_utf8(data, path, line, start)
    if source.format == "text":
        nlp = _pipeline(source, cache)
        return list(annotate_text(text, path, nlp, first_line=line, first_paragraph=before, whole=whole))
    sentences = tuple(parse_conllu(text, path, first_line=line, first_sentence=before))
    if source.ner_pipeline is None:
        return list(sentences)
    return list(add_silver_entities(sentences, _pipeline(source, cache)))


def _pipeline(source: CorpusSource, cache: MutableMapping[str, Language] | None) -> Language:
    """The spaCy pipeline that reads ``source``: its text pipeline, or its silver entity recogniser."""
    text = source.format == "text"
    given = source.spacy_nlp if text else source.ner_nlp
    if given is not None:
        return given
    name = source.spacy_pipeline if text else source.ner_pipeline
    if name is None:
        raise CorpusError(f"the corpus source {source.name!r} names no spaCy pipeline to read it with")
    cache = LOADED if cache is None else cache
    if name not in cache:
        nlp = load_pipeline(name) if text else entity_pipeline(name)
        if text:
            check_sentences(nlp)
        expected = source.annotator if text else next(iter(source.silver.values()), "")
        found = pipeline_description(nlp)
        if found != expected:
            raise CorpusError(
                f"the corpus {source.name!r} was planned with the spaCy pipeline {expected!r}, but {name!r} "
                f"loads {found!r} here: install the same pipeline version, or plan the corpus again"
            )
        cache[name] = nlp
    return cache[name]
