// @ts-check
/**
 * attnscope head view (V1): query tokens on the left, key tokens on the right, one line per
 * (head, query, key) whose opacity is the attention weight, a colour per head. One view everywhere: the
 * notebook widget, the HTML export and the explorer app all mount this module.
 *
 * Its default export `{ render }` is bundled with what it imports as static/bundles/head_view.js: the
 * widget's `_esm` (views/head.py) and the script the HTML export inlines (views/html.py); the app's
 * bundle imports it. `render({ model, el, host })` reads from the model:
 *   - "header": the payload header built by attnscope/views/payload.py (object or JSON string)
 *   - "layers": { role: [layer or null, ...] }, each layer the uint8 weights (heads, query, key)
 *     row-major; decoded weight = byte / 255. Missing layers are asked of Python (layerStore).
 *     Carried aggregations (B1) arrive the same way under "<role>/<method>" (rollout, value norms).
 *   - optional initial state: "stack", "layer", "heads", "filter", "threshold" (the minimum weight of a line),
 *     "top_share" (in (0, 1], 1 for off: per query row, only the fewest strongest lines whose weights make up
 *     that share of the row's weight on the shown keys, among those above the threshold), "hide_special",
 *     "merge_subwords", "rows", "columns" (token positions to keep, null for all), "aggregation"
 *     ("raw", "mean" of the shown heads, or a carried one: labelled by the header stack's "aggregation_methods"),
 *     "token" (the pinned token), "mean_heads" (per-head aggregations draw the mean of the shown heads as one
 *     set of lines), "head_thumbnails" (each head button shows its lines), "shade_keys" (keys shaded by their
 *     weight from the focused query)
 * and writes the selection back with model.set(...) + model.save_changes() ("token" included); changes of
 * those values made by Python or a host page redraw it. `host` (optional, head_view_data.js's HeadViewHost)
 * lets a page take over token clicks, hear hovers and head toggles, and hide the controls or the tooltip.
 *
 * Long inputs: the lines of a layer are listed once (those above the threshold), and only the band
 * of the view that is on screen is painted (software rasterisers pay per covered pixel), repainted
 * on scroll. The root exposes what is drawn: data-lines (lines in the current selection),
 * data-lines-drawn (painted in the visible band), data-stack, data-layer, data-heads, data-filter,
 * data-token (focused: "query:3"), data-pinned, data-units ("tokens" or "words"), data-aggregation,
 * data-top-share, data-loading. Aggregations that combine the heads into one ("mean", "rollout",
 * "value_norm_sum") draw one set of lines.
 *
 * Long context (a payload of each query's strongest keys, header "lines"): the view scrolls through a band of
 * query rows with their lines, keys outside the band at its edges (head_view_long.js; data-band, data-edge-keys),
 * and the tooltip shows exact weights, asked of Python or carried by the page (head_view_exact.js).
 */

import { download, headColour, layerStore, readHeader, svgToPng, uniqueId } from "./common.js";
import { fitLabels, onDark, onThemeChange } from "./contrast.js";
import { aggregationInfo, fillAggregations, parsePositions } from "./attention_data.js";
import { activeFocus, combinesHeads, eachLine, initialState, keySeq, lineData, makeLayout, querySeq, segmentTest, shownHeads, stackOf } from "./head_view_data.js";
import { buildDom, headButtons, markTokens, showTooltip, tokenNodes } from "./head_view_dom.js";
import { exactStore } from "./head_view_exact.js";
import { bandSVG, drawLong, isLong, longNote, longStatus, mountLong } from "./head_view_long.js";
import { drawLines, FULL_DRAW_LIMIT, paintThumbnails, toSVG } from "./head_view_paint.js";
/** @import { HeadView, HeadViewHost } from "./head_view_data.js" */

/**
 * @param {{ model: any, el: HTMLElement, host?: HeadViewHost }} args
 * @returns {() => void} cleanup
 */
function render({ model, el, host = {} }) {
  const header = readHeader(model);
  const state = initialState(model, header);
  /** @type {HeadView} */
  const v = {
    model, host, header, state, cache: new Map(), painted: { top: 0, bottom: 0, height: 0 }, saving: false, thumbnails: "",
    stacks: Object.fromEntries(header.stacks.map((/** @type {any} */ s) => [s.role, s])),
    store: layerStore(model, () => update(v, false)),
    exact: exactStore(model, () => update(v, false)),
    layout: /** @type {any} */ (null),
    long: null,
    dom: buildDom(el, header, state, host.controls !== false),
  };
  v.dom.root.id = uniqueId("attnscope-hv");
  const stopLong = isLong(header) ? mountLong(v, () => update(v, false)) : () => {};
  wireControls(v);
  const listeners = traitListeners(v);
  for (const [event, callback] of Object.entries(listeners)) model.on(event, callback);
  if (!(state.stack in v.stacks)) state.stack = header.selection.stack;
  buildStack(v);
  update(v, false); // data-ready once the layer is drawn: at once, or when a page's deflated layer is inflated
  const stopScroll = repaintOnScroll(v);
  const stopRefit = onThemeChange(() => update(v, false)); // the theme's head colours, labels fitted again
  return () => {
    if (typeof model.off === "function") for (const [event, callback] of Object.entries(listeners)) model.off(event, callback);
    stopRefit();
    stopScroll();
    stopLong();
    v.store.dispose();
    v.exact.dispose();
    v.dom.root.remove();
  };
}

/** Write the selection back to the model (Python, or the host's stand-in model). @param {HeadView} v */
function save(v) {
  const { state } = v, token = state.pinned ?? state.hover;
  v.saving = true; // the model's change events of these values are this view's own: not followed back
  const values = {
    stack: state.stack, layer: state.layer, heads: shownHeads(v), filter: state.filter,
    threshold: state.threshold, top_share: state.topShare, hide_special: state.hideSpecial, merge_subwords: state.merge,
    rows: state.rows, columns: state.columns, aggregation: state.aggregation,
    token: token ? { ...token, unit: state.merge ? "word" : "token" } : null,
  };
  try {
    for (const [name, value] of Object.entries(values)) v.model.set(name, value);
  } finally {
    v.saving = false;
  }
  v.model.save_changes();
}

/** Fill the controls and head bar for the current stack, keeping what of the selection it has. @param {HeadView} v */
function buildStack(v) {
  const s = stackOf(v), { state } = v, inputs = v.dom.inputs;
  if (!s.layer_labels.includes(state.layer)) state.layer = s.layer_labels[0];
  state.heads = new Set([...state.heads].filter((h) => h < s.heads));
  if (state.heads.size === 0 && !v.host.onHeads) for (let h = 0; h < s.heads; h++) state.heads.add(h);
  if (segmentTest(v) === null) state.filter = "all";
  state.aggregation = fillAggregations(inputs.aggregation, s, state.aggregation);
  inputs.stack.value = state.stack;
  inputs.layer.replaceChildren(...s.layer_labels.map((/** @type {number} */ l) => new Option(String(l), String(l))));
  inputs.layer.value = String(state.layer);
  inputs.filterLabel.hidden = segmentTest(v) === null;
  inputs.filter.value = state.filter;
  headButtons(v, (h, only) => {
    if (only) state.heads = new Set([h]);
    else if (state.heads.has(h)) state.heads.delete(h);
    else state.heads.add(h);
    headsChanged(v);
  });
  relayout(v);
}

/** The shown heads changed on the page: redraw, and tell the host. @param {HeadView} v */
function headsChanged(v) {
  update(v);
  v.host.onHeads?.(shownHeads(v));
}

/** Rebuild the token columns after a change of stack, units, hidden tokens or chosen rows. @param {HeadView} v */
function relayout(v) {
  if (v.long) v.state.merge = v.dom.inputs.merge.checked = false; // words merge every weight of a row: not carried
  v.layout = makeLayout(v);
  v.cache.clear();
  const on = (/** @type {string} */ side, /** @type {number} */ index, /** @type {string} */ what, /** @type {HTMLElement} */ node) => onToken(v, side, index, what, node);
  if (v.long) Object.assign(v.long, { on, built: "" }); // a long view builds only its band's tokens (drawLong)
  else {
    v.dom.queryCol.replaceChildren(...tokenNodes(v, v.layout.q, v.layout.qRows.shown, "query", on));
    v.dom.keyCol.replaceChildren(...tokenNodes(v, v.layout.k, v.layout.kRows.shown, "key", on));
  }
  v.state.hover = null;
  const pinned = v.state.pinned; // kept while its token is still shown
  if (pinned && !((pinned.side === "query" ? v.layout.qRows : v.layout.kRows).row[pinned.index] >= 0)) v.state.pinned = null;
}

/**
 * A token's pointer or keyboard event: hover and focus show its lines; a click pins it (or goes to the host's
 * onToken, with double-clicks and the M key). @param {HeadView} v @param {string} side @param {number} index
 * @param {string} what "enter", "leave", "click", "dblclick" or "mask" @param {HTMLElement} node
 */
function onToken(v, side, index, what, node) {
  const { state, host } = v;
  if (what === "enter" || what === "leave") {
    const leaving = what === "leave";
    if (leaving && (state.hover?.side !== side || state.hover?.index !== index)) return;
    state.hover = leaving ? null : { side, index };
    update(v, false);
    host.onHover?.(side, leaving ? null : index, leaving ? null : node);
    return;
  }
  if (host.onToken) { host.onToken(side, index, what); return; }
  if (what !== "click") return;
  const same = state.pinned && state.pinned.side === side && state.pinned.index === index;
  state.pinned = same ? null : { side, index };
  update(v);
}

/** Paint the head bar's state: colours, which heads are on, whether they can be chosen. @param {HeadView} v */
function paintHeadBar(v) {
  const { state } = v, dark = onDark(v.dom.root);
  const fixed = combinesHeads(v) && !v.host.onHeads; // these combine every head: there is no choice to make
  for (const node of v.dom.heads.querySelectorAll("button")) {
    const button = /** @type {HTMLButtonElement} */ (node);
    button.style.setProperty("--attnscope-head", headColour(Number(button.dataset.head), dark));
    const on = fixed || state.heads.has(Number(button.dataset.head));
    button.classList.toggle("attnscope-hv-off", !on);
    button.setAttribute("aria-pressed", String(on));
    button.disabled = fixed;
  }
  v.dom.inputs.all.disabled = v.dom.inputs.none.disabled = fixed;
  if (!state.thumbnails) fitLabels(v.dom.heads.querySelectorAll("button"));
  paintThumbnails(v);
}

/** Redraw and expose the state; `write` sends the selection back to the model. @param {HeadView} v @param {boolean} [write] */
function update(v, write = true) {
  const { state, dom } = v;
  const loaded = lineData(v) !== null;
  const { total, drawn } = v.long ? { drawn: drawLong(v), total: eachLine(v, () => {}) } : drawLines(v);
  markTokens(v);
  showTooltip(v);
  paintHeadBar(v);
  const info = aggregationInfo(state.aggregation, stackOf(v));
  dom.inputs.aggregation.title = info.about;
  dom.note.textContent = v.long ? longNote(v) : info.note;
  dom.status.textContent = v.long ? longStatus(v, lineData(v)) : loaded ? "" : `loading layer ${state.layer}…`;
  const active = activeFocus(v);
  Object.assign(dom.root.dataset, {
    lines: String(total), linesDrawn: String(drawn), stack: state.stack, layer: String(state.layer),
    heads: shownHeads(v).join(","), filter: state.filter, token: active ? `${active.side}:${active.index}` : "",
    pinned: state.pinned ? `${state.pinned.side}:${state.pinned.index}` : "", units: state.merge ? "words" : "tokens",
    loading: String(!loaded), aggregation: state.aggregation, topShare: String(state.topShare),
  });
  if (loaded) dom.root.dataset.ready = "true";
  if (write) save(v);
}

/**
 * A number control that applies `apply(value)` when `valid(value)`, else shows `why(value)` on the control.
 * @param {HTMLInputElement} input @param {(value: number) => boolean} valid @param {() => string} why @param {(value: number) => void} apply
 */
function numberControl(input, valid, why, apply) {
  input.addEventListener("change", () => {
    const value = Number(input.value);
    if (Number.isFinite(value) && valid(value)) {
      input.setCustomValidity("");
      input.title = "";
      apply(value);
    } else {
      input.setCustomValidity(why());
      input.title = input.validationMessage;
    }
  });
}

/** Wire the control row, All / None and the exports. @param {HeadView} v */
function wireControls(v) {
  const { state, dom: { inputs }, header } = v;
  const fileName = () => `attnscope-head-view-${state.stack}-layer${state.layer}` + (state.aggregation === "raw" ? "" : `-${state.aggregation}`);
  const svg = () => (v.long ? bandSVG(v) : toSVG(v));
  inputs.svg.addEventListener("click", () => download(`${fileName()}.svg`, new Blob([svg()], { type: "image/svg+xml" })));
  inputs.png.addEventListener("click", () => svgToPng(svg(), (blob) => download(`${fileName()}.png`, blob)));
  inputs.stack.addEventListener("change", () => { state.stack = inputs.stack.value; buildStack(v); update(v); });
  inputs.aggregation.addEventListener("change", () => { state.aggregation = inputs.aggregation.value; update(v); });
  inputs.layer.addEventListener("change", () => { state.layer = Number(inputs.layer.value); update(v); });
  inputs.filter.addEventListener("change", () => { state.filter = inputs.filter.value; update(v); });
  const least = header.encoding.sparse ? header.threshold : 0; // a sparse view carries nothing below its threshold
  numberControl(inputs.threshold, (x) => x >= least && x < 1,
    () => `the threshold must be in [${least}, 1)` + (least ? ": this view carries only weights above it" : ""),
    (x) => { state.threshold = x; v.cache.clear(); update(v); });
  numberControl(inputs.topShare, (x) => x > 0 && x <= 1, () => "the top share must be in (0, 1]: 1 draws every line above the threshold",
    (x) => { state.topShare = x; update(v); });
  inputs.hideSpecial.addEventListener("change", () => { state.hideSpecial = inputs.hideSpecial.checked; relayout(v); update(v); });
  inputs.merge.addEventListener("change", () => { state.merge = inputs.merge.checked; state.pinned = null; relayout(v); update(v); });
  for (const [input, side] of /** @type {[HTMLInputElement, "rows" | "columns"][]} */ ([[inputs.rows, "rows"], [inputs.columns, "columns"]])) {
    input.addEventListener("change", () => {
      const limit = (side === "rows" ? querySeq(v) : keySeq(v)).tokens.length;
      try {
        state[side] = parsePositions(input.value, limit);
        input.setCustomValidity("");
        input.title = "";
      } catch (error) {
        input.setCustomValidity(String(/** @type {Error} */ (error).message));
        input.title = String(/** @type {Error} */ (error).message);
        return;
      }
      relayout(v);
      update(v);
    });
  }
  inputs.all.addEventListener("click", () => { state.heads = new Set([...Array(stackOf(v).heads).keys()]); headsChanged(v); });
  inputs.none.addEventListener("click", () => { state.heads = new Set(); headsChanged(v); });
}

/** Tall views repaint their band when scrolling brings unpainted rows on screen; returns the unsubscribe. @param {HeadView} v */
function repaintOnScroll(v) {
  let pending = false;
  const onScroll = () => {
    if (pending || v.painted.height <= FULL_DRAW_LIMIT) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      const rect = v.dom.linesBox.getBoundingClientRect();
      const view = window.innerHeight || 800;
      const visibleTop = Math.max(0, -rect.top), visibleBottom = Math.min(v.painted.height, view - rect.top);
      if (visibleTop < v.painted.top || visibleBottom > v.painted.bottom) update(v, false);
    });
  };
  document.addEventListener("scroll", onScroll, true);
  window.addEventListener("resize", onScroll);
  return () => {
    document.removeEventListener("scroll", onScroll, true);
    window.removeEventListener("resize", onScroll);
  };
}

/** Same numbers in the same order. @param {number[]} a @param {number[]} b */
const sameList = (a, b) => a.join(",") === b.join(",");

/** Changes made from Python (the widget's traits) or the host page redraw the view. @param {HeadView} v @returns {Record<string, () => void>} */
function traitListeners(v) {
  const { model, state, dom: { inputs } } = v;
  /** @param {string} name @param {(value: any) => boolean} changed @param {(value: any) => void} apply @param {boolean} [rebuild] */
  const follow = (name, changed, apply, rebuild = false) => () => {
    const value = model.get(name);
    if (v.saving || !changed(value)) return;
    apply(value);
    if (rebuild) relayout(v);
    update(v, false);
  };
  return {
    "change:layer": follow("layer", (x) => x !== state.layer && stackOf(v).layer_labels.includes(x), (x) => { state.layer = x; inputs.layer.value = String(x); }),
    "change:heads": follow("heads", (x) => !sameList([...new Set(/** @type {number[]} */ (x ?? []))].sort((a, b) => a - b), shownHeads(v)),
      (x) => { state.heads = new Set(x ?? []); }),
    "change:top_share": follow("top_share", (x) => typeof x === "number" && x > 0 && x <= 1 && x !== state.topShare,
      (x) => { state.topShare = x; inputs.topShare.value = String(x); }),
    "change:threshold": follow("threshold", (x) => typeof x === "number" && x >= 0 && x < 1 && x !== state.threshold,
      (x) => { state.threshold = x; inputs.threshold.value = String(x); v.cache.clear(); }),
    "change:filter": follow("filter", (x) => x && x !== state.filter, (x) => { state.filter = x; inputs.filter.value = x; }),
    "change:hide_special": follow("hide_special", (x) => Boolean(x) !== state.hideSpecial,
      (x) => { state.hideSpecial = Boolean(x); inputs.hideSpecial.checked = state.hideSpecial; }, true),
    "change:merge_subwords": follow("merge_subwords", (x) => Boolean(x) !== state.merge,
      (x) => { state.merge = Boolean(x); inputs.merge.checked = state.merge; state.pinned = null; }, true),
    "change:mean_heads": follow("mean_heads", (x) => Boolean(x) !== state.meanHeads, (x) => { state.meanHeads = Boolean(x); }),
    "change:token": follow("token", (x) => (x ? `${x.side}:${x.index}` : "") !== (state.pinned ? `${state.pinned.side}:${state.pinned.index}` : ""),
      (x) => { state.pinned = x ? { side: x.side, index: x.index } : null; }),
    "change:stack": () => { const x = model.get("stack"); if (!v.saving && x in v.stacks && x !== state.stack) { state.stack = x; buildStack(v); update(v, false); } },
    "change:aggregation": follow("aggregation", (x) => x !== state.aggregation && fillAggregations(inputs.aggregation, stackOf(v), x) === x,
      (x) => { state.aggregation = x; }),
  };
}

export default { render };
