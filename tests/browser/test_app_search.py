"""Issue 13 items 6, 7 and 12 in the explorer app (Chromium, a real `attnscope serve` over EWT dev): the corpus
results never widen the page and the context stays on screen; contexts read as the corpus writes them; the
search options (matches, filters, one per sentence, head score, re-ranking, words), a refused special token, a
match opened in the attention view (click, Enter, Back) and the sentence-pair filter of the lines."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import numpy as np
import pytest

import attnscope

from ..serve_process import serving
from .test_app import AppPage, count_lines, layer_bytes, mean_of_bytes, open_app, wait_results  # noqa: F401

PUB = "The girl ran to a local pub to escape the din of her city."
SNEEZE = "I am sneezing because of my allergies today."
CORPUS = "index"  # the EWT dev index's directory name


@pytest.fixture(scope="module")
def server(ewt_index, tmp_path_factory):
    with serving(["--model", "default", "--corpus", str(ewt_index.directory)], tmp_path_factory.mktemp("serve")) as s:
        yield s.base


@pytest.fixture
def make_app(browser, server):
    """A guarded app page at a given viewport; every page opened must reach only its server."""
    made = []

    def make(width: int = 1400, height: int = 1000) -> AppPage:
        context = browser.new_context(viewport={"width": width, "height": height})
        made.append((context, AppPage(context.new_page(), server)))
        return made[-1][1]

    yield make
    for context, page in made:
        assert page.blocked == [], "the app reached beyond its server"
        context.close()


def api_search(base: str, **body) -> dict:
    response = httpx.post(f"{base}/api/search", json={"corpus": CORPUS, **body}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def searched(app: AppPage, **query) -> None:
    """Open the app at ``query`` (a search in the URL) and wait for its results."""
    app.page.goto(f"{app.origin}/?{urlencode(query)}")
    app.page.wait_for_selector("#app[data-attention=ready]")
    app.page.wait_for_selector("#results[data-state=ready]")


def boxes(app: AppPage, selector: str) -> list[dict]:
    return app.page.eval_on_selector_all(
        selector,
        "els => els.map(e => { const r = e.getBoundingClientRect(); "
        "return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; })",
    )


@pytest.mark.parametrize("width, height", [(1280, 800), (1400, 1000)])
def test_results_never_widen_the_page_and_the_context_stays_readable(make_app, width, height):
    app = make_app(width, height)
    for span in range(6):
        searched(app, text=PUB, token=9, layer=3, search="embedding", span=span, cols="deprel")
        page = app.page
        assert page.evaluate("document.documentElement.scrollWidth") <= width, f"span {span}"
        assert page.locator(".as-match").count() == 50
        assert page.locator(".as-match").first.locator(".as-meta").count() == 2 * span + 1
        panel = boxes(app, ".as-search-panel")[0]
        for index in (0, 1, 2, 49):
            row = page.locator(".as-match").nth(index)
            row.scroll_into_view_if_needed()
            context = row.locator(".as-context").bounding_box()
            assert context["width"] >= 280, f"span {span}: the context is squeezed to {context['width']} px"
            matched = row.locator(".as-cmatch").bounding_box()
            position = int(row.locator(".as-matched").first.get_attribute("data-pos"))
            shown = [matched] + [
                row.locator(f".as-ctok[data-pos='{p}']").bounding_box()
                for p in (position - 1, position + 1)
                if row.locator(f".as-ctok[data-pos='{p}']").count()
            ]
            for box in shown:  # the match and its neighbours: on screen, inside the panel and their cell
                assert 0 <= box["x"] and box["x"] + box["width"] <= width, (span, index, box)
                assert 0 <= box["y"] and box["y"] + box["height"] <= height, (span, index, box)
                assert panel["left"] <= box["x"] and box["x"] + box["width"] <= panel["right"], (span, index)
                assert context["x"] - 3 <= box["x"] and box["x"] + box["width"] <= context["x"] + context["width"] + 3
        assert app.errors == []


def test_contexts_read_as_the_corpus_writes_them(make_app, server):
    app = make_app()
    searched(app, text=SNEEZE, token=9, layer=3, search="embedding", top=5)  # the piece "all"
    page = app.page
    first = page.locator(".as-match").first
    expected = api_search(server, text=SNEEZE, token=9, layer=3, mode="embedding", heads=list(range(12)), top=5)
    m = expected["matches"][0]
    assert first.locator(".as-cmatch").inner_text() == "all"
    shown = first.locator(".as-open").inner_text()
    assert "one of her cats because of allergies, he is the youngest" in shown
    assert shown.strip("… ") in m["text"]  # the sentence as written, a window of it
    word = first.locator(".as-ctok").evaluate_all(
        "els => Object.fromEntries(els.map(e => [e.dataset.pos, [e.textContent, "
        "e.classList.contains('continuation')]]))"
    )
    position = m["position"]
    assert [word[str(p)] for p in range(position, position + 3)] == [["all", False], ["er", True], ["gies", True]]
    title = first.locator(".as-ctok.continuation").first.get_attribute("title")
    assert title.startswith("er (token 2 of 3 of “allergies”; the model reads “er”)")

    # words mode: the word is searched as a word, and the matches are words
    searched(app, text=SNEEZE, token=9, layer=3, search="embedding", top=5, words="on")
    assert "the word “allergies” (tokens 9–11, the mean of its 3 tokens)" in page.inner_text("#results-title")
    assert page.locator(".as-match").first.locator(".as-cmatch").inner_text() == "allergies"
    as_word = api_search(
        server, text=SNEEZE, token=9, layer=3, mode="embedding", heads=list(range(12)), top=5, unit="word"
    )
    assert page.locator(".as-match").evaluate_all("rs => rs.map(r => r.dataset.sentId)") == [
        x["sent_id"] for x in as_word["matches"]
    ]
    assert "words mode" in page.inner_text("#search-unit").lower()

    # the corpus's case and the word as one: "mismanaged" (mis ##mana ##ged) in a sentence of names
    text = "They said mismanaged here."
    searched(app, text=text, token=3, layer=4, search="embedding", top=5, words="on")
    first = page.locator(".as-match").first
    assert first.locator(".as-cmatch").inner_text() == "mismanaged"
    assert first.locator(".as-cmatch .continuation").all_inner_texts() == ["mana", "ged"]
    assert (
        "Donald Rumsfeld, charging that they mismanaged the evacuation efforts."
        in first.locator(".as-open").inner_text()
    )
    assert app.errors == []


def test_search_options_are_sent_shown_and_kept_in_the_url(make_app, server):
    app = make_app()
    open_app(app, "?" + urlencode({"text": PUB, "token": 1, "layer": 3}))
    page = app.page
    page.fill("#search-top", "12")
    page.dispatch_event("#search-top", "change")
    page.fill("#search-filter", "upos=NOUN,PROPN deprel=obl")
    page.dispatch_event("#search-filter", "change")
    page.check("#search-per-sentence")
    page.click("#search-heads")
    page.wait_for_selector("#search-score-label:not([hidden])")
    page.select_option("#search-score", "mean")  # a second search, which sets the results loading at once
    page.wait_for_function(
        "() => document.getElementById('results').dataset.state === 'ready' && "
        "document.getElementById('results-score').textContent.includes('mean of 12')"
    )
    expected = api_search(
        server,
        text=PUB,
        token=1,
        layer=3,
        mode="heads",
        heads=list(range(12)),
        top=12,
        per_sentence=True,
        score="mean",
        filters={"upos": ["NOUN", "PROPN"], "deprel": ["obl"]},
    )
    rows = page.locator(".as-match")
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.sentId)") == [m["sent_id"] for m in expected["matches"]]
    assert rows.evaluate_all("rs => rs.map(r => r.querySelector('.as-score').textContent)") == [
        f"{m['score']:.3f}" for m in expected["matches"]
    ]
    assert len({m["sentence"] for m in expected["matches"]}) == 12
    assert {m["metadata"]["deprel"][m["position"]] for m in expected["matches"]} == {"obl"}
    meaning = "mean of 12 heads' cosines of the head embeddings at layer 3 (their sum / 12, at most 1)"
    assert page.inner_text("#results-score") == f"Score: {meaning}."
    assert page.get_attribute(".as-mhead .as-score", "title") == f"score: {meaning}"
    assert "one per sentence" in page.inner_text("#results-title")
    query = parse_qs(urlsplit(page.url).query)
    assert (query["top"], query["filter"], query["per"], query["scoring"], query["search"]) == (
        ["12"],
        ["upos=NOUN,PROPN deprel=obl"],
        ["sentence"],
        ["mean"],
        ["heads"],
    )
    before = rows.evaluate_all("rs => rs.map(r => r.dataset.sentId)")
    page.reload()
    page.wait_for_selector("#results[data-state=ready]")
    assert page.locator(".as-match").evaluate_all("rs => rs.map(r => r.dataset.sentId)") == before
    assert (
        page.input_value("#search-filter") == "upos=NOUN,PROPN deprel=obl" and page.input_value("#search-top") == "12"
    )
    assert page.is_checked("#search-per-sentence") and page.input_value("#search-score") == "mean"

    # a malformed filter, then one on a field the corpus lacks: never sent, said where the results were and at the input
    page.fill("#search-filter", "upos")
    page.dispatch_event("#search-filter", "change")
    page.wait_for_selector("#results[data-state=error]")
    assert page.inner_text("#results-error") == (
        "Search failed: Filter “upos”: write FIELD=VALUE[,VALUE…], e.g. upos=NOUN,PROPN deprel=obj. The filter “upos” "
        "was not applied: correct it and search again."
    )
    assert page.locator(".as-match").count() == 0 and page.inner_text("#results-title") == ""
    page.fill("#search-filter", "colour=red")
    page.dispatch_event("#search-filter", "change")  # no search is shown now: the input says why
    assert page.inner_text("#search-filter-error") == (
        f"Not applied: cannot filter on “colour”: corpus {CORPUS} has the fields upos, xpos, lemma, feats, deprel"
    )
    assert page.get_attribute("#search-filter", "aria-invalid") == "true"
    query = parse_qs(urlsplit(page.url).query)
    assert "filter" not in query and "search" not in query
    assert app.errors == []


def test_the_rerank_factor_is_sent_shown_and_kept_in_the_url(make_app, server):
    """The re-rank control: the corpus's default named for its codes (8-bit here: off), a factor sent in the
    request and shown in the title with the re-ranked scores, kept in the URL, and the default sending none."""
    app = make_app()
    page = app.page
    bodies: list[dict] = []
    page.on("request", lambda r: bodies.append(r.post_data_json) if r.url.endswith("/api/search") else None)
    searched(app, text=PUB, token=9, layer=3, search="embedding", top=10, rerank=2)
    assert page.input_value("#search-rerank") == "2"
    assert page.eval_on_selector_all("#search-rerank option", "os => os.map(o => o.textContent)") == [
        "default (off)",
        "off",
        "×2",
        "×4",
        "×8",
        "×16",
    ]
    assert bodies[-1]["rerank"] == 2
    reranked = api_search(server, text=PUB, token=9, layer=3, mode="embedding", top=10, rerank=2)
    codes = api_search(server, text=PUB, token=9, layer=3, mode="embedding", top=10)
    assert reranked["rerank"] == 2 and codes["rerank"] == 1
    assert [m["score"] for m in reranked["matches"]] != [m["score"] for m in codes["matches"]]
    shown = page.locator(".as-match").evaluate_all("rs => rs.map(r => r.querySelector('.as-score').textContent)")
    assert shown == [f"{m['score']:.3f}" for m in reranked["matches"]]
    assert page.inner_text("#results-title").endswith(", re-ranked ×2 by exact vectors")
    assert parse_qs(urlsplit(page.url).query)["rerank"] == ["2"]

    searches = page.get_attribute("#results", "data-searches")
    page.select_option("#search-rerank", "0")  # the corpus's default: no factor sent, the codes' scores
    page.wait_for_function(
        f"() => document.getElementById('results').dataset.searches !== '{searches}' && "
        "document.getElementById('results').dataset.state === 'ready'"
    )
    assert "rerank" not in bodies[-1] and "re-ranked" not in page.inner_text("#results-title")
    shown = page.locator(".as-match").evaluate_all("rs => rs.map(r => r.querySelector('.as-score').textContent)")
    assert shown == [f"{m['score']:.3f}" for m in codes["matches"]]
    assert "rerank" not in parse_qs(urlsplit(page.url).query)
    assert app.errors == []


def test_a_special_token_is_refused_with_the_reason(make_app):
    app = make_app()
    open_app(app, "?" + urlencode({"text": PUB, "layer": 2}))
    page = app.page
    page.click(".attnscope-hv-queries .attnscope-hv-token[data-index='0']")
    assert page.is_disabled("#search-embedding") and page.is_disabled("#search-heads")
    assert page.inner_text("#search-hint") == (
        "“[CLS]” is a special token, which the corpus index does not hold: select another token to search."
    )
    assert page.locator(".as-match").count() == 0 and app.errors == []


def test_a_match_opens_in_the_attention_view_and_back_returns_to_the_search(make_app, server, default_model):
    app = make_app()
    searched(app, text=PUB, token=9, layer=3, search="embedding", top=10, span=2)
    page = app.page
    search_url = page.url
    expected = api_search(server, text=PUB, token=9, layer=3, mode="embedding", heads=list(range(12)), top=10)
    m = expected["matches"][1]
    loads = int(page.get_attribute("#app", "data-loads"))
    page.locator(".as-match").nth(1).locator(".as-score").click()
    page.wait_for_function("(n) => Number(document.getElementById('app').dataset.loads) > n", arg=loads)
    assert page.input_value("#text") == m["text"]
    selected = page.locator(".attnscope-hv-queries .attnscope-hv-pinned")
    assert selected.get_attribute("data-index") == str(m["input_position"])
    assert (
        selected.inner_text()
        == attnscope.encode(default_model, m["text"]).display[m["input_position"]]
        == m["tokens"][m["position"]]
    )
    query = parse_qs(urlsplit(page.url).query)
    assert (query["text"], query["token"], query["layer"]) == ([m["text"]], [str(m["input_position"])], ["3"])
    assert "search" not in query and page.locator(".as-match").count() == 0
    page.wait_for_function(
        "() => document.activeElement && document.activeElement.classList.contains('attnscope-hv-pinned')"
    )

    page.go_back()
    page.wait_for_function("() => document.getElementById('results').dataset.state === 'ready'")
    assert page.url == search_url and page.input_value("#text") == PUB
    assert page.locator(".as-match").count() == 10

    # the keyboard: Tab to a match's link, Enter opens it
    third = expected["matches"][2]
    link = page.locator(".as-match").nth(2).locator("a.as-open")
    assert parse_qs(urlsplit(link.get_attribute("href")).query)["token"] == [str(third["input_position"])]
    link.focus()
    loads = int(page.get_attribute("#app", "data-loads"))
    page.keyboard.press("Enter")
    page.wait_for_function("(n) => Number(document.getElementById('app').dataset.loads) > n", arg=loads)
    assert page.input_value("#text") == third["text"]
    assert page.locator(".attnscope-hv-queries .attnscope-hv-pinned").get_attribute("data-index") == str(
        third["input_position"]
    )
    assert app.errors == []


def test_the_sentence_pair_filter_draws_only_the_chosen_lines(make_app, server):
    app = make_app()
    pair = "She left for the quiet of the hills."
    open_app(app, "?" + urlencode({"text": PUB, "pair": pair, "layer": 4}))
    page = app.page
    assert page.is_visible("#pairs-label")
    body = httpx.post(f"{server}/api/attention", json={"model": "default", "text": PUB, "text_pair": pair}).json()
    weights = layer_bytes(body["payload"], "encoder")
    layers, heads, n, _ = weights.shape
    segments = body["tokens"]["segments"]
    mean = mean_of_bytes(weights[4], range(heads))
    root = page.locator("#attention .attnscope-hv")
    for choice, (a, b) in {"AB": (0, 1), "BA": (1, 0), "AA": (0, 0), "BB": (1, 1)}.items():
        page.select_option("#pairs", choice)
        rows = [q for q in range(n) if segments[q] == a]
        expected = _lines(mean, n, 0.9, rows, [k for k in range(n) if segments[k] == b])
        assert (root.get_attribute("data-filter"), int(root.get_attribute("data-lines"))) == (choice, expected)
        assert f"pairs={choice}" in page.url
    page.select_option("#pairs", "all")
    assert int(root.get_attribute("data-lines")) == count_lines(mean, list(range(n)), 0.9)
    open_app(app, "?" + urlencode({"text": PUB}))
    assert not page.is_visible("#pairs-label")
    assert app.errors == []


def _lines(mean: np.ndarray, n: int, share: float, rows: list[int], keys: list[int]) -> int:
    """Lines drawn from ``rows`` to ``keys``: each row's strongest keys (over all keys) making up ``share``."""
    count = 0
    for q in rows:
        row = mean[q]
        total, running = row.sum(), 0.0
        for k in sorted(range(n), key=lambda k: -row[k]):
            if row[k] <= 0 or running >= share * total - 1e-9:
                break
            running += row[k]
            count += k in keys
    return count


def test_feature_columns_show_the_features_values_and_the_whole_features_in_their_tooltips(make_app, server):
    app = make_app(1280, 800)
    searched(app, text=PUB, token=9, layer=3, search="embedding", span=5, cols="feats", top=10)
    cells = app.page.eval_on_selector_all(".as-match .as-meta", "cs => cs.map(c => [c.textContent, c.title])")
    assert len(cells) == 10 * 11
    featured = [(text, title) for text, title in cells if "=" in title]
    assert len(featured) > 20
    for text, title in featured:  # "Mood=Ind|Number=Sing|Person=3" reads "Ind|Sing|3"
        assert text == "|".join(feature.split("=", 1)[1] for feature in title.split("|"))
    assert len({text[:7] for text, _ in featured}) > 5  # the report: every cell read "Numb…" or "Mood…"
    assert "hover a cell for them whole" in app.page.get_attribute(".as-mhead .as-meta", "title")
    assert app.errors == []
