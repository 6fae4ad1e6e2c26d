// @ts-check
/**
 * What the head view draws, without the DOM's events: its state and context types, the units shown on
 * each side (tokens or words, hidden ones left out), the current layer's lines (raw, the mean of the shown
 * heads, or a carried aggregation) with the top share applied, the sets of lines and their colours, and
 * every line of the selection. Imported by head_view.js and its painting and DOM modules.
 */

import { headColour } from "./common.js";
import { onDark } from "./contrast.js";
import { isPerHead, layerData, meanWeights, topShareLines, unitsOf } from "./attention_data.js";
/** @import { ExactStore } from "./head_view_exact.js" */
/** @import { LongState } from "./head_view_long.js" */

/** Weights already decoded (`meanWeights`): what `layerData` is told about them. */
const DECODED = { sparse: false, scale: 1 };
const CACHE_SIZE = 4; // layers of lines kept, most recent last

/**
 * A token or word of one side: "query" (left) or "key" (right), by its unit index.
 * @typedef {{ side: string, index: number }} Focus
 */
/**
 * @typedef {{ stack: string, layer: number, heads: Set<number>, filter: string, threshold: number, topShare: number,
 *   hideSpecial: boolean, merge: boolean, aggregation: string, meanHeads: boolean, thumbnails: boolean, shadeKeys: boolean,
 *   rows: number[] | null, columns: number[] | null, hover: Focus | null, pinned: Focus | null }} HeadViewState
 */
/**
 * What a page hosting the view may ask of it (the explorer app does; notebooks pass none):
 * `onToken(side, index, how)` replaces pinning on a click ("click"), a double-click ("dblclick") and the
 * M key ("mask"); `onHover(side, index, element)` hears hovers and focus (index null when they end);
 * `onHeads(heads)` hears head toggles, and keeps the heads choosable for aggregations that combine them
 * (the host then brings a payload of those heads); `controls: false` hides the control row;
 * `tooltip: false` the weights tooltip.
 * @typedef {{ onToken?: (side: string, index: number, how: string) => void,
 *   onHover?: (side: string, index: number | null, el: HTMLElement | null) => void,
 *   onHeads?: (heads: number[]) => void, controls?: boolean, tooltip?: boolean }} HeadViewHost
 */
/** @typedef {{ row: Int32Array, shown: number[] }} Rows */
/** @typedef {{ q: any[], k: any[], qRows: Rows, kRows: Rows }} Layout */
/** One set of lines drawn in one colour: `index` is its head in the layer data (0 for one combined set). @typedef {{ index: number, colour: string, label: string }} LineSet */
/**
 * @typedef {{ root: HTMLElement, controls: HTMLElement, headBar: HTMLElement, heads: HTMLElement, body: HTMLElement,
 *   queryCol: HTMLElement, keyCol: HTMLElement, linesBox: HTMLElement, canvas: HTMLCanvasElement, tooltip: HTMLElement,
 *   note: HTMLElement, status: HTMLElement, inputs: Record<string, any> }} HeadViewDom
 */
/**
 * One mounted head view: the widget model, its host, the payload header, the state, caches and elements;
 * `saving` while the view writes its selection to the model (whose change events it then ignores);
 * `thumbnails`, what the head thumbnails were last painted for ("" for nothing yet); `exact`, the exact weights
 * asked of Python (head_view_exact.js); `long`, the scrolling band of a long view (head_view_long.js), else null.
 * @typedef {{ model: any, host: HeadViewHost, header: any, stacks: Record<string, any>, state: HeadViewState, saving: boolean,
 *   thumbnails: string, exact: ExactStore, long: LongState | null,
 *   cache: Map<string, any>, store: { get: (role: string, index: number) => any, dispose: () => void },
 *   layout: Layout, dom: HeadViewDom, painted: { top: number, bottom: number, height: number } }} HeadView
 */

/** The state the model's values describe (unset values from the header's selection). @param {any} model @param {any} header @returns {HeadViewState} */
export function initialState(model, header) {
  const initial = header.selection;
  const token = model.get("token");
  const merge = Boolean(model.get("merge_subwords"));
  const pinned = token && typeof token.index === "number" && (token.unit === "word") === merge ? { side: token.side, index: token.index } : null;
  return {
    stack: model.get("stack") || initial.stack,
    layer: model.get("layer") ?? initial.layer,
    heads: new Set(/** @type {number[]} */ (model.get("heads") ?? initial.heads)),
    filter: model.get("filter") || "all",
    threshold: model.get("threshold") ?? header.threshold,
    topShare: model.get("top_share") ?? 1,
    hideSpecial: Boolean(model.get("hide_special")),
    merge,
    aggregation: model.get("aggregation") || initial.aggregation || "raw",
    meanHeads: Boolean(model.get("mean_heads")),
    thumbnails: Boolean(model.get("head_thumbnails")),
    shadeKeys: Boolean(model.get("shade_keys")),
    rows: model.get("rows") ?? null,
    columns: model.get("columns") ?? null,
    hover: null,
    pinned,
  };
}

/** @param {HeadView} v */
export const stackOf = (v) => v.stacks[v.state.stack];
/** @param {HeadView} v */
export const layerIndex = (v) => stackOf(v).layer_labels.indexOf(v.state.layer);
/** @param {HeadView} v */
export const querySeq = (v) => v.header.sequences[stackOf(v).query_tokens];
/** @param {HeadView} v */
export const keySeq = (v) => v.header.sequences[stackOf(v).key_tokens];
/** The shown heads, ascending. @param {HeadView} v */
export const shownHeads = (v) => [...v.state.heads].sort((a, b) => a - b);
/** The focused token: the hovered one, else the pinned one. @param {HeadView} v */
export const activeFocus = (v) => v.state.hover ?? v.state.pinned;

/** Whether the lines are one mean of the shown heads ("mean", or a per-head aggregation with mean_heads). @param {HeadView} v */
export function drawsMean(v) {
  const agg = v.state.aggregation;
  return agg === "mean" || (v.state.meanHeads && isPerHead(stackOf(v), agg));
}

/** Whether the aggregation combines every head into one layer (rollout, value_norm_sum). @param {HeadView} v */
export function combinesHeads(v) {
  return !isPerHead(stackOf(v), v.state.aggregation) && v.state.aggregation !== "mean";
}

/** Units on each side, which of them are shown, and each unit's row (-1 when hidden). @param {HeadView} v @returns {Layout} */
export function makeLayout(v) {
  const { state } = v;
  const q = unitsOf(querySeq(v), state.merge), k = unitsOf(keySeq(v), state.merge);
  /** @param {any[]} units @param {number[] | null} chosen */
  const rowsOf = (units, chosen) => {
    const keep = chosen ? new Set(chosen) : null;
    const row = new Int32Array(units.length).fill(-1);
    /** @type {number[]} */
    const shownUnits = [];
    units.forEach((u, n) => {
      if (state.hideSpecial && u.special) return;
      if (keep && !u.tokens.some((/** @type {number} */ t) => keep.has(t))) return;
      row[n] = shownUnits.length;
      shownUnits.push(n);
    });
    return { row, shown: shownUnits };
  };
  return { q, k, qRows: rowsOf(q, state.rows), kRows: rowsOf(k, state.columns) };
}

/**
 * The current layer over units with its line lists and the lines the top share keeps, or null while the
 * layer is on its way: the raw layer, the mean of the shown heads made from it (or from a per-head
 * aggregation), or a carried aggregation's layer. A long view in a notebook draws the rows it shows (`partial`:
 * true) while the whole layer is computed (head_view_long.js). @param {HeadView} v
 */
export function lineData(v) {
  const { state, layout } = v, s = stackOf(v), agg = state.aggregation;
  const mean = drawsMean(v), fromRaw = agg === "raw" || agg === "mean";
  const role = fromRaw ? state.stack : `${state.stack}/${agg}`;
  const full = v.store.get(role, layerIndex(v));
  const rows = full ? null : v.long?.partial(role, layerIndex(v)) ?? null; // a long view's band, before its layer
  const bytes = full ?? rows?.bytes;
  if (!bytes) return null;
  const key = [state.stack, state.layer, agg, mean ? shownHeads(v).join(",") : "", state.merge, state.threshold, state.topShare,
    rows ? `rows${rows.version}` : "all"].join(":");
  if (v.cache.has(key)) return v.cache.get(key);
  const one = { heads: 1, query: s.query, key: s.key };
  const shape = fromRaw ? s : { ...one, heads: s.aggregations[agg] };
  const made = mean
    ? layerData(meanWeights(bytes, v.header.encoding, shape, shownHeads(v)), DECODED, one, layout.q, layout.k, state.merge, state.threshold)
    : layerData(bytes, v.header.encoding, shape, layout.q, layout.k, state.merge, state.threshold);
  const keyRow = layout.kRows.row;
  const keep = state.topShare < 1 // per set of lines, which of them the top share keeps (null: all)
    ? made.lines.map((lines, h) => topShareLines(lines, (q) => made.rowTotal(h, q, keyRow), keyRow, state.topShare)) : null;
  if (v.cache.size >= CACHE_SIZE) v.cache.delete(/** @type {string} */ (v.cache.keys().next().value));
  v.cache.set(key, { ...made, keep, partial: rows !== null });
  return v.cache.get(key);
}

/** Segment ("A" or "B") of a unit, when queries and keys are one sentence pair; else null. @param {HeadView} v */
export function segmentTest(v) {
  const s = stackOf(v);
  const b = s.query_tokens === s.key_tokens ? querySeq(v).sentence_b_start ?? null : null;
  if (b === null) return null;
  return (/** @type {any} */ unit) => (unit.tokens[0] >= b ? "B" : "A");
}

/** The text colour of the view, for lines that combine heads. @param {HeadView} v */
function textColour(v) {
  const colour = getComputedStyle(v.dom.root).getPropertyValue("--attnscope-fg").trim();
  return /^#[0-9a-f]{6}$/i.test(colour) ? colour : "#555555";
}

/**
 * The sets of lines drawn: one per shown head (raw, per-head value norms), or one set for the mean of the
 * shown heads (in the head's colour when one head is shown) or an aggregation that combines the heads (in the
 * text colour). @param {HeadView} v @returns {LineSet[]}
 */
export function lineSets(v) {
  const { state } = v, heads = shownHeads(v);
  const dark = onDark(v.dom.root);
  if (drawsMean(v)) {
    if (heads.length === 0) return [];
    const colour = heads.length === 1 ? headColour(heads[0], dark) : textColour(v);
    return [{ index: 0, colour, label: `mean of heads ${heads.join(", ")}` }];
  }
  if (isPerHead(stackOf(v), state.aggregation)) return heads.map((h) => ({ index: h, colour: headColour(h, dark), label: `head ${h}` }));
  if (v.host.onHeads && heads.length === 0) return []; // the host combines the chosen heads: none are chosen
  const combined = /** @type {number[] | undefined} */ (stackOf(v).combined_heads);
  const of = combined && combined.length < stackOf(v).heads ? `heads ${combined.join(", ")}` : "all heads";
  const label = state.aggregation === "rollout" ? `rollout to layer ${state.layer}` + (of === "all heads" ? "" : ` (${of})`) : of;
  return [{ index: 0, colour: textColour(v), label }];
}

/**
 * Calls `paint(set, qRow, kRow, weight)` for every line of the selection (the focused token's only, when one
 * is focused); returns how many there are. @param {HeadView} v
 * @param {(set: LineSet, qr: number, kr: number, w: number) => void} paint
 */
export function eachLine(v, paint) {
  const d = lineData(v);
  if (!d) return 0;
  const { layout } = v, seg = segmentTest(v), f = v.state.filter;
  const qOk = layout.q.map((u) => f === "all" || !seg || seg(u) === f[0]);
  const kOk = layout.k.map((u) => f === "all" || !seg || seg(u) === f[1]);
  const active = activeFocus(v);
  let count = 0;
  for (const set of lineSets(v)) {
    const { q, k, w } = d.lines[set.index];
    const keep = d.keep?.[set.index];
    for (let n = 0; n < q.length; n++) {
      if (keep && !keep[n]) continue;
      const a = q[n], b = k[n];
      const qr = layout.qRows.row[a], kr = layout.kRows.row[b];
      if (qr < 0 || kr < 0 || !qOk[a] || !kOk[b]) continue;
      if (active && (active.side === "query" ? active.index !== a : active.index !== b)) continue;
      count++;
      paint(set, qr, kr, w[n]);
    }
  }
  return count;
}

/** Rows of the view in px: 4 to 20, smaller for long inputs. @param {HeadView} v */
export function rowHeight(v) {
  const rows = Math.max(v.layout.qRows.shown.length, v.layout.kRows.shown.length, 1);
  return Math.max(4, Math.min(20, Math.floor(30000 / rows)));
}
