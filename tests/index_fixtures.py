"""What the index tests share: a small treebank written here, and indexes built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from attnscope.corpus import open_corpus
from attnscope.index import BuildOptions, Index, build_index

EWT_DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ud_english_ewt" / "en_ewt-ud-dev.conllu"


def _word(i: int, form: str, upos: str, head: int, deprel: str, misc: str = "_") -> str:
    return "\t".join([str(i), form, form.lower(), upos, "_", "_", str(head), deprel, "_", misc])


SMALL = [
    (
        "s1",
        "The girl ran to a local pub.",
        [
            ("The", "DET", 2, "det"),
            ("girl", "NOUN", 3, "nsubj"),
            ("ran", "VERB", 0, "root"),
            ("to", "ADP", 7, "case"),
            ("a", "DET", 7, "det"),
            ("local", "ADJ", 7, "amod"),
            ("pub", "NOUN", 3, "obl"),
            (".", "PUNCT", 3, "punct"),
        ],
    ),
    (
        "s2",
        "She walked home unbelievably fast.",
        [
            ("She", "PRON", 2, "nsubj"),
            ("walked", "VERB", 0, "root"),
            ("home", "ADV", 2, "advmod"),
            ("unbelievably", "ADV", 5, "advmod"),
            ("fast", "ADV", 2, "advmod"),
            (".", "PUNCT", 2, "punct"),
        ],
    ),
    (
        "s3",
        "Dogs bark at night.",
        [
            ("Dogs", "NOUN", 2, "nsubj"),
            ("bark", "VERB", 0, "root"),
            ("at", "ADP", 4, "case"),
            ("night", "NOUN", 2, "obl"),
            (".", "PUNCT", 2, "punct"),
        ],
    ),
    (
        "s4",
        "The city was loud and the pub was quiet.",
        [
            ("The", "DET", 2, "det"),
            ("city", "NOUN", 4, "nsubj"),
            ("was", "AUX", 4, "cop"),
            ("loud", "ADJ", 0, "root"),
            ("and", "CCONJ", 9, "cc"),
            ("the", "DET", 7, "det"),
            ("pub", "NOUN", 9, "nsubj"),
            ("was", "AUX", 9, "cop"),
            ("quiet", "ADJ", 4, "conj"),
            (".", "PUNCT", 4, "punct"),
        ],
    ),
]


def small_conllu() -> str:
    """The `SMALL` sentences as CoNLL-U, plus one with a multi-word token ("don't")."""
    parts = []
    for sent_id, text, words in SMALL:
        lines = [f"# sent_id = {sent_id}", f"# text = {text}"]
        lines += [
            _word(i + 1, *w, misc="SpaceAfter=No" if i + 2 <= len(words) and words[i + 1][0] == "." else "_")
            for i, w in enumerate(words)
        ]
        parts.append("\n".join(lines) + "\n\n")
    parts.append(
        "\n".join(
            [
                "# sent_id = s5",
                "# text = I don't run.",
                _word(1, "I", "PRON", 4, "nsubj"),
                "\t".join(["2-3", "don't"] + ["_"] * 8),
                _word(2, "do", "AUX", 4, "aux"),
                _word(3, "n't", "PART", 4, "advmod"),
                _word(4, "run", "VERB", 0, "root", "SpaceAfter=No"),
                _word(5, ".", "PUNCT", 4, "punct"),
            ]
        )
        + "\n\n"
    )
    return "".join(parts)


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("small") / "small.conllu"
    path.write_text(small_conllu(), encoding="utf-8")
    return open_corpus(path)


@pytest.fixture(scope="session")
def small_index(small_corpus, default_model, tmp_path_factory) -> Index:
    out = tmp_path_factory.mktemp("small-index") / "index"
    build_index(small_corpus, default_model, out, options=BuildOptions(batch_tokens=32))
    return Index.open(out)


@pytest.fixture(scope="session")
def ewt_index(default_model, tmp_path_factory) -> Index:
    """An index of the real EWT dev file (2,001 sentences) under the default model."""
    out = tmp_path_factory.mktemp("ewt-index") / "index"
    build_index(open_corpus(EWT_DEV), default_model, out)
    return Index.open(out)


ENTITY_SENTENCES = [
    ("e1", "Barack Obama visited Paris on Monday .", [2, 3, 0, 3, 6, 3, 3]),
    ("e2", "Google hired three engineers in London .", [2, 0, 4, 2, 6, 2, 2]),
    ("e3", "The cat slept .", [2, 3, 0, 3]),
]
"""Sentences with entities (forms split at spaces, 1-based heads): the corpus of `silver_index`."""


@pytest.fixture(scope="session")
def silver_index(default_model, tmp_path_factory) -> Index:
    """An index of `ENTITY_SENTENCES` with gold UPOS/DEP and silver entity types (directory name: "entities")."""
    lines = []
    for sent_id, text, heads in ENTITY_SENTENCES:
        lines += [f"# sent_id = {sent_id}", f"# text = {text}"]
        lines += [
            "\t".join([str(i), form, form.lower(), "X", "_", "_", str(head), "dep" if head else "root", "_", "_"])
            for i, (form, head) in enumerate(zip(text.split(), heads), 1)
        ]
        lines.append("")
    path = tmp_path_factory.mktemp("silver") / "entities.conllu"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path_factory.mktemp("silver-index") / "entities"
    build_index(open_corpus(path, silver_ner=True), default_model, out)
    return Index.open(out)


WRITTEN = (
    "I love the café in Zürich 😀.\nTokyo (東京) is big.\n\nThe naïve dog barked at me.\n"
    "He said \"hello\" and left!!! I don't e-mail York's 京都 office…  ok?!"
)
"""Raw text with accents, an emoji, CJK, punctuation runs and line breaks: the corpus of `written_index`
(issue 13's field report on byte-level BPE contexts, with a few written words added)."""


@pytest.fixture(scope="session")
def written_index(tiny, english_pipeline, tmp_path_factory):
    """``written_index("gpt2")``: an index of `WRITTEN`, annotated by spaCy's en_core_web_sm, under the tiny
    model of that tokenizer family (directory name "written"), built once per family."""
    cache: dict[str, Index] = {}

    def make(family: str) -> Index:
        if family not in cache:
            path = tmp_path_factory.mktemp(f"written-{family}") / "written.txt"
            path.write_text(WRITTEN, encoding="utf-8")
            out = tmp_path_factory.mktemp(f"written-index-{family}") / "written"
            build_index(open_corpus(path, spacy_pipeline=english_pipeline), tiny(family), out)
            cache[family] = Index.open(out)
        return cache[family]

    return make
