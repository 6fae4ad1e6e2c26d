"""Per-head scores from synthetic probes: how the interpretability literature finds induction heads.

A probe is ``batch`` sequences of ``length`` random tokens, each repeated ``repeats`` times (drawn with a
seeded generator from the tokenizer's ordinary vocabulary: no special or added tokens, no token twice in
one sequence), with the special tokens the tokenizer puts around a text (BERT's ``[CLS]``/``[SEP]``;
SmolLM2 adds none). On it every head gets four scores, each the mean attention weight over the batch and
the query positions named (``s`` is the first random token's position, ``T`` the length):

- ``induction``: from each token of a later copy (``q`` in ``[s + T, s + repeats·T)``) to the token *after*
  its occurrence one copy earlier (``q − T + 1``): the pattern of induction heads (Olsson et al. 2022,
  "In-context Learning and Induction Heads"), which complete ``[A][B] … [A] → [B]``;
- ``duplicate``: from the same queries to the earlier occurrence itself (``q − T``);
- ``previous``: from every random token but position 0 (``q`` in ``[max(s, 1), s + repeats·T)``) to ``q − 1``;
- ``first``: from the same queries as ``previous`` to position 0 (the first token, a sink for many heads).

Random tokens repeated have no meaning a head could attend to, so a high score is the mechanism, not the
text. With a causal language model the probe also gives the model's in-context copying (`Copying`): the
mean log-probability of the later copies' tokens against the first copy's (near ``−log vocabulary`` for
the first, near 0 for a model that copies).

One forward pass gives both: attention is recorded on demand (queries and keys, not weights) and each
layer's weights are computed one layer at a time and reduced to the few diagonals scored.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from ..errors import InputError

PROBES = ("induction", "duplicate", "previous", "first")
"""The probe scores, in table order."""
PROBE_TITLES = {
    "induction": "induction",
    "duplicate": "duplicate token",
    "previous": "previous token (probe)",
    "first": "first-token sink (probe)",
}
"""How the probe scores are written for people."""
LOGITS_BYTES = 256 * 2**20
"""The most float32 logits a probe's forward pass holds at once (SmolLM2's default probe: all 8 sequences)."""


@dataclass(frozen=True)
class ProbeSpec:
    """The probe's size and seed: ``batch`` sequences of ``length`` random tokens, each repeated
    ``repeats`` times (2 to 8), drawn by ``numpy.random.default_rng(seed)``."""

    length: int = 50
    repeats: int = 2
    batch: int = 8
    seed: int = 0

    def check(self) -> ProbeSpec:
        """Itself, after checking every field's range (`InputError` naming the field and its range)."""
        for name, value, low, high in (
            ("length", self.length, 2, 1024),
            ("repeats", self.repeats, 2, 8),
            ("batch", self.batch, 1, 256),
            ("seed", self.seed, 0, 2**32 - 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise InputError(f"probe {name} must be an integer from {low} to {high}, got {value!r}")
        return self


@dataclass(frozen=True)
class Copying:
    """The model's in-context copying on the probe: ``first`` is the mean log-probability (natural log) of
    the first copy's tokens (each predicted from the tokens before it, the first random token left out),
    ``later`` that of the later copies' tokens at the same places; ``tokens`` how many tokens each mean
    covers. ``gain`` = ``later − first``: how much the earlier copy helps."""

    first: float
    later: float
    tokens: int

    @property
    def gain(self) -> float:
        return self.later - self.first


@dataclass(frozen=True)
class ProbeScores:
    """Every head's probe scores: ``scores[name]`` is a (layers, heads) float64 array of mean attention
    weights in [0, 1], for each name in ``names`` (a subset of `PROBES`, in that order).

    ``spec`` is the probe's size and seed, ``prefix`` how many special tokens come before the random
    tokens (``tokens`` per sequence in all). ``copying`` is None when the model has no causal language
    model head, ``copying_note`` then says why.
    """

    names: tuple[str, ...]
    scores: dict[str, np.ndarray]
    spec: ProbeSpec
    prefix: int
    tokens: int
    copying: Copying | None = None
    copying_note: str = ""
    seconds: float = 0.0
    layers: int = field(init=False)
    heads: int = field(init=False)

    def __post_init__(self) -> None:
        shapes = {np.shape(self.scores[name]) for name in self.names}
        shape = shapes.pop() if len(shapes) == 1 else (0, 0)
        object.__setattr__(self, "layers", int(shape[0]))
        object.__setattr__(self, "heads", int(shape[1]))

    def top(self, name: str, k: int = 5) -> list[tuple[int, int, float]]:
        """The ``k`` heads with the highest ``name`` score: (layer, head, score), ties by lower layer, head."""
        scores = self.select([name]).scores[name]  # an unknown or uncomputed name: an InputError
        order = np.lexsort((np.arange(scores.size), -scores.reshape(-1)))[:k]
        return [(int(i) // self.heads, int(i) % self.heads, float(scores.reshape(-1)[i])) for i in order]

    def select(self, names: Sequence[str]) -> ProbeScores:
        """Only ``names`` (in `PROBES` order); one not computed is an `InputError` naming those that were."""
        chosen = check_probe_names(names)
        missing = [name for name in chosen if name not in self.scores]
        if missing:
            raise InputError(
                f"probe score {missing[0]!r} was not computed; these were: {', '.join(self.names) or 'none'}"
            )
        return replace(self, names=chosen, scores={name: self.scores[name] for name in chosen})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: scores as nested lists ``[layer][head]`` rounded to 6 decimals, the probe's size and
        seed, and the copying figure (or null with its note)."""
        copying = self.copying
        return {
            "names": list(self.names),
            **{name: np.round(self.scores[name], 6).tolist() for name in self.names},
            "length": self.spec.length,
            "repeats": self.spec.repeats,
            "batch": self.spec.batch,
            "seed": self.spec.seed,
            "prefix": self.prefix,
            "tokens": self.tokens,
            "copying": None
            if copying is None
            else {
                "first": round(copying.first, 6),
                "later": round(copying.later, 6),
                "gain": round(copying.gain, 6),
                "tokens": copying.tokens,
            },
            "copying_note": self.copying_note,
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeScores:
        """What `to_dict` wrote."""
        names = check_probe_names(data["names"])
        copying = data.get("copying")
        return cls(
            names=names,
            scores={name: np.asarray(data[name], dtype=np.float64) for name in names},
            spec=ProbeSpec(int(data["length"]), int(data["repeats"]), int(data["batch"]), int(data["seed"])),
            prefix=int(data["prefix"]),
            tokens=int(data["tokens"]),
            copying=None
            if copying is None
            else Copying(float(copying["first"]), float(copying["later"]), int(copying["tokens"])),
            copying_note=str(data.get("copying_note", "")),
            seconds=float(data.get("seconds", 0.0)),
        )


def check_probe_names(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` as a tuple in `PROBES` order, duplicates dropped; an unknown name is an `InputError`
    listing the known ones."""
    given = [str(name).strip() for name in names]
    for name in given:
        if name not in PROBES:
            raise InputError(f"probe {name!r} is not known: the probes are {', '.join(PROBES)} (or none)")
    return tuple(name for name in PROBES if name in given)


def parse_probes(text: str) -> tuple[str, ...]:
    """A comma-separated list of probe names (``"induction,duplicate"``), ``"all"`` or ``"none"``
    (no probes: an empty tuple); an `InputError` names an unknown one and lists the known ones."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if parts == ["none"]:
        return ()
    if parts == ["all"]:
        return PROBES
    if not parts:
        raise InputError(f"--probes is empty: name some of {', '.join(PROBES)}, or all, or none")
    return check_probe_names(parts)


def probe_ids(vocabulary: np.ndarray, spec: ProbeSpec, prefix: Sequence[int] = (), suffix: Sequence[int] = ()):
    """The probe's token ids: (batch, len(prefix) + length·repeats + len(suffix)) int64.

    Row ``b`` is ``prefix``, then ``length`` ids drawn without replacement from ``vocabulary`` (1-D ids)
    repeated ``repeats`` times, then ``suffix``; rows are drawn in order from ``default_rng(seed)``.
    """
    spec.check()
    if len(vocabulary) < spec.length:
        raise InputError(f"probe length {spec.length} is more than the {len(vocabulary)} ordinary tokens")
    rng = np.random.default_rng(spec.seed)
    rows = []
    for _ in range(spec.batch):
        drawn = rng.choice(vocabulary, size=spec.length, replace=False)
        rows.append(np.concatenate([np.asarray(prefix, dtype=np.int64), np.tile(drawn, spec.repeats), suffix]))
    return np.stack(rows).astype(np.int64)


def probe_queries(prefix: int, length: int, repeats: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per probe score, the (query positions, key positions) it averages over (see the module docstring)."""
    end = prefix + length * repeats
    later = np.arange(prefix + length, end)
    every = np.arange(max(prefix, 1), end)
    return {
        "induction": (later, later - length + 1),
        "duplicate": (later, later - length),
        "previous": (every, every - 1),
        "first": (every, np.zeros_like(every)),
    }


def layer_probe_sums(weights: Any, positions: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per probe score, each head's summed weight over the score's (query, key) positions.

    ``weights``: one layer of one sequence, (heads, query, key) array or tensor; returns (heads,) float64 sums.
    """
    array = np.asarray(weights.float() if isinstance(weights, torch.Tensor) else weights)
    return {name: array[:, q, k].sum(axis=1, dtype=np.float64) for name, (q, k) in positions.items()}


def ordinary_vocabulary(handle: Any) -> np.ndarray:
    """The ids a probe draws from: every id with a token and an embedding, less the tokenizer's special
    and added tokens (chat markers, padding); 1-D int64, ascending."""
    from ..capture.from_ids import vocabulary_size

    tokenizer = handle.tokenizer
    excluded = {int(i) for i in tokenizer.all_special_ids}
    excluded |= {int(i) for i in getattr(tokenizer, "added_tokens_decoder", {})}
    ids = np.arange(vocabulary_size(handle), dtype=np.int64)
    return ids[~np.isin(ids, np.fromiter(excluded, dtype=np.int64, count=len(excluded)))]


def special_frame(handle: Any) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after a text's tokens (``[CLS]`` … ``[SEP]``)."""
    from ..capture.inputs import encode

    tokens = encode(handle, "a")
    ordinary = [i for i, special in enumerate(tokens.special) if not special]
    start, stop = (ordinary[0], ordinary[-1] + 1) if ordinary else (len(tokens.ids), len(tokens.ids))
    return list(tokens.ids[:start]), list(tokens.ids[stop:])


def run_probes(handle: Any, names: Sequence[str] = PROBES, spec: ProbeSpec | None = None) -> ProbeScores:
    """Every head's probe scores (`ProbeScores`) for ``handle``'s model (its main self-attention stack),
    and its in-context copying when it is a causal language model.

    ``names``: some of `PROBES` (an unknown one is an `InputError` listing them). Encoder-decoder models
    are refused. One forward pass per chunk of sequences gives both: attention is recorded on demand
    (queries and keys, `LazyAttention`) and each layer of each sequence is computed and reduced to the
    scored diagonals in turn, so memory holds one (heads, tokens, tokens) layer at a time; the logits of
    a chunk stay within `LOGITS_BYTES` and are reduced to the probe tokens' log-probabilities at once.
    """
    started = time.perf_counter()
    chosen = check_probe_names(names)
    spec = (spec or ProbeSpec()).check()
    if handle.kind == "encoder-decoder":
        raise InputError(f"probe scores cover encoder or decoder models, not encoder-decoder {handle.name!r}")
    prefix, suffix = special_frame(handle)
    ids = probe_ids(ordinary_vocabulary(handle), spec, prefix, suffix)
    positions = {
        name: where for name, where in probe_queries(len(prefix), spec.length, spec.repeats).items() if name in chosen
    }
    shape = handle.stacks[handle.main_stack]
    sums = {name: np.zeros((shape.layers, shape.heads), dtype=np.float64) for name in chosen}
    causal = handle.kind == "decoder" and handle.has_lm_head
    step = len(ids)
    if causal:
        vocabulary = int(handle.model.get_output_embeddings().weight.shape[0])
        step = max(1, LOGITS_BYTES // (ids.shape[1] * vocabulary * 4))
    log_probs = []
    for start in range(0, len(ids), step):
        for attentions, chosen_log_probs in _probe_pass(handle, ids[start : start + step], causal):
            for layer in range(shape.layers):
                for name, added in layer_probe_sums(attentions[layer], positions).items():
                    sums[name][layer] += added
            if chosen_log_probs is not None:
                log_probs.append(chosen_log_probs)
    scores = {name: sums[name] / (len(ids) * len(positions[name][0])) for name in chosen}
    copying, note = copying_figure(handle, np.stack(log_probs) if log_probs else None, len(prefix), spec)
    return ProbeScores(
        chosen, scores, spec, len(prefix), ids.shape[1], copying, note, seconds=time.perf_counter() - started
    )


def _probe_pass(handle: Any, rows: np.ndarray, causal: bool) -> Iterator[tuple[Any, np.ndarray | None]]:
    """One forward pass over probe ``rows`` (batch, tokens): per row, its stack's attention ((layers,
    heads, tokens, tokens): a `LazyAttention`, or dense weights for a model outside transformers' attention
    interface) and, for a causal language model, each token's log-probability given the tokens before it
    ((tokens - 1,) float64: entry ``p`` is token ``p + 1``'s)."""
    from ..capture.engine import run_batch
    from ..capture.from_ids import tokens_from_ids
    from ..capture.stacks import stacks_from_calls

    encoded = [tokens_from_ids(handle, row.tolist()) for row in rows]
    outputs, calls = run_batch(handle, encoded, None, {"attentions"}, attention="on_demand", logits=causal)
    chosen = None
    if causal:
        with torch.inference_mode():
            log_probs = torch.log_softmax(outputs.logits[:, :-1].float(), dim=-1)  # position p predicts p + 1
            targets = torch.as_tensor(rows[:, 1:], device=log_probs.device).unsqueeze(2)
            chosen = log_probs.gather(2, targets)[..., 0].cpu().numpy().astype(np.float64)
        del log_probs
    dense = None if calls else outputs.attentions  # (batch, heads, tokens, tokens) per layer
    del outputs
    for b, tokens in enumerate(encoded):
        if dense is not None:
            attentions: Any = np.stack([layer[b].float().cpu().numpy() for layer in dense])
        else:
            stack = stacks_from_calls(handle, calls, b, tokens, None, {"attentions"}, torch.float32)
            attentions = stack[handle.main_stack].attentions
        yield attentions, None if chosen is None else chosen[b]


def copying_figure(
    handle: Any, log_probs: np.ndarray | None, prefix: int, spec: ProbeSpec
) -> tuple[Copying | None, str]:
    """The model's in-context copying on the probe (`Copying`) from ``log_probs`` (batch, tokens - 1), each
    token's log-probability given those before it (entry ``p`` is token ``p + 1``'s); or None and why not
    (no causal language-model head)."""
    if log_probs is None or handle.kind != "decoder" or not handle.has_lm_head:
        what = "has no language-model head" if not handle.has_lm_head else "is not a causal language model"
        return None, f"model {handle.name!r} {what}, so its in-context copying is not measured"
    length = spec.length
    first_at = np.arange(prefix + 1, prefix + length)
    later_at = np.concatenate(
        [np.arange(prefix + r * length + 1, prefix + (r + 1) * length) for r in range(1, spec.repeats)]
    )
    first_mean, later_mean = float(log_probs[:, first_at - 1].mean()), float(log_probs[:, later_at - 1].mean())
    if not (math.isfinite(first_mean) and math.isfinite(later_mean)):
        return None, f"model {handle.name!r} gave non-finite log-probabilities on the probe"
    return Copying(first_mean, later_mean, len(first_at) * len(log_probs)), ""
