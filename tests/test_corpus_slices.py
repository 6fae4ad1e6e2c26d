"""B6: corpora read one slice at a time: slices planned from the bytes alone, each read on its own, the
slices in order equal to the whole read (EWT, a CoNLL-U directory, raw text through spaCy); the checks
of the whole read made while planning; sources and slices as JSON."""

from __future__ import annotations

import json
import tracemalloc

import pytest
import spacy

from attnscope.corpus import (
    DEFAULT_NER_PIPELINE,
    CorpusSlice,
    CorpusSource,
    corpus_source,
    fields_present,
    open_corpus,
    plan_slices,
    read_slice,
)
from attnscope.errors import CorpusError

from .corpus_helpers import EWT_DIR, mwt, row

TARGETS = (1, 120, 1 << 30)  # one sentence (or paragraph) per slice, a few, one slice per file


def read_all(source: CorpusSource, target: int, cache: dict | None = None) -> tuple[list, list[CorpusSlice]]:
    pieces = plan_slices(source, target)
    return [s for piece in pieces for s in read_slice(source, piece, cache)], pieces


def check_cover(source: CorpusSource, pieces: list[CorpusSlice]) -> None:
    """The slices cover every byte of every file in order, each starting at the line it says."""
    for number, path in enumerate(source.paths):
        mine = [p for p in pieces if p.file == number]
        data = path.read_bytes()
        assert mine[0].start == 0 and mine[-1].end == len(data) and mine[0].line == 1
        assert all(a.end == b.start for a, b in zip(mine, mine[1:]))
        assert all(p.line == data.count(b"\n", 0, p.start) + 1 and p.size > 0 for p in mine)
        assert [p.sentence for p in mine] == sorted(p.sentence for p in mine)


@pytest.fixture(scope="module")
def ewt_corpus():
    return open_corpus(EWT_DIR)


@pytest.mark.parametrize("target", [1, 60_000, 1 << 30])
def test_ewt_slices_read_in_order_equal_the_whole_read(ewt_corpus, target):
    source = ewt_corpus.source()
    assert source.format == "conllu" and source.ner_pipeline == DEFAULT_NER_PIPELINE
    sentences, pieces = read_all(source, target)
    assert sentences == list(ewt_corpus.sentences)  # ids, text, words, lines, silver entities
    assert fields_present(sentences) == ewt_corpus.fields
    check_cover(source, pieces)
    expected = {1: len(ewt_corpus), 1 << 30: 2}
    if target in expected:
        assert len(pieces) == expected[target]


def conllu_sentence(words: list[str], sent_id: str | None = None, end: str = "\n") -> str:
    lines = ([f"# sent_id = {sent_id}"] if sent_id else []) + [f"# text = {' '.join(words)}"]
    lines += [row(str(i), w, "X", "0" if i == 1 else "1", "root" if i == 1 else "dep") for i, w in enumerate(words, 1)]
    return end.join(lines) + end


@pytest.fixture
def conllu_dir(tmp_path):
    """Two CoNLL-U files: ids given and not, a multi-word token, CRLF line ends, a BOM, blank lines of
    spaces and several blank lines between sentences."""
    folder = tmp_path / "bank"
    folder.mkdir()
    first = "\ufeff\n" + conllu_sentence(["Dogs", "bark"], "a1") + "\n  \n\n"
    first += "# text = I don't run\n" + "\n".join(
        [
            row("1", "I", "PRON", "3", "nsubj"),
            mwt("2-3", "don't"),
            row("2", "do", "AUX", "4", "aux"),
            row("3", "n't", "PART", "4", "advmod"),
            row("4", "run", "VERB", "0", "root"),
        ]
    )
    first += "\n\n" + conllu_sentence(["Birds", "sing", "loudly"]) + "\n" + conllu_sentence(["Cats", "purr"])
    (folder / "a.conllu").write_bytes(first.encode("utf-8"))
    second = (
        conllu_sentence(["Rain", "falls"], "b1", "\r\n") + "\r\n" + conllu_sentence(["Snow", "melts"], None, "\r\n")
    )
    (folder / "b.conllu").write_bytes(second.encode("utf-8"))
    return folder


@pytest.mark.parametrize("silver", [False, True])
def test_conllu_directory_slices_equal_the_whole_read(conllu_dir, silver):
    corpus = open_corpus(conllu_dir, silver_ner=silver)
    assert [s.sent_id for s in corpus.sentences] == ["a1", "a-2", "a-3", "a-4", "b1", "b-2"]
    for target in TARGETS:
        sentences, pieces = read_all(corpus.source(), target)
        assert sentences == list(corpus.sentences)
        assert fields_present(sentences) == corpus.fields
        check_cover(corpus.source(), pieces)
    assert len(plan_slices(corpus.source(), 1)) == 6 and len(plan_slices(corpus.source(), 1 << 30)) == 2


RAW = (
    "\ufeff\n  \nThe president flew to Washington on Tuesday.  He met John Smith at the White House.\n"
    "\n"
    "   Dogs bark loudly at night.\r\n"
    "They don't stop until morning.\n"
    "\n \t\n\n"
    "Is this the United Nations? Yes, it is.\n"
    "\r\n"
    "A last paragraph, without a line end."
)


@pytest.fixture
def raw_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(RAW.encode("utf-8"))
    return path


def test_text_slices_through_spacy_equal_the_whole_read(raw_file, english_pipeline):
    corpus = open_corpus(raw_file, spacy_pipeline=english_pipeline)
    assert [s.sent_id for s in corpus.sentences] == [
        "notes-1-1",
        "notes-1-2",
        "notes-2-1",
        "notes-2-2",
        "notes-3-1",
        "notes-3-2",
        "notes-4-1",
    ]
    assert [s.line for s in corpus.sentences] == [3, 3, 5, 6, 10, 10, 12]
    for target in TARGETS:
        sentences, pieces = read_all(corpus.source(), target)
        assert sentences == list(corpus.sentences)
        assert fields_present(sentences) == corpus.fields
        check_cover(corpus.source(), pieces)
    assert [p.sentence for p in plan_slices(corpus.source(), 1)] == [0, 1, 2, 3]


def test_a_source_and_its_slices_travel_as_json_and_load_the_pipeline_by_name(raw_file, english_pipeline):
    corpus = open_corpus(raw_file, spacy_pipeline=english_pipeline)  # given loaded: named by its package
    source = corpus.source()
    assert source.spacy_pipeline == DEFAULT_NER_PIPELINE and source.annotator == corpus.annotator
    travelled = CorpusSource.from_dict(json.loads(json.dumps(source.to_dict())))
    assert travelled == source and travelled.spacy_nlp is None
    pieces = [CorpusSlice.from_dict(json.loads(json.dumps(p.to_dict()))) for p in plan_slices(source, 1)]
    assert pieces == plan_slices(source, 1)
    cache: dict = {}
    assert [s for p in pieces for s in read_slice(travelled, p, cache)] == list(corpus.sentences)
    assert list(cache) == [DEFAULT_NER_PIPELINE]
    named = corpus_source(raw_file, spacy_pipeline=DEFAULT_NER_PIPELINE)
    assert named == source and named.checksum == corpus.checksum


def test_a_pipeline_that_is_not_the_planned_one_is_refused(raw_file, english_pipeline):
    source = CorpusSource.from_dict(
        {**corpus_source(raw_file, spacy_pipeline=english_pipeline).to_dict(), "annotator": "spacy en_other 9.9.9"}
    )
    with pytest.raises(CorpusError, match=r"planned with the spaCy pipeline 'spacy en_other 9\.9\.9'.*plan the"):
        read_slice(source, plan_slices(source, 1)[0], {})


def test_a_changed_file_or_a_slice_of_another_corpus_is_refused(conllu_dir):
    source = corpus_source(conllu_dir)
    pieces = plan_slices(source, 1)
    path = conllu_dir / "a.conllu"
    path.write_bytes(path.read_bytes().replace(b"Dogs", b"Hogs"))
    with pytest.raises(CorpusError, match=r"a\.conllu: bytes 0-\d+ \(from line 1\) are not those planned"):
        read_slice(source, pieces[0])
    assert read_slice(source, pieces[1])[0].sent_id == "a-2"  # untouched bytes read as before
    with pytest.raises(CorpusError, match=r"slice of file 5, but the corpus 'bank' has 2 file\(s\)"):
        read_slice(source, CorpusSlice(5, 0, 10, 1, 0))


def errors_of(call) -> tuple[type, str]:
    with pytest.raises(CorpusError) as caught:
        call()
    return type(caught.value), str(caught.value)


@pytest.mark.parametrize(
    "files",
    [
        {"a": [["x"], ["y"]], "b": [["z"]]},  # no ids: a-1, a-2, b-1
        {"a": [("s1", ["x"]), ("s2", ["y"])], "b": [("s3", ["z"]), ("s1", ["w"])]},  # across files
        {"a": [("s1", ["x"]), ("s2", ["y"]), ("s1", ["w"])]},  # within a file
        {"a": [("a-2", ["x"]), ["y"]]},  # a given id equal to a made one
        {"a": [("s1", ["x"]), ("s1", ["y"])], "b": [("s2", ["z"]), ("s2", ["w"])]},  # the first file's first
        {"a": [("s9", ["x"])], "b": [("s9", ["y"]), ("s9", ["z"])]},  # within b before across a and b
    ],
)
def test_planning_refuses_duplicate_sentence_ids_as_the_whole_read_does(tmp_path, files):
    for name, sentences in files.items():
        text = "\n".join(conllu_sentence(s) if isinstance(s, list) else conllu_sentence(s[1], s[0]) for s in sentences)
        (tmp_path / f"{name}.conllu").write_text(text, encoding="utf-8")
    whole = None
    try:
        open_corpus(tmp_path)
    except CorpusError as error:
        whole = (type(error), str(error))
    source = corpus_source(tmp_path)
    if whole is None:
        assert len(plan_slices(source, 1)) == sum(len(s) for s in files.values())
    else:
        assert errors_of(lambda: plan_slices(source, 1)) == whole
        assert "already used by" in whole[1]
    assert (whole is None) == ("s1" not in str(files) and "s9" not in str(files) and "a-2" not in str(files))


def test_planning_makes_the_whole_reads_encoding_and_length_checks(tmp_path):
    bad = tmp_path / "latin.conllu"
    bad.write_bytes(conllu_sentence(["Un", "café"]).encode("latin-1"))
    assert errors_of(lambda: plan_slices(corpus_source(bad), 100)) == errors_of(lambda: open_corpus(bad))
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"Fine.\n\nNot \x00 fine.\n")
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    source = corpus_source(nul, spacy_pipeline=nlp)
    assert errors_of(lambda: plan_slices(source, 100)) == errors_of(lambda: open_corpus(nul, spacy_pipeline=nlp))
    assert "nul.txt:3: NUL character at column 5" in errors_of(lambda: plan_slices(source, 100))[1]
    long = tmp_path / "long.txt"
    long.write_text("Short.\n\n" + "word " * 30 + "\nmore words.\n", encoding="utf-8")
    nlp.max_length = 100
    source = corpus_source(long, spacy_pipeline=nlp)
    found = errors_of(lambda: plan_slices(source, 1 << 20))
    assert (
        found == errors_of(lambda: open_corpus(long, spacy_pipeline=nlp)) and "long.txt:3: a paragraph of" in found[1]
    )
    empty = tmp_path / "empty.conllu"
    empty.write_text("\n  \n", encoding="utf-8")
    assert errors_of(lambda: plan_slices(corpus_source(empty), 1)) == errors_of(lambda: open_corpus(empty))
    with pytest.raises(CorpusError, match=r"target_bytes must be a positive number of bytes, got 0"):
        plan_slices(corpus_source(bad), 0)


def test_planning_holds_one_line_at_a_time(tmp_path):
    """Planning a 6 MB text file allocates far less than the file: lines are streamed, nothing is kept."""
    path = tmp_path / "big.txt"
    paragraph = "A sentence of some words, repeated to make a long file. " * 8
    path.write_text(("\n\n".join([paragraph] * 12_000)) + "\n", encoding="utf-8")
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    source = corpus_source(path, spacy_pipeline=nlp)
    tracemalloc.start()
    try:
        pieces = plan_slices(source, 1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert path.stat().st_size > 5_000_000 and len(pieces) == 6
    assert peak < 200_000, peak


@pytest.mark.parametrize(
    "data, message",
    [
        ([], "expected a JSON object, got list"),
        ({"file": 0, "start": 0, "end": 1, "line": 1}, "missing sentence"),
        ({"file": 0, "start": 5, "end": 1, "line": 1, "sentence": 0}, "expected 0 <= start <= end"),
        ({"file": "0", "start": 0, "end": 1, "line": 1, "sentence": 0}, "file must be an integer, got '0'"),
    ],
)
def test_a_malformed_slice_is_refused_by_name(data, message):
    with pytest.raises(CorpusError, match=message):
        CorpusSlice.from_dict(data)


def test_a_malformed_source_is_refused_by_name(conllu_dir):
    good = corpus_source(conllu_dir).to_dict()
    with pytest.raises(CorpusError, match=r"format 'csv' is not one of conllu, text"):
        CorpusSource.from_dict({**good, "format": "csv"})
    with pytest.raises(CorpusError, match=r"files must be a non-empty list of paths"):
        CorpusSource.from_dict({**good, "files": []})


def test_a_corpus_made_by_hand_has_no_source(ewt_corpus):
    from dataclasses import replace

    with pytest.raises(CorpusError, match=r"was not opened by open_corpus"):
        replace(ewt_corpus, origin=None).source()
