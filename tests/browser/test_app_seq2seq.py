"""Encoder-decoder models in the explorer app (Chromium, a real `attnscope serve --no-corpus` of tiny T5, BART and
BERT2BERT, and a tiny GPT-2): the page draws the encoder's self-attention and says which stack it shows, Show's
aggregations work on it, and the predictions tooltip says what predictions are (an encoder-decoder's need a target;
a causal decoder's are the next token's)."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest

import attnscope

from ..serve_process import serving
from .test_app import AppPage, app, open_app  # noqa: F401 - app: the page fixture, here on this module's server

SEQ2SEQ = ["t5", "bart", "bert2bert"]
TEXT = "Hello there, general Kenobi."


@pytest.fixture(scope="module")
def server(tiny_path, tmp_path_factory):
    args = [a for name in [*SEQ2SEQ, "gpt2"] for a in ("--model", str(tiny_path(name)))]
    with serving([*args, "--no-corpus"], tmp_path_factory.mktemp("serve-seq2seq")) as served:
        yield served.base


def shown(app: AppPage) -> dict:
    return app.page.evaluate("""() => ({
        stack: document.getElementById('app').dataset.stack,
        title: document.getElementById('attention-title').textContent,
        note: document.getElementById('stack-note').textContent,
        model: document.getElementById('model-note').textContent,
        status: document.getElementById('status').textContent,
        layers: document.getElementById('layer').options.length,
        heads: document.querySelectorAll('.attnscope-hv-head').length,
        tokens: [...document.querySelectorAll('.attnscope-hv-queries .attnscope-hv-token')].map(e => e.textContent),
        lines: Number(document.querySelector('#attention .attnscope-hv').dataset.lines) })""")


@pytest.mark.parametrize("arch", SEQ2SEQ)
def test_an_encoder_decoder_shows_its_encoder_self_attention_and_says_so(app, server, tiny, arch):
    handle = tiny(arch)
    open_app(app, "?" + urlencode({"model": handle.label, "text": TEXT}))
    page = app.page
    encoder = handle.stacks["encoder"]
    view = shown(app)
    assert view.pop("lines") > 0
    assert view == {
        "stack": "encoder",
        "title": "Attention (the encoder's self-attention)",
        "note": "This model is an encoder-decoder: this is its encoder's self-attention over the sentence. Its "
        "decoder's self-attention and its cross-attention need a target text (the decoder's input), which the "
        "explorer does not take: show them in a notebook with attnscope.model_view(attnscope.capture(model, "
        "text, target=…)).",
        "model": f"encoder-decoder · encoder: {encoder.layers} layers × {encoder.heads} heads",
        "status": "",
        "layers": encoder.layers,
        "heads": encoder.heads,
        "tokens": attnscope.encode(handle, TEXT).display,
    }
    assert encoder.layers != handle.stacks["decoder"].layers  # so the layer menu is the encoder's

    page.hover(".attnscope-hv-queries .attnscope-hv-token[data-index='1']")
    tip = page.inner_text("#tooltip")
    assert (
        f"Model {handle.label!r} is an encoder-decoder: its language-model head predicts the decoder's next token, "
        "which needs a target text (the decoder's input)" in tip
    )
    assert page.locator("#tooltip li").count() == 0

    page.select_option("#show", "rollout")  # Show's aggregations are the same stack's
    page.wait_for_selector("#app[data-aggregation=ready]")
    assert (
        page.get_attribute("#attention .attnscope-hv", "data-aggregation") == "rollout"
        and page.inner_text("#status") == ""
    )
    assert app.errors == []


def test_a_causal_decoder_says_its_stack_and_that_predictions_are_the_next_tokens(app, server, tiny):
    handle = tiny("gpt2")
    open_app(app, "?" + urlencode({"model": handle.label, "text": TEXT}))
    view = shown(app)
    assert (view["stack"], view["title"], view["note"]) == (
        "decoder",
        "Attention (decoder self-attention, causal)",
        "A causal decoder: each token attends only to itself and the tokens before it.",
    )
    app.page.hover(".attnscope-hv-queries .attnscope-hv-token[data-index='2']")
    assert "the model would predict next:" in app.page.inner_text("#tooltip")
    expected = attnscope.capture(handle, TEXT, top_k=5).top_k(2)
    shown_tokens = [item.rsplit(" ", 1)[0] for item in app.page.locator("#tooltip li").all_inner_texts()]
    assert shown_tokens == [t if t.strip() else "␣" for t, _ in expected]
    body = httpx.post(f"{server}/api/attention", json={"model": handle.label, "text": TEXT}).json()
    assert body["predictions_mode"] == "next"
    assert app.errors == []
