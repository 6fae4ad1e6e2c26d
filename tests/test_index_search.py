"""S3-S5: search by token and by head embeddings equals brute force over the stored vectors; matches
carry their context, metadata and attention; summaries equal counts made by hand; bad queries fail
clearly. On the small treebank of index_fixtures.py and on the real EWT dev file."""

from __future__ import annotations

import json
import unicodedata
from collections import Counter

import numpy as np
import pytest
from typer.testing import CliRunner

from attnscope.cli import app
from attnscope.errors import InputError
from attnscope.index import Index, Query
from attnscope.index.query import zero_other_heads

from .conftest import PUB

HEAD_SUBSETS = [(0,), (3, 7), (1, 2, 4, 8, 11), tuple(range(12))]


def _brute_force(index, kind: str, layer: int, vector: np.ndarray, top: int, allowed=None):
    stored = index.vector_set(kind, layer).decoded()
    scores = stored @ vector
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    order = np.argsort(-scores, kind="stable")[:top]
    return scores[order], order


@pytest.mark.parametrize("layer", [0, 3, 5])
def test_embedding_search_equals_brute_force_over_stored_vectors(ewt_index, layer):
    rng = np.random.default_rng(layer)
    for row in rng.choice(ewt_index.size, size=5, replace=False):
        vector = ewt_index.vector_set("hidden", layer).decoded([row])[0]
        vector = vector / np.linalg.norm(vector)
        scores, rows = ewt_index.search(Query("embedding", layer), vector)
        expected_scores, expected_rows = _brute_force(ewt_index, "hidden", layer, vector, 50)
        np.testing.assert_allclose(scores, expected_scores, rtol=0, atol=1e-4)
        assert _same_up_to_ties(rows, expected_rows, scores)


@pytest.mark.parametrize("heads", HEAD_SUBSETS)
def test_head_search_equals_brute_force_with_other_heads_zeroed(ewt_index, heads):
    rng = np.random.default_rng(len(heads))
    layer = 2
    for row in rng.choice(ewt_index.size, size=4, replace=False):
        full = ewt_index.vector_set("heads", layer).decoded([row])[0]
        scores, rows = ewt_index.search(Query("heads", layer, heads), full)
        zeroed = zero_other_heads(full, heads, 12)
        expected_scores, expected_rows = _brute_force(ewt_index, "heads", layer, zeroed, 50)
        np.testing.assert_allclose(scores, expected_scores, rtol=0, atol=1e-4)
        assert _same_up_to_ties(rows, expected_rows, scores)
        # the score is the sum of the selected heads' cosines: each head part is a unit vector
        stored = ewt_index.vector_set("heads", layer).decoded(rows[:3]).reshape(3, 12, -1)
        query = full.reshape(12, -1)
        by_head = sum((stored[:, h] @ query[h]) for h in heads)
        np.testing.assert_allclose(scores[:3], by_head, atol=1e-4)
        assert scores[0] <= len(heads) + 0.05


def _same_up_to_ties(rows, expected, scores, tolerance=1e-4) -> bool:
    """Equal row lists, except that rows whose scores tie (within float error) may swap."""
    if list(rows) == list(expected):
        return True
    boundary = scores[-1]
    strict = {r for r, s in zip(rows, scores) if s > boundary + tolerance}
    return strict <= set(expected) and len(set(rows) & set(expected)) >= len(rows) - sum(
        abs(scores - boundary) <= tolerance
    )


def test_metadata_filter_keeps_only_matching_tokens_and_equals_brute_force(ewt_index):
    vector = ewt_index.vector_set("hidden", 4).decoded([100])[0]
    query = Query("embedding", 4, filters={"upos": ["VERB"]})
    scores, rows = ewt_index.search(query, vector)
    assert len(rows) == 50 and set(ewt_index.tables.tokens["upos"][rows]) == {"VERB"}
    allowed = ewt_index.tables.tokens["upos"] == "VERB"
    expected_scores, _ = _brute_force(ewt_index, "hidden", 4, vector, 50, allowed)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-4)
    two = ewt_index.search(Query("embedding", 4, filters={"upos": ["VERB", "AUX"], "deprel": ["root"]}), vector)[1]
    assert all(ewt_index.tables.tokens["deprel"][r] == "root" for r in two)


def test_query_returns_matches_in_context_with_attention_and_summaries(ewt_index, default_model):
    result = ewt_index.query(default_model, PUB, 9, Query("heads", 3, (2, 5)))  # "escape"
    assert result.token_text == "escape" and len(result.matches) == 50
    tokens = ewt_index.tables.tokens
    for match in result.matches:
        rows = ewt_index.tables.sentence_rows(match.sentence)
        assert match.row == rows.start + match.position
        assert match.tokens == list(tokens["token"][rows.start : rows.stop])
        assert match.metadata["upos"] == [v if v is not None else None for v in tokens["upos"][rows.start : rows.stop]]
        block = ewt_index.attention.weights(match.sentence)
        expected = block[3, [2, 5], match.position].mean(axis=0)
        np.testing.assert_allclose(match.attention, expected, atol=1e-4)
        assert match.max_attention == int(np.argmax(expected)) and match.offset == match.max_attention - match.position
        span = match.text[int(tokens["start"][match.row]) : int(tokens["end"][match.row])]
        assert _fold(span) == _fold(match.token)  # the uncased tokenizer also strips accents
    by_hand = Counter(str(tokens["upos"][m.row]) for m in result.matches)
    assert result.summary.matched["upos"] == dict(by_hand.most_common())
    strongest = Counter(
        str(tokens["upos"][ewt_index.tables.sentence_rows(m.sentence).start + m.max_attention]) for m in result.matches
    )
    assert result.summary.max_attention["upos"] == dict(strongest.most_common())
    assert result.summary.offsets == dict(sorted(Counter(m.offset for m in result.matches).items()))
    assert sum(result.summary.offsets.values()) == 50


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text.lower()) if not unicodedata.combining(c))


def test_a_verb_finds_verbs(ewt_index, default_model):
    result = ewt_index.query(default_model, PUB, 9, Query("embedding", 4))
    upos = result.summary.matched["upos"]
    assert next(iter(upos)) == "VERB" and upos["VERB"] >= 25, upos  # measured: 29 of 50, the rest nouns/adjectives
    assert "escaped" in [m.token for m in result.matches[:3]]


def test_summaries_on_the_small_treebank_equal_hand_counts(small_index, default_model):
    result = small_index.query(default_model, "The pub was loud.", 2, Query("embedding", 5, top=10))  # "pub"
    assert len(result.matches) == 10
    assert result.matches[0].token == "pub" and result.matches[0].score > 0.8
    upos = [m.metadata["upos"][m.position] for m in result.matches]
    assert result.summary.matched["upos"] == dict(Counter(upos).most_common())


@pytest.mark.parametrize(
    "query, message",
    [
        (Query("embedding", 6), "layer 6 is out of range: this index has layers 0-5"),
        (Query("heads", 1, (12,)), "head 12 is out of range"),
        (Query("heads", 1, (3, 3)), "heads names head 3 more than once"),
        (Query("heads", 1, ()), "heads is empty: name at least one head"),
        (Query("vectors", 1), "search mode 'vectors' is unknown"),
        (Query("embedding", 1, top=0), "top must be an integer from 1 to 1000"),
        (Query("embedding", 1, top=True), "top must be an integer from 1 to 1000, got True"),
        (Query("embedding", 1, filters={"ner": ["GPE"]}), "cannot filter on 'ner'"),
    ],
)
def test_bad_queries_say_what_is_wrong(small_index, default_model, query, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        small_index.query(default_model, "Dogs bark.", 1, query)


def test_a_token_out_of_range_is_refused(small_index, default_model):
    with pytest.raises(InputError, match="token 9 is out of range"):
        small_index.query(default_model, "Dogs bark.", 9, Query("embedding", 1))


def test_cli_search_prints_json_and_tables(small_index):
    runner = CliRunner()
    args = ["search", "The pub was loud.", "--index", str(small_index.directory), "--token", "2", "--layer", "5"]
    result = runner.invoke(app, args + ["--top", "5", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["token_text"] == "pub" and len(data["matches"]) == 5 and data["mode"] == "embedding"
    heads = runner.invoke(app, args + ["--heads", "3,7", "--top", "5"])
    assert heads.exit_code == 0, heads.output
    assert "heads 3,7" in heads.output and "upos of the matches" in heads.output
    bad = runner.invoke(app, args + ["--heads", "3,x"])
    assert bad.exit_code == 2 and "--heads '3,x'" in bad.output and "Traceback" not in bad.output
    missing = runner.invoke(
        app, ["search", "x", "--index", str(small_index.directory / "nope"), "--token", "1", "--layer", "1"]
    )
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_cli_index_builds_and_reports(tmp_path):
    from .index_fixtures import small_conllu

    corpus = tmp_path / "small.conllu"
    corpus.write_text(small_conllu(), encoding="utf-8")
    result = CliRunner().invoke(app, ["index", str(corpus), "--out", str(tmp_path / "ix"), "--batch-tokens", "64"])
    assert result.exit_code == 0, result.output
    assert "39 tokens from 5 sentences" in result.output and "KiB per token" in result.output
    again = CliRunner().invoke(app, ["index", str(corpus), "--out", str(tmp_path / "ix")])
    assert again.exit_code == 2 and "already exists" in again.output
    bad_bits = CliRunner().invoke(app, ["index", str(corpus), "--out", str(tmp_path / "iy"), "--bits", "5"])
    assert bad_bits.exit_code == 2 and "vector_bits=5 is not supported" in bad_bits.output


def test_an_approximate_index_scans_clusters_and_equals_exact_search_when_it_scans_them_all(
    small_index, small_corpus, default_model, tmp_path
):
    from attnscope.index import BuildOptions, Index, build_index

    built = build_index(
        small_corpus, default_model, tmp_path / "ivf", options=BuildOptions(batch_tokens=64, approximate="always")
    )
    approximate = Index.open(built.directory)
    lists = approximate.manifest.approximate_lists
    assert lists == 39 // 39 and approximate.manifest.default_probes == 1  # >= 39 tokens to train each cluster
    assert not any(p.name.endswith(".codes.zst") or p.name.endswith(".codes.npy") for p in built.directory.iterdir())
    assert {f"ivf.{kind}.{layer}.faiss" for kind in ("hidden", "heads") for layer in range(6)} <= set(
        built.manifest.files
    )
    for kind, mode, heads in (("hidden", "embedding", None), ("heads", "heads", (1, 6))):
        # the same codes as the exact index (re-encoding a decoded vector may move a value one step)
        step = float(small_index.vector_set(kind, 3).ranges.span.max()) / 255
        np.testing.assert_allclose(
            approximate.vector_set(kind, 3).decoded(),
            small_index.vector_set(kind, 3).decoded(),
            rtol=0,
            atol=step + 1e-6,
        )
        vector = small_index.vector_set(kind, 3).decoded([7])[0]
        exact = small_index.search(Query(mode, 3, heads, top=10), vector)
        everything = approximate.search(Query(mode, 3, heads, top=10, probes=lists), vector)
        np.testing.assert_allclose(everything[0], exact[0], atol=0.01)
        assert len(set(everything[1][:5]) & set(exact[1][:5])) >= 4
        few = approximate.search(Query(mode, 3, heads, top=10, probes=1), vector)
        assert len(few[1]) <= 10 and set(few[1]) <= set(range(approximate.size))
    with pytest.raises(InputError, match="probes must be a positive integer"):
        approximate.search(Query("embedding", 3, probes=0), vector)


def test_the_vector_set_cache_is_bounded_by_bytes(small_index):
    one = small_index.vector_set("hidden", 0).nbytes
    assert one == small_index.size * small_index.manifest.hidden_size  # 8-bit codes: a byte per value
    roomy = Index.open(small_index.directory)
    for layer in range(3):
        roomy.vector_set("hidden", layer)
    assert roomy.cached_sets == [("hidden", 0), ("hidden", 1), ("hidden", 2)]
    tight = Index.open(small_index.directory, cache_bytes=2 * one)
    for layer in range(3):
        tight.vector_set("hidden", layer)
    assert tight.cached_sets == [("hidden", 1), ("hidden", 2)]
    tight.vector_set("hidden", 1)
    tight.vector_set("heads", 4)
    assert tight.cached_sets == [("hidden", 1), ("heads", 4)]  # the least recently used went first
    tiny = Index.open(small_index.directory, cache_bytes=1)
    tiny.vector_set("hidden", 0)
    tiny.vector_set("hidden", 1)
    assert tiny.cached_sets == [("hidden", 1)]  # the set in use is always kept


def test_searches_from_several_threads_equal_the_same_searches_one_by_one(small_index, default_model):
    from concurrent.futures import ThreadPoolExecutor

    fresh = Index.open(small_index.directory)
    queries = [
        (token, Query(mode=mode, layer=layer, heads=(1, 4) if mode == "heads" else None, top=5))
        for token in (1, 2, 3)
        for layer in range(6)
        for mode in ("embedding", "heads")
    ]
    one_by_one = [small_index.query(default_model, PUB, token, query).to_dict() for token, query in queries]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda q: fresh.query(default_model, PUB, q[0], q[1]).to_dict(), queries))
    assert together == one_by_one


def test_a_filter_value_given_as_a_string_is_one_value_not_its_letters(small_index, default_model):
    one = small_index.query(default_model, "Dogs bark.", 2, Query("embedding", 3, filters={"upos": "VERB"}))
    listed = small_index.query(default_model, "Dogs bark.", 2, Query("embedding", 3, filters={"upos": ["VERB"]}))
    assert one.matches and [m.row for m in one.matches] == [m.row for m in listed.matches]
    assert {m.metadata["upos"][m.position] for m in one.matches} == {"VERB"}
    vector = small_index.vector_set("hidden", 3).decoded([0])[0]
    assert (small_index.allowed({"upos": "VERB"}) == (small_index.tables.tokens["upos"] == "VERB")).all()
    assert len(small_index.search(Query("embedding", 3, filters={"upos": ("VERB", "AUX")}), vector)[1]) > 0


@pytest.mark.parametrize(
    "filters, message",
    [
        ({"upos": []}, "filter 'upos' has no values or an empty one"),
        ({"upos": [""]}, "filter 'upos' has no values or an empty one"),
        ({"upos": 3}, "filter 'upos': give its values as a list of strings, or one string"),
        ({"upos": ["VERB", None]}, "filter 'upos': give its values as a list of strings"),
        (["upos", "VERB"], "filters must map a field to its values"),
    ],
)
def test_malformed_filters_are_refused_not_silently_empty(small_index, default_model, filters, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        small_index.query(default_model, "Dogs bark.", 1, Query("embedding", 1, filters=filters))
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        small_index.allowed(filters)


def test_a_query_vector_of_another_width_or_not_finite_is_refused_by_name(small_index):
    from attnscope.errors import FieldError

    width = small_index.manifest.hidden_size
    for vector, problem in (
        (np.ones(width - 1, np.float32), rf"got shape \({width - 1},\)"),
        (np.ones((2, width), np.float32), rf"got shape \(2, {width}\)"),
        (np.full(width, np.nan, np.float32), "got values that are not finite"),
    ):
        with pytest.raises(FieldError, match=rf"holds {width} finite values; {problem}") as caught:
            small_index.search(Query("embedding", 2), vector)
        assert caught.value.field == "vector"
    assert len(small_index.search(Query("embedding", 2, top=3), np.ones(width, np.float64))[1]) == 3


def test_a_negative_cache_bound_is_refused(small_index):
    for bound in ("attention_cache_bytes", "rerank_cache_bytes"):
        with pytest.raises(InputError, match="a cache bound is a whole number of bytes, 0 or more; got -1"):
            Index.open(small_index.directory, **{bound: -1})
