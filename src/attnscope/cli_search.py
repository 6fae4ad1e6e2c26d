"""What ``attnscope search`` prints, and how its ``--token`` names the query token.

``--token`` takes a position in the text's tokens (0-indexed, [CLS] is 0) or a word of the text as
written, with an occurrence number when it occurs more than once: ``--token escape``, ``--token
the:2`` (the second "the", counting from 1; case is ignored), ``--token "don't"`` whatever tokens the
model makes of it. A word of several tokens is searched as a word (the mean of its tokens); a piece
of a word (``--token gies``) as that token.

Matches print one per line in keyword-in-context form, fitted to the terminal's width (``COLUMNS``;
80 when piped): rank, score, the matched word's annotation, then the sentence as the corpus writes
it with the match in [brackets] (a matched piece inside its word: ``all[er]gies``), the opening
brackets in one column, the context (long words and URLs too) cut with an ellipsis so that every line
fits. Histograms of each field follow, the matches' and the tokens they attend
to most side by side (and, for a causal model, the token after each match's).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.columns import Columns
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .capture.written import blank_tokens, token_pieces, words_texts
from .errors import InputError

ELLIPSIS = "…"
WIDE = 110
"""From this many columns on, a second annotation field (deprel) is shown."""
BAR = 16
"""Cells of a histogram's longest bar (two histograms fit side by side in 80 columns)."""


@dataclass(frozen=True)
class TokenChoice:
    """The query ``--token`` names: its first token's ``position``, and ``positions`` when it named a
    word of several tokens (searched as a word: the mean of those tokens). ``note`` says which
    occurrence was taken, when there are several."""

    position: int
    positions: tuple[int, ...] = ()
    note: str = ""

    @property
    def word(self) -> bool:
        """Whether the choice is a word of several tokens (searched with ``unit="word"``)."""
        return len(self.positions) > 1


def resolve_token(tokens: Any, spec: str) -> TokenChoice:
    """The token ``spec`` names in ``tokens`` (`attnscope.encode` of the query text): a position, or
    WORD / WORD:N, matched case-blind against the text as written (`written_places`), else against
    single tokens (a piece of a word, as the corpus or the model writes it). Raises `InputError`
    naming the words of the text, or the occurrences of WORD."""
    spec = spec.strip()
    if re.fullmatch(r"\d+", spec):
        return TokenChoice(int(spec))
    name, number = spec, None
    found = re.fullmatch(r"(.+):(-?\d+)", spec)
    if found:
        name, number = found.group(1), int(found.group(2))
    places = written_places(tokens, name)
    if not places:  # a piece of a word, as the text or the model writes it
        wanted = name.casefold()
        pieces = written_texts(tokens)
        places = [
            (tokens.display[p], [p])
            for p in range(len(tokens))
            if not tokens.special[p] and wanted in (tokens.display[p].casefold(), pieces[p].casefold())
        ]
    if not places:
        words = ", ".join(text for text, _ in _units(tokens)) or "none"
        raise InputError(
            f"--token {spec!r}: the text has no word or token {name!r}; its words are {words} "
            f"(or give a token position, 0-{len(tokens) - 1})"
        )
    listed = ", ".join(f"{name}:{i} ({_tokens_label(p)})" for i, (_, p) in enumerate(places, 1))
    if number is not None and not 1 <= number <= len(places):
        times = "once" if len(places) == 1 else f"{len(places)} times"
        raise InputError(
            f"--token {spec!r}: {name!r} occurs {times} in the text, so the occurrence must be "
            f"1-{len(places)}: {listed}"
        )
    _, positions = places[(number or 1) - 1]
    note = f"occurrence {number or 1} of {len(places)}: {listed}" if len(places) > 1 else ""
    return TokenChoice(positions[0], tuple(positions) if len(positions) > 1 else (), note)


def _tokens_label(positions: Sequence[int]) -> str:
    return f"token {positions[0]}" if len(positions) == 1 else f"tokens {positions[0]}-{positions[-1]}"


def written_texts(tokens: Any) -> list[str]:
    """Each token's piece of the text as written (`capture.written`), "" for special tokens."""
    blank = blank_tokens(tokens)
    out = [""] * len(tokens)
    for positions in _segment_positions(tokens).values():
        for p, piece in zip(positions, token_pieces(tokens, positions, blank)):
            out[p] = piece.text
    return out


def _segment_positions(tokens: Any) -> dict[int, list[int]]:
    """The ordinary (non-special) positions of each segment, in order."""
    segments: dict[int, list[int]] = {}
    for p, (segment, special) in enumerate(zip(tokens.segments, tokens.special)):
        if not special:
            segments.setdefault(segment, []).append(p)
    return segments


def written_places(tokens: Any, name: str) -> list[tuple[str, list[int]]]:
    """Where ``name`` occurs in the text as written (case-blind; whitespace inside it matches any
    whitespace), in text order, as (the text, its token positions): only where it starts and ends at
    token boundaries and does not cut a run of letters or digits ("York" and "York's" in "York's",
    "don't" whatever the tokenizer makes of it, not "cat" in "concatenate"). Works from the tokens'
    pieces of the text (`capture.written`), so it is the same for every tokenizer family; the
    positions leave out tokens that stand for whitespace only."""
    words = name.split()
    if not words:
        return []
    pattern = re.compile(r"\s+".join(re.escape(w) for w in words), re.IGNORECASE)
    blank = blank_tokens(tokens)
    places = []
    for segment, positions in _segment_positions(tokens).items():
        text = tokens.texts[segment] if segment < len(tokens.texts) else ""
        pieces = token_pieces(tokens, positions, blank)
        index_of = {p: i for i, p in enumerate(positions)}
        shown = [(p, piece) for p, piece in zip(positions, pieces) if piece.text]
        for found in pattern.finditer(text):
            a, b = found.span()
            if (a > 0 and text[a - 1].isalnum() and text[a].isalnum()) or (
                b < len(text) and text[b].isalnum() and text[b - 1].isalnum()
            ):
                continue
            inside = [(p, piece) for p, piece in shown if piece.start < b and piece.end > a]
            if not inside or inside[0][1].start != a or inside[-1][1].end != b:
                continue
            first, last = inside[0][0], inside[-1][0]
            # the later pieces of a character the last token split belong to it too
            while last + 1 in index_of and not blank[last + 1] and pieces[index_of[last + 1]].text == "":
                last += 1
            places.append((text[a:b], [p for p in positions if first <= p <= last and not blank[p]]))
    return places


def _units(tokens: Any) -> list[tuple[str, list[int]]]:
    """The text's words as the tokenizer splits them: (text as written, token positions), in order."""
    units: dict[tuple[int, int], list[int]] = {}
    for p, (word, segment, special) in enumerate(zip(tokens.word_ids, tokens.segments, tokens.special)):
        if not special and word is not None:
            units.setdefault((segment, word), []).append(p)
    return list(zip(words_texts(tokens, list(units.values())), units.values()))


def heading(result: Any, corpus: str) -> str:
    """The first line of a search's output: what was searched, how, and how many matches were found."""
    positions = list(result.query_positions) or [result.token]
    text = result.query_text or result.token_text
    count = len(result.matches)
    found = f"{count} {'match' if count == 1 else 'matches'}"
    heads = ",".join(map(str, result.heads))
    if result.unit == "word":
        where = f"token {positions[0]}" if len(positions) == 1 else f"tokens {positions[0]}-{positions[-1]}"
        how = "word embedding" if result.mode == "embedding" else f"heads {heads} of the word"
        mean = "" if len(positions) == 1 else f" (mean of {len(positions)} tokens)"
        line = f"{text} (a word: {where}) at layer {result.layer}, by {how}{mean}"
    else:
        how = "token embedding" if result.mode == "embedding" else f"heads {heads}"
        line = f"{text} (token {result.token}) at layer {result.layer}, by {how}"
    return f"{line}: {found} in {corpus}" + (", one per sentence" if result.per_sentence else "")


def print_result(
    result: Any,
    corpus: str,
    fields: Sequence[str],
    note: str = "",
    console: Console | None = None,
    silver: Mapping[str, str] | None = None,
) -> None:
    """Print a `SearchResult`: a header, one line per match, then the histograms; every line fits the
    console's width (text lines wrap, match lines are cut with an ellipsis).

    ``silver`` names the fields a model predicted (field -> pipeline), labelled so in the histograms."""
    console = console or Console(highlight=False, soft_wrap=True)
    width = max(40, console.width)
    console.print(escape(heading(result, corpus)), soft_wrap=False)
    if note:
        console.print(f"[dim]{escape(note)}[/]", soft_wrap=False)
    console.print(f"score: {escape(result.score_meaning)}", soft_wrap=False)
    if getattr(result, "rerank", 1) > 1:
        console.print(
            f"[dim]re-ranked: the best {result.rerank} x {len(result.matches)} by the codes, their sentences' "
            "vectors recomputed with the model; scores exact[/]",
            soft_wrap=False,
        )
    shown = [f for f in ("upos", "deprel") if f in fields][: 2 if width >= WIDE else 1] or list(fields[:1])
    for line in match_lines(result.matches, shown, width):
        console.print(line)
    silver = {name: by for name, by in (silver or {}).items() if name in result.summary.matched}
    for by in dict.fromkeys(silver.values()):  # the pipeline once, so the side-by-side titles stay short
        names = ", ".join(name for name, b in silver.items() if b == by)
        console.print(f"\n[dim]silver (predicted by {escape(by)}, not annotated): {escape(names)}[/]", soft_wrap=False)
    for name in result.summary.matched:  # side by side where the width allows
        label = f"{name} (silver)" if name in silver else name
        tables = [
            _histogram(f"{label} of the matches", result.summary.matched[name]),
            _histogram(f"{label} they attend to most", result.summary.max_attention[name]),
        ]
        if name in result.summary.next:  # a causal model: what comes after each match
            tables.append(_histogram(f"{label} of the next token", result.summary.next[name]))
        console.print(Columns(tables, padding=(0, 4)))
    console.print(
        _histogram("offset to the most-attended token", {f"{k:+d}": v for k, v in result.summary.offsets.items()})
    )


def match_lines(matches: Sequence[Any], fields: Sequence[str], width: int) -> list[str]:
    """One rich-markup line per match, at most ``width`` cells: rank, score, ``fields`` of the matched
    word, then the match in context with the match in [brackets] (also shown in bold reverse). The
    opening brackets share one column: the context before it (the start of the matched word
    included) is cut from the left to fit, the rest from the right."""
    rank_w = len(str(len(matches)))
    scores = [f"{m.score:.3f}" for m in matches]
    score_w = max((len(s) for s in scores), default=5)
    values = [[_text(m.metadata.get(f, [None] * len(m.tokens))[m.position]) for f in fields] for m in matches]
    value_w = [min(12, max([len(f)] + [len(v[i]) for v in values])) for i, f in enumerate(fields)]
    head = f"{'#':>{rank_w}}  {'score':>{score_w}}  " + "".join(f"{f:<{w}}  " for f, w in zip(fields, value_w))
    room = max(20, width - cell_len(head))
    left_w = room * 2 // 5
    lines = [escape(head + "match in context")]
    for rank, (m, score, vals) in enumerate(zip(matches, scores, values), 1):
        left, (before, piece, after), right = kwic(m)
        left = _fit_left(left + before, left_w)
        piece = _fit_right(piece, max(1, room - left_w - 2))
        keyword = f"[{piece}]"
        right = _fit_right(after + right, max(0, room - left_w - cell_len(keyword)))
        prefix = f"{rank:>{rank_w}}  {score:>{score_w}}  " + "".join(
            f"{_fit_right(v, w):<{w}}  " for v, w in zip(vals, value_w)
        )
        lines.append(
            escape(prefix)
            + escape(" " * (left_w - cell_len(left)) + left)
            + f"[bold reverse]{escape(keyword)}[/]"
            + escape(right)
        )
    return lines


def kwic(match: Any) -> tuple[str, tuple[str, str, str], str]:
    """A match as (left context, (start of its word, the matched text, rest of its word), right context),
    from the tokens' text as the corpus writes it, with a single space wherever the sentence has space.
    A match that shows no text of its own (a later piece of a character split over several tokens, or
    a token that stands for a space) reads as the model's tokens: ``😀[\\x9f]``, ``in[␣] Zürich``."""
    first, last = match.matched[0], match.matched[-1]
    word_first, word_last = first, last
    while word_first > 0 and match.continues[word_first]:
        word_first -= 1
    while word_last + 1 < len(match.surface) and match.continues[word_last + 1]:
        word_last += 1
    pieces = [(" " if space else "") + _flat(surface) for surface, space in zip(match.surface, match.space_before)]

    def joined(a: int, b: int) -> str:
        return "".join(pieces[a:b])

    matched = joined(first, last + 1).lstrip() or "".join(match.tokens[first : last + 1])
    return (
        joined(0, word_first) + (" " if match.space_before[word_first] else ""),
        (joined(word_first, first).lstrip(), matched, joined(last + 1, word_last + 1)),
        joined(word_last + 1, len(pieces)),
    )


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _fit_left(text: str, width: int) -> str:
    """The end of ``text`` in at most ``width`` cells, with an ellipsis where it was cut."""
    if cell_len(text) <= width:
        return text
    while text and cell_len(text) > max(0, width - 1):
        text = text[1:]
    return ELLIPSIS + text if width else ""


def _fit_right(text: str, width: int) -> str:
    """The start of ``text`` in at most ``width`` cells, with an ellipsis where it was cut."""
    if cell_len(text) <= width:
        return text
    while text and cell_len(text) > max(0, width - 1):
        text = text[:-1]
    return text + ELLIPSIS if width else ""


def _text(value: Any) -> str:
    return "_" if value is None else str(value)


def _histogram(title: str, counts: dict[str, int], limit: int = 10) -> Table:
    """A histogram as a table: value, count and a bar, most frequent first (at most ``limit`` rows)."""
    table = Table(
        title=f"\n{title}", box=None, title_justify="left", show_header=False, padding=(0, 1), min_width=cell_len(title)
    )  # the title on one line: side by side tables wrap as wholes
    table.add_column("value")
    table.add_column("count", justify="right")
    table.add_column("")
    most = max(counts.values(), default=1)
    for value, count in list(counts.items())[:limit]:
        table.add_row(escape(str(value)), str(count), "█" * max(1, round(BAR * count / most)))
    return table
