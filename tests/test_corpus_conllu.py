"""S1: reading CoNLL-U strictly: words with spans, multi-word tokens, empty nodes, and errors that name file and
line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnscope.corpus import parse_conllu, read_conllu
from attnscope.errors import CorpusFormatError, InputError

from .corpus_helpers import assert_one_tree, conllu, mwt, row

DONT = [
    "# sent_id = s1",
    "# text = I don't know.",
    row("1", "I", "PRON", "4", "nsubj"),
    mwt("2-3", "don't"),
    row("2", "do", "AUX", "4", "aux", lemma="do"),
    row("3", "n't", "PART", "4", "advmod", lemma="not"),
    row("4", "know", "VERB", "0", "root", misc="SpaceAfter=No"),
    row("5", ".", "PUNCT", "4", "punct"),
]
DEL = [
    "# sent_id = es-1",
    "# text = Vino del pueblo.",
    row("1", "Vino", "VERB", "0", "root", lemma="venir"),
    mwt("2-3", "del"),
    row("2", "de", "ADP", "4", "case"),
    row("3", "el", "DET", "4", "det"),
    row("4", "pueblo", "NOUN", "1", "obl", misc="SpaceAfter=No"),
    row("5", ".", "PUNCT", "1", "punct"),
]


def write(tmp_path: Path, text: str, name: str = "sample.conllu") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def read(tmp_path: Path, text: str) -> list:
    return list(read_conllu(write(tmp_path, text)))


def spans(sentence) -> list[tuple[str, str]]:
    return [(word.form, sentence.text[word.start : word.end]) for word in sentence.words]


def test_words_carry_gold_annotations_and_zero_based_heads(tmp_path):
    (sentence,) = read(tmp_path, conllu(DONT))
    assert sentence.sent_id == "s1" and sentence.text == "I don't know." and sentence.line == 1
    assert sentence.source == "sample.conllu"
    assert [w.upos for w in sentence.words] == ["PRON", "AUX", "PART", "VERB", "PUNCT"]
    assert [w.head for w in sentence.words] == [3, 3, 3, -1, 3]
    assert [w.deprel for w in sentence.words] == ["nsubj", "aux", "advmod", "root", "punct"]
    assert sentence.words[2].lemma == "not"
    assert sentence.words[0].xpos is None and sentence.words[0].feats is None  # "_" means no value
    assert all(w.ner is None and w.ner_iob is None for w in sentence.words)


def test_multiword_token_dont_is_split_into_do_and_nt_spans(tmp_path):
    (sentence,) = read(tmp_path, conllu(DONT))
    assert spans(sentence) == [("I", "I"), ("do", "do"), ("n't", "n't"), ("know", "know"), (".", ".")]
    assert [(w.start, w.end) for w in sentence.words[1:3]] == [(2, 4), (4, 7)]
    assert [w.mwt for w in sentence.words] == [None, "don't", "don't", None, None]


def test_multiword_token_whose_words_do_not_spell_it_gives_each_word_the_whole_span(tmp_path):
    (sentence,) = read(tmp_path, conllu(DEL))
    de, el = sentence.words[1], sentence.words[2]
    assert (de.start, de.end) == (el.start, el.end) == (5, 8)
    assert sentence.text[de.start : de.end] == "del"
    assert de.mwt == el.mwt == "del"
    assert spans(sentence)[3:] == [("pueblo", "pueblo"), (".", ".")]


def test_empty_nodes_are_skipped(tmp_path):
    lines = DONT[:5] + [row("3.1", "know", "VERB")] + DONT[5:]
    (sentence,) = read(tmp_path, conllu(lines))
    assert [w.form for w in sentence.words] == ["I", "do", "n't", "know", "."]
    assert [w.head for w in sentence.words] == [3, 3, 3, -1, 3]


def test_missing_text_is_rebuilt_with_space_after_no(tmp_path):
    lines = [line for line in DONT if not line.startswith("# text")]
    lines[2] = mwt("2-3", "don't", misc="SpaceAfter=No")  # no space between "don't" and "know"
    (sentence,) = read(tmp_path, conllu(lines))
    assert sentence.text == "I don'tknow."
    assert spans(sentence)[1:] == [("do", "do"), ("n't", "n't"), ("know", "know"), (".", ".")]


def test_sentences_without_sent_id_are_numbered_after_the_file_and_lines_are_counted(tmp_path):
    first = [line for line in DONT if not line.startswith("# sent_id")]
    second = [line for line in DEL if not line.startswith("# sent_id")]
    sentences = read(tmp_path, "# newdoc id = d1\n" + conllu(first, second))
    assert [s.sent_id for s in sentences] == ["sample-1", "sample-2"]
    assert [s.line for s in sentences] == [1, 2 + len(first) + 1]


def test_crlf_line_ends_and_extra_blank_lines_are_accepted(tmp_path):
    text = conllu(DONT).replace("\n", "\r\n") + "\r\n\r\n" + conllu(DEL)
    sentences = read(tmp_path, text)
    assert [s.text for s in sentences] == ["I don't know.", "Vino del pueblo."]
    assert sentences[0].words[-1].form == "."


# Each malformed input, the line its error must name, and a fragment of the message.
MALFORMED = {
    "nine columns": (DONT[:2] + [row("1", "I")[:-2]], 3, "9 tab-separated columns; expected 10"),
    "spaces for tabs": (DONT[:2] + ["1 I i PRON _ _ 0 root _ _"], 3, "CoNLL-U needs tabs"),
    "bad ID": (DONT[:2] + [row("1", "I"), row("x2", "don't")], 4, "bad ID 'x2'"),
    "ID zero": (DONT[:2] + [row("0", "I")], 3, "bad ID '0'"),
    "ID out of order": (DONT[:2] + [row("1", "I"), row("3", "don't")], 4, "word ID 3 is out of order; expected 2"),
    "non-integer HEAD": (DONT[:4] + [row("2", "do", head="two")] + DONT[5:], 5, "HEAD 'two' is not an integer"),
    "negative HEAD": (DONT[:4] + [row("2", "do", head="-1")] + DONT[5:], 5, "HEAD '-1' is not an integer"),
    "HEAD out of range": (DONT[:6] + [row("4", "know", head="9")] + DONT[7:], 7, "HEAD 9 is out of range; expected 0"),
    "HEAD is the word": (DONT[:6] + [row("4", "know", head="4")] + DONT[7:], 7, "HEAD 4 is the word itself"),
    "MWT without its words": (DONT[:3] + [mwt("2-3", "don't"), row("2", "do")], 4, "not followed by all its words"),
    "MWT cut by another": (DONT[:3] + [mwt("2-3", "don't"), mwt("3-4", "x")], 4, "not followed by all its words"),
    "MWT after its start": (
        DONT[:3] + [mwt("3-4", "don't")],
        4,
        "starts at word 3; expected it to start at the next word, 2",
    ),
    "MWT reversed": (DONT[:3] + [mwt("2-2", "don't")], 4, "range 2-2 is empty or reversed"),
    "form not in text": (
        DONT[:6] + [row("4", "knows", head="0")] + DONT[7:],
        7,
        "the form 'knows' is not in the sentence text",
    ),
    "MWT form not in text": (DONT[:3] + [mwt("2-3", "won't")] + DONT[4:], 4, 'the form "won\'t" is not in'),
    "text longer than forms": (DONT[:-1], 2, "the text goes on after the last word's form: '.'"),
    "no text and no forms": (
        ["# sent_id = s9", row("1", "_"), row("2", "_")],
        1,
        "no '# text' comment and no word forms",
    ),
    "comment after words": (DONT[:3] + ["# note = late"] + DONT[3:], 4, "comment line after the sentence's word lines"),
    "comments only": (["# sent_id = s1", "# text = Hello"], 1, "comment lines with no word lines"),
    "empty column": (DONT[:2] + [row("1", "I", "PRON").replace("PRON", "")], 3, "the UPOS column is empty"),
    "second text": (DONT[:2] + ["# text = again"] + DONT[2:], 3, "a second '# text' comment"),
    "empty text": (["# text =", row("1", "I")], 1, "'# text' has no value"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_line_raises_error_naming_file_and_line(tmp_path, case):
    lines, line, fragment = MALFORMED[case]
    good = conllu(DEL)  # a valid sentence first, so that line numbers count from a later start
    offset = good.count("\n")
    path = write(tmp_path, good + conllu(lines))
    with pytest.raises(CorpusFormatError) as caught:
        list(read_conllu(path))
    message = str(caught.value)
    assert message.startswith(f"{path}:{offset + line}: "), message
    assert fragment in message
    assert "; " in message  # what is wrong; what is expected
    assert isinstance(caught.value, InputError)


def test_duplicate_sent_id_names_the_second_and_first_lines(tmp_path):
    path = write(tmp_path, conllu(DONT, DONT))
    with pytest.raises(
        CorpusFormatError, match=re.escape(f"{path}:10: sent_id 's1' is already used by the sentence on line 1")
    ):
        list(read_conllu(path))


def test_latin1_file_is_refused_with_line_byte_offset_and_advice(tmp_path):
    text = conllu(DONT) + conllu(["# text = café", row("1", "café", "NOUN", "0", "root")])
    path = tmp_path / "latin1.conllu"
    path.write_bytes(text.encode("latin-1"))
    offset = text.encode("latin-1").index("é".encode("latin-1"))
    with pytest.raises(CorpusFormatError) as caught:
        list(read_conllu(path))
    message = str(caught.value)
    assert message.startswith(f"{path}:10: byte {offset} (0xe9) is not valid UTF-8")
    assert "re-encode the file as UTF-8" in message


def test_nul_bytes_are_refused_as_binary(tmp_path):
    path = tmp_path / "binary.conllu"
    path.write_bytes(conllu(DONT).encode() + b"\x00\x01\x02")
    with pytest.raises(CorpusFormatError, match=r":10: NUL character .*binary data"):
        list(read_conllu(path))


@pytest.mark.parametrize("text", ["", "\n\n  \n", "# just a comment\n"])
def test_file_without_sentences_is_an_error(tmp_path, text):
    path = write(tmp_path, text)
    expected = "holds no sentences" if not text.strip() else "comment lines with no word lines"
    with pytest.raises(CorpusFormatError, match=re.escape(expected)):
        list(read_conllu(path))


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        list(read_conllu(tmp_path / "absent.conllu"))


def test_utf8_bom_is_ignored(tmp_path):
    path = tmp_path / "bom.conllu"
    path.write_bytes(b"\xef\xbb\xbf" + conllu(DONT).encode())
    (sentence,) = read_conllu(path)
    assert sentence.sent_id == "s1"


# Property tests: whatever the input, the parser returns consistent sentences or raises CorpusFormatError.


def _check_consistent(sentences) -> None:
    for sentence in sentences:
        assert sentence.words
        for word in sentence.words:
            assert 0 <= word.start < word.end <= len(sentence.text)
            if word.mwt is None:
                assert sentence.text[word.start : word.end] == word.form
            assert word.head is None or -1 <= word.head < len(sentence.words)
        heads = [word.head for word in sentence.words]
        if heads != [None] * len(heads):  # with dependencies: one tree (one root, no cycles)
            assert_one_tree(heads)


def _parse_or_format_error(text: str) -> None:
    try:
        sentences = list(parse_conllu(text, "fuzz.conllu"))
    except CorpusFormatError as error:
        assert str(error).startswith("fuzz.conllu")
    else:
        _check_consistent(sentences)


@given(st.text(alphabet=st.sampled_from("12-.#= \t\n_abé\r\x00"), max_size=300))
@settings(max_examples=400, deadline=None)
def test_random_text_parses_or_raises_format_error(text):
    _parse_or_format_error(text)


IDS = st.sampled_from(["1", "2", "3", "4", "1-2", "2-3", "3-4", "2-1", "1.1", "0", "x", "_", "01"])
FORMS = st.sampled_from(["a", "b", "ab", "_", "a b", "n't", "do"])
HEADS = st.sampled_from(["0", "1", "2", "3", "5", "_", "-1", "x"])
MISC = st.sampled_from(["_", "SpaceAfter=No", "A=B|SpaceAfter=No"])
WORD_LINES = st.builds(lambda i, f, h, m: row(i, f, head=h, misc=m), IDS, FORMS, HEADS, MISC)
COMMENTS = st.sampled_from(["# text = a b", "# text = ab", "# text = do n't", "# sent_id = s", "# x", "#"])
LINES = st.lists(st.one_of(WORD_LINES, WORD_LINES, COMMENTS, st.just(""), st.just("1\ta")), max_size=14)


@st.composite
def sentence_lines(draw) -> list[str]:
    """A sentence that is often valid: sequential IDs, heads in or near range, maybe an MWT, maybe one line spoiled."""
    forms = draw(st.lists(FORMS, min_size=1, max_size=6))
    heads = [draw(st.integers(0, len(forms))) for _ in forms]
    lines = [
        row(str(i), form, head=str(0 if head == i else head), misc=draw(MISC))
        for i, (form, head) in enumerate(zip(forms, heads), 1)
    ]
    if len(forms) > 1 and draw(st.booleans()):
        first = draw(st.integers(1, len(forms) - 1))
        lines.insert(
            first - 1, mwt(f"{first}-{first + 1}", draw(st.sampled_from([forms[first - 1] + forms[first], "del", "_"])))
        )
    if draw(st.booleans()):
        lines.insert(0, "# text = " + draw(st.sampled_from([" ", "", "  "])).join(forms))
    if draw(st.integers(0, 3)) == 0:
        lines[draw(st.integers(0, len(lines) - 1))] = draw(st.one_of(WORD_LINES, COMMENTS, st.just("1\ta")))
    return lines


@given(LINES)
@settings(max_examples=400, deadline=None)
def test_random_conllu_lines_parse_or_raise_format_error(lines):
    _parse_or_format_error("\n".join(lines) + "\n")


@given(st.lists(sentence_lines(), min_size=1, max_size=3))
@settings(max_examples=600, deadline=None)
def test_random_near_valid_sentences_parse_or_raise_format_error(sentences):
    _parse_or_format_error(conllu(*sentences))


@given(st.binary(max_size=200))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_bytes_read_or_raise_format_error(tmp_path, data):
    path = tmp_path / "fuzz.conllu"
    path.write_bytes(data)
    try:
        sentences = list(read_conllu(path))
    except CorpusFormatError as error:
        assert str(error).startswith(str(path))
    else:
        _check_consistent(sentences)
