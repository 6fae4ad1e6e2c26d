// @ts-check
/**
 * attnscope model view at long context (M3): every head of the model at once as an overview, each head's
 * weights pooled over block × block cells (its max, or switched, its mean), how they are pooled written
 * beside the grid; a click on a head enlarges it, a click or a dragged rectangle there zooms into any
 * region down to single tokens (model_view_overview_detail.js), Escape zooms out.
 *
 * Its default export `{ render }` is bundled with what it imports (model_view_overview_state.js, _data.js,
 * _grid.js, _detail.js, and common.js, contrast.js, raster.js) as static/bundles/model_view_overview.js: the
 * widget's `_esm` (views/overview.py, `ModelOverview`) and the script its HTML export inlines.
 * `render({ model, el })` reads:
 *   - "header": views/overview.py's header: model, kind, cells (a head's cells along its longer side at most),
 *     sequences (tokens), stacks (role, layers, heads, query, key, layer_labels, head_labels, query_tokens,
 *     key_tokens, causal, block, describe)
 *   - "levels": { role: [level, ...] } the carried pooled levels, coarsest (the overview) first
 *     (model_view_overview_data.js says how they are laid out)
 *   - "stack", "pooling" ("max" | "mean"), "layer" + "head" (the open head, model numbers, or null),
 *     "region" ([q0, q1, k0, k1] or null), "theme"
 * and writes the same traits back (model.set + save_changes). With `model.send` (a live widget) a zoom asks
 * Python with a custom message (type "attnscope-zoom") and draws its reply; without it, from what is carried.
 * The root exposes: data-ready, data-cells (heads drawn), data-pooling, data-block, data-draw-ms, data-stack.
 */

import { make, labelled, readHeader, uniqueId } from "./common.js";
import { onThemeChange } from "./contrast.js";
import { decodeLevels } from "./model_view_overview_data.js";
import { buildGrid, createGrid, drawGrid, moveFocus } from "./model_view_overview_grid.js";
import { closeHead, createDetail, drawRegion, openHead, receiveZoom, zoomOut } from "./model_view_overview_detail.js";
import { levelsOf, poolingText, saveTraits, shownStack } from "./model_view_overview_state.js";
/** @import { OverviewView } from "./model_view_overview_state.js" */

/** @param {{ model: any, el: HTMLElement }} args @returns {Promise<() => void>} cleanup */
async function render({ model, el }) {
  const v = createView(model, await carriedLevels(model));
  el.append(v.root);
  const receive = (/** @type {any} */ msg, /** @type {any[]} */ buffers) => receiveZoom(v, msg, buffers);
  model.on("msg:custom", receive);
  const listeners = traitListeners(v);
  for (const [event, callback] of Object.entries(listeners)) model.on(event, callback);
  v.root.addEventListener("keydown", (event) => onKey(v, event));
  v.poolingSelect.addEventListener("change", () => { v.state.pooling = v.poolingSelect.value; redraw(v, true); });
  v.stackSelect.addEventListener("change", () => switchStack(v, v.stackSelect.value, true));
  switchStack(v, v.state.stack, false);
  fromPython(v);
  const stopTheme = onThemeChange(() => redraw(v, false));
  return () => {
    if (typeof model.off === "function") {
      model.off("msg:custom", receive);
      for (const [event, callback] of Object.entries(listeners)) model.off(event, callback);
    }
    stopTheme();
    v.detail.dispose();
    v.root.remove();
  };
}

/** Each stack's carried levels, decoded (inflated on a page). @param {any} model @returns {Promise<Record<string, import("./model_view_overview_data.js").Level[]>>} */
async function carriedLevels(model) {
  const header = readHeader(model);
  const given = model.get("levels") ?? {};
  const roles = header.stacks.map((/** @type {any} */ s) => s.role);
  const decoded = await Promise.all(roles.map((/** @type {string} */ role) => decodeLevels(given[role], header.encoding?.compression)));
  return Object.fromEntries(roles.map((/** @type {string} */ role, /** @type {number} */ i) => [role, decoded[i]]));
}

/**
 * A new view: its state from the model, its elements (the grid not yet built).
 * @param {any} model @param {Record<string, import("./model_view_overview_data.js").Level[]>} levels @returns {OverviewView}
 */
function createView(model, levels) {
  const header = readHeader(model);
  const stacks = Object.fromEntries(header.stacks.map((/** @type {any} */ s) => [s.role, s]));
  const root = make("div", "attnscope-mo");
  root.id = uniqueId("attnscope-mo");
  root.dataset.view = "model-overview";
  root.dataset.theme = model.get("theme") || "auto";
  root.tabIndex = -1;
  const stack = model.get("stack") in stacks ? model.get("stack") : header.selection.stack;
  const pooling = model.get("pooling") === "mean" ? "mean" : "max";
  const poolingSelect = select("attnscope-mo-pooling-select", [["max", "max"], ["mean", "mean"]], pooling);
  const stackSelect = select("attnscope-mo-stack-select", Object.keys(stacks).map((r) => [r, r]), stack);
  const caption = make("span", "attnscope-mo-pooling");
  const bar = make("div", "attnscope-mo-controls");
  const stackLabel = labelled("attnscope-mo-stack", "Attention", stackSelect);
  stackLabel.hidden = Object.keys(stacks).length < 2;
  bar.append(make("span", "attnscope-mo-summary"), stackLabel, labelled("attnscope-mo-plane", "Cells show the", poolingSelect), caption);
  const { wrap, grid } = createGrid();
  const v = /** @type {OverviewView} */ (/** @type {unknown} */ ({
    model, header, stacks, levels, root, poolingSelect, stackSelect, caption, grid, writing: false,
    state: { stack, pooling, open: null, zooms: [], region: null, asked: 0 },
  }));
  v.detail = createDetail(v);
  const views = make("div", "attnscope-mo-views");
  views.append(wrap, v.detail.panel);
  root.append(bar, views, v.detail.tooltip);
  return v;
}

/** A select of [value, label] options. @param {string} className @param {string[][]} options @param {string} value */
function select(className, options, value) {
  const el = /** @type {HTMLSelectElement} */ (make("select", className));
  for (const [optionValue, label] of options) el.append(new Option(label, optionValue));
  el.value = value;
  return el;
}

/** The summary line and the pooling caption, for the shown stack and plane. @param {OverviewView} v */
function describe(v) {
  const s = shownStack(v), level = levelsOf(v)[0];
  const model = v.header.model ? `${v.header.model} · ` : "";
  /** @type {HTMLElement} */ (v.root.querySelector(".attnscope-mo-summary")).textContent =
    `${model}${s.role} attention · ${s.layers} layers × ${s.heads} heads · ${s.query.toLocaleString()} × ${s.key.toLocaleString()} tokens`;
  const plane = v.state.pooling === "mean" && !level.mean ? "max" : v.state.pooling;
  v.caption.textContent = poolingText(plane, level.block);
  v.caption.title = s.describe;
  v.poolingSelect.querySelector('option[value="mean"]')?.toggleAttribute("disabled", !level.mean);
}

/** Show stack `role`: its grid, no head open. @param {OverviewView} v @param {string} role @param {boolean} write */
function switchStack(v, role, write) {
  if (v.state.open) closeHead(v, false);
  v.state.stack = role;
  v.stackSelect.value = role;
  v.root.dataset.stack = role;
  buildGrid(v, (l, h) => openHead(v, l, h));
  redraw(v, write);
}

/** Draw again (a new plane or theme): the grid, the caption and the open head. @param {OverviewView} v @param {boolean} write */
function redraw(v, write) {
  v.poolingSelect.value = v.state.pooling;
  describe(v);
  drawGrid(v);
  if (v.state.open) drawRegion(v);
  if (write) saveTraits(v);
}

/** Open (or close) the head and region Python set in layer, head and region. @param {OverviewView} v */
function fromPython(v) {
  if (v.writing) return;
  const s = shownStack(v);
  const layer = v.model.get("layer"), head = v.model.get("head"), region = v.model.get("region");
  if (layer === null || layer === undefined || head === null || head === undefined) {
    if (v.state.open) closeHead(v, false);
    return;
  }
  const l = s.layer_labels.indexOf(layer), h = s.head_labels.indexOf(head);
  if (l < 0 || h < 0) return;
  const current = v.state.zooms.at(-1) ?? null;
  const same = v.state.open && v.state.open.layer === l && v.state.open.head === h && String(current) === String(region ?? null);
  if (!same) openHead(v, l, h, Array.isArray(region) ? region : null, false);
}

/** Listeners for changes Python makes, by event name. @param {OverviewView} v @returns {Record<string, () => void>} */
function traitListeners(v) {
  const { model } = v;
  return {
    "change:layer": () => fromPython(v),
    "change:head": () => fromPython(v),
    "change:region": () => fromPython(v),
    "change:stack": () => { const x = model.get("stack"); if (!v.writing && x in v.stacks && x !== v.state.stack) switchStack(v, x, false); },
    "change:pooling": () => { const x = model.get("pooling"); if (!v.writing && (x === "max" || x === "mean") && x !== v.state.pooling) { v.state.pooling = x; redraw(v, false); } },
    "change:theme": () => { v.root.dataset.theme = model.get("theme") || "auto"; redraw(v, false); },
  };
}

/** Escape zooms out (then closes the head); arrows move between heads. @param {OverviewView} v @param {KeyboardEvent} event */
function onKey(v, event) {
  if (event.key === "Escape" && v.state.open) { event.preventDefault(); zoomOut(v); return; }
  moveFocus(v, event);
}

export default { render };
