"""V1 head view in a real browser, offline: what is drawn matches the real model's attention."""

from __future__ import annotations

import numpy as np
import pytest

import attnscope
from attnscope.views import page as html_page

from ..conftest import PUB
from .conftest import open_view

THRESHOLD = 0.01


def expected_lines(weights: np.ndarray, heads, queries=None, keys=None, threshold: float = THRESHOLD) -> int:
    """Lines the view must draw for one layer's (heads, query, key) weights, after uint8 quantisation."""
    decoded = np.rint(np.clip(weights.astype(np.float64), 0, 1) * 255) / 255
    q = range(weights.shape[1]) if queries is None else queries
    k = range(weights.shape[2]) if keys is None else keys
    return int((decoded[np.ix_(list(heads), list(q), list(k))] > threshold).sum())


def open_html(page, tmp_path, html: str, name: str = "view.html"):
    return open_view(page, tmp_path, html, ".attnscope-hv", name)


def lines(root) -> int:
    return int(root.get_attribute("data-lines-drawn"))


def test_exported_view_draws_every_weight_above_threshold_offline(page, tmp_path, pub_capture):
    view = attnscope.head_view(pub_capture)
    root = open_html(page, tmp_path, view.to_html())
    att = pub_capture.attentions
    assert root.get_attribute("data-layer") == "0"
    assert root.get_attribute("data-heads") == ",".join(str(h) for h in range(att.shape[1]))
    assert lines(root) == expected_lines(att[0], range(att.shape[1]))
    assert 0 < lines(root) < att[0].size  # the threshold really drops lines
    tokens = page.page.locator(".attnscope-hv-queries .attnscope-hv-token").all_inner_texts()
    assert tokens == pub_capture.tokens.display
    assert page.blocked == [] and page.errors == []


def test_layer_selector_and_head_toggles_change_what_is_drawn(page, tmp_path, pub_capture):
    root = open_html(page, tmp_path, attnscope.head_view(pub_capture).to_html())
    att, heads = pub_capture.attentions, set(range(pub_capture.attentions.shape[1]))
    page.page.select_option(".attnscope-hv-layer", "3")
    assert root.get_attribute("data-layer") == "3"
    assert lines(root) == expected_lines(att[3], sorted(heads))
    page.page.click(".attnscope-hv-head[data-head='4']")
    heads.discard(4)
    assert root.get_attribute("data-heads") == ",".join(map(str, sorted(heads)))
    assert lines(root) == expected_lines(att[3], sorted(heads))
    page.page.click(".attnscope-hv-head[data-head='4']")
    assert lines(root) == expected_lines(att[3], range(12))
    page.page.dblclick(".attnscope-hv-head[data-head='7']")
    assert root.get_attribute("data-heads") == "7"
    assert lines(root) == expected_lines(att[3], [7])
    assert page.errors == []


def test_hovering_a_token_shows_only_its_lines_and_its_real_weights(page, tmp_path, pub_capture):
    root = open_html(page, tmp_path, attnscope.head_view(pub_capture, layer=2).to_html())
    att = pub_capture.attentions[2]
    girl = pub_capture.tokens.display.index("girl")
    page.page.hover(f".attnscope-hv-queries .attnscope-hv-token[data-index='{girl}']")
    assert root.get_attribute("data-token") == f"query:{girl}"
    assert lines(root) == expected_lines(att, range(12), queries=[girl])
    tooltip = page.page.locator(".attnscope-hv-tooltip")
    assert tooltip.is_visible()
    shown = 0
    for head_line in tooltip.locator(".attnscope-hv-tip-head").all():
        head = int(head_line.get_attribute("data-head"))
        weights = [
            (int(w.get_attribute("data-position")), float(w.get_attribute("data-weight")))
            for w in head_line.locator(".attnscope-hv-weight").all()
        ]
        assert weights, f"head {head} shows no weights"
        for key, value in weights:
            assert abs(value - att[head, girl, key]) <= 1 / 255
            shown += 1
        assert abs(weights[0][1] - att[head, girl].max()) <= 1 / 255  # strongest first
    assert shown >= 12
    # Hovering a key shows the lines into that key instead.
    page.page.hover(".attnscope-hv-keys .attnscope-hv-token[data-index='0']")
    assert lines(root) == expected_lines(att, range(12), keys=[0])
    page.page.mouse.move(1, 1)
    assert lines(root) == expected_lines(att, range(12))
    assert not tooltip.is_visible()


def test_sentence_pair_filter_keeps_only_the_chosen_direction(page, tmp_path, pair_capture):
    root = open_html(page, tmp_path, attnscope.head_view(pair_capture).to_html())
    att, b = pair_capture.attentions[0], pair_capture.tokens.sentence_b_start
    n = att.shape[-1]
    a_side, b_side = range(0, b), range(b, n)
    assert page.page.locator(".attnscope-hv-filter").is_visible()
    for value, queries, keys in [
        ("AB", a_side, b_side),
        ("BA", b_side, a_side),
        ("AA", a_side, a_side),
        ("BB", b_side, b_side),
        ("all", range(n), range(n)),
    ]:
        page.page.select_option(".attnscope-hv-filter", value)
        assert root.get_attribute("data-filter") == value
        assert lines(root) == expected_lines(att, range(12), queries, keys), value
    page.page.select_option(".attnscope-hv-filter", "AB")
    assert expected_lines(att, range(12), a_side, b_side) < expected_lines(att, range(12))


def test_single_sentence_has_no_pair_filter(page, tmp_path, pub_capture):
    open_html(page, tmp_path, attnscope.head_view(pub_capture).to_html())
    assert not page.page.locator(".attnscope-hv-filter").is_visible()


def test_two_views_of_different_models_in_one_page_do_not_interfere(page, tmp_path, pub_capture, tiny):
    gpt2 = attnscope.capture(tiny("gpt2"), PUB)
    views = [attnscope.head_view(pub_capture), attnscope.head_view(gpt2)]
    open_html(page, tmp_path, html_page([v.fragment() for v in views]))
    roots = page.page.locator(".attnscope-hv")
    assert roots.count() == 2
    first, second = roots.nth(0), roots.nth(1)
    bert_att, gpt_att = pub_capture.attentions, gpt2.attentions
    assert second.get_attribute("data-stack") == "decoder"
    assert lines(first) == expected_lines(bert_att[0], range(12))
    assert lines(second) == expected_lines(gpt_att[0], range(gpt_att.shape[1]))
    second.locator(".attnscope-hv-head[data-head='1']").click()
    second.locator(".attnscope-hv-layer").select_option("1")
    assert lines(second) == expected_lines(gpt_att[1], [h for h in range(gpt_att.shape[1]) if h != 1])
    assert first.get_attribute("data-heads") == ",".join(map(str, range(12)))
    assert first.get_attribute("data-layer") == "0"
    assert lines(first) == expected_lines(bert_att[0], range(12))
    # Causal model: hovering query 3 greys out the keys after it, in that view only.
    second.locator(".attnscope-hv-queries .attnscope-hv-token[data-index='3']").hover()
    future = second.locator(".attnscope-hv-keys .attnscope-hv-future")
    assert future.count() == len(gpt2.tokens) - 4
    assert first.locator(".attnscope-hv-future").count() == 0
    assert page.errors == [] and page.blocked == []


def test_encoder_decoder_view_switches_between_stacks(page, tmp_path, tiny):
    cap = attnscope.capture(tiny("bart"), "The girl ran to a local pub.", target="She escaped.")
    root = open_html(page, tmp_path, attnscope.head_view(cap).to_html())
    assert page.page.locator(".attnscope-hv-stack").is_visible()
    for role in ("encoder", "decoder", "cross"):
        page.page.select_option(".attnscope-hv-stack", role)
        att = cap.stacks[role].attentions
        assert root.get_attribute("data-stack") == role
        assert lines(root) == expected_lines(att[0], range(att.shape[1])), role
        keys = page.page.locator(".attnscope-hv-keys .attnscope-hv-token").count()
        assert keys == att.shape[-1]
    assert page.errors == []


def test_the_guard_really_blocks_the_network(page, tmp_path, pub_capture):
    open_html(page, tmp_path, attnscope.head_view(pub_capture).to_html())
    failed = page.page.evaluate("fetch('https://example.com/x.js').then(() => false, () => true)")
    assert failed is True
    assert page.blocked == ["https://example.com/x.js"]
    page.errors.clear()  # the refused fetch logs a console error of its own


def test_theme_follows_prefers_color_scheme(page, tmp_path, pub_capture):
    root = open_html(page, tmp_path, attnscope.head_view(pub_capture).to_html())
    background = "getComputedStyle(document.querySelector('.attnscope-hv')).backgroundColor"
    page.page.emulate_media(color_scheme="light")
    assert page.page.evaluate(background) == "rgb(255, 255, 255)"
    page.page.emulate_media(color_scheme="dark")
    assert page.page.evaluate(background) == "rgb(13, 17, 23)"
    assert lines(root) == expected_lines(pub_capture.attentions[0], range(12))


def test_lines_are_painted_in_their_heads_colour_with_their_weight(page, tmp_path, pub_capture):
    """The canvas itself: the strongest line of a solo head is painted in that head's colour, as opaque
    as its weight, and hiding the head leaves the canvas empty."""
    root = open_html(page, tmp_path, attnscope.head_view(pub_capture).to_html())
    page.page.locator(".attnscope-hv-head[data-head='3']").dblclick()
    assert root.get_attribute("data-heads") == "3"
    weights = pub_capture.attentions[0, 3]
    query = int(np.argmax(weights.max(axis=1)))
    key = int(np.argmax(weights[query]))
    pixel = page.page.evaluate(
        """([query, key]) => {
          const root = document.querySelector('.attnscope-hv');
          const canvas = root.querySelector('canvas');
          const row = parseFloat(getComputedStyle(root).getPropertyValue('--attnscope-row'));
          const ratio = canvas.width / parseFloat(canvas.style.width);
          const x = Math.floor(canvas.width / 2);
          const y = Math.floor(((query + key) / 2 + 0.5) * row * ratio);
          return Array.from(canvas.getContext('2d').getImageData(x, y, 1, 1).data);
        }""",
        [query, key],
    )
    assert pixel[:3] == pytest.approx([0x11, 0x77, 0x33], abs=12)  # head 3's colour, #117733
    assert pixel[3] >= 0.8 * 255 * min(1.0, float(weights[query, key]))
    page.page.locator(".attnscope-hv-head[data-head='3']").click()
    assert root.get_attribute("data-heads") == ""
    painted = page.page.evaluate(
        """() => { const c = document.querySelector('.attnscope-hv canvas');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }"""
    )
    assert painted == 0


def test_a_second_click_unpins_the_token_under_the_pointer(page, tmp_path, pub_capture):
    """The view writes its selection to the model (the pinned token, else the hovered one); its own writes are not
    read back as a new pin, so a click on the pinned token unpins it while the pointer is still on it."""
    root = open_html(page, tmp_path, attnscope.head_view(pub_capture, layer=1).to_html())
    token = ".attnscope-hv-queries .attnscope-hv-token[data-index='3']"
    page.page.click(token)
    assert root.get_attribute("data-pinned") == "query:3"
    page.page.click(token)
    assert root.get_attribute("data-pinned") == ""
    assert root.get_attribute("data-token") == "query:3"  # still hovered: its lines stay until the pointer leaves
    page.page.mouse.move(1, 1)
    assert root.get_attribute("data-token") == ""
    page.page.click(token)
    assert root.get_attribute("data-pinned") == "query:3"
    assert page.errors == []
