"""Annotated sentences and corpora: what every corpus reader yields, whatever the source format.

A `Word` carries its character span in the sentence text, so that subword tokens of any tokenizer
can be matched to it (see `attnscope.corpus.align`); the text itself is never altered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .source import CorpusSource

# Word annotations that a corpus may or may not have; `Corpus.fields` lists those it has.
METADATA_FIELDS = ("upos", "xpos", "lemma", "feats", "deprel", "ner", "ner_iob")


@dataclass(frozen=True)
class Word:
    """One syntactic word with its annotations; ``None`` where the source has no value.

    ``start``/``end`` are the word's character span in `AnnotatedSentence.text` (end exclusive).
    The words of a multi-word token ("don't" = "do" + "n't") have ``mwt`` set to the token's surface
    form; their spans split the token where the forms spell it out, otherwise each covers the whole
    token ("del" = "de" + "el"). ``head`` is the 0-based index of the syntactic head word in the
    sentence, -1 for the root.
    """

    form: str
    start: int
    end: int
    upos: str | None = None
    xpos: str | None = None
    lemma: str | None = None
    feats: str | None = None
    head: int | None = None
    deprel: str | None = None
    ner: str | None = None
    ner_iob: str | None = None
    mwt: str | None = None


@dataclass(frozen=True)
class AnnotatedSentence:
    """A sentence exactly as its source wrote it, with its words and where it came from.

    ``source`` is the file name; ``line`` the 1-based line where the sentence starts in that file.
    The words' heads form one tree (see `attnscope.corpus.trees`) or are all None; when a parser's
    tree had to be repaired to be one, ``repaired_heads`` holds the indices of the words whose head
    (and relation) the repair set. Gold files are never repaired.
    """

    sent_id: str
    text: str
    words: tuple[Word, ...]
    source: str
    line: int
    repaired_heads: tuple[int, ...] = ()


def fields_present(sentences: Iterable[AnnotatedSentence]) -> tuple[str, ...]:
    """The `METADATA_FIELDS` that have a value on at least one word, in `METADATA_FIELDS` order."""
    missing = list(METADATA_FIELDS)
    for sentence in sentences:
        for word in sentence.words:
            missing = [name for name in missing if getattr(word, name) is None]
        if not missing:
            break
    return tuple(name for name in METADATA_FIELDS if name not in missing)


@dataclass(frozen=True)
class Corpus:
    """A read corpus: its sentences, the files they came from and how they were annotated.

    ``checksum`` is the SHA-256 (hex) of the input files' bytes, concatenated in ``files`` order;
    ``annotator`` is ``"conllu (gold)"``, ``"spacy <pipeline> <version>"``, or ``"conllu (gold) +
    silver ner/ner_iob from spacy <pipeline> <version>"``. ``silver`` maps each field whose values a
    model predicted (rather than annotators) to ``"spacy <pipeline> <version>"``: every field of a
    text corpus, the entity fields of a gold corpus given silver entities, none of a gold corpus.
    ``origin`` is the `CorpusSource` it was read from (`source`).
    """

    name: str
    files: tuple[Path, ...]
    checksum: str
    sentences: tuple[AnnotatedSentence, ...]
    fields: tuple[str, ...]
    annotator: str
    silver: dict[str, str] = field(default_factory=dict)
    origin: CorpusSource | None = field(default=None, compare=False, repr=False)

    def source(self) -> CorpusSource:
        """The `CorpusSource` this corpus was read from, to plan and read it one slice at a time
        (`attnscope.corpus.slices`); `CorpusError` for a corpus made by hand rather than by `open_corpus`."""
        if self.origin is None:
            from ..errors import CorpusError

            raise CorpusError(
                f"the corpus {self.name!r} was not opened by open_corpus, so it has no source to read "
                f"slices from; open it with open_corpus or corpus_source"
            )
        return self.origin

    def __len__(self) -> int:
        return len(self.sentences)

    @property
    def word_count(self) -> int:
        """How many words the corpus holds, over all sentences."""
        return sum(len(sentence.words) for sentence in self.sentences)


def files_checksum(files: Iterable[Path]) -> str:
    """SHA-256 (hex) over the bytes of ``files``, read in the order given."""
    digest = hashlib.sha256()
    for path in files:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
