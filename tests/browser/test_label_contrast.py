"""Every token label meets WCAG AA contrast (4.5:1) on every shade, in light and dark themes, in a real Chromium.

For each label the page is asked only what it paints: the label's computed text colour and, from the element
stack under the label's centre (`document.elementsFromPoint`), every background and SVG fill beneath it with its
alpha. The ratio is computed here from those values, by WCAG 2.x's relative luminance. Labels covered: the app's
attention view (every kind of token under shades 0..1, and the served app on real attention), its head thumbnails'
numbers (and, on a dark theme, their lines' colours at 3:1 against the thumbnail), its corpus contexts, the head
view (its head buttons too), the model view's enlarged head and its head and layer numbers, the neuron view's SVG
(token labels and the numbers on heat cells), and the head atlas's grid. Greyed-out keys of causal models count as
labels like any other: they are struck
through, not faded, and must be readable too.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import numpy as np
import pytest

import attnscope
from attnscope.views.atlas import atlas_page
from attnscope.views.html import static_text
from attnscope.views.neuron_data import CAPTURE_FIELDS
from attnscope.views.payload import build_payload
from attnscope.views.sequences import TokenSequence

from .conftest import Page, open_sources, open_view
from .test_app import AppPage
from .test_atlas_page import constructed_atlas

AA = 4.5
THEMES = ["light", "dark"]
PUB = "The girl ran to a local pub to escape the din of her city."

# Per label: its text colour, the opacity it is drawn with (its own and its ancestors'), and what lies under its
# centre from the label down: CSS backgrounds, SVG shapes' fills, each with the alpha it is painted with.
PAINTED = """(selector) => [...document.querySelectorAll(selector)].flatMap((el) => {
  el.scrollIntoView({ block: "nearest", inline: "nearest" });
  const box = el.getBoundingClientRect();
  const style = getComputedStyle(el);
  if (box.width === 0 || box.height === 0 || style.visibility === "hidden") return [];
  const svg = el instanceof SVGElement;
  let opacity = 1;
  for (let node = el; node; node = node.parentElement) opacity *= Number(getComputedStyle(node).opacity);
  const stack = document.elementsFromPoint(box.left + box.width / 2, box.top + box.height / 2);
  const at = stack.indexOf(el);
  const layers = stack.slice(Math.max(0, at)).flatMap((node) => {
    const s = getComputedStyle(node);
    if (node instanceof SVGElement && !(node instanceof SVGSVGElement)) {
      return ["rect", "circle", "ellipse", "path", "polygon"].includes(node.tagName)
        ? [[s.fill, Number(s.fillOpacity) * Number(s.opacity)]] : [];
    }
    return [[s.backgroundColor, Number(s.opacity)]];
  });
  return [{ text: el.textContent, colour: svg ? style.fill : style.color, opacity, layers, covered: at < 0,
    kind: el.getAttribute("class") ?? "", weight: el.dataset?.weight ?? "" }];
})"""


def rgba(text: str) -> tuple[float, float, float, float]:
    """A computed CSS colour ("rgb(1, 2, 3)", "rgba(1, 2, 3, 0.5)") as channels 0-255 and alpha 0-1."""
    if text in ("none", "transparent"):
        return (0.0, 0.0, 0.0, 0.0)
    numbers = [float(n) for n in re.findall(r"[\d.]+", text)]
    assert text.startswith("rgb") and len(numbers) in (3, 4), f"not an sRGB colour: {text!r}"
    return (*numbers[:3], numbers[3] if len(numbers) == 4 else 1.0)


def over(top: tuple, bottom: tuple) -> tuple:
    """``top`` painted over the opaque ``bottom``."""
    a = top[3]
    return tuple(top[i] * a + bottom[i] * (1 - a) for i in range(3)) + (1.0,)


def luminance(rgb: tuple) -> float:
    """WCAG 2.x relative luminance of an sRGB colour."""

    def linear(c: float) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(rgb[0]) + 0.7152 * linear(rgb[1]) + 0.0722 * linear(rgb[2])


def ratio(a: tuple, b: tuple) -> float:
    hi, lo = sorted([luminance(a), luminance(b)], reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def contrast(label: dict) -> float:
    """The label's contrast ratio on what it is painted over (which must reach an opaque layer)."""
    layers = [(*rgba(colour)[:3], rgba(colour)[3] * alpha) for colour, alpha in label["layers"]]
    opaque = next((i for i, layer in enumerate(layers) if layer[3] >= 1), None)
    assert opaque is not None, f"nothing opaque under {label['text']!r}: {label['layers']}"
    background = layers[opaque]
    for layer in reversed(layers[:opaque]):
        background = over(layer, background)
    text = rgba(label["colour"])
    return ratio(over((*text[:3], text[3] * label["opacity"]), background), background)


def check(labels: list[dict], where: str) -> list[float]:
    """Every label's ratio, after asserting each reaches AA and none is covered by something else."""
    assert labels, f"no labels in {where}"
    ratios = [contrast(label) for label in labels]
    failing = [
        (round(r, 2), label["text"], label["kind"], label["colour"], label["layers"][:2])
        for r, label in zip(ratios, labels)
        if r < AA
    ]
    assert failing == [], f"{len(failing)} labels below {AA}:1 in {where}"
    assert not any(label["covered"] for label in labels)
    return ratios


def painted(page, selector: str) -> list[dict]:
    return page.evaluate(PAINTED, selector)


@pytest.fixture(params=THEMES)
def themed(request, browser):
    """A browser context in the light or dark colour scheme, and the scheme's name."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, color_scheme=request.param)
    yield context, request.param
    context.close()


# --- the app's attention view, mounted on its own with every kind of token under every shade ---------------------

N = 21  # tokens; query q gives key k the weight ((k + q) mod N) / (N - 1): each key gets every shade 0..1 once
KINDS = {0: "special", N - 1: "special", 5: "masked", 12: "masked", 3: "continuation", 8: "continuation"}
MOUNT_VIEW = """async (payload) => {
  const [panel, state] = await Promise.all([import("./app_head_view.js"), import("./app_state.js")]);
  const view = panel.createAttentionPanel(document.getElementById("attention"),
    { onSelect: () => {}, onMask: () => {}, onHeads: () => {}, onHover: () => {} });
  view.show({ payload }, state.defaultState());
  window.drawFor = (token) => view.sync({ ...state.defaultState(), token });
}"""


def shades_payload() -> dict:
    """The app's payload (header and base64 layers, as /api/attention sends it) of one layer of one head over N
    tokens of every kind: special, masked, continuing a word, ordinary, in sentences A and B."""
    rows = np.array([[((k + q) % N) / (N - 1) for k in range(N)] for q in range(N)])
    text = {"special": lambda p: "[SEP]" if p else "[CLS]", "masked": lambda p: "[MASK]"}
    tokens = [text.get(KINDS.get(p), lambda p: f"w{p}")(p) for p in range(N)]
    special = [KINDS.get(p) == "special" for p in range(N)]
    words = [None if special[p] else p for p in range(N)]
    labels = [tokens[p] for p in range(N)]
    continues = [KINDS.get(p) == "continuation" for p in range(N)]
    masked = [p for p in range(N) if KINDS.get(p) == "masked"]
    seq = TokenSequence(tokens, special, 11, words, labels, continues, masked)
    payload = build_payload({"encoder": rows[None, None]}, {"encoder": seq}, {"encoder": ("encoder", "encoder")})
    return {"header": payload.header(), "layers": payload.layers_base64()}


def test_every_kind_of_token_label_is_readable_on_every_shade_of_the_attention_view(themed):
    context, theme = themed
    page = Page(context.new_page())
    rows = np.array([[((k + q) % N) / (N - 1) for k in range(N)] for q in range(N)])
    css = static_text("app.css") + static_text("head_view.css")
    open_sources(
        page.page,
        f"<!DOCTYPE html><html><head><style>{css}</style></head>"
        "<body><div id='app'><div id='attention'></div></div></body></html>",
    )
    page.page.evaluate(MOUNT_VIEW, shades_payload())
    seen = set()
    for q in range(N):
        page.page.evaluate("(q) => window.drawFor(q)", q)
        keys = painted(page.page, ".attnscope-hv-keys .attnscope-hv-token")
        check(
            keys + painted(page.page, ".attnscope-hv-queries .attnscope-hv-token"), f"{theme} attention view, token {q}"
        )
        assert [float(k["weight"]) for k in keys] == pytest.approx(np.rint(rows[q] * 255) / 255, abs=1e-4)
        seen |= {(KINDS.get(int(p), "ordinary"), round(float(k["weight"]), 2)) for p, k in enumerate(keys)}
    shades = {round(s / (N - 1), 2) for s in range(N)}
    assert seen == {(kind, shade) for kind in ("special", "masked", "continuation", "ordinary") for shade in shades}
    assert page.errors == []


# --- the served app: real attention, a masked token, the corpus contexts -------------------------------------------


@pytest.fixture(scope="module")
def server(small_app):
    return small_app


def test_the_served_app_keeps_special_tokens_readable_under_strong_attention(themed, server, default_model):
    context, theme = themed
    app = AppPage(context.new_page(), server)
    cap = attnscope.capture(default_model, PUB, mask=[9], warn=False)
    special = [p for p, s in enumerate(cap.tokens.special) if s]
    strongest = cap.attentions.mean(axis=1)[:, :, special]  # (layers, query, special keys): the case
    layer, query, _ = np.unravel_index(strongest.argmax(), strongest.shape)
    assert strongest.max() > 0.6
    app.page.goto(server + "/?" + urlencode({"text": PUB, "mask": "9", "layer": str(layer)}))
    app.page.wait_for_selector("#app[data-attention=ready]")
    ratios = []
    for q in range(len(cap.tokens)):  # select each token in turn: the keys are shaded by its attention
        app.page.evaluate(
            "(q) => document.querySelector(`.attnscope-hv-queries .attnscope-hv-token[data-index='${q}']`).click()", q
        )
        keys = painted(app.page, ".attnscope-hv-keys .attnscope-hv-token")
        ratios += check(
            keys + painted(app.page, ".attnscope-hv-queries .attnscope-hv-token"), f"{theme} app, token {q}"
        )
        if q == query:
            shade = max(float(keys[p]["weight"]) for p in special)
            assert shade == pytest.approx(strongest.max(), abs=0.01)
    app.page.evaluate(
        "() => document.querySelector(`.attnscope-hv-queries .attnscope-hv-token[data-index='2']`).click()"
    )  # a word: specials are not searched
    app.page.click("#search-embedding")
    app.page.wait_for_selector("#results[data-state=ready] .as-ctok")
    contexts = painted(app.page, ".as-ctok")
    ratios += check(contexts, f"{theme} corpus contexts")
    assert max(rgba(c["layers"][0][0])[3] for c in contexts) == 0.75  # the strongest shade is among them

    # the system switches theme while the page is open: the labels are fitted again (media query changes are
    # reported before the next frame's animation callbacks run, so two frames later the page has answered)
    other = "dark" if theme == "light" else "light"
    app.page.emulate_media(color_scheme=other)
    app.page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
    assert app.page.evaluate("(s) => matchMedia(`(prefers-color-scheme: ${s})`).matches", other)
    ratios += check(
        painted(
            app.page, ".attnscope-hv-keys .attnscope-hv-token, .attnscope-hv-queries .attnscope-hv-token, .as-ctok"
        ),
        f"{theme} app switched to {other}",
    )
    assert min(ratios) >= AA and app.errors == [] and app.blocked == []


def test_the_apps_head_numbers_are_readable_and_their_lines_visible_on_a_dark_theme(themed, server):
    context, theme = themed
    app = AppPage(context.new_page(), server)
    app.page.goto(server + "/?" + urlencode({"text": PUB, "layer": "2"}))
    app.page.wait_for_selector("#app[data-attention=ready]")
    labels = painted(app.page, ".attnscope-hv-head-label")
    assert [label["text"] for label in labels] == [str(h) for h in range(12)]
    check(labels, f"{theme} app head numbers")  # the report: head 1 at 1.42:1 (dark), head 2 at 1.52:1 (light)
    # each thumbnail's lines are drawn in its chip's colour: the most opaque pixel of its canvas has that colour
    heads = app.page.eval_on_selector_all(
        ".attnscope-hv-head",
        """bs => bs.map((b) => {
        const c = b.querySelector('canvas'), data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let best = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > data[best + 3]) best = i - 3;
        return { chip: getComputedStyle(b.querySelector('.attnscope-hv-head-label')).backgroundColor,
                 pixel: [data[best], data[best + 1], data[best + 2]], panel: getComputedStyle(b).backgroundColor };
                   })""",
    )
    for h, head in enumerate(heads):
        assert list(rgba(head["chip"])[:3]) == pytest.approx(head["pixel"], abs=1), h
    chips = [rgba(head["chip"]) for head in heads]
    if theme == "dark":  # PALETTE_DARK: every head's lines at least 3:1 on the thumbnail (WCAG 1.4.11)
        panel = rgba(heads[0]["panel"])
        assert min(ratio(chip, panel) for chip in chips) >= 3.0
        assert chips[1][:3] == (150, 60, 255)  # head 1: a violet, not the indigo that vanished (1.42:1)
    else:
        assert chips[1][:3] == (51, 34, 136)  # Paul Tol's muted palette, made for light backgrounds
    assert app.errors == []


# --- the notebook views: head view, model view, neuron view; a causal model greys the keys after the query ----------


def causal_and_encoder(default_model, tiny):
    """A tiny Llama (causal, a <s> special token) and the default model ([CLS] and [SEP])."""
    return [
        attnscope.capture(tiny("llama"), "Dogs bark.", fields=CAPTURE_FIELDS),
        attnscope.capture(default_model, "Dogs bark at night.", fields=CAPTURE_FIELDS),
    ]


def test_head_view_labels_are_readable_when_highlighted_special_or_in_the_future(themed, tmp_path, default_model, tiny):
    context, theme = themed
    page = Page(context.new_page())
    kinds = set()
    for n, cap in enumerate(causal_and_encoder(default_model, tiny)):
        root = open_view(page, tmp_path, attnscope.head_view(cap).to_html(), ".attnscope-hv", f"head{n}.html")
        for q in range(len(cap.tokens)):
            root.locator(f".attnscope-hv-queries .attnscope-hv-token[data-index='{q}']").click()
            page.page.mouse.move(0, 0)
            labels = painted(page.page, ".attnscope-hv-token, .attnscope-hv-head")
            check(labels, f"{theme} head view, query {q}")
            kinds |= {k for label in labels for k in label["kind"].split() if k != "attnscope-hv-token"}
        head = rgba(
            page.page.eval_on_selector(".attnscope-hv-head[data-head='1']", "b => getComputedStyle(b).backgroundColor")
        )
        assert head[:3] == ((150, 60, 255) if theme == "dark" else (51, 34, 136))  # the palette for the background
    assert {"attnscope-hv-special", "attnscope-hv-active", "attnscope-hv-future", "attnscope-hv-head"} <= kinds
    assert page.errors == []


def test_model_view_labels_are_readable_when_hovered_special_or_in_the_future(themed, tmp_path, default_model, tiny):
    context, theme = themed
    page = Page(context.new_page())
    kinds = set()
    for n, cap in enumerate(causal_and_encoder(default_model, tiny)):
        open_view(page, tmp_path, attnscope.model_view(cap).to_html(), ".attnscope-mv", f"model{n}.html")
        page.page.click(".attnscope-mv-cell[data-layer='1'][data-head='0']")
        for q in range(len(cap.tokens)):
            page.page.hover(f".attnscope-mv-queries .attnscope-mv-token[data-index='{q}']")
            labels = painted(page.page, ".attnscope-mv-token, .attnscope-mv-head-label, .attnscope-mv-layer-label")
            check(labels, f"{theme} model view, query {q}")
            kinds |= {k for label in labels for k in label["kind"].split()}
    assert {"attnscope-mv-special", "attnscope-mv-active", "attnscope-mv-future"} <= kinds
    assert page.errors == []


def test_neuron_view_labels_and_numbers_are_readable_on_their_cells(themed, tmp_path, default_model, tiny):
    context, theme = themed
    page = Page(context.new_page())
    masked = 0
    for n, cap in enumerate(causal_and_encoder(default_model, tiny)):
        root = open_view(page, tmp_path, attnscope.neuron_view(cap).to_html(), ".attnscope-nv", f"neuron{n}.html")
        for q in (0, len(cap.tokens) // 2):
            root.locator(f".nv-query[data-index='{q}']").click()
            texts = painted(page.page, ".attnscope-nv-svg text")
            check(texts, f"{theme} neuron view, query {q}")
            masked += page.page.locator(".nv-masked .nv-token").count()
            decoration = page.page.eval_on_selector_all(
                ".nv-masked .nv-token", "ts => ts.map(t => getComputedStyle(t).textDecorationLine)"
            )
            assert set(decoration) <= {"line-through"}
    assert masked > 0  # the causal model's future keys were among the labels
    assert page.errors == []


def test_head_atlas_grid_numbers_are_readable_on_every_score_colour(themed, tmp_path):
    context, theme = themed
    page = Page(context.new_page())
    html = atlas_page(constructed_atlas("tiny"))
    open_view(page, tmp_path, html, ".attnscope-atlas")
    cells = painted(page.page, ".attnscope-atlas-cell")
    assert len(cells) == 72
    check(cells, f"{theme} atlas grid")
    assert page.errors == []
