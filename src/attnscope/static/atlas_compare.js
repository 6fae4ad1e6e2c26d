// @ts-check
/**
 * Two head atlases compared (`AtlasComparison.to_dict()`, atlas/compare.py): for the score the user picks, a
 * layers × heads grid of model A's scores, B's, or their difference A − B (a switch; A − B on the diverging
 * palette of atlas_diverging.js, white at 0), the heads of that score sorted by how much they changed, and one
 * row per score with its most changed head. When the models differ in shape there is no A − B: A's grid and
 * B's stand side by side and the score table names each model's best head.
 *
 * Its default export `{ render }` is bundled as static/bundles/atlas_compare.js, which the comparison page
 * (views/atlas_compare.py) inlines. Contract: `render({ model, el })` reads `model.get("comparison")`,
 * `model.get("score")` (a key of `comparison.scores`), `model.get("shown")` ("a", "b" or "a-b") and
 * `model.get("selected")` ([layer, head]); a click on a cell, a row, or Enter on one, sets `selected`
 * and dispatches a bubbling `attnscope-atlas-open` event with `{ layer, head }`, as the atlas does.
 */

import { make, labelled } from "./common.js";
import { cssColour, parseColour, readableOn } from "./contrast.js";
import { colourOf, format, scoreOptions } from "./atlas_scores.js";
import { divergingColour, scaleOf } from "./atlas_diverging.js";
import { createGrid } from "./atlas_grid.js";
import { createChangesTable, createScoresTable, signedScore } from "./atlas_compare_tables.js";
/** @import { RGBA } from "./contrast.js" */
/** @import { SortableTable } from "./atlas_tables.js" */

/** The grid's text colour, lightened on dark cells (contrast.js). */
const INK = /** @type {RGBA} */ ([31, 35, 40, 1]);
/** What the score select calls each group of scores (`group` in atlas/compare.py). */
const GROUP_TITLES = { pattern: "Pattern shares", probe: "Probe scores", relation: "Relation accuracy" };
/** What the switch calls each side. */
const SIDES = { a: "A", b: "B", "a-b": "A − B" };

/**
 * One rendered comparison, passed to the functions below.
 * @typedef {object} CompareView
 * @property {any} model
 * @property {any} comparison what `AtlasComparison.to_dict()` returns
 * @property {Map<string, any>} scores each compared score by key, with `label`, `a` and `b` grids added
 * @property {{ score: string, shown: string, selected: [number, number] }} state
 * @property {HTMLElement} root
 * @property {HTMLSelectElement} select the score
 * @property {HTMLButtonElement[]} switches A, B, A − B (none when the shapes differ)
 * @property {HTMLElement} legend
 * @property {{ side: string, cells: HTMLButtonElement[][] }[]} grids one (the side shown), or A's and B's
 * @property {HTMLElement} selected what is said about the chosen head
 * @property {SortableTable | null} changesTable
 * @property {SortableTable} scoresTable
 */

/**
 * Every compared score by key: its label and A's and B's grids (from each atlas's own `scoreOptions`).
 * @param {any} comparison @returns {Map<string, any>}
 */
function comparedScores(comparison) {
  const a = new Map(scoreOptions(comparison.a).map((o) => [o.key, o]));
  const b = new Map(scoreOptions(comparison.b).map((o) => [o.key, o]));
  return new Map(comparison.scores.map((/** @type {any} */ s) => [
    s.key, { ...s, label: a.get(s.key)?.label ?? s.key, a: a.get(s.key)?.values, b: b.get(s.key)?.values },
  ]));
}

/** @param {{ model: any, el: HTMLElement }} context */
function render({ model, el }) {
  const comparison = model.get("comparison");
  const scores = comparedScores(comparison);
  const same = comparison.same_shape;
  const wanted = model.get("shown");
  const v = /** @type {CompareView} */ ({
    model, comparison, scores,
    state: {
      score: scores.has(model.get("score")) ? model.get("score") : comparison.scores[0].key,
      shown: same ? (wanted in SIDES ? wanted : "a-b") : "a",
      selected: /** @type {[number, number]} */ (model.get("selected") ?? [0, 0]),
    },
    root: make("div", "attnscope-atlas attnscope-atlas-compare"),
  });
  appendTitle(v.root, comparison);
  appendControls(v);
  appendGrids(v);
  v.changesTable = same ? createChangesTable(() => headRows(v), (l, h) => open(v, l, h)) : null;
  v.scoresTable = createScoresTable([...scores.values()], same, (s) => {
    setScore(v, s.key);
    const head = same ? s.most_changed[0] : s.best_a;
    open(v, head.layer, head.head);
  });
  appendTables(v);
  el.append(v.root);
  v.scoresTable.update();
  paint(v);
  v.root.dataset.ready = "true";
  return () => v.root.remove();
}

/** The title: both models, their shapes, the corpus; what only one atlas has. @param {HTMLElement} root @param {any} comparison */
function appendTitle(root, comparison) {
  const { a, b } = comparison;
  const shape = (/** @type {any} */ atlas) => `${atlas.layers} × ${atlas.heads} heads`;
  root.append(make("div", "attnscope-atlas-title",
    `A: ${a.model} (${shape(a)}) against B: ${b.model} (${shape(b)}) on ${a.corpus}: ` +
    `${a.sentences.toLocaleString("en")} sentences`));
  const notices = make("ul", "attnscope-atlas-notices");
  if (!comparison.same_shape) notices.append(make("li", "attnscope-atlas-notice", "The models differ in shape: no A − B; each model's grid is shown."));
  if (comparison.left_out.length) {
    notices.append(make("li", "attnscope-atlas-notice", `Only one atlas has ${comparison.left_out.join(", ")}: not compared.`));
  }
  if (notices.childElementCount) root.append(notices);
}

/** The score select, the A / B / A − B switch (one shape only) and the legend. @param {CompareView} v */
function appendControls(v) {
  v.select = /** @type {HTMLSelectElement} */ (make("select", "attnscope-atlas-score"));
  for (const [group, title] of Object.entries(GROUP_TITLES)) {
    const members = [...v.scores.values()].filter((s) => s.group === group);
    if (!members.length) continue;
    const optgroup = document.createElement("optgroup");
    optgroup.label = title;
    for (const s of members) optgroup.append(new Option(s.label, s.key));
    v.select.append(optgroup);
  }
  v.select.value = v.state.score;
  v.select.addEventListener("change", () => setScore(v, v.select.value));
  const controls = make("div", "attnscope-atlas-controls");
  controls.append(labelled("attnscope-atlas-label", "Score", v.select));
  v.switches = [];
  if (v.comparison.same_shape) {
    const group = make("span", "attnscope-atlas-sides");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "Show");
    for (const [side, text] of Object.entries(SIDES)) {
      const button = /** @type {HTMLButtonElement} */ (make("button", "attnscope-atlas-side", text));
      button.type = "button";
      button.dataset.side = side;
      button.addEventListener("click", () => setShown(v, side));
      v.switches.push(button);
      group.append(button);
    }
    controls.append(group);
  }
  v.legend = make("span", "attnscope-atlas-legend");
  controls.append(v.legend);
  v.root.append(controls);
}

/** One grid (the side shown), or A's and B's side by side when the shapes differ. @param {CompareView} v */
function appendGrids(v) {
  const { a, b } = v.comparison;
  const box = make("div", "attnscope-atlas-grids");
  const sides = v.comparison.same_shape ? [["shown", a]] : [["a", a], ["b", b]];
  v.grids = sides.map(([side, atlas]) => {
    const { grid, cells } = createGrid(atlas, (l, h) => open(v, l, h));
    grid.dataset.side = side;
    const figure = make("figure", "attnscope-atlas-figure");
    if (side !== "shown") figure.append(make("figcaption", "attnscope-atlas-caption", `${SIDES[/** @type {"a" | "b"} */ (side)]}: ${atlas.model}`));
    figure.append(grid);
    box.append(figure);
    return { side, cells };
  });
  v.selected = make("div", "attnscope-atlas-selected");
  v.selected.setAttribute("aria-live", "polite");
  v.root.append(box, v.selected);
}

/** The tables under their headings, each in a scrolling box. @param {CompareView} v */
function appendTables(v) {
  const scroll = (/** @type {HTMLTableElement} */ table) => { const box = make("div", "attnscope-atlas-scroll"); box.append(table); return box; };
  if (v.changesTable) {
    v.root.append(make("h3", "attnscope-atlas-heading attnscope-atlas-changes-heading", ""), scroll(v.changesTable.table));
  }
  const title = v.comparison.same_shape ? "The most changed head per score" : "The best head per score of each model";
  v.root.append(make("h3", "attnscope-atlas-heading", title), scroll(v.scoresTable.table));
}

/** The heads of the score shown with A, B and A − B. @param {CompareView} v */
function headRows(v) {
  const s = v.scores.get(v.state.score);
  return s.difference.flatMap((/** @type {number[]} */ row, /** @type {number} */ l) =>
    row.map((difference, h) => ({ layer: l, head: h, a: s.a[l][h], b: s.b[l][h], difference })));
}

/**
 * A cell's value and colour for `side`: A's or B's score on the atlas's ramp, or A − B on the diverging palette.
 * @param {any} s the score @param {string} side @param {number} l @param {number} h @param {number} scale
 */
function cellLook(s, side, l, h, scale) {
  if (side === "a-b") return { value: s.difference[l][h], colour: divergingColour(s.difference[l][h], scale), text: signedScore(s.difference[l][h]) };
  const value = (side === "a" ? s.a : s.b)[l][h];
  return { value, colour: colourOf(value), text: format(value) };
}

/** Colour every grid by the score and side shown, mark the chosen head, say what the colours mean. @param {CompareView} v */
function paint(v) {
  const s = v.scores.get(v.state.score);
  const scale = s.difference ? scaleOf(s.difference) : 1;
  for (const { side, cells } of v.grids) {
    const shown = side === "shown" ? v.state.shown : side;
    cells.forEach((row, l) => row.forEach((cell, h) => {
      const look = cellLook(s, shown, l, h, scale);
      const chosen = l === v.state.selected[0] && h === v.state.selected[1];
      cell.textContent = look.text;
      cell.dataset.value = String(look.value);
      cell.dataset.side = shown;
      cell.style.background = look.colour;
      cell.style.color = cssColour(readableOn(INK, /** @type {RGBA} */ (parseColour(look.colour))) ?? INK);
      cell.classList.toggle("attnscope-atlas-chosen", chosen);
      cell.setAttribute("aria-pressed", String(chosen));
      cell.title = `layer ${l}, head ${h}: ${s.label}, ${SIDES[/** @type {"a"} */ (shown)]} ${look.value.toFixed(3)}`;
    }));
  }
  for (const button of v.switches) button.setAttribute("aria-pressed", String(button.dataset.side === v.state.shown));
  v.legend.textContent = v.state.shown === "a-b" && v.comparison.same_shape
    ? `A − B: orange where B is higher (−${format(scale)}), white 0, blue where A is higher (+${format(scale)})`
    : "0 (light) to 1 (dark)";
  v.legend.dataset.scale = String(scale);
  const heading = v.root.querySelector(".attnscope-atlas-changes-heading");
  if (heading) heading.textContent = `Heads by change: ${s.label}`;
  v.changesTable?.update();
  describe(v);
}

/** Say which head is chosen and its score under A and B. @param {CompareView} v */
function describe(v) {
  const s = v.scores.get(v.state.score);
  const [l, h] = v.state.selected;
  const under = (/** @type {number[][] | undefined} */ grid) => grid?.[l]?.[h] === undefined ? "no such head" : format(grid[l][h]);
  const change = s.difference ? `; A − B ${signedScore(s.difference[l][h])}` : "";
  v.selected.replaceChildren(make("strong", "", `Head ${l}-${h}`),
    document.createTextNode(` (layer ${l}, head ${h}), ${s.label}: A ${under(s.a)}, B ${under(s.b)}${change}.`));
  v.selected.dataset.layer = String(l);
  v.selected.dataset.head = String(h);
}

/** Show score `key`; the heads table sorts by |A − B| again. @param {CompareView} v @param {string} key */
function setScore(v, key) {
  v.state.score = key;
  v.select.value = key;
  if (v.changesTable) Object.assign(v.changesTable.sort, { key: "change", descending: true });
  v.model.set("score", key);
  v.model.save_changes();
  paint(v);
}

/** Show A's scores, B's or A − B. @param {CompareView} v @param {string} side */
function setShown(v, side) {
  v.state.shown = side;
  v.model.set("shown", side);
  v.model.save_changes();
  paint(v);
}

/** Choose a head and tell the page (`attnscope-atlas-open`). @param {CompareView} v @param {number} layer @param {number} head */
function open(v, layer, head) {
  v.state.selected = [layer, head];
  v.model.set("selected", [layer, head]);
  v.model.save_changes();
  paint(v);
  v.root.dispatchEvent(new CustomEvent("attnscope-atlas-open", { bubbles: true, composed: true, detail: { layer, head } }));
}

export default { render };
