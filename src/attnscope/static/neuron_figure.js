// @ts-check
/**
 * The neuron view's figure as SVG markup, drawn from one row's terms (neuron_terms.js): the query tokens,
 * q, every key k, the elementwise q×k, q·k, the scaled q·k (softcap, bias), the softmax and the sink; its
 * geometry, colour scales, style rules (on screen from CSS variables, in exports resolved) and number
 * format. Imported by neuron_view.js and neuron_view_export.js.
 */

import { shown, xmlText } from "./common.js";
/** @import { Terms } from "./neuron_terms.js" */

const PAD = 8, GAP = 14, NUM = 74, BAR = 100, HEAD = 36;
export const SVG_NS = "http://www.w3.org/2000/svg";
const LEGEND = "intensity: |value| ÷ the column's largest |value|; masked keys are grey and struck through";

/** A number as shown in a cell: 3 significant digits. @param {number} v */
export function formatValue(v) {
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
export function neuronRules(id, colour) {
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
 * shown keys' share of the softmax ("" for "all"); `positions`: labels start with the token's position (a long
 * input's figure shows a window of queries and scattered keys).
 * @typedef {{ queries: number[], keys: number[], filter: string, note: string, share: number, positions?: boolean }} Shown
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
  const extra = shown.positions ? Math.ceil(measure(`${Math.max(s.query, s.key)} `)) : 0;
  const wq = widest(header.sequences[s.query_tokens], 40) + extra, wk = widest(header.sequences[s.key_tokens], 48) + extra;
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

/** A token's label, after its position when `numbered`. @param {any} seq @param {number} i @param {boolean} [numbered] */
const labelOf = (seq, i, numbered = false) => (numbered ? `${i} ` : "") + pieceLabel(seq, i);

/**
 * The query tokens shown as a listbox, the selected one highlighted and focusable.
 * @param {Geometry} g @param {any} seq @param {number} query @param {number[]} positions the queries shown, one a row
 * @param {boolean} [numbered] labels after their positions
 */
function queryList(g, seq, query, positions, numbered = false) {
  const out = [`<g class="nv-queries" role="listbox" aria-label="query tokens">`];
  positions.forEach((i, row) => {
    const on = i === query, y = g.yk + row * g.R;
    out.push(`<g class="nv-query" data-index="${i}" role="option" aria-selected="${on}" tabindex="${on ? 0 : -1}">` +
      `<rect class="${on ? "sel" : "bg"}" x="${g.x.q}" y="${y}" width="${g.wq}" height="${g.R - 1}" rx="3"/>` +
      rowText(g, g.x.q + g.wq - 6, y, labelOf(seq, i, numbered), seq.special[i] ? "m" : "", "end") + `</g>`);
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
export function neuronFigure({ id, s, header, t, layer, head, query, shown, measure }) {
  const qTokens = header.sequences[s.query_tokens], kTokens = header.sequences[s.key_tokens];
  const g = neuronGeometry(s, header, t, layer, head, shown, measure);
  const scale = columnScales(t, s.key, s.head_dim);  // over every key, shown or not: colours compare across filters
  const out = [`<svg xmlns="${SVG_NS}" id="${id}" class="attnscope-nv-svg" width="${g.width}" height="${g.height}" viewBox="0 0 ${g.width} ${g.height}" role="img" aria-label="neuron view">`,
    `<rect class="bg" x="0" y="0" width="${g.width}" height="${g.height}"/>`, columnTitles(g, s, t, layer, scale, shown.filter !== "all"),
    rowText(g, g.x.k - 6, g.y0, `q “${pieceLabel(qTokens, query)}”`, "h", "end"), `<g data-kind="q">`];
  for (let d = 0; d < s.head_dim; d++) out.push(heatCell(g.x.k + d * g.C, g.y0, g.cw, g.R - 2, t.q[d], scale.qk, ""));
  out.push(`</g>`, queryList(g, qTokens, query, shown.queries, shown.positions));
  shown.keys.forEach((j, row) => out.push(keyRow(g, t, j, row, s.head_dim, labelOf(kTokens, j, shown.positions), kTokens.special[j], scale)));
  if (t.sink !== null) out.push(sinkRow(g, t, shown.keys.length));
  if (shown.note) {
    const y = g.rowsEnd - g.R;
    out.push(rowText(g, g.x.k, y, shown.note, "m nv-share", "start", ` data-kind="share" data-value="${shown.share}"`));
  }
  // sentence B starts below this line (in the query list and in the keys); a filter shows one sentence a side
  const everyRow = shown.filter === "all" && !shown.note; // (a long input's figure shows a window of rows)
  for (const [seq, x0, x1] of everyRow ? [[qTokens, g.x.q, g.x.q + g.wq], [kTokens, g.x.key, g.width - PAD]] : []) {
    const b = seq.sentence_b_start, y = g.yk + b * g.R - 0.5;
    if (b) out.push(`<line class="lg nv-pair" x1="${x0}" x2="${x1}" y1="${y}" y2="${y}"/>`);
  }
  out.push(legend(g, id), `</svg>`);
  return out.join("");
}
