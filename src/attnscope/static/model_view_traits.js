// @ts-check
/**
 * The model view and its Python traits: the selection written back (`save`) and the listeners that apply a
 * change made in Python (stack, layer and heads, filter, style, special tokens, threshold, words, theme,
 * aggregation) to the view. Imported by model_view.js.
 */

import { fillAggregations } from "./attention_data.js";
import { combined, currentStack, shownStack } from "./model_view_state.js";
/** @import { ModelView } from "./model_view_state.js" */

/**
 * @typedef {object} TraitActions what a change made in Python asks of the view
 * @property {(layer: number, head: number, write?: boolean) => void} openCell
 * @property {(write?: boolean) => void} closeCell
 * @property {(write?: boolean) => void} switchStack
 * @property {(write?: boolean) => void} redrawAll
 * @property {() => void} retheme
 */

/** Write the selection back to Python: stack, layer and heads, style, filter, units, hovered token. @param {ModelView} v */
export function save(v) {
  const { model, state } = v;
  const s = shownStack(v);
  const open = state.open;
  const hv = state.hover;
  v.writing = true;
  try {
    model.set("stack", state.stack);
    model.set("layer", open ? s.layer_labels[open.layer] : null);
    model.set("heads", open && !combined(v) ? [s.head_labels[open.head]] : []);
    model.set("aggregation", state.aggregation);
    model.set("thumbnails", state.style);
    model.set("filter", state.filter);
    model.set("hide_special", state.hideSpecial);
    model.set("merge_subwords", state.merge);
    model.set("token", open && hv ? { ...hv, ...(state.merge ? { unit: "word" } : {}) } : null);
    model.save_changes();
  } finally {
    v.writing = false;
  }
}

/** A change made in Python to layer or heads opens (or closes) that cell. @param {ModelView} v @param {TraitActions} act */
export function fromPython(v, act) {
  if (v.writing) return;
  const { model, state } = v;
  const s = shownStack(v);
  const layer = model.get("layer");
  const heads = model.get("heads") ?? [];
  if (layer === null || layer === undefined) { if (state.open) act.closeCell(false); return; }
  const l = s.layer_labels.indexOf(layer);
  const h = heads.length && !combined(v) ? s.head_labels.indexOf(heads[0]) : 0;
  if (l < 0 || h < 0 || (state.open && state.open.layer === l && state.open.head === h)) return;
  act.openCell(l, h, heads.length === 0);
}

/**
 * The model's change listeners, by event name (for `model.on` and `model.off`).
 * @param {ModelView} v @param {TraitActions} act @returns {Record<string, () => void>}
 */
export function traitListeners(v, act) {
  const { model, state } = v;
  /** @param {string} name @param {(value: any) => boolean} apply returns true when something changed */
  const fromPythonValue = (name, apply) => () => { if (!v.writing && apply(model.get(name))) act.redrawAll(false); };
  return {
    "change:layer": () => fromPython(v, act),
    "change:heads": () => fromPython(v, act),
    "change:stack": () => { const x = model.get("stack"); if (!v.writing && x in v.stacks && x !== state.stack) { state.stack = x; act.switchStack(false); } },
    "change:filter": fromPythonValue("filter", (x) => x !== state.filter && (state.filter = x || "all", true)),
    "change:thumbnails": fromPythonValue("thumbnails", (x) => x !== state.style && (state.style = x || "auto", true)),
    "change:hide_special": fromPythonValue("hide_special", (x) => !!x !== state.hideSpecial && (state.hideSpecial = !!x, true)),
    "change:threshold": fromPythonValue("threshold", (x) => typeof x === "number" && x !== state.threshold && (state.threshold = x, true)),
    "change:merge_subwords": () => {
      const x = Boolean(model.get("merge_subwords"));
      if (!v.writing && x !== state.merge) { state.merge = x; act.switchStack(false); }
    },
    "change:theme": () => {
      v.root.dataset.theme = model.get("theme") || "auto";
      act.retheme();
    },
    "change:aggregation": () => {
      const x = model.get("aggregation");
      if (v.writing || x === state.aggregation || fillAggregations(v.controls.aggregationSelect, currentStack(v), x) !== x) return;
      state.aggregation = x;
      act.switchStack(false);
    },
  };
}
