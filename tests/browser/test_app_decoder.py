"""M6 in Chromium: the explorer app serving the default encoder and the built-in SmolLM2 (a real `attnscope serve` on
loopback, as `make run` starts it): a hovered query shows the next tokens SmolLM2 would predict (equal to
`capture(...).top_k`, with no request) and greys the keys after it; masking is refused with the reason; Continue
appends generated tokens, marked, with their attention; switching models keeps the URL reproducible."""

from __future__ import annotations

import shutil
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

import attnscope

from ..serve_process import serving
from .test_app import AppPage, open_app

PUB = "The girl ran to a local pub to escape the din of her city."
SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture(scope="module")
def server(smollm2_first_load, small_index, tmp_path_factory):
    """`attnscope serve --model default --model smollm2` with the small index as the default model's corpus, loading
    SmolLM2 from the session's converted cache."""
    root = tmp_path_factory.mktemp("decoder-app")
    small = shutil.copytree(small_index.directory, root / "small")
    env = {"ATTNSCOPE_CACHE": str(smollm2_first_load.cache_root)}
    args = ["--model", "default", "--model", "smollm2", "--corpus", str(small)]
    with serving(args, root, timeout=300, env=env) as served:
        yield served.base


@pytest.fixture
def app(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(120_000)  # SmolLM2 on 2 shared cores: a continuation takes seconds
    guarded = AppPage(context.new_page(), server)
    yield guarded
    assert guarded.blocked == [], "the app reached beyond its server"
    context.close()


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def shown_tokens(app: AppPage) -> list[str]:
    return app.page.locator(".attnscope-hv-queries .attnscope-hv-token").all_inner_texts()


def tooltip_predictions(app: AppPage) -> list[tuple[str, str]]:
    return [tuple(item.rsplit(" ", 1)) for item in app.page.locator("#tooltip li").all_inner_texts()]


def expected_predictions(cap, position: int) -> list[tuple[str, str]]:
    return [(t if t.strip() else "␣", f"{100 * p:.1f}%") for t, p in cap.top_k(position)]


def hover_query(app: AppPage, position: int) -> None:
    app.page.hover(f".attnscope-hv-queries .attnscope-hv-token[data-index='{position}']")


def future_keys(app: AppPage) -> list[int]:
    return [int(i) for i in app.page.locator(".attnscope-hv-keys .attnscope-hv-future").evaluate_all(
        "nodes => nodes.map((n) => n.dataset.index)")]  # fmt: skip


def test_hovering_a_query_shows_what_smollm2_would_predict_next_and_greys_the_later_keys(app, smollm2):
    open_app(app, "?" + urlencode({"model": "smollm2", "text": PUB}))
    cap = attnscope.capture(smollm2, PUB, top_k=5)
    assert shown_tokens(app) == list(cap.tokens.display)
    requests: list[str] = []
    app.page.on("request", lambda r: requests.append(r.url))
    for position in (0, 3, len(cap.tokens) - 1):
        hover_query(app, position)
        assert "the model would predict next:" in app.page.inner_text("#tooltip")
        assert tooltip_predictions(app) == expected_predictions(cap, position)
        assert future_keys(app) == list(range(position + 1, len(cap.tokens)))
    assert requests == []  # the predictions came with the attention: a hover asks the server nothing
    app.page.hover("#attention-title")
    assert future_keys(app) == []
    assert app.errors == []


def test_masking_is_refused_for_smollm2_with_the_reason(app):
    open_app(app, "?" + urlencode({"model": "smollm2", "text": PUB}))
    loads = app.page.get_attribute("#app", "data-loads")
    app.page.dblclick(".attnscope-hv-queries .attnscope-hv-token[data-index='3']")
    status = app.page.inner_text("#status")
    assert status.startswith(f"Model '{SMOL}' is a causal decoder: a causal model predicts the next token")
    assert "mask" not in query_of(app.page.url) and app.page.get_attribute("#app", "data-loads") == loads
    assert app.page.locator(".attnscope-hv-masked").count() == 0

    open_app(app, "?" + urlencode({"model": "smollm2", "text": PUB, "mask": "3"}))  # a link's mask: dropped, said why
    dropped = app.page.inner_text("#link-dropped")
    assert dropped.startswith("mask=3 was ignored: model") and "a causal model predicts the next token" in dropped
    assert "mask" not in query_of(app.page.url) and app.page.locator(".attnscope-hv-masked").count() == 0
    assert app.errors == []


def continue_by(app: AppPage, n: int, seed: int | None = None) -> None:
    loads = int(app.page.get_attribute("#app", "data-loads") or 0)
    app.page.fill("#continue-n", str(n))
    app.page.select_option("#continue-how", "greedy" if seed is None else "sample")
    if seed is not None:
        app.page.fill("#continue-seed", str(seed))
    app.page.click("#continue")
    app.page.wait_for_function("(n) => Number(document.getElementById('app').dataset.loads) > n", arg=loads)


def generated_marked(app: AppPage) -> list[int]:
    return [int(i) for i in app.page.locator(".attnscope-hv-queries .attnscope-hv-generated").evaluate_all(
        "nodes => nodes.map((n) => n.dataset.index)")]  # fmt: skip


def test_continue_appends_the_generated_tokens_marked_with_their_attention_and_predictions(app, smollm2):
    open_app(app, "?" + urlencode({"model": "smollm2", "text": PUB}))
    prompt = len(shown_tokens(app))
    continue_by(app, 4)
    cap = attnscope.generate(smollm2, PUB, max_new_tokens=4, top_k=5)
    assert shown_tokens(app) == list(cap.tokens.display) and len(cap.tokens) == prompt + 4
    assert generated_marked(app) == list(cap.tokens.generated) == list(range(prompt, prompt + 4))
    assert query_of(app.page.url)["gen"] == ["4"] and "seed" not in query_of(app.page.url)
    assert app.page.inner_text("#continue-note") == "4 tokens generated (greedy), shown in italics after the text."
    last = len(cap.tokens) - 1  # a generated query: its predictions and its attention (every key up to it, none after)
    hover_query(app, last - 1)
    assert tooltip_predictions(app) == expected_predictions(cap, last - 1)
    assert future_keys(app) == [last]
    app.page.click(f".attnscope-hv-queries .attnscope-hv-token[data-index='{last}']")
    lines = int(app.page.get_attribute("#attention .attnscope-hv", "data-lines") or 0)
    assert lines > 0

    continue_by(app, 3)  # the same run, three tokens further
    longer = attnscope.generate(smollm2, PUB, max_new_tokens=7, top_k=5)
    assert shown_tokens(app) == list(longer.tokens.display)
    assert shown_tokens(app)[: len(cap.tokens)] == list(cap.tokens.display)
    assert query_of(app.page.url)["gen"] == ["7"]

    continue_by(app, 4, seed=7)  # sampling restarts the continuation, with its seed in the URL
    sampled = attnscope.generate(smollm2, PUB, max_new_tokens=4, do_sample=True, seed=7, top_k=5)
    assert shown_tokens(app) == list(sampled.tokens.display)
    assert (query_of(app.page.url)["gen"], query_of(app.page.url)["seed"]) == (["4"], ["7"])
    url = app.page.url
    open_app(app, urlsplit(url).query and "?" + urlsplit(url).query)  # the link shows the same tokens again
    assert shown_tokens(app) == list(sampled.tokens.display) and generated_marked(app) == list(sampled.tokens.generated)

    loads = int(app.page.get_attribute("#app", "data-loads") or 0)
    app.page.click("#continue-clear")
    app.page.wait_for_function("(n) => Number(document.getElementById('app').dataset.loads) > n", arg=loads)
    assert len(shown_tokens(app)) == prompt and "gen" not in query_of(app.page.url)
    assert app.errors == []


def test_switching_models_keeps_the_url_reproducible(app, browser, server):
    open_app(app, "?" + urlencode({"text": PUB, "gen": 5}))  # the encoder cannot continue: said, and dropped
    dropped = app.page.inner_text("#link-dropped")
    assert dropped.startswith("gen=5 was ignored: model sentence-transformers/all-MiniLM-L6-v2 is not a causal decoder")
    assert "gen" not in query_of(app.page.url)
    open_app(app, "?" + urlencode({"text": PUB, "layer": 2}))
    assert query_of(app.page.url)["model"] == ["sentence-transformers/all-MiniLM-L6-v2"]
    assert query_of(app.page.url)["corpus"] == ["small"]
    assert app.page.is_hidden("#continue-bar")
    loads = int(app.page.get_attribute("#app", "data-loads") or 0)
    app.page.select_option("#model", SMOL)
    app.page.wait_for_function("(n) => Number(document.getElementById('app').dataset.loads) > n", arg=loads)
    url = app.page.url
    assert query_of(url)["model"] == [SMOL] and "corpus" not in query_of(url)  # the corpus stays with its model
    assert app.page.get_attribute("#app", "data-stack") == "decoder" and app.page.is_visible("#continue-bar")
    tokens, layer = shown_tokens(app), app.page.input_value("#layer")

    other = AppPage(browser.new_context(viewport={"width": 1400, "height": 1000}).new_page(), server)
    other.page.set_default_timeout(120_000)
    open_app(other, "?" + urlsplit(url).query)  # the same link in a fresh page: the same model and view
    assert other.page.input_value("#model") == SMOL and shown_tokens(other) == tokens
    assert other.page.input_value("#layer") == layer and other.page.url == url
    other.page.context.close()

    loads = int(app.page.get_attribute("#app", "data-loads") or 0)
    app.page.select_option("#model", "sentence-transformers/all-MiniLM-L6-v2")
    app.page.wait_for_function("(n) => Number(document.getElementById('app').dataset.loads) > n", arg=loads)
    assert query_of(app.page.url)["corpus"] == ["small"] and app.page.is_hidden("#continue-bar")
    assert app.errors == [] and other.errors == [] and other.blocked == []
