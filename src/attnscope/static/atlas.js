// @ts-check
/**
 * The head atlas: a layers × heads grid coloured by the score the user picks (a pattern share, the
 * entropy, a synthetic-probe score such as induction, or a relation's accuracy in one direction), a
 * sortable table of every head, and a
 * sortable table of the best head per dependency relation against its fixed-offset baseline.
 *
 * The scores and the colour ramp are in atlas_scores.js (passed on from here), the tables in atlas_tables.js.
 * Its default export `{ render }` is bundled as static/bundles/atlas.js, which the head atlas page
 * (views/atlas.py) inlines, and imported by the explorer app's atlas panel (app_atlas_panel.js).
 * Contract: `render({ model, el })` reads
 * `model.get("atlas")` (what `Atlas.to_dict()` returns), `model.get("app_url")` (the explorer app's
 * address, or null for no link: a head links to `<app_url>?model=M&text=T&layer=L&heads=H`, the
 * app's own query), `model.get("example_text")` (T, or null), `model.get("score")` and
 * `model.get("selected")` ([layer, head]).
 * Opening a head (a click, or Enter on a focused cell or row) sets `selected` and dispatches a
 * bubbling `attnscope-atlas-open` event with `{ layer, head }` on the view's root, which the page
 * uses to point its head and neuron views at that head (and the explorer app its attention view).
 * A `selected` set from outside (Python, or the app when one head is shown) moves the mark without
 * that event.
 */

import { labelled, make } from "./common.js";
import { cssColour, parseColour, readableOn } from "./contrast.js";
import { colourOf, format, probeSummary, scoreOptions, signed } from "./atlas_scores.js";
import { createGrid } from "./atlas_grid.js";
import { createHeadsTable, createRelationsTable, relationRows } from "./atlas_tables.js";
/** @import { RGBA } from "./contrast.js" */
/** @import { ScoreOption } from "./atlas_scores.js" */
/** @import { SortableTable } from "./atlas_tables.js" */

export { colourOf, HIGH, LOW, scoreOptions } from "./atlas_scores.js";

/** The grid's text colour, lightened on the dark end of the ramp (contrast.js). */
const INK = /** @type {RGBA} */ ([31, 35, 40, 1]);

/**
 * One rendered atlas, passed to the functions below.
 * @typedef {object} AtlasView
 * @property {any} model
 * @property {any} atlas what `Atlas.to_dict()` returns
 * @property {string | null} appUrl the explorer app's address, or null for no link
 * @property {string | null} exampleText
 * @property {ScoreOption[]} options
 * @property {{ score: string, selected: [number, number] }} state the score shown and the chosen [layer, head]
 * @property {HTMLElement} root
 * @property {HTMLSelectElement} select the score
 * @property {HTMLElement} legend
 * @property {HTMLButtonElement[][]} cells [layer][head]
 * @property {HTMLElement} selected what is said about the chosen head
 * @property {SortableTable} headsTable
 * @property {SortableTable} relationsTable
 */

/** @param {{ model: any, el: HTMLElement }} context */
function render({ model, el }) {
  const atlas = model.get("atlas");
  const options = scoreOptions(atlas);
  const v = /** @type {AtlasView} */ ({
    model, atlas, appUrl: model.get("app_url"), exampleText: model.get("example_text"), options,
    state: {
      score: options.some((o) => o.key === model.get("score")) ? model.get("score") : "previous",
      selected: /** @type {[number, number]} */ (model.get("selected") ?? [0, 0]),
    },
    root: make("div", "attnscope-atlas"),
  });
  appendTitle(v.root, atlas);
  v.select = scoreSelect(options, v.state.score);
  const controls = make("div", "attnscope-atlas-controls");
  v.legend = make("span", "attnscope-atlas-legend");
  controls.append(labelled("attnscope-atlas-label", "Colour by", v.select), v.legend);
  const { grid, cells } = createGrid(atlas, (l, h) => open(v, l, h));
  v.cells = cells;
  v.selected = make("div", "attnscope-atlas-selected");
  v.selected.setAttribute("aria-live", "polite");
  v.headsTable = createHeadsTable(atlas, () => option(v), (l, h) => open(v, l, h), v.state.score);
  const rows = relationRows(atlas);
  v.relationsTable = createRelationsTable(rows, (row, direction) => {
    setScore(v, `${row.relation} ${direction}`);
    open(v, row.best[direction].layer, row.best[direction].head);
  });
  appendParts(v, controls, grid, rows.length > 0);
  el.append(v.root);

  v.select.addEventListener("change", () => setScore(v, v.select.value));
  model.on("change:selected", (/** @type {[number, number]} */ value) => fromPython(v, value));
  v.relationsTable.update();
  paint(v);
  describe(v);
  v.root.dataset.ready = "true";
  return () => v.root.remove();
}

/** The score shown. @param {AtlasView} v */
function option(v) {
  return /** @type {ScoreOption} */ (v.options.find((o) => o.key === v.state.score));
}

/** The title line and, when there are any, the atlas's notices. @param {HTMLElement} root @param {any} atlas */
function appendTitle(root, atlas) {
  const title = `${atlas.model} on ${atlas.corpus}: ${atlas.layers} layers × ${atlas.heads} heads, ` +
    `${atlas.sentences.toLocaleString("en")} sentences, ${atlas.tokens.toLocaleString("en")} tokens`;
  root.append(make("div", "attnscope-atlas-title", title));
  if (atlas.probes) root.append(make("div", "attnscope-atlas-probes", probeSummary(atlas.probes)));
  if (atlas.notices.length) {
    const notices = make("ul", "attnscope-atlas-notices");
    for (const notice of atlas.notices) notices.append(make("li", "attnscope-atlas-notice", notice));
    root.append(notices);
  }
}

/** What each group of scores is called in the "Colour by" select. */
const GROUP_TITLES = { Patterns: "Pattern shares", Probes: "Probe scores", Relations: "Relation accuracy" };

/** The "Colour by" select: pattern shares, probe scores, then relation accuracies. @param {ScoreOption[]} options @param {string} score */
function scoreSelect(options, score) {
  const select = /** @type {HTMLSelectElement} */ (make("select", "attnscope-atlas-score"));
  for (const [group, title] of Object.entries(GROUP_TITLES)) {
    const members = options.filter((o) => o.group === group);
    if (!members.length) continue;
    const optgroup = document.createElement("optgroup");
    optgroup.label = title;
    for (const o of members) optgroup.append(new Option(o.label, o.key));
    select.append(optgroup);
  }
  select.value = score;
  return select;
}

/**
 * Put the parts in the view: controls, grid, the chosen head, then the relations table (when there are
 * relations) and the heads table, each under a heading and in a scrolling box.
 * @param {AtlasView} v @param {HTMLElement} controls @param {HTMLTableElement} grid @param {boolean} relations
 */
function appendParts(v, controls, grid, relations) {
  /** @param {HTMLTableElement} table */
  const scroll = (table) => { const box = make("div", "attnscope-atlas-scroll"); box.append(table); return box; };
  v.root.append(controls, grid, v.selected);
  if (relations) {
    v.root.append(make("h3", "attnscope-atlas-heading", "Best head per relation (accuracy) against the best fixed offset"),
                  scroll(v.relationsTable.table));
  }
  v.root.append(make("h3", "attnscope-atlas-heading", "Heads"), scroll(v.headsTable.table));
}

/** Colour the grid by the score shown, mark the chosen head, say what the colours mean; re-sort the heads. @param {AtlasView} v */
function paint(v) {
  const { atlas, state } = v;
  const o = option(v);
  for (let l = 0; l < atlas.layers; l++) {
    for (let h = 0; h < atlas.heads; h++) {
      const cell = v.cells[l][h];
      const value = o.values[l][h];
      cell.textContent = format(value);
      cell.dataset.value = String(value);
      cell.style.background = colourOf(value);
      cell.style.color = cssColour(readableOn(INK, /** @type {RGBA} */ (parseColour(colourOf(value)))) ?? INK);
      cell.classList.toggle("attnscope-atlas-beats", o.baseline !== undefined && value > o.baseline);
      cell.classList.toggle("attnscope-atlas-chosen", l === state.selected[0] && h === state.selected[1]);
      cell.setAttribute("aria-pressed", String(l === state.selected[0] && h === state.selected[1]));
      cell.title = `layer ${l}, head ${h}: ${o.label} ${value.toFixed(3)} (${atlas.patterns.labels[l][h]})`;
    }
  }
  v.legend.textContent = o.baseline === undefined
    ? "0 (light) to 1 (dark)"
    : `0 (light) to 1 (dark); baseline ${format(o.baseline)} at offset ${signed(/** @type {number} */ (o.offset))} ` +
      `(head − dependent); outlined heads beat it`;
  v.headsTable.update();
}

/** Say which head is chosen, its pattern and score, with a link to the explorer app when there is one. @param {AtlasView} v */
function describe(v) {
  const { atlas, appUrl, exampleText, selected } = v;
  const [l, h] = v.state.selected;
  const pattern = atlas.patterns.labels[l][h];
  selected.replaceChildren(make("strong", "", `Head ${l}-${h}`),
    document.createTextNode(` (layer ${l}, head ${h}): ${pattern}; ${option(v).label} ${option(v).values[l][h].toFixed(3)}. `));
  selected.dataset.layer = String(l);
  selected.dataset.head = String(h);
  if (appUrl) {
    const link = /** @type {HTMLAnchorElement} */ (make("a", "attnscope-atlas-app", "Open in the explorer"));
    const query = new URLSearchParams({ model: atlas.model, ...(exampleText ? { text: exampleText } : {}),
                                        layer: String(l), heads: String(h) });
    link.href = `${appUrl}${appUrl.includes("?") ? "&" : "?"}${query}`;
    link.target = "_blank";
    link.rel = "noopener";
    selected.append(link);
  }
}

/** Colour the grid by `key`, and sort the heads table by it, highest first. @param {AtlasView} v @param {string} key */
function setScore(v, key) {
  v.state.score = key;
  v.select.value = key;
  Object.assign(v.headsTable.sort, { key, descending: true });
  v.model.set("score", key);
  v.model.save_changes();
  paint(v);
  describe(v);
}

/** Choose a head and tell the page (`attnscope-atlas-open`). @param {AtlasView} v @param {number} layer @param {number} head */
function open(v, layer, head) {
  v.state.selected = [layer, head];
  v.model.set("selected", [layer, head]);
  v.model.save_changes();
  paint(v);
  describe(v);
  v.root.dispatchEvent(new CustomEvent("attnscope-atlas-open", { bubbles: true, composed: true, detail: { layer, head } }));
}

/** A head chosen from outside moves the mark, without the open event. @param {AtlasView} v @param {[number, number]} value */
function fromPython(v, value) {
  const [l, h] = value ?? [];
  if (l === v.state.selected[0] && h === v.state.selected[1]) return;
  if (!(l >= 0 && l < v.atlas.layers && h >= 0 && h < v.atlas.heads)) return;
  v.state.selected = [l, h];
  paint(v);
  describe(v);
}

export default { render };
