// @ts-check
/**
 * The model view's controls bar (stack, aggregation, sentence filter, style, special tokens, words, PNG and
 * SVG exports, the aggregation's note): built from the payload header, kept in step with the view's state,
 * and wired to the view's actions. Imported by model_view.js.
 */

import { FILTERS, labelled, make } from "./common.js";
import { aggregationInfo } from "./attention_data.js";
import { currentStack, pairStart, styleOf } from "./model_view_state.js";
import { savePng, saveSvg } from "./model_view_export.js";
/** @import { ModelView } from "./model_view_state.js" */

/**
 * @typedef {object} Controls the controls bar and the controls in it
 * @property {HTMLElement} bar
 * @property {HTMLSelectElement} stackSelect
 * @property {HTMLSelectElement} filterSelect
 * @property {HTMLSelectElement} styleSelect
 * @property {HTMLSelectElement} aggregationSelect
 * @property {HTMLElement} note what the aggregation shown means
 * @property {HTMLInputElement} specialBox
 * @property {HTMLInputElement} wordsBox
 * @property {HTMLButtonElement} pngButton
 * @property {HTMLButtonElement} svgButton
 * @property {HTMLElement} filterLabel hidden when there is no sentence pair
 *
 * @typedef {object} ControlActions what a change of control asks of the view
 * @property {(write?: boolean) => void} switchStack rebuild the grid (stack, aggregation or units changed)
 * @property {(write?: boolean) => void} redrawAll draw again (filter, style or special tokens changed)
 */

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

/** @param {string} className */
function checkbox(className) {
  const box = /** @type {HTMLInputElement} */ (make("input", className));
  box.type = "checkbox";
  return box;
}

/** The controls bar for a payload `header`; the aggregation select is filled with the grid. @param {any} header @returns {Controls} */
export function createControls(header) {
  const bar = make("div", "attnscope-mv-controls");
  const stackSelect = select("attnscope-mv-stack", header.stacks.map((/** @type {any} */ s) => [s.role, s.role]));
  const filterSelect = select("attnscope-mv-filter", FILTERS);
  const styleSelect = select("attnscope-mv-style", [["lines", "Lines"], ["matrix", "Matrix"]]);
  const aggregationSelect = select("attnscope-mv-aggregation", []);
  const note = make("span", "attnscope-mv-note");
  const specialBox = checkbox("attnscope-mv-hide-special");
  const wordsBox = checkbox("attnscope-mv-words");
  const pngButton = button("attnscope-mv-png", "PNG", "Save the grid as a PNG image");
  const svgButton = button("attnscope-mv-svg", "SVG", "Save the grid as an SVG drawing");
  const field = (/** @type {string} */ text, /** @type {HTMLElement} */ control) => labelled("attnscope-mv-label", text, control);
  const stackLabel = field("Attention", stackSelect);
  const filterLabel = field("Sentences", filterSelect);
  const wordsLabel = field("Words", wordsBox);
  wordsLabel.title = "Merge subword tokens into words: attention to a word is the sum over its tokens, " +
    "from a word the mean";
  bar.append(stackLabel, field("Show", aggregationSelect), filterLabel, field("Style", styleSelect),
    field("Hide special tokens", specialBox), wordsLabel, pngButton, svgButton, note);
  stackLabel.hidden = header.stacks.length < 2;
  wordsLabel.hidden = !Object.values(header.sequences).some((/** @type {any} */ seq) => seq.words?.length);
  return { bar, stackSelect, filterSelect, styleSelect, aggregationSelect, note, specialBox, wordsBox, pngButton, svgButton, filterLabel };
}

/** Show the state in the controls. @param {ModelView} v */
export function syncControls(v) {
  const { controls: c, state } = v;
  c.stackSelect.value = state.stack;
  c.filterLabel.hidden = pairStart(v) === null;
  c.filterSelect.value = state.filter;
  c.styleSelect.value = styleOf(v);
  c.specialBox.checked = state.hideSpecial;
  c.wordsBox.checked = state.merge;
  c.aggregationSelect.value = state.aggregation;
  c.aggregationSelect.title = aggregationInfo(state.aggregation, currentStack(v)).about;
  c.note.textContent = aggregationInfo(state.aggregation, currentStack(v)).note;
}

/** A change of control sets the state and redraws; the export buttons save the grid. @param {ModelView} v @param {ControlActions} act */
export function wireControls(v, act) {
  const { controls: c, state } = v;
  c.stackSelect.addEventListener("change", () => { state.stack = c.stackSelect.value; act.switchStack(); });
  c.filterSelect.addEventListener("change", () => { state.filter = c.filterSelect.value; act.redrawAll(); });
  c.styleSelect.addEventListener("change", () => { state.style = c.styleSelect.value; act.redrawAll(); });
  c.aggregationSelect.addEventListener("change", () => { state.aggregation = c.aggregationSelect.value; act.switchStack(); });
  c.specialBox.addEventListener("change", () => { state.hideSpecial = c.specialBox.checked; act.redrawAll(); });
  c.wordsBox.addEventListener("change", () => { state.merge = c.wordsBox.checked; act.switchStack(); });
  c.pngButton.addEventListener("click", () => savePng(v));
  c.svgButton.addEventListener("click", () => saveSvg(v));
}
