// @ts-check
/**
 * Exact weights for the head view at long context (a payload of each query's strongest keys, header "lines"):
 * the tooltip of a hovered token shows the model's float32 weights, not the bytes its lines are drawn from.
 * In a notebook they are asked of Python with a custom message (views/long_requests.py): `{ type: WEIGHTS_MESSAGE, id,
 * role, layer, cells: [[head, query, key], ...] }`, answered with `weights` (or an `error`); in a standalone
 * page they are read from the layer's bytes when the page carries them (encoding "exact": float32 after the
 * bytes). Where neither can be had, the tooltip says the shown weights are bytes, within 1/510 of the model's.
 * Imported by head_view.js (the store) and head_view_dom.js (the tooltip).
 */

import { SCALE } from "./common.js";
import { sparseRows } from "./attention_data.js";
import { layerIndex, stackOf } from "./head_view_data.js";
/** @import { HeadView } from "./head_view_data.js" */

export const WEIGHTS_MESSAGE = "attnscope-weights";
const KEPT = 20000; // weights remembered before the store starts again

/**
 * Weights asked of Python and their answers. `get` is the answer for a cell (undefined until it arrives),
 * `ask` sends the cells not yet answered nor on their way (nothing without a kernel: `canAsk` false), `error`
 * is the last error Python answered with ("" for none).
 * @typedef {{ canAsk: boolean, error: string, get: (role: string, layer: number, cell: number[]) => number | undefined,
 *   pending: (role: string, layer: number, cell: number[]) => boolean,
 *   ask: (role: string, layer: number, cells: number[][]) => void, dispose: () => void }} ExactStore
 */

/** @param {string} role @param {number} layer @param {number[]} cell */
const cellKey = (role, layer, cell) => `${role}:${layer}:${cell.join(",")}`;

/** A store of exact weights answered by Python; `onArrive` runs after each answer. @param {any} model @param {() => void} onArrive @returns {ExactStore} */
export function exactStore(model, onArrive) {
  /** @type {Map<string, number>} */ const values = new Map();
  /** @type {Map<number, string[]>} */ const asked = new Map();
  const waiting = new Set();
  let next = 1;
  /** @param {any} msg */
  const receive = (msg) => {
    if (!msg || msg.type !== WEIGHTS_MESSAGE || !asked.has(msg.id)) return;
    const keys = /** @type {string[]} */ (asked.get(msg.id));
    asked.delete(msg.id);
    for (const key of keys) waiting.delete(key);
    store.error = typeof msg.error === "string" ? msg.error : "";
    if (Array.isArray(msg.weights)) keys.forEach((key, n) => values.set(key, Number(msg.weights[n])));
    onArrive();
  };
  /** @type {ExactStore} */
  const store = {
    canAsk: typeof model.send === "function",
    error: "",
    get: (role, layer, cell) => values.get(cellKey(role, layer, cell)),
    pending: (role, layer, cell) => waiting.has(cellKey(role, layer, cell)),
    ask(role, layer, cells) {
      const wanted = cells.filter((c) => !values.has(cellKey(role, layer, c)) && !waiting.has(cellKey(role, layer, c)));
      if (!store.canAsk || wanted.length === 0) return;
      if (values.size > KEPT) values.clear();
      const keys = wanted.map((c) => cellKey(role, layer, c));
      for (const key of keys) waiting.add(key);
      asked.set(next, keys);
      model.send({ type: WEIGHTS_MESSAGE, id: next++, role, layer, cells: wanted });
    },
    dispose() { if (typeof model.off === "function") model.off("msg:custom", receive); },
  };
  model.on("msg:custom", receive);
  return store;
}

/** @type {WeakMap<Uint8Array, ((h: number, a: number, b: number) => number | undefined) | null>} */
const carried = new WeakMap();

/**
 * The exact float32 weights a standalone page's layer carries after its bytes (encoding "exact"), as a lookup
 * by (head, query, key), or null when the layer carries none. @param {Uint8Array} bytes @param {any} encoding
 * @param {{ heads: number, query: number }} shape
 */
export function carriedExact(bytes, encoding, shape) {
  if (carried.has(bytes)) return carried.get(bytes) ?? null;
  const rows = shape.heads * shape.query;
  const { starts, keys } = sparseRows(bytes, rows, encoding.index_bytes);
  const count = starts[rows], at = 4 * (rows + 1) + (encoding.index_bytes + 1) * count;
  /** @type {((h: number, a: number, b: number) => number | undefined) | null} */
  let lookup = null;
  if (encoding.exact === "float32" && bytes.length === at + 4 * count) {
    const view = new DataView(bytes.buffer, bytes.byteOffset + at, 4 * count);
    lookup = (h, a, b) => {
      const row = h * shape.query + a;
      for (let n = starts[row]; n < starts[row + 1]; n++) if (keys[n] === b) return view.getFloat32(4 * n, true);
      return undefined;
    };
  }
  carried.set(bytes, lookup);
  return lookup;
}

/**
 * The exact weights of `cells` ([head in the layer data, query, key] of the current layer), undefined where
 * not known yet (then asked of Python, when there is one); all undefined for views that carry every weight.
 * @param {HeadView} v @param {number[][]} cells @returns {(number | undefined)[]}
 */
export function exactWeights(v, cells) {
  if (v.header.lines?.kind !== "top_keys") return cells.map(() => undefined);
  const role = v.state.stack, layer = layerIndex(v), s = stackOf(v);
  const bytes = v.store.get(role, layer);
  const fromPage = bytes ? carriedExact(bytes, v.header.encoding, s) : null;
  const out = cells.map((c) => fromPage?.(c[0], c[1], c[2]) ?? v.exact.get(role, layer, c));
  v.exact.ask(role, layer, cells.filter((_, n) => out[n] === undefined));
  return out;
}

/** A weight with the digits float32 holds (7 significant), without trailing zeros. @param {number} w */
export function formatExact(w) {
  return String(Number(w.toPrecision(7)));
}

/**
 * The tooltip's last line at long context: what its weights are (exact, on their way, or bytes and their
 * precision), or "" for views that carry every weight. @param {HeadView} v @param {boolean} allExact
 */
export function exactNote(v, allExact) {
  if (v.header.lines?.kind !== "top_keys") return "";
  if (v.exact.error) return `exact weights could not be had: ${v.exact.error}`;
  if (allExact) return v.exact.canAsk ? "exact float32 weights, from Python" : "exact float32 weights, carried in this page";
  if (v.exact.canAsk) return "asking Python for the exact weights…";
  return `≈ weights carried as bytes, within ±${(0.5 / SCALE).toFixed(5)} of the model's (exact in a notebook)`;
}
