// @ts-check
/**
 * One layer's attention as the views use it: dense or sparse bytes decoded, tokens or words as units
 * (subwords merged), and the lines above a threshold per head. Pure functions, no DOM; imported by
 * the head and model views (and so by the explorer app, which hosts the head view).
 */

import { SCALE, shown } from "./common.js";

/** A unit's label as text (exports, tooltips): "##" before a piece that continues a word. @param {{ label: string, continuation?: boolean }} unit */
export function unitText(unit) {
  return (unit.continuation ? "##" : "") + shown(unit.label);
}

/**
 * One side's units: tokens, or words made of tokens (special tokens stay units of their own).
 * `continuation` marks a token that continues the previous token's word (the header's `continues`):
 * views mark it "##" before its label; a word never is one.
 * @param {any} seq a header sequence
 * @param {boolean} merge
 * @returns {{label: string, special: boolean, tokens: number[], continuation: boolean}[]}
 */
export function unitsOf(seq, merge) {
  if (!merge || !seq.words || seq.words.length === 0) {
    return seq.tokens.map((/** @type {string} */ t, /** @type {number} */ i) => ({ label: t, special: seq.special[i],
      tokens: [i], continuation: Boolean(seq.continues?.[i]) }));
  }
  /** @type {{label: string, special: boolean, tokens: number[], continuation: boolean}[]} */
  const units = [];
  /** @type {Map<number, number>} */
  const ofWord = new Map();
  seq.tokens.forEach((/** @type {string} */ t, /** @type {number} */ i) => {
    const word = seq.words[i];
    if (word === null || word === undefined) {
      units.push({ label: t, special: seq.special[i], tokens: [i], continuation: false });
      return;
    }
    const at = ofWord.get(word);
    if (at === undefined) {
      ofWord.set(word, units.length);
      units.push({ label: seq.word_labels[word], special: false, tokens: [i], continuation: false });
    }
    else units[at].tokens.push(i);
  });
  return units;
}

/**
 * A sparse layer (see Payload.layer_bytes): per (head, query) row, where its kept entries start, their
 * key positions and their bytes.
 * @param {Uint8Array} bytes @param {number} rows @param {number} indexBytes
 */
export function sparseRows(bytes, rows, indexBytes) {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  const starts = new Uint32Array(aligned.buffer, aligned.byteOffset, rows + 1);
  const count = starts[rows];
  const at = aligned.byteOffset + 4 * (rows + 1);
  const keys = indexBytes === 2 ? new Uint16Array(aligned.buffer, at, count) : new Uint32Array(aligned.buffer, at, count);
  const values = new Uint8Array(aligned.buffer, at + indexBytes * count, count);
  return { starts, keys, values };
}

/**
 * A layer's weights over units, and the lines above the threshold per head.
 * Words merge as Clark et al. (2019) did: attention to a word is the sum over its tokens, attention
 * from a word the mean over its tokens.
 * @param {Uint8Array | Float32Array} bytes the layer, dense (heads, query, key) or sparse rows; or decoded weights
 *   (dense, with an encoding whose scale is 1)
 * @param {any} encoding the header's encoding, or `{ sparse: false, scale: 1 }` for decoded weights
 * @param {{heads: number, query: number, key: number}} shape
 * @param {any[]} qUnits @param {any[]} kUnits @param {boolean} merged @param {number} threshold
 * @returns {{ weight: (h: number, a: number, b: number) => number, rowTotal: (h: number, a: number, keyRow: Int32Array) => number,
 *   lines: Lines[] }} `rowTotal` is the weight of query unit `a` on the shown keys (`keyRow[b] >= 0`), all weights counted
 *   (a sparse layer's only those it carries)
 */
export function layerData(bytes, encoding, shape, qUnits, kUnits, merged, threshold) {
  const { heads, query, key } = shape;
  const scale = encoding.scale ?? SCALE; // 1 for weights already decoded (meanWeights)
  const nq = qUnits.length, nk = kUnits.length;
  const sparse = encoding.sparse ? sparseRows(/** @type {Uint8Array} */ (bytes), heads * query, encoding.index_bytes) : null;
  /** Calls visit(key, byte) for the stored entries of one (head, query) row. */
  const eachEntry = (/** @type {number} */ row, /** @type {(j: number, byte: number) => void} */ visit) => {
    if (sparse) {
      for (let n = sparse.starts[row]; n < sparse.starts[row + 1]; n++) visit(sparse.keys[n], sparse.values[n]);
    } else {
      const base = row * key;
      for (let j = 0; j < key; j++) visit(j, bytes[base + j]);
    }
  };
  /** @type {(h: number, a: number, b: number) => number} */
  let weight = (h, a, b) => {
    const row = h * query + a;
    if (!sparse) return bytes[row * key + b] / scale;
    let lo = sparse.starts[row], hi = sparse.starts[row + 1] - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1, k = sparse.keys[mid];
      if (k === b) return sparse.values[mid] / scale;
      if (k < b) lo = mid + 1; else hi = mid - 1;
    }
    return 0;
  };
  const lines = [];
  if (merged) {
    const sums = unitByteSums(eachEntry, shape, qUnits, kUnits);
    weight = (h, a, b) => sums[(h * nq + a) * nk + b] / scale / qUnits[a].tokens.length;
  }
  for (let h = 0; h < heads; h++) {
    const qs = [], ks = [], ws = [];
    for (let a = 0; a < nq; a++) {
      if (merged) {
        for (let b = 0; b < nk; b++) {
          const w = weight(h, a, b);
          if (w > threshold) { qs.push(a); ks.push(b); ws.push(w); }
        }
      } else {
        eachEntry(h * query + a, (j, byte) => { const w = byte / scale; if (w > threshold) { qs.push(a); ks.push(j); ws.push(w); } });
      }
    }
    lines.push({ q: Int32Array.from(qs), k: Int32Array.from(ks), w: Float32Array.from(ws) });
  }
  /** @type {(h: number, a: number, keyRow: Int32Array) => number} */
  const rowTotal = (h, a, keyRow) => {
    let total = 0;
    if (merged) {
      for (let b = 0; b < nk; b++) if (keyRow[b] >= 0) total += weight(h, a, b);
      return total;
    }
    eachEntry(h * query + a, (j, byte) => { if (keyRow[j] >= 0) total += byte; });
    return total / scale;
  };
  return { weight, rowTotal, lines };
}

/** One set's lines, grouped by query: query unit, key unit and weight of each. @typedef {{ q: Int32Array, k: Int32Array, w: Float32Array }} Lines */

/**
 * The lines a top share keeps: per query row, the fewest strongest lines to shown keys (`keyRow[k] >= 0`)
 * whose weights add up to at least `share` of the row's weight on the shown keys (`rowTotal(q)`); equal
 * weights go to the lower key. Lines must be grouped by query, as `layerData` lists them; a row whose
 * lines (those above the minimum weight) fall short of the share keeps them all.
 * @param {Lines} lines @param {(q: number) => number} rowTotal @param {Int32Array} keyRow @param {number} share in (0, 1]
 * @returns {Uint8Array} 1 for each kept line
 */
export function topShareLines(lines, rowTotal, keyRow, share) {
  const { q, k, w } = lines;
  const keep = new Uint8Array(q.length);
  for (let start = 0, end = 0; start < q.length; start = end) {
    while (end < q.length && q[end] === q[start]) end++;
    const goal = share * rowTotal(q[start]) - 1e-9;
    const order = [];
    for (let n = start; n < end; n++) if (keyRow[k[n]] >= 0) order.push(n);
    order.sort((x, y) => w[y] - w[x] || k[x] - k[y]);
    let sum = 0;
    for (const n of order) {
      if (sum >= goal) break;
      keep[n] = 1;
      sum += w[n];
    }
  }
  return keep;
}

/**
 * Whether an aggregation keeps a layer per head (raw weights, value norms per head) or combines the heads into
 * one, as the payload header's stack says ("aggregation_methods", from Python's analysis/methods.py).
 * @param {any} stack a header stack @param {string} name
 */
export function isPerHead(stack, name) {
  const found = (stack.aggregation_methods ?? []).find((/** @type {any} */ m) => m.name === name);
  return found ? Boolean(found.per_head) : name === "raw";
}

/**
 * What the aggregation control offers (B1) as [value, label, description], as the payload carries it
 * (header stack "aggregation_methods", defined in Python: analysis/methods.py, views/aggregated.py).
 * "mean" is computed here from the raw layer (`meanLayer`); the others arrive from Python as layers of
 * their own, under the data key `${role}/${value}` (header stack "aggregations": value -> heads per layer).
 * @param {any} stack
 * @returns {[string, string, string][]}
 */
export function offeredAggregations(stack) {
  const methods = stack.aggregation_methods ?? [{ name: "raw", label: "Attention", about: "" }];
  return methods.map((/** @type {any} */ m) => /** @type {[string, string, string]} */ ([m.name, m.label, m.about]));
}

/**
 * Fill an aggregation control with what `stack` offers, select `wanted` when it is offered (else "raw")
 * and return what was selected.
 * @param {HTMLSelectElement} select @param {any} stack @param {string} wanted
 */
export function fillAggregations(select, stack, wanted) {
  const offered = offeredAggregations(stack);
  select.replaceChildren(...offered.map(([value, text, about]) => Object.assign(new Option(text, value), { title: about })));
  select.value = offered.some(([value]) => value === wanted) ? wanted : "raw";
  return select.value;
}

/**
 * An aggregation's label, description and the note shown beside the control, from the payload.
 * @param {string} aggregation @param {any} stack the header stack it is shown for
 */
export function aggregationInfo(aggregation, stack) {
  const found = (stack.aggregation_methods ?? []).find((/** @type {any} */ m) => m.name === aggregation);
  return { label: found?.label ?? aggregation, about: found?.about ?? "", note: found?.note ?? "" };
}

/**
 * The mean of some heads of a layer, as one dense head of bytes: round(mean of the heads' bytes).
 * In a sparse layer the weights not carried (at or below the threshold) count as 0.
 * @param {Uint8Array} bytes the layer, dense (heads, query, key) or sparse rows
 * @param {any} encoding the header's encoding
 * @param {{heads: number, query: number, key: number}} shape
 * @param {number[]} heads head indices into the layer
 * @returns {Uint8Array} (1, query, key) row-major
 */
export function meanLayer(bytes, encoding, shape, heads) {
  const sums = headSums(bytes, encoding, shape, heads);
  const out = new Uint8Array(sums.length);
  if (heads.length) for (let n = 0; n < out.length; n++) out[n] = Math.round(sums[n] / heads.length);
  return out;
}

/**
 * The mean of some heads of a layer as decoded weights, unrounded: (1, query, key) row-major, for
 * `layerData` with the encoding `{ sparse: false, scale: 1 }`. The head view draws this mean (aggregation
 * "mean", or any per-head aggregation with mean_heads); a sparse layer's weights not carried count as 0.
 * @param {Uint8Array} bytes the layer, dense (heads, query, key) or sparse rows
 * @param {any} encoding the header's encoding
 * @param {{heads: number, query: number, key: number}} shape
 * @param {number[]} heads head indices into the layer
 * @returns {Float32Array}
 */
export function meanWeights(bytes, encoding, shape, heads) {
  const sums = headSums(bytes, encoding, shape, heads);
  const out = new Float32Array(sums.length);
  if (heads.length) {
    const f = 1 / (SCALE * heads.length);
    for (let n = 0; n < out.length; n++) out[n] = sums[n] * f;
  }
  return out;
}

/**
 * A layer's bytes added up per (head, query unit, key unit): over every (query token, key token) pair
 * of the two units. Divided by the query unit's token count, that is Clark et al.'s (2019) merge:
 * columns summed over a word's tokens, rows averaged.
 * @param {(row: number, visit: (j: number, byte: number) => void) => void} eachEntry calls visit(key,
 *   byte) for the stored entries of one (head, query) row
 * @param {{heads: number, query: number, key: number}} shape
 * @param {{tokens: number[]}[]} qUnits @param {{tokens: number[]}[]} kUnits
 */
function unitByteSums(eachEntry, shape, qUnits, kUnits) {
  const nq = qUnits.length, nk = kUnits.length;
  const sums = new Float64Array(shape.heads * nq * nk);
  const keyUnit = new Int32Array(shape.key);
  kUnits.forEach((u, b) => { for (const j of u.tokens) keyUnit[j] = b; });
  for (let h = 0; h < shape.heads; h++) {
    qUnits.forEach((u, a) => {
      const row = (h * nq + a) * nk;
      for (const i of u.tokens) eachEntry(h * shape.query + i, (j, byte) => { sums[row + keyUnit[j]] += byte; });
    });
  }
  return sums;
}

/**
 * A dense layer (heads, query, key) merged into units as `layerData` merges it, back in bytes.
 * @param {Uint8Array} bytes @param {{heads: number, query: number, key: number}} shape
 * @param {{tokens: number[]}[]} qUnits @param {{tokens: number[]}[]} kUnits
 * @returns {Uint8Array} (heads, query units, key units) row-major, bytes clamped to SCALE
 */
export function mergeLayer(bytes, shape, qUnits, kUnits) {
  const eachEntry = (/** @type {number} */ row, /** @type {(j: number, byte: number) => void} */ visit) => {
    for (let j = 0, base = row * shape.key; j < shape.key; j++) visit(j, bytes[base + j]);
  };
  const sums = unitByteSums(eachEntry, shape, qUnits, kUnits);
  const nq = qUnits.length, nk = kUnits.length;
  const out = new Uint8Array(sums.length);
  for (let n = 0; n < out.length; n++) {
    out[n] = Math.min(SCALE, Math.round(sums[n] / qUnits[Math.floor(n / nk) % nq].tokens.length));
  }
  return out;
}

/**
 * The byte sums over `heads` of a layer, (query, key) row-major: what `meanLayer` rounds, and what
 * `meanWeights` divides by SCALE × heads for an unrounded mean.
 * @param {Uint8Array} bytes the layer, dense (heads, query, key) or sparse rows
 * @param {any} encoding the header's encoding
 * @param {{heads: number, query: number, key: number}} shape
 * @param {number[]} heads head indices into the layer
 * @returns {Uint32Array}
 */
export function headSums(bytes, encoding, shape, heads) {
  const { query, key } = shape;
  const sums = new Uint32Array(query * key);
  const sparse = encoding.sparse ? sparseRows(bytes, shape.heads * query, encoding.index_bytes) : null;
  for (const h of heads) {
    for (let i = 0; i < query; i++) {
      const row = h * query + i;
      if (sparse) {
        for (let n = sparse.starts[row]; n < sparse.starts[row + 1]; n++) sums[i * key + sparse.keys[n]] += sparse.values[n];
      } else {
        for (let j = 0; j < key; j++) sums[i * key + j] += bytes[row * key + j];
      }
    }
  }
  return sums;
}

/** "0-5, 9" as a sorted list of positions below `limit`; throws with a message on bad text. @param {string} text @param {number} limit */
export function parsePositions(text, limit) {
  const out = new Set();
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const match = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(part);
    if (!match) throw new Error(`“${part}” is not a position or a range like 3-7`);
    const lo = Number(match[1]), hi = Number(match[2] ?? match[1]);
    if (hi < lo || hi >= limit) throw new Error(`${part} is out of range: positions are 0-${limit - 1}`);
    for (let i = lo; i <= hi; i++) out.add(i);
  }
  return out.size ? [...out].sort((a, b) => a - b) : null;
}
