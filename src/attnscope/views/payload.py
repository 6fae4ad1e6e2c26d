"""Attention as a compact payload for the views: a JSON header plus uint8-quantised weights per layer.

Weights are quantised as ``round(w * 255)`` into one byte each (`attnscope.quantise`), so a decoded
weight ``b / 255`` is within 1/510 (≈ 0.00196) of the original; a layer of ``(heads, query, key)`` costs
``heads * query * key`` bytes (an HTML page deflates them, then base64 adds a third: `compression`). Floats
are never sent as JSON.

Two ways in: a `Capture` (`payload_from_capture`) or BertViz-style arrays (`payload_from_arrays`:
``attention`` as per-layer ``(batch, heads, query, key)`` tensors or arrays, ``tokens``,
``sentence_b_start``, or ``encoder_attention``/``decoder_attention``/``cross_attention`` with
``encoder_tokens``/``decoder_tokens``). Everything is validated before any rendering: bad input
raises `InputError` with what was wrong and what is allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..capture.lazy import LazyAttention
from ..capture.loading import readable_model_name
from ..capture.result import Capture
from ..errors import InputError, check_range, count
from ..quantise import SCALE, empty_codes, quantise
from ..selection import check_choice, check_choices
from .aggregated import COMBINING, carried_layers, check_initial, choose, data_key, offered, unavailable
from .bertviz_inputs import NO_WEIGHTS, StackedLayers, check_tokens, no_weights_error, stack_layers
from .capture_stacks import ROLES, capture_stacks  # noqa: F401 - ROLES is re-exported: it lived here first
from .compression import to_base64
from .generated_steps import check_step_tokens
from .sequences import (  # noqa: F401 - looks_special and prettify are re-exported: they lived here first
    TokenSequence,
    looks_special,
    prettify,
    sequence_from_strings,
    sequence_from_tokens,
)

DEFAULT_THRESHOLD = 0.01
"""Lines whose decoded weight is not above this are not drawn."""
DEFAULT_TOP_SHARE = 1.0
"""Per query row, the views draw the fewest strongest lines that make up this share of its weight (1: all lines)."""
_SPARSE_CHUNK = 1 << 21  # weights compared at once when packing sparse rows: a 2 MB mask, below numpy's huge pages
_TOLERANCE = 1e-3  # weights may exceed 1 or dip below 0 by float rounding, not more


@dataclass
class Payload:
    """What a view draws: token sequences and, per stack role, uint8 weights ``(layers, heads, query, key)``.

    ``layer_labels[role]`` are the model's layer numbers of the kept layers (all of them unless
    ``include_layers`` was given), ``head_labels[role]`` the model's head numbers of the kept heads
    (all of them, ``range(heads)``, unless ``include_heads`` was given). ``selection`` is the initial
    stack, layer (a layer label), visible heads (head labels) and aggregation. ``aggregated`` holds the
    carried aggregations' uint8 layers by data key ``"<role>/<method>"`` (`aggregated.data_key`),
    ``(layers, heads', query, key)`` with heads' 1 for methods that combine the heads;
    ``combined_heads[role]`` are the model's head numbers those combining methods were computed from
    (the kept heads unless ``combine_heads`` was given).
    """

    sequences: dict[str, TokenSequence]
    stacks: dict[str, np.ndarray]
    stack_tokens: dict[str, tuple[str, str]]
    causal: dict[str, bool]
    layer_labels: dict[str, list[int]]
    model: str | None = None
    kind: str | None = None
    threshold: float = DEFAULT_THRESHOLD
    selection: dict[str, Any] = field(default_factory=dict)
    sparse: bool = False
    head_labels: dict[str, list[int]] = field(default_factory=dict)
    aggregated: dict[str, np.ndarray] = field(default_factory=dict)
    combined_heads: dict[str, list[int]] = field(default_factory=dict)

    def data(self, key: str) -> np.ndarray:
        """The uint8 layers under a data key: a role (raw attention) or ``"<role>/<method>"``."""
        return self.stacks[key] if key in self.stacks else self.aggregated[key]

    def data_keys(self) -> list[str]:
        """Every data key: the roles, then the carried aggregations."""
        return [*self.stacks, *self.aggregated]

    def aggregations_of(self, role: str) -> dict[str, int]:
        """The carried aggregations of stack ``role``, with the heads each layer of them has."""
        prefix = role + "/"
        return {key[len(prefix) :]: int(w.shape[1]) for key, w in self.aggregated.items() if key.startswith(prefix)}

    def heads_of(self, role: str) -> list[int]:
        """The model's head numbers of the heads this payload carries for ``role``, in order."""
        return self.head_labels.get(role) or list(range(int(self.stacks[role].shape[1])))

    def combined_heads_of(self, role: str) -> list[int]:
        """The model's head numbers the carried aggregations that combine heads ("rollout",
        "value_norm_sum") of ``role`` were computed from: the kept heads unless ``combine_heads`` chose."""
        return self.combined_heads.get(role) or self.heads_of(role)

    def header(self) -> dict[str, Any]:
        """The JSON-ready description of everything except the weights."""
        return {
            "version": 1,
            "model": self.model,
            "kind": self.kind,
            "encoding": self.encoding(),
            "threshold": self.threshold,
            "sequences": {name: seq.to_dict() for name, seq in self.sequences.items()},
            "stacks": [
                {
                    "role": role,
                    "layers": int(w.shape[0]),
                    "heads": int(w.shape[1]),
                    "query": int(w.shape[2]),
                    "key": int(w.shape[3]),
                    "layer_labels": self.layer_labels[role],
                    "head_labels": self.heads_of(role),
                    "combined_heads": self.combined_heads_of(role),
                    "query_tokens": self.stack_tokens[role][0],
                    "key_tokens": self.stack_tokens[role][1],
                    "causal": self.causal[role],
                    "aggregations": self.aggregations_of(role),
                    "aggregation_methods": offered(int(w.shape[1]), list(self.aggregations_of(role))),
                }
                for role, w in self.stacks.items()
            ],
            "selection": self.selection,
        }

    def encoding(self) -> dict[str, Any]:
        """How `layer_bytes` are laid out: dense bytes, or the weights above the threshold (sparse rows)."""
        if not self.sparse:
            return {"dtype": "uint8", "scale": SCALE, "layout": "(heads, query, key) row-major", "sparse": False}
        return {
            "dtype": "uint8",
            "scale": SCALE,
            "sparse": True,
            "index_bytes": 2 if self._narrow() else 4,
            "layout": "rows (heads, query): uint32 row starts [heads*query+1], key indices, uint8 weights; "
            "only weights above the threshold",
        }

    def _narrow(self) -> bool:
        return max(w.shape[3] for w in self.stacks.values()) <= 1 << 16

    def layer_bytes(self, key: str, layer: int) -> bytes:
        """One layer's weights as bytes: dense ``(heads, query, key)`` row-major, or sparse rows (`encoding`).

        ``key`` is a role, or a role and a carried aggregation (`data`).

        Sparse rows keep only the weights whose byte decodes above the threshold: per (head, query) row,
        little-endian uint32 row starts (``heads * query + 1`` of them), then uint16 (uint32 past 65536
        keys) key indices, then one uint8 weight per kept entry.
        """
        dense = np.ascontiguousarray(self.data(key)[layer])
        if not self.sparse:
            return dense.tobytes()
        keys = dense.shape[-1]
        rows, flat, smallest = dense.size // keys, dense.reshape(-1), self._smallest_kept_byte()
        step = max(1, _SPARSE_CHUNK // keys) * keys  # whole rows at a time: a small mask, reused memory
        found = [at + np.flatnonzero(flat[at : at + step] >= smallest) for at in range(0, flat.size, step)]
        kept = np.concatenate(found) if smallest <= SCALE else np.zeros(0, dtype=np.intp)
        row_of, key_of = np.divmod(kept, keys)
        starts = np.zeros(rows + 1, dtype="<u4")
        np.cumsum(np.bincount(row_of, minlength=rows), out=starts[1:])
        indices = key_of.astype("<u2" if self._narrow() else "<u4")
        return starts.tobytes() + indices.tobytes() + flat[kept].tobytes()

    def _smallest_kept_byte(self) -> int:
        """The smallest byte whose weight (``byte / 255``, float64) is above the threshold (256: none)."""
        above = np.flatnonzero(np.arange(SCALE + 1) / SCALE > self.threshold)
        return int(above[0]) if above.size else SCALE + 1

    def layers_base64(self, compression: str | None = None) -> dict[str, list[str]]:
        """Every layer of every stack and carried aggregation as a base64 string, per data key: `layer_bytes`,
        deflated first when ``compression`` is ``"deflate-raw"`` (`compression.COMPRESSION`, as standalone pages
        carry them; their header says so: `compression.compressed_header`)."""
        return {
            key: [to_base64(self.layer_bytes(key, i), compression) for i in range(self.data(key).shape[0])]
            for key in self.data_keys()
        }

    def decoded(self, key: str) -> np.ndarray:
        """The weights as the browser sees them: ``byte / 255`` as float64, (layers, heads, query, key)."""
        return self.data(key).astype(np.float64) / SCALE

    def nbytes(self) -> int:
        return sum(int(self.data(key).nbytes) for key in self.data_keys())


def check_top_share(value: object) -> float:
    """Return ``value`` as a float if it is a number in (0, 1]; otherwise raise `InputError` naming the range.

    A top share is not a minimum weight (``threshold``): per query row, the lines kept are the fewest
    strongest whose weights add up to at least that share of the row's weight on the shown keys.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise InputError(f"top_share must be a number in (0, 1] (1 draws every line), got {value!r}")
    return float(value)


def check_weights(weights: Any, what: str) -> None:
    """Raise `InputError` unless ``weights`` (layers, heads, query, key) is non-empty, finite and in [0, 1].

    Read one layer at a time (``weights[l]``): its minimum and maximum say whether it is finite (a NaN makes
    both NaN) and in range; only a layer at fault is searched for where."""
    shape = tuple(weights.shape)
    if len(shape) != 4:
        raise InputError(f"{what} must be (layers, heads, query, key), got shape {shape}")
    if 0 in shape:
        raise InputError(f"{what} is empty (shape {shape}): it needs at least one layer, head and token")
    lows, highs = [], []
    for layer in range(shape[0]):
        part = np.asarray(weights[layer])
        low, high = part.min(), part.max()
        if not (np.isfinite(low) and np.isfinite(high)):
            where = (layer, *(int(i) for i in np.argwhere(~np.isfinite(part))[0]))
            raise InputError(f"{what} holds NaN or infinite weights, first at (layer, head, query, key) = {where}")
        lows.append(low)
        highs.append(high)
    low_layer, high_layer = int(np.argmin(lows)), int(np.argmax(highs))
    if lows[low_layer] < -_TOLERANCE:
        raise InputError(
            f"{what} holds negative weights (min {lows[low_layer]:.4g} at {_where(weights, low_layer, np.argmin)}): "
            "attention weights must be in [0, 1], after softmax"
        )
    if highs[high_layer] > 1 + _TOLERANCE:
        raise InputError(
            f"{what} holds weights above 1 (max {highs[high_layer]:.4g} at {_where(weights, high_layer, np.argmax)}): "
            "pass attention probabilities (after softmax), not scores"
        )


def _where(weights: Any, layer: int, find: Any) -> tuple[int, ...]:
    """(layer, head, query, key) of the first weight ``find`` (np.argmin or np.argmax) picks in ``layer``."""
    part = np.asarray(weights[layer])
    return (layer, *(int(i) for i in np.unravel_index(int(find(part)), part.shape)))


def _is_causal(weights: Any) -> bool:
    """True when no query attends to a later key (a square stack whose upper triangle is zero).

    Read a layer at a time (``weights[l]``), row by row across the layers: most stacks fail at row 0."""
    q, k = weights.shape[-2:]
    if q != k or q < 2:
        return False
    layers = range(weights.shape[0])
    return not any(np.any(np.asarray(weights[n])[:, i, i + 1 :] > 0) for i in range(q - 1) for n in layers)


def _check_selection(
    payload: Payload,
    stack: str | None,
    layer: int | None,
    heads: Sequence[int] | None,
    included: tuple[bool, bool] = (False, False),
) -> None:
    """Validate the initial stack, layer and heads, and store them in ``payload.selection``.

    ``included`` says whether ``include_layers`` and ``include_heads`` were given: then a layer or head
    they leave out is named as not included (with the ones kept), not as out of the model's range.
    """
    roles = list(payload.stacks)
    role = stack if stack is not None else roles[0]
    if role not in payload.stacks:
        raise InputError(f"stack {role!r} is not in this view: it has {', '.join(roles)}")
    labels, head_labels = payload.layer_labels[role], payload.heads_of(role)
    what = f"the {role} attention"
    chosen_layer = (
        labels[0]
        if layer is None
        else check_choice(
            "layer", layer, len(labels), what, kept=labels if included[0] else None, kept_by="include_layers"
        )
    )
    chosen_heads = check_choices(
        "heads",
        [heads] if isinstance(heads, int) else heads,
        len(head_labels),
        what,
        unit="head",
        kept=head_labels if included[1] else None,
        kept_by="include_heads",
        allow_empty=True,
        merge_repeats=True,
    )
    payload.selection = {"stack": role, "layer": chosen_layer, "heads": chosen_heads}


def _kept(name: str, include: Sequence[int] | None, size: int, role: str) -> list[int]:
    """The indices ``include_layers``/``include_heads`` keep of ``size``: all when None; checked, no repeats."""
    return check_choices(f"include_{name}s", include, size, f"the {role} attention", unit=name)


def _combined(combine: Sequence[int] | None, kept: list[int], included: bool, role: str) -> list[int]:
    """The heads ``combine_heads`` names (all ``kept`` heads when None), each among the ``kept`` heads (the model's
    numbers; ``included``: kept by include_heads); `FieldError` names the entry at fault (``combine_heads.1``)."""
    what, among = f"the {role} attention", kept if included else None
    return check_choices("combine_heads", combine, len(kept), what, unit="head", kept=among, kept_by="include_heads")


def _keep(weights: Any, layers: list[int], heads: list[int], included: tuple[bool, bool]) -> np.ndarray:
    """The kept layers and heads (model numbers) of (layers, heads, query, key) weights, quantised one layer at a
    time (``weights[l]``); ``included`` says whether include_layers and include_heads were given (else all are
    kept and no float weight is copied)."""
    out = empty_codes((len(layers), len(heads), *weights.shape[2:]))
    for i, layer in enumerate(layers):
        part = weights[layer]
        quantise(np.asarray(part)[heads] if included[1] else part, out=out[i])
    return out


def _check_fits(
    role: str, weights: np.ndarray | StackedLayers, query: TokenSequence, key: TokenSequence, qname: str, kname: str
) -> None:
    q, k = weights.shape[-2:]
    for side, size, tokens, name in (("query", q, query.tokens, qname), ("key", k, key.tokens, kname)):
        if size != len(tokens):
            given = f"{count(len(tokens), name)} {'was' if len(tokens) == 1 else 'were'} given"
            raise InputError(
                f"{role} attention has {count(size, side + ' position')} but {given}: "
                "pass the tokens the attention was computed on"
            )


def build_payload(
    stacks: Mapping[str, np.ndarray | StackedLayers],
    sequences: dict[str, TokenSequence],
    stack_tokens: dict[str, tuple[str, str]],
    *,
    causal: dict[str, bool] | None = None,
    model: str | None = None,
    kind: str | None = None,
    layer: int | None = None,
    heads: Sequence[int] | None = None,
    stack: str | None = None,
    include_layers: Sequence[int] | None = None,
    include_heads: Sequence[int] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    sparse: bool | None = False,
    capture: Capture | None = None,
    aggregation: str = "raw",
    aggregations: str | Sequence[str] = "auto",
    combine_heads: Sequence[int] | None = None,
    checked: bool = False,
) -> Payload:
    """Validate float weights ``(layers, heads, query, key)`` per role and quantise them into a `Payload`.

    ``sparse`` ships only the weights above ``threshold`` (see `Payload.layer_bytes`): for long inputs,
    where most of the ``n²`` weights are tiny, it is many times smaller. ``sparse=None`` chooses it exactly
    when it is sure to be smaller: a softmax row keeps at most ``1 / threshold`` weights above the threshold,
    so a sparse row costs at most ``4 + 3 / threshold`` bytes against ``keys`` bytes dense.

    ``include_layers``/``include_heads`` keep only those layers/heads (the model's numbers, for every stack).
    ``aggregations`` ("auto" or names from `aggregated.CARRIED`) are computed from every layer (value
    norms only from a ``capture``) and carried as extra layers; ``aggregation`` is the one shown first
    (`aggregated.VIEW_AGGREGATIONS`). The per-head one ("value_norm") has every kept head; those that
    combine heads into one (`aggregated.COMBINING`: "rollout", "value_norm_sum") are computed from
    ``combine_heads`` (the model's head numbers, each among the kept heads; default: all kept heads),
    which the header names per stack as ``combined_heads``.

    Every argument is checked before anything is computed: bad input raises `InputError` (a `FieldError`
    naming the option, or the list entry at fault, e.g. ``combine_heads.1``); ``checked``: the weights passed
    `check_weights` already. A stack (an array, a `StackedLayers`) is read one layer at a time, ``stack[l]``.
    """
    if not stacks:
        raise InputError("no attention given: pass attention, or encoder/decoder/cross attention")
    if not (isinstance(threshold, (int, float)) and 0 <= threshold < 1):
        raise InputError(f"threshold must be a number in [0, 1), got {threshold!r}")
    labels, head_labels, combined = {}, {}, {}
    for role, weights in stacks.items():  # every check before anything is computed
        if not checked:
            check_weights(weights, f"{role} attention")
        qname, kname = stack_tokens[role]
        _check_fits(role, weights, sequences[qname], sequences[kname], f"{qname} token", f"{kname} token")
        labels[role] = _kept("layer", include_layers, weights.shape[0], role)
        head_labels[role] = _kept("head", include_heads, weights.shape[1], role)
        combined[role] = _combined(combine_heads, head_labels[role], include_heads is not None, role)
    included = (include_layers is not None, include_heads is not None)
    quantised = {role: _keep(w, labels[role], head_labels[role], included) for role, w in stacks.items()}
    if causal is None:
        causal = {role: _is_causal(w) for role, w in stacks.items() if role != "cross"}
    causal = {role: bool(causal.get(role, False)) for role in stacks}
    for seq_name, seq in sequences.items():
        if seq.sentence_b_start is not None:
            check_range(
                "sentence_b_start",
                seq.sentence_b_start,
                len(seq.tokens),
                f"the {seq_name} sequence of {count(len(seq.tokens), 'token')}",
                unit="token position",
            )
    if sparse is None:
        sparse = threshold > 0 and max(w.shape[3] for w in quantised.values()) > 4 + 3 / threshold
    payload = Payload(
        sequences,
        quantised,
        stack_tokens,
        causal,
        labels,
        model,
        kind,
        float(threshold),
        sparse=sparse,
        head_labels=head_labels,
        combined_heads=combined,
    )
    _check_selection(payload, stack, layer, heads, included)
    methods = choose(aggregations, aggregation, list(stacks), max(max(w.shape[2:]) for w in stacks.values()), capture)
    carried = {role: [m for m in methods if unavailable(m, role, capture) is None] for role in stacks}
    payload.selection["aggregation"] = check_initial(aggregation, carried, capture)
    for role, weights in stacks.items():
        for method in carried[role]:
            heads = combined[role] if method in COMBINING else head_labels[role]
            layers = carried_layers(method, role, weights, heads, capture)
            payload.aggregated[data_key(role, method)] = quantise(
                layers[labels[role]] if include_layers is not None else layers
            )
    return payload


def payload_from_capture(cap: Capture, **options: Any) -> Payload:
    """A `Payload` of every attention stack a capture holds (encoder, decoder, cross); ``options`` as
    `build_payload`. Stacks computed on demand (`LazyAttention`) are materialised first, within their
    ``max_dense_bytes`` (else `InputError`): at long context the head view draws each query's strongest keys
    instead (`long_payload.capture_payload`)."""
    parts = capture_stacks(cap)
    if options.pop("top_k", None) is not None or options.pop("summary", None) is not None:
        raise InputError(
            "top_k and summary (each query's strongest keys) are the head view's: attnscope.head_view(cap, top_k=...)"
        )
    stacks = {role: np.asarray(w) if isinstance(w, LazyAttention) else w for role, w in parts.stacks.items()}
    return build_payload(
        stacks,
        parts.sequences,
        parts.stack_tokens,
        causal=parts.causal,
        model=readable_model_name(cap.model),
        kind=cap.kind,
        capture=cap,
        **options,
    )


def payload_from_arrays(
    attention: Any = None,
    tokens: Sequence[str] | None = None,
    sentence_b_start: int | None = None,
    *,
    encoder_attention: Any = None,
    decoder_attention: Any = None,
    cross_attention: Any = None,
    encoder_tokens: Sequence[str] | None = None,
    decoder_tokens: Sequence[str] | None = None,
    batch_index: int = 0,
    prettify_tokens: bool = True,
    **options: Any,
) -> Payload:
    """A `Payload` from BertViz's arguments: ``attention`` + ``tokens``, or encoder/decoder/cross attention."""
    if options.pop("top_k", None) is not None or options.pop("summary", None) is not None:
        raise InputError(
            "top_k and summary (each query's strongest keys) apply to a Capture: pass attnscope.capture(...)'s result"
        )
    if attention is not None:
        if any(a is not None for a in (encoder_attention, decoder_attention, cross_attention)):
            raise InputError("pass either attention (with tokens) or encoder/decoder/cross attention, not both")
        check_step_tokens(attention, tokens, "attention", "tokens")
        weights = stack_layers(attention, batch_index, "attention")
        # Which stack the weights are is read from their causal triangle, which only valid weights show: a
        # NaN or a negative weight is reported as the argument's ("attention ..."), never under a guessed stack.
        check_weights(weights, "attention")
        seq = sequence_from_strings(check_tokens(tokens, "tokens"), sentence_b_start, prettify_tokens)
        role = "decoder" if _is_causal(weights) else "encoder"
        causal = {role: role == "decoder"}  # checked and read once, here
        return build_payload({role: weights}, {role: seq}, {role: (role, role)}, causal=causal, checked=True, **options)
    stacks, sequences, stack_tokens = {}, {}, {}
    if encoder_attention is not None or cross_attention is not None:
        sequences["encoder"] = sequence_from_strings(
            check_tokens(encoder_tokens, "encoder_tokens"), sentence_b_start, prettify_tokens
        )
    if decoder_attention is not None or cross_attention is not None:
        sequences["decoder"] = sequence_from_strings(
            check_tokens(decoder_tokens, "decoder_tokens"), None, prettify_tokens
        )
    for role, given in (("encoder", encoder_attention), ("decoder", decoder_attention), ("cross", cross_attention)):
        if given is not None:
            names = {"encoder": "encoder_tokens", "decoder": "decoder_tokens", "cross": "decoder_tokens"}
            given_tokens = {"encoder": encoder_tokens, "decoder": decoder_tokens, "cross": decoder_tokens}[role]
            check_step_tokens(given, given_tokens, f"{role}_attention", names[role])
            stacks[role] = stack_layers(given, batch_index, f"{role}_attention")
            stack_tokens[role] = ("decoder", "encoder") if role == "cross" else (role, role)
    if not stacks:
        if tokens is not None:  # head_view(outputs.attentions, tokens) where the model returned None
            raise no_weights_error("attention", "None")
        raise InputError(
            "no attention given: pass attention (with tokens), or encoder/decoder/cross attention; "
            f"if you passed a model's output attentions and they were None, {NO_WEIGHTS}"
        )
    return build_payload(stacks, sequences, stack_tokens, **options)


def payload_from_inputs(
    attention: Any = None,
    tokens: Sequence[str] | None = None,
    sentence_b_start: int | None = None,
    *,
    from_capture: Callable[..., Payload] | None = None,
    **options: Any,
) -> Payload:
    """A `Payload` from what a view function was given: a `Capture` as ``attention``, or BertViz's arguments.

    ``options`` are `payload_from_arrays`'s keywords; with a capture, only those of `build_payload` apply
    (the BertViz array options are checked to be unset), and ``from_capture`` (default `payload_from_capture`)
    builds it (the head view's: `long_payload.capture_payload`).
    """
    if not isinstance(attention, Capture):
        return payload_from_arrays(attention, tokens, sentence_b_start, **options)
    if tokens is not None or sentence_b_start is not None:
        raise InputError("a Capture carries its own tokens and sentence_b_start: pass only the capture")
    array_only = ("encoder_attention", "decoder_attention", "cross_attention", "encoder_tokens", "decoder_tokens")
    given = [name for name in array_only if options.pop(name, None) is not None]
    if given:
        raise InputError(f"a Capture carries its own attention and tokens: drop {', '.join(given)}")
    options.pop("batch_index", None)
    options.pop("prettify_tokens", None)
    return (from_capture or payload_from_capture)(attention, **options)
