// @ts-check
/**
 * attnscope model view (V2): every layer × head of one attention stack as a thumbnail, drawn into
 * one canvas with pixel writes (raster.js), in two styles: "lines" (BertViz-like, query tokens on the
 * left to key tokens on the right, opacity = weight) and "matrix" (a heatmap, query rows × key
 * columns). Click a thumbnail (or focus it and press Enter) to enlarge it with its tokens; hover a
 * token for its exact weights; Escape closes.
 *
 * Its default export `{ render }` is bundled with what it imports (its parts: model_view_state.js, the
 * context and what follows from the state; model_view_controls.js, model_view_grid.js, model_view_export.js,
 * model_view_traits.js, model_view_detail.js, the enlarged view; and common.js, contrast.js, attention_data.js,
 * raster.js) as static/bundles/model_view.js:
 * the widget's `_esm` (views/model.py) and the script the HTML export inlines. `render({ model, el })` reads:
 *   - "header": the payload header (attnscope/views/payload.py), with "head_labels" per stack
 *   - "layers": { role: [layer, ...] }, each (heads, query, key) uint8 row-major; weight = byte / 255
 *     Carried aggregations (B1) arrive the same way under "<role>/<method>" (rollout, value norms).
 *   - "stack", "thumbnails" ("auto" | "lines" | "matrix"), "filter", "hide_special", "merge_subwords"
 *     (words as units: subword rows averaged, columns summed, as in the head view), "threshold",
 *     "theme" ("auto" | "dark" | "light"), "layer" + "heads" (the enlarged cell, or null + []),
 *     "aggregation" ("raw", "mean" of the carried heads, or a carried one; see attention_data.js):
 *     aggregations that combine the heads show one thumbnail per layer, in the text colour
 * and writes the selection back with model.set(...) + model.save_changes(): "stack", "layer" and
 * "heads" (the enlarged cell's layer and [head], model numbers), "token" (hovered in the enlarged
 * view: { side, index } or, in a matrix, { side: "query", index, key }, with unit: "word" between words),
 * "thumbnails", "filter", "hide_special", "merge_subwords".
 * The root exposes what is drawn: data-cells, data-drawn (weights drawn in the grid), data-style,
 * data-stack, data-layer, data-head, data-filter, data-hide-special, data-units, data-aggregation,
 * data-detail-drawn, data-draw-ms.
 */

import { layerStore, make, readHeader, uniqueId } from "./common.js";
import { fitLabels, onThemeChange } from "./contrast.js";
import { createMarks, createScratch } from "./raster.js";
import { createDetail } from "./model_view_detail.js";
import { createControls, syncControls, wireControls } from "./model_view_controls.js";
import { buildGrid, createGrid, drawGrid, moveFocus } from "./model_view_grid.js";
import { fromPython, save, traitListeners } from "./model_view_traits.js";
import {
  colourOf, combined, headName, layerBytes, positions, shownSequences, shownStack, styleOf, pairStart,
} from "./model_view_state.js";
/** @import { ModelView, ModelViewState } from "./model_view_state.js" */

/**
 * @param {{ model: any, el: HTMLElement }} args
 * @returns {() => void} cleanup
 */
function render({ model, el }) {
  const v = createView(model);
  el.append(v.root);
  const act = actions(v);
  wireControls(v, act);
  v.root.addEventListener("keydown", (event) => onKey(v, event));
  v.root.addEventListener("mousemove", v.detail.follow);
  const listeners = traitListeners(v, act);
  for (const [event, callback] of Object.entries(listeners)) model.on(event, callback);

  buildGrid(v, act.openCell);
  drawGrid(v);
  refresh(v, false);
  fromPython(v, act);
  const stopRefit = onThemeChange(act.retheme);

  return () => {
    if (typeof model.off === "function") for (const [event, callback] of Object.entries(listeners)) model.off(event, callback);
    stopRefit();
    v.store.dispose();
    v.root.remove();
  };
}

/** The view's state as the model and the header set it first. @param {any} model @param {any} header @param {Record<string, any>} stacks @returns {ModelViewState} */
function initialState(model, header, stacks) {
  const initial = header.selection;
  return {
    stack: /** @type {string} */ (model.get("stack") in stacks ? model.get("stack") : initial.stack),
    style: /** @type {string} */ (model.get("thumbnails") ?? "auto"),
    filter: /** @type {string} */ (model.get("filter") ?? "all"),
    hideSpecial: Boolean(model.get("hide_special")),
    merge: Boolean(model.get("merge_subwords")),
    threshold: /** @type {number} */ (model.get("threshold") ?? header.threshold),
    aggregation: /** @type {string} */ (model.get("aggregation") || initial.aggregation || "raw"),
    open: null,
    hover: null,
  };
}

/** A new view's context: its state, its elements (not yet in the page, the grid not yet built) and its layer store. @param {any} model */
function createView(model) {
  const header = readHeader(model);
  /** @type {Record<string, any>} */
  const stacks = Object.fromEntries(header.stacks.map((/** @type {any} */ s) => [s.role, s]));
  const root = make("div", "attnscope-mv");
  root.id = uniqueId("attnscope-mv");
  root.dataset.view = "model";
  root.dataset.theme = model.get("theme") || "auto";
  const controls = createControls(header);
  const { wrap, grid } = createGrid();
  const v = /** @type {ModelView} */ ({
    model, header, stacks, state: initialState(model, header, stacks), root, controls, grid,
    marks: createMarks(), scratch: createScratch(), wordUnits: new Map(), means: new Map(), merged: new Map(),
    writing: false, ready: false,
  });
  v.detail = createDetail({
    root, state: v.state, stack: () => shownStack(v), sequences: () => shownSequences(v), style: () => styleOf(v),
    positions: () => positions(v), marks: v.marks, scratch: v.scratch, colour: (h) => colourOf(v, h),
    name: (h) => headName(v, h), bytes: (l) => layerBytes(v, l),
    hovered: () => save(v),
    close: () => closeCell(v),
  });
  const views = make("div", "attnscope-mv-views");
  views.append(wrap, v.detail.panel);
  root.append(controls.bar, views, v.detail.tooltip);
  v.store = layerStore(model, () => { drawGrid(v); if (v.state.open) v.detail.draw(); });
  return v;
}

/** The view's actions, bound to it, for the controls, the grid's cells, the traits and theme changes. @param {ModelView} v */
function actions(v) {
  return {
    openCell: (/** @type {number} */ l, /** @type {number} */ h, write = true) => openCell(v, l, h, write),
    closeCell: (write = true) => closeCell(v, write),
    switchStack: (write = true) => switchStack(v, write),
    redrawAll: (write = true) => redrawAll(v, write),
    retheme: () => retheme(v),
  };
}

/** Enlarge the thumbnail of carried layer `l`, head `h`. @param {ModelView} v @param {number} l @param {number} h @param {boolean} [write] */
function openCell(v, l, h, write = true) {
  v.state.open = { layer: l, head: h };
  v.detail.build();
  refresh(v, write);
}

/** @param {ModelView} v @param {boolean} [write] */
function closeCell(v, write = true) {
  const open = v.state.open;
  v.state.open = null;
  v.detail.hide();
  refresh(v, write);
  if (open && write) v.grid.cells[open.layer * shownStack(v).heads + open.head]?.focus();
}

/** Draw again in the theme's colours: head colours (`PALETTE_DARK` on a dark background) and fitted labels. @param {ModelView} v */
function retheme(v) {
  v.grid.headLabels.querySelectorAll(".attnscope-mv-head-label").forEach((label, i) => {
    /** @type {HTMLElement} */ (label).style.setProperty("--attnscope-head", colourOf(v, i));
  });
  redrawAll(v, false);
  fitLabels(v.root.querySelectorAll(".attnscope-mv-token"));
}

/** Redraw after a change of style, filter, special tokens, threshold or stack; keep the open cell. @param {ModelView} v */
function redrawAll(v, write = true) {
  drawGrid(v);
  if (v.state.open) v.detail.build();
  refresh(v, write);
}

/** Sync the controls, the enlarged view's highlights and the data attributes; optionally write back to Python. @param {ModelView} v */
function refresh(v, write = true) {
  const { state } = v;
  const s = shownStack(v);
  const open = state.open;
  syncControls(v);
  v.grid.cells.forEach((cell, i) => cell.classList.toggle("attnscope-mv-open", !!open && i === open.layer * s.heads + open.head));
  v.detail.refresh();
  Object.assign(v.root.dataset, {
    cells: String(s.layers * s.heads), style: styleOf(v), stack: state.stack, filter: pairStart(v) === null ? "all" : state.filter,
    hideSpecial: String(state.hideSpecial), units: state.merge ? "words" : "tokens",
    layer: open ? String(s.layer_labels[open.layer]) : "",
    head: open && !combined(v) ? String(s.head_labels[open.head]) : "", aggregation: state.aggregation,
  });
  if (write) save(v);
}

/** A new stack: rebuild the grid for its layers × heads and close the enlarged view. @param {ModelView} v @param {boolean} [write] */
function switchStack(v, write = true) {
  v.means.clear();
  v.merged.clear();
  v.state.open = null;
  v.detail.hide();
  buildGrid(v, (l, h) => openCell(v, l, h));
  redrawAll(v, write);
}

/** Arrow keys move between thumbnails; Escape closes the enlarged view. @param {ModelView} v @param {KeyboardEvent} event */
function onKey(v, event) {
  if (event.key === "Escape" && v.state.open) { event.preventDefault(); closeCell(v); return; }
  moveFocus(v, event);
}

export default { render };
