"""The explorer app in Chromium against a real `attnscope serve` on loopback: the paper's workflow and more.

The browser may reach the server's origin and nothing else; what is on screen is compared with
what the API (and the library) compute for the same request.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest

import attnscope
from attnscope.corpus import open_corpus
from attnscope.index import BuildOptions, build_index

from ..payload_decode import decode_layers
from ..serve_process import serving
from .conftest import Page

PUB = "The girl ran to a local pub to escape the din of her city."
ESCAPE = 9  # [CLS] the girl ran to a local pub to escape
MARKUP = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def markup_index(default_model, tmp_path_factory):
    """A two-sentence index whose sentence ids, lemmas and features carry markup."""
    words = [("The", "DET"), ("cat", "NOUN"), ("ran", "VERB"), ("home", "ADV"), (".", "PUNCT")]
    lines = []
    for n in range(2):
        lines += [f"# sent_id = {MARKUP}-{n}", "# text = The cat ran home."]
        for i, (form, upos) in enumerate(words, 1):
            space = "SpaceAfter=No" if i == 4 else "_"
            lines.append(
                f"{i}\t{form}\t{MARKUP}\t{upos}\t_\tNote={MARKUP}\t{0 if i == 3 else 3}\t"
                f"{'root' if i == 3 else 'dep'}\t_\t{space}"
            )
        lines.append("")
    path = tmp_path_factory.mktemp("markup") / "markup.conllu"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path_factory.mktemp("markup-index") / "markup"
    build_index(open_corpus(path), default_model, out, options=BuildOptions(batch_tokens=64))
    return out


@pytest.fixture(scope="module")
def server(ewt_index, markup_index, tiny_path, tmp_path_factory):
    """`attnscope serve` with the default model, a tiny BERT with a masked-LM head, EWT dev and the markup index."""
    cwd = tmp_path_factory.mktemp("serve")
    args = [
        "--model",
        "default",
        "--model",
        str(tiny_path("bert")),
        "--corpus",
        str(ewt_index.directory),
        "--corpus",
        str(markup_index),
    ]
    with serving(args, cwd) as served:
        yield served.base


class AppPage(Page):
    """A guarded page that may also reach the app server (and nothing else on the network)."""

    def __init__(self, page, origin: str) -> None:
        self.origin = origin
        super().__init__(page)
        self.dialogs: list[str] = []
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def _guard(self, route) -> None:
        if route.request.url.startswith(self.origin + "/"):
            route.continue_()
        else:
            super()._guard(route)


@pytest.fixture
def app(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    guarded = AppPage(context.new_page(), server)
    yield guarded
    assert guarded.blocked == [], "the app reached beyond its server"
    context.close()


def open_app(app: AppPage, query: str = "") -> None:
    app.page.goto(app.origin + "/" + query)
    app.page.wait_for_selector("#app[data-attention=ready]")


def run_sentence(app: AppPage, text: str, pair: str = "") -> None:
    loads = int(app.page.get_attribute("#app", "data-loads") or 0)
    app.page.fill("#text", text)
    app.page.fill("#pair", pair)
    app.page.click("#run")
    app.page.wait_for_function("(n) => Number(document.getElementById('app').dataset.loads) > n", arg=loads)


def wait_results(app: AppPage, title_part: str) -> None:
    app.page.wait_for_function(
        "(part) => document.getElementById('results').dataset.state === 'ready' && "
        "document.getElementById('results-title').textContent.includes(part)",
        arg=title_part,
    )


def screen_matches(app: AppPage) -> list[dict]:
    """What the corpus view shows: per row the sentence id, the matched token and the shaded tokens."""
    return app.page.eval_on_selector_all(
        ".as-match",
        """rows => rows.map(r => ({
        sent_id: r.dataset.sentId,
        matched: r.querySelector('.as-matched').textContent,
        centre: r.querySelector('.as-meta-centre').textContent,
    }))""",
    )


def screen_histogram(app: AppPage, which: str) -> dict[str, int]:
    bars = app.page.eval_on_selector_all(
        f".as-histogram[data-which={which}] .as-bar",
        "bars => bars.map(b => [b.dataset.value, Number(b.dataset.count)])",
    )
    return dict(bars)


def bars(counts: dict[str, int], most: int = 12) -> dict[str, int]:
    """The bars a histogram shows for ``counts`` (most frequent first): the first ``most`` - 1 and "other"."""
    items = list(counts.items())
    if len(items) <= most:
        return dict(items)
    return {**dict(items[: most - 1]), "other": sum(c for _, c in items[most - 1 :])}


def layer_bytes(payload: dict, key: str) -> np.ndarray:
    """The uint8 layers ``(layers, heads, query, key)`` a payload carries under data ``key`` (a role or
    "<role>/<method>")."""
    return np.rint(decode_layers(payload, key) * 255).astype(np.uint8)


def mean_of_bytes(layer: np.ndarray, heads) -> np.ndarray:
    """The head view's mean of ``heads`` of one layer's uint8 weights ``(heads, query, key)``, as meanWeights
    (attention_data.js) computes it: float32 byte sums times 1 / (255 · heads)."""
    heads = list(heads)
    return (layer[heads].astype(np.float32).sum(axis=0) * np.float32(1 / (255 * len(heads)))).astype(np.float64)


def count_lines(mean: np.ndarray, keys: list[int], share: float, rows: list[int] | None = None) -> int:
    """Lines the app draws for ``mean`` (query, key) between the shown ``keys`` (from ``rows``: all shown
    tokens, or the selected one): per row, the strongest keys that together make up ``share`` of the row
    (attention_data.js's topShareLines)."""
    count = 0
    for q in keys if rows is None else rows:
        row = mean[q, keys]
        total, running = row.sum(), 0.0
        for w in sorted(row, reverse=True):
            if w <= 0 or running >= share * total - 1e-9:
                break
            running += w
            count += 1
    return count


def api_search(base: str, **body) -> dict:
    response = httpx.post(f"{base}/api/search", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_papers_behind_the_mask_workflow_and_a_reload(app, server):
    open_app(app)
    run_sentence(app, PUB)
    page = app.page
    assert page.locator(".attnscope-hv-queries .attnscope-hv-token").all_inner_texts()[ESCAPE] == "escape"

    page.dblclick(f".attnscope-hv-queries .attnscope-hv-token[data-index='{ESCAPE}']")
    page.wait_for_selector(
        f"#app[data-attention=ready] .attnscope-hv-queries .attnscope-hv-masked[data-index='{ESCAPE}']"
    )
    assert page.locator(f".attnscope-hv-queries .attnscope-hv-token[data-index='{ESCAPE}']").inner_text() == "[MASK]"
    page.select_option("#layer", "3")
    page.click("#search-embedding")
    wait_results(app, "by embedding")

    expected = api_search(
        server,
        corpus="index",
        text=PUB,
        token=ESCAPE,
        layer=3,
        mode="embedding",
        heads=list(range(12)),
        mask=[ESCAPE],
        top=50,
    )
    assert len(expected["matches"]) == 50
    rows = screen_matches(app)
    assert [r["sent_id"] for r in rows] == [m["sent_id"] for m in expected["matches"]]
    assert [r["matched"] for r in rows] == [m["surface"][m["position"]] for m in expected["matches"]]
    assert [r["centre"] for r in rows] == [m["metadata"]["upos"][m["position"]] or "·" for m in expected["matches"]]
    assert sum(screen_histogram(app, "matched").values()) == 50
    assert screen_histogram(app, "matched") == bars(expected["summary"]["matched"]["upos"])
    assert screen_histogram(app, "max") == bars(expected["summary"]["max_attention"]["upos"])
    assert screen_histogram(app, "offset") == {
        (f"+{k}" if int(k) > 0 else k): v for k, v in expected["summary"]["offsets"].items()
    }
    title = page.locator(".as-match").first.locator(".as-ctok.as-matched").get_attribute("title")
    assert "upos: " + expected["matches"][0]["metadata"]["upos"][expected["matches"][0]["position"]] in title

    # two heads, then search by heads
    page.click(".attnscope-hv-heads-none")
    page.click(".attnscope-hv-head[data-head='2']")
    page.click(".attnscope-hv-head[data-head='7']")
    assert page.locator("#attention .attnscope-hv").get_attribute("data-heads") == "2,7"
    page.click("#search-heads")
    wait_results(app, "by heads 2, 7")
    by_heads = api_search(
        server, corpus="index", text=PUB, token=ESCAPE, layer=3, mode="heads", heads=[2, 7], mask=[ESCAPE], top=50
    )
    assert [r["sent_id"] for r in screen_matches(app)] == [m["sent_id"] for m in by_heads["matches"]]
    assert [r["sent_id"] for r in screen_matches(app)] != [m["sent_id"] for m in expected["matches"]]

    # the URL holds it all: a reload (and a shared link) shows the same view and search
    url = page.url
    assert "search=heads" in url and "heads=2%2C7" in url and "mask=9" in url and "layer=3" in url
    before = screen_matches(app)
    page.reload()
    page.wait_for_selector("#app[data-attention=ready]")
    wait_results(app, "by heads 2, 7")
    assert page.url == url
    assert screen_matches(app) == before
    assert page.input_value("#layer") == "3"
    assert page.locator(".attnscope-hv-head[aria-pressed=true]").evaluate_all("bs => bs.map(b => b.dataset.head)") == [
        "2",
        "7",
    ]
    assert page.locator(".attnscope-hv-queries .attnscope-hv-masked").inner_text() == "[MASK]"
    assert page.locator(".attnscope-hv-queries .attnscope-hv-pinned").get_attribute("data-index") == str(ESCAPE)
    assert app.errors == []


def test_lines_follow_the_threshold_and_the_hidden_special_tokens(app, server):
    open_app(app, "?text=" + "The girl ran to a local pub.")
    page = app.page
    body = httpx.post(
        f"{server}/api/attention", json={"model": "default", "text": "The girl ran to a local pub."}
    ).json()
    weights = layer_bytes(body["payload"], "encoder")
    layers, heads, n, _ = weights.shape
    special = body["tokens"]["special"]

    def expected(layer: int, share: float, hide: bool) -> int:
        keys = [k for k in range(n) if not (hide and special[k])]
        return count_lines(mean_of_bytes(weights[layer], range(heads)), keys, share)

    root = page.locator("#attention .attnscope-hv")
    assert int(root.get_attribute("data-lines")) == expected(0, 0.9, False)
    page.select_option("#layer", "4")
    page.locator("#top-share").fill("50")
    page.locator("#top-share").dispatch_event("input")
    assert page.inner_text("#top-share-value") == "50%"
    assert int(root.get_attribute("data-lines")) == expected(4, 0.5, False)
    page.check("#hide-special")
    assert "[CLS]" not in page.locator(".attnscope-hv-queries .attnscope-hv-token").all_inner_texts()
    assert int(root.get_attribute("data-lines")) == expected(4, 0.5, True)
    page.locator("#top-share").fill("100")
    page.locator("#top-share").dispatch_event("input")
    assert int(root.get_attribute("data-lines")) == expected(4, 1.0, True) == (n - 2) ** 2
    assert "top_share=1&special=hide" in page.url
    assert app.errors == []


def test_predictions_on_hover_or_a_clear_note_without_a_language_model_head(app, server, tiny):
    open_app(app)
    page = app.page
    page.hover(".attnscope-hv-queries .attnscope-hv-token[data-index='2']")
    assert "has no language-model head" in page.inner_text("#tooltip")

    handle = tiny("bert")
    page.select_option("#model", handle.label)
    run_sentence(app, PUB)
    page.dblclick(".attnscope-hv-queries .attnscope-hv-token[data-index='3']")
    page.wait_for_selector("#app[data-attention=ready] .attnscope-hv-queries .attnscope-hv-masked[data-index='3']")
    page.hover(".attnscope-hv-queries .attnscope-hv-token[data-index='3']")
    shown = page.locator("#tooltip li").all_inner_texts()
    expected = attnscope.capture(handle, PUB, mask=[3], top_k=5).top_k(3)
    assert [s.rsplit(" ", 1)[0] for s in shown] == [t for t, _ in expected]
    assert [s.rsplit(" ", 1)[1] for s in shown] == [f"{100 * p:.1f}%" for _, p in expected]
    assert "masked token" in page.inner_text("#tooltip")
    assert page.inner_text("#search-hint") == "No corpus is served for this model."
    assert app.errors == []


def test_the_keyboard_reaches_tokens_heads_and_masks(app):
    open_app(app)
    page = app.page
    page.focus(".attnscope-hv-queries .attnscope-hv-token[data-index='1']")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert page.locator(".attnscope-hv-queries .attnscope-hv-pinned").get_attribute("data-index") == "3"
    assert "token=3" in page.url
    page.focus(".attnscope-hv-queries .attnscope-hv-token[data-index='3']")
    page.keyboard.press("m")
    page.wait_for_selector("#app[data-attention=ready] .attnscope-hv-queries .attnscope-hv-masked[data-index='3']")
    page.focus(".attnscope-hv-head[data-head='5']")
    page.keyboard.press("Space")
    assert page.get_attribute(".attnscope-hv-head[data-head='5']", "aria-pressed") == "false"
    page.focus("#search-embedding")
    page.keyboard.press("Enter")
    wait_results(app, "by embedding")
    page.focus("#layer")
    page.keyboard.press("Escape")
    assert page.locator(".attnscope-hv-queries .attnscope-hv-pinned").count() == 0 and "token=" not in page.url
    assert app.errors == []


def test_a_sentence_pair_is_shown_and_searched_from_sentence_b(app, server, default_model):
    open_app(app)
    pair = "She left for the quiet of the hills."
    run_sentence(app, PUB, pair)
    page = app.page
    tokens = attnscope.encode(default_model, PUB, pair)
    seg_b = page.locator(".attnscope-hv-queries .attnscope-hv-seg-b").all_inner_texts()
    assert seg_b == [t for t, s in zip(tokens.display, tokens.segments) if s == 1]
    hills = tokens.display.index("hills")
    page.click(f".attnscope-hv-queries .attnscope-hv-token[data-index='{hills}']")
    page.click("#search-embedding")
    wait_results(app, "“hills”")
    expected = api_search(
        server,
        corpus="index",
        text=PUB,
        text_pair=pair,
        token=hills,
        layer=0,
        mode="embedding",
        heads=list(range(12)),
        top=50,
    )
    assert [r["sent_id"] for r in screen_matches(app)] == [m["sent_id"] for m in expected["matches"]]
    assert "pair=" in page.url
    assert app.errors == []


def test_markup_in_the_input_and_in_the_corpus_is_shown_as_text(app, server):
    open_app(app, "?corpus=markup")
    page = app.page
    run_sentence(app, MARKUP + " The cat ran home.")
    assert page.locator("#app img").count() == 0
    shown = "".join(page.locator(".attnscope-hv-queries .attnscope-hv-token").all_inner_texts())
    assert "<" in shown and "img" in shown
    cat = page.locator(".attnscope-hv-queries .attnscope-hv-token", has_text="cat").first.get_attribute("data-index")
    page.click(f".attnscope-hv-queries .attnscope-hv-token[data-index='{cat}']")
    page.click("#search-embedding")
    wait_results(app, "in markup")
    page.select_option("#summary-field", "lemma")
    assert screen_histogram(app, "matched") == {MARKUP: 10}  # every word of both sentences matches
    assert {r["sent_id"] for r in screen_matches(app)} == {f"{MARKUP}-0", f"{MARKUP}-1"}
    page.select_option("#cols-field", "feats")
    assert page.locator(".as-meta-centre").first.inner_text() == MARKUP  # the feature's value (Note=…)
    assert page.locator(".as-meta-centre").first.get_attribute("title") == f"Note={MARKUP}"
    assert MARKUP in page.locator(".as-ctok").first.get_attribute("title")
    assert page.locator("#app img").count() == 0
    assert app.dialogs == [] and app.errors == []


def _raw_get(base: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """GET ``path`` exactly as written (no client-side normalisation of ``..`` or escapes)."""
    url = urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    result = response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    connection.close()
    return result


def test_the_page_and_its_assets_are_served_from_the_package_only(server):
    status, headers, page = _raw_get(server, "/")
    assert status == 200
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    prefix = page.decode().split('src="', 1)[1].split("/app.js", 1)[0]
    assert prefix.startswith("/assets/") and len(prefix) == len("/assets/") + 16
    status, headers, script = _raw_get(server, prefix + "/app.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    assert "immutable" in headers["cache-control"] and b"function createAttentionPanel" in script
    for path in [
        prefix + "/../../pyproject.toml",
        prefix + "/..%2F..%2Fpyproject.toml",
        prefix + "/app.py",
        "/assets/0000000000000000/app.js",
        prefix + "/%2e%2e/server/app.py",
        "/static/app.js",
        "/assets/../../../etc/passwd",
        prefix + "/app.js%00.txt",
    ]:
        status, headers, body = _raw_get(server, path)
        assert status == 404, path
        assert json.loads(body)["error"]["status"] == 404, path


def test_the_api_docs_render_offline(app):
    app.page.goto(app.origin + "/docs")
    app.page.wait_for_selector(".opblock-summary-path")
    paths = set(app.page.locator(".opblock-summary-path").all_inner_texts())
    assert {"/api/models", "/api/corpora", "/api/attention", "/api/predictions", "/api/search"} <= paths
