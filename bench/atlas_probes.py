"""The atlas's synthetic probes on the built-in SmolLM2-135M: every head's induction, duplicate-token,
previous-token and first-token-sink scores, and the model's in-context copying, against the goal (issue 17:
all 270 heads in ≤ 30 s on 2 cores).

In one run: a plain forward pass of the model over the same probe tokens (SDPA, nothing kept, logits for
every position; the faster of two) as the baseline, then `run_probes` (the on-demand capture, every layer's
weights computed and reduced to the scored diagonals, the copying forward), and the ratio. Prints the top
heads per probe and the copying figure.

    make bench-atlas-probes   # or: .venv/bin/python bench/atlas_probes.py [--length 50] [--batch 8] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import attnscope
from attnscope.analysis.probes import PROBE_TITLES, ProbeSpec, ordinary_vocabulary, probe_ids, run_probes

GOAL_SECONDS = 30.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top", type=int, default=5)
    args = parser.parse_args()
    spec = ProbeSpec(args.length, args.repeats, args.batch, args.seed).check()

    handle = attnscope.load("smollm2")
    ids = torch.as_tensor(probe_ids(ordinary_vocabulary(handle), spec))
    plain = []
    for _ in range(2):
        started = time.perf_counter()
        with torch.inference_mode():
            handle.model(input_ids=ids, use_cache=False)
        plain.append(time.perf_counter() - started)
    started, cpu = time.perf_counter(), time.process_time()
    result = run_probes(handle, spec=spec)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    shape = handle.stacks[handle.main_stack]
    print(
        f"SmolLM2-135M, {shape.layers * shape.heads} heads; probe: {spec.batch} × {spec.length} random tokens "
        f"× {spec.repeats}, seed {spec.seed}; torch threads {torch.get_num_threads()}"
    )
    print(f"plain forward of the probe (baseline): {min(plain):.2f} s")
    print(f"run_probes CPU time: {cpu:.2f} s (on a busy machine, CPU time / cores bounds the idle wall time)")
    print(
        f"run_probes: {seconds:.2f} s ({seconds / min(plain):.1f}× the plain forward; goal ≤ {GOAL_SECONDS:.0f} s: "
        f"{'met' if seconds <= GOAL_SECONDS else 'NOT met'})"
    )
    for name in result.names:
        top = ", ".join(f"{layer}-{head} ({score:.3f})" for layer, head, score in result.top(name, args.top))
        print(f"  {PROBE_TITLES[name]}: {top}; median {float(np.median(result.scores[name])):.3f}")
    copying = result.copying
    assert copying is not None
    print(
        f"in-context copying: mean log-probability {copying.later:.3f} on the repeated tokens, {copying.first:.3f} "
        f"on their first occurrence (gain {copying.gain:+.3f} nats, {copying.tokens} tokens each)"
    )


if __name__ == "__main__":
    main()
