"""Model comparison (B5): head distances, nearest heads and the one-to-one matching against loop-based
references, word alignment on hand-made tokenisations, the default model against itself and against a copy
with one head's queries zeroed, and the errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import attnscope
from attnscope.analysis.alignment import align, merged
from attnscope.analysis.comparison import compare, compare_models
from attnscope.analysis.head_distance import hellinger_bounds, row_jsd
from attnscope.capture.inputs import Tokens
from attnscope.errors import InputError

from .conftest import PUB


def reference_jsd(p: np.ndarray, q: np.ndarray) -> float:
    """JSD in bits of two distributions, one term at a time."""
    total = 0.0
    for x, y in zip(p.tolist(), q.tolist()):
        m = (x + y) / 2
        if x > 0:
            total += 0.5 * x * math.log2(x / m)
        if y > 0:
            total += 0.5 * y * math.log2(y / m)
    return total


def reference_head_distance(a: np.ndarray, b: np.ndarray, rows: np.ndarray) -> float:
    return float(np.mean([reference_jsd(a[i], b[i]) for i in range(len(a)) if rows[i]]))


def test_bounds_hold_term_by_term_on_a_grid():
    """h² <= JSD <= h² / ln 2 for each term ½p log₂(2p/(p+q)) + ½q log₂(2q/(p+q)) against ½(√p − √q)²."""
    grid = np.concatenate([[0.0], np.logspace(-12, 0, 400)])
    p, q = np.meshgrid(grid, grid)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        term = 0.5 * np.where(p > 0, p * np.log2(p / m), 0) + 0.5 * np.where(q > 0, q * np.log2(q / m), 0)
    term = np.nan_to_num(term)
    hellinger = 0.5 * (np.sqrt(p) - np.sqrt(q)) ** 2
    assert np.all(hellinger <= term + 1e-15)
    assert np.all(term <= hellinger / math.log(2) + 1e-15)
    assert term[p != q].min() >= 0


def test_row_jsd_matches_the_loop_and_its_limits():
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(7), size=5), rng.dirichlet(np.full(7, 0.2), size=5)
    got = row_jsd(p, q).numpy()
    assert got == pytest.approx([reference_jsd(x, y) for x, y in zip(p, q)], abs=1e-12)
    assert float(row_jsd(np.eye(3)[0], np.eye(3)[1])) == pytest.approx(1.0)  # disjoint: 1 bit
    assert float(row_jsd(p[0], p[0])) == 0.0


def random_heads(rng: np.random.Generator, heads: int, n: int, causal: bool = False) -> np.ndarray:
    logits = rng.normal(0, rng.uniform(0.5, 4), size=(heads, n, n))
    if causal:
        logits = np.where(np.tril(np.ones((n, n), dtype=bool)), logits, -np.inf)
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)


def test_bounds_bracket_every_pair():
    rng = np.random.default_rng(1)
    a, b = random_heads(rng, 6, 9), random_heads(rng, 5, 9, causal=True)
    rows = np.ones(9, dtype=bool)
    lower, upper = hellinger_bounds(a, b, rows)
    exact = np.array([[reference_head_distance(x, y, rows) for y in b] for x in a])
    assert np.all(lower <= exact) and np.all(exact <= upper)


def brute_force(exact: np.ndarray) -> float:
    """The least total distance of any one-to-one matching, trying every assignment (A has no more heads than B)."""
    rows, cols = exact.shape
    choices = itertools.permutations(range(cols), rows)
    return min(sum(math.sqrt(exact[i, j]) for i, j in enumerate(chosen)) for chosen in choices)


def test_tiny_models_against_loops(tiny):
    """A tiny BERT (2 × 4 heads, WordPiece) against a tiny GPT-2 (2 × 4, byte-level BPE) at the word level:
    merged weights, every distance, the nearest heads and the matching's total against loops."""
    text = "The naïve cat didn't sit."
    bert, gpt2 = tiny("bert"), tiny("gpt2")
    cap_a = attnscope.capture(bert, text)
    cap_b = attnscope.capture(gpt2, text)
    result = compare(cap_a, cap_b, nearest=2)
    assert result.alignment.level == "word"
    n = len(result.alignment)
    # merged rows by hand: a unit's row is the mean of its tokens' rows, its column the sum of its tokens' columns
    raw = np.asarray(cap_a.attentions[1, 2], dtype=np.float64)
    units = result.alignment.units_a
    by_hand = np.array([[raw[np.ix_(r, c)].sum(axis=1).mean() for c in units] for r in units])
    by_hand /= by_hand.sum(axis=1, keepdims=True)
    assert result.attention_a[1, 2] == pytest.approx(by_hand.astype(np.float32), abs=1e-6)
    flat_a = result.attention_a.reshape(8, n, n).astype(np.float64)
    flat_b = result.attention_b.reshape(8, n, n).astype(np.float64)
    exact = np.array([[reference_head_distance(x, y, result.rows) for y in flat_b] for x in flat_a])
    assert result.distances == pytest.approx(np.diag(exact).reshape(2, 4), abs=1e-6)
    for i in range(8):
        order = sorted(range(8), key=lambda j: (round(exact[i, j], 9), j))[:2]
        assert [int(layer * 4 + head) for layer, head in result.nearest[i // 4, i % 4]] == order
        assert result.nearest_distances[i // 4, i % 4] == pytest.approx(exact[i, order], abs=1e-6)
    total = sum(math.sqrt(m.distance) for m in result.matching)  # the matching sums JS distances (√ divergence)
    assert len({(m.layer_b, m.head_b) for m in result.matching}) == 8
    assert total == pytest.approx(brute_force(exact), abs=1e-6)


def test_more_heads_in_a_than_in_b_leaves_some_unmatched():
    rng = np.random.default_rng(2)
    from attnscope.analysis.head_distance import PairDistances

    a, b = random_heads(rng, 5, 6), random_heads(rng, 3, 6)
    pairs = PairDistances(a, b)
    chosen = pairs.assignment()
    exact = np.array([[reference_head_distance(x, y, np.ones(6, bool)) for y in b] for x in a])
    assert len(chosen) == 3 and len({j for _, j in chosen}) == 3
    root = np.sqrt(exact)
    best = min(sum(root[i, j] for i, j in zip(rows, range(3))) for rows in itertools.permutations(range(5), 3))
    assert sum(root[i, j] for i, j in chosen) == pytest.approx(best, abs=1e-9)


def tokens(text: str, pieces: list[tuple[int, int, int | None]], special: set[int] = frozenset()) -> Tokens:
    """Hand-made tokens of ``text``: (start, end, word) per token; a special token has no span."""
    n = len(pieces)
    return Tokens(
        ids=list(range(n)),
        raw=[text[s:e] if i not in special else "[S]" for i, (s, e, _) in enumerate(pieces)],
        display=[text[s:e] if i not in special else "[S]" for i, (s, e, _) in enumerate(pieces)],
        offsets=[None if i in special else (s, e) for i, (s, e, _) in enumerate(pieces)],
        word_ids=[w for _, _, w in pieces],
        special=[i in special for i in range(n)],
        segments=[0] * n,
        texts=(text,),
    )


def test_word_alignment_of_hand_made_tokenisations():
    text = "don't stop-now ok"
    #       0123456789012345678
    pieces = [(0, 0, None), (0, 3, 0), (3, 4, 1), (4, 5, 2), (6, 10, 3), (10, 11, 4), (11, 14, 5), (15, 17, 6)]
    wordpiece = tokens(text, [*pieces, (0, 0, None)], special={0, 8})
    byte_bpe = tokens(text, [(0, 3, 0), (3, 5, 1), (5, 10, 2), (10, 14, 3), (14, 17, 4)])  # " stop" keeps its space
    alignment = align(wordpiece, byte_bpe)
    assert alignment.level == "word"
    # spans that overlap on either side join: "'" and "t" against "'t", "-" and "now" against "-now"
    assert alignment.units_a == [[1], [2, 3], [4], [5, 6], [7]]
    assert alignment.units_b == [[0], [1], [2], [3], [4]]
    assert alignment.labels == ["don", "'t", "stop", "-now", "ok"]
    assert alignment.unaligned_a == [0, 8] and alignment.unaligned_b == []
    weights = np.full((9, 9), 1 / 9)
    out, kept = merged(weights, alignment.members("a", 9))
    assert kept == pytest.approx([7 / 9] * 5)  # the two special tokens' columns are left out
    assert out.sum(axis=-1) == pytest.approx(np.ones(5))
    assert out[0] == pytest.approx(np.array([1, 2, 1, 2, 1]) / 7)
    joined = align(tokens("ab cd", [(0, 2, 0), (3, 5, 1)]), tokens("ab cd", [(0, 4, 0), (4, 5, 1)]))
    assert joined.units_a == [[0, 1]] and joined.units_b == [[0, 1]]  # "cd" against "ab c" + "d": one unit


def test_same_tokenizer_aligns_tokens():
    handle = attnscope.load("default")
    a = attnscope.capture(handle, PUB).tokens
    alignment = align(a, a)
    assert alignment.level == "token" and alignment.units_a == [[i] for i in range(len(a))]
    assert align(a, a, "word").level == "word"


def test_a_model_against_itself_is_zero_everywhere(default_model):
    cap = attnscope.capture(default_model, PUB, fields=["attentions"])
    result = compare(cap, cap)
    assert result.distances is not None and np.all(result.distances == 0)
    assert all((m.layer_a, m.head_a) == (m.layer_b, m.head_b) and m.distance == 0 for m in result.matching)
    assert len(result.matching) == 72
    assert np.all(result.difference(3, 4) == 0)
    assert [tuple(x) for x in result.nearest[3, 4][:1]] == [(3, 4)]


def test_a_zeroed_query_head_is_the_most_changed(default_model, zeroed_copy):
    result = compare_models(default_model, zeroed_copy, PUB)
    distances = result.distances
    assert distances is not None
    assert np.all(distances[:2] == 0)  # layers before the change are untouched
    assert int(np.argmax(distances[2])) == 5 and distances[2, 5] > 0.1
    changed = result.attention_b[2, 5]
    assert changed == pytest.approx(np.full_like(changed, 1 / changed.shape[-1]), abs=1e-6)  # uniform
    unchanged = [(layer, head) for layer in range(6) for head in range(12) if distances[layer, head] < 0.02]
    pairs = {(m.layer_a, m.head_a): (m.layer_b, m.head_b) for m in result.matching}
    assert len(unchanged) > 24 and all(pairs[place] == place for place in unchanged)
    payload = result.to_dict()
    assert len(payload["distances"]) == 6 and len(payload["distances"][0]) == 12
    assert payload["matching"][0] == {"a": [0, 0], "b": [0, 0], "distance": 0.0}


def test_the_default_encoder_against_a_decoder_at_the_word_level(default_model, tiny):
    result = compare_models(default_model, tiny("smollm2"), PUB)
    assert result.alignment.level == "word"
    assert result.alignment.labels[:3] == ["The", "girl", "ran"]
    assert result.alignment.unaligned_a == [0, len(attnscope.capture(default_model, PUB).tokens) - 1]
    assert result.distances is None  # 6 × 12 against 2 × 4
    assert len(result.matching) == 8  # B has fewer heads: 8 of A's are matched
    assert np.all(np.triu(result.attention_b[0, 0], 1) == 0)  # the decoder's words still see no later word


def test_bad_input_is_refused(default_model, tiny):
    a = attnscope.capture(default_model, PUB)
    with pytest.raises(InputError, match="text 1 reads"):
        compare(a, attnscope.capture(default_model, PUB.replace("pub", "bar")))
    with pytest.raises(InputError, match="level='token' needs one tokenisation"):
        compare(a, attnscope.capture(tiny("gpt2"), PUB), level="token")
    with pytest.raises(InputError, match="level must be one of"):
        compare(a, a, level="sentence")
    with pytest.raises(InputError, match="nearest must be a positive integer"):
        compare(a, a, nearest=0)
    t5 = attnscope.capture(tiny("t5"), PUB, target="Das Mädchen")
    with pytest.raises(InputError, match="cross-attention"):
        compare(a, t5, stack_b="cross")
    with pytest.raises(InputError, match="layer 6 is out of range: model A .* has layers 0-5"):
        compare(a, a).difference(6, 0)
