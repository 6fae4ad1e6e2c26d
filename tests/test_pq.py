"""Product-quantised vector sets: the search is exact over the codes, shards equal one set, re-ranking."""

from __future__ import annotations

import numpy as np
import pytest

from attnscope.errors import InputError
from attnscope.index import ivf_shards, pq, vectors
from attnscope.index.shard_sets import Shard, ShardedSet

DIM, ROWS = 48, 4000


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((ROWS, DIM)) * np.linspace(2.0, 0.2, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x[[5, 1999, 2000, 3999]] = x[700]
    queries = np.vstack([x[[700, 3, 2500]], rng.standard_normal((3, DIM)).astype(np.float32)])
    trained = pq.train_pq(x[:3000], 12, seed=0)
    return x, queries, trained


def test_parse_codes():
    assert pq.parse_codes("pq96", 768) == 96 and pq.parse_codes("PQ768", 768) == 768
    with pytest.raises(InputError, match=r"--codes 'sq8' is not a product-quantiser choice: use pq<m>"):
        pq.parse_codes("sq8", 768)
    with pytest.raises(InputError, match=r"--codes pq100: m must divide the vector width 768 \(1-768\)"):
        pq.parse_codes("pq100", 768)
    with pytest.raises(InputError, match="m must divide"):
        pq.parse_codes("pq0", 768)


def test_search_is_exact_over_the_codes(data):
    x, queries, trained = data
    found = pq.PQSet(pq.add_vectors(trained, x))
    assert found.count == ROWS and found.nbytes == 12 * ROWS and not found.approximate
    decoded = found.decoded()
    assert np.allclose(decoded, trained.pq.decode(pq.encode(trained, x)))
    scores, rows = found.search(queries, 50)
    brute = queries @ decoded.T
    for q in range(len(queries)):
        order = np.lexsort((np.arange(ROWS), -np.round(brute[q], 4)))[:50]
        assert np.allclose(scores[q], brute[q][rows[q]], atol=1e-4)
        assert np.allclose(np.sort(brute[q][order]), np.sort(scores[q]), atol=1e-4)
    tied = rows[0][scores[0] == scores[0][0]]
    assert tied.tolist()[:5] == [5, 700, 1999, 2000, 3999]  # equal codes: equal scores, in row order
    allowed = np.random.default_rng(1).random(ROWS) < 0.3
    kept = found.search(queries, 50, allowed)[1]
    assert allowed[kept[kept >= 0]].all()


def test_a_saved_set_reads_back_equal(data, tmp_path):
    x, queries, trained = data
    found = pq.PQSet(pq.add_vectors(trained, x))
    (tmp_path / "pq.faiss").write_bytes(vectors.serialise(found.index))
    again = pq.PQSet.from_file(tmp_path / "pq.faiss")
    want, got = found.search(queries, 20), again.search(queries, 20)
    assert np.array_equal(want[0], got[0]) and np.array_equal(want[1], got[1])


def test_shards_fanned_out_and_merged_equal_one_set(data):
    x, queries, _ = data
    trained = pq.train_pq(x[:3000], 12, lists=8, seed=0)
    single = pq.PQSet(pq.add_vectors(trained, x))
    bounds = [0, 1000, 2001, ROWS]
    shards = [pq.add_vectors(trained, x[a:b], first=a) for a, b in zip(bounds, bounds[1:])]
    fan = ShardedSet([Shard(pq.PQSet(s), a, True) for s, a in zip(shards, bounds)])
    merged = pq.PQSet(ivf_shards.merge_in_memory(trained, shards))
    allowed = np.random.default_rng(2).random(ROWS) < 0.5
    for probes in (1, 3, 8):
        for mask in (None, allowed):
            want = single.search(queries, 50, mask, probes)
            for found in (fan, merged):
                got = found.search(queries, 50, mask, probes)
                assert np.array_equal(want[0], got[0]) and np.array_equal(want[1], got[1])
    assert fan.approximate and np.array_equal(fan.decoded([3999, 0, 2000]), single.decoded([3999, 0, 2000]))


class _Floats:
    """Float vectors with the `decoded` interface of a finer set."""

    def __init__(self, x):
        self.x, self.count = x, len(x)

    def decoded(self, rows):
        return self.x[rows]


def test_reranking_every_row_against_floats_is_exact_search(data):
    x, queries, trained = data
    codes_only = pq.PQSet(pq.add_vectors(trained, x))
    reranked = pq.PQSet(pq.add_vectors(trained, x), finer=_Floats(x), rerank=ROWS)
    exact = queries @ x.T
    scores, rows = reranked.search(queries, 50)
    for q in range(len(queries)):
        want = np.lexsort((np.arange(ROWS), -exact[q]))[:50]
        assert np.allclose(scores[q], exact[q][want], atol=1e-5)  # the float top 50's scores, in order
        assert np.allclose(exact[q][rows[q]], exact[q][want], atol=1e-5)
    few = pq.PQSet(pq.add_vectors(trained, x), finer=_Floats(x), rerank=4).search(queries, 50)[1]
    plain = codes_only.search(queries, 50)[1]
    truth = [set(np.lexsort((np.arange(ROWS), -exact[q]))[:50].tolist()) for q in range(len(queries))]

    def recall(found):
        return np.mean([len(truth[q] & set(found[q].tolist())) / 50 for q in range(len(queries))])

    assert recall(few) >= recall(plain)
    with pytest.raises(InputError, match="rerank must be 1 or more"):
        pq.PQSet(pq.add_vectors(trained, x), rerank=0)
    with pytest.raises(InputError, match="the finer set has 10 rows; the codes have 4000"):
        pq.PQSet(pq.add_vectors(trained, x), finer=_Floats(x[:10]), rerank=2)


def test_training_refuses_too_small_a_sample_or_a_width_m_does_not_divide(data):
    x, _, _ = data
    with pytest.raises(InputError, match="needs at least 256 sample vectors, got 100"):
        pq.train_pq(x[:100], 12)
    with pytest.raises(InputError, match="pq10: m must divide the vector width 48"):
        pq.train_pq(x, 10)


def test_training_on_a_small_sample_prints_no_faiss_warnings(capfd):
    """faiss warns on stderr, once a piece, when a k-means sample has under 39 points a centroid: 48 lines for
    one pq48 set of a small corpus. The sample size is the plan's to judge; the warnings are off."""
    sample = np.random.default_rng(0).standard_normal((400, 32)).astype(np.float32)
    pq.train_pq(sample, 4, lists=2)
    vectors.trained_ivf(sample, 32, 8, vectors.Ranges(sample.min(0), np.ptp(sample, 0)), lists=4)
    assert "WARNING clustering" not in capfd.readouterr().err
