"""The model view's zoom at long context: a request for one head's region, answered with exact weights.

The view's module sends ``{"type": ZOOM_MESSAGE, "id", "stack", "layer", "head", "rows": [start, stop],
"cols": [start, stop]}`` (layer and head: the model's numbers; rows and cols: query and key positions, stop
excluded). `answer_zoom` checks every field and answers with the same type and id:

- a region whose cells would be single tokens (at most ``cells`` positions each way): ``"kind": "tile"``,
  one buffer of float32 little-endian weights ``(len(rows), len(cols))`` row-major, exact
  (`LazyAttention.tile`);
- a larger one: ``"kind": "pooled"``, the region pooled over blocks of ``ceil(max(len(rows), len(cols)) /
  cells)`` positions, widened to whole cells (the reply's ``rows``, ``cols``, ``block`` and ``shape`` say
  which), two buffers of float32 ``(cells down, cells across)``: each cell's maximum and mean. A region
  that a kept level covers at most twice as coarsely is answered from that level at once; any other is
  pooled from the exact weights (`analysis.pooled_region.pool_region`);
- a bad request: ``{"type", "id", "error": message}`` naming the field and its allowed values, no buffers.

A zoom that computes at most `ONE_THREAD_WEIGHTS` weights runs on one torch thread: its operations are small,
and with several threads each waits for the others; on a machine whose cores other processes keep busy that
made zooms at 8,192 tokens 3-8× slower (bench/model_overview.py: a 1,024-token region 310 ms on two threads,
83 ms on one).
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from ..analysis.pooled_region import PooledRegion, exact_weights, pool_region, snap
from ..errors import AttnscopeError, InputError
from .overview_data import OverviewStack

ZOOM_MESSAGE = "attnscope-zoom"
"""The custom message type of a zoom request and of its reply."""
ONE_THREAD_WEIGHTS = 2**25
"""Zooms computing at most this many weights (query rows × keys: 4,096 rows at 8,192 keys) run on one thread."""

_log = logging.getLogger(__name__)


def _integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _span(name: str, value: Any, size: int, what: str) -> range:
    """``[start, stop]`` as a range of positions within ``0..size``, or `InputError` naming ``name``."""
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(_integer(v) for v in value)):
        raise InputError(f"{name} must be [start, stop], two integer {what} positions; got {value!r:.80}")
    start, stop = int(value[0]), int(value[1])
    if not 0 <= start < stop <= size:
        raise InputError(f"{name} {start}:{stop} is out of range: {what} positions are 0-{size - 1}, start < stop")
    return range(start, stop)


def _labelled(name: str, value: Any, labels: list[int], what: str) -> int:
    """The index of the model number ``value`` among ``labels``, or `InputError` naming what the view has."""
    if not _integer(value):
        raise InputError(f"{name} must be an integer, got {value!r:.80}")
    if int(value) not in labels:
        shown = f"{labels[0]}-{labels[-1]}" if labels == list(range(labels[0], labels[-1] + 1)) else str(labels)
        raise InputError(f"{name} {value} is not in this view: {what} has {name}s {shown}")
    return labels.index(int(value))


def parse_zoom(
    content: dict[str, Any], stacks: dict[str, OverviewStack]
) -> tuple[OverviewStack, int, int, range, range]:
    """The stack, layer and head indices and the rows and cols a zoom request names; `InputError` otherwise."""
    role = content.get("stack")
    if role not in stacks:
        raise InputError(f"stack must be one of {', '.join(map(repr, stacks))}; got {role!r:.80}")
    stack = stacks[role]
    what = f"the {role} attention"
    layer = _labelled("layer", content.get("layer"), stack.layers, what)
    head = _labelled("head", content.get("head"), stack.heads, what)
    _, _, queries, keys = stack.shape
    rows = _span("rows", content.get("rows"), queries, "query")
    cols = _span("cols", content.get("cols"), keys, "key")
    return stack, layer, head, rows, cols


def _from_level(
    stack: OverviewStack, layer: int, head: int, rows: range, cols: range, needed: int
) -> PooledRegion | None:
    """The region from a kept level whose block is between ``needed`` and twice it (the finest such), or None."""
    _, _, queries, keys = stack.shape
    fitting = [level for level in stack.levels if needed <= level.block <= 2 * needed]
    if not fitting:
        return None
    level = min(fitting, key=lambda lv: lv.block)
    b = level.block
    rows, cols = snap(rows.start, rows.stop, b, queries), snap(cols.start, cols.stop, b, keys)
    cell_rows = slice(rows.start // b, -(-rows.stop // b))
    cell_cols = slice(cols.start // b, -(-cols.stop // b))
    return PooledRegion(
        rows, cols, b, level.maximum[layer, head, cell_rows, cell_cols], level.mean[layer, head, cell_rows, cell_cols]
    )


def _little_endian(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype="<f4").tobytes()


def zoom_result(
    stack: OverviewStack, layer: int, head: int, rows: range, cols: range, cells: int
) -> tuple[dict[str, Any], list[bytes]]:
    """The reply's fields and buffers for a checked request (layer and head: indices among the kept ones)."""
    needed = -(-max(len(rows), len(cols)) // cells)
    with _threads(1 if len(rows) * stack.shape[3] <= ONE_THREAD_WEIGHTS else torch.get_num_threads()):
        return _computed(stack, layer, head, rows, cols, needed)


@contextmanager
def _threads(count: int) -> Iterator[None]:
    """Run the block on ``count`` torch threads, then restore the number there was."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _computed(
    stack: OverviewStack, layer: int, head: int, rows: range, cols: range, needed: int
) -> tuple[dict[str, Any], list[bytes]]:
    model_layer, model_head = stack.layers[layer], stack.heads[head]
    base = {"stack": stack.role, "layer": model_layer, "head": model_head}
    if needed == 1:
        weights = exact_weights(stack.attentions, model_layer, model_head, rows, cols)
        region = {"rows": [rows.start, rows.stop], "cols": [cols.start, cols.stop], "shape": list(weights.shape)}
        return {**base, "kind": "tile", "block": 1, **region}, [_little_endian(weights)]
    pooled = _from_level(stack, layer, head, rows, cols, needed)
    if pooled is None:
        pooled = pool_region(stack.attentions, model_layer, model_head, rows, cols, needed)
    region = {
        "rows": [pooled.rows.start, pooled.rows.stop],
        "cols": [pooled.cols.start, pooled.cols.stop],
        "shape": list(pooled.maximum.shape),
    }
    return {**base, "kind": "pooled", "block": pooled.block, **region}, [
        _little_endian(pooled.maximum),
        _little_endian(pooled.mean),
    ]


def answer_zoom(content: Any, stacks: dict[str, OverviewStack], cells: int) -> tuple[dict[str, Any], list[bytes]]:
    """The reply (content, buffers) to a zoom request's ``content``; a bad request gets ``{"error": ...}``."""
    ident = content.get("id") if isinstance(content, dict) else None
    ident = ident if _integer(ident) or isinstance(ident, str) else None
    reply = {"type": ZOOM_MESSAGE, "id": ident}
    try:
        if not isinstance(content, dict):
            raise InputError(f"a zoom request must be an object, got {type(content).__name__}")
        stack, layer, head, rows, cols = parse_zoom(content, stacks)
        fields, buffers = zoom_result(stack, layer, head, rows, cols, cells)
    except AttnscopeError as error:
        return {**reply, "error": str(error)}, []
    except Exception as error:  # never a silent hang in the page: say so there, log it here
        _log.exception("attnscope: a zoom request failed")
        return {**reply, "error": f"the zoom could not be computed ({type(error).__name__}: {error})"}, []
    return {**reply, **fields}, buffers
