"""Every view labels tokens with the text they stand for, in a real browser: the field report's
"naïve café 😀 東京" through byte-level BPE (GPT-2) and byte-fallback SentencePiece (Llama-2), never as
Latin-1 mojibake; the neuron view names a local checkpoint by its folder, not its path. The notebook views
mark the pieces that continue a word "##" as the explorer app does (WordPiece and byte-level BPE alike)."""

from __future__ import annotations

from pathlib import Path

import pytest

import attnscope
from attnscope.views.neuron_data import CAPTURE_FIELDS

from ..test_token_text import EXPECTED, TEXT
from .conftest import open_view


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def issue_capture(request, tiny):
    return attnscope.capture(tiny(request.param), TEXT, fields=CAPTURE_FIELDS, top_k=0), request.param


def test_head_view_labels(page, tmp_path, issue_capture):
    cap, arch = issue_capture
    open_view(page, tmp_path, attnscope.head_view(cap).to_html(), ".attnscope-hv")
    for side in ("queries", "keys"):
        shown = page.page.locator(f".attnscope-hv-{side} .attnscope-hv-token").all_inner_texts()
        assert shown == EXPECTED[arch] == cap.tokens.display, side
    assert page.errors == []


def test_model_view_labels(page, tmp_path, issue_capture):
    cap, arch = issue_capture
    open_view(page, tmp_path, attnscope.model_view(cap).to_html(), ".attnscope-mv")
    page.page.click(".attnscope-mv-cell[data-layer='1'][data-head='2']")
    shown = page.page.locator(".attnscope-mv-detail .attnscope-mv-queries .attnscope-mv-token").all_inner_texts()
    assert shown == EXPECTED[arch]
    assert page.errors == []


def test_neuron_view_labels_and_model_name(page, tmp_path, issue_capture, tiny_path):
    cap, arch = issue_capture
    root = open_view(page, tmp_path, attnscope.neuron_view(cap).to_html(), ".attnscope-nv")
    queries = root.locator(".nv-query text").all_text_contents()
    keys = root.locator(".nv-row").evaluate_all("rows => rows.map((r) => r.querySelector('text').textContent)")
    labelled = ["##" * piece + label for piece, label in zip(continues(cap.tokens), EXPECTED[arch])]
    assert queries == labelled and labelled != EXPECTED[arch]  # the emoji's and 東's later bytes are marked
    assert keys == labelled
    folder = Path(tiny_path(arch)).name
    svg = root.locator("svg").text_content()
    assert f"{folder} · decoder layer" in svg and str(Path(tiny_path(arch)).parent) not in svg
    assert page.errors == []


NASA = "The NASA Allergies made Sneezing worse."


def continues(tokens) -> list[bool]:
    """Whether each token is a word's second or later piece (an ordinary token with its predecessor's word id)."""
    ids, special = tokens.word_ids, tokens.special
    return [not special[i] and i > 0 and ids[i] is not None and ids[i] == ids[i - 1] for i in range(len(ids))]


@pytest.fixture(scope="module", params=["default", "roberta"])
def pieces(request, default_model, tiny):
    """The field report's sentence on the default model (WordPiece) and a byte-level BPE model with <s> and </s>."""
    handle = default_model if request.param == "default" else tiny(request.param)
    cap = attnscope.capture(handle, NASA, fields=CAPTURE_FIELDS, top_k=0)
    if request.param == "default":  # the report: "all / er / gies", "s / nee / zing" read as separate words
        assert [t for t, c in zip(cap.tokens.display, continues(cap.tokens)) if c] == ["er", "gies", "nee", "zing"]
    else:
        assert cap.tokens.special[0] and cap.tokens.special[-1] and sum(continues(cap.tokens)) >= 5
    return cap


MARKS = "els => els.map(e => [e.textContent, getComputedStyle(e, '::before').content])"


def test_every_notebook_view_marks_the_pieces_that_continue_a_word(page, tmp_path, pieces):
    marks = continues(pieces.tokens)
    expected = [[text, '"##"' if piece else "none"] for text, piece in zip(pieces.tokens.display, marks)]
    root = open_view(page, tmp_path, attnscope.head_view(pieces).to_html(), ".attnscope-hv", "head.html")
    for side in ("queries", "keys"):
        assert root.locator(f".attnscope-hv-{side} .attnscope-hv-token").evaluate_all(MARKS) == expected, side
    root.locator("input.attnscope-hv-merge").check()  # whole words: nothing is a piece
    assert {mark for _, mark in root.locator(".attnscope-hv-token").evaluate_all(MARKS)} == {"none"}

    open_view(page, tmp_path, attnscope.model_view(pieces).to_html(), ".attnscope-mv", "model.html")
    page.page.click(".attnscope-mv-cell[data-layer='1'][data-head='2']")
    detail = page.page.locator(".attnscope-mv-detail .attnscope-mv-queries .attnscope-mv-token")
    assert detail.evaluate_all(MARKS) == expected

    root = open_view(page, tmp_path, attnscope.neuron_view(pieces).to_html(), ".attnscope-nv", "neuron.html")
    queries = root.locator(".nv-query text").all_text_contents()
    assert queries == ["##" + text if mark != "none" else text for text, mark in expected]
    assert page.errors == []
