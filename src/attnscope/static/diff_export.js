// @ts-check
/**
 * The diff view's exports. PNG: what the view shows (the heads grid in its mode, and the open head's three
 * panels) on one white canvas with their captions and the A − B scale. SVG: the same, with the open head's cells
 * and the distance grid as <rect> elements (a panel of more than SVG_MAX_CELLS cells, and the heads grid, are
 * embedded as images). Imported by diff_view.js (the PNG and SVG buttons).
 */

import { download, xmlText } from "./common.js";
import { css, ramp } from "./diff_palette.js";
import { headBytes, partnerOf } from "./diff_state.js";
/** @import { DiffView } from "./diff_state.js" */

const SVG_MAX_CELLS = 64 * 64;
const MARGIN = 24, PANEL = 240, FONT = "12px sans-serif";

/** The pieces an export places: [canvas, caption, x, y, width, height]. @param {DiffView} v */
function layout(v) {
  /** @type {[HTMLCanvasElement, string, number, number, number, number][]} */
  const pieces = [];
  let y = MARGIN;
  const g = v.grid.canvas;
  if (v.state.layout === "model" && g.width) {
    pieces.push([g, v.grid.caption.textContent ?? "", MARGIN, y, g.width, g.height]);
    y += g.height + MARGIN * 2;
  }
  if (!v.detail.box.hidden) {
    v.detail.canvases.forEach((c, i) => pieces.push([c, v.detail.captions[i].textContent ?? "", MARGIN + i * (PANEL + MARGIN), y, PANEL, PANEL]));
    y += PANEL + MARGIN * 2;
  }
  const width = Math.max(MARGIN * 2 + 3 * (PANEL + MARGIN), g.width + MARGIN * 2);
  return { pieces, width, height: y, title: `A: ${v.header.model_a} · B: ${v.header.model_b} · ${v.header.level} level` };
}

/** A file name for the exports. @param {DiffView} v */
function fileName(v) {
  const open = v.state.layer === null ? "" : `-${v.state.layer}-${v.state.head}`;
  return `attnscope-diff-${v.state.mode}${open}`;
}

/** The view as a PNG download. @param {DiffView} v */
export function savePng(v) {
  const { pieces, width, height, title } = layout(v);
  const out = document.createElement("canvas");
  out.width = width;
  out.height = height;
  const ctx = /** @type {CanvasRenderingContext2D} */ (out.getContext("2d"));
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, width, height);
  ctx.fillStyle = "#000000";
  ctx.font = FONT;
  ctx.fillText(title, MARGIN, 14);
  ctx.imageSmoothingEnabled = false;
  for (const [canvas, caption, x, y, w, h] of pieces) {
    ctx.fillText(caption, x, y - 6);
    ctx.drawImage(canvas, x, y, w, h);
  }
  out.toBlob((blob) => { if (blob) download(`${fileName(v)}.png`, blob); }, "image/png");
}

/** The open head's A − B (or one side) as <rect> cells. @param {DiffView} v @param {number} panel @param {number} x @param {number} y */
function svgCells(v, panel, x, y) {
  const pair = partnerOf(v);
  if (v.state.layer === null || v.state.head === null || pair === null) return "";
  const a = headBytes(v, "a", v.state.layer, v.state.head), b = headBytes(v, "b", pair[0], pair[1]);
  if (!a || !b) return "";
  const cell = PANEL / v.u, parts = [];
  for (let q = 0; q < v.u; q++) {
    for (let k = 0; k < v.u; k++) {
      const wa = a.bytes[a.offset + q * v.u + k], wb = b.bytes[b.offset + q * v.u + k];
      const rgb = panel === 2 ? ramp((wa - wb) / v.header.limit_code, v.header.diverging) : ramp((panel === 0 ? wa : wb) / 255, v.header.sequential);
      parts.push(`<rect x="${(x + k * cell).toFixed(2)}" y="${(y + q * cell).toFixed(2)}" width="${cell.toFixed(2)}" height="${cell.toFixed(2)}" fill="${css(rgb)}"/>`);
    }
  }
  return parts.join("");
}

/** The view as an SVG download. @param {DiffView} v */
export function saveSvg(v) {
  const { pieces, width, height, title } = layout(v);
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`, `<text x="${MARGIN}" y="14">${xmlText(title)}</text>`];
  for (const [canvas, caption, x, y, w, h] of pieces) {
    parts.push(`<text x="${x}" y="${y - 6}">${xmlText(caption)}</text>`);
    const panel = v.detail.canvases.indexOf(canvas);
    if (panel >= 0 && v.u * v.u <= SVG_MAX_CELLS) parts.push(`<g class="panel" data-kind="${canvas.dataset.kind}">${svgCells(v, panel, x, y)}</g>`);
    else parts.push(`<image x="${x}" y="${y}" width="${w}" height="${h}" style="image-rendering:pixelated" href="${canvas.toDataURL("image/png")}"/>`);
  }
  parts.push("</svg>");
  download(`${fileName(v)}.svg`, new Blob([parts.join("\n")], { type: "image/svg+xml" }));
}
