"""M3: the model view at long context. Every head pooled over blocks (the overview the widget sends decodes to
``pooled_overview``'s values), a zoom answered with the exact weights (tiles equal eager attention, pooled regions
equal pooling of eager weights), bad zoom requests answered with an error, and the standalone HTML within its cap."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

import attnscope
from attnscope.analysis.long import pooled_overview
from attnscope.capture.lazy import LazyAttention
from attnscope.errors import InputError
from attnscope.quantise import MAX_ERROR
from attnscope.views.compression import inflate
from attnscope.views.model import ModelView
from attnscope.views.overview import ModelOverview
from attnscope.views.overview_zoom import ZOOM_MESSAGE

from .conftest import PUB

LONG = " ".join([PUB] * 6)  # past the tiny models' 128 positions: truncated to them
CELLS = 16  # 128 tokens: overview blocks of 8, a finer level of 4, single tokens at 16 × 16


def _lazy_and_eager(handle, text=LONG, target=None):
    """The same input on demand (blocks of 4 query rows, so every request spans several) and eager."""
    lazy = attnscope.capture(handle, text, target=target, truncate=True, attention="on_demand")
    for stack in lazy.stacks.values():
        if isinstance(stack.attentions, LazyAttention):
            stack.attentions.block_bytes = stack.attentions.shape[3] * 13 * 4
    eager = attnscope.capture(handle, text, target=target, truncate=True)
    return lazy, eager


@pytest.fixture(scope="module")
def smollm2_pair(tiny):
    return _lazy_and_eager(tiny("smollm2"))


class Sent:
    """What the widget sends to the front end (the comm is the transport, not the logic)."""

    def __init__(self, widget) -> None:
        self.messages: list[tuple[dict, list[bytes]]] = []
        widget.send = lambda content, buffers=None: self.messages.append((content, list(buffers or [])))


def zoom(view, **fields):
    sent = Sent(view)
    view._handle_custom_msg({"type": ZOOM_MESSAGE, "id": 7, **fields}, [])
    ((content, buffers),) = sent.messages
    return content, buffers


def floats(buffer: bytes, shape) -> np.ndarray:
    return np.frombuffer(buffer, dtype="<f4").reshape(shape)


def pooled(weights: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Max and mean of every block × block cell of one head's eager weights (cells cut by the edge are smaller)."""
    down, across = -(-weights.shape[0] // block), -(-weights.shape[1] // block)
    maximum, mean = np.zeros((down, across)), np.zeros((down, across))
    for r in range(down):
        for c in range(across):
            cell = weights[r * block : (r + 1) * block, c * block : (c + 1) * block].astype(np.float64)
            maximum[r, c], mean[r, c] = cell.max(), cell.mean()
    return maximum, mean


def test_on_demand_capture_shows_the_overview_and_dense_keeps_todays_view(smollm2_pair):
    lazy, eager = smollm2_pair
    assert isinstance(attnscope.model_view(lazy, cells=CELLS), ModelOverview)
    assert isinstance(attnscope.model_view(eager), ModelView)
    assert isinstance(attnscope.model_view(eager, overview=True, cells=CELLS), ModelOverview)
    assert isinstance(attnscope.model_view(lazy, overview=False), ModelView)


def test_overview_cells_the_widget_sends_decode_to_pooled_overview(smollm2_pair):
    lazy, _ = smollm2_pair
    view = attnscope.model_view(lazy, cells=CELLS)
    expected = pooled_overview(lazy.attentions, cells=CELLS)
    (stack,) = view.header["stacks"]
    assert (stack["block"], stack["layers"], stack["heads"], stack["query"]) == (8, 2, 4, 128)
    assert stack["describe"] == expected.describe()
    (level,) = view.levels["decoder"]  # the widget sends the overview only; zooms ask Python
    shape = expected.maximum.shape
    assert (level["block"], level["rows"], level["cols"]) == (8, 16, 16) == (expected.block, *shape[2:])
    maximum = np.frombuffer(level["max"], dtype=np.uint8).reshape(shape) / 255
    assert np.abs(maximum - expected.maximum).max() <= MAX_ERROR + 1e-6
    scale = np.array(level["mean_scale"]).reshape(shape[:2])[:, :, None, None]
    mean = np.frombuffer(level["mean"], dtype=np.uint8).reshape(shape) / 255 * scale
    np.testing.assert_allclose(scale[..., 0, 0], expected.mean.max(axis=(2, 3)), rtol=1e-6)
    assert np.abs(mean - expected.mean).max() <= scale.max() * MAX_ERROR + 1e-6
    assert len(view.header["sequences"]["decoder"]["tokens"]) == 128


def test_a_zoom_to_single_tokens_is_the_exact_eager_tile(smollm2_pair):
    lazy, eager = smollm2_pair
    view = attnscope.model_view(lazy, cells=CELLS)
    content, (buffer,) = zoom(view, stack="decoder", layer=1, head=3, rows=[100, 116], cols=[37, 50])
    assert content == {
        "type": ZOOM_MESSAGE, "id": 7, "stack": "decoder", "layer": 1, "head": 3,
        "kind": "tile", "block": 1, "rows": [100, 116], "cols": [37, 50], "shape": [16, 13],
    }  # fmt: skip
    tile = floats(buffer, (16, 13))
    np.testing.assert_allclose(tile, eager.attentions[1, 3, 100:116, 37:50], atol=1e-6, rtol=0)
    np.testing.assert_array_equal(tile, lazy.attentions.tile(1, 3, range(100, 116), range(37, 50)))


@pytest.mark.parametrize(
    ("cells", "finer", "rows", "cols", "block", "snapped"),
    [
        (16, False, [0, 128], [0, 128], 8, ([0, 128], [0, 128])),  # the whole head: the overview's level
        (16, False, [5, 105], [20, 90], 8, ([0, 112], [16, 96])),  # needs 7: the level of 8 (at most 2× coarser)
        (16, False, [64, 128], [0, 20], 8, ([64, 128], [0, 24])),  # needs 4: the overview's level of 8
        (16, True, [64, 128], [0, 20], 4, ([64, 128], [0, 20])),  # needs 4: the finer level, once computed
        (16, False, [10, 50], [3, 40], 3, ([9, 51], [3, 42])),  # needs 3: pooled from the exact weights
        (8, True, [10, 30], [3, 20], 3, ([9, 30], [3, 21])),  # needs 3, levels of 16 and 8: from the weights
        (8, False, [106, 128], [107, 128], 3, ([105, 128], [105, 128])),  # needs 3; the last cells are cut short
    ],
)
def test_a_larger_zoom_is_pooled_from_exact_weights(smollm2_pair, cells, finer, rows, cols, block, snapped):
    lazy, eager = smollm2_pair
    view = attnscope.model_view(lazy, cells=cells)
    if finer:
        assert view.overview.stacks["decoder"].finer().block == {16: 4, 8: 8}[cells]
    content, (max_buffer, mean_buffer) = zoom(view, stack="decoder", layer=0, head=2, rows=rows, cols=cols)
    assert (content["kind"], content["block"], (content["rows"], content["cols"])) == ("pooled", block, snapped)
    maximum, mean = pooled(eager.attentions[0, 2], block)
    (r0, r1), (c0, c1) = snapped
    cells = np.s_[r0 // block : -(-r1 // block), c0 // block : -(-c1 // block)]
    assert content["shape"] == list(maximum[cells].shape)
    np.testing.assert_allclose(floats(max_buffer, content["shape"]), maximum[cells], atol=1e-6, rtol=0)
    np.testing.assert_allclose(floats(mean_buffer, content["shape"]), mean[cells], atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"stack": "encoder"}, "stack must be one of 'decoder'; got 'encoder'"),
        ({"layer": 2}, "layer 2 is not in this view: the decoder attention has layers 0-1"),
        ({"layer": "1"}, "layer must be an integer, got '1'"),
        ({"head": True}, "head must be an integer, got True"),
        ({"head": 4}, "head 4 is not in this view: the decoder attention has heads 0-3"),
        ({"rows": [10, 10]}, "rows 10:10 is out of range: query positions are 0-127, start < stop"),
        ({"cols": [0, 129]}, "cols 0:129 is out of range: key positions are 0-127, start < stop"),
        ({"rows": [3]}, "rows must be [start, stop], two integer query positions; got [3]"),
        ({"cols": None}, "cols must be [start, stop], two integer key positions; got None"),
    ],
)
def test_bad_zoom_requests_get_an_error_reply(smollm2_pair, fields, message):
    lazy, _ = smollm2_pair
    view = attnscope.model_view(lazy, cells=CELLS)
    good = {"stack": "decoder", "layer": 1, "head": 0, "rows": [0, 10], "cols": [0, 10]}
    content, buffers = zoom(view, **{**good, **fields})
    assert content == {"type": ZOOM_MESSAGE, "id": 7, "error": message} and buffers == []


def test_requests_of_other_kinds_are_not_answered(smollm2_pair):
    view = attnscope.model_view(smollm2_pair[0], cells=CELLS)
    sent = Sent(view)
    view._handle_custom_msg({"type": "attnscope-layers", "role": "decoder", "indices": [0]}, [])
    view._handle_custom_msg(["not", "a", "request"], [])
    assert sent.messages == []


def test_every_stack_of_an_encoder_decoder_zooms_exactly(tiny):
    lazy, eager = _lazy_and_eager(tiny("bart"), PUB, target="She went home.")
    assert all(isinstance(s.attentions, LazyAttention) for s in lazy.stacks.values())
    view = attnscope.model_view(lazy, cells=4)
    assert [s["role"] for s in view.header["stacks"]] == ["encoder", "decoder", "cross"]
    cross = next(s for s in view.header["stacks"] if s["role"] == "cross")
    queries, keys = cross["query"], cross["key"]
    assert queries > 4 and keys > 4
    content, (buffer,) = zoom(view, stack="cross", layer=2, head=1, rows=[1, 5], cols=[keys - 4, keys])
    assert content["kind"] == "tile"
    expected = eager.stacks["cross"].attentions[2, 1, 1:5, keys - 4 :]
    np.testing.assert_allclose(floats(buffer, (4, 4)), expected, atol=1e-6, rtol=0)
    content, (max_buffer, _) = zoom(view, stack="cross", layer=2, head=1, rows=[0, queries], cols=[0, keys])
    maximum, _ = pooled(eager.stacks["cross"].attentions[2, 1], content["block"])
    np.testing.assert_allclose(floats(max_buffer, content["shape"]), maximum, atol=1e-6)


def test_bertviz_arrays_show_the_overview_when_asked(smollm2_pair):
    _, eager = smollm2_pair
    attention = [eager.attentions[i][None] for i in range(2)]
    view = attnscope.model_view(attention, list(eager.tokens.display), overview=True, cells=CELLS, html_action="return")
    assert isinstance(view, ModelOverview) and view.header["stacks"][0]["role"] == "decoder"
    content, (buffer,) = zoom(view, stack="decoder", layer=0, head=1, rows=[4, 9], cols=[0, 9])
    np.testing.assert_allclose(floats(buffer, (5, 9)), eager.attentions[0, 1, 4:9, :9], atol=1e-6)


def test_include_layers_and_heads_keep_those_and_zooms_name_the_model_numbers(smollm2_pair):
    lazy, eager = smollm2_pair
    view = attnscope.model_view(lazy, cells=CELLS, include_layers=[1], include_heads=[3, 1])
    stack = view.header["stacks"][0]
    assert (stack["layer_labels"], stack["head_labels"]) == ([1], [3, 1])
    content, (buffer,) = zoom(view, stack="decoder", layer=1, head=1, rows=[0, 5], cols=[0, 5])
    np.testing.assert_allclose(floats(buffer, (5, 5)), eager.attentions[1, 1, :5, :5], atol=1e-6)
    content, _ = zoom(view, stack="decoder", layer=0, head=1, rows=[0, 5], cols=[0, 5])
    assert content["error"] == "layer 0 is not in this view: the decoder attention has layers 1-1"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"style": "lines"}, "style does not apply to the overview"),
        ({"threshold": 0.2, "aggregation": "rollout"}, "threshold, aggregation do not apply to the overview"),
        ({"cells": 2}, "cells must be an integer in 4-1024"),
        ({"overview": "yes"}, "overview must be True, False or None"),
        ({"include_heads": [4]}, "head 4 is out of range: the decoder attention has heads 0-3"),
    ],
)
def test_options_the_overview_cannot_take_are_refused(smollm2_pair, options, message):
    with pytest.raises(InputError, match=re.escape(message)):
        attnscope.model_view(smollm2_pair[0], **options)


def test_selection_traits_are_validated(smollm2_pair):
    view = attnscope.model_view(smollm2_pair[0], cells=CELLS)
    view.layer, view.head, view.region, view.pooling = 1, 2, [0, 64, 0, 32], "mean"
    assert view.selection == {"stack": "decoder", "layer": 1, "head": 2, "region": [0, 64, 0, 32], "pooling": "mean"}
    for name, value, message in [
        ("layer", 3, "layer 3 is not in this view"),
        ("region", [0, 129, 0, 5], "region [0, 129, 0, 5] is out of range"),
        ("pooling", "median", "pooling must be 'max' or 'mean'"),
    ]:
        with pytest.raises(InputError, match=re.escape(message)):
            setattr(view, name, value)


def state_of(html: str) -> dict:
    return json.loads(re.search(r'<script type="application/json"[^>]*>(.*?)</script>', html, re.S).group(1))


def test_html_carries_the_finer_level_within_its_cap_and_says_so_when_nothing_fits(smollm2_pair):
    view = attnscope.model_view(smollm2_pair[0], cells=CELLS)
    full = view.to_html()
    levels = state_of(full)["levels"]["decoder"]
    assert [(lv["block"], lv["rows"]) for lv in levels] == [(8, 16), (4, 32)]
    assert all(lv["max"] and lv["mean"] for lv in levels)
    overview_only = view.to_html(max_bytes=len(full.encode()) - 1)
    assert [lv["block"] for lv in state_of(overview_only)["levels"]["decoder"]] == [8]
    with pytest.raises(InputError, match="the overview needs .* MB of HTML, over max_bytes=1,000"):
        view.to_html(max_bytes=1000)
    fallback = view._repr_mimebundle_()[0]["text/html"]  # a notebook's static copy: the overview only
    assert [lv["block"] for lv in state_of(fallback)["levels"]["decoder"]] == [8]


def test_html_carries_the_planes_deflated_and_they_inflate_to_the_levels_bytes(smollm2_pair):
    view = attnscope.model_view(smollm2_pair[0], cells=CELLS)
    html = view.to_html()
    state = state_of(html)
    compression = state["header"]["encoding"]["compression"]
    assert compression == "deflate-raw"
    stack = view.overview.stacks["decoder"]
    for carried, level in zip(state["levels"]["decoder"], stack.levels, strict=True):
        planes = level.planes()
        for name in ("max", "mean"):
            packed = base64.b64decode(carried[name])
            assert inflate(packed, compression) == planes[name].tobytes()
            assert len(packed) < planes[name].nbytes  # pooled weights deflate
    carried = sum(len(lv[name]) for lv in state["levels"]["decoder"] for name in ("max", "mean"))
    assert carried < view.carried_bytes(2, ("max", "mean"))  # the bound the plan is chosen on


def test_small_zooms_run_on_one_thread_and_leave_torch_as_it_was(smollm2_pair, monkeypatch):
    import torch

    from attnscope.views import overview_zoom

    seen = []
    real = overview_zoom.exact_weights
    monkeypatch.setattr(overview_zoom, "exact_weights", lambda *a: seen.append(torch.get_num_threads()) or real(*a))
    view = attnscope.model_view(smollm2_pair[0], cells=CELLS)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        zoom(view, stack="decoder", layer=0, head=0, rows=[0, 4], cols=[0, 4])
        monkeypatch.setattr(overview_zoom, "ONE_THREAD_WEIGHTS", 3 * 128)  # 4 rows × 128 keys is past it
        zoom(view, stack="decoder", layer=0, head=0, rows=[0, 4], cols=[0, 4])
        assert seen == [1, 2] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
