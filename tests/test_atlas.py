"""The head atlas as a library: computed over a corpus, checked against a per-sentence reference written
with plain loops, saved and read back, cached beside an index, and refusing bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import attnscope
from attnscope.atlas import (
    ATLAS_JSON,
    ATLAS_PARQUET,
    Atlas,
    atlas_for_index,
    compute_atlas,
    read_atlas,
    store,
    write_atlas,
)
from attnscope.corpus import open_corpus, word_of_tokens
from attnscope.errors import InputError
from attnscope.index import Index, IndexMismatchError


def conllu_word(i: int, form: str, upos: str, head: int | str, deprel: str, misc: str = "_") -> str:
    return "\t".join([str(i), form, form.lower(), upos, "_", "_", str(head), deprel, "_", misc])


SNIPPET = "\n".join(
    [
        "# sent_id = pub",
        "# text = The girl ran to a local pub.",
        conllu_word(1, "The", "DET", 2, "det"),
        conllu_word(2, "girl", "NOUN", 3, "nsubj"),
        conllu_word(3, "ran", "VERB", 0, "root"),
        conllu_word(4, "to", "ADP", 7, "case"),
        conllu_word(5, "a", "DET", 7, "det"),
        conllu_word(6, "local", "ADJ", 7, "amod"),
        conllu_word(7, "pub", "NOUN", 3, "obl", "SpaceAfter=No"),
        conllu_word(8, ".", "PUNCT", 3, "punct"),
        "",
        "# sent_id = dont",
        "# text = I don't run.",
        conllu_word(1, "I", "PRON", 4, "nsubj"),
        "\t".join(["2-3", "don't"] + ["_"] * 8),
        conllu_word(2, "do", "AUX", 4, "aux"),
        conllu_word(3, "n't", "PART", 4, "advmod"),
        conllu_word(4, "run", "VERB", 0, "root", "SpaceAfter=No"),
        conllu_word(5, ".", "PUNCT", 4, "punct"),
        "",
        "# sent_id = dogs",
        "# text = Dogs bark at night.",
        conllu_word(1, "Dogs", "NOUN", 2, "nsubj"),
        conllu_word(2, "bark", "VERB", 0, "root"),
        conllu_word(3, "at", "ADP", 4, "case"),
        conllu_word(4, "night", "NOUN", 2, "obl", "SpaceAfter=No"),
        conllu_word(5, ".", "PUNCT", 2, "punct"),
        "",
        "",
    ]
)
# Arcs per relation, counted by hand (roots left out), and the best fixed offset (head − dependent, the
# nearest to 0 among ties) with its accuracy:
#   det: The→girl +1, a→pub +2                    → +1, 1/2
#   nsubj: girl→ran +1, I→run +3, Dogs→bark +1    → +1, 2/3
#   case: to→pub +3, at→night +1                  → +1, 1/2
#   obl: pub→ran −4, night→bark −2                → −2, 1/2
#   punct: .→ran −5, .→run −1, .→bark −3          → −1, 1/3
#   amod: local→pub +1; aux: do→run +2; advmod: n't→run +1
PAIRS = {"det": 2, "nsubj": 3, "case": 2, "obl": 2, "punct": 3, "amod": 1, "aux": 1, "advmod": 1}
BASELINES = {
    "det": (1, 1 / 2),
    "nsubj": (1, 2 / 3),
    "case": (1, 1 / 2),
    "obl": (-2, 1 / 2),
    "punct": (-1, 1 / 3),
    "amod": (1, 1.0),
    "aux": (2, 1.0),
    "advmod": (1, 1.0),
}


@pytest.fixture(scope="module")
def snippet(tmp_path_factory):
    path = tmp_path_factory.mktemp("atlas") / "snippet.conllu"
    path.write_text(SNIPPET, encoding="utf-8")
    return open_corpus(path)


def reference(handle, corpus):
    """Pattern shares and relation accuracies sentence by sentence, token by token, with plain loops."""
    shape = handle.stacks[handle.main_stack]
    shares = {name: np.zeros((shape.layers, shape.heads)) for name in ("previous", "next", "self", "first", "special")}
    counts = dict.fromkeys(shares, 0)
    hits = {}
    for sentence in corpus.sentences:
        cap = attnscope.capture(handle, sentence.text, fields=["attentions"], top_k=0)
        weights, special, n = cap.attentions.astype(np.float64), cap.tokens.special, len(cap.tokens)
        rows = [q for q in range(n) if not special[q]]
        for q in rows:
            for name, key in (("previous", q - 1), ("next", q + 1), ("self", q), ("first", 0 if q > 0 else -1)):
                if 0 <= key < n:
                    shares[name] += weights[:, :, q, key]
                    counts[name] += 1
            shares["special"] += sum(weights[:, :, q, k] for k in range(n) if special[k])
            counts["special"] += 1
        word_of = word_of_tokens(sentence, cap.tokens)
        present = sorted({w for w in word_of if w is not None})
        tokens_of = {w: [t for t in range(n) if word_of[t] == w] for w in present}
        for layer in range(shape.layers):
            for h in range(shape.heads):

                def word_weight(a, b, head=weights[layer, h], tokens_of=tokens_of):
                    return np.mean([sum(head[t, u] for u in tokens_of[b]) for t in tokens_of[a]])

                def predict(a, word_weight=word_weight, present=present):
                    best = max((b for b in present if b != a), key=lambda b: word_weight(a, b))
                    return best if word_weight(a, best) > 0 else -1

                for d, word in enumerate(sentence.words):
                    if word.head is None or word.head < 0:
                        continue
                    for direction, query, answer in (
                        ("dependent_to_head", d, word.head),
                        ("head_to_dependent", word.head, d),
                    ):
                        key = (word.deprel, direction)
                        hits.setdefault(key, np.zeros((shape.layers, shape.heads)))
                        hits[key][layer, h] += predict(query) == answer
    means = {name: shares[name] / counts[name] for name in shares}
    accuracy = {key: value / PAIRS[key[0]] for key, value in hits.items()}
    return means, accuracy


@pytest.mark.parametrize("name", ["bert", "gpt2"])
def test_atlas_of_a_tiny_model_matches_a_per_sentence_reference(name, tiny, snippet):
    handle = tiny(name, head=False)
    atlas = compute_atlas(handle, snippet, batch_tokens=24)  # several padded batches
    means, accuracy = reference(handle, snippet)
    for share, expected in means.items():
        np.testing.assert_allclose(getattr(atlas.patterns, share), expected, atol=1e-5, err_msg=share)
    relations = atlas.relations
    assert dict(zip(relations.names, relations.pairs.tolist())) == PAIRS
    for (relation, direction), expected in accuracy.items():
        np.testing.assert_allclose(
            relations.accuracy(direction)[relations.position(relation)], expected, err_msg=f"{relation} {direction}"
        )
    assert atlas.sentences == 3 and atlas.layers == 2 and atlas.heads == 4 and atlas.notices == ()


def test_relations_are_ordered_by_frequency_with_hand_counted_baselines(tiny, snippet):
    handle = tiny("bert", head=False)
    atlas = compute_atlas(handle, snippet)
    r = atlas.relations
    assert r.names == ("nsubj", "punct", "case", "det", "obl", "advmod", "amod", "aux")
    for relation, (offset, accuracy) in BASELINES.items():
        i = r.position(relation)
        assert (int(r.baseline_offset[i]), float(r.baseline[i])) == pytest.approx((offset, accuracy)), relation
    layer, head, best = r.best("nsubj", "dependent_to_head")
    assert (
        best == r.dependent_to_head[r.position("nsubj")].max() == r.dependent_to_head[r.position("nsubj"), layer, head]
    )
    # every ordinary token of the three sentences is a query row
    special = [attnscope.encode(handle, sentence.text).special for sentence in snippet.sentences]
    assert atlas.tokens == sum(flags.count(False) for flags in special)


def test_the_default_models_heads_get_named_patterns(default_model, snippet):
    atlas = compute_atlas(default_model, snippet)
    labels = {label for row in atlas.patterns.labels for label in row}
    assert {"first", "broad"} <= labels
    previous = atlas.heads_with("previous")
    assert previous and previous[0][:2] == (0, 2) and previous[0][2] > 0.9  # MiniLM's previous-token head
    assert all(a[2] >= b[2] for a, b in zip(previous, previous[1:]))


def test_json_and_parquet_hold_the_atlas(tiny, snippet, tmp_path):
    atlas = compute_atlas(tiny("bert", head=False), snippet)
    json_path, parquet_path = write_atlas(atlas, tmp_path / "out")
    assert (json_path.name, parquet_path.name) == (ATLAS_JSON, ATLAS_PARQUET)
    again = read_atlas(tmp_path / "out")
    assert again.patterns.labels == atlas.patterns.labels and again.relations.names == atlas.relations.names
    np.testing.assert_allclose(again.patterns.entropy, atlas.patterns.entropy, atol=1e-6)
    np.testing.assert_allclose(again.relations.head_to_dependent, atlas.relations.head_to_dependent, atol=1e-6)
    document = json.loads(json_path.read_text())
    assert document["format"] == "attnscope-atlas" and document["patterns"]["labels"] == atlas.patterns.labels
    assert document["relations"][0]["relation"] == "nsubj" and document["relations"][0]["pairs"] == 3
    table = pq.read_table(parquet_path).to_pydict()
    assert table["layer"] == [0, 0, 0, 0, 1, 1, 1, 1] and table["head"] == [0, 1, 2, 3] * 2
    assert table["previous"] == pytest.approx(atlas.patterns.previous.reshape(-1).tolist())
    assert table["nsubj dependent_to_head"] == pytest.approx(atlas.relations.dependent_to_head[0].reshape(-1).tolist())
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_a_file_that_is_not_an_atlas_is_refused(tmp_path):
    (tmp_path / ATLAS_JSON).write_text('{"format": "something else"}')
    with pytest.raises(store.AtlasFormatError, match="not an atlas"):
        read_atlas(tmp_path)
    with pytest.raises(store.AtlasFormatError, match="no atlas at"):
        read_atlas(tmp_path / "missing")


def test_a_corpus_without_dependency_annotations_gets_patterns_and_a_notice(tiny, tmp_path):
    path = tmp_path / "bare.conllu"
    path.write_text(
        "# text = Dogs bark.\n"
        + conllu_word(1, "Dogs", "NOUN", "_", "_")
        + "\n"
        + conllu_word(2, "bark", "VERB", "_", "_", "SpaceAfter=No")
        + "\n"
        + conllu_word(3, ".", "PUNCT", "_", "_")
        + "\n\n",
        encoding="utf-8",
    )
    handle = tiny("bert", head=False)
    atlas = compute_atlas(handle, open_corpus(path))
    assert atlas.relations is None
    assert "no dependency annotations" in atlas.notices[0] and "pattern scores are computed" in atlas.notices[0]
    assert atlas.patterns.previous.shape == (2, 4)
    assert atlas.tokens == len(attnscope.encode(handle, "Dogs bark.")) - 2  # all but [CLS] and [SEP]
    assert Atlas.from_dict(atlas.to_dict()).relations is None
    with pytest.raises(InputError, match="no dependency annotations"):
        compute_atlas(handle, open_corpus(path), relations=["nsubj"])


@pytest.mark.parametrize(
    "relation,message",
    [
        (
            "nsubjpass",
            "relation 'nsubjpass' is not in the corpus; it has: nsubj, punct, case, det, obl, advmod, amod, aux",
        ),
        ("root", "relation 'root' has no head word to attend to"),
    ],
)
def test_an_unknown_relation_is_refused_before_the_model_runs(tiny, snippet, relation, message, monkeypatch):
    monkeypatch.setattr("attnscope.atlas.compute._run", lambda *a, **k: pytest.fail("the model ran"))
    with pytest.raises(InputError) as error:
        compute_atlas(tiny("bert", head=False), snippet, relations=["det", relation])
    assert message in str(error.value)


def test_chosen_relations_are_kept_in_the_order_given(tiny, snippet):
    atlas = compute_atlas(tiny("bert", head=False), snippet, relations=["obl", "det"])
    assert atlas.relations.names == ("obl", "det")
    assert atlas.relations.pairs.tolist() == [2, 2]
    assert atlas.select_relations(["det"]).relations.names == ("det",)
    with pytest.raises(InputError, match="'amod' is not in the corpus; it has: obl, det"):
        atlas.select_relations(["amod"])


@pytest.fixture
def index_copy(small_index, tmp_path):
    """A copy of the shared small index, so that the atlas files written beside it stay in this test."""
    return Path(shutil.copytree(small_index.directory, tmp_path / "index"))


def test_an_index_atlas_is_computed_once_cached_beside_it_and_equal_to_the_corpus_atlas(
    index_copy, small_corpus, default_model, monkeypatch
):
    cached = atlas_for_index(index_copy, default_model)
    assert (index_copy / ATLAS_JSON).is_file() and (index_copy / ATLAS_PARQUET).is_file()
    direct = compute_atlas(default_model, small_corpus)
    assert cached.relations.names == direct.relations.names
    np.testing.assert_array_equal(cached.relations.pairs, direct.relations.pairs)
    np.testing.assert_allclose(cached.relations.dependent_to_head, direct.relations.dependent_to_head, atol=1e-6)
    np.testing.assert_allclose(cached.patterns.special, direct.patterns.special, atol=1e-6)
    assert cached.patterns.labels == direct.patterns.labels
    monkeypatch.setattr(store, "score_sentences", lambda *a, **k: pytest.fail("the atlas was computed again"))
    again = atlas_for_index(Index.open(index_copy), default_model)  # an open Index works too
    assert again.to_dict() == cached.to_dict()
    assert atlas_for_index(index_copy, default_model, relations=["det"]).relations.names == ("det",)
    with pytest.raises(InputError, match="'dobj' is not in the corpus"):
        atlas_for_index(index_copy, default_model, relations=["dobj"])


def test_a_stale_cached_atlas_is_computed_again(index_copy, default_model):
    atlas = atlas_for_index(index_copy, default_model)
    document = atlas.to_dict()
    document["corpus_checksum"] = "0" * 64
    (index_copy / ATLAS_JSON).write_text(json.dumps(document))
    assert atlas_for_index(index_copy, default_model).corpus_checksum == atlas.corpus_checksum != "0" * 64
    (index_copy / ATLAS_JSON).write_text("{not json")
    assert atlas_for_index(index_copy, default_model).corpus_checksum == atlas.corpus_checksum


def test_an_index_from_another_model_is_refused(small_index, tiny):
    with pytest.raises(IndexMismatchError, match="built with the tokenizer of"):
        atlas_for_index(small_index, tiny("gpt2", head=False))
    with pytest.raises(IndexMismatchError, match="built with the weights of"):
        atlas_for_index(small_index, tiny("bert", head=False))
    assert not (small_index.directory / ATLAS_JSON).exists()
