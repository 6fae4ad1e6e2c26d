"""What a search asks (`Query`) and what it reads of its input sentence: the query token's positions,
its vector, the checks of a query's values, and the meaning of its scores. `search.Index` runs queries;
the server and CLI check inputs with these before any model runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..capture.inputs import Tokens
from ..errors import InputError, check_range, count
from .grouping import word_vector

MODES = ("embedding", "heads")
UNITS = ("token", "word")
SCORES = ("sum", "mean")
DEFAULT_TOP = 50


@dataclass(frozen=True)
class Query:
    """A search: ``mode`` "embedding" (the hidden state after ``layer``, cosine) or "heads" (the head
    embedding of ``layer`` over ``heads``: the sum of those heads' cosines, or with ``score="mean"``
    their mean, the sum divided by the number of heads). On an approximate index, ``probes`` clusters
    are scanned (default: the index's; more is slower and closer to exact). In both modes ``heads``
    (default all) are also the heads whose attention, averaged, each match shows. An option that would
    have no effect is refused (`InputError`): ``score="mean"`` outside a head search, ``probes`` on an
    exact index.

    ``unit="word"`` searches the whole word the query token belongs to, and finds corpus words: each
    word is the mean of its tokens' vectors (`grouping.py`). ``per_sentence`` keeps at most one match
    (the best) per corpus sentence. ``filters`` maps a field to the values a match may have: a list,
    or one value as a string (``{"upos": "VERB"}`` is ``{"upos": ["VERB"]}``).

    ``rerank`` (1-16; `rerank.py`): the best ``top * rerank`` candidates by the codes have their sentences
    run through the model again and every token (word) of those sentences is scored by its exact vector;
    the scores returned are those exact inner products. By default (None) a PQ-coded index searched with
    a model re-ranks x4, any other search not at all; 1 turns it off."""

    mode: str
    layer: int
    heads: tuple[int, ...] | None = None
    top: int = DEFAULT_TOP
    filters: Mapping[str, Sequence[str] | str] | None = None
    probes: int | None = None
    unit: str = "token"
    per_sentence: bool = False
    score: str = "sum"
    rerank: int | None = None


@dataclass(frozen=True)
class CheckedQuery(Query):
    """A `Query` that `Index.check_query` accepted for the index in directory ``checked_for``: ``heads`` are
    resolved (every head when the query named none) and ``filters`` map each field to a list of values."""

    heads: tuple[int, ...] = ()
    filters: dict[str, list[str]] | None = None
    checked_for: str = ""


def filter_values(name: str, values: Sequence[str] | str) -> list[str]:
    """A filter's values as a list: a string is one value (``"VERB"``, not the letters V, E, R, B).
    Raises `InputError` for no values or a value that is not a string."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, (list, tuple, set, frozenset)) or not all(isinstance(v, str) for v in values):
        raise InputError(
            f"filter {name!r}: give its values as a list of strings, or one string, e.g. "
            f"{{{name!r}: ['VERB', 'AUX']}}; got {values!r}"
        )
    if not values or not all(values):
        raise InputError(
            f"filter {name!r} has no values or an empty one: give at least one, e.g. "
            f"{{{name!r}: ['VERB']}}; got {values!r}"
        )
    return list(values)


def check_score(mode: str, score: str) -> None:
    """Refuse an unknown ``score``, and "mean" outside a head search: an embedding search's score is one
    cosine, with nothing to average."""
    if score not in SCORES:
        raise InputError(f"score {score!r} is unknown: use one of {', '.join(SCORES)}")
    if score != "sum" and mode != "heads":
        raise InputError(
            f"score {score!r} (--score {score}) is for head searches (mode 'heads', --heads), which "
            "add up or average several heads' cosines; an embedding search's score is one cosine: "
            "leave score out, or search by heads"
        )


def unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.where(norm > 0, x / np.maximum(norm, 1e-12), x).astype(np.float32)


def check_query_token(tokens: Tokens, token: int) -> None:
    """Refuse a position outside ``tokens`` or on a special token, which the index does not hold."""
    check_range("token", token, len(tokens), f"the query text of {count(len(tokens), 'token')}")
    if tokens.special[token]:
        raise InputError(
            f"token {token} is the special token {tokens.display[token]!r}: special tokens are not in the corpus "
            "index (only the corpus's own words are), so it has no neighbours there; choose a word's token"
        )


def query_positions(tokens: Tokens, token: int, unit: str = "token") -> list[int]:
    """The input positions a query searches: ``[token]``, or for ``unit="word"`` every token of the word
    ``token`` belongs to (the tokenizer's words, as the attention view's word mode merges them; a token
    that stands for whitespace only belongs to no word, so it is searched alone)."""
    check_query_token(tokens, token)
    if unit != "word" or tokens.word_ids[token] is None:
        return [token]
    word, segment = tokens.word_ids[token], tokens.segments[token]
    return [
        p
        for p, (w, s, special) in enumerate(zip(tokens.word_ids, tokens.segments, tokens.special))
        if w == word and s == segment and not special
    ]


def given_positions(tokens: Tokens, token: int, positions: Sequence[int], unit: str) -> list[int]:
    """Check the positions a caller names for a query (`Index.query`'s ``positions``): ordinary tokens
    of one segment, ascending, without repeats, ``token`` first; several only in a word search."""
    positions = [int(p) for p in positions]
    if not positions or positions[0] != token:
        raise InputError(f"the query positions {positions} must start with the query token {token}")
    for p in positions:
        check_query_token(tokens, p)
    if positions != sorted(set(positions)) or len({tokens.segments[p] for p in positions}) > 1:
        raise InputError(f"the query positions {positions} must ascend, without repeats, within one sentence")
    if len(positions) > 1 and unit != "word":
        raise InputError(f"{len(positions)} query positions make a word: search them with unit='word'")
    return positions


def query_vector(stack, mode: str, layer: int, token: int | Sequence[int]) -> np.ndarray:
    """The vector a token is searched with: its unit hidden state after ``layer``, or its head
    embedding at ``layer`` (each head's output unit-normalised, concatenated). Several positions (a
    word's tokens) give their `word_vector`: the mean, made unit length (per head)."""
    positions = [token] if isinstance(token, (int, np.integer)) else list(token)
    if mode == "embedding":
        vectors = unit(stack.require("hidden_states")[layer + 1][positions].astype(np.float32))
        return word_vector(vectors)
    outputs = stack.require("head_outputs")[layer][:, positions].astype(np.float32)  # (heads, tokens, head_dim)
    vectors = unit(outputs).transpose(1, 0, 2).reshape(len(positions), -1)
    return word_vector(vectors, outputs.shape[0])


def score_max(query: Query, heads: Sequence[int]) -> float:
    """The highest score a query's matches can have: 1, or the number of heads a head search sums."""
    return float(len(heads)) if query.mode == "heads" and query.score == "sum" else 1.0


def score_meaning(query: Query, heads: Sequence[int]) -> str:
    """What a query's scores are, in words (shown beside them in the app and the CLI)."""
    what = "words' " if query.unit == "word" else ""
    if query.mode == "embedding":
        return f"cosine of the {what}hidden states after layer {query.layer} (at most 1)"
    n = len(heads)
    of = f"of the {what}head embeddings at layer {query.layer}"
    if n == 1:
        return f"cosine of head {heads[0]}'s part {of} (at most 1)"
    if query.score == "mean":
        return f"mean of {n} heads' cosines {of} (their sum / {n}, at most 1)"
    return f"sum of {n} heads' cosines {of} (at most {n})"


def zero_other_heads(vector: np.ndarray, heads: Sequence[int], head_count: int) -> np.ndarray:
    """The head-embedding query with every head not in ``heads`` set to zero."""
    parts = np.array(vector, dtype=np.float32).reshape(head_count, -1)
    keep = np.zeros(head_count, dtype=bool)
    keep[list(heads)] = True
    parts[~keep] = 0
    return parts.reshape(-1)
