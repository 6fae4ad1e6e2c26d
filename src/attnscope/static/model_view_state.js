// @ts-check
/**
 * The model view's context and what follows from its state: `ModelView` (one rendered view, passed to every
 * function of model_view*.js), and, read from it, the stack and sequences as the grid shows them (tokens or
 * words; one head per layer for an aggregation that combines the heads), the layers' bytes as drawn, the
 * style in use, the kept query and key positions, the grid's geometry and each grid head's colour and name.
 * Imported by model_view.js and its parts (controls, grid, export, traits).
 */

import { headColour } from "./common.js";
import { onDark } from "./contrast.js";
import { aggregationInfo, isPerHead, meanLayer, mergeLayer, unitsOf } from "./attention_data.js";
/** @import { Marks, Scratch } from "./raster.js" */
/** @import { Controls } from "./model_view_controls.js" */
/** @import { Detail } from "./model_view_detail.js" */

const GRID_WIDTH = 1040; // CSS px the grid aims at; thumbnails shrink for many heads
const CELL_MAX = 80;
const CELL_MIN = 24;
export const GAP = 6;
const AUTO_LINES_MAX = 64; // "auto" draws lines up to this many tokens, a heatmap above

/**
 * @typedef {{ label: string, special: boolean, tokens: number[] }} Unit a token, or a word of tokens
 *
 * @typedef {object} ModelViewState what is shown, as the controls and the Python traits set it
 * @property {string} stack the stack's role
 * @property {string} style "auto" | "lines" | "matrix"
 * @property {string} filter a `FILTERS` value
 * @property {boolean} hideSpecial
 * @property {boolean} merge words as units
 * @property {number} threshold the minimum weight drawn
 * @property {string} aggregation "raw", "mean" or a carried aggregation
 * @property {{ layer: number, head: number } | null} open the enlarged cell: indices into the carried layers and the grid's heads
 * @property {{ side: string, index: number, key?: number } | null} hover sequence positions
 *
 * @typedef {object} Grid the grid's elements
 * @property {HTMLElement} headLabels
 * @property {HTMLElement} layerLabels
 * @property {HTMLElement} cellArea holds the canvas and the cells
 * @property {HTMLCanvasElement} canvas every thumbnail, drawn with pixel writes
 * @property {HTMLButtonElement[]} cells one focusable button per thumbnail, layer by layer
 *
 * @typedef {object} ModelView one rendered model view
 * @property {any} model anywidget's model (or the standalone stand-in)
 * @property {any} header the payload header
 * @property {Record<string, any>} stacks the header's stacks by role
 * @property {ModelViewState} state
 * @property {HTMLElement} root
 * @property {Controls} controls
 * @property {Grid} grid
 * @property {Detail} detail the enlarged thumbnail
 * @property {{ get: (role: string, index: number) => any, dispose: () => void }} store the layers (`layerStore`)
 * @property {Marks} marks
 * @property {Scratch} scratch
 * @property {Map<string, Unit[]>} wordUnits words of each sequence
 * @property {Map<number, Uint8Array>} means means of the carried heads, per layer of the current stack
 * @property {Map<number, Uint8Array>} merged the shown layers merged into words, per layer of the current stack
 * @property {boolean} writing true while the view writes to the model (the changes it hears are its own)
 * @property {boolean} ready true once every layer has been drawn (root's data-ready)
 */

/** The current stack's header; between words, its query and key counts are the words'. @param {ModelView} v */
export function currentStack(v) {
  const s = v.stacks[v.state.stack];
  if (!v.state.merge) return s;
  return { ...s, query: unitsFor(v, s.query_tokens).length, key: unitsFor(v, s.key_tokens).length };
}

/** A sequence's units: its tokens, or its words in words mode (`unitsOf`). @param {ModelView} v @param {string} name */
export function unitsFor(v, name) {
  if (!v.state.merge) return unitsOf(v.header.sequences[name], false);
  if (!v.wordUnits.has(name)) v.wordUnits.set(name, unitsOf(v.header.sequences[name], true));
  return /** @type {Unit[]} */ (v.wordUnits.get(name));
}

/** The sequences as the grid and the enlarged view show them: tokens, or words in words mode. @param {ModelView} v */
export function shownSequences(v) {
  if (!v.state.merge) return v.header.sequences;
  return Object.fromEntries(Object.entries(v.header.sequences).map(([name, seq]) => {
    const units = unitsFor(v, name);
    const b = /** @type {any} */ (seq).sentence_b_start;
    return [name, { tokens: units.map((u) => u.label), special: units.map((u) => u.special),
      sentence_b_start: b === null || b === undefined ? null : units.findIndex((u) => u.tokens[0] >= b) }];
  }));
}

/** Whether the current aggregation combines the heads into one thumbnail per layer. @param {ModelView} v */
export const combined = (v) => !isPerHead(v.stacks[v.state.stack], v.state.aggregation);

/** The current stack as the grid shows it: its header, with one head per layer for a combination. @param {ModelView} v */
export function shownStack(v) {
  return combined(v) ? { ...currentStack(v), heads: 1, head_labels: [null] } : currentStack(v);
}

/**
 * The colour of the grid's head `h`: the head's own (from the dark palette on a dark theme), or the
 * text colour for a combination. @param {ModelView} v @param {number} h
 */
export function colourOf(v, h) {
  if (!combined(v)) return headColour(currentStack(v).head_labels[h], onDark(v.root));
  const fg = getComputedStyle(v.root).getPropertyValue("--attnscope-mv-fg").trim();
  return /^#[0-9a-f]{6}$/i.test(fg) ? fg : "#555555";
}

/** How the grid's head `h` is named in labels and titles. @param {ModelView} v @param {number} h */
export function headName(v, h) {
  return combined(v) ? aggregationInfo(v.state.aggregation, currentStack(v)).label : `head ${currentStack(v).head_labels[h]}`;
}

/**
 * Layer `l` of the current stack between tokens, (grid heads, query, key) bytes, or null while it is
 * on its way: raw, the mean of the carried heads made from raw, or a carried aggregation's.
 * @param {ModelView} v @param {number} l
 */
function tokenLayerBytes(v, l) {
  const agg = v.state.aggregation, s = v.stacks[v.state.stack];
  if (agg !== "mean") return v.store.get(agg === "raw" ? v.state.stack : `${v.state.stack}/${agg}`, l);
  if (!v.means.has(l)) {
    const raw = v.store.get(v.state.stack, l);
    if (!raw) return null;
    v.means.set(l, meanLayer(raw, { sparse: false }, s, [...Array(s.heads).keys()]));
  }
  return /** @type {Uint8Array} */ (v.means.get(l));
}

/** Layer `l` as the grid draws it: `tokenLayerBytes`, merged into words in words mode. @param {ModelView} v @param {number} l */
export function layerBytes(v, l) {
  const bytes = tokenLayerBytes(v, l);
  if (!bytes || !v.state.merge) return bytes;
  if (!v.merged.has(l)) {
    const s = v.stacks[v.state.stack];
    const shape = { heads: bytes.length / (s.query * s.key), query: s.query, key: s.key };
    v.merged.set(l, mergeLayer(bytes, shape, unitsFor(v, s.query_tokens), unitsFor(v, s.key_tokens)));
  }
  return /** @type {Uint8Array} */ (v.merged.get(l));
}

/** The "lines" or "matrix" style in use ("auto" picks by the stack's token count). @param {ModelView} v */
export function styleOf(v) {
  if (v.state.style === "lines" || v.state.style === "matrix") return v.state.style;
  const s = currentStack(v);
  return Math.max(s.query, s.key) <= AUTO_LINES_MAX ? "lines" : "matrix";
}

/** The sentence-B start when queries and keys are the same sequence of a sentence pair. @param {ModelView} v */
export function pairStart(v) {
  const s = currentStack(v);
  if (s.query_tokens !== s.key_tokens) return null;
  return shownSequences(v)[s.query_tokens].sentence_b_start ?? null;
}

/** The query and key positions the sentence filter and the special-token switch keep. @param {ModelView} v */
export function positions(v) {
  const s = currentStack(v);
  const b = pairStart(v);
  const f = b === null ? "all" : v.state.filter;
  const keep = (/** @type {string} */ seqName, /** @type {number} */ count, /** @type {string} */ segment) => {
    const special = shownSequences(v)[seqName].special;
    const kept = [];
    for (let i = 0; i < count; i++) {
      if (f !== "all" && (b !== null && i >= b ? "B" : "A") !== segment) continue;
      if (!(v.state.hideSpecial && special[i])) kept.push(i);
    }
    return kept;
  };
  return { rows: keep(s.query_tokens, s.query, f[0]), cols: keep(s.key_tokens, s.key, f[1]) };
}

/** The thumbnail's size and the grid's, in CSS px. @param {ModelView} v */
export function geometry(v) {
  const s = shownStack(v);
  const cell = Math.max(CELL_MIN, Math.min(CELL_MAX, Math.floor(GRID_WIDTH / s.heads) - GAP));
  return { cell, width: s.heads * (cell + GAP) - GAP, height: s.layers * (cell + GAP) - GAP };
}
