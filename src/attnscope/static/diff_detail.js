// @ts-check
/**
 * The diff view's open head: head (layer, head) of A, the head of B it is set against (its matched head at
 * first) and their A − B, side by side, one cell per pixel of each canvas (scaled up without smoothing),
 * labelled with the alignment's units when they fit; buttons switch B's head among the matched one, the same
 * place (equal shapes) and the nearest ones; hovering a cell reads out both weights and the difference.
 * Imported by diff_view.js; diff_export.js reads its canvases.
 */

import { make } from "./common.js";
import { paintHead } from "./diff_paint.js";
import { distanceOf, headBytes, headName, matchedOf, partnerOf, shapeOf } from "./diff_state.js";
/** @import { DiffView } from "./diff_state.js" */

const PANEL = 300; // px of the largest panel
const LABELLED = 10; // px per cell from which the units are written along the panels

/** The detail's elements, put into `host`. @param {HTMLElement} host @returns {DiffView["detail"]} */
export function createDetail(host) {
  const box = make("div", "attnscope-dv-detail");
  const title = make("div", "attnscope-dv-detail-title");
  const partners = make("div", "attnscope-dv-partners");
  const panels = make("div", "attnscope-dv-panels");
  const readout = make("div", "attnscope-dv-readout", " ");
  const canvases = [], captions = [], labels = [];
  for (const kind of ["a", "b", "diff"]) {
    const panel = make("figure", `attnscope-dv-panel attnscope-dv-panel-${kind}`);
    const caption = make("figcaption", "attnscope-dv-panel-caption");
    const canvas = /** @type {HTMLCanvasElement} */ (make("canvas", "attnscope-dv-cells"));
    canvas.dataset.kind = kind;
    const rowLabels = make("div", "attnscope-dv-row-labels"), colLabels = make("div", "attnscope-dv-col-labels");
    const body = make("div", "attnscope-dv-panel-body");
    body.append(rowLabels, canvas, make("span", ""), colLabels);
    panel.append(caption, body);
    panels.append(panel);
    canvases.push(canvas);
    captions.push(caption);
    labels.push(rowLabels, colLabels);
  }
  box.append(title, partners, panels, readout);
  box.hidden = true;
  host.append(box);
  return { box, canvases, captions, partners, readout, labels: [title, ...labels] };
}

/** Draw the open head (hidden when none is open); false while a layer is missing. @param {DiffView} v */
export function drawDetail(v) {
  const { layer, head } = v.state;
  const pair = partnerOf(v);
  const d = v.detail;
  d.box.hidden = layer === null || head === null || pair === null;
  if (layer === null || head === null || pair === null) return true;
  const a = headBytes(v, "a", layer, head), b = headBytes(v, "b", pair[0], pair[1]);
  if (!a || !b) return false;
  const images = [paintHead(a, null, v.u, v.tables.weight), paintHead(b, null, v.u, v.tables.weight), paintHead(a, b, v.u, v.tables.difference)];
  const size = Math.min(PANEL, Math.max(1, Math.floor(PANEL / v.u)) * v.u);
  images.forEach((image, i) => {
    const canvas = d.canvases[i];
    canvas.width = v.u;
    canvas.height = v.u;
    canvas.style.width = canvas.style.height = `${size}px`;
    /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d")).putImageData(image, 0, 0);
  });
  writeCaptions(v, layer, head, pair);
  writeLabels(v, size);
  writePartners(v, layer, head, pair);
  Object.assign(v.root.dataset, { layer: String(layer), head: String(head), partner: headName(pair[0], pair[1]) });
  return true;
}

/** @param {DiffView} v @param {number} layer @param {number} head @param {number[]} pair */
function writeCaptions(v, layer, head, pair) {
  const h = v.header;
  const distance = distanceOf(v, layer, head, pair[0], pair[1]);
  const [title, ...captions] = [v.detail.labels[0], ...v.detail.captions];
  title.textContent = `Head ${headName(layer, head)} of A against head ${headName(pair[0], pair[1])} of B` +
    (distance === null ? "" : `: ${distance.toFixed(4)} bits`);
  captions[0].textContent = `A ${headName(layer, head)} · ${h.model_a}`;
  captions[1].textContent = `B ${headName(pair[0], pair[1])} · ${h.model_b}`;
  captions[2].textContent = `A − B (±${(h.limit_code / 255).toFixed(3)})`;
}

/** The units along each panel: query rows at its left, key columns below it, when a cell is tall enough. @param {DiffView} v @param {number} size */
function writeLabels(v, size) {
  const cell = size / v.u;
  const units = v.header.units;
  for (let i = 1; i < v.detail.labels.length; i++) {
    const host = v.detail.labels[i];
    host.replaceChildren();
    host.hidden = cell < LABELLED;
    if (host.hidden) continue;
    const column = host.classList.contains("attnscope-dv-col-labels");
    host.style.setProperty("--attnscope-dv-cell", `${cell}px`);
    units.forEach((/** @type {string} */ unit, /** @type {number} */ n) => {
      const label = make("span", "attnscope-dv-unit", unit);
      label.dataset.index = String(n);
      if (!v.header.rows[n] && !column) label.classList.add("attnscope-dv-unit-dropped");
      host.append(label);
    });
  }
}

/** Buttons that set B's head: the matched one, the same place, the nearest ones. @param {DiffView} v @param {number} layer @param {number} head @param {number[]} pair */
function writePartners(v, layer, head, pair) {
  const [lb, hb, md, how] = matchedOf(v, layer, head);
  /** @type {[string, number, number, number | null][]} */
  const choices = [[how === "matched" ? "matched" : "nearest (unmatched)", lb, hb, md]];
  const [layersB, headsB] = shapeOf(v, "b");
  if (layer < layersB && head < headsB) choices.push(["same place", layer, head, distanceOf(v, layer, head, layer, head)]);
  v.header.nearest[layer][head].forEach((/** @type {number[]} */ p, /** @type {number} */ i) =>
    choices.push([`nearest ${i + 1}`, p[0], p[1], v.header.nearest_distances[layer][head][i]]));
  const seen = new Set();
  v.detail.partners.replaceChildren(make("span", "attnscope-dv-note", "B's head:"));
  for (const [label, l, h, d] of choices) {
    if (seen.has(`${l}-${h}`)) continue;
    seen.add(`${l}-${h}`);
    const button = make("button", "attnscope-dv-partner", `${label}: ${headName(l, h)}` + (d === null ? "" : ` (${d.toFixed(3)})`));
    Object.assign(button.dataset, { layer: String(l), head: String(h) });
    button.setAttribute("aria-pressed", String(l === pair[0] && h === pair[1]));
    v.detail.partners.append(button);
  }
}

/** What the cell under the pointer holds, as text. @param {DiffView} v @param {MouseEvent} event */
export function readCell(v, event) {
  const canvas = /** @type {HTMLCanvasElement} */ (event.target);
  const pair = partnerOf(v);
  if (v.state.layer === null || v.state.head === null || pair === null) return "";
  const q = Math.floor((event.offsetY / canvas.clientHeight) * v.u), k = Math.floor((event.offsetX / canvas.clientWidth) * v.u);
  const a = headBytes(v, "a", v.state.layer, v.state.head), b = headBytes(v, "b", pair[0], pair[1]);
  if (!a || !b || q < 0 || k < 0 || q >= v.u || k >= v.u) return "";
  const wa = a.bytes[a.offset + q * v.u + k] / 255, wb = b.bytes[b.offset + q * v.u + k] / 255;
  const units = v.header.units;
  const diff = wa - wb;
  return `${units[q]} → ${units[k]}: A ${wa.toFixed(3)}, B ${wb.toFixed(3)}, A − B ${diff >= 0 ? "+" : "−"}${Math.abs(diff).toFixed(3)}`;
}
