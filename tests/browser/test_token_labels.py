"""Every view labels tokens with the text they stand for, in a real browser: the field report's
"naïve café 😀 東京" through byte-level BPE (GPT-2) and byte-fallback SentencePiece (Llama-2), never as
Latin-1 mojibake; the neuron view names a local checkpoint by its folder, not its path."""

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
    assert queries == EXPECTED[arch]
    assert keys == EXPECTED[arch]
    folder = Path(tiny_path(arch)).name
    svg = root.locator("svg").text_content()
    assert f"{folder} · decoder layer" in svg and str(Path(tiny_path(arch)).parent) not in svg
    assert page.errors == []
