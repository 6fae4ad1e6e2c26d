"""V3's data: the neuron-view terms of an attention row, for every architecture the engine captures."""

from __future__ import annotations

import numpy as np
import pytest

import attnscope
from attnscope.analysis.neuron import neuron_terms
from attnscope.errors import InputError

from .conftest import PUB
from .tiny_models import ARCHITECTURES


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_softmax_of_the_terms_equals_the_models_attention_row(tiny, arch):
    handle = tiny(arch)
    target = "She went home." if handle.kind == "encoder-decoder" else None
    cap = attnscope.capture(handle, "The girl ran to a local pub.", target=target, fields="all")
    for role, stack in cap.stacks.items():
        query = stack.queries.shape[2] - 1
        terms = neuron_terms(stack, stack.layers - 1, stack.heads - 1, query)
        np.testing.assert_allclose(terms.softmax, terms.attention, atol=2e-6, err_msg=f"{arch} {role}")
        np.testing.assert_allclose(terms.products.sum(axis=-1), terms.dots)
        expected = terms.scaled + (0 if terms.bias is None else terms.bias)
        visible = terms.allowed
        np.testing.assert_allclose(terms.scores[visible], expected[visible], rtol=1e-10)
        assert np.all(np.isneginf(terms.scores[~visible]))


def test_default_model_terms_are_scaled_by_one_over_root_head_dim(default_model):
    cap = attnscope.capture(default_model, PUB, fields="all")
    terms = neuron_terms(cap.main, 2, 5, 9)
    assert terms.scaling == pytest.approx(32**-0.5)
    np.testing.assert_allclose(terms.scaled, terms.dots / np.sqrt(32))
    assert terms.query_vector.shape == (32,) and terms.keys.shape == (17, 32)
    assert terms.bias is None and terms.allowed.all() and terms.sink is None
    np.testing.assert_allclose(terms.softmax, cap.attentions[2, 5, 9], atol=1e-6)


def test_t5_terms_carry_the_relative_position_bias(tiny):
    cap = attnscope.capture(tiny("t5"), "The girl ran.", target="She", fields="all")
    terms = neuron_terms(cap.stacks["encoder"], 0, 1, 2)
    assert terms.scaling == 1.0 and terms.bias is not None and np.abs(terms.bias).max() > 0


def test_out_of_range_positions_are_refused(default_model):
    cap = attnscope.capture(default_model, PUB, fields="all")
    with pytest.raises(InputError, match="head 12 is out of range: this stack has heads 0-11"):
        neuron_terms(cap.main, 0, 12, 0)
    with pytest.raises(InputError, match="query position 17 is out of range"):
        neuron_terms(cap.main, 0, 0, 17)
    with pytest.raises(InputError, match="layer 6 is out of range"):
        neuron_terms(cap.main, 6, 0, 0)
