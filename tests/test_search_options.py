"""Search options take effect or are refused, alike in Python (`InputError`), the CLI (exit 2, tested in
test_cli_indexes.py) and the API (400 naming the field): ``score="mean"`` only in a head search, ``probes``
only on an approximate index and up to its clusters; ``heads`` in an embedding search pick the heads whose
attention each match shows, and the response says which."""

from __future__ import annotations

import numpy as np
import pytest

from attnscope.errors import InputError
from attnscope.index import BuildOptions, Index, Query, build_index

from .conftest import PUB
from .server_fixtures import SMALL, client, state  # noqa: F401 - fixtures

MEAN_REFUSED = (
    "score 'mean' (--score mean) is for head searches (mode 'heads', --heads), which add up or average "
    "several heads' cosines; an embedding search's score is one cosine: leave score out, or search by heads"
)


def test_a_mean_score_is_refused_outside_a_head_search(small_index, default_model):
    """The field report: `Query("embedding", score="mean")` ran, and its result said score="mean"."""
    with pytest.raises(InputError) as error:
        small_index.query(default_model, "Dogs bark.", 1, Query("embedding", 3, score="mean"))
    assert str(error.value) == MEAN_REFUSED
    result = small_index.query(default_model, "Dogs bark.", 1, Query("heads", 3, (1, 2), score="mean"))
    assert result.score == "mean" and result.score_max == 1.0


def test_probes_are_refused_on_an_exact_index_and_past_the_clusters(small_index, small_corpus, default_model, tmp_path):
    vector = small_index.vector_set("hidden", 3).decoded([7])[0]
    with pytest.raises(InputError) as error:
        small_index.search(Query("embedding", 3, probes=2), vector)
    assert str(error.value) == (
        "probes (--probes) is for approximate indexes; this index is exact (every vector is "
        "compared, there are no clusters to scan): leave probes out"
    )
    built = build_index(
        small_corpus, default_model, tmp_path / "ivf", options=BuildOptions(batch_tokens=64, approximate="always")
    )
    approximate = Index.open(built.directory)
    assert approximate.manifest.approximate_lists == 1
    with pytest.raises(InputError) as error:
        approximate.search(Query("embedding", 3, probes=2), vector)
    assert str(error.value) == "probes 2 is out of range: this index has 1 cluster, so probes is 1-1"
    assert len(approximate.search(Query("embedding", 3, probes=1, top=5), vector)[1]) == 5


def test_the_api_refuses_a_mean_score_outside_a_head_search_naming_the_field(client):  # noqa: F811
    response = client.post("/api/search", json={"corpus": SMALL, "text": PUB, "token": 2, "layer": 3, "score": "mean"})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "status": 400,
        "code": "invalid_input",
        "message": MEAN_REFUSED,
        "field": "score",
    }


def test_heads_of_an_embedding_search_pick_the_matches_attention(client):  # noqa: F811
    """The field report asked whether ``heads`` in an embedding search are used: they are, for the attention
    each match shows (the mean of those heads), not for the score."""
    query = {"corpus": SMALL, "text": PUB, "token": 2, "layer": 3, "top": 5}
    every = client.post("/api/search", json=query).json()
    first = client.post("/api/search", json={**query, "heads": [0]}).json()
    second = client.post("/api/search", json={**query, "heads": [1, 2]}).json()
    assert (every["heads"], first["heads"], second["heads"]) == (list(range(12)), [0], [1, 2])
    assert every["score_meaning"] == first["score_meaning"] == "cosine of the hidden states after layer 3 (at most 1)"
    for result in (first, second):
        assert [m["row"] for m in result["matches"]] == [m["row"] for m in every["matches"]]
        assert [m["score"] for m in result["matches"]] == [m["score"] for m in every["matches"]]
    assert any(not np.allclose(a["attention"], b["attention"]) for a, b in zip(first["matches"], second["matches"]))
