// @ts-check
/**
 * The explorer app's attention view: the tokens twice (attending on the left, attended to on the
 * right), one line per (query, key) pair whose opacity is the mean weight of the selected heads at
 * the chosen layer, and a thumbnail per head to pick them. Lines are painted with raster.js (the
 * same pixel code as the notebook views); thumbnails are the model view's lines or heatmap. Imported by
 * app.js; it is not the notebook's head view (head_view.js), which the app does not load.
 *
 * `createAttentionView(host, handlers)` returns `{ draw(data, state, hover, aggregated) }`; the view
 * never changes state itself, it reports clicks, double-clicks (mask), hovers and head toggles through
 * `handlers`. With an `aggregated` result (`decodeAggregation`), the lines show it instead of the raw
 * weights: per-head methods replace the thumbnails too and average the selected heads; combined ones
 * are already one matrix per layer. Drawn facts are exposed on the host for tests and benchmarks:
 * data-layer, data-heads, data-token, data-show (the method drawn), data-lines (lines painted), data-pairs
 * (the sentence-pair filter applied: all, AA, BB, AB or BA).
 *
 * Token labels: a piece that continues the previous token's word (same word id, from the tokenizer)
 * has the class `as-continuation` (app.css marks it "##", as BertViz shows WordPiece's pieces); every
 * label's colour is fitted to its shade (contrast.js). A head's thumbnail draws its lines in the head's
 * colour (common.js's palette for the background: `PALETTE_DARK` on a dark theme) and carries its
 * number on a chip of that colour, in black or white, whichever contrasts more (at least 4.58:1). A redraw that rebuilds the tokens or the head
 * thumbnails gives the focus back to the same token or head, so the keyboard never falls to the page.
 */

import { headColour, make, SCALE, shown, toBytes } from "./common.js";
import { fitLabels, inkOn, onDark } from "./contrast.js";
import { headSums, PER_HEAD } from "./attention_data.js";
import { collectMarks, createLineLayer, createMarks, createScratch, minDrawnByte, paintLines, paintMatrix, rgbOf } from "./raster.js";
import { topShare } from "./app_state.js";
/** @import { AppState } from "./app_state.js" */

const ROW = 22; // px per token row
const LINE_WIDTH = 240; // px between the token columns
const THUMB = 56; // px per head thumbnail
const THUMB_LINES_MAX = 64; // thumbnails draw lines up to this many tokens, a heatmap above
const LINE_COLOUR = "#0072B2";

/**
 * The attention the API sent, decoded once.
 * @typedef {{ tokens: string[], special: boolean[], segments: number[], masked: number[], continuation: boolean[],
 *   layers: number, heads: number, n: number, bytes: Uint8Array }} AttentionData
 */

/**
 * @typedef {{ onSelect: (pos: number) => void, onMask: (pos: number) => void,
 *   onHeads: (heads: number[]) => void, onHover: (pos: number | null, el: HTMLElement | null) => void }} AttentionHandlers
 */

/** @param {any} response the body of POST /api/attention @returns {AttentionData} */
export function decodeAttention(response) {
  const [layers, heads, n] = response.attention.shape;
  const t = response.tokens;
  return { tokens: t.tokens, special: t.special, segments: t.segments, masked: t.masked,
    continuation: continuationsOf(t.word_ids ?? [], t.special), layers, heads, n,
    bytes: toBytes(response.attention.data) };
}

/**
 * Which tokens continue the previous token's word: an ordinary token with the same word id as the
 * token before it ("all ##er ##gies"). @param {(number | null)[]} wordIds @param {boolean[]} special
 */
export function continuationsOf(wordIds, special) {
  return special.map((s, i) => !s && i > 0 && wordIds[i] !== null && wordIds[i] !== undefined
    && wordIds[i] === wordIds[i - 1]);
}

/**
 * An aggregation the API sent (`POST /api/aggregation`), decoded once: `data` holds its layers like
 * raw attention (one head per layer for the combined methods), `heads` the heads it was made of.
 * With `words`, rows and columns are words: `data.tokens` are the words' text and `units` each
 * word's token positions; `base` then holds the raw weights between the same words, per head (the
 * thumbnails of a combined method).
 * @typedef {{ method: string, perHead: boolean, heads: number[], description: string, rowsScaled: boolean,
 *   words: boolean, units: number[][], data: AttentionData, base: AttentionData | null }} Aggregated
 */

/** @param {any} response the body of POST /api/aggregation @param {AttentionData} attention @returns {Aggregated} */
export function decodeAggregation(response, attention) {
  const [layers, heads, n] = response.weights.shape;
  /** @type {number[][]} */
  const units = response.units;
  if (n !== units.length || units.flat().length !== attention.n) {
    throw new Error(`the aggregation's ${n} rows do not cover the input's ${attention.n} tokens`);
  }
  const data = response.words ? {
    tokens: response.unit_text,
    special: units.map((u) => u.every((t) => attention.special[t])),
    segments: units.map((u) => attention.segments[u[0]]),
    masked: units.flatMap((u, i) => (u.some((t) => attention.masked.includes(t)) ? [i] : [])),
    continuation: units.map(() => false), layers, heads, n, bytes: toBytes(response.weights.data),
  } : { ...attention, layers, heads, bytes: toBytes(response.weights.data) };
  return { method: response.method, perHead: PER_HEAD.has(response.method) && heads === attention.heads,
    heads: response.heads, description: response.description, rowsScaled: response.rows_scaled, words: response.words,
    units, data, base: null };
}

/**
 * The mean over `heads` of one layer's weights, (query, key) row-major (attention_data.js's `headSums`, unrounded).
 * @param {AttentionData} data @param {number} layer @param {number[]} heads
 */
export function meanOfHeads(data, layer, heads) {
  const { n } = data;
  const block = data.heads * n * n;
  const layerBytes = data.bytes.subarray(layer * block, (layer + 1) * block);
  const sums = headSums(layerBytes, { sparse: false }, { heads: data.heads, query: n, key: n }, heads);
  const out = new Float32Array(sums.length);
  if (heads.length) {
    const f = 1 / (SCALE * heads.length);
    for (let i = 0; i < out.length; i++) out[i] = sums[i] * f;
  }
  return out;
}

/** @param {HTMLElement} host @param {AttentionHandlers} handlers */
export function createAttentionView(host, handlers) {
  const root = make("div", "as-attention");
  const headBar = make("div", "as-heads");
  headBar.setAttribute("role", "group");
  headBar.setAttribute("aria-label", "Heads");
  const all = /** @type {HTMLButtonElement} */ (make("button", "as-small", "All"));
  const none = /** @type {HTMLButtonElement} */ (make("button", "as-small", "None"));
  all.type = none.type = "button";
  all.id = "heads-all";
  none.id = "heads-none";
  const thumbs = make("div", "as-thumbs");
  headBar.append(all, none, thumbs);
  const columns = make("div", "as-columns");
  const queries = make("div", "as-col as-queries");
  const keys = make("div", "as-col as-keys");
  const canvas = document.createElement("canvas");
  canvas.className = "as-lines";
  canvas.setAttribute("aria-hidden", "true");
  columns.append(queries, canvas, keys);
  const empty = make("p", "as-empty", "");
  root.append(headBar, empty, columns);
  host.replaceChildren(root);

  /** @type {AttentionData | null} */
  let data = null;
  let tokenKey = "";
  /** @type {number[]} */
  let visible = [];
  /** @type {HTMLElement[]} */
  let queryEls = [];
  /** @type {HTMLElement[]} */
  let keyEls = [];
  /** @type {HTMLButtonElement[]} */
  let headEls = [];
  let heads = /** @type {number[]} */ ([]);
  const scratch = createScratch();
  const marks = createMarks();

  all.addEventListener("click", () => data && handlers.onHeads([...Array(data.heads).keys()]));
  none.addEventListener("click", () => handlers.onHeads([]));

  /** @param {number} pos @param {string} side */
  function tokenElement(pos, side) {
    if (!data) throw new Error("no data");
    const el = /** @type {HTMLElement} */ (make(side === "query" ? "button" : "span", `as-tok as-${side}`,
      shown(data.tokens[pos])));
    el.dataset.pos = String(pos);
    if (el instanceof HTMLButtonElement) el.type = "button";
    if (data.special[pos]) el.classList.add("as-special");
    if (data.segments[pos] === 1) el.classList.add("as-seg-b");
    if (data.masked.includes(pos)) el.classList.add("as-masked");
    if (data.continuation[pos]) el.classList.add("as-continuation");
    el.addEventListener("click", () => handlers.onSelect(pos));
    el.addEventListener("dblclick", () => handlers.onMask(pos));
    el.addEventListener("mouseenter", () => handlers.onHover(pos, el));
    el.addEventListener("mouseleave", () => handlers.onHover(null, null));
    if (side === "query") {
      el.addEventListener("focus", () => handlers.onHover(pos, el));
      el.addEventListener("blur", () => handlers.onHover(null, null));
      el.addEventListener("keydown", (event) => {
        const index = queryEls.indexOf(el);
        if (event.key === "ArrowDown" || event.key === "ArrowUp") {
          const next = queryEls[index + (event.key === "ArrowDown" ? 1 : -1)];
          if (next) next.focus();
          event.preventDefault();
        } else if (event.key === "m" || event.key === "M") {
          handlers.onMask(pos);
          event.preventDefault();
        }
      });
    }
    return el;
  }

  /** @param {boolean} hideSpecial */
  function buildTokens(hideSpecial) {
    if (!data) return;
    const d = data;
    const key = JSON.stringify([d.tokens, d.masked, d.segments, hideSpecial]);
    if (key === tokenKey) return;
    tokenKey = key;
    visible = [...Array(d.n).keys()].filter((p) => !(hideSpecial && d.special[p]));
    queryEls = visible.map((p) => tokenElement(p, "query"));
    keyEls = visible.map((p) => tokenElement(p, "key"));
    queries.replaceChildren(...queryEls);
    keys.replaceChildren(...keyEls);
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(LINE_WIDTH * ratio);
    canvas.height = Math.max(1, Math.round(visible.length * ROW * ratio));
    canvas.style.width = `${LINE_WIDTH}px`;
    canvas.style.height = `${visible.length * ROW}px`;
  }

  function buildThumbs() {
    if (!data) return;
    if (headEls.length === data.heads) return;
    headEls = [...Array(data.heads).keys()].map((h) => {
      const button = /** @type {HTMLButtonElement} */ (make("button", "as-head"));
      button.type = "button";
      button.dataset.head = String(h);
      button.title = `head ${h}: click to show or hide it`;
      button.setAttribute("aria-label", `head ${h}`);
      const c = document.createElement("canvas");
      c.width = c.height = THUMB;
      button.append(c, make("span", "as-head-label", String(h)));
      button.addEventListener("click", () => {
        const next = heads.includes(h) ? heads.filter((x) => x !== h) : [...heads, h].sort((a, b) => a - b);
        handlers.onHeads(next);
      });
      return button;
    });
    thumbs.replaceChildren(...headEls);
  }

  /** @param {number} layer @param {AttentionData} source raw attention, or a per-head aggregation of it */
  function paintThumbs(layer, source) {
    if (!data) return;
    const { n } = data;
    const rows = visible, cols = visible;
    const minByte = minDrawnByte(0.01);
    const dark = headEls.length > 0 && onDark(headEls[0]);
    headEls.forEach((button, h) => {
      const c = /** @type {HTMLCanvasElement} */ (button.querySelector("canvas"));
      const ctx = /** @type {CanvasRenderingContext2D} */ (c.getContext("2d"));
      const image = ctx.createImageData(THUMB, THUMB);
      collectMarks(source.bytes.subarray((layer * source.heads + h) * n * n), 0, n, rows, cols, minByte, marks);
      const colour = headColour(h, dark);
      const label = /** @type {HTMLElement} */ (button.querySelector(".as-head-label"));
      label.style.backgroundColor = colour; // the head's colour as a chip, its number in black or white on it
      label.style.color = inkOn(colour);
      const rgb = rgbOf(colour);
      if (rows.length <= THUMB_LINES_MAX) {
        paintLines(image, 0, 0, THUMB, THUMB, marks, THUMB / rows.length, THUMB / cols.length, rgb, scratch);
      } else {
        paintMatrix(image, 0, 0, THUMB, THUMB, marks, rows.length, cols.length, rgb, scratch);
      }
      ctx.putImageData(image, 0, 0);
      button.setAttribute("aria-pressed", String(heads.includes(h)));
    });
  }

  /**
   * Lines of the mean of the selected heads: every shown query's, or only `focus`'s when one is
   * selected or hovered; per row only the strongest keys that make up `threshold` of its attention;
   * of a sentence pair only the lines `pairs` keeps ("AB": from A's tokens to B's; "all").
   * @param {Float32Array} mean @param {number | null} focus @param {number} threshold @param {string} pairs
   */
  function paintLinesOf(mean, focus, threshold, pairs) {
    if (!data) return 0;
    const { n, segments } = data;
    const inSide = (/** @type {number} */ p, /** @type {string} */ side) => pairs === "all" || segments[p] === (side === "A" ? 0 : 1);
    const ratio = canvas.width / LINE_WIDTH;
    const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
    const image = ctx.createImageData(canvas.width, canvas.height);
    const layer = createLineLayer(canvas.width, canvas.height);
    const colour = heads.length === 1 ? headColour(heads[0], onDark(columns)) : LINE_COLOUR;
    layer.begin(rgbOf(colour));
    let count = 0;
    visible.forEach((q, r) => {
      if ((focus !== null && q !== focus) || !inSide(q, pairs[0])) return;
      const row = mean.subarray(q * n, (q + 1) * n);
      const keep = topShare(row, visible, threshold);
      visible.forEach((k, c) => {
        if (!keep[k] || !inSide(k, pairs[1])) return;
        layer.line((r + 0.5) * ROW * ratio, (c + 0.5) * ROW * ratio, Math.min(1, row[k]), focus !== null);
        count++;
      });
    });
    layer.end();
    layer.write(image);
    ctx.putImageData(image, 0, 0);
    return count;
  }

  /**
   * Draw `next` as `state` says; `hover` (a position or null) outranks the selected token; the lines
   * (and per-head thumbnails) show `aggregated` when it is given.
   * @param {AttentionData} next @param {AppState} state @param {number | null} hover
   * @param {Aggregated | null} [aggregated]
   */
  function draw(next, state, hover, aggregated = null) {
    const focused = focusedPart();
    if (data !== next) {
      data = next;
      headEls = [];
      tokenKey = "";
    }
    const d = data;
    heads = (state.heads ?? [...Array(d.heads).keys()]).filter((h) => h < d.heads);
    buildTokens(state.hideSpecial);
    buildThumbs();
    const layer = Math.min(state.layer, d.layers - 1);
    const perHead = aggregated?.perHead ? aggregated.data : null;
    paintThumbs(layer, perHead ?? d);
    const mean = !aggregated ? meanOfHeads(d, layer, heads) : perHead ? meanOfHeads(perHead, layer, heads)
      : meanOfHeads(aggregated.data, layer, heads.length ? [0] : []);
    const selected = state.token !== null && visible.includes(state.token) ? state.token : null;
    const focus = hover ?? selected;
    const pairs = d.segments.includes(1) ? state.pairs ?? "all" : "all";
    const count = paintLinesOf(mean, focus, state.threshold, pairs);
    empty.textContent = heads.length ? "" : "No heads selected: pick heads above (or All) to see their attention.";
    queryEls.forEach((el, r) => {
      el.classList.toggle("as-selected", visible[r] === selected);
      el.setAttribute("aria-pressed", String(visible[r] === selected));
    });
    keyEls.forEach((el, c) => {
      const w = focus === null ? 0 : mean[focus * d.n + visible[c]];
      el.style.backgroundColor = w > 0 ? `rgba(0, 114, 178, ${Math.min(0.85, w).toFixed(3)})` : "";
      el.dataset.weight = focus === null ? "" : w.toFixed(4);
    });
    root.dataset.layer = String(layer);
    root.dataset.heads = heads.join(",");
    root.dataset.show = aggregated?.method ?? "raw";
    root.dataset.token = selected === null ? "" : String(selected);
    root.dataset.lines = String(count);
    root.dataset.pairs = pairs;
    fitLabels([...queryEls, ...keyEls]);
    if (focused && !root.contains(document.activeElement)) {
      /** @type {HTMLElement | null} */ (root.querySelector(focused))?.focus();
    }
  }

  /** A selector for the token or head that has the keyboard focus, if one of them has it (it may be rebuilt). */
  function focusedPart() {
    const el = document.activeElement;
    if (!(el instanceof HTMLElement) || !root.contains(el)) return null;
    if (el.classList.contains("as-query")) return `.as-query[data-pos="${el.dataset.pos}"]`;
    if (el.classList.contains("as-head")) return `.as-head[data-head="${el.dataset.head}"]`;
    return null;
  }

  return { draw, root };
}

/**
 * Fill and place the predictions tooltip for the token at `at.pos` (below its element `at.el`): the
 * model's top predictions there, said as what they are (`at.mode` "next": the token after this one, as
 * a causal decoder predicts; "masked": what the model puts at this position), or the note saying why
 * there are none; hide it when `at` is null.
 * @param {HTMLElement} tooltip
 * @param {{ attention: AttentionData, predictions: any[] | null, mode: string, note: string, pos: number,
 *   el: HTMLElement } | null} at
 */
export function showPredictionsTip(tooltip, at) {
  if (!at) {
    tooltip.hidden = true;
    return;
  }
  const { attention, predictions, pos } = at;
  const parts = [make("strong", "", `${shown(attention.tokens[pos])} (position ${pos})`)];
  if (predictions) {
    const entry = predictions.find((p) => p.position === pos);
    const list = make("ol", "as-predictions");
    for (const c of entry?.candidates ?? []) {
      const item = make("li", "", `${shown(c.token)} `);
      item.append(make("span", "as-muted", `${(100 * c.probability).toFixed(1)}%`));
      list.append(item);
    }
    const what = at.mode === "next" ? "the model's predictions for the next token:"
      : attention.masked.includes(pos) ? "the model's predictions for this masked token:"
        : "the model's predictions for this position:";
    parts.push(make("p", "as-muted", what), list);
  } else {
    parts.push(make("p", "as-muted", at.note || "no predictions"));
  }
  tooltip.replaceChildren(...parts);
  tooltip.hidden = false;
  const box = at.el.getBoundingClientRect();
  const room = document.documentElement.clientWidth - tooltip.offsetWidth - 4; // never past the window's right edge
  tooltip.style.left = `${Math.round(Math.max(0, Math.min(box.left, room)) + window.scrollX)}px`;
  tooltip.style.top = `${Math.round(box.bottom + window.scrollY + 4)}px`;
}
