"""The explorer app's Show switch and words mode (aggregations carried by /api/attention's payload, words merged
in the page) and its head atlas
panel, in Chromium against a real `attnscope serve` on loopback; what is drawn is compared with the API and the
atlas file the server wrote beside the index."""

from __future__ import annotations

import shutil
from urllib.parse import urlencode

import httpx
import numpy as np
import pytest

from attnscope.atlas import ATLAS_JSON, read_atlas
from attnscope.corpus import open_corpus
from attnscope.index import BuildOptions, build_index

from ..serve_process import serving

# app: the page fixture, here on this module's server
from .test_app import AppPage, app, count_lines, layer_bytes, mean_of_bytes, open_app  # noqa: F401
from .test_head_view_options import word_units

PUB = "The girl ran to a local pub to escape the din of her city."
BARE = (
    "# text = Dogs bark.\n1\tDogs\t_\tNOUN\t_\t_\t_\t_\t_\t_\n2\tbark\t_\tVERB\t_\t_\t_\t_\t_\tSpaceAfter=No\n"
    "3\t.\t_\tPUNCT\t_\t_\t_\t_\t_\t_\n\n"
)


@pytest.fixture(scope="module")
def indexes(small_index, default_model, tmp_path_factory):
    """A copy of the small index (its atlas is written beside it) and an index of a corpus without dependencies."""
    root = tmp_path_factory.mktemp("app-atlas")
    small = shutil.copytree(small_index.directory, root / "small")
    (root / "bare.conllu").write_text(BARE, encoding="utf-8")
    build_index(open_corpus(root / "bare.conllu"), default_model, root / "bare", options=BuildOptions(batch_tokens=64))
    return small, root / "bare"


@pytest.fixture(scope="module")
def server(indexes, tmp_path_factory):
    small, bare = indexes
    with serving(
        ["--model", "default", "--corpus", str(small), "--corpus", str(bare)], tmp_path_factory.mktemp("serve")
    ) as served:
        yield served.base


def aggregation(base: str, method: str, heads: list[int] | None = None, text: str = PUB) -> np.ndarray:
    """The uint8 layers /api/attention carries for ``method`` of ``text``: (layers, heads', n, n)."""
    return api_layers(base, method, heads, text)[0]


def api_layers(base: str, method: str, heads: list[int] | None = None, text: str = PUB) -> tuple[np.ndarray, dict]:
    """The uint8 layers of ``method`` ("raw": each head's weights) and the whole answer of /api/attention."""
    carried = [] if method == "raw" else [method]
    body = {"model": "default", "text": text, "aggregations": carried, **({"heads": heads} if heads else {})}
    answer = httpx.post(f"{base}/api/attention", json=body, timeout=60).json()
    return layer_bytes(answer["payload"], "encoder" if method == "raw" else f"encoder/{method}"), answer


def words_of(answer: dict) -> list[list[int]]:
    """Each word's token positions (special tokens are words of their own), from the payload's sequence."""
    return word_units(answer["payload"]["header"]["sequences"]["encoder"]["words"])


def merged(weights: np.ndarray, units: list[list[int]]) -> np.ndarray:
    """(query, key) weights between words as the head view merges them (Clark et al. 2019): the sum over a
    key word's tokens, the mean over a query word's."""
    return np.array([[weights[np.ix_(a, b)].sum() / len(a) for b in units] for a in units])


def shown(app: AppPage, method: str, aggregations: int) -> dict:
    """Wait until the attention view draws ``method`` from more than ``aggregations`` responses; what it shows
    (for the selected token: the pointer is moved off the tokens, since a hovered token outranks it)."""
    app.page.mouse.move(1, 1)
    app.page.wait_for_function(
        "([m, n]) => document.querySelector('#attention .attnscope-hv')?.dataset.aggregation === m && "
        "document.getElementById('app').dataset.aggregation === 'ready' && "
        "Number(document.getElementById('app').dataset.aggregations ?? 0) > n",
        arg=[method, aggregations],
    )
    return app.page.eval_on_selector(
        "#attention .attnscope-hv",
        """root => ({
        lines: Number(root.dataset.lines), layer: Number(root.dataset.layer), heads: root.dataset.heads,
        weights: [...root.querySelectorAll('.attnscope-hv-keys .attnscope-hv-token')]
          .map(k => Number(k.dataset.weight)),
        aggregations: Number(document.getElementById('app').dataset.aggregations)})""",
    )


def test_the_show_switch_draws_each_aggregation_of_the_selected_heads_and_survives_a_reload(app, server):
    open_app(app, "?text=" + PUB + "&layer=3&token=5")
    page = app.page
    n = len(page.locator(".attnscope-hv-queries .attnscope-hv-token").all())
    keys = list(range(n))

    page.select_option("#show", "rollout")
    view = shown(app, "rollout", 0)
    rolled = aggregation(server, "rollout")
    assert view["lines"] == count_lines(mean_of_bytes(rolled[3], [0]), keys, 0.9, [5])
    np.testing.assert_allclose(view["weights"], rolled[3, 0, 5] / 255, atol=1e-4)  # token 5's row, key by key
    assert "Abnar" in page.inner_text("#show-help")

    page.click(".attnscope-hv-heads-none")
    page.click(".attnscope-hv-head[data-head='2']")
    page.click(".attnscope-hv-head[data-head='7']")
    view = shown(app, "rollout", view["aggregations"])
    assert view["heads"] == "2,7"
    rolled_27 = aggregation(server, "rollout", [2, 7])
    assert not np.array_equal(rolled_27, rolled)
    np.testing.assert_allclose(view["weights"], rolled_27[3, 0, 5] / 255, atol=1e-4)
    assert view["lines"] == count_lines(mean_of_bytes(rolled_27[3], [0]), keys, 0.9, [5])

    page.select_option("#show", "value_norm")
    view = shown(app, "value_norm", view["aggregations"])
    norms = aggregation(server, "value_norm")
    assert norms.shape[1] == 12  # every head: the thumbnails show each, the lines average the selected
    assert view["lines"] == count_lines(mean_of_bytes(norms[3], [2, 7]), keys, 0.9, [5])
    np.testing.assert_allclose(view["weights"], mean_of_bytes(norms[3], [2, 7])[5], atol=1e-4)
    assert "Kobayashi" in page.inner_text("#show-help") and "scaled to sum to 1" in page.inner_text("#show-help")
    count = view["aggregations"]
    page.click(".attnscope-hv-head[data-head='9']")  # per-head: the selection changes on the page, nothing is fetched
    page.mouse.move(1, 1)
    page.wait_for_function("() => document.querySelector('#attention .attnscope-hv').dataset.heads === '2,7,9'")
    assert page.get_attribute("#app", "data-aggregations") == str(count)
    lines = int(page.get_attribute("#attention .attnscope-hv", "data-lines"))
    assert lines == count_lines(mean_of_bytes(norms[3], [2, 7, 9]), keys, 0.9, [5])

    page.select_option("#show", "value_norm_sum")
    view = shown(app, "value_norm_sum", count)
    summed = aggregation(server, "value_norm_sum", [2, 7, 9])
    np.testing.assert_allclose(view["weights"], summed[3, 0, 5] / 255, atol=1e-4)
    assert "show=value_norm_sum" in page.url and "heads=2%2C7%2C9" in page.url

    page.reload()
    view = shown(app, "value_norm_sum", 0)
    assert page.input_value("#show") == "value_norm_sum" and view["heads"] == "2,7,9" and view["layer"] == 3
    np.testing.assert_allclose(view["weights"], summed[3, 0, 5] / 255, atol=1e-4)

    page.select_option("#show", "raw")
    page.wait_for_function("() => document.querySelector('#attention .attnscope-hv').dataset.aggregation === 'raw'")
    assert "show=" not in page.url and "attention weights" in page.inner_text("#show-help")
    assert app.errors == []


def test_words_mode_draws_words_and_selects_and_masks_whole_words(app, server):
    text = "Unbelievably, the tokenisation splits words."
    open_app(app, "?" + urlencode({"text": text, "layer": "2"}))
    page = app.page
    tokens = page.locator(".attnscope-hv-queries .attnscope-hv-token").all_inner_texts()
    page.check("#words")  # words are merged in the page, from the tokens' weights
    page.wait_for_function(
        "() => document.getElementById('app').dataset.aggregation === 'ready' && "
        f"document.querySelectorAll('.attnscope-hv-queries .attnscope-hv-token').length < {len(tokens)}"
    )
    raw, answer = api_layers(server, "raw", text=text)
    units = words_of(answer)
    seq = answer["payload"]["header"]["sequences"]["encoder"]
    words = [
        seq["tokens"][u[0]] if seq["words"][u[0]] is None else seq["word_labels"][seq["words"][u[0]]] for u in units
    ]
    assert page.locator(".attnscope-hv-queries .attnscope-hv-token").all_inner_texts() == words
    assert words[1] == "Unbelievably" and len(units[1]) > 1 and "words=on" in page.url
    page.mouse.move(1, 1)
    keys = list(range(len(words)))
    lines = int(page.get_attribute("#attention .attnscope-hv", "data-lines"))
    assert lines == count_lines(merged(mean_of_bytes(raw[2], range(12)), units), keys, 0.9)
    assert "sum over its tokens" in page.inner_text("#show-help")

    count = int(page.get_attribute("#app", "data-aggregations") or 0)
    page.select_option("#show", "rollout")  # a combined method between words: its lines, and raw thumbnails per head
    view = shown(app, "rollout", count)
    rolled = merged(aggregation(server, "rollout", text=text)[2, 0] / 255, units)
    assert view["lines"] == count_lines(rolled, keys, 0.9)
    assert page.locator(".attnscope-hv-head").count() == 12

    page.click(
        ".attnscope-hv-queries .attnscope-hv-token >> text=tokenisation"
    )  # selects the word: its first token is the search's token
    tokenisation = units[words.index("tokenisation")]
    page.wait_for_function(
        "(t) => new URLSearchParams(location.search).get('token') === String(t)", arg=tokenisation[0]
    )
    assert page.get_attribute("#attention .attnscope-hv", "data-pinned") == f"query:{words.index('tokenisation')}"
    page.mouse.move(1, 1)
    weights = page.eval_on_selector_all(
        ".attnscope-hv-keys .attnscope-hv-token", "ks => ks.map(k => Number(k.dataset.weight))"
    )
    np.testing.assert_allclose(weights, rolled[words.index("tokenisation")], atol=1e-4)

    count = int(page.get_attribute("#app", "data-aggregations"))
    page.dblclick(".attnscope-hv-queries .attnscope-hv-token >> text=tokenisation")  # masks every token of the word
    page.wait_for_function(
        "(m) => new URLSearchParams(location.search).get('mask') === m", arg=",".join(map(str, tokenisation))
    )
    shown(app, "rollout", count)
    assert "[MASK][MASK]" in page.locator(".attnscope-hv-queries .attnscope-hv-token").all_inner_texts()
    assert page.locator(".attnscope-hv-queries .attnscope-hv-masked").count() == 1
    assert page.is_enabled("#search-embedding")
    page.uncheck("#words")
    page.wait_for_function(
        "(n) => document.querySelectorAll('.attnscope-hv-queries .attnscope-hv-token').length === n", arg=len(tokens)
    )
    assert "words=on" not in page.url
    assert app.errors == []


def test_the_atlas_panel_computes_once_colours_the_grid_and_opens_a_head(app, server, indexes):
    small, _ = indexes
    open_app(app, "?text=" + PUB)
    page = app.page
    assert page.is_hidden("#atlas-body")
    page.click("#atlas-toggle")
    # the server's first answer is always "computing" (nothing is cached yet), and the page asks again a second later
    page.wait_for_selector("#atlas[data-state=computing]", state="attached")
    assert page.is_visible("#atlas-progress") and "Computing the atlas of small" in page.inner_text("#atlas-progress")
    page.wait_for_selector("#atlas[data-state=ready] .attnscope-atlas[data-ready=true]", timeout=300_000)
    assert page.is_hidden("#atlas-progress")
    assert "atlas=open" in page.url and page.get_attribute("#atlas-toggle", "aria-expanded") == "true"
    atlas = read_atlas(small / ATLAS_JSON)  # written beside the index by the server
    cells = page.eval_on_selector_all(".attnscope-atlas-cell", "cs => cs.map(c => Number(c.dataset.value))")
    np.testing.assert_allclose(np.reshape(cells, (6, 12)), atlas.patterns.previous, atol=1e-6)

    page.click(".attnscope-atlas-cell[data-layer='4'][data-head='7']")  # open a head: the attention view shows it
    page.wait_for_function("() => document.querySelector('#attention .attnscope-hv').dataset.heads === '7'")
    assert page.input_value("#layer") == "4" and page.get_attribute("#attention .attnscope-hv", "data-layer") == "4"
    assert "layer=4" in page.url and "heads=7" in page.url

    relation = atlas.relations.names[0]
    page.select_option(".attnscope-atlas-score", f"{relation} dependent_to_head")
    page.wait_for_function(
        "(r) => decodeURIComponent(location.search.replace(/\\+/g, ' ')).includes('score=' + r)",
        arg=f"{relation} dependent_to_head",
    )
    page.select_option("#layer", "1")  # the atlas follows the head shown above
    page.wait_for_selector(".attnscope-atlas-cell[data-layer='1'][data-head='7'][aria-pressed=true]")

    page.reload()
    page.wait_for_selector("#atlas[data-state=ready] .attnscope-atlas[data-ready=true]")
    assert page.input_value(".attnscope-atlas-score") == f"{relation} dependent_to_head"
    assert page.get_attribute(".attnscope-atlas-cell[data-layer='1'][data-head='7']", "aria-pressed") == "true"
    cells = page.eval_on_selector_all(".attnscope-atlas-cell", "cs => cs.map(c => Number(c.dataset.value))")
    np.testing.assert_allclose(np.reshape(cells, (6, 12)), atlas.relations.dependent_to_head[0], atol=1e-6)

    page.select_option("#corpus", "bare")  # a corpus without dependencies: patterns, and a notice saying so
    page.wait_for_selector("#atlas[data-state=ready] .attnscope-atlas-notices")
    assert "no dependency annotations" in page.inner_text(".attnscope-atlas-notices")
    assert page.locator(".attnscope-atlas-relations").count() == 0
    page.click("#atlas-toggle")
    assert page.is_hidden("#atlas-body") and "atlas=open" not in page.url
    assert app.errors == []
