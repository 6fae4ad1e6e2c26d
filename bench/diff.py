"""B5: the cost of comparing two models over one text, and the diff page's time until drawn.

1. Comparison against captures: two models capture the same text of ``n`` tokens (``fields=["attentions"]``,
   what `compare_models` captures), and `compare` runs on the two captures (distances, every head's nearest heads
   of the other model, the one-to-one matching, aligned copies). The two are interleaved per repeat and their
   medians compared. Goal (issue 18): the comparison costs at most 1.5× the two captures it needs.
   ``--models default`` (the default): the default model (6 × 12 heads) against a second load of it whose layer 2
   head 5 has its queries zeroed (the issue's example of a changed checkpoint). ``--models bert-base``: two
   randomly initialised BERT-base-shaped models (12 × 12, seeds 0 and 1, on the default tokenizer): every head of
   an untrained model attends almost uniformly, so the Hellinger bounds prune no pair and every one of the
   144 × 144 exact distances is computed: the worst case.
2. The diff page: `attnscope.diff_view(comparison).to_html()` at ``--page-length`` tokens (both sides' heads),
   written to a file and opened in a fresh headless Chromium (bench/chromium.py), timed from navigation until the
   view says it is drawn (``data-ready``) and the next frame is painted. Goal: at most 2 s at 512 tokens for
   12 × 12 heads (``--models bert-base``; ``default`` draws 6 × 12 heads per side).

    nice -n 19 .venv/bin/python bench/diff.py [--models default|bert-base] [--lengths 128 512] [--repeats 5]

Prints ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import attnscope
from attnscope.capture.loading import default_model_path, quiet_transformers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chromium import visit  # noqa: E402 - bench/chromium.py, beside this script

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.zeroed_model import zeroed_query_copy  # noqa: E402 - the tests' changed checkpoint

TEXT = ("The girl ran to a local pub to escape the din of her city. " * 64).strip()
DRAWN = "() => document.querySelector('.attnscope-dv')?.dataset.ready === 'true'"


def bert_base(seed: int) -> attnscope.ModelHandle:
    """A randomly initialised BERT-base-shaped model (seed ``seed``) on the default model's tokenizer."""
    import transformers

    directory = tempfile.mkdtemp(prefix=f"attnscope-bert-base-{seed}-")
    torch.manual_seed(seed)
    with quiet_transformers():
        transformers.BertModel(transformers.BertConfig()).save_pretrained(directory)
    transformers.AutoTokenizer.from_pretrained(default_model_path()).save_pretrained(directory)
    return attnscope.load(directory)


def text_of(handle: attnscope.ModelHandle, length: int) -> str:
    """Text that the tokenizer turns into exactly ``length`` tokens, specials included."""
    ids = attnscope.encode(handle, TEXT, truncate=True).ids
    words = handle.tokenizer.decode(ids[1 : length - 1])
    assert len(attnscope.encode(handle, words).ids) == length
    return words


def median_times(a: attnscope.ModelHandle, b: attnscope.ModelHandle, text: str, repeats: int):
    """Medians (s) of the two captures and of `compare` on them, interleaved; and the last comparison."""
    captures, compares, comparison = [], [], None
    for _ in range(repeats):
        started = time.perf_counter()
        cap_a = attnscope.capture(a, text, fields=["attentions"])
        cap_b = attnscope.capture(b, text, fields=["attentions"])
        captured = time.perf_counter()
        comparison = attnscope.compare(cap_a, cap_b)
        captures.append(captured - started)
        compares.append(time.perf_counter() - captured)
    return statistics.median(captures), statistics.median(compares), comparison


def page_times(comparison, repeats: int) -> tuple[float, int, list[float | None], str]:
    """Seconds to build the page, its bytes, and the seconds until drawn per visit (None: not drawn)."""
    from playwright.sync_api import sync_playwright

    started = time.perf_counter()
    html = attnscope.diff_view(comparison).to_html()
    built = time.perf_counter() - started
    path = Path(tempfile.mkdtemp(prefix="attnscope-diff-bench-")) / "diff.html"
    path.write_text(html, encoding="utf-8")
    seconds, problems = [], []
    with sync_playwright() as playwright:
        for _ in range(repeats):
            result = visit(playwright, path, DRAWN, timeout_s=30)
            seconds.append(result.seconds)
            if result.problem:
                problems.append(result.problem)
    return built, len(html.encode()), seconds, "; ".join(problems)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", choices=["default", "bert-base"], default="default")
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--page-repeats", type=int, default=3)
    parser.add_argument("--page-length", type=int, default=512)
    args = parser.parse_args()
    if args.models == "bert-base":
        a, b = bert_base(0), bert_base(1)
        print("models: two random BERT-base-shaped models (12 layers x 12 heads)", end="")
    else:
        a, b = attnscope.load("default"), zeroed_query_copy()
        print("models: the default model (6 layers x 12 heads) against a copy with head 2-5's queries zeroed", end="")
    print(f"; torch threads {torch.get_num_threads()}")
    columns = ["2 captures", "compare", "compare / captures", "(captures + compare) / captures"]
    print(f"{'tokens':>6}  {columns[0]:>11}  {columns[1]:>9}  {columns[2]:>18}  {columns[3]:>31}")
    kept = None
    for n in args.lengths:
        text = text_of(a, n)
        captures, compares, comparison = median_times(a, b, text, args.repeats)
        print(
            f"{n:>6}  {captures * 1000:>8.0f} ms  {compares * 1000:>6.0f} ms  {compares / captures:>17.2f}x  "
            f"{(captures + compares) / captures:>30.2f}x"
        )
        if n == args.page_length:
            kept = comparison
    print(f"goal: compare <= 1.5x the two captures (medians of {args.repeats}, interleaved)")
    if kept is None:
        kept = median_times(a, b, text_of(a, args.page_length), 1)[2]
    built, size, seconds, problem = page_times(kept, args.page_repeats)
    drawn = [s for s in seconds if s is not None]
    shown = ", ".join("not drawn" if s is None else f"{s:.2f}" for s in seconds)
    heads, megabytes = f"{kept.shape_a[0]}x{kept.shape_a[1]}", size / 1e6
    print(f"diff page at {args.page_length} tokens, {heads} heads per side: built in {built:.2f} s, {megabytes:.1f} MB")
    if drawn:
        middle = statistics.median(drawn)
        print(f"drawn in Chromium after {shown} s: median {middle:.2f} s, {middle / 2.0:.2f}x the 2 s goal")
    else:
        print("never drawn")
    if problem:
        print(f"problems: {problem}")


if __name__ == "__main__":
    main()
