// @ts-check
/**
 * The long-context model view's context (`OverviewView`, passed to every function of model_view_overview*.js)
 * and what follows from its state: the shown stack, its levels, a head's colour, the grid's geometry, the
 * pooling described in words. Imported by model_view_overview.js and its parts.
 */

import { headColour } from "./common.js";
import { onDark } from "./contrast.js";
/** @import { Level, Region } from "./model_view_overview_data.js" */

export const GAP = 6;
const THUMB = 128; // CSS px a thumbnail aims at along its longer side; each cell gets whole pixels

/**
 * @typedef {object} OverviewState
 * @property {string} stack the shown stack's role
 * @property {string} pooling "max" or "mean": the plane drawn
 * @property {{ layer: number, head: number } | null} open the enlarged head: indices among the kept layers and heads
 * @property {number[][]} zooms the enlarged head's regions, [q0, q1, k0, k1] each, the current last (none: the whole head)
 * @property {Region | null} region what the enlarged head draws now
 * @property {number} asked the id of the latest zoom request (replies to older ones are dropped)
 *
 * @typedef {object} OverviewGrid
 * @property {HTMLElement} headLabels
 * @property {HTMLElement} layerLabels
 * @property {HTMLElement} cellArea
 * @property {HTMLCanvasElement} canvas every head's overview
 * @property {HTMLButtonElement[]} cells one button per head, layer by layer
 *
 * @typedef {object} OverviewView one rendered view
 * @property {any} model anywidget's model, or the page's stand-in (no `send`: no Python to ask)
 * @property {any} header views/overview.py's header
 * @property {Record<string, any>} stacks the header's stacks by role
 * @property {Record<string, Level[]>} levels carried levels by role, coarsest first
 * @property {OverviewState} state
 * @property {HTMLElement} root
 * @property {HTMLSelectElement} poolingSelect
 * @property {HTMLSelectElement} stackSelect
 * @property {HTMLElement} caption how the cells are pooled
 * @property {OverviewGrid} grid
 * @property {import("./model_view_overview_detail.js").Detail} detail
 * @property {boolean} writing true while the view writes its own traits
 */

/** The shown stack's header. @param {OverviewView} v */
export function shownStack(v) {
  return v.stacks[v.state.stack];
}

/** The shown stack's carried levels, coarsest (the overview) first. @param {OverviewView} v */
export function levelsOf(v) {
  return v.levels[v.state.stack];
}

/** Whether Python answers zooms (a live widget) or not (a page on its own). @param {OverviewView} v */
export function hasKernel(v) {
  return typeof v.model.send === "function";
}

/** Kept head `h`'s colour in the theme. @param {OverviewView} v @param {number} h */
export function colourOf(v, h) {
  return headColour(shownStack(v).head_labels[h], onDark(v.root));
}

/** The grid's geometry: whole pixels per cell, a thumbnail's size, the whole canvas. @param {OverviewView} v */
export function geometry(v) {
  const s = shownStack(v), level = levelsOf(v)[0];
  const px = Math.max(1, Math.floor(THUMB / Math.max(level.rows, level.cols)));
  const width = level.cols * px, height = level.rows * px;
  return { px, width, height, total: { width: s.heads * (width + GAP) - GAP, height: s.layers * (height + GAP) - GAP } };
}

/** How a plane's cells are pooled, in words. @param {string} pooling @param {number} block */
export function poolingText(pooling, block) {
  if (block === 1) return "each cell: one token's weight";
  const what = pooling === "mean" ? "mean" : "max";
  const shade = pooling === "mean" ? " (shaded per head: its largest mean is full colour)" : "";
  return `each cell: ${what} of a ${block} × ${block}-token block${shade}`;
}

/** "layer 3, head 5" with the model's numbers. @param {OverviewView} v @param {number} l @param {number} h */
export function headName(v, l, h) {
  const s = shownStack(v);
  return `layer ${s.layer_labels[l]}, head ${s.head_labels[h]}`;
}

/**
 * Write the selection to Python: stack, pooling, the open head's layer and head (model numbers, null when
 * none is open) and its zoomed region ([q0, q1, k0, k1], null for the whole head).
 * @param {OverviewView} v
 */
export function saveTraits(v) {
  const { model, state } = v;
  const s = shownStack(v);
  v.writing = true;
  try {
    model.set("stack", state.stack);
    model.set("pooling", state.pooling);
    model.set("layer", state.open ? s.layer_labels[state.open.layer] : null);
    model.set("head", state.open ? s.head_labels[state.open.head] : null);
    model.set("region", state.open && state.zooms.length ? [...(/** @type {number[]} */ (state.zooms.at(-1)))] : null);
    model.save_changes();
  } finally {
    v.writing = false;
  }
}
