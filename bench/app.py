"""P6 and R2: the explorer app's responsiveness in Chromium, and the server under 16 concurrent clients.

Starts a real `attnscope serve` (default model, the EWT dev+test index: ``--index DIR``, or built
once into a temporary directory from ../shared/data) on a free loopback port, then:

- P6 in headless Chromium (Debian's): the time from a layer change (the select's change event) to the
  next painted frame, and from a search click to the results drawn and painted (the API call
  included), each over ``--samples`` repetitions, for the paper's sentence (17 tokens) and a
  250-token input. Goals: layer change <= 100 ms, search click <= 300 ms. Also the time from a Show
  switch (to rollout, value norms, summed value norms, in turn) to its lines painted.
- R2: ``--clients`` threads (16) on loopback for ``--seconds`` (60), each sending, one after another,
  attention requests (random EWT sentences, sometimes as pairs or with a masked token), searches
  (random token, layer, mode and heads) and aggregations (attention requests carrying a random rollout or
  value-norm aggregation, sometimes of random heads): errors, requests/s, p50/p99
  latency per kind, and the
  server's resident memory after warm-up, every 10 s, and at the end. Goals: zero errors, flat memory.
- The head atlas panel's computation: a second server over a hard-linked copy of the index (without
  its atlas) is asked for the atlas; the time until it is ready, and attention requests' latency while
  it is computed against an idle server.
- M6 with the built-in SmolLM2 (bench/app_decoder.py): layer change at 512 tokens, a prediction shown
  after hover, and Continue of 20 tokens at a 512-token prompt against ``model.generate`` of the same tokens.

- M6 at length: a 4,096-token prompt on SmolLM2 (a server of its own): layer change to lines painted, goal
  <= 200 ms (`long_layer_changes`; ``--long-only`` runs only this).

    .venv/bin/python bench/app.py [--index DIR] [--samples 20] [--clients 16] [--seconds 60] [--no-atlas]
        [--decoder-only] [--continues 3] [--long-only]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.chromium import ARGS, CHROMIUM  # noqa: E402 - how the tests start Chromium
from tests.serve_process import free_port, serving  # noqa: E402 - the same server runner the tests use

from app_decoder import decoder_figures  # noqa: E402 - M6, bench/app_decoder.py
from attnscope.corpus import open_corpus  # noqa: E402

PUB = "The girl ran to a local pub to escape the din of her city."
EWT = ROOT.parent / "shared" / "data" / "ud_english_ewt"

# Runs `action` (a string of JS), then resolves with the ms until `ready()` holds and a frame is painted.
TIMED = """async ([action, ready]) => {
  const t0 = performance.now();
  (new Function(action))();
  const done = new Function("return " + ready);
  while (!done()) await new Promise((r) => setTimeout(r, 1));
  await new Promise((r) => requestAnimationFrame(() => { const c = new MessageChannel();
    c.port1.onmessage = r; c.port2.postMessage(0); }));
  return performance.now() - t0;
}"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def p6(base: str, samples: int, long_text: str) -> None:
    from playwright.sync_api import sync_playwright

    print(f"P6 app in headless Chromium: median and p95 over {samples} samples, event to painted frame")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for label, text, token in (("17 tokens", PUB, 9), ("250 tokens", long_text, 120)):
            page.goto(f"{base}/?{urlencode({'text': text, 'token': token})}")
            page.wait_for_selector("#app[data-attention=ready]")
            n = page.locator(".attnscope-hv-queries .attnscope-hv-token").count()
            layers = []
            for i in range(samples):
                layer = (i + 1) % 6
                action = (
                    f"const s = document.getElementById('layer'); s.value = '{layer}';"
                    " s.dispatchEvent(new Event('change'));"
                )
                layers.append(
                    page.evaluate(
                        TIMED,
                        [action, f"document.querySelector('#attention .attnscope-hv').dataset.layer === '{layer}'"],
                    )
                )
            searches = []
            for i in range(samples):
                before = int(page.get_attribute("#results", "data-searches") or 0)
                button = "search-embedding" if i % 2 == 0 else "search-heads"
                action = f"document.getElementById('{button}').click();"
                ready = f"Number(document.getElementById('results').dataset.searches || 0) > {before}"
                searches.append(page.evaluate(TIMED, [action, ready]))
            rows = page.locator(".as-match").count()
            print(
                f"  {label} ({n} shown): layer change {statistics.median(layers):6.1f} ms (p95 "
                f"{percentile(layers, 0.95):.1f}),"
                f" search click to {rows} matches drawn {statistics.median(searches):6.1f} ms (p95 "
                f"{percentile(searches, 0.95):.1f})"
            )
            print(
                f"    goals: layer change <= 100 ms {'ok' if statistics.median(layers) <= 100 else 'MISSED'};"
                f" search <= 300 ms {'ok' if statistics.median(searches) <= 300 else 'MISSED'}"
            )
            shows = show_switches(page, ("rollout", "value_norm", "value_norm_sum"), samples)
            print(
                "    Show switch to each aggregation, the API call included: "
                + ", ".join(
                    f"{method} {statistics.median(times):.1f} ms (p95 {percentile(times, 0.95):.1f})"
                    for method, times in shows.items()
                )
            )
        browser.close()


LONG_TOKENS = 4096


def long_layer_changes(samples: int) -> None:
    """M6 at length: a 4,096-token prompt on SmolLM2 in the app (its own `attnscope serve --model smollm2`), the
    time from a layer change to that layer's lines painted (the band's rows, asked for while the server computes
    the layer's top keys) and to the whole layer drawn; jumps to layers the server has not computed (every third:
    it computes the neighbours of each layer asked for ahead) and steps to the next layer (computed ahead)."""
    from playwright.sync_api import sync_playwright
    from tests.long_prompt import prompt_of

    from attnscope import load

    text = prompt_of(load("smollm2"), LONG_TOKENS)
    with tempfile.TemporaryDirectory() as tmp, serving(["--model", "smollm2", "--no-corpus"], Path(tmp)) as served:
        name = httpx.get(f"{served.base}/api/models").json()[0]["name"]
        print(f"M6 long prompt: {LONG_TOKENS:,} tokens on {name} in headless Chromium, event to painted frame")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            t0 = time.perf_counter()
            page.goto(f"{served.base}/?{urlencode({'model': name, 'text': text})}")
            page.wait_for_selector("#app[data-attention=ready]", timeout=1_800_000)
            page.wait_for_selector("#attention .attnscope-hv[data-rows=all][data-loading=false]", timeout=600_000)
            print(f"  first draw (capture on demand and layer 0 included): {time.perf_counter() - t0:.1f} s")
            jumps = [3 * (i + 1) for i in range(min(samples, 9))]
            steps = [layer + 1 for layer in jumps]
            for label, layers in (("jump to a layer not computed", jumps), ("step to the next layer", steps)):
                band, whole = [], []
                for layer in layers:
                    action = (
                        f"const s = document.getElementById('layer'); s.value = '{layer}';"
                        " s.dispatchEvent(new Event('change'));"
                    )
                    root = "document.querySelector('#attention .attnscope-hv').dataset"
                    shown = f"{root}.layer === '{layer}' && {root}.loading === 'false'"
                    band.append(page.evaluate(TIMED, [action, shown]))
                    whole.append(band[-1] + page.evaluate(TIMED, ["", f"{shown} && {root}.rows === 'all'"]))
                    page.wait_for_timeout(300)  # the layers computed ahead start before the next change
                print(
                    f"  {label} ({len(layers)} samples): lines painted {statistics.median(band):6.1f} ms (p95 "
                    f"{percentile(band, 0.95):.1f}), whole layer drawn {statistics.median(whole):6.1f} ms (p95 "
                    f"{percentile(whole, 0.95):.1f}); goal <= 200 ms: "
                    f"{'ok' if statistics.median(band) <= 200 else 'MISSED'}"
                )
            browser.close()


def show_switches(page, methods: tuple[str, ...], samples: int) -> dict[str, list[float]]:
    """Times from choosing each of ``methods`` in the Show select (in turn, so each is fetched again:
    the app keeps one aggregation) to its lines painted, ``samples`` times each."""
    times: dict[str, list[float]] = {method: [] for method in methods}
    for i in range(samples * len(methods)):
        method = methods[i % len(methods)]
        before = int(page.get_attribute("#app", "data-aggregations") or 0)
        action = (
            f"const s = document.getElementById('show'); s.value = '{method}'; s.dispatchEvent(new Event('change'));"
        )
        ready = (
            f"document.querySelector('#attention .attnscope-hv').dataset.aggregation === '{method}' && "
            f"Number(document.getElementById('app').dataset.aggregations || 0) > {before}"
        )
        times[method].append(page.evaluate(TIMED, [action, ready]))
    page.select_option("#show", "raw")
    return times


def r2(base: str, pid: int, sentences: list[str], clients: int, seconds: float) -> None:
    corpus = httpx.get(f"{base}/api/corpora").json()[0]
    stop = time.monotonic() + seconds
    lock = threading.Lock()
    latencies: dict[str, list[float]] = {"attention": [], "search": [], "aggregation": []}
    errors: list[str] = []

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=base, timeout=60) as http:
            while time.monotonic() < stop:
                text = rng.choice(sentences)
                draw = rng.random()
                if draw < 0.2:  # an aggregation travels in the attention payload (POST /api/attention)
                    kind = "aggregation"
                    method = rng.choice(["rollout", "value_norm", "value_norm_sum"])
                    body: dict = {"model": "default", "text": text, "aggregations": [method]}
                    if method != "value_norm" and rng.random() < 0.5:
                        body["heads"] = sorted(rng.sample(range(corpus["heads"]), rng.randint(1, corpus["heads"])))
                elif draw < 0.6:
                    kind = "attention"
                    body = {"model": "default", "text": text}
                    if rng.random() < 0.3:
                        body["text_pair"] = rng.choice(sentences)
                    if rng.random() < 0.3:
                        body["mask"] = [1]
                else:
                    kind = "search"
                    heads = sorted(rng.sample(range(corpus["heads"]), rng.randint(1, corpus["heads"])))
                    body = {
                        "corpus": corpus["name"],
                        "text": text,
                        "token": 1,
                        "layer": rng.randrange(corpus["layers"]),
                        "mode": rng.choice(["embedding", "heads"]),
                        "heads": heads,
                    }
                started = time.perf_counter()
                try:
                    response = http.post("/api/search" if kind == "search" else "/api/attention", json=body)
                    ok = response.status_code == 200
                    detail = f"{kind} {response.status_code} {response.text[:200]}"
                except httpx.HTTPError as error:
                    ok, detail = False, f"{kind} {type(error).__name__}: {error}"
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    latencies[kind].append(elapsed)
                    if not ok:
                        errors.append(detail)

    for layer in range(corpus["layers"]):  # warm-up: every vector set is loaded before memory is first read
        for mode in ("embedding", "heads"):
            httpx.post(
                f"{base}/api/search",
                json={"corpus": corpus["name"], "text": sentences[layer], "token": 1, "layer": layer, "mode": mode},
                timeout=60,
            )
    memory = [(0.0, rss_mib(pid))]
    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        time.sleep(1)
        now = time.monotonic() - started
        if now - memory[-1][0] >= 10:
            memory.append((now, rss_mib(pid)))
    for thread in threads:
        thread.join()
    memory.append((time.monotonic() - started, rss_mib(pid)))
    total = sum(len(v) for v in latencies.values())
    print(f"\nR2 load: {clients} clients on loopback for {seconds:.0f} s: attention 40%, search 40%, aggregation 20%")
    print(f"  requests {total:,} ({total / seconds:.1f}/s), errors {len(errors)}")
    for kind, values in latencies.items():
        if values:
            print(
                f"  {kind:11s} {len(values):5d} requests: p50 {percentile(values, 0.5):7.1f} ms, p99 "
                f"{percentile(values, 0.99):7.1f} ms"
            )
    print("  server memory (RSS, MiB): " + ", ".join(f"{t:.0f} s {m:.0f}" for t, m in memory))
    growth = memory[-1][1] - memory[1][1] if len(memory) > 2 else memory[-1][1] - memory[0][1]
    half = next(m for t, m in memory if t >= memory[-1][0] / 2)  # the allocator settles in the first minute or so
    print(
        f"  memory from the first 10 s to the end: {growth:+.0f} MiB, over the second half: "
        f"{memory[-1][1] - half:+.0f} MiB; goals: zero errors {'ok' if not errors else 'MISSED'}, flat memory "
        f"{'ok' if abs(growth) <= 50 else 'CHECK'} (within 50 MiB)"
    )
    for detail in errors[:5]:
        print(f"  error: {detail}")


def atlas_in_background(index: Path, tmp: Path, sentences: list[str]) -> None:
    """Serve a hard-linked copy of ``index`` (no atlas yet), ask for its atlas, and time attention
    requests (one client, one after another) before and while the atlas is computed."""
    copy = tmp / "atlas-copy" / index.name
    shutil.copytree(index, copy, copy_function=os.link, ignore=shutil.ignore_patterns("atlas.*"))
    with serving(["--corpus", str(copy)], tmp) as served, httpx.Client(base_url=served.base, timeout=120) as http:
        corpus = http.get("/api/corpora").json()[0]["name"]

        def attention(i: int) -> float:
            started = time.perf_counter()
            response = http.post("/api/attention", json={"model": "default", "text": sentences[i % len(sentences)]})
            response.raise_for_status()
            return (time.perf_counter() - started) * 1000

        idle = [attention(i) for i in range(40)]
        started = time.perf_counter()
        answer = http.get("/api/atlas", params={"corpus": corpus}).json()
        busy: list[float] = []
        while answer["status"] == "computing":
            busy.append(attention(len(busy)))
            answer = http.get("/api/atlas", params={"corpus": corpus}).json()
        seconds = time.perf_counter() - started
    print(
        f"\nHead atlas computed by the server in the background: {answer['status']} after {seconds:.1f} s "
        f"({answer['total']:,} tokens)"
    )
    if busy:
        print(
            f"  attention requests meanwhile: p50 {percentile(busy, 0.5):.1f} ms, p95 {percentile(busy, 0.95):.1f} ms "
            f"({len(busy)} requests); with the server idle: p50 {percentile(idle, 0.5):.1f} ms, "
            f"p95 {percentile(idle, 0.95):.1f} ms; ratio of p50s {percentile(busy, 0.5) / percentile(idle, 0.5):.1f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", type=Path, help="an EWT index of the default model (default: build one)")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--no-atlas", action="store_true", help="skip the head atlas computed in the background")
    parser.add_argument("--decoder-only", action="store_true", help="only the M6 figures with SmolLM2")
    parser.add_argument("--continues", type=int, default=3, help="Continue and model.generate runs (M6)")
    parser.add_argument("--long-only", action="store_true", help="only the 4,096-token prompt on SmolLM2 (M6)")
    args = parser.parse_args()
    if args.long_only:
        long_layer_changes(args.samples)
        return
    sentences = [s.text for s in open_corpus(EWT).sentences if 5 <= len(s.words) <= 40]
    if args.decoder_only:
        decoder_figures(sentences, args.samples, args.continues, TIMED, free_port())
        return
    long_text = " ".join(sentences[:40])
    with tempfile.TemporaryDirectory() as tmp:
        index = args.index
        if index is None:
            from attnscope import load
            from attnscope.index import build_index

            index = Path(tmp) / "ewt"
            print("building the EWT index ...", flush=True)
            build_index(open_corpus(EWT), load("default"), index)
        with serving(["--corpus", str(index)], Path(tmp)) as served:
            base = served.base
            words = long_text.split()
            while (
                len(
                    httpx.post(f"{base}/api/attention", json={"model": "default", "text": " ".join(words)})
                    .json()
                    .get("tokens", {})
                    .get("tokens", [0] * 999)
                )
                > 250
            ):
                words = words[:-5]
            p6(base, args.samples, " ".join(words))
            r2(base, served.pid, sentences, args.clients, args.seconds)
        if not args.no_atlas:
            atlas_in_background(index, Path(tmp), sentences)
    decoder_figures(sentences, args.samples, args.continues, TIMED, free_port())
    long_layer_changes(args.samples)


if __name__ == "__main__":
    main()
