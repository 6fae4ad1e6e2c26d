"""M6 figures of the explorer app with a causal decoder (the built-in SmolLM2-135M-Instruct), called by bench/app.py.

Serves SmolLM2 in this process (uvicorn on a free loopback port, at most 1,024 tokens per input: the app's usual
limit is 256) and drives the app in headless Chromium (Debian's) on a 512-token prompt: EWT dev+test sentences
densest in tokens first (the API takes 2,000 characters), cut at 512 tokens. Measured, each as median and p95
over repetitions, from the event to the next painted frame:

- layer change: the layer select's change event to the head view drawn at that layer (goal <= 100 ms);
- prediction shown after hover: a query token's mouseenter to the tooltip listing its top-5 next tokens (goal
  <= 50 ms; the predictions come with the attention, so the hover asks the server nothing);
- search click: a search button's click (embedding and heads in turn, at layer 16, one the index stores) to the
  matches drawn, on SmolLM2's index of the default corpus (EWT dev+test at layers 0, 8, 16, 24, 29), the index
  `attnscope serve --model smollm2` builds on first use: taken from the cache when it is there, else built into it
  first (goal <= 300 ms);
- Continue of 20 tokens: the click to prompt plus continuation drawn (the request, `attnscope.generate` and
  the payload included) against ``model.generate`` of the same 20 tokens (greedy) on the same model in the
  same process, measured alternately (goal: ratio <= 1.5); also `attnscope.generate` alone (generation with
  its forward passes joined into the capture) against ``model.generate``, which says where the time goes.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import torch
import uvicorn

from attnscope import load
from attnscope.capture.generation import generate
from attnscope.capture.inputs import encode
from attnscope.server import AppState, create_app
from attnscope.server.state import Limits

EWT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "ud_english_ewt"
PROMPT_TOKENS = 512
NEW_TOKENS = 20


def prompt_text(handle, sentences: list[str], tokens: int = PROMPT_TOKENS, chars: int = 2000) -> str:
    """EWT text of exactly ``tokens`` tokens (as the app tokenises it) within ``chars`` characters."""
    tokenizer = handle.tokenizer
    dense = sorted(sentences, key=lambda s: -len(tokenizer(s)["input_ids"]) / len(s))
    text = ""
    for sentence in dense:
        if len(text) + len(sentence) + 1 > chars:
            continue
        text = f"{text} {sentence}".strip()
        if len(encode(handle, text).ids) >= tokens:
            break
    ids = encode(handle, text).ids
    cut = tokenizer.decode(ids[:tokens])
    while len(encode(handle, cut).ids) > tokens:  # a decoded cut may tokenise one piece longer
        cut = cut[:-1]
    return cut


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def figure(values: list[float]) -> str:
    return f"{statistics.median(values):8.1f} ms (p95 {percentile(values, 0.95):.1f}, n={len(values)})"


class Served:
    """`create_app` over SmolLM2 under uvicorn in a thread, until `stop`."""

    def __init__(self, handle, port: int, index=None) -> None:
        state = AppState(models={}, limits=Limits(max_tokens=1024))
        state.add_model("smollm2", handle)
        if index is not None:
            state.add_corpus("ewt", index, handle)
        self.server = uvicorn.Server(
            uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        self.base = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join()


def plain_generate(handle, ids: list[int]) -> tuple[float, list[int]]:
    """``model.generate`` of `NEW_TOKENS` greedy tokens after ``ids``: seconds and the new ids."""
    tensor = torch.tensor([ids])
    pad = handle.tokenizer.pad_token_id if handle.tokenizer.pad_token_id is not None else handle.tokenizer.eos_token_id
    started = time.perf_counter()
    with handle.lock, torch.inference_mode():
        out = handle.model.generate(
            input_ids=tensor, attention_mask=torch.ones_like(tensor), max_new_tokens=NEW_TOKENS, do_sample=False,
            num_beams=1, pad_token_id=pad,
        )  # fmt: skip
    return time.perf_counter() - started, out[0, len(ids) :].tolist()


def wait_loads(page, before: int) -> None:
    page.wait_for_function("(n) => Number(document.getElementById('app').dataset.loads) > n", arg=before, timeout=0)


def decoder_figures(sentences: list[str], samples: int, continues: int, timed: str, port: int) -> None:
    """Print the M6 figures (see the module's docstring); ``timed`` is bench/app.py's event-to-paint script."""
    from playwright.sync_api import sync_playwright
    from tests.chromium import ARGS, CHROMIUM

    handle = load("smollm2")
    text = prompt_text(handle, sentences)
    ids = encode(handle, text).ids
    print(f"\nM6 the app with SmolLM2-135M-Instruct: a {len(ids)}-token prompt ({len(text)} characters of EWT)")
    served = Served(handle, port, default_corpus_index(handle))
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(0)
            page.goto(f"{served.base}/?{urlencode({'model': 'smollm2', 'text': text})}")
            page.wait_for_selector("#app[data-attention=ready]")
            layers = [layer_change(page, timed, (i + 1) % 30) for i in range(samples)]
            hovers = [hover(page, timed, position) for position in hover_positions(page, samples)]
            print(f"  layer change at {len(ids)} tokens {figure(layers)}; goal <= 100 ms "
                  f"{'ok' if statistics.median(layers) <= 100 else 'MISSED'}")  # fmt: skip
            print(f"  prediction shown after hover   {figure(hovers)}; goal <= 50 ms "
                  f"{'ok' if statistics.median(hovers) <= 50 else 'MISSED'}")  # fmt: skip
            search_figures(page, served.base, sentences, text, timed, samples)
            continue_figures(page, handle, text, ids, timed, continues)
            browser.close()
    finally:
        served.stop()


def default_corpus_index(handle):
    """SmolLM2's index of the default corpus from attnscope's cache (as `attnscope serve` takes it), built there
    first when missing or stale (minutes)."""
    from rich.console import Console

    from attnscope.cli_indexes import DEFAULT_CORPUS, default_index_dir
    from attnscope.cli_serve import _cached_default, default_layers
    from attnscope.corpus import open_corpus
    from attnscope.index import BuildOptions, Index, build_index

    os.environ.setdefault("ATTNSCOPE_EWT_DIR", str(EWT_DIR))  # the default corpus, as `make run` reads it
    directory = default_index_dir(handle.name)
    layers = default_layers(handle.stacks[handle.main_stack].layers)
    index = _cached_default(handle, layers, Console())
    if index is not None:
        return index
    started = time.perf_counter()
    directory.parent.mkdir(parents=True, exist_ok=True)
    options = BuildOptions(layers=layers)
    build_index(open_corpus(DEFAULT_CORPUS), handle, directory, options=options, overwrite=directory.exists())
    print(f"  built SmolLM2's index of the default corpus in {time.perf_counter() - started:.0f} s", flush=True)
    return Index.open(directory)


def search_figures(page, base: str, sentences: list[str], text: str, timed: str, samples: int) -> None:
    """Search clicks to matches drawn, at layer 16: on a short EWT sentence and on the prompt."""
    pages = (("a short sentence", sentences[7], 3), (f"the {PROMPT_TOKENS}-token prompt", text, 300))
    for label, shown, token in pages:
        query = {"model": "smollm2", "corpus": "ewt", "text": shown, "token": token, "layer": 16}
        page.goto(f"{base}/?{urlencode(query)}")
        page.wait_for_selector("#app[data-attention=ready]")
        clicks = []
        for i in range(samples):
            before = int(page.get_attribute("#results", "data-searches") or 0)
            button = "search-embedding" if i % 2 == 0 else "search-heads"
            ready = f"Number(document.getElementById('results').dataset.searches || 0) > {before}"
            clicks.append(page.evaluate(timed, [f"document.getElementById('{button}').click();", ready]))
        rows = page.locator(".as-match").count()
        print(f"  search click to {rows} matches drawn, {label} {figure(clicks)}; goal <= 300 ms "
              f"{'ok' if statistics.median(clicks) <= 300 else 'MISSED'}")  # fmt: skip


def layer_change(page, timed: str, layer: int) -> float:
    action = f"const s = document.getElementById('layer'); s.value = '{layer}'; s.dispatchEvent(new Event('change'));"
    return page.evaluate(
        timed, [action, f"document.querySelector('#attention .attnscope-hv').dataset.layer === '{layer}'"]
    )


def hover_positions(page, samples: int) -> list[int]:
    """Query positions drawn now: spread over the input, or over the band of rows a long input's view shows."""
    band = page.evaluate("() => document.querySelector('#attention .attnscope-hv').dataset.band ?? ''")
    if not band:
        return [37 + 11 * i for i in range(samples)]
    first, stop = map(int, band.split("-"))
    return [first + (3 * i) % (stop - first) for i in range(samples)]


def hover(page, timed: str, position: int) -> float:
    node = f"document.querySelector(\".attnscope-hv-queries .attnscope-hv-token[data-index='{position}']\")"
    page.evaluate(f"() => {{ {node}.dispatchEvent(new MouseEvent('mouseleave')); }}")
    page.evaluate("() => { document.getElementById('tooltip').hidden = true; }")
    ready = (
        "(() => { const t = document.getElementById('tooltip'); return !t.hidden && "
        f"t.textContent.includes('(position {position})') && t.querySelectorAll('li').length === 5; }})()"
    )
    return page.evaluate(timed, [f"{node}.dispatchEvent(new MouseEvent('mouseenter'));", ready])


def generated_shown(page, tokens: int) -> int:
    """Query tokens marked generated; a long input's view shows a band of rows: it is scrolled to the end first
    (through its "Go to" box, which the app keeps hidden)."""
    if page.locator("#attention .attnscope-hv-goto").count():
        page.evaluate(
            "(n) => { const g = document.querySelector('#attention .attnscope-hv-goto'); g.value = String(n);"
            " g.dispatchEvent(new Event('change')); }",
            tokens - 1,
        )
        page.wait_for_function(
            f"() => document.querySelector('#attention .attnscope-hv').dataset.band.endsWith('-{tokens}')",
            timeout=30_000,
        )
    return page.locator(".attnscope-hv-queries .attnscope-hv-generated").count()


def continue_figures(page, handle, text: str, ids: list[int], timed: str, repeats: int) -> None:
    """Continue of `NEW_TOKENS` in the app against ``model.generate`` of the same tokens, alternately."""
    clicks, plain, library = [], [], []
    for _ in range(repeats):
        seconds, new = plain_generate(handle, ids)
        plain.append(seconds * 1000)
        started = time.perf_counter()
        cap = generate(handle, text, NEW_TOKENS, fields=["attentions"], top_k=5)
        library.append((time.perf_counter() - started) * 1000)
        assert list(cap.tokens.ids[len(ids) :]) == new, "attnscope.generate chose other tokens than model.generate"
        before = int(page.get_attribute("#app", "data-loads") or 0)
        action = (
            f"document.getElementById('continue-n').value = '{NEW_TOKENS}';"
            " document.getElementById('continue').click();"
        )
        ready = f"Number(document.getElementById('app').dataset.loads) > {before}"
        clicks.append(page.evaluate(timed, [action, ready]))
        shown = generated_shown(page, len(ids) + len(new))
        assert shown == len(new), f"the app marked {shown} generated tokens, model.generate made {len(new)}"
        before = int(page.get_attribute("#app", "data-loads") or 0)
        page.click("#continue-clear")
        wait_loads(page, before)
    ratio = statistics.median(clicks) / statistics.median(plain)
    print(f"  Continue of {NEW_TOKENS} tokens, click to drawn {figure(clicks)}")
    print(f"  model.generate of the same tokens {figure(plain)}; ratio {ratio:.2f}x; goal <= 1.5x "
          f"{'ok' if ratio <= 1.5 else 'MISSED'}")  # fmt: skip
    print(f"  attnscope.generate alone (generation, its passes joined into the capture) {figure(library)}; "
          f"ratio to model.generate {statistics.median(library) / statistics.median(plain):.2f}x")  # fmt: skip
