"""R1: errors read as sentences: ranges name their unit in good English, every count agrees with its noun
("1 token", "6 tokens"), and attention that a model ran without (SDPA) says so and how to get it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

import attnscope
from attnscope.atlas.compute import long_sentence_notices
from attnscope.capture.loading import default_model_path
from attnscope.errors import InputError, allowed_range, check_range, count, plural
from attnscope.index.query import check_query_token


@pytest.mark.parametrize(
    ("noun", "many"),
    [
        ("layer", "layers"),
        ("head", "heads"),
        ("mask position", "mask positions"),
        ("batch index", "batch indices"),
        ("token position", "token positions"),
        ("entry", "entries"),
        ("key", "keys"),
        ("box", "boxes"),
    ],
)
def test_plural_of_the_units_ranges_are_given_in(noun, many):
    assert plural(noun) == many


def test_ranges_in_words():
    assert allowed_range("layer", 12) == "layers 0-11"
    assert allowed_range("head", 1) == "only head 0"
    assert allowed_range("position", 0) == "no positions"


def test_the_field_reports_messages_are_sentences():
    """BertViz arguments from the field report: a batch of 2 and a sentence B start past the tokens."""
    attention = tuple(torch.full((2, 2, 4, 4), 0.25) for _ in range(2))
    with pytest.raises(InputError) as error:
        attnscope.head_view(attention, list("abcd"), batch_index=2)
    assert str(error.value) == "batch_index 2 is out of range: attention (batch size 2) has batch indices 0-1"
    with pytest.raises(InputError) as error:
        attnscope.head_view(attention, list("abcd"), sentence_b_start=4)
    assert str(error.value) == (
        "sentence_b_start 4 is out of range: the encoder sequence of 4 tokens has token positions 0-3"
    )
    with pytest.raises(InputError) as error:
        check_range("sentence_b_start", 17, 17, "the encoder sequence of 17 tokens", unit="token position")
    assert "has token positions 0-16" in str(error.value) and "starts" not in str(error.value)


def test_no_message_pluralises_a_parameter_name(default_model):
    cap = attnscope.capture(default_model, "The girl ran.", fields="all")
    view = attnscope.neuron_view(cap)
    with pytest.raises(Exception) as error:
        view.token = {"side": "query", "index": 99}
    assert "query position 99 is out of range: the encoder stack's query of 6 tokens has query positions 0-5" in str(
        error.value
    )


@pytest.fixture(scope="module")
def sdpa_run():
    """The default model loaded as transformers loads it by default (SDPA), run with output_attentions."""
    path = default_model_path()
    model = transformers.AutoModel.from_pretrained(path, attn_implementation="sdpa").eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    inputs = tokenizer("The girl ran.", return_tensors="pt")
    with torch.no_grad():
        plain, asked = model(**inputs), model(**inputs, output_attentions=True)
    return plain, asked, tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])


@pytest.mark.parametrize("view", [attnscope.head_view, attnscope.model_view])
def test_attention_from_a_model_run_under_sdpa_says_how_to_get_weights(sdpa_run, view):
    plain, asked, tokens = sdpa_run
    assert plain.attentions is None and len(asked.attentions) == 0  # what transformers returns under SDPA
    for attention, given in (
        (plain.attentions, "None"),
        (asked.attentions, "an empty tuple"),
        ((None,) * 6, "a tuple of 6 Nones, one per layer"),
    ):
        with pytest.raises(InputError) as error:
            view(attention, tokens)
        message = str(error.value)
        if given == "an empty tuple":  # also what outputs[-1] is under transformers 5: both causes are named
            assert message.startswith("attention is an empty tuple. If it is outputs[-1], as BertViz's notebooks")
            assert "If it is outputs.attentions, the model ran without attention weights" in message
        else:
            assert message.startswith(f"attention is {given}: the model ran without attention weights")
        assert "attnscope.capture(handle, text)" in message and "attnscope.wrap(model, tokenizer)" in message
        assert 'attn_implementation="eager"' in message and "output_attentions=True" in message
    with pytest.raises(InputError, match="encoder_attention is an empty tuple: the model ran without"):
        view(encoder_attention=(), encoder_tokens=tokens)


def test_wrapping_the_sdpa_model_captures_its_weights(sdpa_run):
    """What the message advises works: a model loaded with SDPA is captured through attnscope.wrap."""
    path = default_model_path()
    model = transformers.AutoModel.from_pretrained(path, attn_implementation="sdpa").eval()
    handle = attnscope.wrap(model, transformers.AutoTokenizer.from_pretrained(path))
    cap = attnscope.capture(handle, "The girl ran.")
    assert cap.attentions.shape == (6, 12, 6, 6)
    assert model.config._attn_implementation == "sdpa"


# Every message that counts something agrees with its count: "1 token", "6 tokens" (the field report:
# "the encoder stack's 6 query tokens has query positions 0-5", "this input of 1 tokens", "head_weights
# has 1 numbers"). One family a test, over a count of 1 and of several.


def test_count_agrees_with_its_number():
    assert [count(n, "token") for n in (0, 1, 2, 60280)] == ["0 tokens", "1 token", "2 tokens", "60,280 tokens"]
    assert count(1, "batch index") == "1 batch index" and count(3, "batch index") == "3 batch indices"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a", "position 5 is out of range: this input of 1 token has only position 0"),
        ("the dog", "position 5 is out of range: this input of 3 tokens has positions 0-2"),
    ],
)
def test_a_position_past_the_input(tiny, text, expected):
    cap = attnscope.capture(tiny("gpt2"), text, fields="all", top_k=2)
    assert cap.tokens.display == (["a"] if text == "a" else ["the", "do", "g"])
    with pytest.raises(InputError) as error:
        cap.top_k(5)
    assert str(error.value) == expected
    with pytest.raises(InputError) as error:
        cap.main.scores(0, 0, 5)
    assert str(error.value) == expected.replace("position", "query position")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a", "the decoder stack's query of 1 token has only query position 0"),
        ("the dog", "the decoder stack's query of 3 tokens has query positions 0-2"),
    ],
)
def test_a_query_past_the_neuron_views_tokens(tiny, text, expected):
    cap = attnscope.capture(tiny("gpt2"), text, fields="all", top_k=0)
    with pytest.raises(InputError) as error:
        attnscope.neuron_view(cap, query=7)
    assert str(error.value) == f"query position 7 is out of range: {expected}"
    view = attnscope.neuron_view(cap)
    with pytest.raises(Exception) as error:
        view.token = {"side": "query", "index": 7}
    assert f"query position 7 is out of range: {expected}" in str(error.value)


@pytest.mark.parametrize(
    ("weights", "heads", "expected"),
    [
        ([1.0], [0, 1], "head_weights has 1 number but 2 heads are chosen (0, 1)"),
        ([1.0, 2.0], [3], "head_weights has 2 numbers but 1 head is chosen (3)"),
    ],
)
def test_head_weights_of_the_wrong_length(default_model, weights, heads, expected):
    cap = attnscope.capture(default_model, "The girl ran.")
    with pytest.raises(InputError) as error:
        attnscope.aggregate(cap, "weighted", heads=heads, head_weights=weights)
    assert str(error.value) == f"{expected}: give one weight >= 0 per chosen head"


@pytest.mark.parametrize(
    ("positions", "tokens", "expected"),
    [
        (1, ["a", "b"], "encoder attention has 1 query position but 2 encoder tokens were given"),
        (3, ["a"], "encoder attention has 3 query positions but 1 encoder token was given"),
    ],
)
def test_attention_and_tokens_of_different_lengths(positions, tokens, expected):
    attention = (np.full((1, 1, positions, positions), 1 / positions),)
    with pytest.raises(InputError) as error:
        attnscope.head_view(attention, tokens)
    assert str(error.value) == f"{expected}: pass the tokens the attention was computed on"


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        (["a"], "the encoder sequence of 1 token has only token position 0"),
        (["a", "b", "c"], "the encoder sequence of 3 tokens has token positions 0-2"),
    ],
)
def test_sentence_b_past_the_tokens(tokens, expected):
    n = len(tokens)
    with pytest.raises(InputError) as error:
        attnscope.head_view((np.full((1, 1, n, n), 1 / n),), tokens, sentence_b_start=5)
    assert str(error.value) == f"sentence_b_start 5 is out of range: {expected}"


@pytest.mark.parametrize(("layers", "expected"), [(1, "a tuple of 1 None"), (6, "a tuple of 6 Nones")])
def test_attention_of_nones(layers, expected):
    with pytest.raises(InputError) as error:
        attnscope.head_view((None,) * layers, ["a"])
    assert str(error.value).startswith(f"attention is {expected}, one per layer: the model ran without")


@pytest.mark.parametrize(("shape", "expected"), [((4,), "1 dimension (4,)"), ((2, 4, 4), "3 dimensions (2, 4, 4)")])
def test_layers_of_the_wrong_rank(shape, expected):
    with pytest.raises(InputError) as error:
        attnscope.head_view((np.zeros(shape),), ["a"])
    assert str(error.value).startswith(f"attention layer 0 has {expected}: each layer must be")


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (1, "token 3 is out of range: the query text of 1 token has only token 0"),
        (3, "token 9 is out of range: the query text of 3 tokens has tokens 0-2"),
    ],
)
def test_a_query_token_past_the_text(tiny, size, expected):
    tokens = attnscope.encode(tiny("gpt2"), "a" if size == 1 else "the dog")
    assert len(tokens) == size
    with pytest.raises(InputError) as error:
        check_query_token(tokens, 3 if size == 1 else 9)
    assert str(error.value) == expected


@pytest.mark.parametrize(
    ("numbers", "expected"),
    [
        (
            (1, 1, 1),
            [
                "1 sentence longer than the model takes was truncated (1 token dropped)",
                "1 sentence longer than the model takes was skipped",
            ],
        ),
        (
            (2, 7, 3),
            [
                "2 sentences longer than the model takes were truncated (7 tokens dropped)",
                "3 sentences longer than the model takes were skipped",
            ],
        ),
    ],
)
def test_the_atlas_notices_of_long_sentences(numbers, expected):
    assert list(long_sentence_notices(*numbers)) == expected


@pytest.mark.parametrize(("limit", "expected"), [(1, "at most 1 token per input"), (4, "at most 4 tokens per input")])
def test_the_servers_token_limit(default_model, limit, expected):
    from fastapi.testclient import TestClient

    from attnscope.server import AppState, create_app
    from attnscope.server.state import Limits

    served = AppState(models={}, limits=Limits(max_tokens=limit))
    served.add_model("default", default_model)
    with TestClient(create_app(served)) as client:
        error = client.post("/api/attention", json={"model": "default", "text": "The girl ran home."}).json()["error"]
    assert error["message"] == (
        f"the input is 7 tokens long; model 'sentence-transformers/all-MiniLM-L6-v2' takes {expected} here "
        "(this server's limit per input): shorten the text"
    )
