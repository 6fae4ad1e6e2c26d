// @ts-check
/**
 * The long-context model view's grid: every head's overview (its pooled cells, one plane: max or mean) drawn
 * into one canvas with pixel writes, each cell a block of whole pixels in the head's colour with opacity =
 * the cell's byte; head and layer labels; one focusable button per head that opens it. Arrow keys move between
 * heads. Imported by model_view_overview.js.
 */

import { make } from "./common.js";
import { rgbOf } from "./raster.js";
import { colourOf, GAP, geometry, headName, levelsOf, shownStack } from "./model_view_overview_state.js";
/** @import { OverviewView, OverviewGrid } from "./model_view_overview_state.js" */

/** The grid's elements, empty (`buildGrid` fills them). @returns {{ wrap: HTMLElement, grid: OverviewGrid }} */
export function createGrid() {
  const wrap = make("div", "attnscope-mo-grid");
  const headLabels = make("div", "attnscope-mo-head-labels");
  const layerLabels = make("div", "attnscope-mo-layer-labels");
  const cellArea = make("div", "attnscope-mo-cells");
  const canvas = document.createElement("canvas");
  canvas.className = "attnscope-mo-canvas";
  cellArea.append(canvas);
  wrap.append(make("div", "attnscope-mo-corner", "layer \\ head"), headLabels, layerLabels, cellArea);
  return { wrap, grid: { headLabels, layerLabels, cellArea, canvas, cells: [] } };
}

/** Labels and one button per head of the shown stack; a click on one calls `open`. @param {OverviewView} v @param {(l: number, h: number) => void} open */
export function buildGrid(v, open) {
  const { root, grid } = v;
  const s = shownStack(v), g = geometry(v);
  root.style.setProperty("--attnscope-mo-width", `${g.width}px`);
  root.style.setProperty("--attnscope-mo-height", `${g.height}px`);
  root.style.setProperty("--attnscope-mo-gap", `${GAP}px`);
  grid.headLabels.replaceChildren(...s.head_labels.map((/** @type {number} */ h, /** @type {number} */ i) => {
    const label = make("span", "attnscope-mo-head-label", String(h));
    label.style.setProperty("--attnscope-head", colourOf(v, i));
    return label;
  }));
  grid.layerLabels.replaceChildren(...s.layer_labels.map((/** @type {number} */ l) => make("span", "attnscope-mo-layer-label", String(l))));
  grid.cells = [];
  for (let l = 0; l < s.layers; l++) {
    for (let h = 0; h < s.heads; h++) {
      const cell = /** @type {HTMLButtonElement} */ (make("button", "attnscope-mo-cell"));
      cell.type = "button";
      Object.assign(cell.dataset, { layer: String(s.layer_labels[l]), head: String(s.head_labels[h]), row: String(l), col: String(h) });
      cell.style.left = `${h * (g.width + GAP)}px`;
      cell.style.top = `${l * (g.height + GAP)}px`;
      cell.setAttribute("aria-label", `${headName(v, l, h)}: open to zoom`);
      cell.addEventListener("click", () => open(l, h));
      grid.cells.push(cell);
    }
  }
  grid.cellArea.replaceChildren(grid.canvas, ...grid.cells);
  grid.cellArea.style.width = `${g.total.width}px`;
  grid.cellArea.style.height = `${g.total.height}px`;
}

/** Draw every head's overview in the shown plane (the max plane when the mean is not carried). @param {OverviewView} v */
export function drawGrid(v) {
  const start = performance.now();
  const { grid: { canvas }, state } = v;
  const s = shownStack(v), g = geometry(v), level = levelsOf(v)[0];
  const plane = state.pooling === "mean" && level.mean ? level.mean : level.max;
  canvas.width = g.total.width;
  canvas.height = g.total.height;
  canvas.style.width = `${g.total.width}px`;
  canvas.style.height = `${g.total.height}px`;
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  const image = ctx.createImageData(canvas.width, canvas.height);
  const cellsPerHead = level.rows * level.cols;
  for (let l = 0; l < s.layers; l++) {
    for (let h = 0; h < s.heads; h++) {
      const x0 = h * (g.width + GAP), y0 = l * (g.height + GAP);
      paintCells(image, x0, y0, plane, (l * s.heads + h) * cellsPerHead, level.rows, level.cols, g.px, rgbOf(colourOf(v, h)));
    }
  }
  ctx.putImageData(image, 0, 0);
  Object.assign(v.root.dataset, {
    cells: String(s.layers * s.heads), pooling: plane === level.max ? "max" : "mean",
    block: String(level.block), drawMs: (performance.now() - start).toFixed(1), ready: "true",
  });
}

/**
 * Write rows × cols cells of `bytes` from `offset` into `image` at (x0, y0), each px × px pixels of colour
 * `rgb` with alpha = the byte.
 * @param {ImageData} image @param {number} x0 @param {number} y0 @param {ArrayLike<number>} bytes @param {number} offset
 * @param {number} rows @param {number} cols @param {number} px @param {number[]} rgb
 */
export function paintCells(image, x0, y0, bytes, offset, rows, cols, px, rgb) {
  const data = image.data, stride = image.width * 4;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const alpha = bytes[offset + r * cols + c];
      if (!alpha) continue;
      for (let y = 0; y < px; y++) {
        let p = (y0 + r * px + y) * stride + (x0 + c * px) * 4;
        for (let x = 0; x < px; x++, p += 4) {
          data[p] = rgb[0];
          data[p + 1] = rgb[1];
          data[p + 2] = rgb[2];
          data[p + 3] = alpha;
        }
      }
    }
  }
}

/** An arrow key on a head's button focuses its neighbour in that direction. @param {OverviewView} v @param {KeyboardEvent} event */
export function moveFocus(v, event) {
  const target = /** @type {HTMLElement} */ (event.target);
  const moves = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
  const move = moves[/** @type {keyof typeof moves} */ (event.key)];
  if (!move || !target.classList.contains("attnscope-mo-cell")) return;
  const s = shownStack(v);
  const l = Number(target.dataset.row) + move[0], h = Number(target.dataset.col) + move[1];
  if (l < 0 || h < 0 || l >= s.layers || h >= s.heads) return;
  event.preventDefault();
  v.grid.cells[l * s.heads + h].focus();
}
