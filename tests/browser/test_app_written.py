"""The explorer app's corpus view reads a byte-level BPE corpus as it is written (issue 13 field report, items 1,
3 and 6), in Chromium against a real `attnscope serve` of a tiny GPT-2 and an index of raw text with accents,
an emoji, CJK and punctuation runs: each character once, spaces where the text has them, the pieces of a
split character marked, no word match on a space token, metadata columns that count words, "1 match"."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest

from ..serve_process import serving
from .test_app import AppPage

CAT = "The cat sat on the café."


@pytest.fixture(scope="module")
def server(written_index, tiny_path, tmp_path_factory):
    index = written_index("gpt2")
    with serving(
        ["--model", str(tiny_path("gpt2")), "--corpus", str(index.directory)], tmp_path_factory.mktemp("serve-written")
    ) as served:
        yield served.base


@pytest.fixture
def app(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    guarded = AppPage(context.new_page(), server)
    yield guarded
    assert guarded.blocked == [], "the app reached beyond its server"
    context.close()


def api_search(base: str, **body) -> dict:
    response = httpx.post(f"{base}/api/search", json={"corpus": "written", "text": CAT, "layer": 1, **body}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def searched(app: AppPage, **query) -> None:
    app.page.goto(f"{app.origin}/?{urlencode({'text': CAT, 'layer': 1, 'search': 'embedding', **query})}")
    app.page.wait_for_selector("#app[data-attention=ready]")
    app.page.wait_for_selector("#results[data-state=ready]")


def rows(app: AppPage) -> list[dict]:
    return app.page.locator(".as-match").evaluate_all("""rs => rs.map(r => ({
        text: r.querySelector('.as-open').innerText,
        matched: r.querySelector('.as-cmatch').innerText,
        notext: [...r.querySelectorAll('.as-cmatch .as-notext')].map(e => e.title),
        metas: [...r.querySelectorAll('.as-meta:not(.as-next)')].map(e => e.textContent),
        next: r.querySelectorAll('.as-next').length }))""")


def words_of(m: dict) -> list[int]:
    """The first token of each word of a match, as the corpus view counts them: tokens joined by
    ``continues``, a token that stands for a space left out."""
    starts = []
    for p in range(len(m["tokens"])):
        blank = m["surface"][p] == "" and not m["continues"][p] and m["words"][p] < 0
        if not starts or (not m["continues"][p] and not blank):
            starts.append(p)
    return starts


def test_byte_level_contexts_read_as_written_with_split_characters_marked(app, server, written_index):
    searched(app, token=2, top=200)
    expected = api_search(server, token=2, top=200)
    shown = rows(app)
    assert len(shown) == len(expected["matches"]) == written_index("gpt2").size  # every token of the corpus
    for row, m in zip(shown, expected["matches"]):
        sentence = " ".join(m["text"].split())
        assert " ".join(row["text"].strip("… ").split()) in sentence, (row["text"], sentence)
        for wrong in ("Züürich", "😀😀", "東東", "andlef", "dogbark"):
            assert wrong not in row["text"]
    pieces = [(row, m) for row, m in zip(shown, expected["matches"]) if m["tokens"][m["position"]] == "\\x9f"]
    assert len(pieces) == 1
    row, m = pieces[0]  # the second byte of 😀: a thin mark inside the emoji, outlined, its tooltip says what it is
    assert row["matched"] == "" and row["notext"][0].startswith(
        "no text of its own (token 2 of 4 of “😀”; the model reads “\\x9f”)"
    )
    assert app.errors == []


def test_words_mode_matches_words_and_the_columns_count_words_not_spaces(app, server):
    searched(app, token=2, top=200, words="on", span=1, cols="upos")
    expected = api_search(server, token=2, top=200, unit="word")
    shown = rows(app)
    assert len(shown) == len(expected["matches"]) > 0
    for row, m in zip(shown, expected["matches"]):
        assert row["matched"].strip() and row["notext"] == [t for t in row["notext"] if "a space" not in t]
        starts = words_of(m)
        centre = max(i for i, p in enumerate(starts) if p <= m["position"])
        upos = m["metadata"]["upos"]
        want = [upos[starts[centre + o]] if 0 <= centre + o < len(starts) else None for o in (-1, 0, 1)]
        assert row["metas"] == [v if v is not None else "·" for v in want], (row, m["surface"])
        assert row["next"] == 1  # a causal model's corpus: the token after each match has its own column
    assert app.errors == []


def test_one_match_reads_one_match(app, server):
    searched(app, token=2, top=1)
    title = app.page.inner_text("#results-title")
    assert title.startswith("1 match for “at” (position 2) at layer 1, by embedding, in written"), title
    searched(app, token=2, top=2)
    assert app.page.inner_text("#results-title").startswith("2 matches for ")
