// @ts-check
/**
 * attnscope neuron view (V3): how one head's attention row is computed from its query and key
 * neurons. For the selected stack, layer, head and query token: q, every key k, the elementwise
 * q×k, q·k, the scaled q·k (and the softcap), the bias, the mask, the attention sink and the
 * softmax, recomputed here from float32 q and k exactly as attnscope.analysis.neuron does.
 *
 * Its default export `{ render }` is bundled with what it imports (common.js, contrast.js,
 * neuron_terms.js: decoding, the row's terms, the rows a sentence filter keeps; neuron_figure.js: the
 * figure as SVG markup; neuron_view_export.js: the SVG and PNG exports) as
 * static/bundles/neuron_view.js: the widget's `_esm` (views/neuron.py) and the script the HTML export
 * inlines. `render({ model, el })` reads from `model`:
 *   - "header": built by attnscope/views/neuron_data.py: tokens, and per stack its shape, scaling,
 *     softcap, sinks, kv_head_of and the byte layout of a layer
 *   - "arrays": { role: [layer blob or null, ...] }: queries float32 (heads, query, dim), keys float32
 *     (kv_heads, key, dim), [bias float32 (heads, query, key)], allowed uint8 (query, key),
 *     little-endian; a missing layer is asked of Python with a "attnscope-neuron-layers" message
 *   - "stack", "layer", "head", "token" ({side: "query", index}), "display_mode" ("auto"/"dark"/"light"),
 *     "filter" (a FILTERS value: for a sentence pair, the queries' sentence then the keys')
 * and writes the selection back with model.set + model.save_changes. The root element exposes the
 * state (data-stack, data-layer, data-head, data-query, data-filter, data-ready); every drawn number
 * carries its exact value in data-value (the shown keys' share of the softmax under a filter too).
 */

import { FILTERS, labelled, layerStore, make, readHeader, shown, uniqueId } from "./common.js";
import { fitSvgText, onThemeChange } from "./contrast.js";
import { decodeNeuronLayer, filterRows, isLongStack, neuronTerms, pairStartOf, queryWindow, SHOWN_KEYS, SHOWN_QUERIES,
  shownShare, startQuery, strongestKeys } from "./neuron_terms.js";
import { formatValue, neuronFigure, neuronRules, SVG_NS } from "./neuron_figure.js";
import { savePng, saveSvg } from "./neuron_view_export.js";
/** @import { Terms } from "./neuron_terms.js" */
/** @import { Shown } from "./neuron_figure.js" */

const NEURON_MESSAGE = "attnscope-neuron-layers";
const KINDS = { q: "q", k: "k", prod: "q×k", dot: "q·k", scaled: "scaled q·k", capped: "softcapped",
  bias: "bias", softmax: "softmax", sink: "sink share", "sink-logit": "sink logit", share: "the shown keys' share of the softmax" };

/**
 * @typedef {object} NeuronState what is shown
 * @property {string} stack
 * @property {number} layer
 * @property {number} head
 * @property {number} query the query token's position
 * @property {string} mode the display mode: "auto", "dark" or "light"
 * @property {string} filter a `FILTERS` value
 *
 * @typedef {object} NeuronControls
 * @property {HTMLElement} bar
 * @property {HTMLSelectElement} stackSelect
 * @property {HTMLSelectElement} layerSelect
 * @property {HTMLSelectElement} headSelect
 * @property {HTMLSelectElement} filterSelect
 * @property {HTMLElement} filterLabel hidden when there is no sentence pair
 * @property {HTMLElement} png
 * @property {HTMLElement} svgButton
 * @property {HTMLInputElement} queryInput the query position (shown for long inputs, whose figure lists a window)
 *
 * @typedef {object} NeuronView one rendered neuron view, passed to the functions below
 * @property {any} model
 * @property {any} header
 * @property {Record<string, any>} stacks the header's stacks by role
 * @property {NeuronState} state
 * @property {HTMLElement} root
 * @property {string} svgId the figure's id, which scopes its style rules
 * @property {NeuronControls} controls
 * @property {HTMLElement} figureBox holds the figure
 * @property {HTMLElement} tooltip
 * @property {CanvasRenderingContext2D} measurer measures label widths
 * @property {{ get: (role: string, index: number) => any, dispose: () => void }} source the layers (`layerStore`)
 */

/** Fill a select with the options 0..count-1. @param {HTMLSelectElement} select @param {number} count @param {string} prefix */
function numberOptions(select, count, prefix) {
  select.replaceChildren(...Array.from({ length: count }, (_, i) => new Option(`${prefix}${i}`, String(i))));
}

/**
 * @param {{ model: any, el: HTMLElement }} args
 * @returns {() => void} cleanup
 */
function render({ model, el }) {
  const v = createView(model);
  el.append(v.root);
  v.measurer = /** @type {CanvasRenderingContext2D} */ (document.createElement("canvas").getContext("2d"));
  v.measurer.font = '11px system-ui, -apple-system, "Segoe UI", sans-serif';
  v.source = layerStore(model, () => draw(v), {
    message: NEURON_MESSAGE, field: "arrays", decode: (bytes, role) => decodeNeuronLayer(bytes, v.stacks[role]),
  });
  wireFigure(v);
  wireControls(v);
  const listeners = traitListeners(v);
  for (const [event, callback] of Object.entries(listeners)) model.on(event, callback);

  fitToStack(v);
  draw(v); // data-ready once the layer is drawn: at once, or when a page's deflated layer is inflated
  const stopTheme = onThemeChange(() => draw(v));

  return () => {
    stopTheme();
    if (typeof model.off === "function") for (const [event, callback] of Object.entries(listeners)) model.off(event, callback);
    v.source.dispose();
    v.root.remove();
  };
}

/** The view's state as the model and the header set it first. @param {any} model @param {any} header @param {Record<string, any>} stacks @returns {NeuronState} */
function initialState(model, header, stacks) {
  const initial = header.selection;
  const token = model.get("token");
  return {
    stack: /** @type {string} */ (model.get("stack") in stacks ? model.get("stack") : initial.stack),
    layer: /** @type {number} */ (model.get("layer") ?? initial.layer),
    head: /** @type {number} */ (model.get("head") ?? initial.head),
    query: /** @type {number} */ (token && Number.isInteger(token.index) ? token.index : initial.query),
    mode: /** @type {string} */ (model.get("display_mode") ?? "auto"),
    filter: /** @type {string} */ (model.get("filter") ?? initial.filter ?? "all"),
  };
}

/** A new view's context and its elements (not yet in the page; no layers, no measurer yet). @param {any} model */
function createView(model) {
  const header = readHeader(model);
  const stacks = Object.fromEntries(header.stacks.map((/** @type {any} */ s) => [s.role, s]));
  const state = initialState(model, header, stacks);
  const root = make("div", "attnscope-nv");
  root.dataset.view = "neuron";
  const svgId = uniqueId("attnscope-nv-svg");
  const controls = createControls(header);
  const figureBox = make("div", "attnscope-nv-figure");
  const tooltip = make("div", "attnscope-nv-tooltip");
  tooltip.setAttribute("role", "tooltip");
  tooltip.hidden = true;
  root.append(controls.bar, figureBox, tooltip);
  return /** @type {NeuronView} */ ({ model, header, stacks, state, root, svgId, controls, figureBox, tooltip });
}

/** The controls bar: stack (when there are two), layer, head, sentence filter, PNG and SVG. @param {any} header @returns {NeuronControls} */
function createControls(header) {
  const bar = make("div", "attnscope-nv-controls");
  const stackSelect = /** @type {HTMLSelectElement} */ (make("select", "attnscope-nv-stack"));
  const layerSelect = /** @type {HTMLSelectElement} */ (make("select", "attnscope-nv-layer"));
  const headSelect = /** @type {HTMLSelectElement} */ (make("select", "attnscope-nv-head"));
  const filterSelect = /** @type {HTMLSelectElement} */ (make("select", "attnscope-nv-filter"));
  for (const [value, text] of FILTERS) filterSelect.append(new Option(text, value));
  const png = make("button", "attnscope-nv-png", "PNG"), svgButton = make("button", "attnscope-nv-svg-export", "SVG");
  for (const b of [png, svgButton]) { /** @type {HTMLButtonElement} */ (b).type = "button"; b.title = `save what is shown as ${b.textContent}`; }
  const field = (/** @type {string} */ text, /** @type {HTMLElement} */ control) => labelled("attnscope-nv-label", text, control);
  const stackLabel = field("Attention", stackSelect);
  stackLabel.hidden = header.stacks.length < 2;
  for (const s of header.stacks) stackSelect.append(new Option(s.role, s.role));
  const filterLabel = field("Sentences", filterSelect);
  filterLabel.title = "the queries' sentence → the keys' sentence; the softmax stays over all keys";
  const queryInput = /** @type {HTMLInputElement} */ (make("input", "attnscope-nv-query"));
  Object.assign(queryInput, { type: "number", min: "0", step: "1", title: "the query token's position" });
  const queryLabel = field("Query", queryInput);
  queryLabel.hidden = !header.stacks.some(isLongStack);
  bar.append(stackLabel, field("Layer", layerSelect), field("Head", headSelect), queryLabel, filterLabel, png, svgButton);
  return { bar, stackSelect, layerSelect, headSelect, filterSelect, filterLabel, png, svgButton, queryInput };
}

/** The current stack's header. @param {NeuronView} v */
const stackOf = (v) => v.stacks[v.state.stack];

/** The query and key positions the sentence filter shows. @param {NeuronView} v */
const rowsOf = (v) => filterRows(stackOf(v), pairStartOf(v.header, stackOf(v)), v.state.filter);

/** Keep the query among those the filter shows: else its sentence's first (Python's `default_query`). @param {NeuronView} v */
function fitQuery(v) {
  const { state } = v;
  const queries = rowsOf(v).queries;
  if (!queries.includes(state.query)) state.query = startQuery(stackOf(v), v.header.sequences[stackOf(v).query_tokens], queries);
}

/** Keep the selection inside the current stack and show it in the controls. @param {NeuronView} v */
function fitToStack(v) {
  const { state, controls: c } = v;
  const s = stackOf(v);
  state.layer = Math.min(Math.max(0, state.layer), s.layers - 1);
  state.head = Math.min(Math.max(0, state.head), s.heads - 1);
  state.query = Math.min(Math.max(0, state.query), s.query - 1);
  const pair = pairStartOf(v.header, s) !== null;
  if (!pair || !FILTERS.some(([value]) => value === state.filter)) state.filter = "all";
  fitQuery(v);
  c.filterLabel.hidden = !pair;
  c.filterSelect.value = state.filter;
  c.stackSelect.value = state.stack;
  numberOptions(c.layerSelect, s.layers, "");
  numberOptions(c.headSelect, s.heads, "");
  c.layerSelect.value = String(state.layer);
  c.headSelect.value = String(state.head);
}

/** Write the selection back to Python. @param {NeuronView} v */
function save(v) {
  const { model, state } = v;
  model.set("stack", state.stack);
  model.set("layer", state.layer);
  model.set("head", state.head);
  model.set("token", { side: "query", index: state.query });
  model.set("filter", state.filter);
  model.save_changes();
}

/** Redraw the figure for the current selection (or say the layer is on its way). @param {NeuronView} v */
function draw(v, focus = false) {
  const { root, state, figureBox } = v;
  root.classList.toggle("attnscope-nv-dark", state.mode === "dark");
  root.classList.toggle("attnscope-nv-light", state.mode === "light");
  const s = stackOf(v);
  const data = v.source.get(state.stack, state.layer);
  Object.assign(root.dataset, { stack: state.stack, layer: String(state.layer), head: String(state.head),
    query: String(state.query), filter: state.filter, loading: String(!data) });
  v.controls.queryInput.value = String(state.query);
  if (!data) {
    const absent = typeof v.model.send !== "function"; // a page without a kernel: the layer is not in it
    figureBox.replaceChildren(make("div", "attnscope-nv-loading",
      absent ? `layer ${state.layer} is not in this page: ${v.model.get("carried") || "it carries other layers"}` : `loading layer ${state.layer}…`));
    return;
  }
  const t = neuronTerms(s, data, state.layer, state.head, state.query);
  figureBox.innerHTML = neuronFigure({ id: v.svgId, s, header: v.header, t, layer: state.layer, head: state.head, query: state.query,
    shown: shownRows(v, t), measure: (text) => v.measurer.measureText(text).width });
  const style = document.createElementNS(SVG_NS, "style");
  style.textContent = neuronRules(v.svgId, (name) => `var(--attnscope-nv-${name})`);
  const svg = figureBox.querySelector("svg");
  svg?.prepend(style);
  if (svg) fitSvgText(svg);
  if (focus) /** @type {SVGGElement | null} */ (figureBox.querySelector(`.nv-query[data-index="${state.query}"]`))?.focus();
  root.dataset.ready = "true";
}

/**
 * The rows the filter shows, and under a pair filter a line saying what share of the model's softmax
 * (over every key) the shown keys hold. @param {NeuronView} v @param {Terms} t @returns {Shown}
 */
function shownRows(v, t) {
  const { filter } = v.state;
  const { queries, keys } = rowsOf(v);
  if (isLongStack(stackOf(v))) {
    const strongest = strongestKeys(t, keys, SHOWN_KEYS), { share, over } = shownShare(t, strongest);
    const note = `long input: the ${strongest.length} keys with the largest softmax of the row's ${over} ` +
      `(the softmax is over all of them) hold ${formatValue(share)} of it; queries ${v.state.query} ± ${SHOWN_QUERIES / 2} listed`;
    return { queries: queryWindow(queries, v.state.query, SHOWN_QUERIES), keys: strongest, filter, note, share, positions: true };
  }
  if (filter === "all") return { queries, keys, filter: "all", note: "", share: 1 };
  const { share, over, masked } = shownShare(t, keys);
  const note = `softmax over all ${over}${masked ? " unmasked" : ""} keys of the row; ` +
    `the ${keys.length} ${filter[1]} keys shown hold ${formatValue(share)} of it`;
  return { queries, keys, filter, note, share };
}

/** Apply a change made in the view: redraw and write the selection back. @param {NeuronView} v @param {boolean} [focus] */
function changed(v, focus = false) {
  draw(v, focus);
  save(v);
}

/** The tooltip's text for a drawn value: its kind and key from the node or its groups. @param {NeuronView} v @param {HTMLElement} node */
function describe(v, node) {
  const s = stackOf(v);
  const kind = /** @type {HTMLElement | null} */ (node.closest("[data-kind]"))?.dataset.kind ?? "";
  const key = /** @type {HTMLElement | null} */ (node.closest("[data-key]"))?.dataset.key;
  const parts = [KINDS[/** @type {keyof typeof KINDS} */ (kind)] ?? kind];
  if (key !== undefined) parts.push(`key ${key} “${shown(v.header.sequences[s.key_tokens].tokens[Number(key)])}”`);
  if (!node.dataset.kind) parts.push(`dim ${Array.prototype.indexOf.call(/** @type {Element} */ (node.parentNode).children, node)}`);
  return `${parts.join(" · ")} = ${node.dataset.value}`;
}

/** The figure's pointer and keys: a tooltip on drawn values; a click or arrow keys choose the query. @param {NeuronView} v */
function wireFigure(v) {
  const { figureBox, tooltip, root, state } = v;
  figureBox.addEventListener("pointerover", (event) => {
    const node = /** @type {HTMLElement | null} */ ((/** @type {Element} */ (event.target)).closest("[data-value]"));
    if (!node) { tooltip.hidden = true; return; }
    tooltip.textContent = describe(v, node);
    tooltip.hidden = false;
    const box = root.getBoundingClientRect(), at = node.getBoundingClientRect();
    tooltip.style.left = `${at.right - box.left + 6}px`;
    tooltip.style.top = `${at.top - box.top - 4}px`;
  });
  figureBox.addEventListener("pointerleave", () => { tooltip.hidden = true; });
  figureBox.addEventListener("click", (event) => {
    const node = /** @type {HTMLElement | null} */ ((/** @type {Element} */ (event.target)).closest(".nv-query"));
    if (!node) return;
    state.query = Number(node.dataset.index);
    changed(v, true);
  });
  figureBox.addEventListener("keydown", (event) => {
    if (!(/** @type {Element} */ (event.target)).closest(".nv-query")) return;
    const queries = rowsOf(v).queries, at = queries.indexOf(state.query), last = queries.length - 1;
    const moves = { ArrowUp: at - 1, ArrowDown: at + 1, Home: 0, End: last, PageUp: at - 10, PageDown: at + 10 };
    const next = /** @type {Record<string, number>} */ (moves)[event.key];
    if (next === undefined) return;
    event.preventDefault();
    state.query = queries[Math.min(last, Math.max(0, next))];
    changed(v, true);
  });
}

/** A change of control sets the state, redraws and writes back; the export buttons save the figure. @param {NeuronView} v */
function wireControls(v) {
  const { controls: c, state } = v;
  c.stackSelect.addEventListener("change", () => { state.stack = c.stackSelect.value; fitToStack(v); changed(v); });
  c.layerSelect.addEventListener("change", () => { state.layer = Number(c.layerSelect.value); changed(v); });
  c.headSelect.addEventListener("change", () => { state.head = Number(c.headSelect.value); changed(v); });
  c.filterSelect.addEventListener("change", () => { state.filter = c.filterSelect.value; fitQuery(v); changed(v); });
  c.queryInput.addEventListener("change", () => {
    const x = Number(c.queryInput.value), ok = rowsOf(v).queries.includes(x);
    c.queryInput.setCustomValidity(ok ? "" : `a query position the view shows: 0-${stackOf(v).query - 1}`);
    if (ok) { state.query = x; changed(v); }
  });
  c.svgButton.addEventListener("click", () => saveSvg(v));
  c.png.addEventListener("click", () => savePng(v));
}

/** Changes made from Python (the widget's traits) redraw the view without writing back. @param {NeuronView} v */
function traitListeners(v) {
  const { model, state, controls: c } = v;
  return {
    "change:stack": () => { const x = model.get("stack"); if (x in v.stacks && x !== state.stack) { state.stack = x; fitToStack(v); draw(v); } },
    "change:layer": () => { const x = model.get("layer"); if (Number.isInteger(x) && x !== state.layer && x >= 0 && x < stackOf(v).layers) { state.layer = x; c.layerSelect.value = String(x); draw(v); } },
    "change:head": () => { const x = model.get("head"); if (Number.isInteger(x) && x !== state.head && x >= 0 && x < stackOf(v).heads) { state.head = x; c.headSelect.value = String(x); draw(v); } },
    "change:token": () => { const x = model.get("token")?.index; if (x !== state.query && rowsOf(v).queries.includes(x)) { state.query = x; draw(v); } },
    "change:filter": () => {
      const x = model.get("filter");
      if (x === state.filter || pairStartOf(v.header, stackOf(v)) === null || !FILTERS.some(([value]) => value === x)) return;
      state.filter = c.filterSelect.value = x;
      fitQuery(v);
      draw(v);
    },
    "change:display_mode": () => { state.mode = model.get("display_mode") ?? "auto"; draw(v); },
  };
}

export default { render };
