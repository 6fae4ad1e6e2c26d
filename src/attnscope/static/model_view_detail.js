// @ts-check
/**
 * The model view's enlarged thumbnail: one head drawn bigger, in the grid's style, with its tokens
 * (queries on the left; keys on the right for lines, on top for a matrix). Hovering a token (or a
 * matrix cell) shows its exact weights in a tooltip (items carry data-position and data-weight);
 * in the lines style only the hovered token's lines stay; a causal stack greys the keys after the
 * hovered query, and a causal matrix shades the cells no query can see. Imported by model_view.js.
 */

import { make, SCALE, shown } from "./common.js";
import { fitLabels } from "./contrast.js";
import { collectMarks, minDrawnByte, paintLines, paintMatrix, rgbOf } from "./raster.js";
/** @import { Marks, Scratch } from "./raster.js" */

const DETAIL_WIDTH = 220; // CSS px between the token columns (lines)
const DETAIL_HEIGHT = 2400; // CSS px the token rows aim at (lines), 6 to 18 px a row
const MATRIX_SIZE = 640; // CSS px the matrix aims at, 1 to 20 px a token
const LABEL_MIN = 9; // matrix token labels are shown when a token gets at least this many px
const TOP_WEIGHTS = 10; // weights listed in the tooltip, strongest first

/**
 * What the enlarged view needs from the model view.
 * @typedef {{ side: string, index: number, key?: number }} Hover sequence positions
 * @typedef {object} DetailHost
 * @property {HTMLElement} root
 * @property {{ stack: string, threshold: number, open: { layer: number, head: number } | null, hover: Hover | null }} state
 * @property {() => any} stack the current stack's header, as the grid shows it (one head for a combination)
 * @property {() => Record<string, any>} sequences the sequences as the grid shows them (tokens, or words)
 * @property {(h: number) => string} colour the colour of the grid's head h
 * @property {(h: number) => string} name how the grid's head h is named ("head 3", "Rollout")
 * @property {() => string} style "lines" or "matrix"
 * @property {() => { rows: number[], cols: number[] }} positions kept query and key positions
 * @property {(layer: number) => Uint8Array | null} bytes a layer of the current stack
 * @property {Marks} marks
 * @property {Scratch} scratch
 * @property {() => void} hovered called after the hovered token changes
 * @property {() => void} close
 *
 * @typedef {object} DetailView the enlarged view's own context, passed to the functions below
 * @property {DetailHost} host
 * @property {HTMLElement} panel
 * @property {HTMLElement} tooltip
 * @property {{ x: number, y: number }} pointer the pointer's last client position
 * @property {number} unit CSS px of a token row (lines) or a matrix cell, as last drawn
 *
 * @typedef {ReturnType<typeof createDetail>} Detail what the model view uses of the enlarged view
 */

/** The enlarged view's panel and tooltip (hidden) and what the model view calls. @param {DetailHost} host */
export function createDetail(host) {
  const panel = make("div", "attnscope-mv-detail");
  panel.hidden = true;
  panel.tabIndex = -1; // a click inside keeps the keyboard focus in the view, so Escape still closes it
  const tooltip = make("div", "attnscope-mv-tooltip");
  tooltip.setAttribute("role", "tooltip");
  tooltip.hidden = true;
  /** @type {DetailView} */
  const d = { host, panel, tooltip, pointer: { x: 0, y: 0 }, unit: 1 };
  return {
    panel,
    tooltip,
    build: () => build(d),
    draw: () => draw(d),
    refresh: () => refresh(d),
    follow: (/** @type {MouseEvent} */ event) => follow(d, event),
    hide: () => hide(d),
  };
}

/** The open head: a title, a close button, token labels around a canvas. @param {DetailView} d */
function build(d) {
  const { host, panel } = d;
  const state = host.state;
  const s = host.stack();
  const open = /** @type {{layer: number, head: number}} */ (state.open);
  state.hover = null;
  const close = make("button", "attnscope-mv-button attnscope-mv-close", "×");
  close.title = "Close (Escape)";
  close.addEventListener("click", () => host.close());
  const title = make("div", "attnscope-mv-detail-title",
    `${state.stack} layer ${s.layer_labels[open.layer]}, ${host.name(open.head)}`);
  title.style.setProperty("--attnscope-head", host.colour(open.head));
  const { rows, cols } = host.positions();
  const queries = tokenColumn(d, s.query_tokens, rows, "query");
  const keys = tokenColumn(d, s.key_tokens, cols, "key");
  const picture = document.createElement("canvas");
  picture.className = "attnscope-mv-detail-canvas";
  const body = make("div", `attnscope-mv-detail-body attnscope-mv-detail-${host.style()}`);
  if (host.style() === "lines") body.append(queries, picture, keys);
  else {
    picture.addEventListener("mousemove", (event) => hoverCell(d, event, rows, cols));
    picture.addEventListener("mouseleave", () => setHover(d, null));
    body.append(make("div", "attnscope-mv-corner"), keys, queries, picture);
  }
  panel.replaceChildren(close, title, body);
  panel.hidden = false;
  draw(d);
  fitLabels(panel.querySelectorAll(".attnscope-mv-token"));
}

/** @param {DetailView} d @param {string} sequence @param {number[]} kept @param {string} side */
function tokenColumn(d, sequence, kept, side) {
  const seq = d.host.sequences()[sequence];
  const column = make("div", `attnscope-mv-tokens attnscope-mv-${side === "query" ? "queries" : "keys"}`);
  for (const i of kept) {
    const node = make("div", "attnscope-mv-token", shown(seq.tokens[i]));
    Object.assign(node.dataset, { side, index: String(i) });
    node.title = `${side} ${i}`;
    if (seq.special[i]) node.classList.add("attnscope-mv-special");
    if (seq.continues?.[i]) node.classList.add("attnscope-mv-continuation");
    node.addEventListener("mouseenter", () => setHover(d, { side, index: i }));
    node.addEventListener("mouseleave", () => setHover(d, null));
    column.append(node);
  }
  return column;
}

/** The open head's marks: all of them, or only the hovered token's lines in the lines style. @param {DetailHost} host */
function collect(host) {
  const state = host.state;
  const s = host.stack();
  const open = /** @type {{layer: number, head: number}} */ (state.open);
  const bytes = host.bytes(open.layer);
  const { rows, cols } = host.positions();
  if (!bytes) return { rows, cols, count: 0 };
  const offset = open.head * s.query * s.key;
  const minByte = minDrawnByte(state.threshold);
  const hv = host.style() === "lines" ? state.hover : null;
  const fromQuery = hv?.side === "query";
  const at = hv ? (fromQuery ? rows : cols).indexOf(hv.index) : -1;
  if (!hv || at < 0) return { rows, cols, count: collectMarks(bytes, offset, s.key, rows, cols, minByte, host.marks) };
  const count = collectMarks(bytes, offset, s.key, fromQuery ? [hv.index] : rows, fromQuery ? cols : [hv.index], minByte, host.marks);
  (fromQuery ? host.marks.row : host.marks.col).fill(at, 0, count); // back to its place among the kept tokens
  return { rows, cols, count };
}

/** Draw the open head into the panel's canvas, sized to its tokens. @param {DetailView} d */
function draw(d) {
  const { host, panel } = d;
  const picture = /** @type {HTMLCanvasElement | null} */ (panel.querySelector(".attnscope-mv-detail-canvas"));
  if (!picture || !host.state.open) return;
  const { rows, cols, count } = collect(host);
  const ratio = window.devicePixelRatio || 1;
  const n = Math.max(rows.length, cols.length, 1);
  const lines = host.style() === "lines";
  const unit = d.unit = lines ? Math.max(6, Math.min(18, Math.floor(DETAIL_HEIGHT / n))) : Math.max(1, Math.min(20, Math.floor(MATRIX_SIZE / n)));
  const cssWidth = lines ? DETAIL_WIDTH : cols.length * unit;
  const cssHeight = lines ? n * unit : rows.length * unit;
  panel.style.setProperty("--attnscope-mv-row", `${unit}px`);
  panel.classList.toggle("attnscope-mv-no-labels", !lines && unit < LABEL_MIN);
  picture.width = Math.max(1, Math.round(cssWidth * ratio));
  picture.height = Math.max(1, Math.round(cssHeight * ratio));
  picture.style.width = `${cssWidth}px`;
  picture.style.height = `${cssHeight}px`;
  const ctx = /** @type {CanvasRenderingContext2D} */ (picture.getContext("2d"));
  const image = ctx.createImageData(picture.width, picture.height);
  const rgb = rgbOf(host.colour(host.state.open.head));
  if (count && lines) paintLines(image, 0, 0, picture.width, picture.height, host.marks, unit * ratio, unit * ratio, rgb, host.scratch);
  else if (count) paintMatrix(image, 0, 0, picture.width, picture.height, host.marks, rows.length, cols.length, rgb, host.scratch);
  ctx.putImageData(image, 0, 0);
  if (!lines && host.stack().causal) greyFuture(host.root, ctx, rows, cols, unit * ratio);
  host.root.dataset.detailDrawn = String(count);
}

/**
 * Shade the cells of a causal matrix whose key comes after the query (the model cannot attend there).
 * @param {HTMLElement} root @param {CanvasRenderingContext2D} ctx @param {number[]} rows @param {number[]} cols @param {number} size
 */
function greyFuture(root, ctx, rows, cols, size) {
  ctx.fillStyle = getComputedStyle(root).getPropertyValue("--attnscope-mv-future").trim() || "rgba(128,128,128,0.25)";
  rows.forEach((i, r) => {
    const first = cols.findIndex((j) => j > i);
    if (first >= 0) ctx.fillRect(first * size, r * size, (cols.length - first) * size, size);
  });
}

/** @param {DetailView} d @param {MouseEvent} event @param {number[]} rows @param {number[]} cols */
function hoverCell(d, event, rows, cols) {
  const r = Math.floor(event.offsetY / d.unit), c = Math.floor(event.offsetX / d.unit);
  if (r < 0 || c < 0 || r >= rows.length || c >= cols.length) return;
  follow(d, event);
  const hv = d.host.state.hover;
  if (!hv || hv.index !== rows[r] || hv.key !== cols[c]) setHover(d, { side: "query", index: rows[r], key: cols[c] });
}

/** @param {DetailView} d @param {Hover | null} hover */
function setHover(d, hover) {
  d.host.state.hover = hover;
  if (d.host.style() === "lines") draw(d);
  refresh(d);
  d.host.hovered();
}

/** Mark the hovered token (and, for a causal stack, the keys after a hovered query); fill the tooltip. @param {DetailView} d */
function refresh(d) {
  const hv = d.host.state.hover;
  const causal = d.host.stack().causal;
  for (const node of /** @type {NodeListOf<HTMLElement>} */ (d.panel.querySelectorAll(".attnscope-mv-token"))) {
    const i = Number(node.dataset.index);
    const key = node.dataset.side === "key";
    node.classList.toggle("attnscope-mv-active", !!hv && ((hv.side === node.dataset.side && hv.index === i) || (key && hv.key === i)));
    node.classList.toggle("attnscope-mv-future", !!hv && causal && key && hv.side === "query" && i > hv.index);
  }
  fitLabels(d.panel.querySelectorAll(".attnscope-mv-token"));
  showTooltip(d);
}

/** The hovered token's weights (strongest first) and, on a matrix cell, that cell's weight. @param {DetailView} d */
function showTooltip(d) {
  const { host, tooltip } = d;
  const { state: { hover: hv, open } } = host;
  const s = host.stack();
  const bytes = open && host.bytes(open.layer);
  if (!hv || !open || !bytes) { tooltip.hidden = true; return; }
  const offset = open.head * s.query * s.key;
  const at = (/** @type {number} */ q, /** @type {number} */ k) => bytes[offset + q * s.key + k];
  const fromQuery = hv.side === "query";
  const own = host.sequences()[fromQuery ? s.query_tokens : s.key_tokens].tokens;
  const other = host.sequences()[fromQuery ? s.key_tokens : s.query_tokens].tokens;
  tooltip.replaceChildren(make("div", "attnscope-mv-tip-title",
    `${hv.side} ${hv.index} “${shown(own[hv.index])}”, layer ${s.layer_labels[open.layer]}, ${host.name(open.head)}` +
    (fromQuery ? ": weights on keys" : ": weights from queries")));
  if (hv.key !== undefined) {
    const byte = at(hv.index, hv.key);
    const cell = make("div", "attnscope-mv-cell-weight", `→ key ${hv.key} “${shown(other[hv.key])}”: ${(byte / SCALE).toFixed(3)}`);
    Object.assign(cell.dataset, { query: String(hv.index), position: String(hv.key), weight: String(byte / SCALE) });
    tooltip.append(cell);
  }
  const { rows, cols } = host.positions();
  const minByte = minDrawnByte(host.state.threshold);
  const entries = (fromQuery ? cols : rows)
    .map((o) => [o, fromQuery ? at(hv.index, o) : at(o, hv.index)])
    .filter(([, byte]) => byte >= minByte)
    .sort((a, b) => b[1] - a[1]);
  const list = make("div", "attnscope-mv-tip-weights");
  for (const [o, byte] of entries.slice(0, TOP_WEIGHTS)) {
    const item = make("span", "attnscope-mv-weight", `${shown(other[o])} ${(byte / SCALE).toFixed(3)}`);
    Object.assign(item.dataset, { position: String(o), weight: String(byte / SCALE) });
    list.append(item);
  }
  if (entries.length > TOP_WEIGHTS) list.append(make("span", "attnscope-mv-more", `+${entries.length - TOP_WEIGHTS} more`));
  tooltip.append(list);
  tooltip.hidden = false;
  place(d);
}

/** Keep the tooltip beside the pointer, inside the view. @param {DetailView} d @param {MouseEvent} event */
function follow(d, event) {
  d.pointer = { x: event.clientX, y: event.clientY };
  if (!d.tooltip.hidden) place(d);
}

/** @param {DetailView} d */
function place(d) {
  const { tooltip, pointer } = d;
  const box = d.host.root.getBoundingClientRect();
  const left = Math.min(pointer.x - box.left + 14, box.width - tooltip.offsetWidth);
  tooltip.style.left = `${Math.max(0, left)}px`;
  tooltip.style.top = `${pointer.y - box.top + 14}px`;
}

/** @param {DetailView} d */
function hide(d) {
  d.host.state.hover = null;
  d.panel.hidden = true;
  d.tooltip.hidden = true;
}
