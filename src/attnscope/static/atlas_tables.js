// @ts-check
/**
 * The head atlas's two tables, sortable by any column: every head (its pattern shares, its pattern label,
 * its probe scores when the atlas has them and, when the grid shows a relation, that relation's accuracy),
 * and the best head per dependency relation
 * in each direction against the relation's fixed-offset baseline. Imported by atlas.js; atlas_compare_tables.js
 * builds its tables on `sortableTable`.
 */

import { make } from "./common.js";
import { DIRECTIONS, format, PATTERN_LABELS, scoreOptions, signed } from "./atlas_scores.js";
/** @import { ScoreOption } from "./atlas_scores.js" */

/**
 * @typedef {{ key: string, label: string, text: (row: any) => string, value: (row: any) => number | string, ascending?: boolean }} Column
 * @typedef {{ table: HTMLTableElement, update: () => void, sort: { key: string, descending: boolean } }} SortableTable
 */

/**
 * A table whose rows sort by any column: a click on a column's header sorts by it, highest first
 * (names and other `ascending` columns: A to Z first); a second click reverses. Rows are rebuilt
 * from `rows()` on every `update()`.
 * @param {string} className
 * @param {() => Column[]} columns
 * @param {() => any[]} rows
 * @param {(row: any, tr: HTMLTableRowElement) => void} decorate
 * @param {string} initial the column sorted by at first
 * @returns {SortableTable}
 */
export function sortableTable(className, columns, rows, decorate, initial) {
  const table = /** @type {HTMLTableElement} */ (make("table", className));
  const sort = { key: initial, descending: true };
  const update = () => {
    const shown = columns();
    if (!shown.some((c) => c.key === sort.key)) Object.assign(sort, { key: initial, descending: true });
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
    thead.append(headerRow(shown, sort, update));
    table.replaceChildren(thead, body);
  };
  return { table, update, sort };
}

/**
 * The header row: one sort button per column, `aria-sort` on the sorted one.
 * @param {Column[]} shown @param {{ key: string, descending: boolean }} sort @param {() => void} update
 */
function headerRow(shown, sort, update) {
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
  return head;
}

/**
 * The table of every head, sorted by `initial` at first; a row opens its head (a click, or Enter).
 * @param {any} atlas @param {() => ScoreOption} option the score the grid shows
 * @param {(layer: number, head: number) => void} open @param {string} initial
 */
export function createHeadsTable(atlas, option, open, initial) {
  /** @type {{ layer: number, head: number }[]} */
  const heads = [];
  for (let l = 0; l < atlas.layers; l++) for (let h = 0; h < atlas.heads; h++) heads.push({ layer: l, head: h });
  const patternColumns = Object.entries(PATTERN_LABELS).map(([key, text]) => ({
    key, label: text, value: (/** @type {any} */ r) => atlas.patterns[key][r.layer][r.head],
    text: (/** @type {any} */ r) => format(atlas.patterns[key][r.layer][r.head]),
  }));
  const probeColumns = scoreOptions(atlas).filter((o) => o.group === "Probes").map((o) => ({
    key: o.key, label: o.label, value: (/** @type {any} */ r) => o.values[r.layer][r.head],
    text: (/** @type {any} */ r) => format(o.values[r.layer][r.head]),
  }));
  const columns = () => {
    /** @type {Column[]} */
    const shown = [
      { key: "head", label: "head", ascending: true, value: (r) => r.layer * atlas.heads + r.head,
        text: (r) => `${r.layer}-${r.head}` },
      { key: "label", label: "pattern", ascending: true,
        value: (r) => atlas.patterns.labels[r.layer][r.head],
        text: (r) => atlas.patterns.labels[r.layer][r.head] },
      ...patternColumns,
      ...probeColumns,
    ];
    const o = option();
    if (o.group === "Relations") {
      shown.push({ key: o.key, label: o.label, value: (r) => o.values[r.layer][r.head],
                   text: (r) => format(o.values[r.layer][r.head]) });
    }
    return shown;
  };
  const decorate = (/** @type {any} */ row, /** @type {HTMLTableRowElement} */ tr) => {
    tr.dataset.layer = String(row.layer);
    tr.dataset.head = String(row.head);
    tr.tabIndex = 0;
    tr.className = "attnscope-atlas-row";
    tr.addEventListener("click", () => open(row.layer, row.head));
    tr.addEventListener("keydown", (event) => { if (event.key === "Enter") open(row.layer, row.head); });
  };
  return sortableTable("attnscope-atlas-heads", columns, () => heads, decorate, initial);
}

/** Each relation with its best head per direction (`best[direction]`: layer, head, value). @param {any} atlas */
export function relationRows(atlas) {
  return (atlas.relations ?? []).map((/** @type {any} */ r) => {
    const best = Object.fromEntries(Object.keys(DIRECTIONS).map((direction) => {
      let top = { layer: 0, head: 0, value: -1 };
      r[direction].forEach((/** @type {number[]} */ row, /** @type {number} */ l) => row.forEach((v, h) => {
        if (v > top.value) top = { layer: l, head: h, value: v };
      }));
      return [direction, top];
    }));
    return { ...r, best };
  });
}

/**
 * The table of the best head per relation, sorted by arcs at first; a best-head cell calls
 * `go(row, direction)` (a click, or Enter).
 * @param {any[]} rows `relationRows` @param {(row: any, direction: string) => void} go
 */
export function createRelationsTable(rows, go) {
  /** @type {Column[]} */
  const columns = [
    { key: "relation", label: "relation", ascending: true, value: (r) => r.relation, text: (r) => r.relation },
    { key: "pairs", label: "arcs", value: (r) => r.pairs, text: (r) => r.pairs.toLocaleString("en") },
    ...Object.entries(DIRECTIONS).map(([direction, arrow]) => ({
      key: direction, label: `best ${arrow}`, value: (/** @type {any} */ r) => r.best[direction].value,
      text: (/** @type {any} */ r) => `${r.best[direction].layer}-${r.best[direction].head}  ${format(r.best[direction].value)}`,
    })),
    { key: "baseline", label: "baseline (offset)", value: (r) => r.baseline,
      text: (r) => `${format(r.baseline)} (${signed(r.baseline_offset)})` },
  ];
  return sortableTable("attnscope-atlas-relations", () => columns, () => rows, (row, tr) => {
    tr.dataset.relation = row.relation;
    for (const direction of Object.keys(DIRECTIONS)) {
      const td = /** @type {HTMLElement} */ (tr.querySelector(`td[data-key="${direction}"]`));
      td.classList.add("attnscope-atlas-link");
      td.tabIndex = 0;
      td.title = `colour the grid by ${row.relation} ${DIRECTIONS[/** @type {keyof typeof DIRECTIONS} */ (direction)]} and open its best head`;
      td.addEventListener("click", () => go(row, direction));
      td.addEventListener("keydown", (event) => { if (event.key === "Enter") go(row, direction); });
    }
  }, "pairs");
}
