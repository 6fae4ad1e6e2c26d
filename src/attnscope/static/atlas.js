// @ts-check
/**
 * The head atlas: a layers × heads grid coloured by the score the user picks (a pattern share, the
 * entropy, or a relation's accuracy in one direction), a sortable table of every head, and a
 * sortable table of the best head per dependency relation against its fixed-offset baseline.
 *
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
/** @import { RGBA } from "./contrast.js" */

const PATTERN_LABELS = {
  previous: "previous token", next: "next token", self: "itself", first: "first token",
  special: "special tokens", entropy: "entropy",
};
const DIRECTIONS = { dependent_to_head: "dependent→head", head_to_dependent: "head→dependent" };
/** The colour ramp of the grid: a score of 0 is LOW, 1 is HIGH, linear in between. */
export const LOW = [247, 251, 255];
export const HIGH = [8, 48, 107];
/** The grid's text colour, lightened on the dark end of the ramp (contrast.js). */
const INK = /** @type {RGBA} */ ([31, 35, 40, 1]);

/** The grid colour of a score in [0, 1]. @param {number} value */
export function colourOf(value) {
  const t = Math.min(1, Math.max(0, value));
  return `rgb(${LOW.map((c, i) => Math.round(c + (HIGH[i] - c) * t)).join(", ")})`;
}

/**
 * @typedef {{ key: string, label: string, group: string, values: number[][], baseline?: number, offset?: number }} ScoreOption
 */

/**
 * Every score the grid can be coloured by: key, label, values [layer][head], and for relations the baseline.
 * @param {any} atlas
 * @returns {ScoreOption[]}
 */
export function scoreOptions(atlas) {
  /** @type {ScoreOption[]} */
  const options = Object.entries(PATTERN_LABELS).map(([key, label]) => ({
    key, label, group: "Patterns", values: atlas.patterns[key],
  }));
  for (const relation of atlas.relations ?? []) {
    for (const [direction, arrow] of Object.entries(DIRECTIONS)) {
      options.push({
        key: `${relation.relation} ${direction}`, label: `${relation.relation}: ${arrow}`, group: "Relations",
        values: relation[direction], baseline: relation.baseline, offset: relation.baseline_offset,
      });
    }
  }
  return options;
}

/** A score as shown in cells and tables. @param {number} value */
function format(value) {
  return value.toFixed(2);
}

/** A signed offset: +1, -2. @param {number} offset */
function signed(offset) {
  return offset > 0 ? `+${offset}` : String(offset);
}

/**
 * A table whose rows sort by any column: a click on a column's header sorts by it, highest first
 * (names and other `ascending` columns: A to Z first); a second click reverses. Rows are rebuilt
 * from `rows()` on every `update()`.
 * @param {string} className
 * @param {() => { key: string, label: string, text: (row: any) => string, value: (row: any) => number | string, ascending?: boolean }[]} columns
 * @param {() => any[]} rows
 * @param {(row: any, tr: HTMLTableRowElement) => void} decorate
 * @param {string} initial the column sorted by at first
 */
function sortableTable(className, columns, rows, decorate, initial) {
  const table = /** @type {HTMLTableElement} */ (make("table", className));
  const sort = { key: initial, descending: true };
  const update = () => {
    const shown = columns();
    if (!shown.some((c) => c.key === sort.key)) Object.assign(sort, { key: initial, descending: true });
    const head = document.createElement("tr");
    for (const column of shown) {
      const th = make("th", "attnscope-atlas-th");
      const button = make("button", "attnscope-atlas-sort", column.label);
      /** @type {HTMLButtonElement} */ (button).type = "button";
      button.dataset.key = column.key;
      button.addEventListener("click", () => {
        Object.assign(sort, { descending: sort.key === column.key ? !sort.descending : !column.ascending, key: column.key });
        update();
      });
      th.append(button);
      th.setAttribute("aria-sort", column.key !== sort.key ? "none" : sort.descending ? "descending" : "ascending");
      head.append(th);
    }
    const by = /** @type {any} */ (shown.find((c) => c.key === sort.key));
    const ordered = rows().map((row, i) => ({ row, i })).sort((a, b) => {
      const x = by.value(a.row), y = by.value(b.row);
      const order = x < y ? -1 : x > y ? 1 : 0;
      return (sort.descending ? -order : order) || a.i - b.i;
    });
    const body = document.createElement("tbody");
    for (const { row } of ordered) {
      const tr = /** @type {HTMLTableRowElement} */ (document.createElement("tr"));
      for (const column of shown) {
        const td = make("td", "attnscope-atlas-td", column.text(row));
        td.dataset.key = column.key;
        td.dataset.value = String(column.value(row));
        tr.append(td);
      }
      decorate(row, tr);
      body.append(tr);
    }
    const thead = document.createElement("thead");
    thead.append(head);
    table.replaceChildren(thead, body);
  };
  return { table, update, sort };
}

/** @param {{ model: any, el: HTMLElement }} context */
function render({ model, el }) {
  const atlas = model.get("atlas");
  const appUrl = model.get("app_url");
  const exampleText = model.get("example_text");
  const options = scoreOptions(atlas);
  const state = {
    score: options.some((o) => o.key === model.get("score")) ? model.get("score") : "previous",
    selected: /** @type {[number, number]} */ (model.get("selected") ?? [0, 0]),
  };
  const option = () => /** @type {typeof options[number]} */ (options.find((o) => o.key === state.score));

  const root = make("div", "attnscope-atlas");
  const title = `${atlas.model} on ${atlas.corpus}: ${atlas.layers} layers × ${atlas.heads} heads, ` +
    `${atlas.sentences.toLocaleString("en")} sentences, ${atlas.tokens.toLocaleString("en")} tokens`;
  root.append(make("div", "attnscope-atlas-title", title));
  if (atlas.notices.length) {
    const notices = make("ul", "attnscope-atlas-notices");
    for (const notice of atlas.notices) notices.append(make("li", "attnscope-atlas-notice", notice));
    root.append(notices);
  }

  const select = /** @type {HTMLSelectElement} */ (make("select", "attnscope-atlas-score"));
  for (const group of ["Patterns", "Relations"]) {
    const members = options.filter((o) => o.group === group);
    if (!members.length) continue;
    const optgroup = document.createElement("optgroup");
    optgroup.label = group === "Patterns" ? "Pattern shares" : "Relation accuracy";
    for (const o of members) optgroup.append(new Option(o.label, o.key));
    select.append(optgroup);
  }
  select.value = state.score;
  const controls = make("div", "attnscope-atlas-controls");
  const legend = make("span", "attnscope-atlas-legend");
  controls.append(labelled("attnscope-atlas-label", "Colour by", select), legend);

  const grid = /** @type {HTMLTableElement} */ (make("table", "attnscope-atlas-grid"));
  const corner = document.createElement("tr");
  corner.append(make("th", "attnscope-atlas-corner", "layer \\ head"));
  for (let h = 0; h < atlas.heads; h++) corner.append(make("th", "attnscope-atlas-colhead", String(h)));
  const gridHead = document.createElement("thead");
  gridHead.append(corner);
  const gridBody = document.createElement("tbody");
  /** @type {HTMLButtonElement[][]} */
  const cells = [];
  for (let l = 0; l < atlas.layers; l++) {
    const tr = document.createElement("tr");
    tr.append(make("th", "attnscope-atlas-rowhead", String(l)));
    cells.push([]);
    for (let h = 0; h < atlas.heads; h++) {
      const td = document.createElement("td");
      const cell = /** @type {HTMLButtonElement} */ (make("button", "attnscope-atlas-cell"));
      cell.type = "button";
      cell.dataset.layer = String(l);
      cell.dataset.head = String(h);
      cell.addEventListener("click", () => open(l, h));
      td.append(cell);
      tr.append(td);
      cells[l].push(cell);
    }
    gridBody.append(tr);
  }
  grid.append(gridHead, gridBody);

  const selected = make("div", "attnscope-atlas-selected");
  selected.setAttribute("aria-live", "polite");

  /** @type {{ layer: number, head: number }[]} */
  const heads = [];
  for (let l = 0; l < atlas.layers; l++) for (let h = 0; h < atlas.heads; h++) heads.push({ layer: l, head: h });
  const patternColumns = Object.entries(PATTERN_LABELS).map(([key, text]) => ({
    key, label: text, value: (/** @type {any} */ r) => atlas.patterns[key][r.layer][r.head],
    text: (/** @type {any} */ r) => format(atlas.patterns[key][r.layer][r.head]),
  }));
  const headsTable = sortableTable(
    "attnscope-atlas-heads",
    () => {
      const columns = [
        { key: "head", label: "head", ascending: true, value: (/** @type {any} */ r) => r.layer * atlas.heads + r.head,
          text: (/** @type {any} */ r) => `${r.layer}-${r.head}` },
        { key: "label", label: "pattern", ascending: true,
          value: (/** @type {any} */ r) => atlas.patterns.labels[r.layer][r.head],
          text: (/** @type {any} */ r) => atlas.patterns.labels[r.layer][r.head] },
        ...patternColumns,
      ];
      const o = option();
      if (o.group === "Relations") {
        columns.push({ key: o.key, label: o.label, value: (r) => o.values[r.layer][r.head],
                       text: (r) => format(o.values[r.layer][r.head]) });
      }
      return columns;
    },
    () => heads,
    (row, tr) => {
      tr.dataset.layer = String(row.layer);
      tr.dataset.head = String(row.head);
      tr.tabIndex = 0;
      tr.className = "attnscope-atlas-row";
      tr.addEventListener("click", () => open(row.layer, row.head));
      tr.addEventListener("keydown", (event) => { if (event.key === "Enter") open(row.layer, row.head); });
    },
    state.score,
  );

  const relationRows = (atlas.relations ?? []).map((/** @type {any} */ r) => {
    const best = Object.fromEntries(Object.keys(DIRECTIONS).map((direction) => {
      let top = { layer: 0, head: 0, value: -1 };
      r[direction].forEach((/** @type {number[]} */ row, /** @type {number} */ l) => row.forEach((v, h) => {
        if (v > top.value) top = { layer: l, head: h, value: v };
      }));
      return [direction, top];
    }));
    return { ...r, best };
  });
  const relationColumns = [
    { key: "relation", label: "relation", ascending: true, value: (/** @type {any} */ r) => r.relation,
      text: (/** @type {any} */ r) => r.relation },
    { key: "pairs", label: "arcs", value: (/** @type {any} */ r) => r.pairs, text: (/** @type {any} */ r) => r.pairs.toLocaleString("en") },
    ...Object.entries(DIRECTIONS).map(([direction, arrow]) => ({
      key: direction, label: `best ${arrow}`, value: (/** @type {any} */ r) => r.best[direction].value,
      text: (/** @type {any} */ r) => `${r.best[direction].layer}-${r.best[direction].head}  ${format(r.best[direction].value)}`,
    })),
    { key: "baseline", label: "baseline (offset)", value: (/** @type {any} */ r) => r.baseline,
      text: (/** @type {any} */ r) => `${format(r.baseline)} (${signed(r.baseline_offset)})` },
  ];
  const relationsTable = sortableTable("attnscope-atlas-relations", () => relationColumns, () => relationRows, (row, tr) => {
    tr.dataset.relation = row.relation;
    for (const direction of Object.keys(DIRECTIONS)) {
      const td = /** @type {HTMLElement} */ (tr.querySelector(`td[data-key="${direction}"]`));
      td.classList.add("attnscope-atlas-link");
      td.tabIndex = 0;
      td.title = `colour the grid by ${row.relation} ${DIRECTIONS[/** @type {keyof typeof DIRECTIONS} */ (direction)]} and open its best head`;
      const go = () => {
        setScore(`${row.relation} ${direction}`);
        open(row.best[direction].layer, row.best[direction].head);
      };
      td.addEventListener("click", go);
      td.addEventListener("keydown", (event) => { if (event.key === "Enter") go(); });
    }
  }, "pairs");

  /** @param {HTMLTableElement} table */
  const scroll = (table) => { const box = make("div", "attnscope-atlas-scroll"); box.append(table); return box; };
  root.append(controls, grid, selected);
  if (relationRows.length) {
    root.append(make("h3", "attnscope-atlas-heading", "Best head per relation (accuracy) against the best fixed offset"),
                scroll(relationsTable.table));
  }
  root.append(make("h3", "attnscope-atlas-heading", "Heads"), scroll(headsTable.table));
  el.append(root);

  function paint() {
    const o = option();
    for (let l = 0; l < atlas.layers; l++) {
      for (let h = 0; h < atlas.heads; h++) {
        const cell = cells[l][h];
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
    legend.textContent = o.baseline === undefined
      ? "0 (light) to 1 (dark)"
      : `0 (light) to 1 (dark); baseline ${format(o.baseline)} at offset ${signed(/** @type {number} */ (o.offset))} ` +
        `(head − dependent); outlined heads beat it`;
    headsTable.update();
  }

  function describe() {
    const [l, h] = state.selected;
    const pattern = atlas.patterns.labels[l][h];
    selected.replaceChildren(make("strong", "", `Head ${l}-${h}`),
      document.createTextNode(` (layer ${l}, head ${h}): ${pattern}; ${option().label} ${option().values[l][h].toFixed(3)}. `));
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

  /** Colour the grid by `key`, and sort the heads table by it, highest first. @param {string} key */
  function setScore(key) {
    state.score = key;
    select.value = key;
    Object.assign(headsTable.sort, { key, descending: true });
    model.set("score", key);
    model.save_changes();
    paint();
    describe();
  }

  /** @param {number} layer @param {number} head */
  function open(layer, head) {
    state.selected = [layer, head];
    model.set("selected", [layer, head]);
    model.save_changes();
    paint();
    describe();
    root.dispatchEvent(new CustomEvent("attnscope-atlas-open", { bubbles: true, composed: true, detail: { layer, head } }));
  }

  select.addEventListener("change", () => setScore(select.value));
  model.on("change:selected", (/** @type {[number, number]} */ value) => {
    const [l, h] = value ?? [];
    if (l === state.selected[0] && h === state.selected[1]) return;
    if (!(l >= 0 && l < atlas.layers && h >= 0 && h < atlas.heads)) return;
    state.selected = [l, h];
    paint();
    describe();
  });
  relationsTable.update();
  paint();
  describe();
  root.dataset.ready = "true";
  return () => root.remove();
}

export default { render };
