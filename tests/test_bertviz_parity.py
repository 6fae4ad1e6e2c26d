"""V7 parity with BertViz 1.4.1: the same arguments give the same weights, tokens, layers, heads and stacks.

The same attention tuple (per layer ``(batch=1, heads, query, key)`` torch tensors) goes to BertViz's
``head_view``/``model_view`` (``html_action="return"``) and to attnscope's. From BertViz we read the
params object its JS embeds (``const params = {...};``, written by ``json.dumps``) and parse it as
JSON; from attnscope we read both the payload (``payload.decoded(role)``, what the browser decodes)
and the base64 layers inside the HTML it writes, so the shipped bytes are checked too. Every
layer/head/query/key must agree within attnscope's stated precision ``MAX_ERROR`` (1/510).

What BertViz does that attnscope does not copy (checked here, so a BertViz change is noticed):
- it embeds full float32 values (``tensor.tolist()``: ~17 significant digits per weight), and the
  whole params object twice (its JS template's comment names the marker it replaces);
- for a sentence pair it embeds the attention twice: whole ("All") and again as its four blocks
  (A->A, B->B, A->B, B->A); attnscope sends it once with ``sentence_b_start`` and slices in the browser;
- ``prettify_tokens`` turns ``Ġgirl`` into `` girl`` (leading space kept) and a lone ``Ġ`` into a
  blank `` ``; attnscope strips the space and shows a token that would be blank as ``␣``;
- for encoder-decoders it takes ``include_layers`` from the encoder when not given and applies it
  to the decoder and cross stacks too, silently dropping decoder layers beyond the encoder's depth.
"""

from __future__ import annotations

import base64
import json
import re
from importlib.metadata import version

import bertviz  # in the test extra: a missing BertViz fails here rather than skipping
import numpy as np
import pytest
import torch

import attnscope
from attnscope.views import MAX_ERROR
from attnscope.views.compression import inflate

PAIR = ("The girl ran to a local pub.", "She wanted to escape the din of her city.")
SOURCE, TARGET = "The girl ran to a local pub to escape the din.", "She escaped the noise."
ROUNDING = 1e-12  # float64 arithmetic on top of the exact 1/510 bound
BERTVIZ_NAMES = {"Encoder": "encoder", "Decoder": "decoder", "Cross": "cross"}


# ---------------------------------------------------------------- reading what each tool embeds


def bertviz_params(html_object) -> dict:
    """The params object BertViz's JS embeds (``const params = {...};``), parsed as JSON."""
    text = html_object.data
    marker = "const params = "
    assert text.count(marker) == 1, "BertViz's HTML no longer has exactly one params object"
    params, end = json.JSONDecoder().raw_decode(text, text.index(marker) + len(marker))
    assert text[end] == ";"
    assert f'id="{params["root_div_id"]}"' in text
    return params


def html_states(html: str) -> list[dict]:
    """Every view state (header + base64 layers) in attnscope's HTML, in page order."""
    scripts = re.findall(r'<script type="application/json" id="[^"]+-data">(.*?)</script>', html, re.S)
    assert scripts, "no attnscope view data found in the HTML"
    return [json.loads(s) for s in scripts]


def shipped_weights(state: dict) -> dict[str, np.ndarray]:
    """Per stack role, the weights the HTML ships: base64 uint8 bytes (inflated, as the header says) / 255 as
    (layers, heads, query, key)."""
    header, out = state["header"], {}
    assert header["encoding"]["dtype"] == "uint8"
    compression = header["encoding"].get("compression")
    for stack in header["stacks"]:
        shape = (stack["heads"], stack["query"], stack["key"])
        layers = [
            np.frombuffer(inflate(base64.b64decode(b), compression), dtype=np.uint8).reshape(shape)
            for b in state["layers"][stack["role"]]
        ]
        assert len(layers) == stack["layers"] == len(stack["layer_labels"])
        out[stack["role"]] = np.stack(layers).astype(np.float64) / header["encoding"]["scale"]
    return out


def prettified(bertviz_tokens: list[str], raw: list[str]) -> list[str]:
    """attnscope's display of BertViz's prettified tokens: without the space BertViz keeps for a "Ġ",
    and a token that would be blank (a lone "Ġ", which BertViz shows as " ") shown as "␣"."""
    return [shown.strip() or "␣" for shown, original in zip(bertviz_tokens, raw, strict=True)]


def as_tuple(weights: np.ndarray) -> tuple[torch.Tensor, ...]:
    """(layers, heads, query, key) numpy as BertViz's input: one (1, heads, query, key) tensor per layer."""
    return tuple(torch.from_numpy(np.ascontiguousarray(layer))[None] for layer in weights)


def assert_close(bertviz_attn, ours: np.ndarray, what: str) -> None:
    """BertViz's nested lists and attnscope's decoded weights agree at every (layer, head, query, key)."""
    theirs = np.asarray(bertviz_attn, dtype=np.float64)
    assert theirs.shape == ours.shape, f"{what}: BertViz shape {theirs.shape} != attnscope {ours.shape}"
    error = np.abs(theirs - ours)
    worst = tuple(int(i) for i in np.unravel_index(int(error.argmax()), error.shape))
    assert error.max() <= MAX_ERROR + ROUNDING, f"{what}: off by {error.max():.6f} at (layer, head, query, key) {worst}"


def check_view(view, roles: list[str]) -> dict[str, np.ndarray]:
    """attnscope's decoded payload per role, after checking the HTML ships exactly those weights."""
    decoded = {role: view.payload.decoded(role) for role in roles}
    (state,) = html_states(view.to_html())
    shipped = shipped_weights(state)
    assert list(shipped) == roles
    for role in roles:
        np.testing.assert_array_equal(shipped[role], decoded[role], err_msg=f"{role}: HTML bytes != payload")
    return decoded


# ---------------------------------------------------------------- inputs


@pytest.fixture(scope="module")
def single(default_model):
    return attnscope.capture(default_model, " ".join(PAIR))


@pytest.fixture(scope="module")
def pair(default_model):
    return attnscope.capture(default_model, *PAIR)


@pytest.fixture(scope="module")
def seq2seq(tiny):
    cap = attnscope.capture(tiny("bart"), SOURCE, target=TARGET)
    depths = {role: cap.stacks[role].attentions.shape[0] for role in ("encoder", "decoder", "cross")}
    assert depths["encoder"] != depths["decoder"] == depths["cross"], depths  # the case worth testing
    return cap


def seq2seq_arguments(cap) -> dict:
    return dict(
        encoder_attention=as_tuple(cap.stacks["encoder"].attentions),
        decoder_attention=as_tuple(cap.stacks["decoder"].attentions),
        cross_attention=as_tuple(cap.stacks["cross"].attentions),
        encoder_tokens=list(cap.tokens.raw),
        decoder_tokens=list(cap.decoder_tokens.raw),
    )


# ---------------------------------------------------------------- the tests


def test_bertviz_under_comparison_is_1_4_1():
    assert version("bertviz") == "1.4.1"


def test_head_view_weights_tokens_and_shape_match_bertviz(single):
    att = single.attentions
    args = (as_tuple(att), list(single.tokens.raw))
    params = bertviz_params(bertviz.head_view(*args, html_action="return"))
    view = attnscope.head_view(*args)
    ours = check_view(view, ["encoder"])["encoder"]
    (entry,) = params["attention"]
    assert entry["name"] is None
    assert_close(entry["attn"], ours, "head view")
    assert ours.shape == att.shape  # every layer and head, nothing dropped
    assert params["include_layers"] == list(range(att.shape[0]))
    assert entry["left_text"] == entry["right_text"] == list(single.tokens.raw)  # WordPiece: nothing to prettify
    header = view.payload.header()
    assert header["sequences"]["encoder"]["tokens"] == entry["left_text"]
    assert header["stacks"][0]["layer_labels"] == params["include_layers"]
    assert header["sequences"]["encoder"]["sentence_b_start"] is None


def test_bertviz_embeds_exact_float32_and_attnscope_one_byte_per_weight(single):
    att = single.attentions.astype(np.float32)
    html_object = bertviz.head_view(as_tuple(att), list(single.tokens.raw), html_action="return")
    (entry,) = bertviz_params(html_object)["attention"]
    np.testing.assert_array_equal(np.asarray(entry["attn"], dtype=np.float32), att)  # lossless float32
    # Its JS template says "PYTHON_PARAMS" twice (the code and a comment): the params are embedded twice.
    text, params_json = html_object.data, json.dumps(bertviz_params(html_object))
    assert text.count(params_json) == 2 and "// HACK: " + params_json in text
    view = attnscope.head_view(as_tuple(att), list(single.tokens.raw))
    assert view.payload.stacks["encoder"].nbytes == att.size  # one byte per weight
    assert view.payload.nbytes() == att.size + att[:, 0].size  # and one per weight of the carried rollout
    assert len(view.to_html().encode()) < len(html_object.data.encode())


def test_sentence_pair_slices_match_bertviz_filters(pair):
    att, tokens, b = pair.attentions, list(pair.tokens.raw), pair.tokens.sentence_b_start
    assert b is not None and 0 < b < len(tokens)
    params = bertviz_params(bertviz.head_view(as_tuple(att), tokens, sentence_b_start=b, html_action="return"))
    view = attnscope.head_view(as_tuple(att), tokens, sentence_b_start=b)
    ours = check_view(view, ["encoder"])["encoder"]
    assert view.payload.header()["sequences"]["encoder"]["sentence_b_start"] == b
    a_side, b_side = slice(0, b), slice(b, len(tokens))
    expected = {
        "All": (slice(None), slice(None)),
        "Sentence A -> Sentence A": (a_side, a_side),
        "Sentence B -> Sentence B": (b_side, b_side),
        "Sentence A -> Sentence B": (a_side, b_side),
        "Sentence B -> Sentence A": (b_side, a_side),
    }
    assert [entry["name"] for entry in params["attention"]] == list(expected)
    for entry in params["attention"]:
        queries, keys = expected[entry["name"]]
        assert_close(entry["attn"], ours[:, :, queries, keys], entry["name"])
        assert entry["left_text"] == tokens[queries] and entry["right_text"] == tokens[keys]
    # BertViz carries sentence_b_start only implicitly: as the length of sentence A's slice.
    assert len(params["attention"][1]["left_text"]) == b


def test_include_layers_layer_and_heads_pick_the_same_as_bertviz(single):
    att, tokens = single.attentions, list(single.tokens.raw)
    chosen = dict(include_layers=[1, 3, 4], layer=3, heads=[2, 7])
    params = bertviz_params(bertviz.head_view(as_tuple(att), tokens, html_action="return", **chosen))
    view = attnscope.head_view(as_tuple(att), tokens, **chosen)
    ours = check_view(view, ["encoder"])["encoder"]
    (entry,) = params["attention"]
    assert params["include_layers"] == view.payload.layer_labels["encoder"] == [1, 3, 4]
    assert_close(entry["attn"], ours, "include_layers")
    assert_close(entry["attn"], att[[1, 3, 4]].astype(np.float64), "BertViz vs the capture")  # the right layers
    selection = view.payload.selection
    assert (params["layer"], params["heads"]) == (selection["layer"], selection["heads"]) == (3, [2, 7])


def test_encoder_decoder_stacks_match_bertviz_stack_by_stack(seq2seq):
    """Each stack given to BertViz alone (so it keeps all of that stack's layers) matches attnscope's."""
    args = seq2seq_arguments(seq2seq)
    view = attnscope.head_view(**args)
    ours = check_view(view, ["encoder", "decoder", "cross"])
    header = view.payload.header()
    tokens = {"encoder": args["encoder_tokens"], "decoder": args["decoder_tokens"]}
    for role, query_side, key_side in (
        ("encoder", "encoder", "encoder"),
        ("decoder", "decoder", "decoder"),
        ("cross", "decoder", "encoder"),
    ):
        alone = {
            f"{role}_attention": args[f"{role}_attention"],
            "encoder_tokens": args["encoder_tokens"],
            "decoder_tokens": args["decoder_tokens"],
        }
        if role != "cross":  # BertViz requires only the tokens the stack reads
            alone = {k: v for k, v in alone.items() if not k.endswith("_tokens") or k.startswith(role)}
        params = bertviz_params(bertviz.head_view(**alone, html_action="return"))
        (entry,) = params["attention"]
        assert BERTVIZ_NAMES[entry["name"]] == role
        depth = len(args[f"{role}_attention"])
        assert params["include_layers"] == view.payload.layer_labels[role] == list(range(depth)), role
        assert_close(entry["attn"], ours[role], role)
        stack = next(s for s in header["stacks"] if s["role"] == role)
        assert (stack["query_tokens"], stack["key_tokens"]) == (query_side, key_side)
        assert prettified(entry["left_text"], tokens[query_side]) == header["sequences"][query_side]["tokens"]
        assert prettified(entry["right_text"], tokens[key_side]) == header["sequences"][key_side]["tokens"]
        assert entry["left_text"] != tokens[query_side]  # byte-level BPE really had markers to prettify


def test_encoder_decoder_together_bertviz_cuts_decoder_to_encoder_depth(seq2seq):
    """BertViz given all three stacks shows decoder and cross only up to the encoder's depth; attnscope shows all."""
    args = seq2seq_arguments(seq2seq)
    params = bertviz_params(bertviz.head_view(**args, html_action="return"))
    view = attnscope.head_view(**args)
    ours = check_view(view, ["encoder", "decoder", "cross"])
    entries = {BERTVIZ_NAMES[e["name"]]: e for e in params["attention"]}
    assert list(entries) == ["encoder", "decoder", "cross"] == list(view.payload.stacks)
    encoder_depth = len(args["encoder_attention"])
    assert params["include_layers"] == list(range(encoder_depth))
    for role, entry in entries.items():
        depth = len(args[f"{role}_attention"])
        assert view.payload.layer_labels[role] == list(range(depth))
        assert len(entry["attn"]) == encoder_depth
        assert_close(entry["attn"], ours[role][:encoder_depth], role)  # the layers BertViz does show agree
    assert len(args["decoder_attention"]) > encoder_depth  # ...and it dropped the decoder's last layer(s)


def test_prettify_tokens_off_passes_tokens_through_unchanged_in_both(seq2seq):
    args = seq2seq_arguments(seq2seq)
    params = bertviz_params(bertviz.head_view(**args, prettify_tokens=False, html_action="return"))
    view = attnscope.head_view(**args, prettify_tokens=False)
    sequences = view.payload.header()["sequences"]
    cross = next(e for e in params["attention"] if e["name"] == "Cross")
    assert cross["left_text"] == sequences["decoder"]["tokens"] == args["decoder_tokens"]
    assert cross["right_text"] == sequences["encoder"]["tokens"] == args["encoder_tokens"]


# ---------------------------------------------------------------- model view

needs_model_view = pytest.mark.skipif(
    not hasattr(attnscope, "model_view"),
    reason="attnscope.model_view does not exist on this branch yet (V2 is built on another branch)",
)


def heads_shown(view, role: str, decoded: np.ndarray, include_heads: list[int] | None) -> np.ndarray:
    """The decoded weights of the heads the model view shows, in BertViz's order.

    attnscope may ship only the included heads (then ``decoded`` has that many) or every head with
    the included ones selected (then the selection must name them).
    """
    if include_heads is None or decoded.shape[1] == len(include_heads):
        return decoded
    assert list(view.payload.selection.get("heads", [])) == list(include_heads), (
        f"{role}: attnscope ships {decoded.shape[1]} heads but does not select include_heads {include_heads}"
    )
    return decoded[:, include_heads]


@needs_model_view
@pytest.mark.parametrize("include_layers, include_heads", [(None, None), ([0, 2, 5], [1, 4, 11])])
def test_model_view_matches_bertviz(single, include_layers, include_heads):
    att, tokens = single.attentions, list(single.tokens.raw)
    chosen = dict(include_layers=include_layers, include_heads=include_heads, display_mode="light")
    params = bertviz_params(bertviz.model_view(as_tuple(att), tokens, html_action="return", **chosen))
    view = attnscope.model_view(as_tuple(att), tokens, **chosen)
    ours = check_view(view, ["encoder"])["encoder"]
    (entry,) = params["attention"]
    assert params["include_layers"] == view.payload.layer_labels["encoder"]
    assert params["include_heads"] == (include_heads or list(range(att.shape[1])))
    assert params["total_heads"] == att.shape[1]
    assert_close(entry["attn"], heads_shown(view, "encoder", ours, include_heads), "model view")
    assert view.payload.header()["sequences"]["encoder"]["tokens"] == entry["left_text"]


@needs_model_view
def test_model_view_sentence_pair_and_seq2seq_match_bertviz(pair, seq2seq):
    att, tokens, b = pair.attentions, list(pair.tokens.raw), pair.tokens.sentence_b_start
    params = bertviz_params(bertviz.model_view(as_tuple(att), tokens, sentence_b_start=b, html_action="return"))
    view = attnscope.model_view(as_tuple(att), tokens, sentence_b_start=b)
    ours = check_view(view, ["encoder"])["encoder"]
    assert view.payload.header()["sequences"]["encoder"]["sentence_b_start"] == b
    assert params["attention"][0]["name"] == "All"
    assert_close(params["attention"][0]["attn"], ours, "model view, pair")
    assert_close(params["attention"][3]["attn"], ours[:, :, :b, b:], "model view, A -> B")

    args = seq2seq_arguments(seq2seq)
    view = attnscope.model_view(**args)
    ours = check_view(view, ["encoder", "decoder", "cross"])
    for role in ("encoder", "decoder", "cross"):
        alone = {f"{role}_attention": args[f"{role}_attention"]}
        alone.update(
            {k: args[k] for k in ("encoder_tokens", "decoder_tokens") if role == "cross" or k.startswith(role)}
        )
        (entry,) = bertviz_params(bertviz.model_view(**alone, html_action="return"))["attention"]
        assert view.payload.layer_labels[role] == list(range(len(args[f"{role}_attention"])))
        assert_close(entry["attn"], ours[role], f"model view, {role}")
