// @ts-check
/**
 * attnscope neuron view (V3): how one head's attention row is computed from its query and key
 * neurons. For the selected stack, layer, head and query token: q, every key k, the elementwise
 * q×k, q·k, the scaled q·k (and the softcap), the bias, the mask, the attention sink and the
 * softmax, recomputed here from float32 q and k exactly as attnscope.analysis.neuron does.
 *
 * Its default export `{ render }` is bundled with what it imports (common.js, contrast.js, and
 * neuron_terms.js: decoding, the row's terms, the rows a sentence filter keeps) as
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

import { download, FILTERS, labelled, layerStore, make, readHeader, shown, uniqueId, xmlText } from "./common.js";
import { fitSvgText, onThemeChange } from "./contrast.js";
import { decodeNeuronLayer, filterRows, neuronTerms, pairStartOf, shownShare, startQuery } from "./neuron_terms.js";
/** @import { Terms } from "./neuron_terms.js" */

const NEURON_MESSAGE = "attnscope-neuron-layers";
const PAD = 8, GAP = 14, NUM = 74, BAR = 100, HEAD = 36;
const SVG_NS = "http://www.w3.org/2000/svg";
const LEGEND = "intensity: |value| ÷ the column's largest |value|; masked keys are grey and struck through";
const FALLBACK = { fg: "#1f2328", bg: "#ffffff", muted: "#6e7781", pos: "#0072b2", neg: "#d55e00",
  masked: "#afb8c1", highlight: "#dbe9f9" };
const KINDS = { q: "q", k: "k", prod: "q×k", dot: "q·k", scaled: "scaled q·k", capped: "softcapped",
  bias: "bias", softmax: "softmax", sink: "sink share", "sink-logit": "sink logit", share: "the shown keys' share of the softmax" };

/** A number as shown in a cell: 3 significant digits. @param {number} v */
function formatValue(v) {
  if (!Number.isFinite(v)) return v > 0 ? "∞" : "−∞";
  const a = Math.abs(v);
  const text = a !== 0 && (a < 1e-3 || a >= 1e4) ? v.toExponential(1) : v.toPrecision(3);
  return text.replace("-", "−");
}

/** The largest |value|, at least a tiny positive number. @param {ArrayLike<number>} values */
function largestAbs(values) {
  let m = 1e-12;
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i])) m = Math.max(m, Math.abs(values[i]));
  return m;
}

/** A token label short enough for its column. @param {string} token */
function tokenLabel(token) {
  const t = shown(token);
  return t.length > 18 ? t.slice(0, 17) + "…" : t;
}

/**
 * Token `i`'s label: "##" before a piece that continues the previous token's word (the header's
 * `continues`), as the head view and the app mark it. @param {any} seq a header sequence @param {number} i
 */
function pieceLabel(seq, i) {
  return (seq.continues?.[i] ? "##" : "") + tokenLabel(seq.tokens[i]);
}

/**
 * The SVG's own style rules, scoped to its id; `colour(name)` gives a CSS variable on screen and a
 * resolved colour in exported files.
 * @param {string} id @param {(name: string) => string} colour
 */
function neuronRules(id, colour) {
  const s = `#${id}`;
  return `${s} text{font:11px system-ui,-apple-system,"Segoe UI",sans-serif;fill:${colour("fg")}}` +
    `${s} .m{fill:${colour("muted")}} ${s} .h{font-weight:600} ${s} .p{fill:${colour("pos")}}` +
    `${s} .n{fill:${colour("neg")}} ${s} .bg{fill:${colour("bg")}} ${s} .sel{fill:${colour("highlight")}}` +
    `${s} .nv-masked .p,${s} .nv-masked .n{fill:${colour("masked")}} ${s} .nv-masked text{fill:${colour("muted")}}` +
    `${s} .nv-masked .nv-token{text-decoration:line-through}` +
    `${s} .lg{stroke:${colour("muted")};stroke-width:0.5} ${s} .ps{stop-color:${colour("pos")}} ${s} .ns{stop-color:${colour("neg")}} ${s} .bs{stop-color:${colour("bg")}}` +
    `${s} .nv-query{cursor:pointer} ${s} .nv-query:focus{outline:none} ${s} .nv-query:focus rect{stroke:${colour("pos")};stroke-width:1.5}`;
}

/**
 * A diverging heat cell: blue positive, orange negative, opacity = most · |v| / scale.
 * @param {number} x @param {number} y @param {number} w @param {number} h @param {number} v @param {number} scale @param {string} attrs
 * @param {number} [most] the largest opacity (numbers drawn over the cell stay readable)
 */
function heatCell(x, y, w, h, v, scale, attrs, most = 1) {
  const opacity = (most * Math.min(1, Math.abs(v) / scale)).toFixed(3);
  return `<rect class="${v < 0 ? "n" : "p"}" x="${x}" y="${y}" width="${w}" height="${h}" fill-opacity="${opacity}" data-value="${v}"${attrs ? " " + attrs : ""}/>`;
}

/**
 * @typedef {{ R: number, C: number, cw: number, font: number, wq: number, x: Record<string, number>,
 *   width: number, height: number, y0: number, yk: number, rowsEnd: number, caption: string }} Geometry
 */

/**
 * What a sentence filter leaves on screen: the query and key positions shown, and the note on the
 * shown keys' share of the softmax ("" for "all").
 * @typedef {{ queries: number[], keys: number[], filter: string, note: string, share: number }} Shown
 */

/**
 * Where everything goes: row height R, cell width C, the columns' x, the figure's size.
 * @param {any} s @param {any} header @param {Terms} t @param {number} layer @param {number} head @param {Shown} shown
 * @param {(text: string) => number} measure @returns {Geometry}
 */
function neuronGeometry(s, header, t, layer, head, shown, measure) {
  const dim = s.head_dim, rows = Math.max(shown.keys.length, shown.queries.length, 1);
  const R = Math.max(12, Math.min(18, Math.floor(2400 / rows))), C = Math.max(2, Math.min(10, Math.floor(256 / dim)));
  const widest = (/** @type {any} */ seq, /** @type {number} */ least) =>
    Math.ceil(Math.max(least, ...seq.tokens.map((/** @type {string} */ _, /** @type {number} */ i) => measure(pieceLabel(seq, i))))) + 12;
  const wq = widest(header.sequences[s.query_tokens], 40), wk = widest(header.sequences[s.key_tokens], 48);
  const block = Math.max(dim * C, 136);
  /** @type {Record<string, number>} */
  const x = { q: PAD, key: PAD + wq + GAP, k: PAD + wq + GAP + wk };
  x.prod = x.k + block + GAP;
  x.dot = x.prod + block + GAP;
  x.scaled = x.dot + NUM;
  x.capped = x.scaled + NUM;
  x.bias = x.capped + (s.softcap[layer] ? NUM : 0);
  x.softmax = x.bias + (t.bias ? NUM : 0) + 6;
  const caption = `${header.model ?? ""} · ${s.role} layer ${layer}, head ${head}`;
  const width = Math.ceil(Math.max(x.softmax + BAR + 56, x.k + 176 + Math.max(measure(LEGEND), measure(caption)),
    x.k + measure(shown.note))) + PAD;
  const y0 = PAD + HEAD, yk = y0 + R + 8;
  const rowsEnd = yk + rows * R + (t.sink !== null ? R + 4 : 0) + (shown.note ? R + 4 : 0);
  return { R, C, cw: C - (C > 3 ? 1 : 0), font: Math.min(11, R - 3), wq, x, width, height: rowsEnd + 44, y0, yk, rowsEnd, caption };
}

/** Text centred on row `y`. @param {Geometry} g @param {number} x @param {number} y @param {string} str @param {string} [cls] @param {string} [anchor] @param {string} [attrs] */
function rowText(g, x, y, str, cls = "", anchor = "start", attrs = "") {
  return `<text class="${cls}" x="${x}" y="${y + g.R / 2}" dominant-baseline="central" text-anchor="${anchor}" font-size="${g.font}"${attrs}>${xmlText(str)}</text>`;
}

/** Each column's largest |value|, which its colours are scaled to. @param {Terms} t @param {number} nk @param {number} dim */
function columnScales(t, nk, dim) {
  let keys = 1e-12;
  for (let j = 0; j < nk; j++) for (let d = 0; d < dim; d++) keys = Math.max(keys, Math.abs(t.k(j, d)));
  return { qk: Math.max(largestAbs(t.q), keys), prod: largestAbs(t.products), dot: largestAbs(t.dots),
    scaled: largestAbs(t.scaled), capped: largestAbs(t.capped), bias: t.bias ? largestAbs(t.bias) : 1 };
}

/**
 * The column titles, with the scale, softcap and sink spelled out (and "of all keys" under a filter).
 * @param {Geometry} g @param {any} s @param {Terms} t @param {number} layer @param {Record<string, number>} scale @param {boolean} filtered
 */
function columnTitles(g, s, t, layer, scale, filtered) {
  const x = g.x, cap = s.softcap[layer];
  const title = (/** @type {number} */ xx, /** @type {string} */ a, /** @type {string} */ b = "") =>
    `<text class="h" x="${xx}" y="${PAD + 12}">${xmlText(a)}</text>` + (b ? `<text class="m" x="${xx}" y="${PAD + 26}">${xmlText(b)}</text>` : "");
  return title(x.q, "Query") + title(x.k, "Key k", `max |q|,|k| ${formatValue(scale.qk)}`) +
    title(x.prod, "q × k (elementwise)", `max ${formatValue(scale.prod)}`) + title(x.dot, "q · k", "Σ q×k") +
    title(x.scaled, "scaled q·k", `× ${+s.scaling[layer].toPrecision(6)}`) +
    (cap ? title(x.capped, `softcap ${+cap}`, `${+cap}·tanh(x/${+cap})`) : "") +
    (t.bias ? title(x.bias, "+ bias") : "") +
    title(x.softmax, "softmax", [t.sink !== null ? "with sink" : "", filtered ? "of all keys" : ""].filter(Boolean).join(", "));
}

/**
 * The query tokens shown as a listbox, the selected one highlighted and focusable.
 * @param {Geometry} g @param {any} seq @param {number} query @param {number[]} positions the queries shown, one a row
 */
function queryList(g, seq, query, positions) {
  const out = [`<g class="nv-queries" role="listbox" aria-label="query tokens">`];
  positions.forEach((i, row) => {
    const on = i === query, y = g.yk + row * g.R;
    out.push(`<g class="nv-query" data-index="${i}" role="option" aria-selected="${on}" tabindex="${on ? 0 : -1}">` +
      `<rect class="${on ? "sel" : "bg"}" x="${g.x.q}" y="${y}" width="${g.wq}" height="${g.R - 1}" rx="3"/>` +
      rowText(g, g.x.q + g.wq - 6, y, pieceLabel(seq, i), seq.special[i] ? "m" : "", "end") + `</g>`);
  });
  return out.join("") + `</g>`;
}

/**
 * One key's row: its token, k, q×k, q·k, scaled (softcapped, bias) and softmax; grey when masked.
 * Heat cells carry only their value: kind and key come from their groups, the dimension from their order.
 * @param {Geometry} g @param {Terms} t @param {number} j the key @param {number} row where it is drawn @param {number} dim
 * @param {string} token its label (`pieceLabel`) @param {boolean} special @param {Record<string, number>} scale
 */
function keyRow(g, t, j, row, dim, token, special, scale) {
  const x = g.x, y = g.yk + row * g.R, a = `data-key="${j}"`, out = [];
  out.push(`<g class="nv-row${t.allowed[j] ? "" : " nv-masked"}" ${a} data-masked="${!t.allowed[j]}">`,
    rowText(g, x.k - 6, y, token, special ? "m nv-token" : "nv-token", "end"), `<g data-kind="k">`);
  for (let d = 0; d < dim; d++) out.push(heatCell(x.k + d * g.C, y, g.cw, g.R - 1, t.k(j, d), scale.qk, ""));
  out.push(`</g><g data-kind="prod">`);
  for (let d = 0; d < dim; d++) out.push(heatCell(x.prod + d * g.C, y, g.cw, g.R - 1, t.products[j * dim + d], scale.prod, ""));
  out.push(`</g>`);
  const number = (/** @type {string} */ kind, /** @type {number} */ v) =>
    heatCell(x[kind], y, NUM - 8, g.R - 1, v, scale[kind], `data-kind="${kind}" ${a}`, 0.6) + rowText(g, x[kind] + NUM - 10, y, formatValue(v), "", "end");
  out.push(number("dot", t.dots[j]), number("scaled", t.scaled[j]));
  if (g.x.bias > g.x.capped) out.push(number("capped", t.capped[j]));  // a softcap column
  if (t.bias) out.push(number("bias", t.bias[j]));
  const weight = t.allowed[j] ? t.softmax[j] : 0;
  out.push(`<rect class="${t.allowed[j] ? "p" : "bg"}" x="${x.softmax}" y="${y + 1}" width="${(weight * BAR).toFixed(2)}" height="${g.R - 3}" data-kind="softmax" ${a} data-value="${weight}"/>`,
    t.allowed[j] ? rowText(g, x.softmax + BAR + 4, y, formatValue(weight)) : rowText(g, x.softmax, y, "masked", "m"), `</g>`);
  return out.join("");
}

/** GPT-OSS's sink: its logit and the share of attention it takes. @param {Geometry} g @param {Terms} t @param {number} rows key rows above it */
function sinkRow(g, t, rows) {
  const y = g.yk + rows * g.R + 4, share = /** @type {number} */ (t.sinkShare), sink = /** @type {number} */ (t.sink);
  return `<g class="nv-sink-row">` + rowText(g, g.x.k - 6, y, "sink", "h", "end") + rowText(g, g.x.dot, y, "sink logit", "m") +
    rowText(g, g.x.softmax - 10, y, formatValue(sink), "", "end", ` data-kind="sink-logit" data-value="${sink}"`) +
    `<rect class="n" x="${g.x.softmax}" y="${y + 1}" width="${(share * BAR).toFixed(2)}" height="${g.R - 3}" data-kind="sink" data-value="${share}"/>` +
    rowText(g, g.x.softmax + BAR + 4, y, formatValue(share)) + `</g>`;
}

/** The colour legend and the caption. @param {Geometry} g @param {string} id */
function legend(g, id) {
  const x = g.x.k, y = g.rowsEnd + 14;
  return `<defs><linearGradient id="${id}-legend"><stop offset="0" class="ns"/><stop offset="0.5" class="bs"/><stop offset="1" class="ps"/></linearGradient></defs>` +
    `<rect class="lg" x="${x}" y="${y}" width="160" height="10" fill="url(#${id}-legend)"/>` +
    `<text class="m" x="${x}" y="${y + 24}">negative</text><text class="m" x="${x + 80}" y="${y + 24}" text-anchor="middle">0</text>` +
    `<text class="m" x="${x + 160}" y="${y + 24}" text-anchor="end">positive</text>` +
    `<text class="m" x="${x + 176}" y="${y + 9}">${xmlText(LEGEND)}</text><text class="m" x="${x + 176}" y="${y + 24}">${xmlText(g.caption)}</text>`;
}

/**
 * The whole figure as SVG markup: query tokens, q, k, q×k, q·k, scaled (softcap, bias), softmax.
 * Its style rules (`neuronRules`) are added as a DOM node: a closing style tag cannot sit in this file.
 * Only the `shown` queries and keys get rows; the softmax stays the model's, over every key.
 * @param {{ id: string, s: any, header: any, t: Terms, layer: number, head: number, query: number,
 *   shown: Shown, measure: (text: string) => number }} a
 */
function neuronFigure({ id, s, header, t, layer, head, query, shown, measure }) {
  const qTokens = header.sequences[s.query_tokens], kTokens = header.sequences[s.key_tokens];
  const g = neuronGeometry(s, header, t, layer, head, shown, measure);
  const scale = columnScales(t, s.key, s.head_dim);  // over every key, shown or not: colours compare across filters
  const out = [`<svg xmlns="${SVG_NS}" id="${id}" class="attnscope-nv-svg" width="${g.width}" height="${g.height}" viewBox="0 0 ${g.width} ${g.height}" role="img" aria-label="neuron view">`,
    `<rect class="bg" x="0" y="0" width="${g.width}" height="${g.height}"/>`, columnTitles(g, s, t, layer, scale, shown.filter !== "all"),
    rowText(g, g.x.k - 6, g.y0, `q “${pieceLabel(qTokens, query)}”`, "h", "end"), `<g data-kind="q">`];
  for (let d = 0; d < s.head_dim; d++) out.push(heatCell(g.x.k + d * g.C, g.y0, g.cw, g.R - 2, t.q[d], scale.qk, ""));
  out.push(`</g>`, queryList(g, qTokens, query, shown.queries));
  shown.keys.forEach((j, row) => out.push(keyRow(g, t, j, row, s.head_dim, pieceLabel(kTokens, j), kTokens.special[j], scale)));
  if (t.sink !== null) out.push(sinkRow(g, t, shown.keys.length));
  if (shown.note) {
    const y = g.rowsEnd - g.R;
    out.push(rowText(g, g.x.k, y, shown.note, "m nv-share", "start", ` data-kind="share" data-value="${shown.share}"`));
  }
  // sentence B starts below this line (in the query list and in the keys); a filter shows one sentence a side
  for (const [seq, x0, x1] of shown.filter === "all" ? [[qTokens, g.x.q, g.x.q + g.wq], [kTokens, g.x.key, g.width - PAD]] : []) {
    const b = seq.sentence_b_start, y = g.yk + b * g.R - 0.5;
    if (b) out.push(`<line class="lg nv-pair" x1="${x0}" x2="${x1}" y1="${y}" y2="${y}"/>`);
  }
  out.push(legend(g, id), `</svg>`);
  return out.join("");
}

/** Fill a select with the options 0..count-1. @param {HTMLSelectElement} select @param {number} count @param {string} prefix */
function numberOptions(select, count, prefix) {
  select.replaceChildren(...Array.from({ length: count }, (_, i) => new Option(`${prefix}${i}`, String(i))));
}

/**
 * @param {{ model: any, el: HTMLElement }} args
 * @returns {() => void} cleanup
 */
function render({ model, el }) {
  const header = readHeader(model);
  const stacks = Object.fromEntries(header.stacks.map((/** @type {any} */ s) => [s.role, s]));
  const initial = header.selection;
  const token = model.get("token");
  const state = {
    stack: /** @type {string} */ (model.get("stack") in stacks ? model.get("stack") : initial.stack),
    layer: /** @type {number} */ (model.get("layer") ?? initial.layer),
    head: /** @type {number} */ (model.get("head") ?? initial.head),
    query: /** @type {number} */ (token && Number.isInteger(token.index) ? token.index : initial.query),
    mode: /** @type {string} */ (model.get("display_mode") ?? "auto"),
    filter: /** @type {string} */ (model.get("filter") ?? initial.filter ?? "all"),
  };
  const root = make("div", "attnscope-nv");
  root.dataset.view = "neuron";
  const svgId = uniqueId("attnscope-nv-svg");
  const controls = make("div", "attnscope-nv-controls");
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
  controls.append(stackLabel, field("Layer", layerSelect), field("Head", headSelect), filterLabel, png, svgButton);
  const figureBox = make("div", "attnscope-nv-figure");
  const tooltip = make("div", "attnscope-nv-tooltip");
  tooltip.setAttribute("role", "tooltip");
  tooltip.hidden = true;
  root.append(controls, figureBox, tooltip);
  el.append(root);
  const measurer = /** @type {CanvasRenderingContext2D} */ (document.createElement("canvas").getContext("2d"));
  measurer.font = '11px system-ui, -apple-system, "Segoe UI", sans-serif';
  const source = layerStore(model, () => draw(), {
    message: NEURON_MESSAGE, field: "arrays", decode: (bytes, role) => decodeNeuronLayer(bytes, stacks[role]),
  });

  const stack = () => stacks[state.stack];
  /** The query and key positions the sentence filter shows. */
  const rows = () => filterRows(stack(), pairStartOf(header, stack()), state.filter);

  /** Keep the query among those the filter shows: else its sentence's first (Python's `default_query`). */
  function fitQuery() {
    const queries = rows().queries;
    if (!queries.includes(state.query)) state.query = startQuery(stack(), header.sequences[stack().query_tokens], queries);
  }

  function fitToStack() {
    const s = stack();
    state.layer = Math.min(Math.max(0, state.layer), s.layers - 1);
    state.head = Math.min(Math.max(0, state.head), s.heads - 1);
    state.query = Math.min(Math.max(0, state.query), s.query - 1);
    const pair = pairStartOf(header, s) !== null;
    if (!pair || !FILTERS.some(([value]) => value === state.filter)) state.filter = "all";
    fitQuery();
    filterLabel.hidden = !pair;
    filterSelect.value = state.filter;
    stackSelect.value = state.stack;
    numberOptions(layerSelect, s.layers, "");
    numberOptions(headSelect, s.heads, "");
    layerSelect.value = String(state.layer);
    headSelect.value = String(state.head);
  }

  function save() {
    model.set("stack", state.stack);
    model.set("layer", state.layer);
    model.set("head", state.head);
    model.set("token", { side: "query", index: state.query });
    model.set("filter", state.filter);
    model.save_changes();
  }

  /** A colour of the current theme, resolved from the root's CSS variables. @param {string} name */
  function resolved(name) {
    const value = getComputedStyle(root).getPropertyValue(`--attnscope-nv-${name}`).trim();
    return value || /** @type {Record<string, string>} */ (FALLBACK)[name];
  }

  /** Redraw the figure for the current selection (or say the layer is on its way). */
  function draw(focus = false) {
    root.classList.toggle("attnscope-nv-dark", state.mode === "dark");
    root.classList.toggle("attnscope-nv-light", state.mode === "light");
    const s = stack();
    const data = source.get(state.stack, state.layer);
    Object.assign(root.dataset, { stack: state.stack, layer: String(state.layer), head: String(state.head),
      query: String(state.query), filter: state.filter, loading: String(!data) });
    if (!data) {
      figureBox.replaceChildren(make("div", "attnscope-nv-loading", `loading layer ${state.layer}…`));
      return;
    }
    const t = neuronTerms(s, data, state.layer, state.head, state.query);
    figureBox.innerHTML = neuronFigure({ id: svgId, s, header, t, layer: state.layer, head: state.head, query: state.query,
      shown: shownRows(t), measure: (text) => measurer.measureText(text).width });
    const style = document.createElementNS(SVG_NS, "style");
    style.textContent = neuronRules(svgId, (name) => `var(--attnscope-nv-${name})`);
    const svg = figureBox.querySelector("svg");
    svg?.prepend(style);
    if (svg) fitSvgText(svg);
    if (focus) /** @type {SVGGElement | null} */ (figureBox.querySelector(`.nv-query[data-index="${state.query}"]`))?.focus();
  }

  /**
   * The rows the filter shows, and under a pair filter a line saying what share of the model's softmax
   * (over every key) the shown keys hold. @param {Terms} t @returns {Shown}
   */
  function shownRows(t) {
    const { queries, keys } = rows();
    if (state.filter === "all") return { queries, keys, filter: "all", note: "", share: 1 };
    const { share, over, masked } = shownShare(t, keys);
    const note = `softmax over all ${over}${masked ? " unmasked" : ""} keys of the row; ` +
      `the ${keys.length} ${state.filter[1]} keys shown hold ${formatValue(share)} of it`;
    return { queries, keys, filter: state.filter, note, share };
  }

  /** Apply a change made in the view: redraw and write the selection back. @param {boolean} [focus] */
  function changed(focus = false) {
    draw(focus);
    save();
  }

  /** The tooltip's text for a drawn value: its kind and key from the node or its groups. @param {HTMLElement} node */
  function describe(node) {
    const s = stack();
    const kind = /** @type {HTMLElement | null} */ (node.closest("[data-kind]"))?.dataset.kind ?? "";
    const key = /** @type {HTMLElement | null} */ (node.closest("[data-key]"))?.dataset.key;
    const parts = [KINDS[/** @type {keyof typeof KINDS} */ (kind)] ?? kind];
    if (key !== undefined) parts.push(`key ${key} “${shown(header.sequences[s.key_tokens].tokens[Number(key)])}”`);
    if (!node.dataset.kind) parts.push(`dim ${Array.prototype.indexOf.call(/** @type {Element} */ (node.parentNode).children, node)}`);
    return `${parts.join(" · ")} = ${node.dataset.value}`;
  }

  figureBox.addEventListener("pointerover", (event) => {
    const node = /** @type {HTMLElement | null} */ ((/** @type {Element} */ (event.target)).closest("[data-value]"));
    if (!node) { tooltip.hidden = true; return; }
    tooltip.textContent = describe(node);
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
    changed(true);
  });
  figureBox.addEventListener("keydown", (event) => {
    if (!(/** @type {Element} */ (event.target)).closest(".nv-query")) return;
    const queries = rows().queries, at = queries.indexOf(state.query), last = queries.length - 1;
    const moves = { ArrowUp: at - 1, ArrowDown: at + 1, Home: 0, End: last, PageUp: at - 10, PageDown: at + 10 };
    const next = /** @type {Record<string, number>} */ (moves)[event.key];
    if (next === undefined) return;
    event.preventDefault();
    state.query = queries[Math.min(last, Math.max(0, next))];
    changed(true);
  });
  stackSelect.addEventListener("change", () => { state.stack = stackSelect.value; fitToStack(); changed(); });
  layerSelect.addEventListener("change", () => { state.layer = Number(layerSelect.value); changed(); });
  headSelect.addEventListener("change", () => { state.head = Number(headSelect.value); changed(); });
  filterSelect.addEventListener("change", () => { state.filter = filterSelect.value; fitQuery(); changed(); });

  /** What is on screen as a standalone SVG document, with the theme's colours written in. */
  function svgDocument() {
    const live = figureBox.querySelector("svg");
    if (!live) return null;
    const clone = /** @type {SVGSVGElement} */ (live.cloneNode(true));
    /** @type {Element} */ (clone.querySelector("style")).textContent = neuronRules(svgId, resolved);
    return { text: new XMLSerializer().serializeToString(clone), width: live.width.baseVal.value, height: live.height.baseVal.value };
  }
  const fileName = (/** @type {string} */ ext) => `attnscope-neuron-${state.stack}-layer${state.layer}-head${state.head}` +
    `-query${state.query}${state.filter === "all" ? "" : "-" + state.filter}.${ext}`;
  svgButton.addEventListener("click", () => {
    const doc = svgDocument();
    if (doc) download(fileName("svg"), new Blob([doc.text], { type: "image/svg+xml" }));
  });
  png.addEventListener("click", () => {
    const doc = svgDocument();
    if (!doc) return;
    const image = new Image();
    image.onload = () => {
      const canvas = document.createElement("canvas");
      canvas.width = doc.width * 2;
      canvas.height = doc.height * 2;
      const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
      ctx.scale(2, 2);
      ctx.drawImage(image, 0, 0);
      canvas.toBlob((blob) => { if (blob) download(fileName("png"), blob); }, "image/png");
    };
    image.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(doc.text);
  });

  /** Changes made from Python (the widget's traits) redraw the view without writing back. */
  const listeners = {
    "change:stack": () => { const v = model.get("stack"); if (v in stacks && v !== state.stack) { state.stack = v; fitToStack(); draw(); } },
    "change:layer": () => { const v = model.get("layer"); if (Number.isInteger(v) && v !== state.layer && v >= 0 && v < stack().layers) { state.layer = v; layerSelect.value = String(v); draw(); } },
    "change:head": () => { const v = model.get("head"); if (Number.isInteger(v) && v !== state.head && v >= 0 && v < stack().heads) { state.head = v; headSelect.value = String(v); draw(); } },
    "change:token": () => { const v = model.get("token")?.index; if (v !== state.query && rows().queries.includes(v)) { state.query = v; draw(); } },
    "change:filter": () => {
      const v = model.get("filter");
      if (v === state.filter || pairStartOf(header, stack()) === null || !FILTERS.some(([value]) => value === v)) return;
      state.filter = filterSelect.value = v;
      fitQuery();
      draw();
    },
    "change:display_mode": () => { state.mode = model.get("display_mode") ?? "auto"; draw(); },
  };
  for (const [event, callback] of Object.entries(listeners)) model.on(event, callback);

  fitToStack();
  draw();
  root.dataset.ready = "true";
  const stopTheme = onThemeChange(() => draw());

  return () => {
    stopTheme();
    if (typeof model.off === "function") for (const [event, callback] of Object.entries(listeners)) model.off(event, callback);
    source.dispose();
    root.remove();
  };
}

export default { render };
