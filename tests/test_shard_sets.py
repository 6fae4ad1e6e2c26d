"""Vector sets in shards searched as one: fan-out equals one set, IVF shards merged equal one IVF."""

from __future__ import annotations

import shutil

import faiss
import numpy as np
import pytest

from attnscope.errors import InputError
from attnscope.index import ivf_shards, vectors
from attnscope.index.shard_sets import Shard, ShardedSet

DIM, BITS, ROWS = 32, 8, 3000


@pytest.fixture(scope="module")
def data():
    """Seeded unit vectors with groups of equal vectors (equal scores) spread across shard boundaries,
    their 8-bit codes and ranges, and queries (some equal to the repeated vectors)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((ROWS, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x[rng.choice(ROWS, 80, replace=False)] = x[11]  # 81 equal rows: ties across the cut at k=50
    x[[599, 600, 1799, 1800, 2999]] = x[1200]
    ranges = vectors.Ranges.from_sample(x)
    codes = vectors.encode(x, BITS, ranges)
    queries = np.vstack([x[[11, 1200, 5, 2500]], rng.standard_normal((4, DIM)).astype(np.float32)])
    return codes, ranges, queries


def _bounds(shards: int) -> list[int]:
    return [0, *[ROWS * (i + 1) // shards + 7 * i for i in range(shards - 1)], ROWS]


def _allowed(seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).random(ROWS) < 0.4


def test_one_set_orders_ties_by_row_and_keeps_the_lowest_rows(data):
    codes, ranges, queries = data
    found = vectors.VectorSet.from_codes(codes, DIM, BITS, ranges)
    scores, rows = found.search(queries[:1], 50)
    tied = rows[0][scores[0] == scores[0][0]]
    assert len(tied) == 50  # 81 rows score the same: the 50 lowest come back, in row order
    assert tied.tolist() == sorted(tied.tolist())
    every = np.flatnonzero((codes == codes[11]).all(axis=1))
    assert tied.tolist() == every[:50].tolist()


@pytest.mark.parametrize("shards", [1, 2, 5])
@pytest.mark.parametrize("filtered", [False, True])
def test_exact_shards_equal_one_set(data, shards, filtered):
    codes, ranges, queries = data
    single = vectors.VectorSet.from_codes(codes, DIM, BITS, ranges)
    bounds = _bounds(shards)
    sharded = ShardedSet(
        [Shard(vectors.VectorSet.from_codes(codes[a:b], DIM, BITS, ranges), a) for a, b in zip(bounds, bounds[1:])]
    )
    allowed = _allowed() if filtered else None
    assert sharded.count == ROWS and sharded.nbytes == single.nbytes and not sharded.approximate
    for k in (1, 50, 200):
        want = single.search(queries, k, allowed)
        got = sharded.search(queries, k, allowed)
        assert np.array_equal(want[0], got[0]) and np.array_equal(want[1], got[1])
        if filtered:
            assert allowed[got[1][got[1] >= 0]].all()
    rows = np.array([2999, 0, 1800, 599, 600, 1234])
    assert np.array_equal(sharded.decoded(rows), single.decoded(rows))
    assert np.array_equal(sharded.decoded(), single.decoded())


def test_fewer_allowed_than_k_pads_like_one_set(data):
    codes, ranges, queries = data
    single = vectors.VectorSet.from_codes(codes, DIM, BITS, ranges)
    bounds = _bounds(3)
    sharded = ShardedSet(
        [Shard(vectors.VectorSet.from_codes(codes[a:b], DIM, BITS, ranges), a) for a, b in zip(bounds, bounds[1:])]
    )
    allowed = np.zeros(ROWS, dtype=bool)
    allowed[[3, 1500, 2990]] = True
    want, got = single.search(queries, 10, allowed), sharded.search(queries, 10, allowed)
    assert np.array_equal(want[0], got[0]) and np.array_equal(want[1], got[1])
    assert (got[1][:, 3:] == -1).all() and sorted(got[1][0, :3].tolist()) == [3, 1500, 2990]
    nothing = sharded.search(queries, 10, np.zeros(ROWS, dtype=bool))
    assert (nothing[1] == -1).all() and np.array_equal(nothing[0], single.search(queries, 10, allowed & False)[0])


@pytest.fixture(scope="module")
def ivf(data, tmp_path_factory):
    """One trained IVF (16 clusters), the single set built on a copy, and 4 shards built on copies."""
    codes, ranges, _ = data
    lists = 16
    sample = vectors.decode(codes[vectors.ivf_sample(ROWS, lists)], DIM, BITS, ranges)
    trained = vectors.trained_ivf(sample, DIM, BITS, ranges, lists, seed=0)
    single = ivf_shards.add_shard(trained, codes, DIM, BITS, ranges, 0)
    bounds = _bounds(4)
    shards = [ivf_shards.add_shard(trained, codes[a:b], DIM, BITS, ranges, a) for a, b in zip(bounds, bounds[1:])]
    folder = tmp_path_factory.mktemp("ivf-shards")
    files = []
    for number, shard in enumerate(shards):
        files.append(folder / f"shard{number}.faiss")
        faiss.write_index(shard, str(files[-1]))
    return trained, single, shards, bounds, files, folder


def test_add_shard_keeps_codes_and_build_ivf_is_unchanged(data, ivf):
    codes, ranges, _ = data
    trained, single, *_ = ivf
    built = vectors.build_ivf(codes, DIM, BITS, ranges, 16, seed=0)
    for index in (single, built):
        assert index.ntotal == ROWS
        one = vectors.VectorSet(index, ROWS, DIM, BITS, ranges)
        assert np.array_equal(vectors.encode(one.decoded(), BITS, ranges), codes)
    assert ivf_shards.fingerprint(built) == ivf_shards.fingerprint(trained)  # the same seeded training


@pytest.mark.parametrize("filtered", [False, True])
def test_ivf_shards_merged_and_fanned_out_equal_one_ivf(data, ivf, tmp_path, filtered):
    codes, ranges, queries = data
    trained, single, shards, bounds, files, _ = ivf
    merged_file = tmp_path / "merged" / "ivf.hidden.3.faiss"
    merged_file.parent.mkdir()
    data_file = ivf_shards.merge_on_disk(trained, files, merged_file)
    assert data_file.parent == merged_file.parent
    moved = tmp_path / "moved"
    shutil.copytree(merged_file.parent, moved)  # the lists are looked up beside the index file
    shutil.rmtree(merged_file.parent)
    sets = {
        "single": vectors.VectorSet(single, ROWS, DIM, BITS, ranges),
        "on disk": vectors.VectorSet(ivf_shards.read_merged(moved / merged_file.name), ROWS, DIM, BITS, ranges),
        "in memory": vectors.VectorSet(ivf_shards.merge_in_memory(trained, shards), ROWS, DIM, BITS, ranges),
        "fan-out": ShardedSet(
            [Shard(vectors.VectorSet(s, s.ntotal, DIM, BITS, ranges), a, True) for s, a in zip(shards, bounds)]
        ),
    }
    allowed = _allowed(5) if filtered else None
    for probes in (1, 4, 16):
        want = sets["single"].search(queries, 50, allowed, probes)
        assert (want[1][:, :10] >= 0).all()
        for name, found in sets.items():
            got = found.search(queries, 50, allowed, probes)
            assert np.array_equal(want[0], got[0]) and np.array_equal(want[1], got[1]), (name, probes)
    rows = np.array([2999, 0, 1800, 17])
    for found in sets.values():
        assert np.array_equal(found.decoded(rows), sets["single"].decoded(rows))
    exact = vectors.VectorSet.from_codes(codes, DIM, BITS, ranges).search(queries, 50, allowed)
    every = sets["fan-out"].search(queries, 50, allowed, 16)  # every cluster scanned: exact
    assert np.array_equal(exact[1], every[1]) and np.allclose(exact[0], every[0], atol=1e-5)


def test_merge_refuses_a_shard_of_another_trained_index(data, ivf, tmp_path):
    codes, ranges, _ = data
    trained, _, shards, _, files, _ = ivf
    other = vectors.trained_ivf(vectors.decode(codes[:800], DIM, BITS, ranges), DIM, BITS, ranges, 16, seed=1)
    stranger = ivf_shards.add_shard(other, codes[:100], DIM, BITS, ranges, 0)
    faiss.write_index(stranger, str(tmp_path / "stranger.faiss"))
    with pytest.raises(InputError, match="not built against this trained index"):
        ivf_shards.merge_on_disk(trained, [files[0], tmp_path / "stranger.faiss"], tmp_path / "merged.faiss")
    with pytest.raises(InputError, match="shard 1 was not built against"):
        ivf_shards.merge_in_memory(trained, [shards[0], stranger])
    with pytest.raises(InputError, match="must be empty"):
        ivf_shards.add_shard(shards[0], codes[:10], DIM, BITS, ranges, 0)


def test_shards_must_cover_every_row_once(data):
    codes, ranges, _ = data
    part = vectors.VectorSet.from_codes(codes[:100], DIM, BITS, ranges)
    with pytest.raises(InputError, match="shard 1 starts at row 150, expected 100"):
        ShardedSet([Shard(part, 0), Shard(part, 150)])
    with pytest.raises(InputError, match="at least one shard"):
        ShardedSet([])
    with pytest.raises(InputError, match="allowed has 7 rows; this set has 100"):
        ShardedSet([Shard(part, 0)]).search(np.zeros(DIM, np.float32), 5, np.ones(7, dtype=bool))
