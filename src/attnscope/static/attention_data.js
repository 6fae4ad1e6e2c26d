// @ts-check
/**
 * One layer's attention as the views use it: dense or sparse bytes decoded, tokens or words as units
 * (subwords merged), and the lines above a threshold per head. Pure functions, no DOM; Python puts
 * this file between common.js and the view's module.
 */

/**
 * One side's units: tokens, or words made of tokens (special tokens stay units of their own).
 * @param {any} seq a header sequence
 * @param {boolean} merge
 * @returns {{label: string, special: boolean, tokens: number[]}[]}
 */
export function unitsOf(seq, merge) {
  if (!merge || !seq.words || seq.words.length === 0) {
    return seq.tokens.map((/** @type {string} */ t, /** @type {number} */ i) => ({ label: t, special: seq.special[i], tokens: [i] }));
  }
  /** @type {{label: string, special: boolean, tokens: number[]}[]} */
  const units = [];
  /** @type {Map<number, number>} */
  const ofWord = new Map();
  seq.tokens.forEach((/** @type {string} */ t, /** @type {number} */ i) => {
    const word = seq.words[i];
    if (word === null || word === undefined) { units.push({ label: t, special: seq.special[i], tokens: [i] }); return; }
    const at = ofWord.get(word);
    if (at === undefined) { ofWord.set(word, units.length); units.push({ label: seq.word_labels[word], special: false, tokens: [i] }); }
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
 * @param {Uint8Array} bytes the layer, dense (heads, query, key) or sparse rows
 * @param {any} encoding the header's encoding
 * @param {{heads: number, query: number, key: number}} shape
 * @param {any[]} qUnits @param {any[]} kUnits @param {boolean} merged @param {number} threshold
 */
export function layerData(bytes, encoding, shape, qUnits, kUnits, merged, threshold) {
  const { heads, query, key } = shape;
  const nq = qUnits.length, nk = kUnits.length;
  const sparse = encoding.sparse ? sparseRows(bytes, heads * query, encoding.index_bytes) : null;
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
    if (!sparse) return bytes[row * key + b] / SCALE;
    let lo = sparse.starts[row], hi = sparse.starts[row + 1] - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1, k = sparse.keys[mid];
      if (k === b) return sparse.values[mid] / SCALE;
      if (k < b) lo = mid + 1; else hi = mid - 1;
    }
    return 0;
  };
  let minByte = 0; // the smallest byte whose weight is above the threshold
  while (minByte <= SCALE && minByte / SCALE <= threshold) minByte++;
  const lines = [];
  if (merged) {
    const values = new Float64Array(heads * nq * nk);
    const keyUnit = new Int32Array(key);
    kUnits.forEach((u, b) => { for (const j of u.tokens) keyUnit[j] = b; });
    for (let h = 0; h < heads; h++) {
      qUnits.forEach((u, a) => {
        const row = (h * nq + a) * nk;
        for (const i of u.tokens) eachEntry(h * query + i, (j, byte) => { values[row + keyUnit[j]] += byte / SCALE / u.tokens.length; });
      });
    }
    weight = (h, a, b) => values[(h * nq + a) * nk + b];
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
        eachEntry(h * query + a, (j, byte) => { if (byte >= minByte) { qs.push(a); ks.push(j); ws.push(byte / SCALE); } });
      }
    }
    lines.push({ q: Int32Array.from(qs), k: Int32Array.from(ks), w: Float32Array.from(ws) });
  }
  return { weight, lines };
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
