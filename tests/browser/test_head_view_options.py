"""V5/V6 in the head view: hide special tokens, merge subwords into words, choose query rows and key
columns, change the threshold, paint long inputs by visible band, export PNG and SVG."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

import attnscope

from .test_head_view import expected_lines, lines, open_html

WORDY = "Unbelievably, the girl ran to a pub."


@pytest.fixture(scope="module")
def wordy(default_model):
    return attnscope.capture(default_model, WORDY)


def word_units(words: list) -> list[list[int]]:
    """Each unit's token positions, as the views merge them: the tokens of a word number (the payload
    sequence's ``words``) together, a token without one (special, whitespace) a unit of its own."""
    units: list[list[int]] = []
    seen: dict[int, int] = {}
    for i, w in enumerate(words):
        if w is None:
            units.append([i])
        elif w in seen:
            units[seen[w]].append(i)
        else:
            seen[w] = len(units)
            units.append([i])
    return units


def merged(weights: np.ndarray, words: list) -> tuple[np.ndarray, list[list[int]]]:
    """(heads, units, units) word-level weights as Clark et al. (2019): mean over query subwords, sum over key
    subwords."""
    decoded = np.rint(np.clip(weights.astype(np.float64), 0, 1) * 255) / 255
    units = word_units(words)
    out = np.zeros((weights.shape[0], len(units), len(units)))
    for a, qs in enumerate(units):
        for b, ks in enumerate(units):
            out[:, a, b] = decoded[:, qs][:, :, ks].sum(-1).mean(-1)
    return out, units


def test_hide_special_tokens_removes_their_rows_and_lines(page, tmp_path, wordy):
    root = open_html(page, tmp_path, attnscope.head_view(wordy).to_html())
    page.page.check(".attnscope-hv-hide-special")
    kept = [i for i, s in enumerate(wordy.tokens.special) if not s]
    shown = page.page.locator(".attnscope-hv-queries .attnscope-hv-token").all_inner_texts()
    assert shown == [wordy.tokens.display[i] for i in kept]
    assert lines(root) == expected_lines(wordy.attentions[0], range(12), kept, kept)
    page.page.uncheck(".attnscope-hv-hide-special")
    assert lines(root) == expected_lines(wordy.attentions[0], range(12))


def test_words_merge_subword_rows_and_columns(page, tmp_path, wordy):
    view = attnscope.head_view(wordy, layer=2)
    seq = view.header["sequences"]["encoder"]
    root = open_html(page, tmp_path, view.to_html())
    page.page.check(".attnscope-hv-merge")
    assert root.get_attribute("data-units") == "words"
    weights, units = merged(wordy.attentions[2], seq["words"])
    labels = page.page.locator(".attnscope-hv-queries .attnscope-hv-token").all_inner_texts()
    assert labels == ["[CLS]", "Unbelievably", ",", "the", "girl", "ran", "to", "a", "pub", ".", "[SEP]"]
    assert len(units) == len(labels) and units[1] == [1, 2, 3, 4, 5]
    assert int(root.get_attribute("data-lines")) == int((weights > 0.01).sum())
    np.testing.assert_allclose(weights.sum(-1), 1, atol=len(wordy.tokens) / 255)  # rows still sum to ~1
    page.page.hover(".attnscope-hv-queries .attnscope-hv-token[data-index='1']")
    for head_line in page.page.locator(".attnscope-hv-tip-head").all():
        head = int(head_line.get_attribute("data-head"))
        for item in head_line.locator(".attnscope-hv-weight").all():
            b = int(item.get_attribute("data-position"))
            assert float(item.get_attribute("data-weight")) == pytest.approx(weights[head, 1, b], abs=1e-9)
    assert page.errors == []


def test_chosen_query_rows_and_key_columns(page, tmp_path, wordy):
    root = open_html(page, tmp_path, attnscope.head_view(wordy).to_html())
    att = wordy.attentions[0]
    page.page.fill(".attnscope-hv-rows", "1-3, 7")
    page.page.press(".attnscope-hv-rows", "Enter")
    page.page.fill(".attnscope-hv-columns", "0")
    page.page.press(".attnscope-hv-columns", "Enter")
    queries = page.page.locator(".attnscope-hv-queries .attnscope-hv-token")
    assert [int(i) for i in queries.evaluate_all("ns => ns.map(n => n.dataset.index)")] == [1, 2, 3, 7]
    assert lines(root) == expected_lines(att, range(12), [1, 2, 3, 7], [0])
    page.page.fill(".attnscope-hv-rows", "5-99")  # out of range: refused, the view is unchanged
    page.page.press(".attnscope-hv-rows", "Enter")
    assert "out of range: positions are 0-" in page.page.locator(".attnscope-hv-rows").get_attribute("title")
    assert page.page.locator(".attnscope-hv-rows:invalid").count() == 1
    assert lines(root) == expected_lines(att, range(12), [1, 2, 3, 7], [0])


def test_threshold_control_changes_what_is_drawn(page, tmp_path, wordy):
    root = open_html(page, tmp_path, attnscope.head_view(wordy).to_html())
    page.page.fill(".attnscope-hv-threshold", "0.2")
    page.page.press(".attnscope-hv-threshold", "Enter")
    assert lines(root) == expected_lines(wordy.attentions[0], range(12), threshold=0.2)
    assert lines(root) < expected_lines(wordy.attentions[0], range(12))


def long_attention(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(1, 12, n, n)) * 2.5
    e = np.exp(scores - scores.max(-1, keepdims=True))
    return [e / e.sum(-1, keepdims=True)]


def test_long_inputs_paint_only_the_visible_band(page, tmp_path):
    n = 400
    att = long_attention(n)
    root = open_html(page, tmp_path, attnscope.head_view(att, [f"t{i}" for i in range(n)]).to_html())
    total = expected_lines(att[0][0], range(12))
    assert int(root.get_attribute("data-lines")) == total
    first = lines(root)
    assert 0 < first < total  # the band on screen, not all 8000 px of lines
    top = page.page.evaluate("parseFloat(document.querySelector('.attnscope-hv-canvas').style.top)")
    assert top == 0
    page.page.evaluate("window.scrollTo(0, 5000)")
    page.page.wait_for_function("parseFloat(document.querySelector('.attnscope-hv-canvas').style.top) > 3000")
    assert int(root.get_attribute("data-lines")) == total and 0 < lines(root) < total
    assert page.errors == []


def test_png_and_svg_export_what_is_on_screen(page, tmp_path, wordy):
    root = open_html(page, tmp_path, attnscope.head_view(wordy, layer=1, heads=[0, 3]).to_html())
    with page.page.expect_download() as svg_download:
        page.page.click(".attnscope-hv-svg")
    assert svg_download.value.suggested_filename == "attnscope-head-view-encoder-layer1.svg"
    svg = ET.parse(svg_download.value.path()).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert len(svg.findall(f"{ns}line")) == lines(root) == expected_lines(wordy.attentions[1], [0, 3])
    ids = wordy.tokens.word_ids  # a word's later pieces are marked "##", as on screen
    marked = [
        "##" + t if i and ids[i] is not None and ids[i] == ids[i - 1] else t for i, t in enumerate(wordy.tokens.display)
    ]
    assert [t.text for t in svg.findall(f"{ns}text")][: len(wordy.tokens)] == marked != wordy.tokens.display
    with page.page.expect_download() as png_download:
        page.page.click(".attnscope-hv-png")
    data = open(png_download.value.path(), "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    assert page.errors == []


def test_sparse_encoding_draws_the_same_as_dense_at_a_fraction_of_the_bytes(page, tmp_path):
    n = 360
    att = long_attention(n, seed=1)
    tokens = [f"t{i}" for i in range(n)]
    dense, sparse = attnscope.head_view(att, tokens, encoding="dense"), attnscope.head_view(att, tokens)
    assert not dense.payload.sparse and sparse.payload.sparse  # auto: 360 keys > 4 + 3 / 0.01 bytes a row
    ratio = len(dense.payload.layer_bytes("encoder", 0)) / len(sparse.payload.layer_bytes("encoder", 0))
    assert ratio > 3
    seen = []
    for view in (dense, sparse):
        root = open_html(page, tmp_path, view.to_html())
        page.page.select_option(".attnscope-hv-layer", "0")
        page.page.dblclick(".attnscope-hv-head[data-head='4']")
        page.page.hover(".attnscope-hv-queries .attnscope-hv-token[data-index='2']")
        weights = page.page.locator(".attnscope-hv-weight").evaluate_all(
            "ns => ns.map(n => [Number(n.dataset.position), Number(n.dataset.weight)])"
        )
        seen.append((int(root.get_attribute("data-lines")), weights))
    assert seen[0] == seen[1]
    assert seen[0][0] == expected_lines(att[0][0], [4], queries=[2])
    assert page.errors == []
