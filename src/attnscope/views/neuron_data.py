"""What the neuron view (V3) ships to the browser: queries, keys and the score terms of every layer.

The browser recomputes one attention row from these exactly as `attnscope.analysis.neuron` does
(q·k in float64 from float32 q and k, times the layer's scaling, through its softcap, plus the bias,
masked, softmax with the sink), so any layer, head and query can be shown without asking Python.

Encoding, per stack and layer, one binary blob (little-endian, row-major, sections in this order):

- ``queries``: float32 ``(heads, query, head_dim)``, after rotary embeddings
- ``keys``:    float32 ``(kv_heads, key, head_dim)``: one per key/value head; query head ``h`` reads
  key head ``kv_head_of[h]`` (grouped-query attention is not expanded, so it costs no extra bytes)
- ``bias``:    float32 ``(heads, query, key)``, only when the stack has an additive bias (T5, ALiBi)
- ``allowed``: uint8 ``(query, key)``, 1 where the key is visible, 0 where the mask hides it; absent for
  a capture on demand, whose header gives each layer's mask as its structure instead (``mask``: causal,
  sliding window, padded keys), so a layer stays linear in tokens

The header (JSON) names each section's byte offset and shape, and carries the per-layer scaling and
softcap, the attention-sink logits (GPT-OSS) and the tokens. Sizes: a layer costs
``4·(heads·query + kv_heads·key)·head_dim`` bytes (+ ``4·heads·query·key`` with a bias, +
``query·key`` for the mask); all-MiniLM-L6-v2 on 17 tokens: 52,513 bytes a layer, 315,078 for all 6;
SmolLM2 on demand at 8,192 tokens: 25.2 MB a layer. A standalone page carries every layer when they fit in
`HTML_BUDGET`, else only the selected one (the header's ``carried``), and says so.

A capture on demand (`LazyAttention`) needs no extra fields: its queries, keys, scale, softcap, sinks and
mask structure are what its weights are computed from, so they are shipped as they are (its layers held
dense, those with a position bias, need a capture with ``fields=CAPTURE_FIELDS`` instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..capture.lazy import LazyAttention
from ..capture.loading import readable_model_name
from ..capture.result import Capture
from ..errors import InputError, check_range
from ..errors import count as count_of
from .compression import to_base64
from .payload import ROLES, TokenSequence
from .sequences import SENTENCE_FILTERS, check_filter_name, sequence_from_tokens  # noqa: F401 - SENTENCE_FILTERS re-exported

NEEDED = ("queries", "keys", "allowed")
"""Fields a capture must hold for the neuron view; ``bias`` too when the model adds one."""
CAPTURE_FIELDS = ("attentions", "queries", "keys", "bias", "allowed")
"""What `neuron_view` captures when it runs the model itself."""
REBUILD_TOLERANCE = 1e-3
"""Largest difference allowed between the rebuilt softmax and the captured attention (float32 captures)."""
HTML_BUDGET = 100 * 10**6
"""Bytes of base64 layer text a standalone page carries at most: past it, only the selected layer."""


class LayerArrays:
    """Per-layer arrays of one shape read as one ``(layers, ...)`` array is here (``shape``, ``[layer]``),
    without copying them into one: a capture on demand holds each layer's queries and keys apart."""

    def __init__(self, parts: list[np.ndarray]) -> None:
        self.parts = parts
        self.shape = (len(parts), *parts[0].shape)

    def __getitem__(self, layer: int) -> np.ndarray:
        return self.parts[layer]


@dataclass
class NeuronStack:
    """One stack's arrays as shipped: q ``(layers, heads, query, head_dim)``, k ``(layers, kv_heads, key, head_dim)``,
    bias ``(layers, heads, query, key)`` or None, allowed ``(layers, query, key)`` bool, or (a capture on
    demand) None and ``masks``, each layer's mask structure as the header gives it."""

    role: str
    queries: np.ndarray | LayerArrays
    keys: np.ndarray | LayerArrays
    kv_head_of: list[int]
    bias: np.ndarray | None
    allowed: np.ndarray | None
    scaling: list[float]
    softcap: list[float | None]
    sinks: np.ndarray | None
    query_tokens: str
    key_tokens: str
    causal: bool
    masks: list[dict[str, Any]] | None = None

    @property
    def layers(self) -> int:
        return int(self.queries.shape[0])

    @property
    def heads(self) -> int:
        return int(self.queries.shape[1])

    def sections(self) -> list[tuple[str, str, tuple[int, ...]]]:
        """(name, dtype, shape) of each section of one layer's blob, in order."""
        _, heads, nq, dim = self.queries.shape
        parts = [("queries", "float32", (heads, nq, dim)), ("keys", "float32", tuple(self.keys.shape[1:]))]
        if self.bias is not None:
            parts.append(("bias", "float32", tuple(self.bias.shape[1:])))
        if self.allowed is not None:
            parts.append(("allowed", "uint8", tuple(self.allowed.shape[1:])))
        return parts

    def layout(self) -> list[dict[str, Any]]:
        """Each section's name, dtype, shape, byte offset and length within one layer's blob."""
        out, offset = [], 0
        for name, dtype, shape in self.sections():
            size = int(np.prod(shape)) * (4 if dtype == "float32" else 1)
            out.append({"name": name, "dtype": dtype, "shape": list(shape), "offset": offset, "bytes": size})
            offset += size
        return out

    def layer_bytes(self, layer: int) -> bytes:
        """One layer's blob: the sections of `layout` concatenated, little-endian."""
        parts = [self.queries[layer].astype("<f4"), self.keys[layer].astype("<f4")]
        if self.bias is not None:
            parts.append(self.bias[layer].astype("<f4"))
        if self.allowed is not None:
            parts.append(self.allowed[layer].astype(np.uint8))
        return b"".join(np.ascontiguousarray(p).tobytes() for p in parts)

    def describe(self) -> dict[str, Any]:
        """The stack's entry in the header (everything but the arrays)."""
        _, heads, nq, dim = self.queries.shape
        return {
            "role": self.role,
            "layers": self.layers,
            "heads": heads,
            "kv_heads": int(self.keys.shape[1]),
            "head_dim": int(dim),
            "query": int(nq),
            "key": int(self.keys.shape[2]),
            "query_tokens": self.query_tokens,
            "key_tokens": self.key_tokens,
            "causal": self.causal,
            "kv_head_of": self.kv_head_of,
            "scaling": self.scaling,
            "softcap": self.softcap,
            "sinks": None if self.sinks is None else [[float(x) for x in row] for row in self.sinks],
            "has_bias": self.bias is not None,
            "mask": self.masks,
            "layout": self.layout(),
            "layer_bytes": sum(part["bytes"] for part in self.layout()),
        }


@dataclass
class NeuronData:
    """Every stack of a capture as the neuron view ships it, with the tokens and the initial selection."""

    model: str | None
    kind: str | None
    sequences: dict[str, TokenSequence]
    stacks: dict[str, NeuronStack]
    selection: dict[str, Any]

    def header(self) -> dict[str, Any]:
        """The JSON-ready description of everything but the arrays (see the module docstring)."""
        return {
            "version": 1,
            "model": self.model,
            "kind": self.kind,
            "encoding": {
                "byte_order": "little",
                "float": "float32",
                "mask": "uint8",
                "layout": "per layer: queries, keys[, bias], allowed; row-major",
            },
            "sequences": {name: seq.to_dict() for name, seq in self.sequences.items()},
            "stacks": [s.describe() for s in self.stacks.values()],
            "selection": self.selection,
        }

    def layer_bytes(self, role: str, layer: int) -> bytes:
        return self.stacks[role].layer_bytes(layer)

    def pair_start(self, role: str) -> int | None:
        """Where sentence B starts when ``role``'s queries and keys are one sentence pair, else None
        (a single text has no B; cross attention reads two sequences). Positions before it are sentence A."""
        s = self.stacks[role]
        b = self.sequences[s.query_tokens].sentence_b_start if s.query_tokens == s.key_tokens else None
        return b if b is not None and 0 < b < int(s.queries.shape[2]) else None

    def sentence_positions(self, role: str, sentence: str) -> range:
        """The positions of sentence ``sentence`` ("A" or "B") in ``role``'s pair (queries and keys alike)."""
        b, n = self.pair_start(role), int(self.stacks[role].queries.shape[2])
        if b is None:
            return range(n)
        return range(0, b) if sentence == "A" else range(b, n)

    def layers_base64(self, compression: str | None = None) -> dict[str, list[str]]:
        """Every layer of every stack as base64 text, per role (for pages without a kernel): deflated first when
        ``compression`` is ``"deflate-raw"`` (`compression.COMPRESSION`; the header must then say so)."""
        return {
            role: [to_base64(s.layer_bytes(i), compression) for i in range(s.layers)] for role, s in self.stacks.items()
        }

    def page_layers(
        self, role: str, layer: int, compression: str | None = None
    ) -> tuple[dict[str, list[str | None]], str]:
        """The layers a standalone page carries, as base64 per role, and what the page says of them: every
        layer when they fit in `HTML_BUDGET`, else layer ``layer`` of ``role`` only (None for the others) and a
        note naming it and the sizes ("" when every layer is carried); deflated as `layers_base64` says."""
        sizes = [4 * -(-s.describe()["layer_bytes"] // 3) for s in self.stacks.values() for _ in range(s.layers)]
        if sum(sizes) <= HTML_BUDGET:
            return {r: list(texts) for r, texts in self.layers_base64(compression).items()}, ""
        chosen = to_base64(self.stacks[role].layer_bytes(layer), compression)
        carried: dict[str, list[str | None]] = {
            r: [chosen if (r, i) == (role, layer) else None for i in range(s.layers)] for r, s in self.stacks.items()
        }
        note = (
            f"this page carries the {role} stack's layer {layer} only: every layer would take "
            f"{sum(sizes) / 1e6:,.0f} MB, over its {HTML_BUDGET / 1e6:,.0f} MB; a notebook shows any layer"
        )
        return carried, note

    def nbytes(self) -> int:
        """Bytes of every layer's blob together (before base64)."""
        return sum(len(s.layer_bytes(i)) for s in self.stacks.values() for i in range(s.layers))


def decode_layer(header_stack: dict[str, Any], blob: bytes) -> dict[str, np.ndarray]:
    """The arrays of one layer's blob, by section name, as the browser reads them (for tests and tools)."""
    out = {}
    for part in header_stack["layout"]:
        dtype = np.dtype("<f4") if part["dtype"] == "float32" else np.uint8
        raw = blob[part["offset"] : part["offset"] + part["bytes"]]
        out[part["name"]] = np.frombuffer(raw, dtype=dtype).reshape(part["shape"])
    return out


def _unique_keys(keys: np.ndarray, kv_head_of: np.ndarray | None) -> tuple[np.ndarray, list[int]]:
    """Keys ``(layers, heads, key, dim)`` reduced to one per key/value head, and each head's key head.

    Falls back to one key per head when the expanded keys do not repeat as ``kv_head_of`` says.
    """
    heads = keys.shape[1]
    mapping = np.arange(heads) if kv_head_of is None else np.asarray(kv_head_of, dtype=np.int64)
    firsts = [int(np.flatnonzero(mapping == g)[0]) for g in range(int(mapping.max()) + 1)]
    unique = keys[:, firsts]
    if len(firsts) < heads and not np.array_equal(unique[:, mapping], keys):
        return keys, list(range(heads))
    return unique, [int(g) for g in mapping]


def _check_fields(cap: Capture, role: str) -> None:
    """Raise `InputError` naming the fields the neuron view needs that ``cap``'s stack lacks."""
    stack = cap.stacks[role]
    missing = [name for name in NEEDED if getattr(stack, name) is None]
    if missing:
        why = f" ({cap.missing[missing[0]]})" if missing[0] in cap.missing else ""
        raise InputError(
            f"the neuron view needs {', '.join(missing)} but the {role} stack of this capture holds no "
            f"{' or '.join(missing)}{why}: capture with "
            f"attnscope.capture(model, text, fields={list(CAPTURE_FIELDS)!r}) or fields='all'"
        )


def _check_rebuilds(cap: Capture, role: str) -> None:
    """Raise `InputError` when q, k and the captured terms do not give back the captured attention.

    This catches a capture made without ``bias`` for a model that adds one (T5's position bias).
    Skipped for float16 captures (their q and k are rounded) and when no attention was captured.
    """
    stack = cap.stacks[role]
    if stack.bias is not None or stack.attentions is None or cap.dtype != "float32":
        return
    for layer in range(stack.layers):
        gap = float(np.max(np.abs(stack.rebuilt_attentions(layer) - stack.attentions[layer])))
        if not gap <= REBUILD_TOLERANCE:
            raise InputError(
                f"the {role} stack's queries and keys do not rebuild its attention (layer {layer} is off "
                f"by {gap:.3g}): this model adds a score term the capture lacks; capture with "
                f"fields={list(CAPTURE_FIELDS)!r} to include the bias"
            )


def _mask_of(structure: Any) -> dict[str, Any]:
    """A layer's mask structure as the header gives it: causal, its sliding window, which keys are valid."""
    valid = structure.key_valid
    return {
        "causal": bool(structure.causal),
        "window": structure.window,
        "key_valid": None if valid is None else [int(v) for v in valid],
    }


def _lazy_stack_data(cap: Capture, role: str) -> NeuronStack | None:
    """A stack computed on demand as the neuron view ships it, from what its weights are computed from; None
    when it is not on demand, or a layer of it holds dense weights (no queries and keys to show)."""
    lazy = cap.stacks[role].attentions
    if not isinstance(lazy, LazyAttention) or any(part.queries is None for part in lazy.layers):
        return None
    parts = lazy.layers
    sinks = [part.sinks for part in parts]
    return NeuronStack(
        role=role,
        queries=LayerArrays([part.queries for part in parts]),
        keys=LayerArrays([part.keys for part in parts]),
        kv_head_of=[int(g) for g in lazy.kv_head_of],
        bias=None,
        allowed=None,
        scaling=[float(part.scale) for part in parts],
        softcap=[None if part.softcap is None else float(part.softcap) for part in parts],
        sinks=None if any(x is None for x in sinks) else np.stack(sinks).astype(np.float32),
        query_tokens="decoder" if role == "cross" else role,
        key_tokens="encoder" if role == "cross" else role,
        causal=role == "decoder",
        masks=[_mask_of(part.structure) for part in parts],
    )


def _stack_data(cap: Capture, role: str) -> NeuronStack:
    s = cap.stacks[role]
    keys, kv_head_of = _unique_keys(s.require("keys"), s.kv_head_of)
    queries, allowed, scaling = s.require("queries"), s.require("allowed"), s.scaling
    assert scaling is not None  # recorded with the queries
    return NeuronStack(
        role=role,
        queries=queries,
        keys=keys,
        kv_head_of=kv_head_of,
        bias=s.bias,
        allowed=allowed,
        scaling=[float(x) for x in scaling],
        softcap=[None if c is None else float(c) for c in (s.softcap or [None] * s.layers)],
        sinks=None if s.sinks is None else np.asarray(s.sinks, dtype=np.float32),
        query_tokens="decoder" if role == "cross" else role,
        key_tokens="encoder" if role == "cross" else role,
        causal=role == "decoder",
    )


def _sequences(cap: Capture) -> dict[str, TokenSequence]:
    """The token sequences the stacks read: labels, special flags, sentence B and the pieces that continue a word."""
    main = "decoder" if cap.kind == "decoder" else "encoder"
    sources = {main: cap.tokens}
    if cap.decoder_tokens is not None and main == "encoder":
        sources["decoder"] = cap.decoder_tokens
    out = {}
    for name, tokens in sources.items():
        seq = sequence_from_tokens(tokens)
        out[name] = TokenSequence(seq.tokens, seq.special, seq.sentence_b_start, continues=seq.continues)
    return out


def default_query(data: NeuronData, role: str, sentence: str | None = None) -> int:
    """The query shown first, within ``sentence`` ("A" or "B" of a pair; None: the whole text): its last
    token in a causal stack (it sees the most keys), else its first ordinary (non-special) token, else its first."""
    stack = data.stacks[role]
    seq = data.sequences[stack.query_tokens]
    positions = data.sentence_positions(role, sentence) if sentence else range(len(seq.tokens))
    if stack.causal or role == "cross":
        return positions[-1]
    return next((i for i in positions if not seq.special[i]), positions[0])


def check_filter(data: NeuronData, role: str, value: Any) -> str:
    """``value`` if it is a sentence filter that ``role``'s stack can show; otherwise `InputError` naming
    the filters allowed (only "all" without a sentence pair)."""
    check_filter_name(value)
    if value != "all" and data.pair_start(role) is None:
        s = data.stacks[role]
        shows = "decoder queries on encoder keys" if s.query_tokens != s.key_tokens else "one text, not a sentence pair"
        raise InputError(
            f"filter {value!r} needs a sentence pair, and the {role} stack shows {shows}: "
            f"the only filter allowed here is 'all'"
        )
    return value


def check_query_in_filter(data: NeuronData, role: str, value: str, query: int) -> int:
    """``query`` if the filter ``value`` shows it (its first letter names the queries' sentence); otherwise
    `InputError` naming the positions it shows."""
    if value == "all" or query in data.sentence_positions(role, value[0]):
        return query
    shown = data.sentence_positions(role, value[0])
    raise InputError(
        f"query position {query} is not shown by filter {value!r}: it shows the queries of sentence "
        f"{value[0]} (positions {shown[0]}-{shown[-1]}); choose one of those, or filter='all'"
    )


def choose(
    data: NeuronData,
    stack: str | None,
    layer: int | None,
    head: int | None,
    query: int | None,
    filter: str | None = None,
) -> dict[str, Any]:
    """Validate an initial selection against ``data``; None picks stack ``main``, layer 0, head 0,
    `default_query` (within the filter's query sentence) and the filter "all". Raises `InputError`
    naming the allowed range."""
    roles = list(data.stacks)
    role = stack if stack is not None else ("decoder" if data.kind == "decoder" else roles[0])
    if role not in data.stacks:
        raise InputError(f"stack {role!r} is not in this capture: it has {', '.join(roles)}")
    s = data.stacks[role]
    layer = 0 if layer is None else check_range("layer", layer, s.layers, f"the {role} stack")
    head = 0 if head is None else check_range("head", head, s.heads, f"the {role} stack")
    count = int(s.queries.shape[2])
    chosen = check_filter(data, role, "all" if filter is None else filter)
    if query is None:
        query = default_query(data, role, None if chosen == "all" else chosen[0])
    query = check_range("query position", query, count, f"the {role} stack's query of {count_of(count, 'token')}")
    check_query_in_filter(data, role, chosen, query)
    return {"stack": role, "layer": layer, "head": head, "query": query, "filter": chosen}


def neuron_data(
    cap: Capture,
    *,
    stack: str | None = None,
    layer: int | None = None,
    head: int | None = None,
    query: int | None = None,
    filter: str | None = None,
) -> NeuronData:
    """The neuron view's data for every stack of ``cap`` that holds queries and keys, and the selection
    shown first (``filter``: a `SENTENCE_FILTERS` value, for a sentence pair).

    Raises `InputError` (before anything is drawn) when the capture lacks the fields the view needs,
    when its parts do not rebuild its attention, or when the selection is out of range.
    """
    if not isinstance(cap, Capture):
        raise InputError(f"expected a Capture, got {type(cap).__name__}")
    if stack is not None and stack not in cap.stacks:
        raise InputError(f"stack {stack!r} is not in this capture: it has {', '.join(cap.stacks) or 'none'}")
    if not cap.stacks:
        raise InputError("this capture holds no attention stacks: capture with fields='all'")
    main = stack or ("decoder" if cap.kind == "decoder" and "decoder" in cap.stacks else next(iter(cap.stacks)))
    lazy = {role: _lazy_stack_data(cap, role) for role in ROLES if role in cap.stacks}
    if lazy.get(main) is None:
        _check_fields(cap, main)
    stacks = {}
    for role, on_demand in lazy.items():
        if on_demand is not None:
            stacks[role] = on_demand
        elif all(getattr(cap.stacks[role], f) is not None for f in NEEDED):
            _check_rebuilds(cap, role)
            stacks[role] = _stack_data(cap, role)
    data = NeuronData(readable_model_name(cap.model), cap.kind, _sequences(cap), stacks, {})
    data.selection = choose(data, stack, layer, head, query, filter)
    return data
