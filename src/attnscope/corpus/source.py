"""A corpus named but not read (`CorpusSource`) and one slice of its files (`CorpusSlice`): plain data,
JSON-serialisable, so that a plan made on one machine can be read on others (`attnscope.corpus.slices`)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CorpusError

if TYPE_CHECKING:
    from spacy.language import Language

FORMATS = ("conllu", "text")
"""The formats of corpus files: CoNLL-U treebanks, raw text annotated by spaCy."""


@dataclass(frozen=True)
class CorpusSource:
    """Everything needed to plan a corpus's slices and to read any one of them, without its sentences.

    ``files`` are the corpus files (absolute paths, read in this order), ``checksum`` the SHA-256 of
    their bytes concatenated (`Corpus.checksum`), ``format`` one of `FORMATS`; ``annotator`` and
    ``silver`` are those of the `Corpus` that `open_corpus` gives. ``spacy_pipeline`` names the
    pipeline (an installed package or a saved directory) that annotates a text corpus;
    ``ner_pipeline`` the one that adds silver entity types to a CoNLL-U corpus (None: none added).
    ``spacy_nlp`` and ``ner_nlp`` hold pipelines given already loaded: used in this process, never
    serialised (another process loads the pipeline by its name).
    """

    name: str
    files: tuple[str, ...]
    checksum: str
    format: str
    annotator: str
    silver: dict[str, str] = field(default_factory=dict)
    spacy_pipeline: str | None = None
    ner_pipeline: str | None = None
    spacy_nlp: Language | None = field(default=None, compare=False, repr=False)
    ner_nlp: Language | None = field(default=None, compare=False, repr=False)

    @property
    def paths(self) -> list[Path]:
        return [Path(name) for name in self.files]

    def to_dict(self) -> dict[str, Any]:
        """The source as JSON-ready data (loaded pipelines left out)."""
        return {
            "name": self.name,
            "files": list(self.files),
            "checksum": self.checksum,
            "format": self.format,
            "annotator": self.annotator,
            "silver": dict(self.silver),
            "spacy_pipeline": self.spacy_pipeline,
            "ner_pipeline": self.ner_pipeline,
        }

    @classmethod
    def from_dict(cls, data: Any) -> CorpusSource:
        """The source `to_dict` gave; `CorpusError` naming the entry that is missing or wrong."""
        _keys(data, "corpus source", ("name", "files", "checksum", "format", "annotator", "silver"))
        files = data["files"]
        if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
            raise CorpusError(f"corpus source: files must be a non-empty list of paths, got {files!r}")
        if data["format"] not in FORMATS:
            raise CorpusError(f"corpus source: format {data['format']!r} is not one of {', '.join(FORMATS)}")
        silver = data["silver"]
        if not isinstance(silver, dict) or not all(isinstance(v, str) for v in silver.values()):
            raise CorpusError(f"corpus source: silver must map field names to pipelines, got {silver!r}")
        for key in ("name", "checksum", "annotator"):
            _typed(data, "corpus source", key, str)
        for key in ("spacy_pipeline", "ner_pipeline"):
            if data.get(key) is not None:
                _typed(data, "corpus source", key, str)
        return cls(
            name=data["name"],
            files=tuple(files),
            checksum=data["checksum"],
            format=data["format"],
            annotator=data["annotator"],
            silver=dict(silver),
            spacy_pipeline=data.get("spacy_pipeline"),
            ner_pipeline=data.get("ner_pipeline"),
        )


@dataclass(frozen=True)
class CorpusSlice:
    """Bytes ``start``..``end`` (end exclusive) of file number ``file`` of a `CorpusSource`, cut where a
    sentence (CoNLL-U) or a paragraph (text) starts; ``line`` is the 1-based line at ``start``,
    ``sentence`` how many sentences (CoNLL-U) or paragraphs (text) of the file come before it.
    ``checksum`` is the SHA-256 of the slice's bytes when planned ("" for a slice read unchecked):
    a slice whose bytes changed since is refused."""

    file: int
    start: int
    end: int
    line: int
    sentence: int
    checksum: str = ""

    @property
    def size(self) -> int:
        """The slice's length in bytes."""
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Any) -> CorpusSlice:
        """The slice `to_dict` gave; `CorpusError` naming the entry that is missing or wrong."""
        _keys(data, "corpus slice", ("file", "start", "end", "line", "sentence"))
        for key in ("file", "start", "end", "line", "sentence"):
            _typed(data, "corpus slice", key, int)
        if not 0 <= data["start"] <= data["end"] or data["line"] < 1 or data["file"] < 0 or data["sentence"] < 0:
            raise CorpusError(
                f"corpus slice: expected 0 <= start <= end, line >= 1, file >= 0 and sentence >= 0, got {data!r}"
            )
        checksum = data.get("checksum", "")
        if not isinstance(checksum, str):
            raise CorpusError(f"corpus slice: checksum must be a string, got {checksum!r}")
        return cls(data["file"], data["start"], data["end"], data["line"], data["sentence"], checksum)


def _keys(data: Any, what: str, required: tuple[str, ...]) -> None:
    if not isinstance(data, dict):
        raise CorpusError(f"{what}: expected a JSON object, got {type(data).__name__}")
    missing = [key for key in required if key not in data]
    if missing:
        raise CorpusError(f"{what}: missing {', '.join(missing)}; expected the keys {', '.join(required)}")


def _typed(data: dict[str, Any], what: str, key: str, kind: type) -> None:
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CorpusError(f"{what}: {key} must be {'an integer' if kind is int else 'a string'}, got {value!r}")
