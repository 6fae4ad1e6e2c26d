// @ts-check
/**
 * attnscope diff view (B5): two models' attention over one text (views/diff.py, `attnscope.diff_view`). A grid of
 * every head as a heatmap over the aligned units, switchable between model A, model B and A − B, the per-head
 * distances beside it, and a click on a head opening it against its matched head of B (diff_detail.js). A − B is
 * coloured blue (B attends more), white (equal), orange (A attends more): a scale the red–green colour-blind read.
 *
 * Its default export `{ render }` is bundled with what it imports (diff_state.js, diff_palette.js, diff_paint.js,
 * diff_grids.js, diff_detail.js, diff_export.js, common.js) as static/bundles/diff_view.js: the widget's `_esm`
 * and the script the HTML export inlines. `render({ model, el })` reads:
 *   - "header": views/diff_payload.py's header (shapes, units, distances, matching, nearest, pairs, palettes)
 *   - "layers": { a: [layer, ...], b: [...] }, each (heads, u, u) uint8 row-major; weight = byte / 255
 *   - "mode" ("a" | "b" | "diff"), "layer" + "head" (the open head of A, or null), "partner" ([layer, head] of B,
 *     or null: the matched head), "layout" ("model" | "head"), "theme" ("auto" | "dark" | "light")
 * and writes back "mode", "layer", "head", "partner". The root exposes data-ready, data-mode, data-layer,
 * data-head, data-partner, data-limit-code, data-level and data-draw-ms (time of the last full draw).
 */

import { layerStore, make, readHeader } from "./common.js";
import { differenceTable, weightTable } from "./diff_palette.js";
import { createDetail, drawDetail, readCell } from "./diff_detail.js";
import { saveSvg, savePng } from "./diff_export.js";
import { buildDistances, createGrids, drawHeads, markOpen, wireGrids } from "./diff_grids.js";
import { allLayers, save, shapeOf } from "./diff_state.js";
/** @import { DiffView } from "./diff_state.js" */

const TRAITS = ["mode", "layer", "head", "partner", "layout", "theme"];

/** @param {{ model: any, el: HTMLElement }} args @returns {() => void} cleanup */
function render({ model, el }) {
  const v = createView(model);
  el.append(v.root);
  /** @type {(layer: number, head: number) => void} */
  const open = (layer, head) => { v.state.layer = layer; v.state.head = head; v.state.partner = null; save(v, { layer, head, partner: null }); draw(v); };
  wireGrids(v, open);
  wireControls(v, open);
  /** @type {[string, () => void][]} */
  const listeners = TRAITS.map((name) => [`change:${name}`, () => { /** @type {any} */ (v.state)[name] = model.get(name); draw(v); }]);
  for (const [event, callback] of listeners) model.on(event, callback);
  buildDistances(v);
  draw(v);
  return () => {
    v.store.dispose();
    for (const [event, callback] of listeners) model.off?.(event, callback);
  };
}

/** @param {any} model @returns {DiffView} */
function createView(model) {
  const header = readHeader(model);
  const root = make("div", "attnscope-dv");
  const state = { mode: "diff", layer: null, head: null, partner: null, layout: "model", theme: "auto" };
  for (const name of TRAITS) if (model.get(name) !== undefined) /** @type {any} */ (state)[name] = model.get(name);
  /** @type {any} */
  const v = { root, model, header, u: header.units.length, state };
  v.store = layerStore(model, () => draw(v));
  v.tables = { weight: weightTable(header.sequential), difference: differenceTable(header.diverging, header.limit_code) };
  root.append(controls(v), alignmentNote(header), legend(header));
  const views = make("div", "attnscope-dv-views");
  root.append(views);
  v.grid = createGrids(views);
  v.detail = createDetail(views);
  Object.assign(root.dataset, { ready: "false", limitCode: String(header.limit_code), level: header.level });
  return v;
}

/** Redraw what the state shows; marks the root ready once both sides' layers are all drawn. @param {DiffView} v */
function draw(v) {
  const start = performance.now();
  const { root, state } = v;
  Object.assign(root.dataset, { mode: state.mode, theme: state.theme, layout: state.layout });
  const modeSelect = /** @type {HTMLSelectElement | null} */ (root.querySelector(".attnscope-dv-mode"));
  if (modeSelect) modeSelect.value = state.mode;
  v.grid.box.hidden = state.layout !== "model";
  const drawn = allLayers(v) && (state.layout !== "model" || drawHeads(v)) && drawDetail(v);
  markOpen(v);
  syncHeadSelects(v);
  if (!drawn) return;
  root.dataset.drawMs = (performance.now() - start).toFixed(1);
  root.dataset.ready = "true";
}

/** The mode switch, the head layout's layer and head selectors, and the export buttons. @param {DiffView} v */
function controls(v) {
  const bar = make("div", "attnscope-dv-controls");
  const mode = /** @type {HTMLSelectElement} */ (make("select", "attnscope-dv-mode"));
  for (const [value, text] of [["a", `A: ${v.header.model_a}`], ["b", `B: ${v.header.model_b}`], ["diff", "A − B"]]) {
    const option = /** @type {HTMLOptionElement} */ (make("option", "", text));
    option.value = value;
    mode.append(option);
  }
  const label = make("label", "attnscope-dv-mode-label", "Show ");
  label.append(mode);
  const layer = /** @type {HTMLSelectElement} */ (make("select", "attnscope-dv-layer"));
  const head = /** @type {HTMLSelectElement} */ (make("select", "attnscope-dv-head"));
  const [layers, heads] = shapeOf(v, "a");
  for (let l = 0; l < layers; l++) layer.append(new Option(`layer ${l}`, String(l)));
  for (let h = 0; h < heads; h++) head.append(new Option(`head ${h}`, String(h)));
  const pick = make("span", "attnscope-dv-pick", "Head of A: ");
  pick.append(layer, head);
  const png = make("button", "attnscope-dv-button attnscope-dv-png", "PNG");
  const svg = make("button", "attnscope-dv-button attnscope-dv-svg", "SVG");
  bar.append(label, pick, png, svg);
  return bar;
}

/** @param {DiffView} v @param {(layer: number, head: number) => void} open */
function wireControls(v, open) {
  const q = (/** @type {string} */ s) => /** @type {HTMLElement} */ (v.root.querySelector(s));
  const mode = /** @type {HTMLSelectElement} */ (q(".attnscope-dv-mode"));
  mode.addEventListener("change", () => { v.state.mode = mode.value; save(v, { mode: mode.value }); draw(v); });
  const layer = /** @type {HTMLSelectElement} */ (q(".attnscope-dv-layer"));
  const head = /** @type {HTMLSelectElement} */ (q(".attnscope-dv-head"));
  const pick = () => open(Number(layer.value), Number(head.value));
  layer.addEventListener("change", pick);
  head.addEventListener("change", pick);
  q(".attnscope-dv-png").addEventListener("click", () => savePng(v));
  q(".attnscope-dv-svg").addEventListener("click", () => saveSvg(v));
  v.detail.partners.addEventListener("click", (event) => {
    const button = /** @type {HTMLElement} */ (event.target).closest(".attnscope-dv-partner");
    if (!(button instanceof HTMLElement)) return;
    v.state.partner = [Number(button.dataset.layer), Number(button.dataset.head)];
    save(v, { partner: v.state.partner });
    draw(v);
  });
  for (const canvas of v.detail.canvases) {
    canvas.addEventListener("mousemove", (event) => { v.detail.readout.textContent = readCell(v, event) || " "; });
  }
  v.root.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || v.state.layout !== "model") return;
    v.state.layer = v.state.head = null;
    save(v, { layer: null, head: null, partner: null });
    draw(v);
  });
}

/** @param {DiffView} v */
function syncHeadSelects(v) {
  const pick = /** @type {HTMLElement} */ (v.root.querySelector(".attnscope-dv-pick"));
  pick.hidden = v.state.layout !== "head";
  const layer = /** @type {HTMLSelectElement} */ (pick.querySelector(".attnscope-dv-layer"));
  const head = /** @type {HTMLSelectElement} */ (pick.querySelector(".attnscope-dv-head"));
  if (v.state.layer !== null) layer.value = String(v.state.layer);
  if (v.state.head !== null) head.value = String(v.state.head);
}

/** Which units are compared, and the positions of each model that could not be aligned. @param {any} header */
function alignmentNote(header) {
  const note = make("div", "attnscope-dv-alignment");
  const listed = (/** @type {{ position: number, token: string }[]} */ list) =>
    list.length ? list.map((x) => `${x.token} (${x.position})`).join(", ") : "none";
  const dropped = header.rows.filter((/** @type {boolean} */ r) => !r).length;
  note.append(
    make("div", "attnscope-dv-note", `${header.units.length} ${header.level === "word" ? "words" : "tokens"} aligned (${header.level} level); ` +
      `${header.stacks[0]} of A against ${header.stacks[1]} of B; distance: ${header.method}` +
      (dropped ? `; ${dropped} query rows left out of the distances (no weight left on aligned positions)` : "")),
    make("div", "attnscope-dv-unaligned attnscope-dv-unaligned-a", `Not aligned in A: ${listed(header.unaligned_a)}`),
    make("div", "attnscope-dv-unaligned attnscope-dv-unaligned-b", `Not aligned in B: ${listed(header.unaligned_b)}`));
  return note;
}

/** The A − B scale: a bar from −limit (blue) through 0 (white) to +limit (orange). @param {any} header */
function legend(header) {
  const box = make("div", "attnscope-dv-legend");
  const bar = /** @type {HTMLCanvasElement} */ (make("canvas", "attnscope-dv-scale"));
  const span = 2 * header.limit_code + 1; // byte differences −limit..+limit
  bar.width = span;
  bar.height = 1;
  const image = new ImageData(span, 1);
  const table = differenceTable(header.diverging, header.limit_code);
  new Uint32Array(image.data.buffer).set(table.subarray(255 - header.limit_code, 256 + header.limit_code));
  /** @type {CanvasRenderingContext2D} */ (bar.getContext("2d")).putImageData(image, 0, 0);
  const limit = (header.limit_code / 255).toFixed(3);
  box.append(make("span", "attnscope-dv-note", `A − B: B more −${limit}`), bar, make("span", "attnscope-dv-note", `+${limit} A more`));
  return box;
}

export default { render };
