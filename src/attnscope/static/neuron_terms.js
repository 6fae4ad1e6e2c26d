// @ts-check
/**
 * The numbers the neuron view draws, with no DOM: one layer's blob decoded, the terms of one attention
 * row (recomputed from float32 q and k exactly as attnscope.analysis.neuron does), and the rows a
 * sentence filter keeps. Imported by neuron_view.js.
 */

/**
 * @typedef {{ queries: Float32Array, keys: Float32Array, bias: Float32Array | null, allowed: Uint8Array | null }} Layer
 * @typedef {{ q: Float32Array, k: (j: number, t: number) => number, products: Float64Array,
 *   dots: Float64Array, scaled: Float64Array, capped: Float64Array, bias: Float64Array | null,
 *   allowed: boolean[], scores: Float64Array, softmax: Float64Array, sink: number | null,
 *   sinkShare: number | null }} Terms
 */

/** float32 little-endian values from `bytes` at `offset`. @param {Uint8Array} bytes @param {number} offset @param {number} count */
function readFloat32(bytes, offset, count) {
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, count * 4);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** One layer's blob split into its sections (see the header's layout). @param {Uint8Array} bytes @param {any} stack @returns {Layer} */
export function decodeNeuronLayer(bytes, stack) {
  const part = Object.fromEntries(stack.layout.map((/** @type {any} */ p) => [p.name, p]));
  const floats = (/** @type {string} */ name) =>
    part[name] ? readFloat32(bytes, part[name].offset, part[name].bytes / 4) : null;
  const allowed = part.allowed ? bytes.subarray(part.allowed.offset, part.allowed.offset + part.allowed.bytes) : null;
  return { queries: /** @type {Float32Array} */ (floats("queries")), keys: /** @type {Float32Array} */ (floats("keys")),
    bias: floats("bias"), allowed };
}

/**
 * Whether query `query` sees key `j` in `layer`: the layer's mask bytes, or (a capture on demand, whose header
 * gives each layer's mask structure) causal, sliding window and padded keys as Python's `MaskStructure`.
 * @param {any} s the stack's header @param {Layer} d @param {number} layer @param {number} query
 * @returns {(j: number) => boolean}
 */
function seenBy(s, d, layer, query) {
  const nk = s.key;
  if (d.allowed) { const mask = d.allowed; return (j) => mask[query * nk + j] === 1; }
  const m = s.mask?.[layer] ?? { causal: false, window: null, key_valid: null };
  return (j) => (!m.causal || (j <= query && (m.window === null || query - j < m.window))) && (!m.key_valid || m.key_valid[j] === 1);
}

/**
 * The terms of attention row (layer, head, query): the softmax of
 * softcap(scaling · q·k) + bias over the allowed keys (and the sink), all in float64.
 * @param {any} s the stack's header @param {Layer} d @param {number} layer @param {number} head @param {number} query
 * @returns {Terms}
 */
export function neuronTerms(s, d, layer, head, query) {
  const dim = s.head_dim, nk = s.key, nq = s.query;
  const q = d.queries.subarray((head * nq + query) * dim, (head * nq + query + 1) * dim);
  const base = s.kv_head_of[head] * nk * dim;
  const k = (/** @type {number} */ j, /** @type {number} */ t) => d.keys[base + j * dim + t];
  const products = new Float64Array(nk * dim), dots = new Float64Array(nk);
  const scaled = new Float64Array(nk), capped = new Float64Array(nk), scores = new Float64Array(nk);
  const bias = d.bias ? new Float64Array(nk) : null;
  const cap = s.softcap[layer], scale = s.scaling[layer];
  const sink = s.sinks ? s.sinks[layer][head] : null;
  /** @type {boolean[]} */ const allowed = [];
  const seen = seenBy(s, d, layer, query);
  let top = sink ?? -Infinity;
  for (let j = 0; j < nk; j++) {
    let sum = 0;
    for (let t = 0; t < dim; t++) sum += (products[j * dim + t] = q[t] * k(j, t));
    dots[j] = sum;
    scaled[j] = sum * scale;
    capped[j] = cap ? Math.tanh(scaled[j] / cap) * cap : scaled[j];
    if (bias && d.bias) bias[j] = d.bias[(head * nq + query) * nk + j];
    allowed.push(seen(j));
    scores[j] = allowed[j] ? capped[j] + (bias ? bias[j] : 0) : -Infinity;
    if (scores[j] > top) top = scores[j];
  }
  const softmax = new Float64Array(nk);
  let total = sink === null || top === -Infinity ? 0 : Math.exp(sink - top);
  const sinkPart = total;
  if (top !== -Infinity) for (let j = 0; j < nk; j++) total += (softmax[j] = Math.exp(scores[j] - top));
  if (total > 0) for (let j = 0; j < nk; j++) softmax[j] /= total;
  return { q, k, products, dots, scaled, capped, bias, allowed, scores, softmax, sink,
    sinkShare: sink === null ? null : (total > 0 ? sinkPart / total : 0) };
}

/**
 * Where sentence B starts when the stack's queries and keys are one sentence pair, else null (a single
 * text has no B; cross attention reads two sequences). Python's `NeuronData.pair_start`.
 * @param {any} header @param {any} s the stack's header @returns {number | null}
 */
export function pairStartOf(header, s) {
  if (s.query_tokens !== s.key_tokens) return null;
  const b = header.sequences[s.query_tokens].sentence_b_start ?? null;
  return b !== null && b > 0 && b < s.query ? b : null;
}

/**
 * The query and key positions a sentence filter shows: FILTERS' value names the queries' sentence,
 * then the keys' ("AB": A's queries, B's keys); "all", or a stack without a pair, shows every position.
 * @param {any} s the stack's header @param {number | null} b `pairStartOf` @param {string} filter
 * @returns {{ queries: number[], keys: number[] }}
 */
export function filterRows(s, b, filter) {
  const kept = (/** @type {number} */ count, /** @type {string} */ sentence) =>
    Array.from({ length: count }, (_, i) => i)
      .filter((i) => filter === "all" || b === null || (i >= b ? "B" : "A") === sentence);
  return { queries: kept(s.query, filter[0]), keys: kept(s.key, filter[1]) };
}

/**
 * The query shown first among `positions` (Python's `default_query`): the last of a causal or cross
 * stack (it sees the most keys), else the first ordinary (non-special) token, else the first.
 * @param {any} s the stack's header @param {any} seq its query sequence @param {number[]} positions
 */
export function startQuery(s, seq, positions) {
  if (s.causal || s.role === "cross") return positions[positions.length - 1];
  return positions.find((i) => !seq.special[i]) ?? positions[0];
}

/**
 * What the shown keys hold of the row's softmax, which is over every key the mask lets through
 * (never renormalised over the shown ones): their sum, and how many keys the row is over.
 * @param {Terms} t @param {number[]} keys @returns {{ share: number, over: number, masked: boolean }}
 */
export function shownShare(t, keys) {
  let share = 0;
  for (const j of keys) if (t.allowed[j]) share += t.softmax[j];
  const over = t.allowed.filter(Boolean).length;
  return { share, over, masked: over < t.allowed.length };
}

export const LONG_ROWS = 256; // a stack with more queries or keys than this shows a window of them (long context)
export const SHOWN_KEYS = 32; // keys shown at long context: the row's strongest
export const SHOWN_QUERIES = 32; // query tokens listed at long context: a window around the chosen one

/** Whether a stack is too long to list every query and key: then the figure shows a window of them. @param {any} s */
export const isLongStack = (s) => s.query > LONG_ROWS || s.key > LONG_ROWS;

/**
 * The `count` keys among `keys` with the largest softmax in the row (masked keys last; ties to the lower key),
 * in position order. @param {Terms} t @param {number[]} keys @param {number} count
 */
export function strongestKeys(t, keys, count) {
  const weight = (/** @type {number} */ j) => (t.allowed[j] ? t.softmax[j] : -1);
  return [...keys].sort((a, b) => weight(b) - weight(a) || a - b).slice(0, count).sort((a, b) => a - b);
}

/** `count` of `positions` around `query` (it among them), in order. @param {number[]} positions @param {number} query @param {number} count */
export function queryWindow(positions, query, count) {
  const at = Math.max(0, positions.indexOf(query));
  const start = Math.max(0, Math.min(positions.length - count, at - Math.floor(count / 2)));
  return positions.slice(start, start + count);
}
