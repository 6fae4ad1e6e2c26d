"""The diff view's Python side (B5): the payload's bytes, pairs, distances and colour limit from a `Comparison`,
the A − B palette (white at zero, blue below, orange above), the widget's traits and errors, and the entry
points (`attnscope.diff_view`, `head_view` and `model_view` given a comparison)."""

from __future__ import annotations

import base64

import numpy as np
import pytest

import attnscope
from attnscope.errors import InputError
from attnscope.quantise import quantise
from attnscope.views.compression import inflate
from attnscope.views.diff import DiffView
from attnscope.views.diff_payload import DIVERGING, diff_payload, diverging_rgb, ramp_rgb

from .conftest import PUB
from .diff_fixtures import SWAPPED, UNIFORM, edited_comparison


@pytest.fixture(scope="module")
def edited(default_model):
    return edited_comparison(default_model)


def test_payload_carries_both_sides_as_bytes_and_the_grid_pairs(edited):
    payload = diff_payload(edited)
    assert np.array_equal(payload.codes_a, quantise(edited.attention_a))
    assert np.array_equal(payload.codes_b, quantise(edited.attention_b))
    layers = payload.layers()
    assert len(layers["a"]) == len(layers["b"]) == 6 and len(layers["a"][0]) == 12 * len(edited.alignment) ** 2
    header = payload.header
    assert header["pairing"] == "same place" and header["pairs"][1][3] == [1, 3]
    assert header["pair_distances"] == np.round(edited.distances, 6).tolist()
    largest = int(np.abs(payload.codes_a.astype(int) - payload.codes_b.astype(int)).max())
    assert header["limit_code"] == largest > 0
    assert header["units"] == edited.alignment.labels and header["level"] == "token"
    moved = {(m[0], m[1]): (m[2], m[3]) for m in header["matching"]}
    layer, x, y = SWAPPED
    assert moved[(layer, x)] == (layer, y) and moved[(layer, y)] == (layer, x)  # the swapped heads are found
    deflated = payload.layers_base64()["b"][2]
    assert inflate(base64.b64decode(deflated), "deflate-raw") == layers["b"][2]


def test_the_a_minus_b_palette_is_white_at_zero_and_blue_orange_at_the_ends():
    assert diverging_rgb(np.array([0]), 17).tolist() == [[255, 255, 255]]
    assert diverging_rgb(np.array([-17, 17]), 17).tolist() == [list(DIVERGING[0][1]), list(DIVERGING[-1][1])]
    assert diverging_rgb(np.array([-255, 255]), 17).tolist() == [list(DIVERGING[0][1]), list(DIVERGING[-1][1])]
    blue, orange = DIVERGING[0][1], DIVERGING[-1][1]
    assert blue[2] > blue[0] and orange[0] > orange[2]  # blue below zero, orange above
    half = ramp_rgb(np.array([0.25]), DIVERGING)[0]
    assert half.tolist() == [250, 213, 175]  # halfway from white to (245, 170, 95), rounded half up


def test_shapes_that_differ_pair_each_head_with_its_matched_head(default_model, tiny):
    comparison = attnscope.compare_models(tiny("gpt2"), default_model, PUB)
    header = diff_payload(comparison).header
    assert comparison.distances is None and header["distances"] is None and header["pairing"] == "matched"
    for m in comparison.matching:
        assert header["pairs"][m.layer_a][m.head_a] == [m.layer_b, m.head_b]
        assert header["pair_distances"][m.layer_a][m.head_a] == pytest.approx(m.distance, abs=1e-6)
    assert header["level"] == "word" and header["unaligned_b"][0] == {"position": 0, "token": "[CLS]"}


def test_entry_points_take_a_comparison(edited):
    model = attnscope.model_view(edited)
    head = attnscope.head_view(edited, layer=UNIFORM[0], heads=[UNIFORM[1]])
    assert isinstance(model, DiffView) and isinstance(head, DiffView)
    assert (model.layout, model.layer, model.head, model.mode) == ("model", None, None, "diff")
    assert (head.layout, head.layer, head.head) == ("head", *UNIFORM)
    assert (attnscope.head_view(edited).layer, attnscope.head_view(edited).head) == (0, 0)
    shown = attnscope.diff_view(edited, mode="a", layer=1, head=3)
    assert shown.selection == {"mode": "a", "layer": 1, "head": 3, "partner": None}
    page = shown.to_html()
    assert "https://" not in page and "<script src" not in page


def test_bad_options_are_refused_with_their_ranges(edited):
    with pytest.raises(InputError, match="mode must be one of 'a', 'b', 'diff'"):
        attnscope.diff_view(edited, mode="sum")
    with pytest.raises(InputError, match="layer 6 is out of range"):
        attnscope.diff_view(edited, layer=6, head=0)
    with pytest.raises(InputError, match="give both layer and head"):
        attnscope.diff_view(edited, layer=1)
    with pytest.raises(InputError, match=r"limit must be a number in \(0, 1\]"):
        attnscope.diff_view(edited, limit=0)
    with pytest.raises(InputError, match="diff_view takes a Comparison"):
        attnscope.diff_view("not a comparison")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="one head of A at a time"):
        attnscope.head_view(edited, heads=[1, 2])
    view = attnscope.diff_view(edited)
    with pytest.raises(InputError, match="partner head 12 is out of range"):
        view.partner = [0, 12]
    assert attnscope.diff_view(edited, limit=0.5).header["limit_code"] == 128


def test_saved_page_is_written_whole(edited, tmp_path):
    target = tmp_path / "diff.html"
    written = attnscope.diff_view(edited).save(target)
    assert written == target and target.read_text().rstrip().endswith("</html>")
    assert [p.name for p in tmp_path.iterdir()] == ["diff.html"]  # no temporary file left behind
