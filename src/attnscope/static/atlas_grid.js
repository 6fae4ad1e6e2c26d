// @ts-check
/**
 * The head atlas's layers × heads grid: a table of one button per head (`data-layer`, `data-head`), which
 * opens it. The views colour and label the cells. Imported by atlas.js and atlas_compare.js.
 */

import { make } from "./common.js";

/**
 * The layers × heads grid: a table of one button per head, which opens it.
 * @param {any} atlas @param {(layer: number, head: number) => void} open
 */
export function createGrid(atlas, open) {
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
  return { grid, cells };
}
