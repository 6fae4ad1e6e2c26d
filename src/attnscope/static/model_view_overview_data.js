// @ts-check
/**
 * The long-context model view's data: pooled levels as they arrive (views/overview_data.py, `OverviewLevel.wire`),
 * a head's region cut from a level, Python's zoom replies (views/overview_zoom.py) decoded, and weights
 * printed. Imported by model_view_overview.js and its parts.
 *
 * A level of a stack: { block, rows, cols, mean_scale: [per layer × head], max, mean }, the planes uint8
 * (layers, heads, rows, cols) row-major (bytes, a DataView or base64; `mean` may be null when not carried):
 * a cell's max weight is byte / 255; its mean is byte / 255 × mean_scale of its head.
 * A region is what the enlarged head draws: cells of `block` × `block` tokens over query positions
 * rows[0]..rows[1] - 1 and key positions cols[0]..cols[1] - 1, their max and mean as floats (a tile of
 * single tokens has block 1 and max = mean = the weights), `exact` when they came from Python.
 */

import { SCALE, layerBytes, toBytes } from "./common.js";

/** The zoom message's type, as views/overview_zoom.py names it. */
export const ZOOM_MESSAGE = "attnscope-zoom";

/**
 * @typedef {object} Level a pooled level, its planes decoded to bytes
 * @property {number} block tokens per cell side
 * @property {number} rows cells down a head
 * @property {number} cols cells across a head
 * @property {number[]} meanScale per layer × head
 * @property {Uint8Array} max
 * @property {Uint8Array | null} mean
 *
 * @typedef {object} Region what the enlarged head draws
 * @property {string} kind "tile" (single tokens) or "pooled"
 * @property {number[]} rows [start, stop) query positions
 * @property {number[]} cols [start, stop) key positions
 * @property {number} block tokens per cell side
 * @property {number[]} shape [cells down, cells across]
 * @property {Float32Array} max per cell, row-major
 * @property {Float32Array | null} mean per cell (null when not carried)
 * @property {boolean} exact float32 from Python (else decoded from bytes, within 1/510)
 */

/**
 * Decode a stack's levels as they arrived (`wire`), finest last: their planes inflated when `compression` (the
 * header encoding's, a page's deflated planes) names how they were packed.
 * @param {any[]} wires @param {string | null | undefined} compression @returns {Promise<Level[]>}
 */
export async function decodeLevels(wires, compression) {
  return Promise.all((wires ?? []).map(async (w) => ({
    block: w.block, rows: w.rows, cols: w.cols, meanScale: w.mean_scale,
    max: await layerBytes(w.max, compression), mean: w.mean ? await layerBytes(w.mean, compression) : null,
  })));
}

/** Cells of `block` tokens needed to show `rows` × `cols` tokens in at most `cells` per side. @param {number} rows @param {number} cols @param {number} cells */
export function neededBlock(rows, cols, cells) {
  return Math.max(1, Math.ceil(Math.max(rows, cols) / cells));
}

/** [start, stop) widened to whole cells of `block` within `size`. @param {number} start @param {number} stop @param {number} block @param {number} size */
export function snap(start, stop, block, size) {
  return [Math.floor(start / block) * block, Math.min(size, Math.ceil(stop / block) * block)];
}

/**
 * The carried level that shows a region of rows × cols tokens best: the coarsest whose block is at most what the
 * region needs, else the finest carried (then `coarser` is true: finer cells need Python).
 * @param {Level[]} levels @param {number} needed @returns {{ level: Level, coarser: boolean }}
 */
export function chooseLevel(levels, needed) {
  const fitting = levels.filter((lv) => lv.block >= needed);
  if (fitting.length) {
    const level = fitting.reduce((a, b) => (b.block < a.block ? b : a));
    return { level, coarser: level.block > needed && level === finest(levels) };
  }
  return { level: levels.reduce((a, b) => (b.block > a.block ? b : a)), coarser: false };
}

/** @param {Level[]} levels */
function finest(levels) {
  return levels.reduce((a, b) => (b.block < a.block ? b : a));
}

/**
 * Head (layer index l, head index h of `heads` kept heads) of `level` over query positions q0..q1 and key
 * positions k0..k1 (widened to whole cells), decoded from its bytes.
 * @param {Level} level @param {number} l @param {number} h @param {number} heads
 * @param {number[]} rows [q0, q1) @param {number[]} cols [k0, k1) @param {number} queries @param {number} keys
 * @returns {Region}
 */
export function regionOfLevel(level, l, h, heads, rows, cols, queries, keys) {
  const b = level.block;
  const [q0, q1] = snap(rows[0], rows[1], b, queries), [k0, k1] = snap(cols[0], cols[1], b, keys);
  const r0 = q0 / b, c0 = k0 / b, down = Math.ceil(q1 / b) - r0, across = Math.ceil(k1 / b) - c0;
  const max = new Float32Array(down * across);
  const mean = level.mean ? new Float32Array(down * across) : null;
  const head = (l * heads + h) * level.rows * level.cols;
  const scale = level.meanScale[l * heads + h] ?? 0;
  for (let r = 0; r < down; r++) {
    for (let c = 0; c < across; c++) {
      const at = head + (r0 + r) * level.cols + c0 + c;
      max[r * across + c] = level.max[at] / SCALE;
      if (mean && level.mean) mean[r * across + c] = (level.mean[at] / SCALE) * scale;
    }
  }
  return { kind: b === 1 ? "tile" : "pooled", rows: [q0, q1], cols: [k0, k1], block: b, shape: [down, across], max, mean, exact: false };
}

/** A float32 little-endian buffer as a Float32Array (copied when unaligned). @param {any} buffer */
function floats(buffer) {
  const bytes = toBytes(buffer);
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return new Float32Array(bytes.slice().buffer);
}

/** Python's reply to a zoom (no error) as a region. @param {any} msg @param {any[]} buffers @returns {Region} */
export function regionOfReply(msg, buffers) {
  const max = floats(buffers[0]);
  const mean = msg.kind === "tile" ? max : floats(buffers[1]);
  return { kind: msg.kind, rows: msg.rows, cols: msg.cols, block: msg.block, shape: msg.shape, max, mean, exact: true };
}

/** The shortest decimal that reads back as the same float32 (what numpy prints for a float32). @param {number} x */
export function float32Text(x) {
  const f = Math.fround(x);
  for (let digits = 1; digits < 10; digits++) {
    const text = f.toPrecision(digits);
    if (Math.fround(Number(text)) === f) return text;
  }
  return f.toPrecision(9);
}

/** A pooled value as printed: exact (float32 digits) or decoded from a byte ("≈", 3 decimals). @param {number} x @param {boolean} exact */
export function valueText(x, exact) {
  return exact ? float32Text(x) : `≈${x.toFixed(3)}`;
}
