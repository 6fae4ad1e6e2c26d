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

import attnscope
from attnscope.cli_search import resolve_token
from attnscope.errors import InputError
from attnscope.index import Query

from .conftest import PUB

ATTNSCOPE = [sys.executable, "-m", "attnscope.cli"]


def run(*args: str, columns: int = 80) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", COLUMNS=str(columns))
    return subprocess.run([*ATTNSCOPE, *args], capture_output=True, text=True, env=env, timeout=300)


def match_lines(output: str) -> list[str]:
    """The lines that show one match each: rank, score, then the rest."""
    return [line for line in output.splitlines() if re.match(r"^\s*\d+\s+-?\d+\.\d{3}\s", line)]


def test_the_output_fits_80_columns_and_marks_each_match_when_piped(ewt_index):
    result = run("search", PUB, "--index", str(ewt_index.directory), "--token", "escape", "--layer", "4",
                 "--top", "20")
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
        assert row[column + 1:close] == m.surface[m.position]  # as the corpus writes it, case kept
        plain = (row[:column] + row[column + 1:close] + row[close + 1:]).split(None, 3)[3]
        assert plain.strip("…") in " ".join(m.text.split())
    assert "escaped" in rows[0] or "escaped" in rows[1]


def test_a_piece_is_marked_inside_its_word_and_a_word_search_marks_the_word(ewt_index):
    text = "I am sneezing because of my allergies today."
    piece = run("search", text, "--index", str(ewt_index.directory), "--token", "er", "--layer", "3", "--top", "5")
    assert piece.returncode == 0, piece.stderr
    assert "all[er]gies" in match_lines(piece.stdout)[0]
    word = run("search", text, "--index", str(ewt_index.directory), "--token", "allergies", "--layer", "3", "--top", "5",
               "--one-per-sentence")
    assert word.returncode == 0, word.stderr
    assert word.stdout.splitlines()[0].startswith("allergies (the word 9-11) at layer 3")
    assert all(len(line) <= 80 for line in word.stdout.splitlines())
    assert "upos of the matches" in word.stdout and "upos they attend to most" in word.stdout
    assert "score: cosine of the words' hidden states after layer 3" in word.stdout
    first = match_lines(word.stdout)[0]
    assert "[allergies]" in first and "all er gies" not in first
    assert "because of [allergies], he is" in first


def test_an_occurrence_number_picks_the_word_and_the_json_is_unchanged(ewt_index):
    by_word = run("search", PUB, "--index", str(ewt_index.directory), "--token", "the:2", "--layer", "3",
                  "--heads", "2,5", "--score", "mean", "--one-per-sentence", "--top", "10", "--json")
    by_position = run("search", PUB, "--index", str(ewt_index.directory), "--token", "10", "--layer", "3",
                      "--heads", "2,5", "--score", "mean", "--one-per-sentence", "--top", "10", "--json")
    assert by_word.returncode == 0, by_word.stderr
    data = json.loads(by_word.stdout)
    assert data == json.loads(by_position.stdout)
    assert (data["token"], data["query_text"], data["score"], data["score_max"]) == (10, "the", "mean", 1.0)
    assert data["score_meaning"] == "mean of 2 heads' cosines of the head embeddings at layer 3 (their sum / 2, at most 1)"
    assert len({m["sentence"] for m in data["matches"]}) == 10
    text = run("search", PUB, "--index", str(ewt_index.directory), "--token", "The", "--layer", "3", "--top", "3")
    assert "occurrence 1 of 2: The:1 (token 1), The:2 (token 10)" in text.stdout


@pytest.mark.parametrize("token, message", [
    ("the:3", "--token 'the:3': 'the' occurs 2 times in the text, so the occurrence must be 1-2: the:1 (token 1), "
              "the:2 (token 10)"),
    ("escapes", "--token 'escapes': the text has no word or token 'escapes'; its words are The, girl, ran, to, a, "
                "local, pub, to, escape, the, din, of, her, city, . (or give a token position, 0-16)"),
    ("0", "token 0 is the special token '[CLS]': special tokens are not in the corpus index"),
    ("16", "token 16 is the special token '[SEP]'"),
    ("17", "token 17 is out of range"),
])
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
