"""M2/M3: reductions at long context (analysis/long.py). Each query's strongest keys, the pooled overview, row
entropy and rollout rows, computed block by block from on-demand attention, equal numpy references on the
eager capture's dense weights, on every tiny architecture, at lengths past one row block."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attnscope
from attnscope.analysis import long
from attnscope.analysis.aggregate import combine_heads, rollout
from attnscope.capture.blocks import SCRATCH_PER_WEIGHT
from attnscope.capture.lazy import LazyAttention, LazyLayer
from attnscope.capture.mask_structure import MaskStructure

from .conftest import PUB
from .tiny_models import ARCHITECTURES

LONG = " ".join([PUB] * 6)  # past the tiny models' 128 positions: truncated to them
TARGET = f"{PUB} She went home to the city. {PUB}"
EXACT = 1e-6
ENTROPY = 1e-6  # relative: float32 weights (each within ~6e-8 of exact) move an entropy H by up to ~6e-8·(H + 1)


def _pair(handle):
    """The same input captured eagerly and on demand; the lazy stacks' row blocks made a few rows high."""
    target = TARGET if handle.kind == "encoder-decoder" else None
    eager = attnscope.capture(handle, LONG, target=target, fields=["attentions"], truncate=True)
    lazy = attnscope.capture(handle, LONG, target=target, fields=["attentions"], truncate=True, attention="on_demand")
    for stack in lazy.stacks.values():
        weights = stack.attentions
        assert isinstance(weights, LazyAttention)
        weights.block_bytes = weights.shape[3] * SCRATCH_PER_WEIGHT * 7  # 7 rows of one head, 3 of two...
    return eager, lazy


def _reference_top(weights: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` of (..., key) by weight, ties to the lower key, -1 for weight 0: a full sort in numpy."""
    positions = np.broadcast_to(np.arange(weights.shape[-1]), weights.shape)
    order = np.lexsort((positions, -weights), axis=-1)[..., :k]
    values = np.take_along_axis(weights, order, axis=-1)
    return np.where(values > 0, order, -1), values


def _assert_top_matches(found: long.TopKeys, dense: np.ndarray, rows: np.ndarray, k: int, what: str) -> None:
    """``found`` (of ``dense`` (heads, query, key)'s ``rows``) equals the reference: same indices wherever
    the reference's ranking is unambiguous at float32 precision, and everywhere each chosen key's dense
    weight equals the reference's weight of that rank within 1e-6."""
    weights = dense[:, rows]
    indices, values = _reference_top(weights, k)
    np.testing.assert_allclose(found.weights, values, atol=EXACT, rtol=0, err_msg=what)
    chosen = np.take_along_axis(weights, np.maximum(found.indices, 0), axis=-1)
    np.testing.assert_allclose(np.where(found.indices >= 0, chosen, 0), values, atol=EXACT, rtol=0, err_msg=what)
    upper = np.take_along_axis(weights, np.maximum(indices, 0), axis=-1)
    gaps = np.abs(np.diff(upper, axis=-1)) > 2 * EXACT
    clear = np.ones(values.shape, dtype=bool)
    clear[..., 1:] &= gaps
    clear[..., :-1] &= gaps
    np.testing.assert_array_equal(found.indices[clear], indices[clear], err_msg=what)
    assert found.indices.dtype == np.int32 and found.weights.dtype == np.float32


def _reference_overview(dense: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    heads, queries, keys = dense.shape
    grid = (heads, -(-queries // block), -(-keys // block))
    maximum, mean = np.zeros(grid, np.float32), np.zeros(grid, np.float32)
    for row in range(grid[1]):
        for col in range(grid[2]):
            cell = dense[:, row * block : (row + 1) * block, col * block : (col + 1) * block]
            maximum[:, row, col] = cell.max(axis=(1, 2))
            mean[:, row, col] = cell.astype(np.float64).mean(axis=(1, 2))
    return maximum, mean


def _reference_entropy(dense: np.ndarray) -> np.ndarray:
    w = dense.astype(np.float64)
    return -np.where(w > 0, w * np.log(np.where(w > 0, w, 1.0)), 0.0).sum(axis=-1)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_reductions_of_on_demand_attention_equal_references_on_eager_weights(tiny, arch, monkeypatch):
    eager, lazy = _pair(tiny(arch))
    for role, stack in eager.stacks.items():
        expected, weights = stack.attentions, lazy.stacks[role].attentions
        layers, heads, queries, keys = expected.shape
        assert queries > 5 * max(1, weights.block_bytes // (keys * SCRATCH_PER_WEIGHT * heads)), (arch, role)
        what = f"{arch} {role}"
        block = 9  # cells that do not divide the lengths
        overview = long.pooled_overview(weights, block)
        assert overview.shape == expected.shape and overview.layers == list(range(layers)) and overview.block == 9
        for layer in range(layers):
            top = long.top_keys(weights, layer, k=5)
            assert top.layer == layer and top.heads == list(range(heads))
            _assert_top_matches(top, expected[layer], np.arange(queries), 5, f"{what} layer {layer}")
            with monkeypatch.context() as patch:  # rows this short are ranked whole; in chunks of 4 keys they are not
                patch.setattr(long, "_CHUNK", 4)
                _assert_top_matches(long.top_keys(weights, layer, k=5), expected[layer], np.arange(queries), 5, what)
            maximum, mean = _reference_overview(expected[layer], block)
            np.testing.assert_allclose(overview.maximum[layer], maximum, atol=EXACT, rtol=0, err_msg=what)
            np.testing.assert_allclose(overview.mean[layer], mean, atol=EXACT, rtol=0, err_msg=what)
            entropy = long.row_entropy(weights, layer)
            assert entropy.dtype == np.float64 and entropy.shape == (heads, queries)
            reference = _reference_entropy(expected[layer])
            np.testing.assert_allclose(entropy, reference, atol=EXACT, rtol=ENTROPY, err_msg=what)
        if role != "cross":
            rows = [queries - 1, 0, queries // 2]
            rolled = rollout(np.stack([combine_heads(expected[layer]) for layer in range(layers)]))
            for layer in range(layers):
                found = long.rollout_rows(weights, rows, layer=layer)
                np.testing.assert_allclose(found, rolled[layer][rows], atol=EXACT, rtol=0, err_msg=what)


@pytest.mark.parametrize("arch", ["llama", "mistral", "gemma2", "gpt_oss", "t5", "bart"])
def test_dense_array_and_tensor_give_what_on_demand_attention_gives(tiny, arch):
    _, lazy = _pair(tiny(arch))
    weights = lazy.attentions
    dense = np.asarray(weights)
    heads = [3, 1]
    reordered = long.top_keys(dense, 0, k=4, heads=[1, 0, 2, 3])  # every head, in another order
    np.testing.assert_array_equal(reordered.indices[[1, 0, 2, 3]], long.top_keys(dense, 0, k=4).indices)
    for given in (dense, torch.from_numpy(dense)):
        for layer in range(weights.shape[0]):
            a, b = long.top_keys(weights, layer, k=4, heads=heads), long.top_keys(given, layer, k=4, heads=heads)
            np.testing.assert_allclose(b.weights, a.weights, atol=EXACT, rtol=0)
            _assert_top_matches(b, dense[layer][heads], np.arange(weights.shape[2]), 4, arch)
            np.testing.assert_allclose(
                long.row_entropy(given, layer, heads=heads),
                long.row_entropy(weights, layer, heads=heads),
                atol=EXACT,
                rtol=ENTROPY,
            )
        a_view, b_view = long.pooled_overview(weights, cells=10), long.pooled_overview(given, cells=10)
        assert a_view.block == b_view.block == -(-weights.shape[3] // 10)
        np.testing.assert_allclose(b_view.maximum, a_view.maximum, atol=EXACT, rtol=0)
        np.testing.assert_allclose(b_view.mean, a_view.mean, atol=EXACT, rtol=0)
        if arch != "t5":  # t5's main stack is the encoder here too, but check one decoder-only family is enough
            np.testing.assert_allclose(long.rollout_rows(given, [5, 2]), long.rollout_rows(weights, [5, 2]), atol=EXACT)


def test_summarise_gives_the_overview_top_keys_and_entropy_of_each_layer_in_one_pass(tiny):
    _, lazy = _pair(tiny("llama"))
    weights = lazy.attentions
    summary = long.summarise(weights, k=3, block=16, layers=[1], heads=[2, 0])
    alone = long.pooled_overview(weights, 16, layers=[1], heads=[2, 0])
    np.testing.assert_array_equal(summary.overview.maximum, alone.maximum)
    np.testing.assert_allclose(summary.overview.mean, alone.mean, atol=1e-7)
    assert [t.layer for t in summary.top] == [1] and summary.top[0].heads == [2, 0]
    top = long.top_keys(weights, 1, k=3, heads=[2, 0])
    np.testing.assert_array_equal(summary.top[0].indices, top.indices)
    np.testing.assert_allclose(summary.top[0].weights, top.weights, atol=1e-7)  # spans aligned to 16: 1 ulp
    np.testing.assert_allclose(summary.entropy[0], long.row_entropy(weights, 1, heads=[2, 0]), atol=1e-6)
    assert summary.entropy.shape == (1, 2, weights.shape[2])


def _synthetic(structure: MaskStructure, queries: np.ndarray, keys: np.ndarray, **terms) -> LazyAttention:
    """A one-layer on-demand stack of given queries (heads, n, d) and keys (kv_heads, n, d), blocks of 3 rows."""
    heads, n, _ = queries.shape
    layer = LazyLayer(queries=queries, keys=keys, scale=1.0, structure=structure, **terms)
    weights = LazyAttention([layer], heads, n, keys.shape[1], np.arange(heads) * keys.shape[0] // heads)
    weights.block_bytes = keys.shape[1] * SCRATCH_PER_WEIGHT * 3
    return weights


def test_equal_weights_go_to_the_lower_key_inside_the_top_k_and_at_its_edge():
    # a key repeated at positions 2, 5, 7 and 9 gets four equal weights, the largest of the row
    rng = np.random.default_rng(0)
    keys = rng.standard_normal((1, 12, 4)).astype(np.float32) * 0.1
    keys[0, [5, 7, 9]] = keys[0, 2] = np.array([1.0, 1.0, 0.0, 0.0], np.float32)
    queries = np.repeat(np.array([[[3.0, 3.0, 0.0, 0.0]]], np.float32), 12, axis=1)
    weights = _synthetic(MaskStructure(causal=False), queries, keys)
    dense = np.asarray(weights)[0, 0]
    assert dense[0, 2] == dense[0, 5] == dense[0, 7] == dense[0, 9] > np.sort(dense[0])[-5]
    inside = long.top_keys(weights, 0, k=5)  # all four tied keys, lowest first, then the fifth strongest
    assert inside.indices[0, 0, :4].tolist() == [2, 5, 7, 9] and inside.weights[0, 0, 0] == dense[0, 2]
    edge = long.top_keys(weights, 0, k=3)  # only three of the four fit: the three lowest
    assert edge.indices[0].tolist() == [[2, 5, 7]] * 12
    tied_rows = np.full((1, 1, 2, 6), 0.125, np.float32)  # a dense row of equal weights, and one with zeros
    tied_rows[0, 0, 1] = [0, 0.25, 0, 0.25, 0.25, 0.25]
    found = long.top_keys(tied_rows, 0, k=5)
    assert found.indices[0].tolist() == [[0, 1, 2, 3, 4], [1, 3, 4, 5, -1]]
    assert found.weights[0, 1].tolist() == [0.25, 0.25, 0.25, 0.25, 0.0]


def test_long_rows_ranked_in_chunks_keep_ties_to_the_lower_key():
    """Rows of 1,100 keys: the k strongest are found among the chunks with the largest maxima. Equal maxima in
    chunks kept and left out, and equal weights inside one chunk, still go to the lower key."""
    rng = np.random.default_rng(4)
    n = 1100
    keys = rng.standard_normal((1, n, 4)).astype(np.float32) * 0.1
    strong = np.array([1.0, 1.0, 0.0, 0.0], np.float32)
    keys[0, [900, 700, 300, 100]] = strong  # four chunks' equal maxima (chunks of 128 keys: 7, 5, 2, 0)
    keys[0, [1090, 140, 150, 130]] = strong * 0.9  # three ties inside chunk 1 and one in the last, partial chunk
    queries = np.repeat(np.array([[[3.0, 3.0, 0.0, 0.0]]], np.float32), 4, axis=1)
    queries[0, 2:, :2] = [-3.0, -3.0]  # rows 2-3 rank the strong keys last
    weights = _synthetic(MaskStructure(causal=False), queries, keys)
    dense = np.asarray(weights)[0]
    for k in (1, 2, 4, 6, 8):
        _assert_top_matches(long.top_keys(weights, 0, k=k), dense, np.arange(4), k, f"k={k}")
        assert long.top_keys(weights, 0, k=k).indices[0, 0].tolist() == [100, 300, 700, 900, 130, 140, 150, 1090][:k]
    # chunk maxima all differ, but the third strongest weight is in two kept chunks, the higher-ranked one last
    keys = rng.standard_normal((1, n, 4)).astype(np.float32) * 0.1
    for position, strength in [(650, 1.0), (660, 0.8), (140, 0.9), (150, 0.8), (400, 0.5)]:
        keys[0, position] = strong * strength
    weights = _synthetic(MaskStructure(causal=False), queries[:, :1], keys)
    assert long.top_keys(weights, 0, k=3).indices[0, 0].tolist() == [650, 140, 150]


def test_rows_that_see_fewer_than_k_keys_end_in_minus_one():
    rng = np.random.default_rng(1)
    queries, keys = (
        rng.standard_normal((2, 10, 4)).astype(np.float32),
        rng.standard_normal((1, 10, 4)).astype(np.float32),
    )
    top = long.top_keys(_synthetic(MaskStructure(causal=True, window=3), queries, keys), 0, k=4)
    seen = (top.indices >= 0).sum(axis=-1)
    assert seen[:, :4].tolist() == [[1, 2, 3, 3]] * 2 and (seen[:, 4:] == 3).all()
    assert (top.weights[top.indices < 0] == 0).all() and (top.weights[top.indices >= 0] > 0).all()
    assert set(top.indices[1, 9].tolist()) == {7, 8, 9, -1}


@pytest.mark.parametrize("sinks", [None, np.array([0.5, -1.0], np.float32)])
def test_padding_keys_and_rows_that_see_no_key_match_row_by_row_attention(sinks):
    """Keys hidden as padding get weight 0; a row that sees no key is uniform over every key as eager makes it
    (or all 0 with a sink). Checked against `LazyAttention.rows`, which tests/test_on_demand.py holds to eager."""
    rng = np.random.default_rng(2)
    valid = np.ones(14, dtype=bool)
    valid[[0, 1, 6]] = False  # rows 0 and 1 of a causal mask see nothing
    queries, keys = (
        rng.standard_normal((2, 14, 4)).astype(np.float32),
        rng.standard_normal((1, 14, 4)).astype(np.float32),
    )
    for structure in (
        MaskStructure(True, None, valid),
        MaskStructure(True, 4, valid),
        MaskStructure(False, None, valid),
    ):
        weights = _synthetic(structure, queries, keys, sinks=sinks)
        dense = np.stack([weights.rows(0, head) for head in range(2)])
        _assert_top_matches(long.top_keys(weights, 0, k=14), dense, np.arange(14), 14, str(structure))
        np.testing.assert_allclose(long.row_entropy(weights, 0), _reference_entropy(dense), atol=EXACT, rtol=ENTROPY)
        maximum, mean = _reference_overview(dense, 4)
        view = long.pooled_overview(weights, 4)
        np.testing.assert_allclose(view.maximum[0], maximum, atol=EXACT)
        np.testing.assert_allclose(view.mean[0], mean, atol=EXACT)
        if structure.causal and sinks is None:
            assert np.allclose(dense[:, :2], 1 / 14) and (long.top_keys(weights, 0, k=2).indices[:, 0] == [0, 1]).all()


def test_top_keys_and_rollout_read_only_the_rows_they_need():
    """Query rows past the last one asked are poisoned with NaN: top keys of chosen rows and rollout rows of a
    causal stack never compute them, so their results stay finite and equal the reference."""
    rng = np.random.default_rng(3)
    n = 40
    queries, keys = rng.standard_normal((2, n, 4)).astype(np.float32), rng.standard_normal((2, n, 4)).astype(np.float32)
    clean = _synthetic(MaskStructure(causal=True), queries, keys)
    reference = np.asarray(clean)[0]
    poisoned_queries = queries.copy()
    poisoned_queries[:, 21:] = np.nan
    poisoned = LazyAttention(
        [LazyLayer(poisoned_queries, keys, 1.0, structure=MaskStructure(True))] * 3, 2, n, n, [0, 1]
    )
    poisoned.block_bytes = clean.block_bytes
    top = long.top_keys(poisoned, 2, k=3, rows=range(5, 21, 5))
    _assert_top_matches(top, reference, np.arange(5, 21, 5), 3, "rows 5-20")
    expected = rollout(np.stack([combine_heads(reference)] * 3))
    np.testing.assert_allclose(long.rollout_rows(poisoned, [20, 3]), expected[2][[20, 3]], atol=EXACT)


def test_each_block_stays_within_the_scratch_budget_and_skips_keys_a_causal_row_cannot_see(tiny):
    _, lazy = _pair(tiny("llama"))
    weights = lazy.attentions
    _, heads, queries, keys = weights.shape
    computed = 0
    for block in weights.blocks(1):
        assert block.weights.numel() * SCRATCH_PER_WEIGHT <= weights.block_bytes
        assert block.key_stop == int(block.positions.max()) + 1 and block.key_start == 0
        computed += block.weights.numel()
    assert computed < 0.6 * heads * queries * keys  # about half: the upper triangle is never computed


def test_no_array_near_query_by_key_size_is_allocated():
    """At 600 tokens a (query, key) array of one head is 1.44 MB; with 384 kB of block scratch, no torch
    allocation during `summarise` and `rollout_rows` exceeds the scratch, and numpy's (the outputs, and what
    each worker derives from its chunk) stay under half that array. Torch's profiler sees the calling thread
    only, so there the blocks are computed in it (one torch thread); numpy's allocations are traced in every
    thread, with the usual worker threads too."""
    import tracemalloc

    from torch.profiler import ProfilerActivity, profile

    rng = np.random.default_rng(5)
    n = 600
    queries, keys = rng.standard_normal((4, n, 8)).astype(np.float32), rng.standard_normal((2, n, 8)).astype(np.float32)
    weights = _synthetic(MaskStructure(causal=True), queries, keys)
    weights.layers = weights.layers * 2
    weights.shape = (2, *weights.shape[1:])
    weights.block_bytes = n * SCRATCH_PER_WEIGHT * 2 * 20  # 20 rows of a key head's 2 query heads: 384 kB

    def reduce() -> None:
        long.summarise(weights, k=4, cells=8)
        long.rollout_rows(weights, [5, 500])

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiled:
            reduce()
    finally:
        torch.set_num_threads(threads)
    events = profiled.events()
    # every block seen: 2 layers × 30 chunks of 20 rows × 2 key heads, then rollout's rows 5-500 and 0-500
    assert sum(event.name == "aten::softmax" for event in events) == 2 * 30 * 2 + (25 + 26) * 2
    assert 0 < max(event.cpu_memory_usage for event in events) <= weights.block_bytes < n * n * 4
    for torch_threads in (1, 2):
        torch.set_num_threads(torch_threads)
        tracemalloc.start()
        try:
            reduce()
            _, numpy_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            torch.set_num_threads(threads)
        assert numpy_peak < n * n * 4 / 2, torch_threads  # outputs and each worker's chunk: no (query, key) array


def test_overview_says_how_it_pooled(tiny):
    _, lazy = _pair(tiny("llama"))
    queries = lazy.attentions.shape[2]
    view = long.pooled_overview(lazy.attentions, cells=8)
    assert view.block == -(-queries // 8) and view.maximum.shape == (2, 4, 8, 8) == view.mean.shape
    assert view.describe().startswith(f"each cell: max and mean of a {view.block} × {view.block}-token block")
    assert (
        long.pooled_overview(lazy.attentions, 1, layers=[0], heads=[1]).describe()
        == "each cell: one weight (no pooling)"
    )


def test_bad_arguments_name_the_parameter_and_its_range(tiny):
    _, lazy = _pair(tiny("llama"))
    weights = lazy.attentions
    keys = weights.shape[3]
    with pytest.raises(attnscope.InputError, match=rf"k must be a whole number from 1 to {keys}") as error:
        long.top_keys(weights, 0, k=0)
    assert error.value.field == "k"
    with pytest.raises(attnscope.InputError, match=rf"from 1 to {keys} .*got {keys + 1}"):
        long.top_keys(weights, 0, k=keys + 1)
    with pytest.raises(attnscope.InputError, match="layer 2 is out of range: this stack has layers 0-1"):
        long.top_keys(weights, 2)
    with pytest.raises(attnscope.InputError, match="layer -1 is out of range"):
        long.row_entropy(weights, -1)
    with pytest.raises(attnscope.InputError, match="head 4 is out of range: this stack has heads 0-3"):
        long.top_keys(weights, 0, heads=[4])
    with pytest.raises(
        attnscope.InputError, match=rf"rows holds {keys}, out of range: query positions are 0-{keys - 1}"
    ):
        long.top_keys(weights, 0, rows=range(keys - 2, keys + 1))
    with pytest.raises(attnscope.InputError, match=rf"block must be a whole number of tokens from 1 to {keys}"):
        long.pooled_overview(weights, 0)
    with pytest.raises(attnscope.InputError, match="cells must be a whole number of at least 1"):
        long.pooled_overview(weights, cells=0)
    with pytest.raises(attnscope.InputError, match="layer 3 is out of range: this stack has layers 0-1"):
        long.summarise(weights, layers=[0, 3])
    with pytest.raises(attnscope.InputError, match=rf"rows holds -1, out of range: query positions are 0-{keys - 1}"):
        long.rollout_rows(weights, [0, -1])
    with pytest.raises(attnscope.InputError, match="rows is empty"):
        long.rollout_rows(weights, [])
    with pytest.raises(attnscope.InputError, match="layer 9 is out of range"):
        long.rollout_rows(weights, [0], layer=9)
    with pytest.raises(
        attnscope.InputError, match=r"a \(layers, heads, query, key\) array, got ndarray of shape \(3, 3\)"
    ):
        long.top_keys(np.zeros((3, 3)), 0)


def test_rollout_refuses_cross_attention(tiny):
    _, lazy = _pair(tiny("bart"))
    cross = lazy.stacks["cross"].attentions
    with pytest.raises(attnscope.InputError, match="rollout follows attention through self-attention layers"):
        long.rollout_rows(cross, [0])


def test_smollm2_at_1024_tokens_reductions_equal_its_layer_weights(smollm2):
    """The real model's grouped-query layers (9 heads on 3 key heads) at 1,024 tokens: blocks of 100 rows."""
    ids = smollm2.tokenizer(" ".join([PUB] * 80), add_special_tokens=False)["input_ids"][:1024]
    lazy = attnscope.capture(smollm2, input_ids=ids, fields=["attentions"], top_k=0, attention="on_demand")
    weights = lazy.attentions
    weights.block_bytes = 1024 * SCRATCH_PER_WEIGHT * 3 * 100
    summary = long.summarise(weights, k=8, block=64, layers=[0, 29])
    for i, layer in enumerate([0, 29]):
        dense = weights.layer(layer)  # each weight held to the model's eager attention by tests/test_on_demand.py
        _assert_top_matches(summary.top[i], dense, np.arange(1024), 8, f"layer {layer}")
        maximum, mean = _reference_overview(dense, 64)
        np.testing.assert_allclose(summary.overview.maximum[i], maximum, atol=EXACT, rtol=0)
        np.testing.assert_allclose(summary.overview.mean[i], mean, atol=EXACT, rtol=0)
        np.testing.assert_allclose(summary.entropy[i], _reference_entropy(dense), atol=EXACT, rtol=ENTROPY)
