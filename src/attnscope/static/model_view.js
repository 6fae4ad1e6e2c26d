// @ts-check
/**
 * attnscope model view (V2): every layer × head of one attention stack as a thumbnail, drawn into
 * one canvas with pixel writes (raster.js), in two styles: "lines" (BertViz-like, query tokens on the
 * left to key tokens on the right, opacity = weight) and "matrix" (a heatmap, query rows × key
 * columns). Click a thumbnail (or focus it and press Enter) to enlarge it with its tokens; hover a
 * token for its exact weights; Escape closes.
 *
 * Its default export `{ render }` is bundled with what it imports (common.js, contrast.js,
 * attention_data.js, raster.js, model_view_detail.js: the enlarged view) as static/bundles/model_view.js:
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

import { download, FILTERS, headColour, labelled, layerStore, make, readHeader, uniqueId, xmlText } from "./common.js";
import { fitLabels, onDark, onThemeChange } from "./contrast.js";
import { aggregationInfo, fillAggregations, meanLayer, mergeLayer, PER_HEAD, unitsOf } from "./attention_data.js";
import { collectMarks, createMarks, createScratch, minDrawnByte, paintLines, paintMatrix, rgbOf, svgHead } from "./raster.js";
import { createDetail } from "./model_view_detail.js";

const GRID_WIDTH = 1040; // CSS px the grid aims at; thumbnails shrink for many heads
const CELL_MAX = 80;
const CELL_MIN = 24;
const GAP = 6;
const AUTO_LINES_MAX = 64; // "auto" draws lines up to this many tokens, a heatmap above
const SVG_MAX_MARKS = 200000; // above this the SVG embeds the grid as an image instead of elements
const EXPORT_MARGIN = 28; // px around the grid in exports, for the head and layer labels

/**
 * @param {{ model: any, el: HTMLElement }} args
 * @returns {() => void} cleanup
 */
function render({ model, el }) {
  const header = readHeader(model);
  /** @type {Record<string, any>} */
  const stacks = Object.fromEntries(header.stacks.map((/** @type {any} */ s) => [s.role, s]));
  const initial = header.selection;
  const state = {
    stack: /** @type {string} */ (model.get("stack") in stacks ? model.get("stack") : initial.stack),
    style: /** @type {string} */ (model.get("thumbnails") ?? "auto"),
    filter: /** @type {string} */ (model.get("filter") ?? "all"),
    hideSpecial: Boolean(model.get("hide_special")),
    merge: Boolean(model.get("merge_subwords")),
    threshold: /** @type {number} */ (model.get("threshold") ?? header.threshold),
    aggregation: /** @type {string} */ (model.get("aggregation") || initial.aggregation || "raw"),
    /** @type {{ layer: number, head: number } | null} indices into the carried layers and the grid's heads */
    open: null,
    /** @type {{ side: string, index: number, key?: number } | null} sequence positions */
    hover: null,
  };
  let writing = false;
  let ready = false;
  const marks = createMarks();
  const scratch = createScratch();

  const root = make("div", "attnscope-mv");
  root.id = uniqueId("attnscope-mv");
  root.dataset.view = "model";
  root.dataset.theme = model.get("theme") || "auto";
  const controls = make("div", "attnscope-mv-controls");
  const stackSelect = select("attnscope-mv-stack", header.stacks.map((/** @type {any} */ s) => [s.role, s.role]));
  const filterSelect = select("attnscope-mv-filter", FILTERS);
  const styleSelect = select("attnscope-mv-style", [["lines", "Lines"], ["matrix", "Matrix"]]);
  const aggregationSelect = select("attnscope-mv-aggregation", []);
  const note = make("span", "attnscope-mv-note");
  const specialBox = /** @type {HTMLInputElement} */ (make("input", "attnscope-mv-hide-special"));
  specialBox.type = "checkbox";
  const wordsBox = /** @type {HTMLInputElement} */ (make("input", "attnscope-mv-words"));
  wordsBox.type = "checkbox";
  const pngButton = button("attnscope-mv-png", "PNG", "Save the grid as a PNG image");
  const svgButton = button("attnscope-mv-svg", "SVG", "Save the grid as an SVG drawing");
  const field = (/** @type {string} */ text, /** @type {HTMLElement} */ control) => labelled("attnscope-mv-label", text, control);
  const stackLabel = field("Attention", stackSelect);
  const filterLabel = field("Sentences", filterSelect);
  const wordsLabel = field("Words", wordsBox);
  wordsLabel.title = "Merge subword tokens into words: attention to a word is the sum over its tokens, " +
    "from a word the mean";
  controls.append(stackLabel, field("Show", aggregationSelect), filterLabel, field("Style", styleSelect),
    field("Hide special tokens", specialBox), wordsLabel, pngButton, svgButton, note);
  stackLabel.hidden = header.stacks.length < 2;
  wordsLabel.hidden = !Object.values(header.sequences).some((/** @type {any} */ seq) => seq.words?.length);

  const gridWrap = make("div", "attnscope-mv-grid");
  const headLabels = make("div", "attnscope-mv-head-labels");
  const layerLabels = make("div", "attnscope-mv-layer-labels");
  const cellArea = make("div", "attnscope-mv-cells");
  const canvas = document.createElement("canvas");
  canvas.className = "attnscope-mv-canvas";
  cellArea.append(canvas);
  gridWrap.append(make("div", "attnscope-mv-corner", "layer \\ head"), headLabels, layerLabels, cellArea);
  const detail = createDetail({
    root, state, stack: shownStack, sequences, style, positions, marks, scratch, colour: colourOf, name: headName,
    bytes: layerBytes,
    hovered: () => save(),
    close: () => closeCell(),
  });
  const views = make("div", "attnscope-mv-views");
  views.append(gridWrap, detail.panel);
  root.append(controls, views, detail.tooltip);
  el.append(root);
  /** @type {HTMLButtonElement[]} */
  let cells = [];

  const store = layerStore(model, () => { drawGrid(); if (state.open) detail.draw(); });

  /** @param {string} className @param {string[][]} options */
  function select(className, options) {
    const node = /** @type {HTMLSelectElement} */ (make("select", className));
    for (const [value, text] of options) node.append(new Option(text, value));
    return node;
  }

  /** @param {string} className @param {string} text @param {string} title */
  function button(className, text, title) {
    const node = /** @type {HTMLButtonElement} */ (make("button", `attnscope-mv-button ${className}`, text));
    node.type = "button";
    node.title = title;
    return node;
  }

  /** The current stack's header; between words, its query and key counts are the words'. */
  function stack() {
    const s = stacks[state.stack];
    if (!state.merge) return s;
    return { ...s, query: unitsFor(s.query_tokens).length, key: unitsFor(s.key_tokens).length };
  }

  /** @type {Map<string, {label: string, special: boolean, tokens: number[]}[]>} words of each sequence */
  const wordUnits = new Map();

  /** A sequence's units: its tokens, or its words in words mode (`unitsOf`). @param {string} name */
  function unitsFor(name) {
    if (!state.merge) return unitsOf(header.sequences[name], false);
    if (!wordUnits.has(name)) wordUnits.set(name, unitsOf(header.sequences[name], true));
    return /** @type {{label: string, special: boolean, tokens: number[]}[]} */ (wordUnits.get(name));
  }

  /** The sequences as the grid and the enlarged view show them: tokens, or words in words mode. */
  function sequences() {
    if (!state.merge) return header.sequences;
    return Object.fromEntries(Object.entries(header.sequences).map(([name, seq]) => {
      const units = unitsFor(name);
      const b = /** @type {any} */ (seq).sentence_b_start;
      return [name, { tokens: units.map((u) => u.label), special: units.map((u) => u.special),
        sentence_b_start: b === null || b === undefined ? null : units.findIndex((u) => u.tokens[0] >= b) }];
    }));
  }

  /** Whether the current aggregation combines the heads into one thumbnail per layer. */
  const combined = () => !PER_HEAD.has(state.aggregation);

  /** The current stack as the grid shows it: its header, with one head per layer for a combination. */
  function shownStack() {
    return combined() ? { ...stack(), heads: 1, head_labels: [null] } : stack();
  }

  /**
   * The colour of the grid's head `h`: the head's own (from the dark palette on a dark theme), or the
   * text colour for a combination. @param {number} h
   */
  function colourOf(h) {
    if (!combined()) return headColour(stack().head_labels[h], onDark(root));
    const fg = getComputedStyle(root).getPropertyValue("--attnscope-mv-fg").trim();
    return /^#[0-9a-f]{6}$/i.test(fg) ? fg : "#555555";
  }

  /** How the grid's head `h` is named in labels and titles. @param {number} h */
  function headName(h) {
    return combined() ? aggregationInfo(state.aggregation, stack()).label : `head ${stack().head_labels[h]}`;
  }

  /** @type {Map<number, Uint8Array>} means of the carried heads, per layer of the current stack */
  const means = new Map();
  /** @type {Map<number, Uint8Array>} the shown layers merged into words, per layer of the current stack */
  const merged = new Map();

  /**
   * Layer `l` of the current stack between tokens, (grid heads, query, key) bytes, or null while it is
   * on its way: raw, the mean of the carried heads made from raw, or a carried aggregation's.
   * @param {number} l
   */
  function tokenLayerBytes(l) {
    const agg = state.aggregation, s = stacks[state.stack];
    if (agg !== "mean") return store.get(agg === "raw" ? state.stack : `${state.stack}/${agg}`, l);
    if (!means.has(l)) {
      const raw = store.get(state.stack, l);
      if (!raw) return null;
      means.set(l, meanLayer(raw, { sparse: false }, s, [...Array(s.heads).keys()]));
    }
    return /** @type {Uint8Array} */ (means.get(l));
  }

  /** Layer `l` as the grid draws it: `tokenLayerBytes`, merged into words in words mode. @param {number} l */
  function layerBytes(l) {
    const bytes = tokenLayerBytes(l);
    if (!bytes || !state.merge) return bytes;
    if (!merged.has(l)) {
      const s = stacks[state.stack];
      const shape = { heads: bytes.length / (s.query * s.key), query: s.query, key: s.key };
      merged.set(l, mergeLayer(bytes, shape, unitsFor(s.query_tokens), unitsFor(s.key_tokens)));
    }
    return /** @type {Uint8Array} */ (merged.get(l));
  }

  /** The "lines" or "matrix" style in use ("auto" picks by the stack's token count). */
  function style() {
    if (state.style === "lines" || state.style === "matrix") return state.style;
    const s = stack();
    return Math.max(s.query, s.key) <= AUTO_LINES_MAX ? "lines" : "matrix";
  }

  /** The sentence-B start when queries and keys are the same sequence of a sentence pair. */
  function pairStart() {
    const s = stack();
    if (s.query_tokens !== s.key_tokens) return null;
    return sequences()[s.query_tokens].sentence_b_start ?? null;
  }

  /** The query and key positions the sentence filter and the special-token switch keep. */
  function positions() {
    const s = stack();
    const b = pairStart();
    const f = b === null ? "all" : state.filter;
    const keep = (/** @type {string} */ seqName, /** @type {number} */ count, /** @type {string} */ segment) => {
      const special = sequences()[seqName].special;
      const kept = [];
      for (let i = 0; i < count; i++) {
        if (f !== "all" && (b !== null && i >= b ? "B" : "A") !== segment) continue;
        if (!(state.hideSpecial && special[i])) kept.push(i);
      }
      return kept;
    };
    return { rows: keep(s.query_tokens, s.query, f[0]), cols: keep(s.key_tokens, s.key, f[1]) };
  }

  function geometry() {
    const s = shownStack();
    const cell = Math.max(CELL_MIN, Math.min(CELL_MAX, Math.floor(GRID_WIDTH / s.heads) - GAP));
    return { cell, width: s.heads * (cell + GAP) - GAP, height: s.layers * (cell + GAP) - GAP };
  }

  /** Labels and one focusable button per thumbnail, for the current stack. */
  function buildGrid() {
    const s = shownStack();
    const g = geometry();
    root.style.setProperty("--attnscope-mv-cell", `${g.cell}px`);
    root.style.setProperty("--attnscope-mv-gap", `${GAP}px`);
    headLabels.replaceChildren(...s.head_labels.map((/** @type {number | null} */ h, /** @type {number} */ i) => {
      const label = make("span", "attnscope-mv-head-label", h === null ? headName(i) : String(h));
      label.style.setProperty("--attnscope-head", colourOf(i));
      return label;
    }));
    state.aggregation = fillAggregations(aggregationSelect, stack(), state.aggregation);
    layerLabels.replaceChildren(...s.layer_labels.map((/** @type {number} */ l) => make("span", "attnscope-mv-layer-label", String(l))));
    cells = [];
    for (let l = 0; l < s.layers; l++) {
      for (let h = 0; h < s.heads; h++) {
        const cell = /** @type {HTMLButtonElement} */ (make("button", "attnscope-mv-cell"));
        cell.type = "button";
        Object.assign(cell.dataset, { layer: String(s.layer_labels[l]), head: s.head_labels[h] === null ? "" : String(s.head_labels[h]), row: String(l), col: String(h) });
        cell.style.left = `${h * (g.cell + GAP)}px`;
        cell.style.top = `${l * (g.cell + GAP)}px`;
        cell.addEventListener("click", () => openCell(l, h));
        cells.push(cell);
      }
    }
    cellArea.replaceChildren(canvas, ...cells);
    cellArea.style.width = `${g.width}px`;
    cellArea.style.height = `${g.height}px`;
  }

  /**
   * Draw every available layer's thumbnails into the grid canvas; true when no layer was missing.
   * Each thumbnail's button gets data-drawn, the number of weights above the threshold it shows.
   */
  function drawGrid() {
    const start = performance.now();
    const s = shownStack();
    const g = geometry();
    const ratio = window.devicePixelRatio || 1;
    const px = (/** @type {number} */ v) => Math.round(v * ratio);
    canvas.width = px(g.width);
    canvas.height = px(g.height);
    canvas.style.width = `${g.width}px`;
    canvas.style.height = `${g.height}px`;
    const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
    const image = ctx.createImageData(canvas.width, canvas.height);
    const { rows, cols } = positions();
    const minByte = minDrawnByte(state.threshold);
    const size = px(g.cell);
    let total = 0, complete = true;
    for (let l = 0; l < s.layers; l++) {
      const bytes = layerBytes(l);
      if (!bytes) { complete = false; continue; }
      for (let h = 0; h < s.heads; h++) {
        const n = collectMarks(bytes, h * s.query * s.key, s.key, rows, cols, minByte, marks);
        if (n) paintHead(image, px(h * (g.cell + GAP)), px(l * (g.cell + GAP)), size, rows.length, cols.length, rgbOf(colourOf(h)));
        const cell = cells[l * s.heads + h];
        cell.dataset.drawn = String(n);
        cell.setAttribute("aria-label", `layer ${s.layer_labels[l]}, ${headName(h)}: ${n} weights above ${state.threshold}`);
        total += n;
      }
    }
    ctx.putImageData(image, 0, 0);
    root.dataset.drawn = String(total);
    root.dataset.drawMs = (performance.now() - start).toFixed(1);
    if (complete && !ready) { ready = true; root.dataset.ready = "true"; }
    return complete;
  }

  /**
   * Paint the current `marks` into a size × size thumbnail of `image` at (x0, y0), in the current style.
   * @param {ImageData} image @param {number} x0 @param {number} y0 @param {number} size
   * @param {number} rowCount @param {number} colCount @param {number[]} rgb
   */
  function paintHead(image, x0, y0, size, rowCount, colCount, rgb) {
    if (style() === "lines") paintLines(image, x0, y0, size, size, marks, size / rowCount, size / colCount, rgb, scratch);
    else paintMatrix(image, x0, y0, size, size, marks, rowCount, colCount, rgb, scratch);
  }

  /** Enlarge the thumbnail of carried layer `l`, head `h`. @param {number} l @param {number} h @param {boolean} [write] */
  function openCell(l, h, write = true) {
    state.open = { layer: l, head: h };
    detail.build();
    refresh(write);
  }

  /** @param {boolean} [write] */
  function closeCell(write = true) {
    const open = state.open;
    state.open = null;
    detail.hide();
    refresh(write);
    if (open && write) cells[open.layer * shownStack().heads + open.head]?.focus();
  }

  /** Redraw after a change of style, filter, special tokens, threshold or stack; keep the open cell. */
  /** Draw again in the theme's colours: head colours (`PALETTE_DARK` on a dark background) and fitted labels. */
  function retheme() {
    headLabels.querySelectorAll(".attnscope-mv-head-label").forEach((label, i) => {
      /** @type {HTMLElement} */ (label).style.setProperty("--attnscope-head", colourOf(i));
    });
    redrawAll(false);
    fitLabels(root.querySelectorAll(".attnscope-mv-token"));
  }

  function redrawAll(write = true) {
    drawGrid();
    if (state.open) detail.build();
    refresh(write);
  }

  /** Sync the controls, the enlarged view's highlights and the data attributes; optionally write back to Python. */
  function refresh(write = true) {
    const s = shownStack();
    const open = state.open;
    stackSelect.value = state.stack;
    filterLabel.hidden = pairStart() === null;
    filterSelect.value = state.filter;
    styleSelect.value = style();
    specialBox.checked = state.hideSpecial;
    wordsBox.checked = state.merge;
    aggregationSelect.value = state.aggregation;
    aggregationSelect.title = aggregationInfo(state.aggregation, stack()).about;
    note.textContent = aggregationInfo(state.aggregation, stack()).note;
    cells.forEach((cell, i) => cell.classList.toggle("attnscope-mv-open", !!open && i === open.layer * s.heads + open.head));
    detail.refresh();
    Object.assign(root.dataset, {
      cells: String(s.layers * s.heads), style: style(), stack: state.stack, filter: pairStart() === null ? "all" : state.filter,
      hideSpecial: String(state.hideSpecial), units: state.merge ? "words" : "tokens",
      layer: open ? String(s.layer_labels[open.layer]) : "",
      head: open && !combined() ? String(s.head_labels[open.head]) : "", aggregation: state.aggregation,
    });
    if (write) save();
  }

  function save() {
    const s = shownStack();
    const open = state.open;
    const hv = state.hover;
    writing = true;
    try {
      model.set("stack", state.stack);
      model.set("layer", open ? s.layer_labels[open.layer] : null);
      model.set("heads", open && !combined() ? [s.head_labels[open.head]] : []);
      model.set("aggregation", state.aggregation);
      model.set("thumbnails", state.style);
      model.set("filter", state.filter);
      model.set("hide_special", state.hideSpecial);
      model.set("merge_subwords", state.merge);
      model.set("token", open && hv ? { ...hv, ...(state.merge ? { unit: "word" } : {}) } : null);
      model.save_changes();
    } finally {
      writing = false;
    }
  }

  /** A new stack: rebuild the grid for its layers × heads and close the enlarged view. @param {boolean} [write] */
  function switchStack(write = true) {
    means.clear();
    merged.clear();
    state.open = null;
    detail.hide();
    buildGrid();
    redrawAll(write);
  }

  function exportName() {
    return `attnscope-model-view-${state.stack}-${style()}` + (state.aggregation === "raw" ? "" : `-${state.aggregation}`);
  }

  /** What both exports draw around the thumbnails: size, colours, where each thumbnail goes, the labels. */
  function exportLayout() {
    const s = shownStack();
    const g = geometry();
    const colours = getComputedStyle(root);
    const at = (/** @type {number} */ i) => EXPORT_MARGIN + i * (g.cell + GAP);
    return {
      g, at, width: g.width + EXPORT_MARGIN, height: g.height + EXPORT_MARGIN,
      fg: colours.getPropertyValue("--attnscope-mv-fg").trim() || "#000",
      bg: colours.getPropertyValue("--attnscope-mv-bg").trim() || "#fff",
      labels: [
        ...s.head_labels.map((/** @type {number | null} */ h, /** @type {number} */ i) => ({ text: h === null ? headName(i) : String(h), x: at(i) + g.cell / 2, y: 16, middle: true })),
        ...s.layer_labels.map((/** @type {number} */ l, /** @type {number} */ i) => ({ text: String(l), x: 4, y: at(i) + g.cell / 2 + 4, middle: false })),
      ],
    };
  }

  /** The grid canvas with its labels, on the theme's background, as a PNG download. */
  function savePng() {
    const layout = exportLayout();
    const ratio = canvas.width / Math.max(1, layout.g.width);
    const out = document.createElement("canvas");
    out.width = Math.round(layout.width * ratio);
    out.height = Math.round(layout.height * ratio);
    const ctx = /** @type {CanvasRenderingContext2D} */ (out.getContext("2d"));
    ctx.scale(ratio, ratio);
    ctx.fillStyle = layout.bg;
    ctx.fillRect(0, 0, layout.width, layout.height);
    ctx.fillStyle = layout.fg;
    ctx.font = "11px sans-serif";
    for (const label of layout.labels) {
      ctx.textAlign = label.middle ? "center" : "start";
      ctx.fillText(label.text, label.x, label.y);
    }
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(canvas, Math.round(EXPORT_MARGIN * ratio), Math.round(EXPORT_MARGIN * ratio));
    out.toBlob((blob) => { if (blob) download(`${exportName()}.png`, blob); }, "image/png");
  }

  /**
   * The grid as an SVG download: per thumbnail a <g> of <line> (lines) or <rect> (matrix) elements made
   * from the same marks the canvas shows; past SVG_MAX_MARKS, the canvas embedded as an image instead.
   */
  function saveSvg() {
    const s = shownStack();
    const layout = exportLayout();
    const { rows, cols } = positions();
    const minByte = minDrawnByte(state.threshold);
    const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${layout.width}" height="${layout.height}" font-family="sans-serif" font-size="11">`,
      `<rect class="background" width="100%" height="100%" fill="${layout.bg}"/>`,
      ...layout.labels.map((t) => `<text x="${t.x}" y="${t.y}" fill="${layout.fg}"${t.middle ? ' text-anchor="middle"' : ""}>${xmlText(t.text)}</text>`)];
    const raster = Number(root.dataset.drawn) > SVG_MAX_MARKS;
    if (raster) parts.push(`<image x="${EXPORT_MARGIN}" y="${EXPORT_MARGIN}" width="${layout.g.width}" height="${layout.g.height}" href="${canvas.toDataURL("image/png")}"/>`);
    for (let l = 0; l < s.layers && !raster; l++) {
      const bytes = layerBytes(l);
      for (let h = 0; bytes && h < s.heads; h++) {
        collectMarks(bytes, h * s.query * s.key, s.key, rows, cols, minByte, marks);
        parts.push(`<g class="cell" data-layer="${s.layer_labels[l]}" data-head="${s.head_labels[h] ?? state.aggregation}" transform="translate(${layout.at(h)},${layout.at(l)})">`,
          svgHead(marks, style(), layout.g.cell, rows.length, cols.length, colourOf(h), scratch), "</g>");
      }
    }
    parts.push("</svg>");
    download(`${exportName()}.svg`, new Blob([parts.join("\n")], { type: "image/svg+xml" }));
  }

  /** Arrow keys move between thumbnails; Escape closes the enlarged view. @param {KeyboardEvent} event */
  function onKey(event) {
    if (event.key === "Escape" && state.open) { event.preventDefault(); closeCell(); return; }
    const target = /** @type {HTMLElement} */ (event.target);
    const moves = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
    const move = moves[/** @type {keyof typeof moves} */ (event.key)];
    if (!move || !target.classList.contains("attnscope-mv-cell")) return;
    const s = shownStack();
    const l = Number(target.dataset.row) + move[0], h = Number(target.dataset.col) + move[1];
    if (l < 0 || h < 0 || l >= s.layers || h >= s.heads) return;
    event.preventDefault();
    cells[l * s.heads + h].focus();
  }

  /** A change made in Python to layer or heads opens (or closes) that cell. */
  function fromPython() {
    if (writing) return;
    const s = shownStack();
    const layer = model.get("layer");
    const heads = model.get("heads") ?? [];
    if (layer === null || layer === undefined) { if (state.open) closeCell(false); return; }
    const l = s.layer_labels.indexOf(layer);
    const h = heads.length && !combined() ? s.head_labels.indexOf(heads[0]) : 0;
    if (l < 0 || h < 0 || (state.open && state.open.layer === l && state.open.head === h)) return;
    openCell(l, h, heads.length === 0);
  }

  /** @param {string} name @param {(value: any) => boolean} apply returns true when something changed */
  function fromPythonValue(name, apply) {
    return () => { if (!writing && apply(model.get(name))) redrawAll(false); };
  }

  stackSelect.addEventListener("change", () => { state.stack = stackSelect.value; switchStack(); });
  filterSelect.addEventListener("change", () => { state.filter = filterSelect.value; redrawAll(); });
  styleSelect.addEventListener("change", () => { state.style = styleSelect.value; redrawAll(); });
  aggregationSelect.addEventListener("change", () => { state.aggregation = aggregationSelect.value; switchStack(); });
  specialBox.addEventListener("change", () => { state.hideSpecial = specialBox.checked; redrawAll(); });
  wordsBox.addEventListener("change", () => { state.merge = wordsBox.checked; switchStack(); });
  pngButton.addEventListener("click", savePng);
  svgButton.addEventListener("click", saveSvg);
  root.addEventListener("keydown", onKey);
  root.addEventListener("mousemove", detail.follow);

  /** @type {Record<string, () => void>} */
  const listeners = {
    "change:layer": fromPython,
    "change:heads": fromPython,
    "change:stack": () => { const v = model.get("stack"); if (!writing && v in stacks && v !== state.stack) { state.stack = v; switchStack(false); } },
    "change:filter": fromPythonValue("filter", (v) => v !== state.filter && (state.filter = v || "all", true)),
    "change:thumbnails": fromPythonValue("thumbnails", (v) => v !== state.style && (state.style = v || "auto", true)),
    "change:hide_special": fromPythonValue("hide_special", (v) => !!v !== state.hideSpecial && (state.hideSpecial = !!v, true)),
    "change:threshold": fromPythonValue("threshold", (v) => typeof v === "number" && v !== state.threshold && (state.threshold = v, true)),
    "change:merge_subwords": () => {
      const v = Boolean(model.get("merge_subwords"));
      if (!writing && v !== state.merge) { state.merge = v; switchStack(false); }
    },
    "change:theme": () => {
      root.dataset.theme = model.get("theme") || "auto";
      retheme();
    },
    "change:aggregation": () => {
      const v = model.get("aggregation");
      if (writing || v === state.aggregation || fillAggregations(aggregationSelect, stack(), v) !== v) return;
      state.aggregation = v;
      switchStack(false);
    },
  };
  for (const [event, callback] of Object.entries(listeners)) model.on(event, callback);

  buildGrid();
  drawGrid();
  refresh(false);
  fromPython();
  const stopRefit = onThemeChange(retheme);

  return () => {
    if (typeof model.off === "function") for (const [event, callback] of Object.entries(listeners)) model.off(event, callback);
    stopRefit();
    store.dispose();
    root.remove();
  };
}

export default { render };
