"""Synthetic-probe head scores (induction, duplicate token, previous token, first-token sink): against a
loop-based reference over hand-built attention, on a tiny model whose attention is uniform by
construction (exact values), and the probe's tokens, names and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attnscope
from attnscope.analysis.probes import (
    PROBES,
    ProbeScores,
    ProbeSpec,
    check_probe_names,
    layer_probe_sums,
    ordinary_vocabulary,
    parse_probes,
    probe_ids,
    probe_queries,
    run_probes,
)
from attnscope.errors import InputError

from .tiny_models import build_model


def reference_scores(weights: np.ndarray, prefix: int, length: int, repeats: int) -> dict[str, np.ndarray]:
    """The probe scores of one sequence's (layers, heads, query, key) weights, by plain loops."""
    layers, heads, n, _ = weights.shape
    end = prefix + length * repeats
    out = {name: np.zeros((layers, heads)) for name in PROBES}
    for layer in range(layers):
        for head in range(heads):
            a = weights[layer, head]
            later = [q for q in range(n) if prefix + length <= q < end]
            every = [q for q in range(n) if max(prefix, 1) <= q < end]
            out["induction"][layer, head] = sum(a[q, q - length + 1] for q in later) / len(later)
            out["duplicate"][layer, head] = sum(a[q, q - length] for q in later) / len(later)
            out["previous"][layer, head] = sum(a[q, q - 1] for q in every) / len(every)
            out["first"][layer, head] = sum(a[q, 0] for q in every) / len(every)
    return out


def planted_weights(prefix: int, length: int, repeats: int, suffix: int) -> np.ndarray:
    """(2 layers, 4 heads, n, n) causal weights: head 0-0 previous-token, 0-1 induction, 0-2 duplicate,
    0-3 first-token sink (each exactly, where its key exists), layer 1 random rows (seeded)."""
    n = prefix + length * repeats + suffix
    weights = np.zeros((2, 4, n, n))
    rng = np.random.default_rng(7)
    for q in range(n):
        back = q - length
        weights[0, 0, q, max(q - 1, 0)] = 1
        weights[0, 1, q, back + 1 if back >= prefix else q] = 1
        weights[0, 2, q, back if back >= prefix else q] = 1
        weights[0, 3, q, 0] = 1
        row = rng.random((4, q + 1))
        weights[1, :, q, : q + 1] = row / row.sum(axis=1, keepdims=True)
    return weights


@pytest.mark.parametrize("prefix,length,repeats,suffix", [(0, 5, 2, 0), (1, 4, 3, 1), (2, 3, 2, 0)])
def test_scores_equal_the_loop_reference_and_planted_heads_score_one(prefix, length, repeats, suffix):
    weights = planted_weights(prefix, length, repeats, suffix)
    positions = probe_queries(prefix, length, repeats)
    expected = reference_scores(weights, prefix, length, repeats)
    for layer in range(2):
        sums = layer_probe_sums(weights[layer], positions)
        for name in PROBES:
            mean = sums[name] / len(positions[name][0])
            np.testing.assert_allclose(mean, expected[name][layer], rtol=1e-12, atol=0)
    planted = {name: expected[name][0] for name in PROBES}
    assert planted["previous"][0] == 1 and planted["induction"][1] == 1
    assert planted["duplicate"][2] == 1 and planted["first"][3] == 1
    assert planted["induction"][0] == (1.0 if length == 2 else 0.0)  # q − 1 is q − T + 1 only when T = 2


def test_probe_ids_are_seeded_repeated_and_free_of_special_tokens():
    vocabulary = np.arange(10, 60)
    spec = ProbeSpec(length=8, repeats=3, batch=4, seed=3)
    ids = probe_ids(vocabulary, spec, prefix=[1], suffix=[2])
    assert ids.shape == (4, 1 + 24 + 1)
    assert (ids[:, 0] == 1).all() and (ids[:, -1] == 2).all()
    body = ids[:, 1:-1].reshape(4, 3, 8)
    assert (body == body[:, :1]).all()  # every copy equals the first
    assert all(len(set(row)) == 8 for row in body[:, 0])  # no token twice in one copy
    assert np.isin(body, vocabulary).all()
    np.testing.assert_array_equal(ids, probe_ids(vocabulary, spec, prefix=[1], suffix=[2]))
    assert not np.array_equal(ids, probe_ids(vocabulary, ProbeSpec(8, 3, 4, seed=4), prefix=[1], suffix=[2]))


@pytest.mark.parametrize(
    "text,expected",
    [
        ("induction,duplicate", ("induction", "duplicate")),
        ("first, previous,first", ("previous", "first")),
        ("all", PROBES),
        ("none", ()),
    ],
)
def test_probe_names_parse_in_table_order(text, expected):
    assert parse_probes(text) == expected


@pytest.mark.parametrize("text", ["inductoin", "induction,copying", ""])
def test_an_unknown_probe_name_lists_the_known_ones(text):
    with pytest.raises(InputError, match="induction, duplicate, previous, first"):
        parse_probes(text)


def test_a_probe_size_out_of_range_names_the_field():
    with pytest.raises(InputError, match="probe repeats must be an integer from 2 to 8, got 1"):
        ProbeSpec(repeats=1).check()


@pytest.fixture(scope="module")
def uniform_smollm2_like(tmp_path_factory) -> attnscope.ModelHandle:
    """A tiny SmolLM2-architecture model whose queries are 0, so every head attends uniformly to the
    query's own position and every one before it: weight 1 / (q + 1) on each key."""
    directory = build_model("smollm2", tmp_path_factory.mktemp("uniform"))
    handle = attnscope.load(str(directory))
    with torch.no_grad():
        for layer in handle.model.model.layers:
            layer.self_attn.q_proj.weight.zero_()
    return handle


def test_a_uniform_model_scores_exactly_what_its_pattern_gives(uniform_smollm2_like):
    spec = ProbeSpec(length=6, repeats=3, batch=2, seed=1)
    result = run_probes(uniform_smollm2_like, spec=spec)
    assert result.prefix == 0 and result.tokens == 18 and result.names == PROBES
    later, every = np.arange(6, 18), np.arange(1, 18)
    expected = {  # the weight of any one key at query q is 1 / (q + 1)
        "induction": np.mean(1 / (later + 1)),
        "duplicate": np.mean(1 / (later + 1)),
        "previous": np.mean(1 / (every + 1)),
        "first": np.mean(1 / (every + 1)),
    }
    for name in PROBES:
        assert result.scores[name].shape == (2, 4)
        np.testing.assert_allclose(result.scores[name], expected[name], rtol=1e-6)
    assert result.copying is not None and result.copying.tokens == 2 * 5
    assert result.copying_note == ""


def test_scores_read_on_demand_equal_those_of_dense_eager_weights(tmp_path):
    """run_probes reads on-demand attention layer by layer; an eager capture of the same ids agrees."""
    handle = attnscope.load(str(build_model("smollm2", tmp_path / "m", seed=3)))
    spec = ProbeSpec(length=5, repeats=2, batch=3, seed=2)
    result = run_probes(handle, ["induction", "previous"], spec)
    ids = probe_ids(ordinary_vocabulary(handle), spec)
    positions = probe_queries(0, 5, 2)
    expected = {name: np.zeros((2, 4)) for name in PROBES}
    for row in ids:
        dense = attnscope.capture(handle, input_ids=row.tolist(), attention="eager").attentions
        for layer in range(2):
            for name, added in layer_probe_sums(dense[layer], positions).items():
                expected[name][layer] += added / (3 * len(positions[name][0]))
    assert result.names == ("induction", "previous") and set(result.scores) == {"induction", "previous"}
    for name in result.names:
        np.testing.assert_allclose(result.scores[name], expected[name], rtol=1e-5, atol=1e-7)


def test_an_encoder_gets_scores_but_no_copying_figure():
    result = run_probes(attnscope.load("default"), ["previous"], ProbeSpec(length=4, repeats=2, batch=1))
    assert result.prefix == 1 and result.tokens == 1 + 8 + 1  # [CLS] … [SEP]
    assert result.copying is None and "has no language-model head" in result.copying_note


def test_probe_scores_round_trip_and_select():
    scores = {name: np.full((2, 3), i / 10) for i, name in enumerate(PROBES)}
    probes = ProbeScores(PROBES, scores, ProbeSpec(4, 2, 1, 0), 0, 8)
    again = ProbeScores.from_dict(probes.to_dict())
    assert again.names == PROBES and again.spec == probes.spec and (again.layers, again.heads) == (2, 3)
    assert again.top("first", 2) == [(0, 0, 0.3), (0, 1, 0.3)]
    assert probes.select(["first", "induction"]).names == ("induction", "first")
    with pytest.raises(InputError, match="probe score 'duplicate' was not computed; these were: induction"):
        probes.select(["induction"]).select(["duplicate"])
    assert check_probe_names(["previous", "previous"]) == ("previous",)


def test_the_copying_figure_is_the_mean_log_probability_of_each_copys_tokens(tmp_path):
    handle = attnscope.load(str(build_model("smollm2", tmp_path / "m", seed=5)))
    spec = ProbeSpec(length=4, repeats=3, batch=2, seed=9)
    result = run_probes(handle, ["first"], spec)
    ids = probe_ids(ordinary_vocabulary(handle), spec)
    first, later = [], []
    for row in ids:
        with torch.inference_mode():
            logits = handle.model(input_ids=torch.as_tensor(row).unsqueeze(0)).logits[0].double()
        log_probs = torch.log_softmax(logits, dim=-1)
        for p in range(1, 12):  # token p, predicted at p - 1; each copy's first token left out
            if p % 4:
                (first if p < 4 else later).append(float(log_probs[p - 1, row[p]]))
    assert result.copying is not None and result.copying.tokens == 2 * 3
    assert result.copying.first == pytest.approx(np.mean(first), abs=1e-5)
    assert result.copying.later == pytest.approx(np.mean(later), abs=1e-5)
    assert len(first) == 6 and len(later) == 12
