"""What ``attnscope search`` prints, and how its ``--token`` names the query token.

``--token`` takes a position in the text's tokens (0-indexed, [CLS] is 0) or a word of the text as
written, with an occurrence number when it occurs more than once: ``--token escape``, ``--token
the:2`` (the second "the", counting from 1; case is ignored). A word of several tokens is searched
as a word (the mean of its tokens); a piece of a word (``--token gies``) as that token.

Matches print one per line in keyword-in-context form, fitted to the terminal's width (``COLUMNS``;
80 when piped): rank, score, the matched word's annotation, then the sentence as the corpus writes
it with the match in [brackets] (a matched piece inside its word: ``all[er]gies``), the brackets
aligned from line to line. Histograms of each field follow, the matches' and the tokens they attend
to most side by side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from rich.cells import cell_len
from rich.columns import Columns
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import InputError

ELLIPSIS = "…"
WIDE = 110
"""From this many columns on, a second annotation field (deprel) is shown."""
BAR = 16
"""Cells of a histogram's longest bar (two histograms fit side by side in 80 columns)."""


@dataclass(frozen=True)
class TokenChoice:
    """The query token ``--token`` names: its ``position``, and ``word`` when it named a whole word of
    several tokens (searched as a word). ``note`` says which occurrence was taken, when there are several."""

    position: int
    word: bool = False
    note: str = ""


def resolve_token(tokens: Any, spec: str) -> TokenChoice:
    """The token ``spec`` names in ``tokens`` (`attnscope.encode` of the query text): a position, or
    WORD / WORD:N. Raises `InputError` naming the words of the text, or the occurrences of WORD."""
    spec = spec.strip()
    if re.fullmatch(r"\d+", spec):
        return TokenChoice(int(spec))
    name, number = spec, None
    found = re.fullmatch(r"(.+):(-?\d+)", spec)
    if found:
        name, number = found.group(1), int(found.group(2))
    units = _units(tokens)
    wanted = name.casefold()
    places = [u for u in units if u[0].casefold() == wanted]
    if not places:  # a piece of a word, as the model writes it
        places = [(tokens.display[p], [p]) for p in range(len(tokens))
                  if not tokens.special[p] and tokens.display[p].casefold() == wanted]
    if not places:
        words = ", ".join(text for text, _ in units) or "none"
        raise InputError(f"--token {spec!r}: the text has no word or token {name!r}; its words are {words} "
                         f"(or give a token position, 0-{len(tokens) - 1})")
    listed = ", ".join(f"{name}:{i} (token {p[0]})" for i, (_, p) in enumerate(places, 1))
    if number is not None and not 1 <= number <= len(places):
        times = "once" if len(places) == 1 else f"{len(places)} times"
        raise InputError(f"--token {spec!r}: {name!r} occurs {times} in the text, so the occurrence must be "
                         f"1-{len(places)}: {listed}")
    text, positions = places[(number or 1) - 1]
    note = f"occurrence {number or 1} of {len(places)}: {listed}" if len(places) > 1 else ""
    return TokenChoice(positions[0], len(positions) > 1, note)


def _units(tokens: Any) -> list[tuple[str, list[int]]]:
    """The text's words as the tokenizer splits them: (text as written, token positions), in order."""
    units: dict[tuple[int, int], list[int]] = {}
    for p, (word, segment, special) in enumerate(zip(tokens.word_ids, tokens.segments, tokens.special)):
        if not special and word is not None and tokens.offsets[p] is not None:
            units.setdefault((segment, word), []).append(p)
    out = []
    for (segment, _), positions in units.items():
        start, end = tokens.offsets[positions[0]][0], tokens.offsets[positions[-1]][1]
        out.append((tokens.texts[segment][start:end], positions))
    return out


def print_result(result: Any, corpus: str, fields: Sequence[str], note: str = "",
                 console: Console | None = None, silver: Mapping[str, str] | None = None) -> None:
    """Print a `SearchResult`: a header, one line per match, then the histograms.

    ``silver`` names the fields a model predicted (field -> pipeline), labelled so in the histograms."""
    console = console or Console(highlight=False, soft_wrap=True)
    width = max(40, console.width)
    how = "token embedding" if result.mode == "embedding" else f"heads {','.join(map(str, result.heads))}"
    what = "the word" if result.unit == "word" else "token"
    where = "-".join(str(p) for p in (result.query_positions[0], result.query_positions[-1])) \
        if len(result.query_positions) > 1 else str(result.token)
    console.print(f"[bold]{escape(result.query_text or result.token_text)}[/] ({what} {where}) at layer "
                  f"{result.layer}, by {how}: {len(result.matches)} matches in {escape(corpus)}"
                  + (", one per sentence" if result.per_sentence else ""), soft_wrap=False)
    if note:
        console.print(f"[dim]{escape(note)}[/]", soft_wrap=False)
    console.print(f"score: {escape(result.score_meaning)}", soft_wrap=False)
    shown = [f for f in ("upos", "deprel") if f in fields][:2 if width >= WIDE else 1] or list(fields[:1])
    for line in match_lines(result.matches, shown, width):
        console.print(line)
    silver = {name: by for name, by in (silver or {}).items() if name in result.summary.matched}
    for by in dict.fromkeys(silver.values()):  # the pipeline once, so the side-by-side titles stay short
        names = ", ".join(name for name, b in silver.items() if b == by)
        console.print(f"\n[dim]silver (predicted by {escape(by)}, not annotated): {escape(names)}[/]")
    for name in result.summary.matched:  # side by side where the width allows
        label = f"{name} (silver)" if name in silver else name
        console.print(Columns([_histogram(f"{label} of the matches", result.summary.matched[name]),
                               _histogram(f"{label} they attend to most", result.summary.max_attention[name])],
                              padding=(0, 4)))
    console.print(_histogram("offset to the most-attended token",
                             {f"{k:+d}": v for k, v in result.summary.offsets.items()}))


def match_lines(matches: Sequence[Any], fields: Sequence[str], width: int) -> list[str]:
    """One rich-markup line per match, at most ``width`` cells: rank, score, ``fields`` of the matched
    word, then the match in context with the match in [brackets] (also shown in bold reverse)."""
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
        left = _fit_left(left, left_w)
        keyword = f"{before}[{piece}]{after}"
        right = _fit_right(right, max(0, room - left_w - cell_len(keyword)))
        prefix = f"{rank:>{rank_w}}  {score:>{score_w}}  " + "".join(
            f"{_fit_right(v, w):<{w}}  " for v, w in zip(vals, value_w))
        marked = f"{escape(before)}[bold reverse]{escape('[' + piece + ']')}[/]{escape(after)}"
        lines.append(escape(prefix) + escape(" " * (left_w - cell_len(left)) + left) + marked + escape(right))
    return lines


def kwic(match: Any) -> tuple[str, tuple[str, str, str], str]:
    """A match as (left context, (start of its word, the matched text, rest of its word), right context),
    from the tokens' text as the corpus writes it, with a single space wherever the sentence has space."""
    first, last = match.matched[0], match.matched[-1]
    word_first, word_last = first, last
    while word_first > 0 and match.continues[word_first]:
        word_first -= 1
    while word_last + 1 < len(match.surface) and match.continues[word_last + 1]:
        word_last += 1
    pieces = [(" " if space else "") + _flat(surface) for surface, space in zip(match.surface, match.space_before)]

    def joined(a: int, b: int) -> str:
        return "".join(pieces[a:b])

    return (joined(0, word_first) + (" " if match.space_before[word_first] else ""),
            (joined(word_first, first).lstrip(), joined(first, last + 1).lstrip(), joined(last + 1, word_last + 1)),
            joined(word_last + 1, len(pieces)))


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
    table = Table(title=f"\n{title}", box=None, title_justify="left", show_header=False, padding=(0, 1),
                  min_width=cell_len(title))  # the title on one line: side by side tables wrap as wholes
    table.add_column("value")
    table.add_column("count", justify="right")
    table.add_column("")
    most = max(counts.values(), default=1)
    for value, count in list(counts.items())[:limit]:
        table.add_row(escape(str(value)), str(count), "█" * max(1, round(BAR * count / most)))
    return table
