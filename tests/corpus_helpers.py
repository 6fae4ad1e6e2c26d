"""What the corpus tests share: where the real EWT files are, CoNLL-U lines written from columns, the tree check."""

from __future__ import annotations

from pathlib import Path

# The UD English EWT r2.15 files, read where they are (in ../shared beside the repository), never copied.
EWT_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ud_english_ewt"
EWT_DEV = EWT_DIR / "en_ewt-ud-dev.conllu"
EWT_TEST = EWT_DIR / "en_ewt-ud-test.conllu"


def row(
    ident: str,
    form: str,
    upos: str = "_",
    head: str = "_",
    deprel: str = "_",
    misc: str = "_",
    lemma: str | None = None,
) -> str:
    """One CoNLL-U word line (10 tab-separated columns); the lemma defaults to the lower-cased form."""
    lemma = form.lower() if lemma is None else lemma
    return "\t".join([ident, form, lemma, upos, "_", "_", head, deprel, "_", misc])


def mwt(ident: str, form: str, misc: str = "_") -> str:
    """A multi-word token line: its ID range and surface form, every other column empty (_)."""
    return "\t".join([ident, form] + ["_"] * 7 + [misc])


def conllu(*sentences: list[str]) -> str:
    """CoNLL-U text: each sentence's lines, then a blank line."""
    return "".join("\n".join(lines) + "\n\n" for lines in sentences)


def assert_one_tree(heads: list[int | None]) -> None:
    """Exactly one root (-1), every other head another word of the sentence, every chain of heads reaching the root."""
    assert heads.count(-1) == 1, heads
    assert all(h is not None and (h == -1 or 0 <= h < len(heads)) and h != i for i, h in enumerate(heads)), heads
    for start in range(len(heads)):
        node, steps = start, 0
        while heads[node] != -1:
            node, steps = heads[node], steps + 1
            assert steps <= len(heads), f"cycle through word {start}: {heads}"
