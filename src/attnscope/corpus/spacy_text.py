"""Reading raw UTF-8 text and annotating it with a spaCy pipeline (sentences, POS, tags, lemmas, deps, NER).

spaCy is imported only when a pipeline is loaded, so the rest of attnscope works without it. The
text is split into paragraphs at blank lines, each paragraph goes through ``nlp.pipe``, and every
sentence spaCy finds becomes an `AnnotatedSentence` whose text is a slice of the file's text, never
normalised.
"""

from __future__ import annotations

import bisect
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ..errors import CorpusError, CorpusFormatError
from .sentence import AnnotatedSentence, Word
from .text_file import read_utf8

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Span, Token

# Factories of components that set sentence boundaries, and of those that set entities.
SENTENCE_FACTORIES = ("parser", "beam_parser", "senter", "sentencizer")
ENTITY_FACTORIES = ("ner", "beam_ner", "entity_ruler")
PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")  # a line holding only whitespace, and what follows it


def load_pipeline(pipeline: str | Language) -> Language:
    """A spaCy pipeline: ``pipeline`` itself, or the installed package or saved directory it names."""
    try:
        import spacy
    except ImportError:
        raise CorpusError("spaCy is not installed, and raw text needs it to be annotated; "
                          "install it with `pip install spacy`") from None
    if not isinstance(pipeline, str):
        return pipeline
    try:
        return spacy.load(pipeline)
    except OSError as error:
        raise CorpusError(
            f"the spaCy pipeline {pipeline!r} is not installed ({str(error).splitlines()[0][:200]}); "
            f"expected an installed pipeline package or a saved pipeline directory: install it with "
            f"`python -m spacy download {pipeline}`"
        ) from None


def pipeline_description(nlp: Language) -> str:
    """``"spacy <pipeline name> <version>"``, the `Corpus.annotator` of text annotated by ``nlp``."""
    meta = nlp.meta
    name = f"{meta.get('lang', nlp.lang)}_{meta.get('name', 'pipeline')}"
    return f"spacy {name} {meta.get('version', '0.0.0')}"


def _factories(nlp: Language) -> dict[str, str]:
    """Enabled component name -> the factory that made it."""
    return {name: nlp.get_pipe_meta(name).factory for name in nlp.pipe_names}


def check_sentences(nlp: Language) -> None:
    """Raise `CorpusError` unless ``nlp`` has a component that splits text into sentences."""
    factories = _factories(nlp)
    if not any(factory in SENTENCE_FACTORIES for factory in factories.values()):
        components = ", ".join(factories) or "none"
        raise CorpusError(
            f"the spaCy pipeline {pipeline_description(nlp)!r} cannot split text into sentences "
            f"(its components: {components}); expected one of {', '.join(SENTENCE_FACTORIES)}: "
            f"add one, e.g. nlp.add_pipe('sentencizer')"
        )


def read_text(path: Path | str, pipeline: str | Language) -> Iterator[AnnotatedSentence]:
    """The sentences of a raw-text file as the spaCy ``pipeline`` (a name, a path or a `Language`) reads them.

    Sentence ids are ``"<file stem>-<n>"`` (n from 1); ``line`` is the line where the sentence starts.
    Entity fields are set only when the pipeline has an ``ner`` or ``entity_ruler``.
    """
    path = Path(path)
    nlp = load_pipeline(pipeline)
    check_sentences(nlp)
    text = read_utf8(path)
    paragraphs = _paragraphs(text)
    if not paragraphs:
        raise CorpusFormatError(f"{path} holds no sentences; expected UTF-8 text with paragraphs "
                                f"separated by blank lines")
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    for start, end in paragraphs:
        if end - start > nlp.max_length:
            raise CorpusFormatError(
                f"{path}:{bisect.bisect_right(line_starts, start)}: a paragraph of {end - start} characters; "
                f"the spaCy pipeline takes at most {nlp.max_length}: put blank lines between paragraphs"
            )
    with_entities = any(f in ENTITY_FACTORIES for f in _factories(nlp).values())
    docs = nlp.pipe(text[start:end] for start, end in paragraphs)
    count = 0
    for (offset, _), doc in zip(paragraphs, docs):
        has_deps = doc.has_annotation("DEP")
        for span in doc.sents:
            sentence = _sentence(span, has_deps, with_entities)
            if sentence is None:
                continue
            count += 1
            first, words = sentence
            begin = offset + first
            line = bisect.bisect_right(line_starts, begin)
            yield AnnotatedSentence(f"{path.stem}-{count}", text[begin:begin + words[-1].end], words, path.name, line)
    if count == 0:
        raise CorpusFormatError(f"{path} holds no sentences: spaCy found no words in it")


def _paragraphs(text: str) -> list[tuple[int, int]]:
    """(start, end) of each paragraph: text between blank lines, surrounding whitespace left out."""
    spans, start = [], 0
    for match in PARAGRAPH_BREAK.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    trimmed = []
    for start, end in spans:
        piece = text[start:end]
        left = len(piece) - len(piece.lstrip())
        right = len(piece.rstrip())
        if right > left:
            trimmed.append((start + left, start + right))
    return trimmed


def _sentence(span: Span, has_deps: bool, with_entities: bool) -> tuple[int, tuple[Word, ...]] | None:
    """The sentence's first character in its paragraph, and its words with spans relative to that first character."""
    tokens = [token for token in span if token.text.strip()]
    if not tokens:
        return None
    first = tokens[0].idx
    index_of = {token.i: index for index, token in enumerate(tokens)}
    words = tuple(_word(token, first, index_of, has_deps, with_entities) for token in tokens)
    return first, words


def _word(token: Token, first: int, index_of: dict[int, int], has_deps: bool, with_entities: bool) -> Word:
    start = token.idx - first
    return Word(
        form=token.text,
        start=start,
        end=start + len(token.text),
        upos=token.pos_ or None,
        xpos=token.tag_ or None,
        lemma=token.lemma_ or None,
        feats=str(token.morph) or None,
        head=_head(token, index_of) if has_deps else None,
        deprel=(token.dep_ or None) if has_deps else None,
        ner=(token.ent_type_ or None) if with_entities else None,
        ner_iob=(token.ent_iob_ or None) if with_entities else None,
    )


def _head(token: Token, index_of: dict[int, int]) -> int:
    """Index of the token's head among the sentence's words; -1 for the root.

    A head that is a whitespace token (not a word) is followed up to its own head.
    """
    seen: set[int] = set()
    head: Any = token.head
    while head.i not in index_of and head.i not in seen and head.head.i != head.i:
        seen.add(head.i)
        head = head.head
    if head.i == token.i or head.i not in index_of:
        return -1
    return index_of[head.i]
