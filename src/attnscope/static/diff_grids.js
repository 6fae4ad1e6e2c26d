// @ts-check
/**
 * The diff view's two grids. The heads grid: every head as a thumbnail heatmap in one canvas, rows = layers,
 * columns = heads, showing model A, model B, or A − B of each head of A against its pair (the header's "pairs":
 * the same place, or the matched head when the shapes differ). The distance grid: A's layers × heads as buttons
 * coloured by the distance to that pair (the header's "pair_distances", bits), each labelled with its value.
 * A click on either opens the head (`open(layer, head)`, heads of A). Imported by diff_view.js and diff_export.js.
 */

import { make } from "./common.js";
import { css, ramp, textOn } from "./diff_palette.js";
import { blitPooled, pooledHead } from "./diff_paint.js";
import { headBytes, headName, headOfA, shapeOf } from "./diff_state.js";
/** @import { DiffView } from "./diff_state.js" */

const GRID_WIDTH = 560; // px the heads grid aims at
const GAP = 3;

/** The side whose heads the grid shows in `mode`. @param {string} mode */
export const gridSide = (mode) => (mode === "b" ? "b" : "a");

/** The grids' elements, put into `host` (`wireGrids` makes them open heads). @param {HTMLElement} host @returns {DiffView["grid"]} */
export function createGrids(host) {
  const box = make("div", "attnscope-dv-grids");
  const caption = make("div", "attnscope-dv-grid-caption");
  const canvas = /** @type {HTMLCanvasElement} */ (make("canvas", "attnscope-dv-heads"));
  const table = make("div", "attnscope-dv-distances");
  const heads = make("div", "attnscope-dv-heads-box");
  heads.append(caption, canvas);
  box.append(heads, table);
  host.append(box);
  return { canvas, cell: 40, gap: GAP, box, caption, table };
}

/**
 * Clicks on the grids open a head of A: a distance, or a head of the heads grid (a head of B's grid opens the
 * head of A matched with it). @param {DiffView} v @param {(layer: number, head: number) => void} open
 */
export function wireGrids(v, open) {
  v.grid.table.addEventListener("click", (event) => {
    const cell = /** @type {HTMLElement | null} */ (/** @type {HTMLElement} */ (event.target).closest(".attnscope-dv-distance"));
    if (cell) open(Number(cell.dataset.layer), Number(cell.dataset.head));
  });
  v.grid.canvas.addEventListener("click", (event) => {
    const at = (/** @type {number} */ px) => Math.floor(px / (v.grid.cell + GAP));
    const [layer, head] = [at(event.offsetY), at(event.offsetX)];
    const side = gridSide(v.state.mode);
    const [layers, heads] = shapeOf(v, side);
    if (layer >= layers || head >= heads) return;
    const a = side === "a" ? [layer, head] : headOfA(v, layer, head);
    if (a) open(a[0], a[1]);
  });
}

/** Draw the heads grid in the current mode; false while a layer is missing. @param {DiffView} v */
export function drawHeads(v) {
  const side = gridSide(v.state.mode);
  const [layers, heads] = shapeOf(v, side);
  const g = v.grid;
  g.cell = Math.max(16, Math.min(80, Math.floor(GRID_WIDTH / heads) - GAP));
  const width = heads * (g.cell + GAP) - GAP, height = layers * (g.cell + GAP) - GAP;
  const image = new ImageData(width, height);
  const out = new Uint32Array(image.data.buffer);
  const table = v.state.mode === "diff" ? v.tables.difference : v.tables.weight;
  for (let l = 0; l < layers; l++) {
    for (let h = 0; h < heads; h++) {
      const a = headBytes(v, side, l, h);
      const pair = v.header.pairs[l][h];
      const b = v.state.mode === "diff" ? headBytes(v, "b", pair[0], pair[1]) : null;
      if (!a || (v.state.mode === "diff" && !b)) return false;
      blitPooled(out, width, h * (g.cell + GAP), l * (g.cell + GAP), g.cell, pooledHead(a, b, v.u, g.cell), table);
    }
  }
  g.canvas.width = width;
  g.canvas.height = height;
  /** @type {CanvasRenderingContext2D} */ (g.canvas.getContext("2d")).putImageData(image, 0, 0);
  g.canvas.dataset.side = side;
  g.canvas.dataset.layers = String(layers);
  g.canvas.dataset.heads = String(heads);
  g.canvas.dataset.pitch = String(g.cell + GAP); // px from one head's thumbnail to the next
  g.caption.textContent = gridCaption(v, side, layers, heads);
  return true;
}

/** @param {DiffView} v @param {string} side @param {number} layers @param {number} heads */
function gridCaption(v, side, layers, heads) {
  const h = v.header;
  const what = v.state.mode === "diff"
    ? `A − B: each head of A against ${h.pairing === "same place" ? "the same head of B" : "its matched head of B"}`
    : `${side === "a" ? "A" : "B"} (${side === "a" ? h.model_a : h.model_b})`;
  return `${what} · ${layers} layers × ${heads} heads (rows: layers, columns: heads; click a head)`;
}

/** Fill the distance grid (once: it does not change with the mode). @param {DiffView} v */
export function buildDistances(v) {
  const h = v.header;
  const [layers, heads] = h.shape_a;
  const largest = Math.max(1e-9, ...h.pair_distances.flat());
  const t = v.grid.table;
  t.replaceChildren(make("div", "attnscope-dv-grid-caption", h.pairing === "same place"
    ? "Distance of each head of A to the same head of B (mean row JSD, bits)"
    : "Distance of each head of A to its matched head of B (mean row JSD, bits)"));
  const rows = make("div", "attnscope-dv-distance-rows");
  rows.style.gridTemplateColumns = `repeat(${heads}, auto)`;
  for (let l = 0; l < layers; l++) {
    for (let hd = 0; hd < heads; hd++) {
      const d = h.pair_distances[l][hd];
      const [lb, hb] = h.pairs[l][hd];
      const rgb = ramp(d / largest, h.sequential);
      const cell = make("button", "attnscope-dv-distance", d.toFixed(2));
      Object.assign(cell.dataset, { layer: String(l), head: String(hd), distance: String(d) });
      cell.style.background = css(rgb);
      cell.style.color = textOn(rgb);
      cell.title = `A ${headName(l, hd)} against B ${headName(lb, hb)}: ${d.toFixed(4)} bits`;
      rows.append(cell);
    }
  }
  t.append(rows);
}

/** Mark the open head in the distance grid. @param {DiffView} v */
export function markOpen(v) {
  for (const cell of v.grid.table.querySelectorAll(".attnscope-dv-distance")) {
    const el = /** @type {HTMLElement} */ (cell);
    el.classList.toggle("attnscope-dv-open", Number(el.dataset.layer) === v.state.layer && Number(el.dataset.head) === v.state.head);
  }
}
