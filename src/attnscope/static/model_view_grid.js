// @ts-check
/**
 * The model view's grid: head and layer labels and one focusable button per thumbnail (built once per stack),
 * every thumbnail drawn into one canvas with pixel writes (raster.js), and arrow keys that move between the
 * thumbnails. Imported by model_view.js.
 */

import { make } from "./common.js";
import { fillAggregations } from "./attention_data.js";
import { collectMarks, minDrawnByte, paintLines, paintMatrix, rgbOf } from "./raster.js";
import { colourOf, currentStack, GAP, geometry, headName, layerBytes, positions, shownStack, styleOf } from "./model_view_state.js";
/** @import { ModelView } from "./model_view_state.js" */

/**
 * The grid's elements, empty: a canvas in the cell area, beside the head and layer labels (`buildGrid` fills them).
 * @returns {{ wrap: HTMLElement, grid: import("./model_view_state.js").Grid }}
 */
export function createGrid() {
  const wrap = make("div", "attnscope-mv-grid");
  const headLabels = make("div", "attnscope-mv-head-labels");
  const layerLabels = make("div", "attnscope-mv-layer-labels");
  const cellArea = make("div", "attnscope-mv-cells");
  const canvas = document.createElement("canvas");
  canvas.className = "attnscope-mv-canvas";
  cellArea.append(canvas);
  wrap.append(make("div", "attnscope-mv-corner", "layer \\ head"), headLabels, layerLabels, cellArea);
  return { wrap, grid: { headLabels, layerLabels, cellArea, canvas, cells: [] } };
}

/**
 * Labels and one focusable button per thumbnail, for the current stack; a click on one calls `open`.
 * @param {ModelView} v @param {(layer: number, head: number) => void} open
 */
export function buildGrid(v, open) {
  const { root, grid } = v;
  const s = shownStack(v);
  const g = geometry(v);
  root.style.setProperty("--attnscope-mv-cell", `${g.cell}px`);
  root.style.setProperty("--attnscope-mv-gap", `${GAP}px`);
  grid.headLabels.replaceChildren(...s.head_labels.map((/** @type {number | null} */ h, /** @type {number} */ i) => {
    const label = make("span", "attnscope-mv-head-label", h === null ? headName(v, i) : String(h));
    label.style.setProperty("--attnscope-head", colourOf(v, i));
    return label;
  }));
  v.state.aggregation = fillAggregations(v.controls.aggregationSelect, currentStack(v), v.state.aggregation);
  grid.layerLabels.replaceChildren(...s.layer_labels.map((/** @type {number} */ l) => make("span", "attnscope-mv-layer-label", String(l))));
  grid.cells = [];
  for (let l = 0; l < s.layers; l++) {
    for (let h = 0; h < s.heads; h++) {
      const cell = /** @type {HTMLButtonElement} */ (make("button", "attnscope-mv-cell"));
      cell.type = "button";
      Object.assign(cell.dataset, { layer: String(s.layer_labels[l]), head: s.head_labels[h] === null ? "" : String(s.head_labels[h]), row: String(l), col: String(h) });
      cell.style.left = `${h * (g.cell + GAP)}px`;
      cell.style.top = `${l * (g.cell + GAP)}px`;
      cell.addEventListener("click", () => open(l, h));
      grid.cells.push(cell);
    }
  }
  grid.cellArea.replaceChildren(grid.canvas, ...grid.cells);
  grid.cellArea.style.width = `${g.width}px`;
  grid.cellArea.style.height = `${g.height}px`;
}

/**
 * Draw every available layer's thumbnails into the grid canvas; true when no layer was missing.
 * Each thumbnail's button gets data-drawn, the number of weights above the threshold it shows.
 * @param {ModelView} v
 */
export function drawGrid(v) {
  const { root, grid: { canvas, cells }, state } = v;
  const start = performance.now();
  const s = shownStack(v);
  const g = geometry(v);
  const ratio = window.devicePixelRatio || 1;
  const px = (/** @type {number} */ n) => Math.round(n * ratio);
  canvas.width = px(g.width);
  canvas.height = px(g.height);
  canvas.style.width = `${g.width}px`;
  canvas.style.height = `${g.height}px`;
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  const image = ctx.createImageData(canvas.width, canvas.height);
  const { rows, cols } = positions(v);
  const minByte = minDrawnByte(state.threshold);
  const size = px(g.cell);
  let total = 0, complete = true;
  for (let l = 0; l < s.layers; l++) {
    const bytes = layerBytes(v, l);
    if (!bytes) { complete = false; continue; }
    for (let h = 0; h < s.heads; h++) {
      const n = collectMarks(bytes, h * s.query * s.key, s.key, rows, cols, minByte, v.marks);
      if (n) paintHead(v, image, px(h * (g.cell + GAP)), px(l * (g.cell + GAP)), size, rows.length, cols.length, rgbOf(colourOf(v, h)));
      const cell = cells[l * s.heads + h];
      cell.dataset.drawn = String(n);
      cell.setAttribute("aria-label", `layer ${s.layer_labels[l]}, ${headName(v, h)}: ${n} weights above ${state.threshold}`);
      total += n;
    }
  }
  ctx.putImageData(image, 0, 0);
  root.dataset.drawn = String(total);
  root.dataset.drawMs = (performance.now() - start).toFixed(1);
  if (complete && !v.ready) { v.ready = true; root.dataset.ready = "true"; }
  return complete;
}

/**
 * Paint the current `marks` into a size × size thumbnail of `image` at (x0, y0), in the current style.
 * @param {ModelView} v @param {ImageData} image @param {number} x0 @param {number} y0 @param {number} size
 * @param {number} rowCount @param {number} colCount @param {number[]} rgb
 */
function paintHead(v, image, x0, y0, size, rowCount, colCount, rgb) {
  if (styleOf(v) === "lines") paintLines(image, x0, y0, size, size, v.marks, size / rowCount, size / colCount, rgb, v.scratch);
  else paintMatrix(image, x0, y0, size, size, v.marks, rowCount, colCount, rgb, v.scratch);
}

/** An arrow key on a thumbnail focuses its neighbour in that direction. @param {ModelView} v @param {KeyboardEvent} event */
export function moveFocus(v, event) {
  const target = /** @type {HTMLElement} */ (event.target);
  const moves = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
  const move = moves[/** @type {keyof typeof moves} */ (event.key)];
  if (!move || !target.classList.contains("attnscope-mv-cell")) return;
  const s = shownStack(v);
  const l = Number(target.dataset.row) + move[0], h = Number(target.dataset.col) + move[1];
  if (l < 0 || h < 0 || l >= s.layers || h >= s.heads) return;
  event.preventDefault();
  v.grid.cells[l * s.heads + h].focus();
}
