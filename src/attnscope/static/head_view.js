// @ts-check
/**
 * attnscope head view (V1): query tokens on the left, key tokens on the right, one line per
 * (head, query, key) whose opacity is the attention weight, a colour per head.
 *
 * Its default export `{ render }` is bundled with what it imports (common.js, contrast.js,
 * attention_data.js, raster.js) as static/bundles/head_view.js: the widget's `_esm` (views/head.py)
 * and the script the HTML export inlines (views/html.py). The explorer app does not load it: it draws
 * attention with app_attention.js. `render({ model, el })` reads:
 *   - "header": the payload header built by attnscope/views/payload.py (object or JSON string)
 *   - "layers": { role: [layer or null, ...] }, each layer the uint8 weights (heads, query, key)
 *     row-major; decoded weight = byte / 255. Missing layers are asked of Python (layerStore).
 *     Carried aggregations (B1) arrive the same way under "<role>/<method>" (rollout, value norms).
 *   - optional initial state: "stack", "layer", "heads", "filter", "threshold" (the minimum weight of a line),
 *     "top_share" (in (0, 1], 1 for off: per query row, only the fewest strongest lines whose weights make up
 *     that share of the row's weight on the shown keys, among those above the threshold), "hide_special",
 *     "merge_subwords", "rows", "columns" (token positions to keep, null for all), "aggregation"
 *     ("raw", "mean" of the shown heads, or a carried one: labelled by the header stack's "aggregation_methods")
 * and writes the selection back with model.set(...) + model.save_changes() ("token" included).
 *
 * Long inputs: the lines of a layer are listed once (those above the threshold), and only the band
 * of the view that is on screen is painted (software rasterisers pay per covered pixel), repainted
 * on scroll. The root exposes what is drawn: data-lines (lines in the current selection),
 * data-lines-drawn (painted in the visible band), data-stack, data-layer, data-heads, data-filter,
 * data-token, data-units ("tokens" or "words"), data-aggregation, data-top-share. Aggregations that combine the heads
 * into one ("mean", "rollout", "value_norm_sum") draw one set of lines in the text colour.
 */

import { download, FILTERS, headColour, labelled, layerStore, make, readHeader, shown, svgToPng, uniqueId, xmlText } from "./common.js";
import { fitLabels, onDark, onThemeChange } from "./contrast.js";
import { aggregationInfo, fillAggregations, layerData, meanLayer, parsePositions, PER_HEAD, topShareLines, unitsOf, unitText } from "./attention_data.js";
import { createLineLayer, rgbOf } from "./raster.js";

const CANVAS_WIDTH = 220;
const FULL_DRAW_LIMIT = 2000; // px: views up to this height are painted whole, taller ones by band

/** One set of lines drawn in one colour: `index` is its head in the layer data (0 for a combined aggregation). @typedef {{ index: number, colour: string, label: string }} LineSet */

/**
 * @param {{ model: any, el: HTMLElement }} args
 * @returns {() => void} cleanup
 */
function render({ model, el }) {
  const header = readHeader(model);
  const stacks = Object.fromEntries(header.stacks.map((/** @type {any} */ s) => [s.role, s]));
  const initial = header.selection;
  const state = {
    stack: /** @type {string} */ (model.get("stack") || initial.stack),
    layer: /** @type {number} */ (model.get("layer") ?? initial.layer),
    heads: new Set(/** @type {number[]} */ (model.get("heads") ?? initial.heads)),
    filter: /** @type {string} */ (model.get("filter") || "all"),
    threshold: /** @type {number} */ (model.get("threshold") ?? header.threshold),
    topShare: /** @type {number} */ (model.get("top_share") ?? 1),
    hideSpecial: Boolean(model.get("hide_special")),
    merge: Boolean(model.get("merge_subwords")),
    aggregation: /** @type {string} */ (model.get("aggregation") || initial.aggregation || "raw"),
    /** @type {number[] | null} */ rows: model.get("rows") ?? null,
    /** @type {number[] | null} */ columns: model.get("columns") ?? null,
    /** @type {{side: string, index: number} | null} */ hover: null,
    /** @type {{side: string, index: number} | null} */ pinned: null,
  };
  /** @type {Map<string, any>} */
  const cache = new Map();
  const store = layerStore(model, () => update(false));

  const root = make("div", "attnscope-hv");
  root.id = uniqueId("attnscope-hv");
  root.dataset.view = "head";
  const controls = make("div", "attnscope-hv-controls");
  const stackSelect = /** @type {HTMLSelectElement} */ (make("select", "attnscope-hv-stack"));
  const aggregationSelect = /** @type {HTMLSelectElement} */ (make("select", "attnscope-hv-aggregation"));
  const layerSelect = /** @type {HTMLSelectElement} */ (make("select", "attnscope-hv-layer"));
  const filterSelect = /** @type {HTMLSelectElement} */ (make("select", "attnscope-hv-filter"));
  const threshold = /** @type {HTMLInputElement} */ (make("input", "attnscope-hv-threshold"));
  Object.assign(threshold, { type: "number", min: "0", max: "0.99", step: "0.01", value: String(state.threshold) });
  const topShare = /** @type {HTMLInputElement} */ (make("input", "attnscope-hv-top-share"));
  Object.assign(topShare, { type: "number", min: "0.01", max: "1", step: "0.01", value: String(state.topShare) });
  topShare.title = "per query, only the strongest lines that make up this share of its attention (1: all lines)";
  const hideSpecial = checkbox("attnscope-hv-hide-special", state.hideSpecial);
  const merge = checkbox("attnscope-hv-merge", state.merge);
  const rowsInput = textbox("attnscope-hv-rows", state.rows);
  const columnsInput = textbox("attnscope-hv-columns", state.columns);
  const png = /** @type {HTMLButtonElement} */ (make("button", "attnscope-hv-png", "PNG"));
  const svg = /** @type {HTMLButtonElement} */ (make("button", "attnscope-hv-svg", "SVG"));
  png.type = svg.type = "button";
  const note = make("span", "attnscope-hv-note");
  const status = make("span", "attnscope-hv-status");
  status.setAttribute("role", "status");
  const field = (/** @type {string} */ text, /** @type {HTMLElement} */ control) => labelled("attnscope-hv-label", text, control);
  const stackLabel = field("Attention", stackSelect);
  const filterLabel = field("Sentences", filterSelect);
  controls.append(stackLabel, field("Show", aggregationSelect), field("Layer", layerSelect), filterLabel,
    field("Threshold", threshold), field("Top share", topShare), field("Hide special tokens", hideSpecial), field("Words", merge),
    field("Queries", rowsInput), field("Keys", columnsInput), png, svg, note, status);
  for (const s of header.stacks) stackSelect.append(new Option(s.role, s.role));
  for (const [value, text] of FILTERS) filterSelect.append(new Option(text, value));
  stackLabel.hidden = header.stacks.length < 2;

  const headBar = make("div", "attnscope-hv-heads");
  const body = make("div", "attnscope-hv-body");
  const queryCol = make("div", "attnscope-hv-col attnscope-hv-queries");
  const keyCol = make("div", "attnscope-hv-col attnscope-hv-keys");
  const linesBox = make("div", "attnscope-hv-lines");
  const canvas = document.createElement("canvas");
  canvas.className = "attnscope-hv-canvas";
  linesBox.append(canvas);
  body.append(queryCol, linesBox, keyCol);
  const tooltip = make("div", "attnscope-hv-tooltip");
  tooltip.setAttribute("role", "tooltip");
  tooltip.hidden = true;
  root.append(controls, headBar, body, tooltip);
  el.append(root);

  /** @param {string} className @param {boolean} on */
  function checkbox(className, on) {
    const box = /** @type {HTMLInputElement} */ (make("input", className));
    box.type = "checkbox";
    box.checked = on;
    return box;
  }
  /** @param {string} className @param {number[] | null} positions */
  function textbox(className, positions) {
    const box = /** @type {HTMLInputElement} */ (make("input", className));
    Object.assign(box, { type: "text", placeholder: "all", size: 8, value: positions ? positions.join(",") : "" });
    return box;
  }

  const stack = () => stacks[state.stack];
  const layerIndex = () => stack().layer_labels.indexOf(state.layer);
  const querySeq = () => header.sequences[stack().query_tokens];
  const keySeq = () => header.sequences[stack().key_tokens];

  /** Units on each side, which of them are shown, and each unit's row (-1 when hidden). */
  let layout = makeLayout();
  function makeLayout() {
    const q = unitsOf(querySeq(), state.merge), k = unitsOf(keySeq(), state.merge);
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

  const shownHeads = () => [...state.heads].sort((a, b) => a - b);

  /**
   * The current layer over units with its line lists, or null while the layer is on its way: the raw
   * layer, the mean of the shown heads made from it, or a carried aggregation's layer.
   */
  function data() {
    const agg = state.aggregation, s = stack();
    const key = `${state.stack}:${state.layer}:${agg}:${agg === "mean" ? shownHeads().join(",") : ""}:${state.merge}:${state.threshold}:${state.topShare}`;
    if (cache.has(key)) return cache.get(key);
    const fromRaw = agg === "raw" || agg === "mean";
    const bytes = store.get(fromRaw ? state.stack : `${state.stack}/${agg}`, layerIndex());
    if (!bytes) return null;
    const one = { heads: 1, query: s.query, key: s.key };
    const made = agg === "mean"
      ? layerData(meanLayer(bytes, header.encoding, s, shownHeads()), { sparse: false }, one, layout.q, layout.k, state.merge, state.threshold)
      : layerData(bytes, header.encoding, fromRaw ? s : { ...one, heads: s.aggregations[agg] }, layout.q, layout.k, state.merge, state.threshold);
    const keyRow = layout.kRows.row;
    const keep = state.topShare < 1 // per set of lines, which of them the top share keeps (null: all)
      ? made.lines.map((lines, h) => topShareLines(lines, (q) => made.rowTotal(h, q, keyRow), keyRow, state.topShare)) : null;
    if (cache.size >= 4) cache.delete(/** @type {string} */ (cache.keys().next().value));
    cache.set(key, { ...made, keep });
    return cache.get(key);
  }

  /** Segment ("A" or "B") of a unit on a side, when queries and keys are one sentence pair. */
  function segmentTest() {
    const s = stack();
    const b = s.query_tokens === s.key_tokens ? querySeq().sentence_b_start ?? null : null;
    if (b === null) return null;
    return (/** @type {any} */ unit) => (unit.tokens[0] >= b ? "B" : "A");
  }

  function rowHeight() {
    const rows = Math.max(layout.qRows.shown.length, layout.kRows.shown.length, 1);
    return Math.max(4, Math.min(20, Math.floor(30000 / rows)));
  }

  /**
   * The sets of lines drawn: one per shown head (raw, per-head value norms), or one set in the text
   * colour for an aggregation that combines the heads. `index` is the set's head in the layer data.
   * @returns {LineSet[]}
   */
  function lineSets() {
    const heads = shownHeads();
    const dark = onDark(root);
    if (PER_HEAD.has(state.aggregation)) return heads.map((h) => ({ index: h, colour: headColour(h, dark), label: `head ${h}` }));
    if (state.aggregation === "mean" && heads.length === 0) return [];
    const label = state.aggregation === "mean" ? `mean of heads ${heads.join(", ")}`
      : state.aggregation === "rollout" ? `rollout to layer ${state.layer}` : "all heads";
    const colour = getComputedStyle(root).getPropertyValue("--attnscope-fg").trim();
    return [{ index: 0, colour: /^#[0-9a-f]{6}$/i.test(colour) ? colour : "#555555", label }];
  }

  /** Calls `paint(set, qRow, kRow, weight)` for every line of the selection; returns how many there are. */
  function eachLine(/** @type {(set: LineSet, qr: number, kr: number, w: number) => void} */ paint) {
    const d = data();
    if (!d) return 0;
    const seg = segmentTest();
    const f = state.filter;
    const qOk = layout.q.map((u) => f === "all" || !seg || seg(u) === f[0]);
    const kOk = layout.k.map((u) => f === "all" || !seg || seg(u) === f[1]);
    const active = state.hover ?? state.pinned;
    let count = 0;
    for (const set of lineSets()) {
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

  /** The vertical band to paint: everything for short views, else what is on screen with a margin. @param {number} height */
  function band(height) {
    if (height <= FULL_DRAW_LIMIT) return { top: 0, bottom: height };
    const rect = linesBox.getBoundingClientRect();
    const view = window.innerHeight || 800;
    const top = Math.max(0, Math.min(height, -rect.top - view / 4));
    const bottom = Math.max(top, Math.min(height, view - rect.top + view / 4));
    return { top, bottom };
  }

  let painted = { top: 0, bottom: 0, height: 0 };
  function draw() {
    const row = rowHeight();
    root.style.setProperty("--attnscope-row", `${row}px`);
    const height = Math.max(layout.qRows.shown.length, layout.kRows.shown.length) * row;
    linesBox.style.height = `${height}px`;
    const { top, bottom } = band(height);
    painted = { top, bottom, height };
    const ratio = window.devicePixelRatio || 1;
    canvas.width = CANVAS_WIDTH * ratio;
    canvas.height = Math.max(1, Math.ceil((bottom - top) * ratio));
    canvas.style.width = `${CANVAS_WIDTH}px`;
    canvas.style.height = `${bottom - top}px`;
    canvas.style.top = `${top}px`;
    const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
    // Lines are rasterised in JS into one ImageData (raster.js): without a GPU, one canvas stroke per
    // line cost ~20 µs each at paint time (250 ms for the 12k lines of a long view).
    const width = canvas.width, bandHeight = canvas.height;
    const layer = createLineLayer(width, bandHeight);
    const thick = row >= 12; // 2 px lines on tall rows, as the SVG export
    let drawn = 0;
    /** @type {LineSet | null} */
    let current = null;
    const total = eachLine((set, qr, kr, w) => {
      const y0 = (qr + 0.5) * row, y1 = (kr + 0.5) * row;
      if (Math.max(y0, y1) < top || Math.min(y0, y1) > bottom) return;
      if (set !== current) {
        if (current) layer.end();
        layer.begin(rgbOf(set.colour));
        current = set;
      }
      layer.line((y0 - top) * ratio, (y1 - top) * ratio, Math.min(1, w), thick);
      drawn++;
    });
    if (current) layer.end();
    const image = ctx.createImageData(width, bandHeight);
    layer.write(image);
    ctx.putImageData(image, 0, 0);
    return { total, drawn };
  }

  function save() {
    const token = state.pinned ?? state.hover;
    const values = {
      stack: state.stack, layer: state.layer, heads: [...state.heads].sort((a, b) => a - b), filter: state.filter,
      threshold: state.threshold, top_share: state.topShare, hide_special: state.hideSpecial, merge_subwords: state.merge,
      rows: state.rows, columns: state.columns, aggregation: state.aggregation,
      token: token ? { ...token, unit: state.merge ? "word" : "token" } : null,
    };
    for (const [name, value] of Object.entries(values)) model.set(name, value);
    model.save_changes();
  }

  function buildStack() {
    const s = stack();
    if (!s.layer_labels.includes(state.layer)) state.layer = s.layer_labels[0];
    state.heads = new Set([...state.heads].filter((h) => h < s.heads));
    if (state.heads.size === 0) for (let h = 0; h < s.heads; h++) state.heads.add(h);
    if (segmentTest() === null) state.filter = "all";
    state.aggregation = fillAggregations(aggregationSelect, s, state.aggregation);
    stackSelect.value = state.stack;
    layerSelect.replaceChildren(...s.layer_labels.map((/** @type {number} */ l) => new Option(String(l), String(l))));
    layerSelect.value = String(state.layer);
    filterLabel.hidden = segmentTest() === null;
    filterSelect.value = state.filter;
    headBar.replaceChildren();
    for (let h = 0; h < s.heads; h++) {
      const button = /** @type {HTMLButtonElement} */ (make("button", "attnscope-hv-head", String(h)));
      button.type = "button";
      button.dataset.head = String(h);
      button.title = `head ${h}: click to show or hide, double-click to show only this head`;
      button.addEventListener("click", () => {
        if (state.heads.has(h)) state.heads.delete(h);
        else state.heads.add(h);
        update();
      });
      button.addEventListener("dblclick", () => { state.heads = new Set([h]); update(); });
      headBar.append(button);
    }
    relayout();
  }

  /** Rebuild the token columns after a change of stack, units, hidden tokens or chosen rows. */
  function relayout() {
    layout = makeLayout();
    cache.clear();
    queryCol.replaceChildren(...tokenNodes(layout.q, layout.qRows.shown, "query"));
    keyCol.replaceChildren(...tokenNodes(layout.k, layout.kRows.shown, "key"));
    state.hover = null;
    state.pinned = null;
  }

  /** @param {any[]} units @param {number[]} shownUnits @param {string} side */
  function tokenNodes(units, shownUnits, side) {
    return shownUnits.map((n) => {
      const node = make("div", "attnscope-hv-token", shown(units[n].label));
      node.dataset.side = side;
      node.dataset.index = String(n);
      node.tabIndex = 0;
      if (units[n].special) node.classList.add("attnscope-hv-special");
      if (units[n].continuation) node.classList.add("attnscope-hv-continuation");
      const pin = () => {
        const same = state.pinned && state.pinned.side === side && state.pinned.index === n;
        state.pinned = same ? null : { side, index: n };
        update();
      };
      node.addEventListener("mouseenter", () => { state.hover = { side, index: n }; update(false); });
      node.addEventListener("mouseleave", () => { state.hover = null; update(false); });
      node.addEventListener("click", pin);
      node.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); pin(); } });
      return node;
    });
  }

  function showTooltip() {
    const active = state.hover ?? state.pinned;
    const d = data();
    if (!active || !d) { tooltip.hidden = true; return; }
    const fromQuery = active.side === "query";
    const own = fromQuery ? layout.q : layout.k, other = fromQuery ? layout.k : layout.q;
    const otherRows = fromQuery ? layout.kRows : layout.qRows;
    tooltip.replaceChildren(make("div", "attnscope-hv-tip-title",
      `${fromQuery ? "query" : "key"} ${active.index} “${unitText(own[active.index])}”, layer ${state.layer}` +
      (fromQuery ? ": weights on keys" : ": weights from queries")));
    const perHead = PER_HEAD.has(state.aggregation);
    for (const set of lineSets()) {
      const line = make("div", "attnscope-hv-tip-head");
      if (perHead) line.dataset.head = String(set.index);
      else line.dataset.aggregation = state.aggregation;
      const swatch = make("span", "attnscope-hv-swatch");
      swatch.style.background = set.colour;
      line.append(swatch, make("span", "attnscope-hv-tip-name", set.label));
      const entries = [];
      for (const o of otherRows.shown) {
        const w = fromQuery ? d.weight(set.index, active.index, o) : d.weight(set.index, o, active.index);
        if (w > state.threshold) entries.push([o, w]);
      }
      entries.sort((a, b) => b[1] - a[1]);
      for (const [o, w] of entries.slice(0, 8)) {
        const item = make("span", "attnscope-hv-weight", `${unitText(other[o])} ${w.toFixed(3)}`);
        item.dataset.position = String(o);
        item.dataset.weight = String(w);
        line.append(item);
      }
      if (entries.length > 8) line.append(make("span", "attnscope-hv-more", `+${entries.length - 8} more`));
      tooltip.append(line);
    }
    tooltip.hidden = false;
    const rows = fromQuery ? layout.qRows : layout.kRows;
    tooltip.style.top = `${body.offsetTop + rows.row[active.index] * rowHeight() + 20}px`;
    tooltip.style.left = `${body.offsetLeft + keyCol.offsetLeft + keyCol.offsetWidth + 12}px`;
  }

  function highlight() {
    const active = state.hover ?? state.pinned;
    const causal = stack().causal && !!active && active.side === "query";
    const lastToken = causal && active ? Math.max(...layout.q[active.index].tokens) : -1;
    for (const [col, side, units] of /** @type {[HTMLElement, string, any[]][]} */ ([[queryCol, "query", layout.q], [keyCol, "key", layout.k]])) {
      for (const node of /** @type {HTMLCollectionOf<HTMLElement>} */ (col.children)) {
        const n = Number(node.dataset.index);
        node.classList.toggle("attnscope-hv-active", !!active && active.side === side && active.index === n);
        node.classList.toggle("attnscope-hv-future", causal && side === "key" && units[n].tokens[0] > lastToken);
      }
    }
    fitLabels([...queryCol.children, ...keyCol.children]);
  }

  /** Redraw and expose the state; `write` sends the selection back to Python. */
  function update(write = true) {
    const loaded = data() !== null;
    const { total, drawn } = draw();
    highlight();
    showTooltip();
    const allHeads = state.aggregation === "rollout" || state.aggregation === "value_norm_sum";
    const dark = onDark(root);
    for (const node of headBar.querySelectorAll("button")) {
      const button = /** @type {HTMLButtonElement} */ (node);
      button.style.setProperty("--attnscope-head", headColour(Number(button.dataset.head), dark));
      const on = allHeads || state.heads.has(Number(button.dataset.head));
      button.classList.toggle("attnscope-hv-off", !on);
      button.setAttribute("aria-pressed", String(on));
      button.disabled = allHeads; // these combine every head: there is no choice to make
    }
    fitLabels(headBar.querySelectorAll("button"));
    aggregationSelect.title = aggregationInfo(state.aggregation, stack()).about;
    note.textContent = aggregationInfo(state.aggregation, stack()).note;
    status.textContent = loaded ? "" : `loading layer ${state.layer}…`;
    const active = state.hover ?? state.pinned;
    Object.assign(root.dataset, {
      lines: String(total), linesDrawn: String(drawn), stack: state.stack, layer: String(state.layer),
      heads: [...state.heads].sort((a, b) => a - b).join(","), filter: state.filter,
      token: active ? `${active.side}:${active.index}` : "", units: state.merge ? "words" : "tokens",
      loading: String(!loaded), aggregation: state.aggregation, topShare: String(state.topShare),
    });
    if (write) save();
  }

  /** What is on screen (the painted band) as an SVG document: token labels and lines. */
  function toSVG() {
    const row = rowHeight();
    const { top, bottom } = painted;
    const left = queryCol.offsetWidth, width = left + CANVAS_WIDTH + keyCol.offsetWidth;
    const style = getComputedStyle(root);
    const parts = [`<rect width="${width}" height="${bottom - top}" fill="${style.backgroundColor}"/>`];
    /** @param {any[]} units @param {any} rows @param {number} x @param {string} anchor */
    const labels = (units, rows, x, anchor) => rows.shown.forEach((/** @type {number} */ n, /** @type {number} */ r) => {
      const y = (r + 0.5) * row - top;
      if (y >= 0 && y <= bottom - top) parts.push(`<text x="${x}" y="${y}" text-anchor="${anchor}" dominant-baseline="middle">${xmlText(unitText(units[n]))}</text>`);
    });
    labels(layout.q, layout.qRows, left - 6, "end");
    labels(layout.k, layout.kRows, left + CANVAS_WIDTH + 6, "start");
    eachLine((set, qr, kr, w) => {
      const y0 = (qr + 0.5) * row, y1 = (kr + 0.5) * row;
      if (Math.max(y0, y1) < top || Math.min(y0, y1) > bottom) return;
      parts.push(`<line x1="${left}" y1="${y0 - top}" x2="${left + CANVAS_WIDTH}" y2="${y1 - top}" stroke="${set.colour}" stroke-opacity="${Math.min(1, w).toFixed(3)}" stroke-width="${row >= 12 ? 2 : 1}"/>`);
    });
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${bottom - top}" font-family="sans-serif" font-size="${Math.min(13, row - 2)}" fill="${style.color}">${parts.join("")}</svg>`;
  }

  const fileName = () => `attnscope-head-view-${state.stack}-layer${state.layer}` +
    (state.aggregation === "raw" ? "" : `-${state.aggregation}`);
  svg.addEventListener("click", () => download(`${fileName()}.svg`, new Blob([toSVG()], { type: "image/svg+xml" })));
  png.addEventListener("click", () => svgToPng(toSVG(), (blob) => download(`${fileName()}.png`, blob)));
  stackSelect.addEventListener("change", () => { state.stack = stackSelect.value; buildStack(); update(); });
  aggregationSelect.addEventListener("change", () => { state.aggregation = aggregationSelect.value; update(); });
  layerSelect.addEventListener("change", () => { state.layer = Number(layerSelect.value); update(); });
  filterSelect.addEventListener("change", () => { state.filter = filterSelect.value; update(); });
  threshold.addEventListener("change", () => {
    const value = Number(threshold.value);
    const least = header.encoding.sparse ? header.threshold : 0; // a sparse view carries nothing below its threshold
    if (Number.isFinite(value) && value >= least && value < 1) {
      threshold.setCustomValidity("");
      state.threshold = value;
      cache.clear();
      update();
    } else {
      threshold.setCustomValidity(`the threshold must be in [${least}, 1)` + (least ? ": this view carries only weights above it" : ""));
      threshold.title = threshold.validationMessage;
    }
  });
  topShare.addEventListener("change", () => {
    const value = Number(topShare.value);
    if (Number.isFinite(value) && value > 0 && value <= 1) {
      topShare.setCustomValidity("");
      topShare.title = "";
      state.topShare = value;
      update();
    } else {
      topShare.setCustomValidity("the top share must be in (0, 1]: 1 draws every line above the threshold");
      topShare.title = topShare.validationMessage;
    }
  });
  hideSpecial.addEventListener("change", () => { state.hideSpecial = hideSpecial.checked; relayout(); update(); });
  merge.addEventListener("change", () => { state.merge = merge.checked; relayout(); update(); });
  for (const [input, side] of /** @type {[HTMLInputElement, "rows" | "columns"][]} */ ([[rowsInput, "rows"], [columnsInput, "columns"]])) {
    input.addEventListener("change", () => {
      const limit = (side === "rows" ? querySeq() : keySeq()).tokens.length;
      try {
        state[side] = parsePositions(input.value, limit);
        input.setCustomValidity("");
        input.title = "";
      } catch (error) {
        input.setCustomValidity(String(/** @type {Error} */ (error).message));
        input.title = String(/** @type {Error} */ (error).message);
        return;
      }
      relayout();
      update();
    });
  }

  /** Tall views repaint their band when scrolling brings unpainted rows on screen. */
  let pending = false;
  const onScroll = () => {
    if (pending || painted.height <= FULL_DRAW_LIMIT) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      const rect = linesBox.getBoundingClientRect();
      const view = window.innerHeight || 800;
      const visibleTop = Math.max(0, -rect.top), visibleBottom = Math.min(painted.height, view - rect.top);
      if (visibleTop < painted.top || visibleBottom > painted.bottom) update(false);
    });
  };
  document.addEventListener("scroll", onScroll, true);
  window.addEventListener("resize", onScroll);

  /** Changes made from Python (the widget's traits) redraw the view. */
  const listeners = {
    "change:layer": () => { const v = model.get("layer"); if (v !== state.layer && stack().layer_labels.includes(v)) { state.layer = v; layerSelect.value = String(v); update(false); } },
    "change:heads": () => {
      const v = [...new Set(/** @type {number[]} */ (model.get("heads") ?? []))].sort((a, b) => a - b);
      if (v.join(",") === [...state.heads].sort((a, b) => a - b).join(",")) return;
      state.heads = new Set(v);
      update(false);
    },
    "change:top_share": () => {
      const v = model.get("top_share");
      if (typeof v === "number" && v > 0 && v <= 1 && v !== state.topShare) { state.topShare = v; topShare.value = String(v); update(false); }
    },
    "change:filter": () => { const v = model.get("filter"); if (v && v !== state.filter) { state.filter = v; filterSelect.value = v; update(false); } },
    "change:stack": () => { const v = model.get("stack"); if (v in stacks && v !== state.stack) { state.stack = v; buildStack(); update(false); } },
    "change:aggregation": () => {
      const v = model.get("aggregation");
      if (v !== state.aggregation && fillAggregations(aggregationSelect, stack(), v) === v) { state.aggregation = v; update(false); }
    },
  };
  for (const [event, callback] of Object.entries(listeners)) model.on(event, callback);

  if (!(state.stack in stacks)) state.stack = initial.stack;
  buildStack();
  update(false);
  root.dataset.ready = "true";
  const stopRefit = onThemeChange(() => update(false)); // the theme's head colours, labels fitted again

  return () => {
    if (typeof model.off === "function") for (const [event, callback] of Object.entries(listeners)) model.off(event, callback);
    stopRefit();
    document.removeEventListener("scroll", onScroll, true);
    window.removeEventListener("resize", onScroll);
    store.dispose();
    root.remove();
  };
}

export default { render };
