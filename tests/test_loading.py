"""C1: loading by name or path, model kinds and shapes; no leaks after a capture; the fallback path."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import transformers
from hypothesis import given, settings
from hypothesis import strategies as st

import attnscope
from attnscope.capture.loading import ConfigShapeError, StackShape, stack_shapes
from attnscope.errors import ModelNotFoundError

from .conftest import PUB
from .tiny_models import wordpiece


def test_default_model_is_minilm_with_its_real_shape(default_model):
    info = default_model.describe()
    assert info["name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert info["kind"] == "encoder" and info["architecture"] == "bert"
    assert info["stacks"] == {"encoder": {"layers": 6, "heads": 12, "kv_heads": 12, "head_dim": 32}}
    assert info["special_tokens"]["mask_token"] == "[MASK]" and info["special_tokens"]["cls_token"] == "[CLS]"
    assert info["has_lm_head"] is False and info["max_length"] == 512


@pytest.mark.parametrize(
    "arch,kind",
    [
        ("bert", "encoder"),
        ("roberta", "encoder"),
        ("distilbert", "encoder"),
        ("albert", "encoder"),
        ("electra", "encoder"),
        ("gpt2", "decoder"),
        ("llama", "decoder"),
        ("mistral", "decoder"),
        ("bart", "encoder-decoder"),
        ("t5", "encoder-decoder"),
    ],
)
def test_model_kind_and_lm_head_are_recognised(tiny, arch, kind):
    handle = tiny(arch)
    assert handle.kind == kind
    assert handle.has_lm_head is True
    assert handle.main_stack == ("decoder" if kind == "decoder" else "encoder")


def test_unknown_model_name_gives_a_clear_error_at_once():
    started = time.monotonic()
    with pytest.raises(ModelNotFoundError, match=r"model 'no-such-org/no-such-model' was not found"):
        attnscope.load("no-such-org/no-such-model")
    assert time.monotonic() - started < 30


def test_directory_that_is_not_a_model_gives_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ModelNotFoundError, match="is not a loadable model"):
        attnscope.load(str(tmp_path))


def test_remote_code_runs_only_when_asked(tmp_path):
    config = {"model_type": "attnscope-custom", "auto_map": {"AutoConfig": "configuration_custom.CustomConfig"}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "configuration_custom.py").write_text(
        "raise RuntimeError('remote code ran without trust_remote_code')\n"
    )
    with pytest.raises(attnscope.AttnscopeError, match="trust_remote_code=True"):
        attnscope.load(str(tmp_path))


def _hooks(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.mark.parametrize("arch", ["bert", "llama", "t5"])
def test_capture_leaves_the_model_as_it_was(tiny, arch):
    handle = tiny(arch)
    model = handle.model
    implementations = [
        c._attn_implementation
        for c in (
            model.config,
            *[getattr(model.config, k) for k in model.config.sub_configs if getattr(model.config, k, None) is not None],
        )
    ]
    ids = torch.tensor([attnscope.encode(handle, "The girl ran.").ids])
    extra = {"decoder_input_ids": ids[:, :2]} if handle.kind == "encoder-decoder" else {}
    with torch.no_grad():
        before = model(input_ids=ids, **extra, output_attentions=True)
    # transformers registers its own output-recording hooks on a model's first forward pass with
    # output_attentions, so they are counted after it: the count then does not depend on test order.
    hooks = _hooks(model)
    attnscope.capture(handle, "The girl ran.", target="She" if extra else None, fields="all")
    with torch.no_grad():
        after = model(input_ids=ids, **extra, output_attentions=True)
    assert model.config._attn_implementation == "eager"
    assert [
        c._attn_implementation
        for c in (
            model.config,
            *[getattr(model.config, k) for k in model.config.sub_configs if getattr(model.config, k, None) is not None],
        )
    ] == implementations
    assert _hooks(model) == hooks
    torch.testing.assert_close(after.logits, before.logits, rtol=0, atol=0)


def test_capture_after_an_error_leaves_the_model_as_it_was(default_model, monkeypatch):
    model = default_model.model
    original = model.forward

    def failing(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(model, "forward", failing)
    with pytest.raises(RuntimeError, match="boom"):
        attnscope.capture(default_model, PUB)
    monkeypatch.setattr(model, "forward", original)
    assert model.config._attn_implementation == "eager"


def test_model_outside_the_attention_interface_falls_back_and_says_what_is_missing(tmp_path):
    config = transformers.MPNetConfig(
        vocab_size=30527,
        hidden_size=32,
        num_attention_heads=4,
        num_hidden_layers=2,
        intermediate_size=48,
        max_position_embeddings=130,
    )
    torch.manual_seed(0)
    transformers.MPNetForMaskedLM(config).save_pretrained(tmp_path)
    wordpiece().save_pretrained(tmp_path)
    handle = attnscope.load(str(tmp_path))
    cap = attnscope.capture(handle, "The girl ran.", fields="all")
    assert set(cap.missing) == {"queries", "keys", "values", "head_outputs", "bias", "allowed"}
    assert "AttentionInterface" in cap.missing["queries"]
    with torch.no_grad():
        own = handle.model(input_ids=torch.tensor([cap.tokens.ids]), output_attentions=True).attentions
    np.testing.assert_allclose(cap.attentions, np.stack([a[0].numpy() for a in own]), atol=1e-6)
    assert cap.hidden_states.shape == (3, len(cap.tokens), 32)
    assert cap.main.queries is None


def test_saved_bert2bert_loads_with_every_stack_and_its_head(tiny):
    handle = tiny("bert2bert")
    assert handle.kind == "encoder-decoder" and handle.has_lm_head is True
    assert type(handle.model).__name__ == "EncoderDecoderModel"
    assert {r: (s.layers, s.heads, s.head_dim) for r, s in handle.stacks.items()} == {
        "encoder": (2, 4, 8),
        "decoder": (3, 4, 8),
        "cross": (3, 4, 8),
    }
    assert handle.max_length == 128  # the sub-configs' position limit
    cap = attnscope.capture(handle, "The girl ran.", target="She left.")
    assert {r: s.attentions.shape for r, s in cap.stacks.items()} == {
        "encoder": (2, 4, 6, 6),
        "decoder": (3, 4, 6, 6),
        "cross": (3, 4, 6, 6),
    }


def test_nested_text_config_gives_the_text_models_shape():
    config = transformers.LlavaConfig(
        text_config=transformers.LlamaConfig(
            num_hidden_layers=3, num_attention_heads=8, num_key_value_heads=2, hidden_size=64
        )
    )
    assert stack_shapes(config, "decoder") == {"decoder": StackShape(layers=3, heads=8, kv_heads=2, head_dim=8)}


class _Config(SimpleNamespace):
    """A stand-in for any config shape: only attributes, as `stack_shapes` reads them."""

    model_type = "made-up"

    def to_dict(self) -> dict:
        return dict(vars(self))


class _Model(torch.nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config


def test_a_config_without_heads_is_a_clear_error_not_a_type_error():
    model = _Model(_Config(num_hidden_layers=2, hidden_size=32))
    with pytest.raises(
        ConfigShapeError,
        match=r"does not give the number of attention heads of its encoder stack "
        r"\(attnscope looks for encoder_attention_heads, num_attention_heads",
    ):
        attnscope.wrap(model, wordpiece())
    with pytest.raises(ConfigShapeError, match=r"gives \[4, 8\] as the number of attention heads"):
        stack_shapes(_Config(num_hidden_layers=2, num_attention_heads=[4, 8]), "decoder")


_SIZES = (
    "num_hidden_layers",
    "num_layers",
    "n_layer",
    "encoder_layers",
    "decoder_layers",
    "num_decoder_layers",
    "num_attention_heads",
    "num_heads",
    "n_head",
    "encoder_attention_heads",
    "decoder_attention_heads",
    "num_key_value_heads",
    "hidden_size",
    "d_model",
    "n_embd",
    "head_dim",
    "d_kv",
)
_VALUES = st.one_of(
    st.none(),
    st.integers(-2, 64),
    st.booleans(),
    st.floats(allow_nan=True),
    st.text(max_size=3),
    st.lists(st.integers(0, 8), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers()),
)
_FLAT = st.dictionaries(st.sampled_from(_SIZES), _VALUES).map(lambda d: _Config(**d))
_CONFIGS = st.one_of(
    _FLAT,
    st.builds(lambda c, t: _Config(**vars(c), text_config=t), _FLAT, _FLAT),
    st.builds(lambda c, e, d: _Config(**vars(c), encoder=e, decoder=d, is_encoder_decoder=True), _FLAT, _FLAT, _FLAT),
    st.builds(lambda c, e: _Config(**vars(c), encoder=e), _FLAT, st.one_of(_VALUES, _FLAT)),
)


@settings(max_examples=400, deadline=None)
@given(config=_CONFIGS, kind=st.sampled_from(["encoder", "decoder", "encoder-decoder"]))
def test_any_config_shape_gives_stacks_or_a_clear_error(config, kind):
    try:
        stacks = stack_shapes(config, kind)
    except ConfigShapeError as error:
        assert "the config of this 'made-up' model" in str(error)
        return
    assert set(stacks) == ({"encoder", "decoder", "cross"} if kind == "encoder-decoder" else {kind})
    for shape in stacks.values():
        assert all(type(v) is int for v in vars(shape).values())
        assert shape.layers > 0 and shape.heads > 0 and shape.kv_heads > 0 and shape.head_dim >= 0
