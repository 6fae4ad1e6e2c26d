"""`extract.extract_layer`, what a re-rank recomputes: one layer's head embeddings or hidden states equal to the
whole extraction's, bit for bit, with the forward pass stopped after that layer (the later layers are not run),
on the default model and on tiny random encoders and decoders."""

from __future__ import annotations

import numpy as np
import pytest

from attnscope.capture.inputs import encode
from attnscope.index.extract import PlannedSentence, extract_batch, extract_layer

TEXTS = [
    "The girl ran to a local pub to escape the din of her city.",
    "I am sneezing.",
    "Colourless green ideas sleep furiously, said the linguist once more.",
]


def planned(handle) -> list[PlannedSentence]:
    out = []
    for number, text in enumerate(TEXTS):
        tokens = encode(handle, text, truncate=True)
        positions = np.array([i for i, special in enumerate(tokens.special) if not special], dtype=np.int64)
        out.append(PlannedSentence(number, tokens, [None] * len(tokens.ids), positions))
    return out


def modules_run(handle, run) -> int:
    """How many module calls ``run`` made (a pass stopped early makes fewer)."""
    count = [0]
    hooks = [m.register_forward_hook(lambda *_: count.__setitem__(0, count[0] + 1)) for m in handle.model.modules()]
    try:
        run()
    finally:
        for hook in hooks:
            hook.remove()
    return count[0]


@pytest.fixture(params=["default", "bert", "llama", "gpt2"])
def handle(request, default_model, tiny):
    return default_model if request.param == "default" else tiny(request.param)


def test_one_layer_equals_the_whole_extraction(handle):
    batch = planned(handle)
    layers = handle.stacks[handle.main_stack].layers
    whole = extract_batch(handle, batch, attention=False)
    for layer in range(layers):
        np.testing.assert_array_equal(extract_layer(handle, batch, layer, "heads"), whole.heads[layer])
        np.testing.assert_array_equal(extract_layer(handle, batch, layer, "hidden"), whole.hidden[layer])


@pytest.mark.parametrize("kind", ["heads", "hidden"])
def test_the_layers_after_the_wanted_one_are_not_run(handle, kind):
    batch = planned(handle)
    layers = handle.stacks[handle.main_stack].layers
    counts = [modules_run(handle, lambda n=n: extract_layer(handle, batch, n, kind)) for n in range(layers)]
    whole = modules_run(handle, lambda: extract_batch(handle, batch, attention=False))
    assert counts == sorted(counts) and len(set(counts)) == layers, counts  # one more layer run each time
    assert counts[0] < whole
