// @ts-check
/**
 * The long-context model view's enlarged head: a region of one head drawn cell by cell, zoomed by a click
 * (eight times closer around the cell, down to single tokens) or a dragged rectangle, and out again
 * (Escape, "Zoom out"). What a zoom shows first is cut from the carried levels (model_view_overview_data.js);
 * with Python behind the view (a widget) the region is then asked for (views/overview_zoom.py) and drawn
 * again from its exact float32 reply; a page on its own says when a zoom is finer than what it carries.
 * At single tokens the region shows the tokens' labels and, on hover, the exact weight (float32 digits).
 * Imported by model_view_overview.js.
 *
 * The panel exposes what it draws: data-layer, data-head (model numbers), data-rows and data-cols
 * ("start:stop" token positions), data-block, data-kind ("tile" or "pooled"), data-exact, data-pending.
 */

import { make, shown } from "./common.js";
import { rgbOf } from "./raster.js";
import { paintCells } from "./model_view_overview_grid.js";
import { chooseLevel, neededBlock, regionOfLevel, regionOfReply, valueText, ZOOM_MESSAGE } from "./model_view_overview_data.js";
import { colourOf, hasKernel, headName, levelsOf, poolingText, saveTraits, shownStack } from "./model_view_overview_state.js";
/** @import { OverviewView } from "./model_view_overview_state.js" */
/** @import { Region } from "./model_view_overview_data.js" */

const DETAIL = 512; // CSS px the enlarged head aims at
const TOKEN_PX = 14; // CSS px per token when single tokens are shown, so their labels fit
const ZOOM = 8; // a click shows 1/ZOOM of the region's side

/**
 * @typedef {object} Detail the enlarged head's elements
 * @property {HTMLElement} panel
 * @property {HTMLElement} title
 * @property {HTMLElement} status
 * @property {HTMLElement} queries query labels (single tokens only)
 * @property {HTMLElement} keys key labels (single tokens only)
 * @property {HTMLElement} area holds the canvas and the selection rectangle
 * @property {HTMLCanvasElement} canvas
 * @property {HTMLElement} box the dragged rectangle
 * @property {HTMLElement} tooltip
 * @property {{ r: number, c: number } | null} drag where a drag started (cell)
 * @property {() => void} dispose removes the listener it set on the window
 */

/** The enlarged head's elements, hidden, their events wired to `v`. @param {OverviewView} v @returns {Detail} */
export function createDetail(v) {
  const panel = make("div", "attnscope-mo-detail");
  panel.hidden = true;
  panel.tabIndex = -1; // focused when opened, so Escape reaches the view
  const title = make("div", "attnscope-mo-detail-title");
  const bar = make("div", "attnscope-mo-detail-bar");
  const out = make("button", "attnscope-mo-button attnscope-mo-zoom-out", "Zoom out");
  const close = make("button", "attnscope-mo-button attnscope-mo-close", "Close");
  const status = make("span", "attnscope-mo-status");
  status.setAttribute("role", "status");
  bar.append(out, close, status);
  const queries = make("div", "attnscope-mo-queries"), keys = make("div", "attnscope-mo-keys");
  const area = make("div", "attnscope-mo-area");
  const canvas = document.createElement("canvas");
  canvas.className = "attnscope-mo-detail-canvas";
  const box = make("div", "attnscope-mo-box");
  box.hidden = true;
  area.append(canvas, box);
  const body = make("div", "attnscope-mo-detail-body");
  body.append(make("div", "attnscope-mo-detail-corner"), keys, queries, area);
  panel.append(title, bar, body);
  const tooltip = make("div", "attnscope-mo-tooltip");
  tooltip.hidden = true;
  /** @type {Detail} */
  const d = { panel, title, status, queries, keys, area, canvas, box, tooltip, drag: null, dispose: () => {} };
  out.addEventListener("click", () => zoomOut(v));
  close.addEventListener("click", () => closeHead(v));
  d.dispose = wirePointer(v, d);
  return d;
}

/** Open kept layer `l`, head `h`, whole (or at `region`, [q0, q1, k0, k1]). @param {OverviewView} v @param {number} l @param {number} h @param {number[] | null} [region] @param {boolean} [write] */
export function openHead(v, l, h, region = null, write = true) {
  v.state.open = { layer: l, head: h };
  v.state.zooms = region ? [region] : [];
  v.detail.panel.hidden = false;
  v.grid.cells.forEach((cell, i) => cell.classList.toggle("attnscope-mo-open", i === l * shownStack(v).heads + h));
  showCurrent(v, write);
  if (write) {
    v.detail.panel.scrollIntoView({ block: "nearest" });
    v.detail.panel.focus({ preventScroll: true });
  }
}

/** Close the enlarged head. @param {OverviewView} v @param {boolean} [write] */
export function closeHead(v, write = true) {
  const open = v.state.open;
  v.state.open = null;
  v.state.zooms = [];
  v.state.region = null;
  v.detail.panel.hidden = true;
  v.detail.tooltip.hidden = true;
  v.grid.cells.forEach((cell) => cell.classList.remove("attnscope-mo-open"));
  if (write) saveTraits(v);
  if (open && write) v.grid.cells[open.layer * shownStack(v).heads + open.head]?.focus();
}

/** Zoom into [q0, q1) × [k0, k1). @param {OverviewView} v @param {number[]} region @param {boolean} [write] */
export function zoomTo(v, region, write = true) {
  v.state.zooms.push(region);
  showCurrent(v, write);
}

/** Back to the previous region; from the whole head, close it. @param {OverviewView} v */
export function zoomOut(v) {
  if (!v.state.open) return;
  if (!v.state.zooms.length) { closeHead(v); return; }
  v.state.zooms.pop();
  showCurrent(v, true);
}

/** The current region of the open head as [q0, q1, k0, k1]. @param {OverviewView} v */
function currentBounds(v) {
  const s = shownStack(v);
  return v.state.zooms.at(-1) ?? [0, s.query, 0, s.key];
}

/**
 * Show the open head's current region: cut from the carried levels now, then (with Python) asked for exactly.
 * @param {OverviewView} v @param {boolean} write
 */
function showCurrent(v, write) {
  const { state, detail } = v;
  if (!state.open) return;
  const s = shownStack(v);
  const [q0, q1, k0, k1] = currentBounds(v);
  const needed = neededBlock(q1 - q0, k1 - k0, v.header.cells);
  const { level, coarser } = chooseLevel(levelsOf(v), needed);
  state.region = regionOfLevel(level, state.open.layer, state.open.head, s.heads, [q0, q1], [k0, k1], s.query, s.key);
  drawRegion(v);
  detail.status.removeAttribute("data-error");
  if (hasKernel(v)) {
    state.asked += 1;
    detail.panel.dataset.pending = "true";
    detail.status.textContent = "computing the exact weights in Python…";
    v.model.send({
      type: ZOOM_MESSAGE, id: state.asked, stack: state.stack, layer: s.layer_labels[state.open.layer],
      head: s.head_labels[state.open.head], rows: [q0, q1], cols: [k0, k1],
    });
  } else {
    detail.panel.dataset.pending = "false";
    detail.status.textContent = coarser
      ? `This file carries cells down to ${level.block} × ${level.block} tokens; zooming closer needs Python: ` +
        "show the view in a notebook (attnscope.model_view)."
      : level.block === 1 ? "Weights decoded from bytes (within 0.002); exact ones need Python." : "";
  }
  if (write) saveTraits(v);
}

/** Python's reply to a zoom: the latest request's region drawn exactly, or its error shown. @param {OverviewView} v @param {any} msg @param {any[]} buffers */
export function receiveZoom(v, msg, buffers) {
  if (!msg || msg.type !== ZOOM_MESSAGE || msg.id !== v.state.asked || !v.state.open) return;
  const { detail } = v;
  detail.panel.dataset.pending = "false";
  if (msg.error) {
    detail.status.textContent = `Python could not zoom: ${msg.error}`;
    detail.status.dataset.error = "true";
    return;
  }
  v.state.region = regionOfReply(msg, buffers ?? []);
  detail.status.textContent = "";
  drawRegion(v);
}

/** Bytes of the region's shown plane: max as byte = weight × 255, mean relative to its largest cell. @param {Region} region @param {string} pooling */
function regionBytes(region, pooling) {
  const values = pooling === "mean" && region.mean ? region.mean : region.max;
  let top = 1;
  if (values !== region.max) top = values.reduce((a, b) => Math.max(a, b), 0) || 1;
  return Uint8Array.from(values, (x) => Math.round(Math.min(1, Math.max(0, x / top)) * 255));
}

/** Draw the current region: canvas, labels at single tokens, title and data attributes. @param {OverviewView} v */
export function drawRegion(v) {
  const { state, detail } = v;
  const region = state.region;
  if (!region || !state.open) return;
  const [down, across] = region.shape;
  const tokens = region.block === 1;
  const px = tokens ? Math.max(TOKEN_PX, Math.floor(DETAIL / Math.max(down, across))) : Math.max(1, Math.floor(DETAIL / Math.max(down, across)));
  const canvas = detail.canvas;
  canvas.width = across * px;
  canvas.height = down * px;
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  const image = ctx.createImageData(canvas.width, canvas.height);
  paintCells(image, 0, 0, regionBytes(region, state.pooling), 0, down, across, px, rgbOf(colourOf(v, state.open.head)));
  ctx.putImageData(image, 0, 0);
  v.root.style.setProperty("--attnscope-mo-token", `${px}px`);
  drawLabels(v, tokens ? region : null);
  const s = shownStack(v);
  const span = (/** @type {number[]} */ r) => `${r[0].toLocaleString()}–${(r[1] - 1).toLocaleString()}`;
  detail.title.textContent = `${headName(v, state.open.layer, state.open.head)} · queries ${span(region.rows)} × keys ${span(region.cols)} · ${poolingText(state.pooling, region.block)}`;
  detail.title.style.setProperty("--attnscope-head", colourOf(v, state.open.head));
  Object.assign(detail.panel.dataset, {
    layer: String(s.layer_labels[state.open.layer]), head: String(s.head_labels[state.open.head]),
    rows: `${region.rows[0]}:${region.rows[1]}`, cols: `${region.cols[0]}:${region.cols[1]}`,
    block: String(region.block), kind: region.kind, exact: String(region.exact), px: String(px),
  });
}

/** Token labels beside and above the region at single tokens; none otherwise. @param {OverviewView} v @param {Region | null} region */
function drawLabels(v, region) {
  const { detail } = v;
  const s = shownStack(v);
  const label = (/** @type {string} */ side, /** @type {string} */ seq, /** @type {number} */ i) => {
    const sequence = v.header.sequences[seq];
    const el = make("span", "attnscope-mo-token", shown(sequence.tokens[i]));
    if (sequence.special[i]) el.classList.add("attnscope-mo-special");
    Object.assign(el.dataset, { side, index: String(i) });
    el.title = `${side} ${i}`;
    return el;
  };
  const range = (/** @type {number[]} */ r) => Array.from({ length: r[1] - r[0] }, (_, n) => r[0] + n);
  detail.queries.replaceChildren(...(region ? range(region.rows).map((i) => label("query", s.query_tokens, i)) : []));
  detail.keys.replaceChildren(...(region ? range(region.cols).map((i) => label("key", s.key_tokens, i)) : []));
}

/** The region's cell under a pointer event, clamped inside it. @param {Detail} d @param {Region} region @param {MouseEvent} event */
function cellAt(d, region, event) {
  const rect = d.canvas.getBoundingClientRect();
  const px = rect.width / region.shape[1];
  const r = Math.min(region.shape[0] - 1, Math.max(0, Math.floor((event.clientY - rect.top) / px)));
  const c = Math.min(region.shape[1] - 1, Math.max(0, Math.floor((event.clientX - rect.left) / px)));
  return { r, c };
}

/** Token positions of cells r0..r1 × c0..c1 (inclusive) of a region. @param {Region} region @param {number} r0 @param {number} r1 @param {number} c0 @param {number} c1 */
function cellTokens(region, r0, r1, c0, c1) {
  const b = region.block;
  return [
    region.rows[0] + r0 * b, Math.min(region.rows[1], region.rows[0] + (r1 + 1) * b),
    region.cols[0] + c0 * b, Math.min(region.cols[1], region.cols[0] + (c1 + 1) * b),
  ];
}

/** The region a click on cell (r, c) zooms to: 1/ZOOM of each side around it, at least single tokens' worth. @param {OverviewView} v @param {Region} region @param {number} r @param {number} c */
function clickRegion(v, region, r, c) {
  const cells = v.header.cells;
  const [q0, q1, k0, k1] = cellTokens(region, r, r, c, c);
  const side = (/** @type {number} */ n) => (n <= cells ? n : Math.max(Math.ceil(n / ZOOM), cells));
  const around = (/** @type {number} */ centre, /** @type {number} */ n, /** @type {number[]} */ within) => {
    const start = Math.min(Math.max(within[0], Math.round(centre - n / 2)), within[1] - n);
    return [start, start + n];
  };
  const rows = around((q0 + q1) / 2, side(region.rows[1] - region.rows[0]), region.rows);
  const cols = around((k0 + k1) / 2, side(region.cols[1] - region.cols[0]), region.cols);
  return [rows[0], rows[1], cols[0], cols[1]];
}

/**
 * Hover shows a cell's values; a click zooms around a cell; a drag zooms to a rectangle. Returns what removes
 * the window's listener (a drag may end outside the canvas).
 * @param {OverviewView} v @param {Detail} d @returns {() => void}
 */
function wirePointer(v, d) {
  d.canvas.addEventListener("mousedown", (event) => {
    if (!v.state.region || v.state.region.block === 1) return;
    event.preventDefault();
    d.drag = cellAt(d, v.state.region, event);
  });
  d.canvas.addEventListener("mousemove", (event) => {
    const region = v.state.region;
    if (!region) return;
    const at = cellAt(d, region, event);
    showTip(v, d, region, at.r, at.c, event);
    if (d.drag) showBox(d, region, d.drag, at);
  });
  d.canvas.addEventListener("mouseleave", () => { d.tooltip.hidden = true; highlight(d, null, null); });
  const up = (/** @type {MouseEvent} */ event) => {
    const start = d.drag, region = v.state.region;
    d.drag = null;
    d.box.hidden = true;
    if (!start || !region) return;
    const end = cellAt(d, region, event);
    if (start.r === end.r && start.c === end.c) zoomTo(v, clickRegion(v, region, end.r, end.c));
    else zoomTo(v, cellTokens(region, Math.min(start.r, end.r), Math.max(start.r, end.r), Math.min(start.c, end.c), Math.max(start.c, end.c)));
  };
  window.addEventListener("mouseup", up);
  return () => window.removeEventListener("mouseup", up);
}

/** The dragged rectangle from cell `a` to cell `b`. @param {Detail} d @param {Region} region @param {{ r: number, c: number }} a @param {{ r: number, c: number }} b */
function showBox(d, region, a, b) {
  const px = d.canvas.getBoundingClientRect().width / region.shape[1];
  Object.assign(d.box.style, {
    left: `${Math.min(a.c, b.c) * px}px`, top: `${Math.min(a.r, b.r) * px}px`,
    width: `${(Math.abs(a.c - b.c) + 1) * px}px`, height: `${(Math.abs(a.r - b.r) + 1) * px}px`,
  });
  d.box.hidden = false;
}

/** The tooltip for cell (r, c): its tokens and weight, or its token ranges and pooled values. @param {OverviewView} v @param {Detail} d @param {Region} region @param {number} r @param {number} c @param {MouseEvent} event */
function showTip(v, d, region, r, c, event) {
  const s = shownStack(v);
  const i = r * region.shape[1] + c;
  const [q0, q1, k0, k1] = cellTokens(region, r, r, c, c);
  d.tooltip.replaceChildren();
  if (region.block === 1) {
    const q = v.header.sequences[s.query_tokens].tokens[q0], k = v.header.sequences[s.key_tokens].tokens[k0];
    d.tooltip.append(make("div", "attnscope-mo-tip-title", `query ${q0} “${shown(q)}” → key ${k0} “${shown(k)}”`));
    const weight = make("div", "attnscope-mo-weight", `weight ${valueText(region.max[i], region.exact)}`);
    Object.assign(weight.dataset, { weight: valueText(region.max[i], region.exact), query: String(q0), key: String(k0) });
    d.tooltip.append(weight);
    highlight(d, q0, k0);
  } else {
    d.tooltip.append(make("div", "attnscope-mo-tip-title", `queries ${q0}–${q1 - 1} × keys ${k0}–${k1 - 1}`));
    const values = make("div", "attnscope-mo-weight", `max ${valueText(region.max[i], region.exact)}` +
      (region.mean ? `, mean ${valueText(region.mean[i], region.exact)}` : ""));
    Object.assign(values.dataset, { max: valueText(region.max[i], region.exact), mean: region.mean ? valueText(region.mean[i], region.exact) : "" });
    d.tooltip.append(values, make("div", "attnscope-mo-tip-hint", "click: zoom in here; drag: zoom to a rectangle"));
  }
  const host = v.root.getBoundingClientRect();
  d.tooltip.style.left = `${event.clientX - host.left + 14}px`;
  d.tooltip.style.top = `${event.clientY - host.top + 14}px`;
  d.tooltip.hidden = false;
}

/** Mark the hovered query and key labels. @param {Detail} d @param {number | null} q @param {number | null} k */
function highlight(d, q, k) {
  for (const el of d.panel.querySelectorAll(".attnscope-mo-token.attnscope-mo-active")) el.classList.remove("attnscope-mo-active");
  if (q !== null) d.queries.querySelector(`[data-index="${q}"]`)?.classList.add("attnscope-mo-active");
  if (k !== null) d.keys.querySelector(`[data-index="${k}"]`)?.classList.add("attnscope-mo-active");
}
