"""The head view's top share (issue 15: the app's "top X% of attention" as an option of the one head
view): per query row, the fewest strongest lines above the minimum weight whose weights add up to at
least that share of the row's weight on the shown keys, counted against numpy on a real capture."""

from __future__ import annotations

import numpy as np
import pytest

import attnscope

from .test_head_view import expected_lines, lines, open_html

SENTENCE = "The quick brown fox jumps over the lazy dog near the riverbank."


@pytest.fixture(scope="module")
def fox(default_model):
    return attnscope.capture(default_model, SENTENCE)


def top_share_lines(weights: np.ndarray, share: float, keys=None, threshold: float = 0.01) -> int:
    """Lines a top share keeps for one layer's (heads, query, key) weights, after uint8 quantisation:
    per (head, query) row, keys above the threshold by weight (ties to the lower key) until their sum
    reaches ``share`` of the row's weight on the shown ``keys``."""
    decoded = np.rint(np.clip(weights.astype(np.float64), 0, 1) * 255) / 255
    shown = np.arange(weights.shape[2]) if keys is None else np.asarray(list(keys))
    count = 0
    for row in decoded.reshape(-1, weights.shape[2]):
        goal = share * row[shown].sum() - 1e-9
        candidates = [k for k in shown if row[k] > threshold]
        total = 0.0
        for k in sorted(candidates, key=lambda k: (-row[k], k)):
            if total >= goal:
                break
            total += row[k]
            count += 1
    return count


def test_top_share_from_python_draws_the_strongest_lines_of_each_row(page, tmp_path, fox):
    att = fox.attentions[3]
    root = open_html(page, tmp_path, attnscope.head_view(fox, layer=3, top_share=0.9).to_html())
    expected = top_share_lines(att, 0.9)
    assert root.get_attribute("data-top-share") == "0.9"
    assert lines(root) == int(root.get_attribute("data-lines")) == expected
    assert 0 < expected < expected_lines(att, range(12))  # the share really drops lines the threshold keeps
    assert page.errors == []


def test_top_share_control_counts_only_the_shown_keys_and_one_is_off(page, tmp_path, fox):
    att = fox.attentions[0]
    root = open_html(page, tmp_path, attnscope.head_view(fox).to_html())
    page.page.check(".attnscope-hv-hide-special")
    page.page.fill(".attnscope-hv-top-share", "0.5")
    page.page.press(".attnscope-hv-top-share", "Enter")
    kept = [i for i, s in enumerate(fox.tokens.special) if not s]
    per_row = top_share_lines(att[:, kept], 0.5, keys=kept)  # hidden queries draw nothing, hidden keys weigh nothing
    assert lines(root) == per_row
    assert per_row != top_share_lines(att[:, kept], 0.5)  # the share is of the shown keys' weight, not the row's
    page.page.fill(".attnscope-hv-top-share", "1.5")  # out of range: refused, the drawing stays
    page.page.press(".attnscope-hv-top-share", "Enter")
    assert lines(root) == per_row
    page.page.fill(".attnscope-hv-top-share", "1")
    page.page.press(".attnscope-hv-top-share", "Enter")
    assert lines(root) == expected_lines(att, range(12), kept, kept)  # 1: every line above the threshold, as before
    assert page.errors == []
