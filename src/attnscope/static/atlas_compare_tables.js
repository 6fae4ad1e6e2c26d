// @ts-check
/**
 * The tables of two atlases compared, sortable by any column (atlas_tables.js `sortableTable`): the heads of
 * the score shown with A's value, B's, A − B and |A − B| (models of one shape), and one row per score with
 * its most changed head (or, when the models differ in shape, each model's best head). Imported by
 * atlas_compare.js.
 */

import { format } from "./atlas_scores.js";
import { sortableTable } from "./atlas_tables.js";
/** @import { Column, SortableTable } from "./atlas_tables.js" */

/** A difference with its sign: +0.12, −0.30, 0.00. @param {number} value */
export function signedScore(value) {
  const text = format(Math.abs(value));
  return text === format(0) ? text : `${value > 0 ? "+" : "−"}${text}`;
}

/**
 * One row per head of the score shown: layer, head, A, B and A − B.
 * @typedef {{ layer: number, head: number, a: number, b: number, difference: number }} HeadRow
 */

/**
 * The table of every head of the score shown, sorted by |A − B| at first; a row opens its head (a click, or Enter).
 * @param {() => HeadRow[]} rows @param {(layer: number, head: number) => void} open
 * @returns {SortableTable}
 */
export function createChangesTable(rows, open) {
  /** @type {Column[]} */
  const columns = [
    { key: "head", label: "head", ascending: true, value: (r) => r.layer * 1e4 + r.head, text: (r) => `${r.layer}-${r.head}` },
    { key: "a", label: "A", value: (r) => r.a, text: (r) => format(r.a) },
    { key: "b", label: "B", value: (r) => r.b, text: (r) => format(r.b) },
    { key: "difference", label: "A − B", value: (r) => r.difference, text: (r) => signedScore(r.difference) },
    { key: "change", label: "|A − B|", value: (r) => Math.abs(r.difference), text: (r) => format(Math.abs(r.difference)) },
  ];
  return sortableTable("attnscope-atlas-heads attnscope-atlas-changes", () => columns, rows, (row, tr) => {
    tr.dataset.layer = String(row.layer);
    tr.dataset.head = String(row.head);
    tr.tabIndex = 0;
    tr.className = "attnscope-atlas-row";
    tr.addEventListener("click", () => open(row.layer, row.head));
    tr.addEventListener("keydown", (event) => { if (event.key === "Enter") open(row.layer, row.head); });
  }, "change");
}

/** A head and its score: "2-5 (0.43)". @param {{ layer: number, head: number, value: number }} best */
function headAndScore(best) {
  return `${best.layer}-${best.head} (${format(best.value)})`;
}

/**
 * One row per score: the most changed head with A, B and A − B (one shape), or each model's best head.
 * A row shows its score in the grid and opens that head (a click, or Enter).
 * @param {any[]} scores `comparison.scores`, each with its `label` added
 * @param {boolean} sameShape @param {(score: any) => void} go
 * @returns {SortableTable}
 */
export function createScoresTable(scores, sameShape, go) {
  /** @type {Column[]} */
  const columns = [{ key: "score", label: "score", ascending: true, value: (s) => s.key, text: (s) => s.label }];
  if (sameShape) {
    const top = (/** @type {any} */ s) => s.most_changed[0];
    columns.push(
      { key: "head", label: "most changed head", ascending: true, value: (s) => `${top(s).layer}-${top(s).head}`,
        text: (s) => `${top(s).layer}-${top(s).head}` },
      { key: "a", label: "A", value: (s) => top(s).a, text: (s) => format(top(s).a) },
      { key: "b", label: "B", value: (s) => top(s).b, text: (s) => format(top(s).b) },
      { key: "change", label: "A − B", value: (s) => Math.abs(top(s).difference), text: (s) => signedScore(top(s).difference) },
    );
  } else {
    columns.push(
      { key: "best_a", label: "A: best head", value: (s) => s.best_a.value, text: (s) => headAndScore(s.best_a) },
      { key: "best_b", label: "B: best head", value: (s) => s.best_b.value, text: (s) => headAndScore(s.best_b) },
    );
  }
  return sortableTable("attnscope-atlas-relations attnscope-atlas-scores", () => columns, () => scores, (score, tr) => {
    tr.dataset.score = score.key;
    tr.tabIndex = 0;
    tr.className = "attnscope-atlas-row";
    tr.addEventListener("click", () => go(score));
    tr.addEventListener("keydown", (event) => { if (event.key === "Enter") go(score); });
  }, sameShape ? "change" : "best_a");
}
