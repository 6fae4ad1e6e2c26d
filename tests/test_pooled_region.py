"""A head's region pooled over cells from its exact weights equals pooling those weights directly."""

from __future__ import annotations

import numpy as np
import pytest

from attnscope.analysis.pooled_region import cell_sizes, pool_region, snap


def _weights(layers=2, heads=3, queries=37, keys=29, seed=3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = np.exp(rng.normal(size=(layers, heads, queries, keys)) * 2).astype(np.float32)
    e *= np.tril(np.ones((queries, keys), dtype=np.float32))  # causal: masked keys count as 0
    return e / e.sum(-1, keepdims=True)


def _direct(head: np.ndarray, block: int, rows: range, cols: range) -> tuple[np.ndarray, np.ndarray]:
    starts_r, starts_c = range(rows.start, rows.stop, block), range(cols.start, cols.stop, block)
    maximum = np.zeros((len(starts_r), len(starts_c)))
    mean = np.zeros_like(maximum)
    for i, r in enumerate(starts_r):
        for j, c in enumerate(starts_c):
            cell = head[r : min(r + block, rows.stop), c : min(c + block, cols.stop)].astype(np.float64)
            maximum[i, j], mean[i, j] = cell.max(), cell.mean()
    return maximum, mean


@pytest.mark.parametrize(("block", "band_bytes"), [(1, 64), (4, 64), (5, 1 << 20), (7, 100)])
def test_a_region_pooled_in_bands_equals_pooling_its_weights(block, band_bytes):
    weights = _weights()
    region = pool_region(weights, 1, 2, range(3, 33), range(6, 29), block, band_bytes=band_bytes)
    assert region.rows == snap(3, 33, block, 37) and region.cols == snap(6, 29, block, 29)
    maximum, mean = _direct(weights[1, 2], block, region.rows, region.cols)
    np.testing.assert_array_equal(region.maximum, maximum.astype(np.float32))
    np.testing.assert_allclose(region.mean, mean, atol=1e-7, rtol=1e-6)


def test_cells_cut_by_the_edge_count_their_real_positions():
    assert snap(5, 11, 4, 10) == range(4, 10)
    assert cell_sizes(range(4, 10), 4).tolist() == [4, 2]
