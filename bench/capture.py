"""P2: cost of a full attnscope capture against a plain eager forward with output_attentions=True.

Both run in this one process on the same model and the same input ids, interleaved, and the median
of the repeats is compared. A full capture keeps every field (attentions, queries, keys, values, head
outputs, masks, bias, hidden states) as numpy arrays; the baseline only returns the model's tuple of
attention tensors. Goal (product.md P2): ratio <= 1.5.

    .venv/bin/python bench/capture.py [--lengths 32 128 512] [--repeats 7] [--bert-base]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import attnscope
from attnscope.capture.loading import default_model_path, quiet_transformers

TEXT = ("The girl ran to a local pub to escape the din of her city. " * 64).strip()


def _bert_base() -> attnscope.ModelHandle:
    """A randomly initialised BERT-base-shaped model (12 layers, 12 heads, 768 wide) on the default tokenizer."""
    import tempfile

    import transformers

    directory = tempfile.mkdtemp(prefix="attnscope-bert-base-")
    torch.manual_seed(0)
    with quiet_transformers():
        transformers.BertModel(transformers.BertConfig()).save_pretrained(directory)
    transformers.AutoTokenizer.from_pretrained(default_model_path()).save_pretrained(directory)
    return attnscope.load(directory)


def _time(function, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


def measure(handle: attnscope.ModelHandle, length: int, repeats: int) -> tuple[float, float]:
    tokens = attnscope.encode(handle, TEXT, truncate=True)
    words = handle.tokenizer.decode(tokens.ids[1 : length - 1])
    ids = attnscope.encode(handle, words).ids  # the very ids the capture will run on
    text_ids = torch.tensor([ids])
    model = handle.model

    def baseline() -> None:
        with torch.inference_mode():
            model(input_ids=text_ids, output_attentions=True)

    def full_capture() -> None:
        attnscope.capture(handle, words, fields="all")

    baseline(), full_capture()  # warm up both paths
    base, cap = [], []
    for _ in range(repeats):  # interleave so that machine noise hits both alike
        base += _time(baseline, 1)
        cap += _time(full_capture, 1)
    return statistics.median(base), statistics.median(cap)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--bert-base", action="store_true", help="also measure a BERT-base-shaped model")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    models = [("all-MiniLM-L6-v2 (6x12, 384)", attnscope.load("default"))]
    if args.bert_base:
        models.append(("BERT-base shape (12x12, 768)", _bert_base()))
    print(
        f"P2 capture cost: median of {args.repeats} interleaved runs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(
        f"{'model':30} {'tokens':>6} {'eager+output_attentions':>24} {'attnscope full capture':>23} "
        f"{'ratio':>6}  goal <= 1.5"
    )
    for label, handle in models:
        for length in args.lengths:
            base, cap = measure(handle, length, args.repeats)
            verdict = "ok" if cap / base <= 1.5 else "OVER"
            print(f"{label:30} {length:6d} {base * 1000:21.1f} ms {cap * 1000:20.1f} ms {cap / base:6.2f}  {verdict}")


if __name__ == "__main__":
    main()
