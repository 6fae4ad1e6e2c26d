"""The head view's payload at long context: each query's k strongest keys per head, computed when a layer is asked for.

A capture with attention on demand (`LazyAttention`) at thousands of tokens has ``layers × heads × n²``
weights: 8,192 tokens on SmolLM2 (30 layers × 9 heads) are 72 GiB in float32, 18 GiB even as bytes. A
`TopKeysPayload` never materialises them: a layer's bytes are, per (head, query) row, the row's ``top_k``
strongest keys (`analysis.long.top_keys`, exact float32, computed one block of rows at a time) in the sparse
row layout every view already decodes (`Payload.layer_bytes`: uint32 row starts, key indices in ascending
order, one uint8 weight each), computed when the layer is first asked for and kept in a small cache
(`LAYER_CACHE` layers). Weights outside those k are not carried and not drawn; the header says so
(``lines``), with the stack's shape and the aggregations offered (only each head's lines: the mean of
heads, rollout and value norms need every weight of a layer).

A layer's top keys take one pass over its weights: tens of seconds at 8,192 tokens on two cores. So they are
taken from a `Summary` when one is given (`analysis.long.summarise`: every layer in the pass the model
view's overview makes); and for a notebook (`request`) a layer is computed on a worker thread, the layers
beside it computed ahead (`prefetch`), while the rows the view shows are answered at once (`rows_bytes`).

Exact weights: the bytes are ``round(w · 255)`` (within 1/510). A notebook view asks Python for the exact
float32 weights it shows (`exact_weights`, the widget's ``WEIGHTS_MESSAGE``); a standalone page has no
kernel to ask, so each layer's bytes there are followed by the carried weights in float32 when the whole
page stays within `HTML_EXACT_BUDGET` (an estimate from the shapes, before any layer is computed);
otherwise the page shows the bytes and says their precision.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from ..analysis.long import Summary, as_lazy, top_keys
from ..capture.blocks import weight_blocks
from ..capture.lazy import LazyAttention
from ..capture.loading import readable_model_name
from ..capture.result import Capture
from ..errors import InputError, check_range, count
from ..quantise import quantise
from .aggregated import CARRIED
from .capture_stacks import capture_stacks
from .compression import to_base64
from .payload import Payload, _check_selection, _combined, _kept, payload_from_capture

DEFAULT_TOP_K = 8
"""Keys kept per (head, query) row when ``top_k`` is not given."""
LONG_PAYLOAD_BYTES = 256 * 2**20
"""``top_k=None`` (auto): a stack computed on demand whose float32 weights would take more than this (or more
than its ``max_dense_bytes``) gets a `TopKeysPayload`; a smaller one is materialised into today's dense payload."""
LAYER_CACHE = 8
"""Layers of bytes a `TopKeysPayload` keeps once computed (most recently asked last)."""
HTML_EXACT_BUDGET = 100 * 10**6
"""Bytes of base64 layer text a standalone page may carry: within it the layers carry exact float32 weights too."""
MAX_CELLS = 4096
"""The most weights one exact-weights request may ask for."""
MAX_ROWS = 1024
"""The most query rows one rows request may ask for."""
SMALL_WORK = 2**24
"""Weights (heads × rows × keys) an exact-weights request computes on one thread, at most."""
NOT_OFFERED = {
    "mean": "the mean of heads needs every weight of each head, and only each query's strongest keys are carried",
    "rollout": "rollout multiplies whole layers; ask analysis.long.rollout_rows for chosen query rows",
    "value_norm": "value norms need every weight of a layer",
    "value_norm_sum": "value norms need every weight of a layer",
}
"""What a long-context head view does not offer, and why (the header's ``lines.not_offered``)."""


@dataclass
class KeptStack:
    """One stack as a long payload shows it: its weights (a `LazyAttention` or a dense float array, (layers,
    heads, query, key)) and the model's layers and heads kept; ``shape`` is what the payload carries."""

    attentions: Any
    layers: list[int]
    heads: list[int]

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.layers), len(self.heads), int(self.attentions.shape[2]), int(self.attentions.shape[3]))


@dataclass
class TopKeysPayload(Payload):
    """A `Payload` whose stacks are `KeptStack`s and whose layers are each query's ``top_k`` strongest keys.

    ``exact_in_html``: the standalone page's layers carry the exact float32 weights after the bytes
    (`HTML_EXACT_BUDGET`). Everything else is as `Payload` (``sparse`` is always True).
    """

    top_k: int = DEFAULT_TOP_K
    exact_in_html: bool = False
    known: dict[tuple[str, int], Any] = field(default_factory=dict, repr=False)
    """Top keys already computed, by (role, kept layer index): a `Summary`'s (`top_keys_payload`'s ``summary``)."""
    _cache: OrderedDict[tuple[str, int], tuple[bytes, np.ndarray]] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _pending: dict[tuple[str, int], Future[tuple[bytes, np.ndarray]]] = field(default_factory=dict, repr=False)
    _worker: ThreadPoolExecutor | None = field(default=None, repr=False)
    _requested: set[tuple[str, int]] = field(default_factory=set, repr=False)
    _hover: dict[int, LazyAttention] = field(default_factory=dict, repr=False)

    def kept(self, role: str) -> KeptStack:
        return self.stacks[role]  # type: ignore[return-value]  # KeptStack has the array's shape

    def encoding(self) -> dict[str, Any]:
        return {
            **super().encoding(),
            "layout": "rows (heads, query): uint32 row starts [heads*query+1], key indices (ascending), uint8 "
            "weights; each row's top_k strongest keys; in a standalone page within its budget, then the same "
            "weights in float32",
            "top_k": self.top_k,
            "exact": "float32" if self.exact_in_html else None,
        }

    def header(self) -> dict[str, Any]:
        """`Payload.header`, with only each head's lines offered and ``lines`` saying what is drawn."""
        header = super().header()
        for stack in header["stacks"]:
            stack["aggregation_methods"] = [m for m in stack["aggregation_methods"] if m["name"] == "raw"]
        header["lines"] = {
            "kind": "top_keys",
            "k": self.top_k,
            "text": f"each query's {count(self.top_k, 'strongest key')} per head",
            "not_drawn": f"weights outside each query's {self.top_k} strongest keys are not carried and not drawn",
            "model_shape": {role: list(self.kept(role).attentions.shape) for role in self.stacks},
            "not_offered": NOT_OFFERED,
            "exact": {"on_request": True, "in_html": self.exact_in_html, "html_bytes": self.html_bytes()},
        }
        return header

    def html_bytes(self) -> int:
        """Base64 bytes of every layer in a standalone page, from the shapes: the most a page carries (rows
        that see fewer than ``top_k`` keys carry fewer), with the exact float32 weights when they fit."""
        total = 0
        for role in self.stacks:
            layers, heads, query, _ = self.kept(role).shape
            rows, entries = heads * query, heads * query * self.top_k
            weights = 5 if self.exact_in_html else 1
            one = 4 * (rows + 1) + entries * ((2 if self._narrow() else 4) + weights)
            total += layers * 4 * ((one + 2) // 3)
        return total

    def layer_bytes(self, key: str, layer: int) -> bytes:
        """One layer of ``key`` (a role) as sparse rows of its top keys (`Payload.layer_bytes`' layout)."""
        return self._layer(key, layer)[0]

    def _layer(self, key: str, layer: int) -> tuple[bytes, np.ndarray]:
        """The layer's sparse bytes and its carried weights in float32: cached (`LAYER_CACHE` layers), being
        computed by `prefetch` (then waited for), or computed now."""
        with self._lock:
            if (key, layer) in self._cache:
                self._cache.move_to_end((key, layer))
                return self._cache[(key, layer)]
            pending = self._pending.get((key, layer))
        return pending.result() if pending is not None else self._compute(key, layer)

    def _compute(self, key: str, layer: int) -> tuple[bytes, np.ndarray]:
        stack = self.kept(key)
        found = self.known.get((key, layer))
        if found is None:
            found = top_keys(stack.attentions, stack.layers[layer], min(self.top_k, stack.shape[3]), heads=stack.heads)
        made = sparse_rows(found.indices, found.weights, self._narrow())
        with self._lock:
            self._cache[(key, layer)] = made
            self._cache.move_to_end((key, layer))
            while len(self._cache) > LAYER_CACHE:
                self._cache.popitem(last=False)
            self._pending.pop((key, layer), None)
            self._requested.discard((key, layer))
        return made

    def request(self, key: str, layer: int, done: Callable[[bytes | None, str], None]) -> None:
        """Call ``done(bytes, "")`` with the layer's bytes: now when cached, else once the worker thread has
        computed it, ahead of layers only computed ahead (`prefetch`: those not started are dropped); or
        ``done(None, why)`` when it could not be computed."""
        with self._lock:
            if (key, layer) in self._cache:
                self._cache.move_to_end((key, layer))
                ready: tuple[bytes, np.ndarray] | None = self._cache[(key, layer)]
            else:
                ready = None
                for other, future in list(self._pending.items()):
                    if other != (key, layer) and other not in self._requested and future.cancel():  # not started
                        del self._pending[other]
                self._requested.add((key, layer))
                if (key, layer) not in self._pending:
                    self._worker = self._worker or ThreadPoolExecutor(1, thread_name_prefix="attnscope-top-keys")
                    self._pending[(key, layer)] = self._worker.submit(self._compute, key, layer)
                pending = self._pending[(key, layer)]
        if ready is not None:
            done(ready[0], "")
            return

        def finish(future: Future[tuple[bytes, np.ndarray]]) -> None:
            try:
                data = future.result()[0]
            except Exception as error:  # noqa: BLE001 - told to the view that asked, not raised in a worker thread
                done(None, str(error) or type(error).__name__)
                return
            done(data, "")

        pending.add_done_callback(finish)

    def settle(self) -> None:
        """Wait until the worker thread has done everything queued so far, callbacks included (one worker: a
        no-op queued now runs after them)."""
        with self._lock:
            worker = self._worker
        if worker is not None:
            worker.submit(lambda: None).result()

    def rows_bytes(self, role: Any, layer: Any, start: Any, stop: Any) -> bytes:
        """Rows ``start:stop`` of kept layer ``layer`` of ``role``, every kept head, as sparse rows (`sparse_rows`,
        ``heads × (stop - start)`` rows): a band computed in milliseconds while the whole layer is on its way.
        `InputError` for a role, layer or rows out of range, or more than `MAX_ROWS` rows."""
        if not isinstance(role, str) or role not in self.stacks:
            raise InputError(f"role must be one of {', '.join(self.stacks)}, got {role!r:.40}")
        stack = self.kept(role)
        layers, _, queries, keys = stack.shape
        layer = check_range("layer", layer, layers, f"the {role} stack of this view")
        start = check_range("start", start, queries, f"the {role} stack of this view", unit="query position")
        if isinstance(stop, bool) or not isinstance(stop, int) or not start < stop <= min(queries, start + MAX_ROWS):
            raise InputError(
                f"stop must be an integer from {start + 1} to {min(queries, start + MAX_ROWS)} (at most {MAX_ROWS} "
                f"rows after start {start}), got {stop!r:.40}"
            )
        found = self.known.get((role, layer))
        if found is not None:
            indices, weights = found.indices[:, start:stop], found.weights[:, start:stop]
        else:
            with _threads(1 if len(stack.heads) * (stop - start) * keys <= SMALL_WORK else None):
                k = min(self.top_k, keys)
                found = top_keys(stack.attentions, stack.layers[layer], k, heads=stack.heads, rows=range(start, stop))
            indices, weights = found.indices, found.weights
        return sparse_rows(indices, weights, self._narrow())[0]

    def prefetch(self, key: str, layers: Sequence[int]) -> list[Future[tuple[bytes, np.ndarray]]]:
        """Compute ``layers`` of ``key`` (those in range, not cached nor on their way) one after another on a
        worker thread, so that a view stepping through layers finds the next one ready; returns their futures."""
        futures = []
        with self._lock:
            for layer in layers:
                if (
                    not 0 <= layer < self.kept(key).shape[0]
                    or (key, layer) in self._cache
                    or (key, layer) in self._pending
                ):
                    continue
                self._worker = self._worker or ThreadPoolExecutor(1, thread_name_prefix="attnscope-top-keys")
                self._pending[(key, layer)] = self._worker.submit(self._compute, key, layer)
                futures.append(self._pending[(key, layer)])
        return futures

    def layers_base64(self, compression: str | None = None) -> dict[str, list[str]]:
        """Every layer as base64 (a standalone page), each followed by its float32 weights when `exact_in_html`,
        deflated first when ``compression`` says so (`compression.to_base64`)."""
        out: dict[str, list[str]] = {}
        for key in self.stacks:
            out[key] = []
            for i in range(self.kept(key).shape[0]):
                data, exact = self._layer(key, i)
                raw = data + exact.astype("<f4").tobytes() if self.exact_in_html else data
                out[key].append(to_base64(raw, compression))
        return out

    def decoded(self, key: str) -> np.ndarray:
        raise InputError(
            "a long-context payload carries each query's strongest keys, not every weight: decode its layers"
        )

    def nbytes(self) -> int:
        """Bytes of every layer as sent to a notebook (computing the layers not yet computed)."""
        return sum(len(self.layer_bytes(role, i)) for role in self.stacks for i in range(self.kept(role).shape[0]))

    def exact_weights(self, role: Any, layer: Any, cells: Any) -> list[float]:
        """The exact float32 weights of ``cells``, [[head, query, key], ...] in this payload's indices (head: its
        position among the kept heads), of layer ``layer`` (its position among the kept layers) of ``role``.

        Each asked row is computed over every key it sees, as the lines' weights are (`_cells`). Raises
        `InputError` naming what is wrong (an unknown role, a layer, head or position out of range, too many cells).
        """
        if not isinstance(role, str) or role not in self.stacks:
            raise InputError(f"role must be one of {', '.join(self.stacks)}, got {role!r:.40}")
        stack = self.kept(role)
        layers, heads, queries, keys = stack.shape
        layer = check_range("layer", layer, layers, f"the {role} stack of this view")
        if not isinstance(cells, list) or not 0 < len(cells) <= MAX_CELLS:
            raise InputError(f"cells must be a list of 1 to {MAX_CELLS} [head, query, key] triples, got {cells!r:.60}")
        parsed = np.empty((len(cells), 3), dtype=np.int64)
        for n, cell in enumerate(cells):
            if not isinstance(cell, list) or len(cell) != 3:
                raise InputError(f"cells.{n} must be a [head, query, key] triple, got {cell!r:.40}")
            for j, (name, size) in enumerate((("head", heads), ("query position", queries), ("key position", keys))):
                parsed[n, j] = check_range(f"cells.{n} {name}", cell[j], size, f"the {role} stack of this view")
        return [float(w) for w in self._cells(stack, layer, parsed)]

    def _cells(self, stack: KeptStack, layer: int, cells: np.ndarray) -> np.ndarray:
        """float32 weights of ``cells`` (n, 3): [head, query, key] in this payload's indices, of kept layer
        ``layer``: the rows asked for, block by block over the keys they see (`capture.blocks.weight_blocks`)."""
        lazy, model_layer = self._hover_layer(stack, stack.layers[layer])
        heads, slot = np.unique(cells[:, 0], return_inverse=True)
        rows, at = np.unique(cells[:, 1], return_inverse=True)
        keys, out = cells[:, 2], np.zeros(len(cells), dtype=np.float32)
        with _threads(1 if len(heads) * len(rows) * stack.shape[3] <= SMALL_WORK else None):
            for block in weight_blocks(lazy, model_layer, [stack.heads[h] for h in heads], rows):
                weights = block.weights.numpy()
                stop = block.first + len(block.positions)
                for local, chosen in enumerate(block.slots):
                    mine = np.flatnonzero((slot == chosen) & (at >= block.first) & (at < stop))
                    inside = mine[(keys[mine] >= block.key_start) & (keys[mine] < block.key_stop)]
                    out[inside] = weights[local, at[inside] - block.first, keys[inside] - block.key_start]
        return out

    def _hover_layer(self, stack: KeptStack, model_layer: int) -> tuple[LazyAttention, int]:
        """The stack's weights to compute a few rows of ``model_layer`` from, and that layer's index in them: for
        a stack on demand, that layer alone with its keys contiguous (a few rows' matmul over keys strided in
        memory is many times slower), kept for the last `LAYER_CACHE` layers asked."""
        attentions = stack.attentions
        if not isinstance(attentions, LazyAttention):
            return as_lazy(attentions), model_layer
        if model_layer not in self._hover:
            part = attentions.layers[model_layer]
            keys = None if part.keys is None else np.ascontiguousarray(part.keys)
            one = replace(part, keys=keys)  # every term (mask structure, bias...) as it is
            _, heads, queries, width = attentions.shape
            self._hover[model_layer] = LazyAttention(
                [one], heads, queries, width, attentions.kv_head_of, block_bytes=attentions.block_bytes
            )
            while len(self._hover) > LAYER_CACHE:
                self._hover.pop(next(iter(self._hover)))
        return self._hover[model_layer], 0


@contextmanager
def _threads(count: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``count`` inside the block (None: left as they are), restored after. A
    hover's few rows are microseconds of work, which waking a thread pool can cost 100 times over on a busy
    machine (measured here: 110 ms with 2 threads, 1 ms with 1, for 9 heads × 8 rows × 1,024 keys)."""
    before = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if count is not None:
            torch.set_num_threads(before)


def sparse_rows(indices: np.ndarray, weights: np.ndarray, narrow: bool) -> tuple[bytes, np.ndarray]:
    """Top keys ``indices`` (heads, query, k) int (-1: none) with their float32 ``weights`` as sparse rows: uint32
    row starts (heads·query + 1), key indices in ascending order per row (uint16 when ``narrow``, else uint32),
    then ``round(w · 255)`` per entry; and the carried float32 weights in that order."""
    k = indices.shape[-1]
    idx, w = indices.reshape(-1, k), weights.reshape(-1, k).astype(np.float32, copy=False)
    order = np.argsort(np.where(idx < 0, np.iinfo(np.int64).max, idx), axis=1, kind="stable")
    idx, w = np.take_along_axis(idx, order, 1), np.take_along_axis(w, order, 1)
    valid = idx >= 0
    starts = np.zeros(idx.shape[0] + 1, dtype="<u4")
    np.cumsum(valid.sum(axis=1), out=starts[1:])
    carried = w[valid]
    data = starts.tobytes() + idx[valid].astype("<u2" if narrow else "<u4").tobytes() + quantise(carried).tobytes()
    return data, carried


def wants_top_keys(stacks: dict[str, Any], top_k: Any) -> bool:
    """Whether a capture's stacks get a `TopKeysPayload`: ``top_k`` given (a positive integer), or ``top_k``
    None and some stack computed on demand too large for a dense payload (`LONG_PAYLOAD_BYTES`)."""
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise InputError(f"top_k must be a positive integer (keys kept per query and head) or None, got {top_k!r}")
        return True
    return any(
        isinstance(a, LazyAttention) and a.nbytes > min(LONG_PAYLOAD_BYTES, a.max_dense_bytes) for a in stacks.values()
    )


def _check_options(options: dict[str, Any]) -> None:
    """Refuse the options a long-context payload cannot honour, saying why."""
    threshold = options.get("threshold", 0.0)
    if not (isinstance(threshold, (int, float)) and not isinstance(threshold, bool) and 0 <= threshold < 1):
        raise InputError(f"threshold must be a number in [0, 1), got {threshold!r}")
    if options.get("sparse", None) is False:
        raise InputError(
            "a dense encoding needs every weight, and at long context each query's strongest keys are carried "
            "instead: leave encoding as 'auto' (or 'sparse')"
        )
    aggregation = options.get("aggregation", "raw")
    if aggregation != "raw":
        why = NOT_OFFERED.get(aggregation, f"choose from {', '.join(['raw', *CARRIED])}")
        raise InputError(f"aggregation {aggregation!r} is not offered at long context: {why}")
    wanted = options.get("aggregations", "auto")
    if wanted != "auto":
        names = [wanted] if isinstance(wanted, str) else list(wanted)
        if names:
            raise InputError(
                f"aggregations {names[0]!r} is not offered at long context: {NOT_OFFERED.get(names[0], '')}"
            )


def top_keys_payload(
    stacks: dict[str, Any],
    base: dict[str, Any],
    *,
    top_k: int | None = None,
    layer: int | None = None,
    heads: Sequence[int] | None = None,
    stack: str | None = None,
    include_layers: Sequence[int] | None = None,
    include_heads: Sequence[int] | None = None,
    combine_heads: Sequence[int] | None = None,
    threshold: float | None = None,
    summary: Summary | None = None,
    **options: Any,
) -> TopKeysPayload:
    """A `TopKeysPayload` of ``stacks`` (role -> `LazyAttention` or dense (layers, heads, query, key) array).

    ``base`` holds `Payload`'s sequences, stack_tokens, causal, model and kind. Options as `build_payload`'s,
    plus ``top_k`` (keys per row, default `DEFAULT_TOP_K`, or the ``summary``'s); ``threshold`` (default 0: every
    carried key whose byte is not 0 is drawn) hides carried lines at or below it; ``summary``: what
    `analysis.long.summarise` computed for one of the stacks, whose top keys are used as they are for the layers
    it covers (same heads and k) instead of computed again. Refused with `InputError`: a dense encoding,
    aggregations other than each head's lines (`NOT_OFFERED`), a summary of no stack here. Nothing is computed.
    """
    threshold = 0.0 if threshold is None else threshold
    _check_options({**options, "threshold": threshold})
    labels, head_labels, combined, kept = {}, {}, {}, {}
    for role, weights in stacks.items():
        labels[role] = _kept("layer", include_layers, weights.shape[0], role)
        head_labels[role] = _kept("head", include_heads, weights.shape[1], role)
        combined[role] = _combined(combine_heads, head_labels[role], include_heads is not None, role)
        kept[role] = KeptStack(weights, labels[role], head_labels[role])
    payload = TopKeysPayload(
        base["sequences"],
        kept,  # type: ignore[arg-type]  # KeptStack has the array's shape, which is all Payload reads of it
        base["stack_tokens"],
        base["causal"],
        labels,
        base.get("model"),
        base.get("kind"),
        float(threshold),
        sparse=True,
        head_labels=head_labels,
        combined_heads=combined,
        top_k=int(top_k or _k_of(summary) or DEFAULT_TOP_K),
    )
    payload.known = _known(summary, stacks, labels, head_labels, payload)
    payload.exact_in_html = True
    payload.exact_in_html = payload.html_bytes() <= HTML_EXACT_BUDGET
    _check_selection(payload, stack, layer, heads, (include_layers is not None, include_heads is not None))
    payload.selection["aggregation"] = "raw"
    return payload


def _k_of(summary: Any) -> int | None:
    """The number of keys per row a ``summary``'s top keys hold (None without them)."""
    return int(summary.top[0].indices.shape[-1]) if isinstance(summary, Summary) and summary.top else None


def _known(
    summary: Any, stacks: dict[str, Any], labels: dict[str, list[int]], heads: dict[str, list[int]], payload: Any
) -> dict[tuple[str, int], Any]:
    """The top keys a ``summary`` holds for this payload, by (role, kept layer index): those of its layers that
    are kept, of the kept heads, with ``payload.top_k`` keys. `InputError` when it summarises no stack here."""
    if summary is None:
        return {}
    if not isinstance(summary, Summary):
        raise InputError(
            f"summary must be what attnscope.analysis.long.summarise returns, got {type(summary).__name__}"
        )
    shape = tuple(summary.overview.shape)
    roles = [role for role, weights in stacks.items() if tuple(weights.shape) == shape]
    if not roles:
        have = ", ".join(f"{role} {tuple(w.shape)}" for role, w in stacks.items())
        raise InputError(f"summary is of a stack of shape {shape}, and this capture's stacks are {have}")
    role = roles[0]
    return {
        (role, labels[role].index(top.layer)): top
        for top in summary.top
        if top.layer in labels[role] and list(top.heads) == heads[role] and top.indices.shape[-1] == payload.top_k
    }


def capture_payload(cap: Capture, **options: Any) -> Payload:
    """The head view's payload of a capture: a `TopKeysPayload` when `wants_top_keys` (``top_k`` given, or stacks on
    demand past `LONG_PAYLOAD_BYTES`), else `payload_from_capture`'s dense or threshold payload, as before."""
    top_k = options.pop("top_k", None)
    parts = capture_stacks(cap)
    if options.get("summary") is None and not wants_top_keys(parts.stacks, top_k):
        options.pop("summary", None)
        return payload_from_capture(cap, **options)
    base = dict(sequences=parts.sequences, stack_tokens=parts.stack_tokens, causal=parts.causal, kind=cap.kind)
    return top_keys_payload(parts.stacks, {**base, "model": readable_model_name(cap.model)}, top_k=top_k, **options)
