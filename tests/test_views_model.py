"""V2/V7/V8: the model view's Python side: BertViz's arguments, include_layers/include_heads, the widget's traits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attnscope
from attnscope.errors import InputError
from attnscope.views import ModelView, model_view
from attnscope.views.payload import looks_special

from .conftest import PUB


def softmax_layers(layers: int = 3, heads: int = 4, n: int = 5, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """BertViz's input: one (batch=1, heads, query, key) tensor per layer, rows summing to 1."""
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.softmax(torch.randn(1, heads, n, n, generator=g), dim=-1) for _ in range(layers))


TOKENS = ["[CLS]", "Ġthe", "cat", "sat", "[SEP]"]


def test_model_view_is_exported_at_the_top_level():
    assert attnscope.model_view is model_view and attnscope.ModelView is ModelView


def test_bertviz_positional_and_keyword_arguments_are_accepted():
    att = softmax_layers()
    view = model_view(att, TOKENS, None, True, "light", None, None, None, None, None, [0, 2], [1, 3], "return")
    assert isinstance(view, ModelView)
    header = view.header
    assert header["sequences"]["encoder"]["tokens"] == ["[CLS]", "the", "cat", "sat", "[SEP]"]
    assert header["stacks"][0]["layer_labels"] == [0, 2] and header["stacks"][0]["head_labels"] == [1, 3]
    assert view.theme == "light" and view.thumbnails == "auto"
    raw = model_view(att, TOKENS, prettify_tokens=False, display_mode="dark")
    assert raw.header["sequences"]["encoder"]["tokens"] == TOKENS and raw.theme == "dark"
    assert model_view(att, TOKENS).theme == "auto"  # follows the page unless display_mode is given


def test_include_heads_carries_only_those_heads_labelled_with_their_numbers():
    att = softmax_layers(layers=4, heads=6)
    view = model_view(att, TOKENS, include_layers=[3, 1], include_heads=[5, 0, 2])
    weights = view.payload.decoded("encoder")
    assert weights.shape == (2, 3, 5, 5)
    expected = np.rint(torch.stack(att)[[3, 1], 0][:, [5, 0, 2]].double().numpy() * 255) / 255
    assert np.array_equal(weights, expected)
    stack = view.header["stacks"][0]
    assert (stack["layers"], stack["heads"]) == (2, 3)  # counts of what is carried, as the head view reads them
    assert (stack["layer_labels"], stack["head_labels"]) == ([3, 1], [5, 0, 2])
    assert len(view.layers["encoder"]) == 2 and all(len(b) == 3 * 25 for b in view.layers["encoder"])


def test_every_layer_is_sent_with_the_view(default_model):
    cap = attnscope.capture(default_model, PUB)
    view = model_view(cap)
    assert [bytes(b) for b in view.layers["encoder"]] == [view.payload.layer_bytes("encoder", i) for i in range(6)]
    assert view.header["stacks"][0]["head_labels"] == list(range(12))
    assert view.selection == {
        "stack": "encoder",
        "layer": None,
        "heads": [],
        "filter": "all",
        "token": None,
        "hide_special": False,
        "merge_subwords": False,
        "aggregation": "raw",
    }


def test_encoder_decoder_arrays_and_include_heads_apply_to_every_stack():
    enc, dec = softmax_layers(n=5), softmax_layers(n=3, seed=1)
    cross = tuple(torch.softmax(torch.randn(1, 4, 3, 5), -1) for _ in range(3))
    view = model_view(
        encoder_attention=enc,
        decoder_attention=dec,
        cross_attention=cross,
        encoder_tokens=list("abcde"),
        decoder_tokens=["<s>", "x", "y"],
        include_heads=[2],
    )
    assert [s["head_labels"] for s in view.header["stacks"]] == [[2], [2], [2]]
    assert view.header["sequences"]["decoder"]["special"] == [True, False, False]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(include_heads=[0, 4]), "head 4 is out of range: the encoder attention has heads 0-3"),
        (dict(include_heads=[]), "include_heads is empty: name at least one head"),
        (dict(include_heads=[1, 2, 1]), "include_heads names head 1 more than once"),
        (dict(include_heads=2), "include_heads must be a list of head numbers, got 2"),
        (dict(include_heads=[0.5]), "head must be an integer, got 0.5"),
        (dict(include_layers=[3]), "layer 3 is out of range: the encoder attention has layers 0-2"),
        (dict(include_layers=[0, 0]), "include_layers names layer 0 more than once"),
        (dict(display_mode="blue"), "display_mode must be one of 'auto', 'dark', 'light'; got 'blue'"),
        (dict(style="dots"), "style must be one of 'auto', 'lines', 'matrix'; got 'dots'"),
        (dict(html_action="save"), "html_action must be 'view' or 'return'"),
        (dict(stack="cross"), "stack 'cross' is not in this view"),
        (dict(threshold=1.0), "threshold must be a number in [0, 1)"),
        (dict(sentence_b_start=5), "sentence_b_start 5 is out of range"),
    ],
)
def test_bad_arguments_raise_clear_input_errors(kwargs, message):
    with pytest.raises(InputError) as err:
        model_view(softmax_layers(), TOKENS, **kwargs)
    assert message in str(err.value)


def test_bad_attention_is_refused_before_anything_is_built():
    att = [a.clone() for a in softmax_layers()]
    att[2][0, 1, 0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        model_view(att, TOKENS)
    with pytest.raises(InputError, match="5 query positions but 4 encoder tokens"):
        model_view(softmax_layers(), TOKENS[:4])


def test_a_capture_takes_no_separate_tokens_or_arrays(default_model):
    cap = attnscope.capture(default_model, PUB)
    with pytest.raises(InputError, match="a Capture carries its own tokens"):
        model_view(cap, cap.tokens.display)
    with pytest.raises(InputError, match="drop encoder_attention"):
        model_view(cap, encoder_attention=softmax_layers())
    with pytest.raises(InputError, match="head 12 is out of range: the encoder attention has heads 0-11"):
        model_view(cap, include_heads=[12])
    view = model_view(cap, include_layers=[5], include_heads=[11])
    assert view.payload.decoded("encoder").shape == (1, 1, len(cap.tokens), len(cap.tokens))


def test_traits_name_the_enlarged_cell_with_model_numbers():
    view = model_view(softmax_layers(layers=4, heads=6), TOKENS, include_layers=[1, 3], include_heads=[2, 5])
    assert (view.layer, view.heads, view.token) == (None, [], None)
    view.layer, view.heads = 3, [5]
    assert view.selection["layer"] == 3 and view.selection["heads"] == [5]
    with pytest.raises(InputError, match="head 0 is not among the included heads: include_heads keeps heads 2, 5"):
        view.heads = [0]
    with pytest.raises(InputError, match="one head at a time"):
        view.heads = [2, 5]
    with pytest.raises(InputError, match="layer 0 is not among the included layers: include_layers keeps layers 1, 3"):
        view.layer = 0
    with pytest.raises(InputError, match="style must be one of"):
        view.thumbnails = "bars"
    with pytest.raises(InputError, match="theme must be one of"):
        view.theme = "sepia"
    view.thumbnails, view.hide_special, view.theme = "matrix", True, "dark"
    state = view.html_state()
    assert (state["thumbnails"], state["hide_special"], state["theme"], state["layer"], state["heads"]) == (
        "matrix",
        True,
        "dark",
        3,
        [5],
    )


def test_notebook_display_carries_the_widget_and_a_static_fallback():
    view = model_view(softmax_layers(), TOKENS, hide_special=True, style="lines")
    data, _ = view._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    assert 'class="attnscope-host"' in data["text/html"] and ".attnscope-mv" in data["text/html"]
    assert view.hide_special is True and view.thumbnails == "lines"
    assert view.data.startswith("<!DOCTYPE html>")  # BertViz's html_action="return" object has .data


def test_special_tokens_of_bertviz_inputs_are_recognised_by_their_form():
    special = ["[CLS]", "[SEP]", "[PAD]", "<s>", "</s>", "<pad>", "<|endoftext|>", "<extra_id_0>"]
    plain = ["the", "Ġ<", "<img src=x onerror=alert(1)>", "[", "a]", "##s", "<>", "[cls]"]
    assert all(looks_special(t) for t in special)
    assert not any(looks_special(t) for t in plain)
