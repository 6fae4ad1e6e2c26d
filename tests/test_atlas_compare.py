"""Two head atlases compared: the default model against itself, against a copy with one head's query
zeroed, against a model of another shape; written to disk; and refusing atlases that cannot be compared."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pyarrow.parquet as pq
import pytest

from attnscope.analysis.probes import ProbeSpec
from attnscope.atlas import SCORES, compare_atlases, compute_atlas, write_comparison
from attnscope.atlas.compare import COMPARE_JSON, COMPARE_PARQUET
from attnscope.atlas.compute import with_probes
from attnscope.errors import InputError


@pytest.fixture(scope="module")
def base_atlas(default_model, small_corpus):
    return compute_atlas(default_model, small_corpus, batch_tokens=64)


@pytest.fixture(scope="module")
def zeroed_atlas(zeroed_copy, small_corpus):
    return compute_atlas(zeroed_copy, small_corpus, batch_tokens=64)


def test_the_default_model_against_itself_differs_nowhere(default_model, small_corpus, base_atlas):
    again = compute_atlas(default_model, small_corpus, batch_tokens=64)  # computed anew, in the same batches
    result = compare_atlases(base_atlas, again)
    assert result.same_shape and result.left_out == ()
    assert result.keys[: len(SCORES)] == SCORES
    assert {s.group for s in result.scores} == {"pattern", "relation"}
    assert "nsubj dependent_to_head" in result.keys and result.score("nsubj dependent_to_head").arcs == 6
    for score in result.scores:
        assert score.difference is not None and np.all(score.difference == 0), score.key
    assert result.score("previous").best("a") == result.score("previous").best("b")


def test_a_zeroed_query_changes_that_heads_patterns_and_nothing_before_it(base_atlas, zeroed_atlas):
    result = compare_atlases(base_atlas, zeroed_atlas)
    for score in result.scores:  # layers 0-1 run before the change: no score of theirs moves
        assert score.difference is not None and np.all(score.difference[:2] == 0), score.key
    entropy = result.score("entropy")
    assert entropy.b[2, 5] == pytest.approx(1.0, abs=1e-6)  # uniform attention: the most entropy there is
    assert entropy.difference[2, 5] == pytest.approx(entropy.a[2, 5] - 1.0)
    changed = {s.key: abs(s.difference[2, 5]) for s in result.scores if s.group == "pattern"}
    assert changed["entropy"] > 0.05 and max(changed.values()) > 0.1
    top = entropy.most_changed(1)[0]
    assert (top.layer, top.head) == (2, 5) and top.b == pytest.approx(1.0, abs=1e-6)
    biggest = max(SCORES, key=lambda key: changed[key])
    assert int(np.argmax(np.abs(result.score(biggest).difference[2]))) == 5  # the most changed head of layer 2
    document = result.to_dict(top=3)
    assert document["same_shape"] and document["a"]["model"] == document["b"]["model"]
    row = next(s for s in document["scores"] if s["key"] == "entropy")
    assert row["most_changed"][0]["layer"] == 2 and row["most_changed"][0]["head"] == 5
    assert row["difference"][2][5] == pytest.approx(entropy.difference[2, 5], abs=1e-6)
    assert row["difference"][0] == [0.0] * 12


def test_models_of_different_shapes_are_compared_side_by_side(base_atlas, tiny, small_corpus, tmp_path):
    other = compute_atlas(tiny("bert", head=False), small_corpus)
    result = compare_atlases(base_atlas, other)
    assert not result.same_shape and (other.layers, other.heads) != (6, 12)
    previous = result.score("previous")
    assert previous.difference is None and previous.most_changed() == []
    layer, head, value = previous.best("b")
    assert value == other.patterns.previous.max() and other.patterns.previous[layer, head] == value
    assert previous.best("a")[2] == base_atlas.patterns.previous.max()

    json_path, parquet_path = write_comparison(result, tmp_path)
    assert (json_path.name, parquet_path.name) == (COMPARE_JSON, COMPARE_PARQUET)
    table = pq.read_table(parquet_path).to_pydict()
    sides = table["side"]
    assert sides.count("a") == 72 and sides.count("b") == other.layers * other.heads and "a-b" not in sides
    assert table["previous"][72:] == pytest.approx(other.patterns.previous.reshape(-1).tolist())
    assert json.loads(json_path.read_text())["scores"][0]["difference"] is None


def test_the_table_holds_a_b_and_the_difference_per_head(base_atlas, zeroed_atlas, tmp_path):
    _, parquet_path = write_comparison(compare_atlases(base_atlas, zeroed_atlas), tmp_path)
    table = pq.read_table(parquet_path)
    meta = json.loads(table.schema.metadata[b"attnscope"])
    assert meta["corpus"] == "small" and meta["a"] == base_atlas.model
    rows = table.to_pydict()
    assert table.column_names[:4] == ["side", "model", "layer", "head"]
    assert rows["side"] == ["a"] * 72 + ["b"] * 72 + ["a-b"] * 72
    at = 2 * 72 + 2 * 12 + 5  # the a-b row of head 2-5
    assert (rows["layer"][at], rows["head"][at]) == (2, 5)
    assert rows["entropy"][at] == pytest.approx(rows["entropy"][2 * 12 + 5] - rows["entropy"][72 + 2 * 12 + 5])


def test_atlases_of_different_corpora_or_sentences_are_refused(base_atlas):
    with pytest.raises(InputError, match="computed on different corpora: A .* on 'small'.*B .* on 'other'"):
        compare_atlases(base_atlas, replace(base_atlas, corpus="other", corpus_checksum="0" * 64))
    with pytest.raises(InputError, match="scored different sentences of one corpus.*4 sentences"):
        compare_atlases(base_atlas, replace(base_atlas, sentences=4))


def test_a_score_one_side_lacks_is_refused_when_asked_for_and_left_out_otherwise(default_model, base_atlas):
    probed = with_probes(base_atlas, default_model, ["induction"], ProbeSpec(length=8, batch=2))
    result = compare_atlases(probed, base_atlas)
    assert result.left_out == ("probe_induction",) and "probe_induction" not in result.keys
    with pytest.raises(InputError, match=r"score 'probe_induction' is in the atlas of A \('.*'\) but not of B"):
        compare_atlases(probed, base_atlas, scores=["probe_induction"])
    with pytest.raises(InputError, match="score 'probe_induction' is in the atlas of B"):
        compare_atlases(base_atlas, probed, scores=["previous", "probe_induction"])
    both = compare_atlases(probed, probed)
    assert both.score("probe_induction").group == "probe" and both.keys[len(SCORES)] == "probe_induction"
    narrowed = compare_atlases(base_atlas, base_atlas.select_relations(["det"]))
    assert [key for key in narrowed.keys if " " in key] == ["det dependent_to_head", "det head_to_dependent"]
    assert "nsubj dependent_to_head" in narrowed.left_out


def test_unknown_scores_are_named(base_atlas):
    result = compare_atlases(base_atlas, base_atlas, scores=["entropy", "previous"])
    assert result.keys == ("entropy", "previous")
    with pytest.raises(InputError, match="score 'entropy' is not compared; the compared scores are: previous"):
        compare_atlases(base_atlas, base_atlas, scores=["previous"]).score("entropy")
    with pytest.raises(InputError, match="score 'dobj dependent_to_head' is in neither atlas; both have: previous"):
        compare_atlases(base_atlas, base_atlas, scores=["dobj dependent_to_head"])
