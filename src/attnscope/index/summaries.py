"""Matches in context and what they have in common.

A `Match` is one corpus token (or word, in a word search) found by a search: its sentence's tokens
with every token's metadata, the attention the match pays each of them (mean of the selected heads at
the search's layer, read from the stored blocks: within 1/254 of the model's per weight at 7 bits, or
recomputed with the query's model for an index built with ``--attention recomputed``; a word's
attention is the mean of its tokens' rows), and the token it attends to most. Each token also carries
how the corpus writes it: its text as written (the sentence sliced by the token's character offsets,
case kept, each character once and whitespace moved into ``space_before``: `capture.written`), its
corpus word, whether it continues the previous token's word and whether a space comes before it, so a
context reads as the sentence does ("allergies", not "all er gies"; "Zürich 😀", not "Züürich 😀😀😀😀").
`summarise` counts, over the matches, each metadata field for the matched tokens and for their
most-attended tokens, and the offsets to those tokens; for a causal model also each field of the token
after every match (exBERT's "Next": what the model was predicting when it made the matched
representation).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..capture.token_text import is_blank
from ..capture.written import written_pieces
from .attention_source import AttentionSource

MISSING = "_"
"""How a token without a value for a field (no word, or no annotation) is counted."""
END = "(end)"
"""How the "next" summary counts a match with no token after it (the last token of its sentence)."""


@dataclass
class Match:
    """One search hit. ``position`` and ``max_attention`` index ``tokens`` (the sentence's indexed
    tokens, as the model reads them: lower case for an uncased model, pieces without ``##``);
    ``offset`` = max_attention - position; ``metadata[field]`` has one value per token.

    Per token, as the corpus writes it (`capture.written`): ``surface`` (the sentence's text over the
    token's character span, without the whitespace around it and without what the previous tokens
    showed: a character split over several tokens, such as an emoji in byte-level BPE, is the first
    piece's surface, the others' are empty; a token that stands for whitespace only has an empty
    surface; the model's token where it has no span), ``words`` (the corpus word's number in the
    sentence, -1 for none), ``continues`` (true when the token continues the previous token's word:
    the second and later pieces of a split word) and ``space_before`` (whitespace separates it from
    the previous token that shows text). Joining the surfaces with a space wherever ``space_before``
    says gives the sentence (whitespace runs as one space). ``matched`` lists the positions the
    search matched: the token, or every token of the word in a word search (``position`` is the
    first). ``input_position`` is the matched token's position in the sentence's model input,
    special tokens counted (where the attention view has it when the sentence is opened there).
    ``next_position`` (causal models only) indexes ``tokens`` at the token after the match (after the
    last matched token of a word): None when the match ends its sentence, or for other models."""

    row: int
    score: float
    sentence: int
    sent_id: str
    source: str
    line: int
    text: str
    position: int
    tokens: list[str]
    metadata: dict[str, list[Any]]
    attention: list[float]
    max_attention: int
    offset: int
    surface: list[str] = field(default_factory=list)
    words: list[int] = field(default_factory=list)
    continues: list[bool] = field(default_factory=list)
    space_before: list[bool] = field(default_factory=list)
    matched: list[int] = field(default_factory=list)
    input_position: int = 0
    next_position: int | None = None

    @property
    def token(self) -> str:
        return self.tokens[self.position]


@dataclass
class Summary:
    """Histograms over the matches: ``matched[field]`` and ``max_attention[field]`` map a value to its
    count (most frequent first); ``offsets`` maps an offset to its count (ascending offsets). For a
    causal model ``next[field]`` counts the values of the token after each match (`END` for a match
    that ends its sentence); empty for other models."""

    matched: dict[str, dict[str, int]] = field(default_factory=dict)
    max_attention: dict[str, dict[str, int]] = field(default_factory=dict)
    offsets: dict[int, int] = field(default_factory=dict)
    next: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class SearchResult:
    """A query and what it found. ``token_text`` is the query token as the model reads it;
    ``query_text`` what the query is in the input as written (the token, or the whole word in a word
    search: ``unit`` "word"), over the input positions ``query_positions``. ``score`` is "sum" or
    "mean" (of the heads' cosines, in a head search), ``score_max`` the highest score possible and
    ``score_meaning`` says in words what a score is. ``per_sentence``: at most one match per sentence.
    ``rerank``: the factor the codes' shortlist was re-ranked by against recomputed exact vectors (1: not
    re-ranked; the scores are then the codes' own)."""

    mode: str
    layer: int
    heads: list[int]
    text: str
    token: int
    token_text: str
    matches: list[Match]
    summary: Summary
    text_pair: str | None = None
    unit: str = "token"
    per_sentence: bool = False
    score: str = "sum"
    score_max: float = 1.0
    score_meaning: str = ""
    query_positions: list[int] = field(default_factory=list)
    query_text: str = ""
    rerank: int = 1

    def to_dict(self) -> dict[str, Any]:
        result = asdict(self)
        result["summary"]["offsets"] = {str(k): v for k, v in self.summary.offsets.items()}
        return result


def make_matches(
    index: Any,
    rows: np.ndarray,
    scores: np.ndarray,
    layer: int,
    heads: Sequence[int],
    words: bool = False,
    causal: bool = False,
    attention: AttentionSource | None = None,
) -> list[Match]:
    """Matches for result ``rows`` of ``index`` at ``layer``, attention averaged over ``heads`` (and over
    the matched word's tokens when ``words``: each row is then the first token of a corpus word); with
    ``causal``, each match's ``next_position``. ``attention`` is where the attention is read
    (`attention_source.AttentionSource`: stored, or recomputed with the query's model); by default the
    index's stored attention (`IndexFormatError` for an index that stores none)."""
    from .grouping import word_rows

    source = index.attention_source() if attention is None else attention
    tokens, sentences = index.tables.tokens, index.tables.sentences
    fields = index.tables.fields
    found = []
    for row in rows.tolist():
        sentence = int(tokens["sentence"][row])
        span = index.tables.sentence_rows(sentence)
        matched = [int(r) - span.start for r in (word_rows(index.tables, row) if words else [row])]
        found.append((row, sentence, span, matched))
    read = source.rows([(sentence, matched) for _, sentence, _, matched in found], layer, heads)
    matches = []
    for (row, sentence, span, matched), score, block in zip(found, scores.tolist(), read):
        position = matched[0]
        weights = block.mean(axis=(0, 1))
        strongest = int(np.argmax(weights))
        text = str(sentences["text"][sentence])
        match = Match(
            row=row,
            score=float(score),
            sentence=sentence,
            sent_id=str(sentences["sent_id"][sentence]),
            source=str(sentences["source"][sentence]),
            line=int(sentences["line"][sentence]),
            text=text,
            position=position,
            tokens=[str(t) for t in tokens["token"][span.start : span.stop]],
            metadata={f: [_value(v) for v in tokens[f][span.start : span.stop]] for f in fields},
            attention=[round(float(w), 4) for w in weights],
            max_attention=strongest,
            offset=strongest - position,
            matched=matched,
            input_position=int(tokens["position"][row]),
        )
        if causal and matched[-1] + 1 < len(match.tokens):
            match.next_position = matched[-1] + 1
        _add_surface(
            match,
            text,
            tokens["start"][span.start : span.stop],
            tokens["end"][span.start : span.stop],
            tokens["word"][span.start : span.stop],
        )
        matches.append(match)
    return matches


def _add_surface(match: Match, text: str, starts: np.ndarray, ends: np.ndarray, words: np.ndarray) -> None:
    """Fill a match's per-token ``surface``, ``words``, ``continues`` and ``space_before`` from the
    sentence text and the tokens' character spans (-1 where a token has none) and corpus words, read
    as the text is written (`capture.written`): a character split over several tokens is shown by the
    first, the others have empty surfaces; a token that stands for whitespace only has an empty surface."""
    spans = [(a, b) if 0 <= a <= b <= len(text) else None for a, b in zip(starts.tolist(), ends.tolist())]
    blank = [span is not None and is_blank(token, text[span[0] : span[1]]) for token, span in zip(match.tokens, spans)]
    pieces = written_pieces(text, spans, match.tokens, blank)
    previous_word = -1
    for i, (piece, word) in enumerate(zip(pieces, words.tolist())):
        match.surface.append(piece.text)
        match.words.append(int(word))
        match.space_before.append(piece.space_before)
        match.continues.append(i > 0 and not piece.space_before and word >= 0 and word == previous_word)
        if not blank[i]:
            previous_word = int(word)


def _value(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def summarise(matches: Sequence[Match], fields: Sequence[str], causal: bool = False) -> Summary:
    """Count each field's values for the matched tokens and their most-attended tokens, and the offsets;
    with ``causal``, also for the token after each match (`Summary.next`)."""
    summary = Summary()
    for name in fields:
        matched = Counter(_label(m.metadata[name][m.position]) for m in matches)
        strongest = Counter(_label(m.metadata[name][m.max_attention]) for m in matches)
        summary.matched[name] = dict(matched.most_common())
        summary.max_attention[name] = dict(strongest.most_common())
        if causal:
            after = Counter(
                END if m.next_position is None else _label(m.metadata[name][m.next_position]) for m in matches
            )
            summary.next[name] = dict(after.most_common())
    summary.offsets = dict(sorted(Counter(m.offset for m in matches).items()))
    return summary


def _label(value: Any) -> str:
    return MISSING if value is None else str(value)
