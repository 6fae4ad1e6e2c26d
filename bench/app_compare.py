"""B5 in the app: "Compare with" at 512 tokens, from the request to the diff view drawn in Chromium.

A real `attnscope serve` on loopback serves two models (``--models default``: the default model, 6 × 12 heads,
and a copy with head 2-5's queries zeroed, saved to a folder; ``--models bert-base``: two randomly initialised
BERT-base-shaped models, 12 × 12 heads, the comparison's worst case, see bench/diff.py). The app is opened in a
fresh headless Chromium (every non-local request refused) with a text of ``--length`` tokens and
``compare=`` the second model, and timed per visit: the server's answer to ``POST /api/compare`` (request sent
to the last byte received, from the page's resource timing: captures, comparison, payload, transfer) and the
diff view drawn after the answer arrived (parse, inflate, draw; until the view says ``data-ready``). Also printed:
the answer's size. Goal (issue 18): the diff page draws in at most 2 s at 512 tokens for 12 × 12 heads.

    nice -n 19 .venv/bin/python bench/app_compare.py [--models default|bert-base] [--length 512] [--repeats 3]

Prints times; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

import torch

import attnscope
from attnscope.capture.loading import default_model_path, quiet_transformers

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.chromium import ARGS, CHROMIUM, LOCAL  # noqa: E402 - how the tests start Chromium
from tests.serve_process import serving  # noqa: E402 - the same server runner the tests use
from tests.zeroed_model import save_zeroed_copy, zeroed_query_copy  # noqa: E402 - the tests' changed checkpoint

TEXT = ("The girl ran to a local pub to escape the din of her city. " * 64).strip()
# Records when the diff view first says it is drawn (performance.now(), ms), before the page's own scripts run.
WATCH = """new MutationObserver((_, observer) => {
  if (document.querySelector('#compare-view .attnscope-dv[data-ready=true]')) {
    window.__drawnAt = performance.now(); observer.disconnect(); }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-ready'] });"""
TIMES = """() => { const e = performance.getEntriesByType('resource').find((r) => r.name.endsWith('/api/compare'));
  return { asked: e.startTime, answered: e.responseEnd, drawn: window.__drawnAt, bytes: e.encodedBodySize }; }"""


def bert_base_folder(root: Path, seed: int) -> Path:
    """A randomly initialised BERT-base-shaped model (seed ``seed``) with the default tokenizer, saved in ``root``."""
    import transformers

    directory = root / f"bert-base-random-{seed}"
    torch.manual_seed(seed)
    with quiet_transformers():
        transformers.BertModel(transformers.BertConfig()).save_pretrained(directory)
    transformers.AutoTokenizer.from_pretrained(default_model_path()).save_pretrained(directory)
    return directory


def text_of(length: int) -> str:
    """Text that the default tokenizer (both models' here) turns into exactly ``length`` tokens, specials included."""
    handle = attnscope.load("default")
    ids = attnscope.encode(handle, TEXT, truncate=True).ids
    words = handle.tokenizer.decode(ids[1 : length - 1])
    assert len(attnscope.encode(handle, words).ids) == length
    return words


def visit(browser, origin: str, query: str) -> dict:
    """Open the app at ``origin`` with ``query`` in a fresh context (only ``origin`` and local schemes reachable),
    wait until the diff view is drawn; the page's timings (ms) and sizes."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    allowed = (*LOCAL, origin + "/")
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(allowed) else route.abort())
    page.add_init_script(WATCH)
    page.goto(origin + "/" + query)
    page.wait_for_function("() => window.__drawnAt !== undefined", timeout=600_000, polling=50)
    times = page.evaluate(TIMES)
    context.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", choices=["default", "bert-base"], default="default")
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="attnscope-app-compare-") as tmp:
        root = Path(tmp)
        if args.models == "bert-base":
            models = [str(bert_base_folder(root, 0)), str(bert_base_folder(root, 1))]
            print("models: two random BERT-base-shaped models (12 layers x 12 heads)")
        else:
            models = ["default", str(save_zeroed_copy(zeroed_query_copy(), root / "zeroed-2-5"))]
            print("models: the default model (6 layers x 12 heads) against a copy with head 2-5's queries zeroed")
        text = text_of(args.length)
        query = "?" + urlencode({"text": text, "compare": Path(models[1]).name})
        with serving(["--model", models[0], "--model", models[1], "--no-corpus"], root) as served:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
                visits = [visit(browser, served.base, query) for _ in range(args.repeats)]
                browser.close()
    answered = [(v["answered"] - v["asked"]) / 1000 for v in visits]
    drawn = [(v["drawn"] - v["answered"]) / 1000 for v in visits]
    print(f"{args.length} tokens, {args.repeats} visits; answer {visits[-1]['bytes'] / 1e6:.1f} MB")
    print(
        "server answered after "
        + ", ".join(f"{s:.2f}" for s in answered)
        + f" s: median {statistics.median(answered):.2f} s"
    )
    middle = statistics.median(drawn)
    print(
        "diff view drawn after the answer " + ", ".join(f"{s:.2f}" for s in drawn) + f" s: median {middle:.2f} s, "
        f"{middle / 2.0:.2f}x the 2 s goal"
    )


if __name__ == "__main__":
    main()
