"""Reading CoNLL-U files (Universal Dependencies treebanks) into annotated sentences.

This is a strict parser of our own rather than the `conllu` package: every malformed line must fail
with the file and line named (``"<file>:<line>: <what is wrong>; <what is expected>"``), and each
word needs its character span in the sentence text, which `conllu` does not compute.

What it reads: comment lines (``# sent_id = ...``, ``# text = ...``; others are ignored) before each
sentence's word lines, one line of 10 tab-separated columns per word (``ID FORM LEMMA UPOS XPOS
FEATS HEAD DEPREL DEPS MISC``), a blank line after each sentence. Multi-word token lines
(``1-2\tdon't\t_ ...``) give the surface form of the words that follow them; empty nodes (``8.1``)
are skipped; ``_`` means no value. Without a ``# text`` comment the text is rebuilt from the surface
forms, with a space after each unless its MISC column says ``SpaceAfter=No``. The HEAD column must
make one tree per sentence (one root, no cycles) or be ``_`` throughout: a gold file is never repaired.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CorpusFormatError
from .sentence import AnnotatedSentence, Word
from .text_file import read_utf8
from .trees import tree_problem

COLUMNS = ("ID", "FORM", "LEMMA", "UPOS", "XPOS", "FEATS", "HEAD", "DEPREL", "DEPS", "MISC")
WORD_ID = re.compile(r"[1-9][0-9]*")
RANGE_ID = re.compile(r"([1-9][0-9]*)-([1-9][0-9]*)")
EMPTY_NODE_ID = re.compile(r"(?:0|[1-9][0-9]*)\.[1-9][0-9]*")
HEAD_ID = re.compile(r"0|[1-9][0-9]*")
EXPECTED_ID = "a word ID (1, 2, ...), a multi-word token range (3-4) or an empty node (5.1)"


def read_conllu(path: Path | str) -> Iterator[AnnotatedSentence]:
    """The sentences of a CoNLL-U file, in file order; `CorpusFormatError` on the first malformed line.

    The file is read when iteration starts. A file that is not UTF-8, or that holds no sentence, is
    an error too.
    """
    path = Path(path)
    yield from parse_conllu(read_utf8(path), path)


def parse_conllu(
    text: str, path: Path | str = "<string>", *, first_line: int = 1, first_sentence: int = 0
) -> Iterator[AnnotatedSentence]:
    """The sentences of CoNLL-U ``text``; ``path`` names it in errors and in `AnnotatedSentence.source`.

    ``text`` may be a part of a file that starts at a sentence (`attnscope.corpus.slices`): its first
    line is line ``first_line`` of the file, and ``first_sentence`` sentences come before it (those
    without a ``# sent_id`` are numbered ``<file stem>-<n>`` from ``first_sentence + 1``).
    """
    where, source = str(path), Path(path).name
    sent_ids: dict[str, int] = {}
    block: list[tuple[int, str]] = []
    count = first_sentence
    lines = text.split("\n")
    for number, line in enumerate(lines + [""], first_line):
        line = line[:-1] if line.endswith("\r") else line
        if line.strip():
            block.append((number, line))
        elif block:
            count += 1
            yield _Sentence(where, source, block).build(count, sent_ids)
            block = []
    if count == first_sentence:
        raise CorpusFormatError(
            f"{where} holds no sentences; expected CoNLL-U: '# ...' comment lines, then one line of "
            f"10 tab-separated columns per word, and a blank line after each sentence"
        )


@dataclass
class _Token:
    """A surface token: one word, or a multi-word token (``is_mwt``) and the indices of its words."""

    form: str
    line: int
    space_after: bool
    is_mwt: bool
    words: list[int] = field(default_factory=list)
    last: int = 0  # for a multi-word token: the ID of its last word


class _Sentence:
    """The lines of one sentence (comments and word lines, no blank line), checked and turned into words."""

    def __init__(self, where: str, source: str, block: list[tuple[int, str]]) -> None:
        self.where, self.source, self.block = where, source, block
        self.comments: dict[str, tuple[str, int]] = {}  # key -> (value, line)
        self.rows: list[tuple[int, list[str]]] = []  # (line, columns) of each word, in order
        self.tokens: list[_Token] = []

    def error(self, line: int, wrong: str, expected: str) -> CorpusFormatError:
        return CorpusFormatError(f"{self.where}:{line}: {wrong}; {expected}")

    def build(self, number: int, sent_ids: dict[str, int]) -> AnnotatedSentence:
        self._read_lines()
        first = self.block[0][0]
        sent_id = self._sent_id(number, sent_ids)
        text = self._text()
        spans = self._spans(text)
        heads = [self._head(index) for index in range(len(self.rows))]
        self._check_tree(heads)
        mwt_of = {i: t.form for t in self.tokens if t.is_mwt for i in t.words}
        words = tuple(
            _word(columns, spans[index], heads[index], mwt_of.get(index))
            for index, (_, columns) in enumerate(self.rows)
        )
        return AnnotatedSentence(sent_id, text, words, self.source, first)

    def _read_lines(self) -> None:
        pending: _Token | None = None  # a multi-word token still waiting for some of its words
        for line, content in self.block:
            if content.startswith("#"):
                if self.tokens:
                    raise self.error(
                        line,
                        "comment line after the sentence's word lines",
                        "comments go before the first word line of their sentence",
                    )
                self._comment(line, content)
                continue
            columns = self._columns(line, content)
            ident = columns[0]
            if EMPTY_NODE_ID.fullmatch(ident):
                continue
            if pending is not None and not WORD_ID.fullmatch(ident):
                raise self._unfinished(pending)
            match = RANGE_ID.fullmatch(ident)
            if match:
                pending = self._multiword(line, columns, int(match[1]), int(match[2]))
                continue
            if not WORD_ID.fullmatch(ident):
                raise self.error(line, f"bad ID {ident!r}", f"expected {EXPECTED_ID}")
            if int(ident) != len(self.rows) + 1:
                raise self.error(line, f"word ID {ident} is out of order", f"expected {len(self.rows) + 1}")
            self.rows.append((line, columns))
            index = len(self.rows) - 1
            if pending is not None:
                pending.words.append(index)
                if index + 1 == pending.last:
                    pending = None
            else:
                self.tokens.append(_Token(columns[1], line, _space_after(columns[9]), False, [index]))
        if pending is not None:
            raise self._unfinished(pending)
        if not self.rows:
            raise self.error(
                self.block[0][0],
                "comment lines with no word lines after them",
                "expected each sentence to have at least one word line (10 tab-separated columns)",
            )

    def _columns(self, line: int, content: str) -> list[str]:
        columns = content.split("\t")
        if len(columns) != len(COLUMNS):
            hint = " (columns separated by spaces? CoNLL-U needs tabs)" if len(columns) == 1 and " " in content else ""
            plural = "" if len(columns) == 1 else "s"
            raise self.error(
                line, f"{len(columns)} tab-separated column{plural}{hint}", f"expected 10: {' '.join(COLUMNS)}"
            )
        for name, value in zip(COLUMNS, columns):
            if not value.strip():
                raise self.error(line, f"the {name} column is empty", "expected a value, or _ for none")
        return columns

    def _comment(self, line: int, content: str) -> None:
        key, sep, value = content[1:].partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in ("sent_id", "text"):
            return
        if key in self.comments:
            raise self.error(
                line,
                f"a second '# {key}' comment in one sentence (the first is on line {self.comments[key][1]})",
                "expected one per sentence",
            )
        if not value:
            raise self.error(line, f"'# {key}' has no value", f"expected '# {key} = ...'")
        self.comments[key] = (value, line)

    def _multiword(self, line: int, columns: list[str], first: int, last: int) -> _Token:
        ident, expected = columns[0], len(self.rows) + 1
        if first != expected:
            raise self.error(
                line,
                f"multi-word token {ident} starts at word {first}",
                f"expected it to start at the next word, {expected}",
            )
        if last <= first:
            raise self.error(
                line,
                f"multi-word token range {ident} is empty or reversed",
                "expected FIRST-LAST with LAST greater than FIRST",
            )
        token = _Token(columns[1], line, _space_after(columns[9]), True, last=last)
        self.tokens.append(token)
        return token

    def _unfinished(self, token: _Token) -> CorpusFormatError:
        return self.error(
            token.line,
            f"multi-word token {token.form!r} is not followed by all its words (found {len(token.words)})",
            f"expected the word lines up to ID {token.last} right after it",
        )

    def _sent_id(self, number: int, sent_ids: dict[str, int]) -> str:
        value, line = self.comments.get("sent_id", (f"{Path(self.source).stem}-{number}", self.block[0][0]))
        if value in sent_ids:
            raise self.error(
                line,
                f"sent_id {value!r} is already used by the sentence on line {sent_ids[value]}",
                "expected a unique sent_id for each sentence",
            )
        sent_ids[value] = line
        return value

    def _text(self) -> str:
        if "text" in self.comments:
            return self.comments["text"][0]
        if all(token.form == "_" for token in self.tokens):
            raise self.error(
                self.block[0][0],
                "no '# text' comment and no word forms (FORM is _)",
                "expected a '# text = ...' comment or the words' forms to rebuild the text from",
            )
        parts: list[str] = []
        for token in self.tokens:
            parts += [token.form, " " if token.space_after else ""]
        return "".join(parts).rstrip()

    def _spans(self, text: str) -> list[tuple[int, int]]:
        """Character span of each word: its surface token found in ``text`` in order, whitespace skipped."""
        spans: list[tuple[int, int]] = [(0, 0)] * len(self.rows)
        position = 0
        for token in self.tokens:
            while position < len(text) and text[position].isspace():
                position += 1
            if not text.startswith(token.form, position):
                found = text[position : position + len(token.form) + 10]
                raise self.error(
                    token.line,
                    f"the form {token.form!r} is not in the sentence text at character "
                    f"{position} (the text there is {found!r})",
                    "expected the forms, in order, to spell out the sentence text (whitespace aside)",
                )
            start, position = position, position + len(token.form)
            forms = [self.rows[i][1][1] for i in token.words]
            if token.is_mwt and "".join(forms) == token.form:
                offset = start
                for index, form in zip(token.words, forms):
                    spans[index] = (offset, offset + len(form))
                    offset += len(form)
            else:
                for index in token.words:
                    spans[index] = (start, position)
        rest = text[position:].strip()
        if rest:
            line = self.comments["text"][1]
            raise self.error(
                line,
                f"the text goes on after the last word's form: {rest[:30]!r}",
                "expected the word forms to spell out the whole '# text'",
            )
        return spans

    def _check_tree(self, heads: list[int | None]) -> None:
        """Raise unless the heads form one tree (or the sentence has none): gold files are never repaired."""
        problem = tree_problem(heads)
        if problem is None:
            return
        expected = {
            "partial": "expected a HEAD on every word of the sentence, or _ on all of them",
            "roots": "expected exactly one word with HEAD 0 per sentence",
            "cycle": "expected every word's chain of HEADs to end at the word with HEAD 0",
        }.get(problem.kind, "expected the ID of another word of the sentence, or 0 for the root")
        word = problem.words[1] if problem.kind == "roots" else problem.words[0]
        raise self.error(self.rows[word][0], problem.message(), expected)

    def _head(self, index: int) -> int | None:
        line, columns = self.rows[index]
        value, size = columns[6], len(self.rows)
        if value == "_":
            return None
        if not HEAD_ID.fullmatch(value):
            raise self.error(
                line, f"HEAD {value!r} is not an integer", "expected the ID of the head word, 0 for the root, or _"
            )
        head = int(value)
        if head > size:
            raise self.error(
                line, f"HEAD {head} is out of range", f"expected 0 (the root) or a word ID of this sentence, 1-{size}"
            )
        if head == index + 1:
            raise self.error(line, f"HEAD {head} is the word itself", "expected another word's ID, or 0 for the root")
        return head - 1


def _space_after(misc: str) -> bool:
    return "SpaceAfter=No" not in misc.split("|")


def _value(column: str) -> str | None:
    return None if column == "_" else column


def _word(columns: list[str], span: tuple[int, int], head: int | None, mwt: str | None) -> Word:
    form, lemma = columns[1], columns[2]
    return Word(
        form=form,
        start=span[0],
        end=span[1],
        upos=_value(columns[3]),
        xpos=_value(columns[4]),
        lemma=lemma if lemma != "_" or form == "_" else None,  # the lemma of the form "_" is "_"
        feats=_value(columns[5]),
        head=head,
        deprel=_value(columns[7]),
        mwt=mwt,
    )
