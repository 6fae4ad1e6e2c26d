"""What an index stores about each token, pulled out of batched forward passes.

Sentences are tokenised once (`plan_sentences`), grouped into length-sorted batches that pad little
(`plan_batches`), and run through the model with the recorder on (`extract_batch`). For the indexed
(non-special) tokens of a batch this yields, per layer: the hidden state after the layer and the head
embedding (each head's output unit-normalised, concatenated), both unit-length per token / per head,
and each sentence's attention among its indexed tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..capture.engine import run_batch
from ..capture.inputs import Tokens, encode
from ..capture.loading import ModelHandle
from ..capture.recorder import _ACTIVE
from ..corpus import AnnotatedSentence, word_of_tokens
from ..errors import InputError

LONG_POLICIES = ("truncate", "skip")


@dataclass
class PlannedSentence:
    """One corpus sentence as the model sees it: its tokens, the word of each token, the positions that
    are indexed (non-special tokens), and the first index row they get."""

    sentence: int
    tokens: Tokens
    words: list[int | None]
    positions: np.ndarray
    first_row: int = 0

    @property
    def rows(self) -> int:
        return len(self.positions)


@dataclass
class PlanSummary:
    """Counts of what tokenisation did to the corpus: over-long sentences truncated or skipped."""

    truncated_sentences: int = 0
    dropped_tokens: int = 0
    skipped_sentences: int = 0


def plan_sentences(
    handle: ModelHandle, sentences: Sequence[AnnotatedSentence], long: str = "truncate"
) -> tuple[list[PlannedSentence], PlanSummary]:
    """Tokenise every sentence; over-long ones are truncated (``long="truncate"``, tail tokens dropped
    and counted) or left out (``"skip"``, counted). `number_rows` gives them their index rows."""
    if long not in LONG_POLICIES:
        raise InputError(
            f"long={long!r} is not a policy for over-long sentences: use one of {', '.join(LONG_POLICIES)}"
        )
    planned, summary = [], PlanSummary()
    for number, sentence in enumerate(sentences):
        tokens = encode(handle, sentence.text, truncate=True)
        if tokens.truncated:
            if long == "skip":
                summary.skipped_sentences += 1
                continue
            summary.truncated_sentences += 1
            summary.dropped_tokens += tokens.truncated
        positions = np.array([i for i, special in enumerate(tokens.special) if not special], dtype=np.int64)
        if len(positions) == 0:
            continue
        planned.append(PlannedSentence(number, tokens, word_of_tokens(sentence, tokens), positions))
    return planned, summary


def number_rows(planned: Sequence[PlannedSentence], batches: Sequence[Sequence[int]]) -> None:
    """Number the index rows in the order the batches run, so that each batch's tokens are one
    contiguous run of rows (written and compressed as one piece)."""
    row = 0
    for batch in batches:
        for i in batch:
            planned[i].first_row = row
            row += planned[i].rows


def plan_batches(lengths: Sequence[int], batch_tokens: int, seed: int = 0) -> list[list[int]]:
    """Batches of item indices: sorted by length so that padding is small, each at most
    ``batch_tokens`` padded tokens (a longer item goes alone), in a seeded shuffled order (so the first
    batches are a fair sample of the corpus)."""
    if batch_tokens < 1:
        raise InputError(f"batch_tokens must be at least 1, got {batch_tokens}")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and lengths[i] * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    rng = np.random.default_rng(seed)
    return [batches[i] for i in rng.permutation(len(batches))]


@dataclass
class BatchVectors:
    """Extracted values for the indexed tokens of one batch, in the batch's sentence order.

    ``hidden`` and ``heads`` are (layers, tokens, width) float32; ``attention`` holds one
    (layers, heads, n, n) float32 array per sentence over its indexed tokens.
    """

    hidden: np.ndarray
    heads: np.ndarray
    attention: list[np.ndarray]


def _unit(x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``x`` divided by its norm along the last axis (a zero vector stays zero), into ``out`` when given."""
    return torch.div(x, x.norm(dim=-1, keepdim=True).clamp_min(1e-12), out=out)


def extract_batch(
    handle: ModelHandle,
    batch: Sequence[PlannedSentence],
    layers: Sequence[int] | None = None,
    *,
    attention: bool = True,
) -> BatchVectors:
    """Run one batch and keep what the index stores (see `BatchVectors`): every layer, or the model
    layers ``layers`` (ascending), whose values then come in that order (the arrays' first axis).
    ``attention=False`` keeps no attention (``BatchVectors.attention`` is empty): for an index whose
    attention is recomputed at query time."""
    wanted = {"attentions", "head_outputs", "hidden_states"} if attention else {"head_outputs", "hidden_states"}
    outputs, calls = run_batch(handle, [p.tokens for p in batch], None, wanted, logits=False)
    calls = [c for c in calls if c.role == handle.main_stack]
    hidden_states = outputs.hidden_states
    if not calls or hidden_states is None:
        raise InputError(
            f"model {handle.name!r} does not run attention through transformers' AttentionInterface, "
            "so head embeddings cannot be captured for an index"
        )
    if layers is not None:
        hidden_states = tuple(hidden_states[0:1]) + tuple(hidden_states[layer + 1] for layer in layers)
        calls = [calls[layer] for layer in layers]
    flat = _flat_positions(batch, hidden_states[0].shape[1])
    first = calls[0].tensors["head_outputs"]  # (batch, query, heads, head_dim)
    device = first.device
    hidden = torch.empty((len(calls), len(flat), hidden_states[0].shape[-1]), dtype=torch.float32, device=device)
    heads = torch.empty((len(calls), len(flat), first.shape[-2], first.shape[-1]), dtype=torch.float32, device=device)
    for slot, (state, call) in enumerate(zip(hidden_states[1:], calls, strict=True)):  # written in place
        _unit(state.reshape(-1, state.shape[-1])[flat].float(), out=hidden[slot])
        out = call.tensors["head_outputs"]
        _unit(out.reshape(-1, out.shape[-2], out.shape[-1])[flat].float(), out=heads[slot])
    kept = _indexed_attention(batch, [c.tensors["attentions"] for c in calls]) if attention else []
    return BatchVectors(hidden.cpu().numpy(), heads.reshape(len(calls), len(flat), -1).cpu().numpy(), kept)


def extract_layer(handle: ModelHandle, batch: Sequence[PlannedSentence], layer: int, kind: str) -> np.ndarray:
    """Run one batch for one layer's vectors of one kind: (indexed tokens, width) float32, equal to
    `extract_batch` (``[layer]``, no attention)'s ``heads[0]`` (``kind`` "heads") or ``hidden[0]``
    ("hidden"), for re-ranking (`rerank.py`). The forward pass stops once they are recorded, so the
    later layers are not run (`_run_to_layer`)."""
    wanted = {"head_outputs"} if kind == "heads" else {"head_outputs", "hidden_states"}
    calls, state = _run_to_layer(handle, batch, layer, wanted)
    if kind == "heads" and len(calls) > layer:
        out = calls[layer].tensors["head_outputs"]  # (batch, query, heads, head_dim)
        flat = _flat_positions(batch, out.shape[1])
        return _unit(out.reshape(-1, out.shape[-2], out.shape[-1])[flat].float()).reshape(len(flat), -1).cpu().numpy()
    if kind == "hidden" and state is not None:
        flat = _flat_positions(batch, state.shape[1])
        return _unit(state.reshape(-1, state.shape[-1])[flat].float()).cpu().numpy()
    raise InputError(
        f"model {handle.name!r} does not run attention through transformers' AttentionInterface, "
        "so head embeddings cannot be captured for an index"
    )


def _run_to_layer(
    handle: ModelHandle, batch: Sequence[PlannedSentence], layer: int, wanted: set[str]
) -> tuple[list[Any], torch.Tensor | None]:
    """Run one batch until model ``layer``'s values in ``wanted`` are recorded (the later layers are not
    run): the main stack's attention calls so far, and the hidden state after ``layer`` when
    "hidden_states" is wanted (None when the model gives none). Attention values come with the layer's
    attention call; the hidden state when the layer's output reaches transformers' recorder
    (`_recorded_hidden`). The whole pass runs for the last layer's hidden state (transformers replaces
    its recorded output by the final norm's) and for an encoder-decoder's."""
    main = handle.main_stack
    hidden = "hidden_states" in wanted
    early = not hidden or (layer < handle.stacks[main].layers - 1 and handle.kind != "encoder-decoder")

    def stop(module: Any, args: Any, output: Any) -> None:
        if not early:
            return
        if hidden:
            if (state := _recorded_hidden(layer + 1)) is not None:
                raise _LayerReached([], state)
            return
        recorder = _ACTIVE.get()
        calls = [c for c in recorder.calls if c.role == main] if recorder is not None else []
        if len(calls) > layer:
            raise _LayerReached(calls)

    with handle.lock:  # the hooks must see this pass only (the lock is reentrant: run_batch takes it too)
        hooks = [module.register_forward_hook(stop) for module in handle.model.modules()]
        try:
            outputs, recorded = run_batch(handle, [p.tokens for p in batch], None, wanted, logits=False)
            calls, state = [c for c in recorded if c.role == main], None
            if hidden and outputs.hidden_states is not None:
                state = outputs.hidden_states[layer + 1]
        except _LayerReached as reached:
            calls, state = reached.calls, reached.state
        finally:
            for hook in hooks:
                hook.remove()
    return calls, state


def _recorded_hidden(index: int) -> torch.Tensor | None:
    """Hidden state ``index`` (0: the embeddings) once transformers' output recorder of the running forward
    pass holds it, else None (not yet, or no recorder: `transformers.utils.output_capturing`, whose
    hooks on each layer append its output, run before ours, which were registered later)."""
    try:
        from transformers.utils.output_capturing import _active_collector
    except ImportError:  # another transformers: the whole pass runs
        return None
    collected = _active_collector.get()
    states = collected.get("hidden_states") if isinstance(collected, dict) else None
    return states[index] if isinstance(states, list) and len(states) > index else None


def _flat_positions(batch: Sequence[PlannedSentence], length: int) -> torch.Tensor:
    """The batch's indexed positions in its (batch x length) tokens flattened, in sentence order."""
    return torch.from_numpy(np.concatenate([p.positions + b * length for b, p in enumerate(batch)]))


def extract_attention(handle: ModelHandle, batch: Sequence[PlannedSentence], layer: int) -> list[np.ndarray]:
    """Run one batch for its attention only: one (heads, n, n) float32 array per sentence, the weights at
    model layer ``layer`` among its n indexed tokens (what an index stores, before quantising). The
    forward pass stops once that layer's attention is recorded (the later layers are not run). For an
    index whose attention is recomputed at query time (`attention_source.py`)."""
    calls, _ = _run_to_layer(handle, batch, layer, {"attentions"})
    if len(calls) <= layer:
        raise InputError(
            f"model {handle.name!r} does not run attention through transformers' AttentionInterface, "
            "so its attention cannot be recomputed for an index"
        )
    return [block[0] for block in _indexed_attention(batch, [calls[layer].tensors["attentions"]])]


class _LayerReached(Exception):
    """Ends a forward pass once the wanted layer's values are recorded: its attention calls so far, or the
    hidden state after it (`extract_attention`, `extract_layer`)."""

    def __init__(self, calls: list[Any], state: torch.Tensor | None = None):
        super().__init__("layer reached")
        self.calls, self.state = calls, state


def _indexed_attention(batch: Sequence[PlannedSentence], layers: Sequence[torch.Tensor]) -> list[np.ndarray]:
    """Each sentence's (layers, heads, n, n) float32 attention among its indexed tokens, from the batch's
    (batch, heads, query, key) weights of each layer."""
    weights = [w.float().numpy() for w in layers]
    attention = []
    for b, p in enumerate(batch):
        first, last = int(p.positions[0]), int(p.positions[-1])
        if last - first + 1 == len(p.positions):  # one run of ordinary tokens ([CLS] ... [SEP]): a slice
            attention.append(np.stack([w[b][:, first : last + 1, first : last + 1] for w in weights]))
        else:
            rows, cols = p.positions[:, None], p.positions[None, :]
            attention.append(np.stack([w[b][:, rows, cols] for w in weights]))
    return attention
