// @ts-check
/**
 * The head view's pixels: its lines on one canvas (only the band on screen for tall views), the same lines
 * as an SVG document for the PNG and SVG exports, and the per-head thumbnails of the head bar (option
 * head_thumbnails: each head's lines, or a heatmap above 64 rows, as the model view draws its grid).
 * Imported by head_view.js.
 */

import { headColour, xmlText } from "./common.js";
import { inkOn, onDark } from "./contrast.js";
import { mergeLayer, unitText } from "./attention_data.js";
import { collectMarks, createLineLayer, createMarks, createScratch, minDrawnByte, paintLines, paintMatrix, rgbOf } from "./raster.js";
import { eachLine, layerIndex, rowHeight, stackOf } from "./head_view_data.js";
/** @import { HeadView, LineSet } from "./head_view_data.js" */

export const CANVAS_WIDTH = 220;
export const FULL_DRAW_LIMIT = 2000; // px: views up to this height are painted whole, taller ones by band
const THUMB = 56; // px per head thumbnail
const THUMB_LINES_MAX = 64; // thumbnails draw lines up to this many rows, a heatmap above
const THUMB_THRESHOLD = 0.01; // thumbnails draw weights above this, as the model view does

/** The vertical band to paint: everything for short views, else what is on screen with a margin. @param {HeadView} v @param {number} height */
function band(v, height) {
  if (height <= FULL_DRAW_LIMIT) return { top: 0, bottom: height };
  const rect = v.dom.linesBox.getBoundingClientRect();
  const view = window.innerHeight || 800;
  const top = Math.max(0, Math.min(height, -rect.top - view / 4));
  const bottom = Math.max(top, Math.min(height, view - rect.top + view / 4));
  return { top, bottom };
}

/** Paint the selection's lines; how many lines the selection has, and how many are in the painted band. @param {HeadView} v */
export function drawLines(v) {
  const row = rowHeight(v), { root, linesBox, canvas } = v.dom;
  root.style.setProperty("--attnscope-row", `${row}px`);
  const height = Math.max(v.layout.qRows.shown.length, v.layout.kRows.shown.length) * row;
  linesBox.style.height = `${height}px`;
  const { top, bottom } = band(v, height);
  v.painted = { top, bottom, height };
  const ratio = window.devicePixelRatio || 1;
  canvas.width = CANVAS_WIDTH * ratio;
  canvas.height = Math.max(1, Math.ceil((bottom - top) * ratio));
  canvas.style.width = `${CANVAS_WIDTH}px`;
  canvas.style.height = `${bottom - top}px`;
  canvas.style.top = `${top}px`;
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  // Lines are rasterised in JS into one ImageData (raster.js): without a GPU, one canvas stroke per
  // line cost ~20 µs each at paint time (250 ms for the 12k lines of a long view).
  const layer = createLineLayer(canvas.width, canvas.height);
  const thick = row >= 12; // 2 px lines on tall rows, as the SVG export
  let drawn = 0;
  /** @type {LineSet | null} */
  let current = null;
  const total = eachLine(v, (set, qr, kr, w) => {
    const y0 = (qr + 0.5) * row, y1 = (kr + 0.5) * row;
    if (Math.max(y0, y1) < top || Math.min(y0, y1) > bottom) return;
    if (set !== current) {
      if (current) layer.end();
      layer.begin(rgbOf(set.colour));
      current = set;
    }
    layer.line((y0 - top) * ratio, (y1 - top) * ratio, Math.min(1, w), thick);
    drawn++;
  });
  if (current) layer.end();
  const image = ctx.createImageData(canvas.width, canvas.height);
  layer.write(image);
  ctx.putImageData(image, 0, 0);
  return { total, drawn };
}

/** What is on screen (the painted band) as an SVG document: token labels and lines. @param {HeadView} v */
export function toSVG(v) {
  const row = rowHeight(v), { top, bottom } = v.painted, { queryCol, keyCol, root } = v.dom;
  const left = queryCol.offsetWidth, width = left + CANVAS_WIDTH + keyCol.offsetWidth;
  const style = getComputedStyle(root);
  const parts = [`<rect width="${width}" height="${bottom - top}" fill="${style.backgroundColor}"/>`];
  /** @param {any[]} units @param {any} rows @param {number} x @param {string} anchor */
  const labels = (units, rows, x, anchor) => rows.shown.forEach((/** @type {number} */ n, /** @type {number} */ r) => {
    const y = (r + 0.5) * row - top;
    if (y >= 0 && y <= bottom - top) parts.push(`<text x="${x}" y="${y}" text-anchor="${anchor}" dominant-baseline="middle">${xmlText(unitText(units[n]))}</text>`);
  });
  labels(v.layout.q, v.layout.qRows, left - 6, "end");
  labels(v.layout.k, v.layout.kRows, left + CANVAS_WIDTH + 6, "start");
  eachLine(v, (set, qr, kr, w) => {
    const y0 = (qr + 0.5) * row, y1 = (kr + 0.5) * row;
    if (Math.max(y0, y1) < top || Math.min(y0, y1) > bottom) return;
    parts.push(`<line x1="${left}" y1="${y0 - top}" x2="${left + CANVAS_WIDTH}" y2="${y1 - top}" stroke="${set.colour}" stroke-opacity="${Math.min(1, w).toFixed(3)}" stroke-width="${row >= 12 ? 2 : 1}"/>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${bottom - top}" font-family="sans-serif" font-size="${Math.min(13, row - 2)}" fill="${style.color}">${parts.join("")}</svg>`;
}

const scratch = createScratch();
const marks = createMarks();

/**
 * The layer the thumbnails show, (heads, query units, key units) bytes: the per-head value norms when they
 * are shown, else the raw weights; merged into words in words mode. Null while it is on its way, or for
 * sparse payloads (long inputs: no thumbnails). @param {HeadView} v
 */
function thumbnailLayer(v) {
  if (v.header.encoding.sparse) return null;
  const s = stackOf(v), agg = v.state.aggregation;
  const key = agg === "value_norm" ? `${v.state.stack}/${agg}` : v.state.stack;
  const bytes = /** @type {Uint8Array | null} */ (v.store.get(key, layerIndex(v)));
  if (!bytes) return null;
  if (!v.state.merge) return { bytes, rows: s.query, cols: s.key };
  const merged = mergeLayer(bytes, { heads: s.heads, query: s.query, key: s.key }, v.layout.q, v.layout.k);
  return { bytes: merged, rows: v.layout.q.length, cols: v.layout.k.length };
}

/** Draw each head's thumbnail into its button (option head_thumbnails), its number on a chip of its colour. @param {HeadView} v */
export function paintThumbnails(v) {
  if (!v.state.thumbnails) return;
  const dark = onDark(v.dom.root), { state } = v;
  // what a thumbnail depends on; a hover or a head toggle changes none of it, so nothing is painted again
  const painted = [state.stack, state.layer, state.aggregation, state.merge, state.hideSpecial, state.rows, state.columns, dark].join(":");
  if (painted === v.thumbnails) return;
  const layer = thumbnailLayer(v);
  if (layer) v.thumbnails = painted;
  const rows = v.layout.qRows.shown, cols = v.layout.kRows.shown;
  const minByte = minDrawnByte(THUMB_THRESHOLD);
  for (const button of /** @type {NodeListOf<HTMLElement>} */ (v.dom.heads.querySelectorAll(".attnscope-hv-head"))) {
    const h = Number(button.dataset.head), colour = headColour(h, dark);
    const label = /** @type {HTMLElement} */ (button.querySelector(".attnscope-hv-head-label"));
    label.style.backgroundColor = colour;
    label.style.color = inkOn(colour);
    const canvas = /** @type {HTMLCanvasElement | null} */ (button.querySelector("canvas"));
    if (!canvas || !layer) continue;
    const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
    const image = ctx.createImageData(THUMB, THUMB);
    collectMarks(layer.bytes, h * layer.rows * layer.cols, layer.cols, rows, cols, minByte, marks);
    if (rows.length && cols.length && rows.length <= THUMB_LINES_MAX) {
      paintLines(image, 0, 0, THUMB, THUMB, marks, THUMB / rows.length, THUMB / cols.length, rgbOf(colour), scratch);
    } else if (rows.length && cols.length) {
      paintMatrix(image, 0, 0, THUMB, THUMB, marks, rows.length, cols.length, rgbOf(colour), scratch);
    }
    ctx.putImageData(image, 0, 0);
  }
}

/** A thumbnail canvas for a head button. */
export function thumbnailCanvas() {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = THUMB;
  canvas.setAttribute("aria-hidden", "true");
  return canvas;
}
