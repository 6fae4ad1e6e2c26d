"""Matches in context and what they have in common.

A `Match` is one corpus token found by a search: its sentence's tokens with every token's metadata,
the attention the match pays each of them (mean of the selected heads at the search's layer, read
from the stored blocks: within 1/510 of the model's per weight), and the token it attends to most.
`summarise` counts, over the matches, each metadata field for the matched tokens and for their
most-attended tokens, and the offsets to those tokens.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

MISSING = "_"
"""How a token without a value for a field (no word, or no annotation) is counted."""


@dataclass
class Match:
    """One search hit. ``position`` and ``max_attention`` index ``tokens`` (the sentence's indexed
    tokens); ``offset`` = max_attention - position; ``metadata[field]`` has one value per token."""

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

    @property
    def token(self) -> str:
        return self.tokens[self.position]


@dataclass
class Summary:
    """Histograms over the matches: ``matched[field]`` and ``max_attention[field]`` map a value to its
    count (most frequent first); ``offsets`` maps an offset to its count (ascending offsets)."""

    matched: dict[str, dict[str, int]] = field(default_factory=dict)
    max_attention: dict[str, dict[str, int]] = field(default_factory=dict)
    offsets: dict[int, int] = field(default_factory=dict)


@dataclass
class SearchResult:
    """A query and what it found."""

    mode: str
    layer: int
    heads: list[int]
    text: str
    token: int
    token_text: str
    matches: list[Match]
    summary: Summary
    text_pair: str | None = None

    def to_dict(self) -> dict[str, Any]:
        result = asdict(self)
        result["summary"]["offsets"] = {str(k): v for k, v in self.summary.offsets.items()}
        return result


def make_matches(index: Any, rows: np.ndarray, scores: np.ndarray, layer: int, heads: Sequence[int]) -> list[Match]:
    """Matches for result ``rows`` of ``index`` at ``layer``, attention averaged over ``heads``."""
    tokens, sentences = index.tables.tokens, index.tables.sentences
    fields = index.tables.fields
    head_list = list(heads)
    matches = []
    for row, score in zip(rows.tolist(), scores.tolist()):
        sentence = int(tokens["sentence"][row])
        span = index.tables.sentence_rows(sentence)
        position = row - span.start
        weights = index.attention.rows(sentence, layer, position, head_list).mean(axis=0)
        strongest = int(np.argmax(weights))
        matches.append(Match(
            row=row, score=float(score), sentence=sentence, sent_id=str(sentences["sent_id"][sentence]),
            source=str(sentences["source"][sentence]), line=int(sentences["line"][sentence]),
            text=str(sentences["text"][sentence]), position=position,
            tokens=[str(t) for t in tokens["token"][span.start:span.stop]],
            metadata={f: [_value(v) for v in tokens[f][span.start:span.stop]] for f in fields},
            attention=[round(float(w), 4) for w in weights], max_attention=strongest, offset=strongest - position,
        ))
    return matches


def _value(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def summarise(matches: Sequence[Match], fields: Sequence[str]) -> Summary:
    """Count each field's values for the matched tokens and their most-attended tokens, and the offsets."""
    summary = Summary()
    for name in fields:
        matched = Counter(_label(m.metadata[name][m.position]) for m in matches)
        strongest = Counter(_label(m.metadata[name][m.max_attention]) for m in matches)
        summary.matched[name] = dict(matched.most_common())
        summary.max_attention[name] = dict(strongest.most_common())
    summary.offsets = dict(sorted(Counter(m.offset for m in matches).items()))
    return summary


def _label(value: Any) -> str:
    return MISSING if value is None else str(value)
