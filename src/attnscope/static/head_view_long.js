// @ts-check
/**
 * The head view at long context (a payload of each query's strongest keys: header "lines"). Thousands of rows
 * do not fit one canvas (browsers cap a canvas near 32k px) nor a reader's eye, so the view scrolls through a
 * band of `BAND_ROWS` query rows: a scroller whose sizer is as tall as every row, holding the body sticky at its
 * top, in which only the band's tokens exist and only its lines are painted. Keys follow the band (self-
 * attention: the keys at the band's positions, so a query's line to a nearby key is level). A line to a key
 * outside the band ends at an edge slot above (earlier keys) or below it, labelled with the key's position and
 * token; past `EDGE_SLOTS` such keys the strongest keep a slot and the others share a "+N more" slot. A click
 * on an edge key, or the "Go to" box, scrolls to that position. The root's data-band says which query rows are
 * in the band ("start-end", rows of the shown queries). In a notebook, while Python computes a layer the view
 * asks for the band's rows (`ROWS_MESSAGE`, answered in milliseconds) and draws them (data-rows "partial"),
 * asking for more as it scrolls, until the whole layer arrives (data-rows "all"). Imported by head_view.js.
 */

import { labelled, make, toBytes, xmlText } from "./common.js";
import { sparseRows } from "./attention_data.js";
import { activeFocus, lineData, lineSets, segmentTest, shownHeads, stackOf } from "./head_view_data.js";
import { tokenNodes } from "./head_view_dom.js";
import { CANVAS_WIDTH } from "./head_view_paint.js";
import { createLineLayer, rgbOf } from "./raster.js";
/** @import { HeadView, LineSet } from "./head_view_data.js" */

export const ROW = 20; // px per row
export const BAND_ROWS = 30; // query rows in the band
export const EDGE_SLOTS = 6; // key slots above (and below) the band

/**
 * Where the band is: query rows [q0, q1), key rows [k0, k1), edge slots above and below, the body's height and
 * the largest first row. @typedef {{ q0: number, q1: number, k0: number, k1: number, top: number, bottom: number,
 *   height: number, last: number }} Band
 */
/**
 * The keys outside the band that the band's lines reach, by side: the keys given a slot (ascending) and how many
 * others share the "more" slot. @typedef {{ keys: number[], more: number, slot: Map<number, number> }} Edge
 */
/**
 * Rows of one layer answered before the whole layer (a notebook's `ROWS_MESSAGE`): each chunk's rows and bytes (the
 * sparse layout over heads × its rows), the ranges asked for, and the chunks merged into the layer's layout.
 * @typedef {{ chunks: { start: number, stop: number, bytes: Uint8Array }[], asked: Set<string>, merged: Uint8Array | null }} Rows
 */
/**
 * A long view's own state; `partial(role, index)`: the rows of a layer that has not arrived, merged (and the
 * band's rows asked for when they are missing), or null; `error`: what Python answered it could not compute.
 * @typedef {{ scroller: HTMLElement, sizer: HTMLElement, goTo: HTMLInputElement,
 *   on: (side: string, index: number, what: string, node: HTMLElement) => void, band: Band | null, built: string,
 *   data: any, edges: { top: Edge, bottom: Edge }, rows: Map<string, Rows>, error: string,
 *   partial: (role: string, index: number) => { bytes: Uint8Array, version: number } | null }} LongState
 */

export const ROWS_MESSAGE = "attnscope-rows";
const MARGIN = 30; // rows asked for above and below the band

/** Whether a payload's lines are each query's strongest keys (a long view). @param {any} header */
export const isLong = (header) => header.lines?.kind === "top_keys";

/** The first index of sorted `list` whose value is at least `x`. @param {number[]} list @param {number} x */
function lowerBound(list, x) {
  let lo = 0, hi = list.length;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (list[mid] < x) lo = mid + 1; else hi = mid; }
  return lo;
}

/**
 * Put the body in a scroller with a sizer, add the "Go to" box, and repaint when scrolling moves the band.
 * @param {HeadView} v @param {() => void} redraw @returns {() => void} the unsubscribe
 */
export function mountLong(v, redraw) {
  const { body, root, controls, note } = v.dom;
  const scroller = make("div", "attnscope-hv-scroll"), sizer = make("div", "attnscope-hv-sizer");
  body.classList.add("attnscope-hv-band");
  body.replaceWith(scroller);
  scroller.append(sizer);
  sizer.append(body);
  root.classList.add("attnscope-hv-long");
  const goTo = /** @type {HTMLInputElement} */ (make("input", "attnscope-hv-goto"));
  Object.assign(goTo, { type: "number", min: "0", step: "1", title: "scroll to this query position" });
  controls.insertBefore(labelled("attnscope-hv-label", "Go to", goTo), note);
  const merge = v.dom.inputs.merge;
  merge.disabled = true;
  merge.title = "words merge every weight of a row: at long context only each query's strongest keys are carried";
  const empty = { keys: [], more: 0, slot: new Map() };
  v.long = { scroller, sizer, goTo, on: () => {}, band: null, built: "", data: null, edges: { top: empty, bottom: empty },
    rows: new Map(), error: "", partial: (role, index) => partialRows(v, role, index) };
  const stopRows = hearRows(v, redraw);
  goTo.addEventListener("change", () => scrollTo(v, Number(goTo.value)));
  let pending = false;
  const onScroll = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      if (v.long && bandOf(v).q0 !== v.long.band?.q0) redraw();
    });
  };
  scroller.addEventListener("scroll", onScroll);
  return () => { scroller.removeEventListener("scroll", onScroll); stopRows(); };
}

/**
 * Hear Python's answers: rows of a layer (kept per layer), and layers it could not compute (their error).
 * @param {HeadView} v @param {() => void} redraw @returns {() => void} the unsubscribe
 */
function hearRows(v, redraw) {
  const long = /** @type {LongState} */ (v.long);
  /** @param {any} msg @param {any[]} [buffers] */
  const receive = (msg, buffers) => {
    if (msg?.type === ROWS_MESSAGE && msg.error) {
      long.error = `layer ${msg.layer} could not be computed: ${msg.error}`;
    } else if (msg?.type === ROWS_MESSAGE && buffers?.length) {
      const key = `${msg.role}:${msg.layer}`, rows = long.rows.get(key) ?? { chunks: [], asked: new Set(), merged: null };
      rows.chunks.push({ start: msg.start, stop: msg.stop, bytes: toBytes(buffers[0]) });
      rows.merged = null;
      long.rows.set(key, rows);
    } else return;
    redraw();
  };
  v.model.on("msg:custom", receive);
  return () => { if (typeof v.model.off === "function") v.model.off("msg:custom", receive); };
}

/**
 * The rows answered so far of a layer that has not arrived (merged into the layer's layout), asking Python for
 * the band's rows (and `MARGIN` around them) when some are missing; null in a page without a kernel, or before
 * any row is answered. @param {HeadView} v @param {string} role @param {number} index
 */
function partialRows(v, role, index) {
  if (typeof v.model.send !== "function" || !v.long) return null;
  const key = `${role}:${index}`, rows = v.long.rows.get(key) ?? { chunks: [], asked: new Set(), merged: null };
  v.long.rows.set(key, rows);
  const band = bandOf(v), shown = v.layout.qRows.shown;
  const covered = (/** @type {number} */ unit) => rows.chunks.some((c) => c.start <= unit && unit < c.stop);
  if (!shown.slice(band.q0, band.q1).every(covered)) {
    const start = shown[Math.max(0, band.q0 - MARGIN)] ?? 0;
    const stop = Math.min(start + 1024, (shown[Math.min(shown.length, band.q1 + MARGIN) - 1] ?? start) + 1);
    if (!rows.asked.has(`${start}-${stop}`)) {
      rows.asked.add(`${start}-${stop}`);
      v.model.send({ type: ROWS_MESSAGE, role, layer: index, start, stop });
    }
  }
  if (!rows.chunks.length) return null;
  rows.merged ??= mergeRows(rows.chunks, stackOf(v), v.header.encoding.index_bytes);
  return { bytes: rows.merged, version: rows.chunks.length };
}

/**
 * Chunks of rows (each the sparse layout over heads × its rows) as one layer's sparse layout over heads × query,
 * rows not answered left empty. @param {{ start: number, stop: number, bytes: Uint8Array }[]} chunks
 * @param {{ heads: number, query: number }} shape @param {number} indexBytes
 */
export function mergeRows(chunks, shape, indexBytes) {
  const { heads, query } = shape, rows = heads * query;
  const parts = chunks.map((c) => ({ ...c, ...sparseRows(c.bytes, heads * (c.stop - c.start), indexBytes) }));
  const counts = new Uint32Array(rows);
  for (const p of parts) {
    const n = p.stop - p.start;
    for (let h = 0; h < heads; h++) for (let i = 0; i < n; i++) counts[h * query + p.start + i] = p.starts[h * n + i + 1] - p.starts[h * n + i];
  }
  const out = new Uint8Array(4 * (rows + 1) + (indexBytes + 1) * counts.reduce((a, b) => a + b, 0));
  const starts = new Uint32Array(out.buffer, 0, rows + 1);
  for (let r = 0; r < rows; r++) starts[r + 1] = starts[r] + counts[r];
  const total = starts[rows], at = 4 * (rows + 1);
  const keys = indexBytes === 2 ? new Uint16Array(out.buffer, at, total) : new Uint32Array(out.buffer, at, total);
  const values = new Uint8Array(out.buffer, at + indexBytes * total, total);
  for (const p of parts) {
    const n = p.stop - p.start;
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < n; i++) {
        const from = p.starts[h * n + i], to = starts[h * query + p.start + i];
        keys.set(p.keys.subarray(from, p.starts[h * n + i + 1]), to);
        values.set(p.values.subarray(from, p.starts[h * n + i + 1]), to);
      }
    }
  }
  return out;
}

/** What the status says of a long view: an error, the rows shown while the layer is computed, or "". @param {HeadView} v @param {any} d `lineData` */
export function longStatus(v, d) {
  if (v.long?.error) return v.long.error;
  if (!d) return `loading layer ${v.state.layer}…`;
  return d.partial ? `layer ${v.state.layer}: the rows shown first, the whole layer on its way…` : "";
}

/** What the note beside the controls says of a long view: what its lines are, and which rows are shown. @param {HeadView} v */
export function longNote(v) {
  const band = v.long?.band, rows = v.layout.qRows.shown.length;
  const where = band ? `; query rows ${band.q0}-${band.q1 - 1} of ${rows.toLocaleString("en")} shown (scroll for more)` : "";
  return `lines: ${v.header.lines.text}${where}`;
}

/** Scroll so that query `position` (or the next shown one) is near the band's top. @param {HeadView} v @param {number} position */
export function scrollTo(v, position) {
  if (!v.long || !Number.isFinite(position)) return;
  const row = lowerBound(v.layout.qRows.shown, position);
  v.long.scroller.scrollTop = Math.max(0, row - 2) * ROW;
}

/** The band the scroller's position shows. @param {HeadView} v @returns {Band} */
function bandOf(v) {
  const { layout, state } = v, long = /** @type {LongState} */ (v.long), s = stackOf(v);
  const nq = layout.qRows.shown.length, nk = layout.kRows.shown.length;
  const rows = Math.max(1, Math.min(BAND_ROWS, Math.max(nq, nk)));
  const last = Math.max(0, nq - rows);
  const q0 = Math.min(last, Math.max(0, Math.round(long.scroller.scrollTop / ROW)));
  const same = s.query_tokens === s.key_tokens;
  const k0 = same ? lowerBound(layout.kRows.shown, layout.qRows.shown[q0] ?? 0) : Math.min(q0, Math.max(0, nk - rows));
  const aligned = same && s.causal && !state.rows && !state.columns; // no key after the band is ever reached
  const top = EDGE_SLOTS, bottom = aligned ? 0 : EDGE_SLOTS;
  return { q0, q1: Math.min(nq, q0 + rows), k0, k1: Math.min(nk, k0 + rows), top, bottom, height: (top + rows + bottom) * ROW, last };
}

/**
 * Calls `paint(set, a, b, kr, w)` for the lines from the band's query rows: query unit a, key unit b at key row kr,
 * weight w. `focused`: only the focused token's lines (else every line, as the edges are chosen).
 * @param {HeadView} v @param {any} d `lineData` @param {Band} band @param {boolean} focused
 * @param {(set: LineSet, a: number, b: number, kr: number, w: number) => void} paint
 */
function eachBandLine(v, d, band, focused, paint) {
  const { layout } = v, seg = segmentTest(v), f = v.state.filter, active = focused ? activeFocus(v) : null;
  const ok = (/** @type {any} */ unit, /** @type {number} */ at) => f === "all" || !seg || seg(unit) === f[at];
  for (const set of lineSets(v)) {
    const { k, w } = d.lines[set.index], keep = d.keep?.[set.index], starts = rowStarts(d, set.index, layout.q.length);
    for (let r = band.q0; r < band.q1; r++) {
      const a = layout.qRows.shown[r];
      if ((active?.side === "query" && active.index !== a) || !ok(layout.q[a], 0)) continue;
      for (let n = starts[a]; n < starts[a + 1]; n++) {
        const b = k[n], kr = layout.kRows.row[b];
        if ((keep && !keep[n]) || kr < 0 || !ok(layout.k[b], 1) || (active?.side === "key" && active.index !== b)) continue;
        paint(set, a, b, kr, w[n]);
      }
    }
  }
}

/** Where each query unit's lines start in a set's lists (cached on the layer's data). @param {any} d @param {number} set @param {number} units */
function rowStarts(d, set, units) {
  d.rowStarts ??= new Map();
  if (!d.rowStarts.has(set)) {
    const { q } = d.lines[set], starts = new Int32Array(units + 1);
    for (let n = 0; n < q.length; n++) starts[q[n] + 1]++;
    for (let a = 0; a < units; a++) starts[a + 1] += starts[a];
    d.rowStarts.set(set, starts);
  }
  return d.rowStarts.get(set);
}

/** The keys of one side given slots: all when they fit, else the strongest `slots - 1` and a "more" slot. @param {Map<number, number>} sums @param {number} slots @returns {Edge} */
function edgeOf(sums, slots) {
  let keys = [...sums.keys()], more = 0;
  if (slots === 0) return { keys: [], more: keys.length, slot: new Map() };
  if (keys.length > slots) {
    keys.sort((x, y) => /** @type {number} */ (sums.get(y)) - /** @type {number} */ (sums.get(x)) || x - y);
    more = keys.length - (slots - 1);
    keys = keys.slice(0, slots - 1);
  }
  keys.sort((x, y) => x - y);
  return { keys, more, slot: new Map(keys.map((b, i) => [b, i])) };
}

/** The keys outside the band that its lines reach (whatever is focused, so hovering moves nothing). @param {HeadView} v @param {any} d @param {Band} band */
function edgesOf(v, d, band) {
  /** @type {Map<number, number>} */ const above = new Map(), below = new Map();
  eachBandLine(v, d, band, false, (_set, _a, b, kr, w) => {
    if (kr >= band.k0 && kr < band.k1) return;
    const side = kr < band.k0 ? above : below;
    side.set(b, (side.get(b) ?? 0) + w);
  });
  return { top: edgeOf(above, band.top), bottom: edgeOf(below, band.bottom) };
}

/** The y of a key's line end: its row in the band, or its edge slot. @param {Band} band @param {{ top: Edge, bottom: Edge }} edges @param {number} b @param {number} kr */
function keyY(band, edges, b, kr) {
  if (kr >= band.k0 && kr < band.k1) return (band.top + kr - band.k0 + 0.5) * ROW;
  const above = kr < band.k0, edge = above ? edges.top : edges.bottom;
  const shown = edge.keys.length + (edge.more ? 1 : 0), slot = edge.slot.get(b) ?? edge.keys.length;
  const row = above ? band.top - shown + slot : band.top + (band.q1 - band.q0) + slot;
  return (row + 0.5) * ROW;
}

/**
 * Build the band's token nodes: its queries, its keys, and the edge keys with their positions.
 * @param {HeadView} v @param {Band} band
 */
function buildBand(v, band) {
  const { layout, dom } = v, long = /** @type {LongState} */ (v.long), { top, bottom } = long.edges;
  const at = (/** @type {HTMLElement} */ node, /** @type {number} */ row, /** @type {number} */ position) => {
    node.style.top = `${row * ROW}px`;
    node.prepend(make("span", "attnscope-hv-pos", String(position)));
    return node;
  };
  const queries = layout.qRows.shown.slice(band.q0, band.q1);
  dom.queryCol.replaceChildren(...tokenNodes(v, layout.q, queries, "query", long.on).map((node, i) => at(node, band.top + i, queries[i])));
  const keys = layout.kRows.shown.slice(band.k0, band.k1);
  const nodes = tokenNodes(v, layout.k, keys, "key", long.on).map((node, i) => at(node, band.top + i, keys[i]));
  const go = (/** @type {string} */ side, /** @type {number} */ index, /** @type {string} */ what, /** @type {HTMLElement} */ node) =>
    what === "click" ? scrollTo(v, index) : long.on(side, index, what, node);
  for (const [edge, first, word] of /** @type {[any, number, string][]} */ ([[top, band.top - top.keys.length - (top.more ? 1 : 0), "earlier"],
    [bottom, band.top + band.q1 - band.q0, "later"]])) {
    tokenNodes(v, layout.k, edge.keys, "key", go).forEach((node, i) => {
      node.classList.add("attnscope-hv-edge-key");
      node.title = `key ${edge.keys[i]}, outside the rows shown: click to scroll to it`;
      nodes.push(at(node, first + i, edge.keys[i]));
    });
    if (edge.more) {
      const more = make("div", "attnscope-hv-token attnscope-hv-edge-more", `+${edge.more} more`);
      more.title = `lines to ${edge.more} more ${word} keys end here`;
      more.style.top = `${(first + edge.keys.length) * ROW}px`;
      nodes.push(more);
    }
  }
  dom.keyCol.replaceChildren(...nodes);
}

/**
 * Draw the band: its nodes when the band, the layer or the lines changed, then its lines (the focused token's
 * only, when one is focused). Returns how many lines were painted. @param {HeadView} v
 */
export function drawLong(v) {
  const long = /** @type {LongState} */ (v.long), band = bandOf(v), d = lineData(v), { dom } = v;
  long.band = band;
  dom.root.style.setProperty("--attnscope-row", `${ROW}px`);
  long.scroller.style.height = `${band.height}px`;
  long.sizer.style.height = `${band.last * ROW + band.height}px`;
  for (const col of [dom.queryCol, dom.keyCol, dom.linesBox]) col.style.height = `${band.height}px`;
  const built = [band.q0, band.k0, band.q1, shownHeads(v).join(","), v.state.filter, v.layout.q.length].join(":");
  if (built !== long.built || d !== long.data) {
    long.edges = d ? edgesOf(v, d, band) : { top: edgeOf(new Map(), band.top), bottom: edgeOf(new Map(), band.bottom) };
    buildBand(v, band);
    Object.assign(long, { built, data: d });
  }
  Object.assign(dom.root.dataset, { band: `${band.q0}-${band.q1}`, edgeKeys: [...long.edges.top.keys, ...long.edges.bottom.keys].join(","),
    rows: d?.partial ? "partial" : "all" });
  return paintBand(v, d, band);
}

/** Paint the band's lines into the canvas; how many were painted. @param {HeadView} v @param {any} d @param {Band} band */
function paintBand(v, d, band) {
  const { canvas } = v.dom, ratio = window.devicePixelRatio || 1, long = /** @type {LongState} */ (v.long);
  canvas.width = CANVAS_WIDTH * ratio;
  canvas.height = Math.ceil(band.height * ratio);
  Object.assign(canvas.style, { width: `${CANVAS_WIDTH}px`, height: `${band.height}px`, top: "0px" });
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  const layer = createLineLayer(canvas.width, canvas.height);
  let drawn = 0;
  /** @type {LineSet | null} */
  let current = null;
  if (d) {
    eachBandLine(v, d, band, true, (set, a, b, kr, w) => {
      if (set !== current) {
        if (current) layer.end();
        layer.begin(rgbOf(set.colour));
        current = set;
      }
      const y0 = (band.top + v.layout.qRows.row[a] - band.q0 + 0.5) * ROW;
      layer.line(y0 * ratio, keyY(band, long.edges, b, kr) * ratio, Math.min(1, w), true);
      drawn++;
    });
  }
  if (current) layer.end();
  const image = ctx.createImageData(canvas.width, canvas.height);
  layer.write(image);
  ctx.putImageData(image, 0, 0);
  return drawn;
}

/** What is on screen (the band, its edges and lines) as an SVG document. @param {HeadView} v */
export function bandSVG(v) {
  const long = /** @type {LongState} */ (v.long), band = long.band ?? bandOf(v), d = lineData(v), { queryCol, keyCol, root } = v.dom;
  const left = queryCol.offsetWidth, width = left + CANVAS_WIDTH + keyCol.offsetWidth, style = getComputedStyle(root);
  const parts = [`<rect width="${width}" height="${band.height}" fill="${style.backgroundColor}"/>`];
  const text = (/** @type {HTMLElement} */ node, /** @type {number} */ x, /** @type {string} */ anchor) => {
    const y = parseFloat(node.style.top) + ROW / 2, label = node.textContent ?? "";
    parts.push(`<text x="${x}" y="${y}" text-anchor="${anchor}" dominant-baseline="middle">${xmlText(label)}</text>`);
  };
  for (const node of /** @type {HTMLCollectionOf<HTMLElement>} */ (queryCol.children)) text(node, left - 6, "end");
  for (const node of /** @type {HTMLCollectionOf<HTMLElement>} */ (keyCol.children)) text(node, left + CANVAS_WIDTH + 6, "start");
  if (d) {
    eachBandLine(v, d, band, true, (set, a, b, kr, w) => {
      const y0 = (band.top + v.layout.qRows.row[a] - band.q0 + 0.5) * ROW, y1 = keyY(band, long.edges, b, kr);
      parts.push(`<line x1="${left}" y1="${y0}" x2="${left + CANVAS_WIDTH}" y2="${y1}" stroke="${set.colour}" stroke-opacity="${Math.min(1, w).toFixed(3)}" stroke-width="2"/>`);
    });
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${band.height}" font-family="sans-serif" font-size="13" fill="${style.color}">${parts.join("")}</svg>`;
}
