"""Fine-tune a copy of attnscope's default encoder (all-MiniLM-L6-v2) on UPOS tagging, for a few minutes on CPU.

The gold task: the universal part of speech of each word of UD English EWT (17 tags), predicted by a linear
layer on the encoder's last hidden state at the word's first subword token. It trains on the dev file and
measures word accuracy on the first ``--eval-sentences`` sentences of the test file (never trained on).

Two phases, one seed (``torch.manual_seed``, the batches drawn from a seeded permutation of the sentences):

1. the linear layer alone on the frozen encoder, ``--probe-steps`` steps (learning rate 1e-2): its accuracy is
   the "before" figure (what a linear probe reads from the default model);
2. the encoder (from layer ``--freeze-layers`` on; 0 trains the embeddings too; learning rate ``--lr``) and the
   linear layer (1e-3) together, ``--steps`` steps or ``--minutes`` minutes, whichever ends first: the "after"
   figure.

The fine-tuned encoder (without the linear layer) and its tokenizer are written to ``--out`` (by default
``finetuned/all-MiniLM-L6-v2-upos`` under attnscope's cache) with ``finetune.json`` (arguments, accuracies,
steps, minutes); the folder appears whole or not at all, so ``attnscope.load(out)`` never reads half a copy.
``examples/model_diff_figure.py`` then measures which heads the fine-tuning changed.

    nice -n 19 python examples/finetune_default.py [--steps 150] [--minutes 5] [--out DIR] [--overwrite]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UPOS = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip
"""The 17 universal part-of-speech tags, in the order of the linear layer's outputs."""
TREEBANK = Path(__file__).resolve().parents[2] / "shared" / "data" / "ud_english_ewt"
MAX_TOKENS = 128
"""Sentences longer than this many tokens are left out of training (a few; they would dominate a batch's cost)."""
IGNORE = -100
"""The label of tokens that are not a word's first subword (specials, continuation pieces): no loss, not scored."""


def default_out() -> Path:
    """``finetuned/all-MiniLM-L6-v2-upos`` under attnscope's cache (``$ATTNSCOPE_CACHE``, ``~/.cache/attnscope``)."""
    from attnscope.cache import cache_root

    return cache_root() / "finetuned" / "all-MiniLM-L6-v2-upos"


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, checked: a bad value exits with status 2 and a message naming the option and its range."""
    parser = argparse.ArgumentParser(
        prog="finetune_default.py", description=(__doc__ or "").splitlines()[0], allow_abbrev=False
    )
    parser.add_argument("--treebank", type=Path, default=None, help=f"folder of the EWT files (default {TREEBANK})")
    parser.add_argument("--out", type=Path, default=None, help="folder to write the copy to (default: the cache)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it already holds a copy")
    parser.add_argument("--steps", type=int, default=150, help="fine-tuning steps, at least 1 (default 150)")
    parser.add_argument("--minutes", type=float, default=None, help="stop fine-tuning after this many minutes")
    parser.add_argument("--probe-steps", type=int, default=100, help="steps of the linear layer alone, >= 0")
    parser.add_argument("--batch-size", type=int, default=16, help="sentences per step, 1-256 (default 16)")
    parser.add_argument("--lr", type=float, default=1e-4, help="the encoder's learning rate, in (0, 1)")
    parser.add_argument("--freeze-layers", type=int, default=0, help="layers kept as they are, 0-6 (default 0)")
    parser.add_argument("--train-sentences", type=int, default=None, help="use only the first N dev sentences")
    parser.add_argument("--eval-sentences", type=int, default=300, help="test sentences scored, >= 1 (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    checks = [
        ("--steps", args.steps, args.steps >= 1, "at least 1"),
        ("--probe-steps", args.probe_steps, args.probe_steps >= 0, "0 or more"),
        ("--batch-size", args.batch_size, 1 <= args.batch_size <= 256, "1-256"),
        ("--lr", args.lr, 0 < args.lr < 1, "between 0 and 1 (exclusive)"),
        ("--freeze-layers", args.freeze_layers, 0 <= args.freeze_layers <= 6, "0-6 (the model has layers 0-5)"),
        ("--eval-sentences", args.eval_sentences, args.eval_sentences >= 1, "at least 1"),
    ]
    if args.minutes is not None:
        checks.append(("--minutes", args.minutes, math.isfinite(args.minutes) and args.minutes > 0, "above 0"))
    if args.train_sentences is not None:
        checks.append(("--train-sentences", args.train_sentences, args.train_sentences >= 1, "at least 1"))
    for option, value, ok, allowed in checks:
        if not ok:
            parser.error(f"{option} {value} is out of range: allowed {allowed}")
    args.out = (args.out or default_out()).expanduser()
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} is a file: name a folder for the copy")
    if args.out.is_dir() and any(args.out.iterdir()) and not args.overwrite:
        parser.error(f"--out {args.out} already holds files: pass --overwrite to replace them, or name another folder")
    args.treebank = _treebank(parser, args.treebank)
    return args


def _treebank(parser: argparse.ArgumentParser, folder: Path | None) -> list[Path]:
    """The dev and test files of the folder given (default: $ATTNSCOPE_EWT_DIR, else ../shared/data)."""
    from attnscope.corpus import ewt_files
    from attnscope.corpus.ewt import DIR_ENV
    from attnscope.errors import CorpusError

    if folder is None:
        folder = Path(os.environ.get(DIR_ENV) or TREEBANK)
    try:
        return ewt_files(folder)
    except CorpusError as error:
        parser.error(f"--treebank: {error}")


@dataclass
class Tagged:
    """One sentence ready for the model: token ids and, per token, the UPOS label index or `IGNORE`."""

    ids: list[int]
    labels: list[int]


def tagged_sentences(handle: Any, path: Path, limit: int | None) -> list[Tagged]:
    """The sentences of a CoNLL-U file (the first ``limit``), tokenised, each word labelled at its first token."""
    import attnscope
    from attnscope.corpus import read_conllu, word_of_tokens

    result = []
    for sentence in read_conllu(path):
        if limit is not None and len(result) == limit:
            break
        tokens = attnscope.encode(handle, sentence.text, truncate=True)
        labels, seen = [], set()
        for word in word_of_tokens(sentence, tokens):
            upos = None if word is None or word in seen else sentence.words[word].upos
            labels.append(UPOS.index(upos) if upos in UPOS else IGNORE)
            seen.add(word)
        if len(tokens) <= MAX_TOKENS:
            result.append(Tagged(tokens.ids, labels))
    return result


def batch_tensors(batch: list[Tagged], pad_id: int) -> tuple[Any, Any, Any]:
    """(input_ids, attention_mask, labels), each (sentences, longest) long tensors, right-padded."""
    import torch

    width = max(len(s.ids) for s in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    for row, s in enumerate(batch):
        ids[row, : len(s.ids)] = torch.tensor(s.ids)
        mask[row, : len(s.ids)] = 1
        labels[row, : len(s.labels)] = torch.tensor(s.labels)
    return ids, mask, labels


def batches(data: list[Tagged], size: int, steps: int, seed: int) -> Any:
    """``steps`` batches of ``size`` sentences, in the order of seeded permutations (a new one each epoch)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    order: list[int] = []
    for _ in range(steps):
        if len(order) < size:
            order += torch.randperm(len(data), generator=generator).tolist()
        yield [data[i] for i in order[:size]]
        del order[:size]


def accuracy(model: Any, head: Any, data: list[Tagged], pad_id: int) -> float:
    """Share of the words of ``data`` whose UPOS the model and linear layer predict right (eval mode, no dropout)."""
    import torch

    model.eval()
    right = total = 0
    with torch.no_grad():
        for start in range(0, len(data), 32):
            ids, mask, labels = batch_tensors(data[start : start + 32], pad_id)
            predicted = head(model(input_ids=ids, attention_mask=mask).last_hidden_state).argmax(-1)
            scored = labels != IGNORE
            right += int((predicted[scored] == labels[scored]).sum())
            total += int(scored.sum())
    return right / max(total, 1)


def train(
    model: Any, head: Any, data: list[Tagged], args: argparse.Namespace, *, encoder: bool
) -> tuple[int, float, float]:
    """Train the linear layer (and the encoder's unfrozen layers when ``encoder``): (steps done, wall seconds,
    CPU seconds of this process, all threads)."""
    import torch

    steps = args.steps if encoder else args.probe_steps
    groups = [{"params": list(head.parameters()), "lr": 1e-3 if encoder else 1e-2}]
    if encoder:
        groups.append({"params": [p for p in model.parameters() if p.requires_grad], "lr": args.lr})
    optimizer = torch.optim.AdamW(groups)
    loss_of = torch.nn.CrossEntropyLoss(ignore_index=IGNORE)
    pad_id = model.config.pad_token_id or 0
    model.train(encoder)
    began, cpu, done = time.perf_counter(), time.process_time(), 0
    for batch in batches(data, args.batch_size, steps, args.seed + (1 if encoder else 0)):
        ids, mask, labels = batch_tensors(batch, pad_id)
        with torch.set_grad_enabled(encoder):
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        loss = loss_of(head(hidden).flatten(0, 1), labels.flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        done += 1
        if done % 25 == 0 or done == steps:
            print(f"  {'fine-tuning' if encoder else 'probe'} step {done}/{steps}: loss {loss.item():.3f}", flush=True)
        if encoder and args.minutes is not None and time.perf_counter() - began > args.minutes * 60:
            print(f"  stopped after {args.minutes} minutes ({done} steps)", flush=True)
            break
    return done, time.perf_counter() - began, time.process_time() - cpu


def freeze(model: Any, layers: int) -> None:
    """Keep the embeddings and the first ``layers`` layers as they are (nothing is frozen for 0)."""
    if layers == 0:
        return
    for parameter in model.embeddings.parameters():
        parameter.requires_grad = False
    for layer in model.encoder.layer[:layers]:
        for parameter in layer.parameters():
            parameter.requires_grad = False


def save(handle: Any, out: Path, record: dict[str, Any]) -> None:
    """Write the encoder, its tokenizer and ``finetune.json`` to a temporary folder beside ``out``, then move it
    into place (an older copy there goes only once the new one is whole)."""
    from attnscope.capture.quiet import quiet_transformers

    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{uuid.uuid4().hex}.partial")
    try:
        with quiet_transformers():
            handle.model.save_pretrained(partial)
            handle.tokenizer.save_pretrained(partial)
        (partial / "finetune.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        umask = os.umask(0)
        os.umask(umask)
        for path in partial.iterdir():  # the permissions any new file gets (some writers make theirs private)
            path.chmod(0o666 & ~umask)
        if out.exists():
            old = out.with_name(f".{out.name}.{uuid.uuid4().hex}.old")
            os.replace(out, old)
            os.replace(partial, out)
            shutil.rmtree(old)
        else:
            os.replace(partial, out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    import torch

    import attnscope

    torch.manual_seed(args.seed)
    handle = attnscope.load("default")
    model = handle.model
    train_data = tagged_sentences(handle, args.treebank[0], args.train_sentences)
    eval_data = tagged_sentences(handle, args.treebank[1], args.eval_sentences)
    print(f"{len(train_data):,} training sentences (dev), {len(eval_data):,} held-out sentences (test)", flush=True)
    head = torch.nn.Linear(model.config.hidden_size, len(UPOS))
    pad_id = model.config.pad_token_id or 0
    for parameter in model.parameters():
        parameter.requires_grad = False
    probe_steps, _, _ = train(model, head, train_data, args, encoder=False)
    before = accuracy(model, head, eval_data, pad_id)
    print(f"UPOS accuracy before fine-tuning (linear layer alone, {probe_steps} steps): {before:.1%}", flush=True)
    for parameter in model.parameters():
        parameter.requires_grad = True
    freeze(model, args.freeze_layers)
    steps, seconds, cpu = train(model, head, train_data, args, encoder=True)
    after = accuracy(model, head, eval_data, pad_id)
    print(
        f"UPOS accuracy after fine-tuning ({steps} steps, {seconds / 60:.1f} min, {cpu / 60:.1f} CPU-min): {after:.1%}",
        flush=True,
    )
    record = {
        "base": handle.name,
        "task": "UPOS tagging, UD English EWT (dev for training, the first test sentences held out)",
        "accuracy_before": round(before, 4),
        "accuracy_after": round(after, 4),
        "probe_steps": probe_steps,
        "steps": steps,
        "minutes": round(seconds / 60, 2),
        "cpu_minutes": round(cpu / 60, 2),
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "treebank"},
        "treebank": [str(p) for p in args.treebank],
        "torch": torch.__version__,
    }
    model.eval()
    save(handle, args.out, record)
    print(f"wrote {args.out} (attnscope.load({str(args.out)!r}))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
