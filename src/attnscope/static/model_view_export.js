// @ts-check
/**
 * The model view's exports: the grid with its head and layer labels, on the theme's background, as a PNG
 * (the canvas copied) or an SVG (the same marks as elements, or the canvas embedded for very many marks).
 * Imported by model_view_controls.js (the PNG and SVG buttons).
 */

import { download, xmlText } from "./common.js";
import { collectMarks, minDrawnByte, svgHead } from "./raster.js";
import { colourOf, GAP, geometry, headName, layerBytes, positions, shownStack, styleOf } from "./model_view_state.js";
/** @import { ModelView } from "./model_view_state.js" */

const SVG_MAX_MARKS = 200000; // above this the SVG embeds the grid as an image instead of elements
const EXPORT_MARGIN = 28; // px around the grid in exports, for the head and layer labels

/** The file name of an export, without its extension. @param {ModelView} v */
function exportName(v) {
  const { state } = v;
  return `attnscope-model-view-${state.stack}-${styleOf(v)}` + (state.aggregation === "raw" ? "" : `-${state.aggregation}`);
}

/** What both exports draw around the thumbnails: size, colours, where each thumbnail goes, the labels. @param {ModelView} v */
function exportLayout(v) {
  const s = shownStack(v);
  const g = geometry(v);
  const colours = getComputedStyle(v.root);
  const at = (/** @type {number} */ i) => EXPORT_MARGIN + i * (g.cell + GAP);
  return {
    g, at, width: g.width + EXPORT_MARGIN, height: g.height + EXPORT_MARGIN,
    fg: colours.getPropertyValue("--attnscope-mv-fg").trim() || "#000",
    bg: colours.getPropertyValue("--attnscope-mv-bg").trim() || "#fff",
    labels: [
      ...s.head_labels.map((/** @type {number | null} */ h, /** @type {number} */ i) => ({ text: h === null ? headName(v, i) : String(h), x: at(i) + g.cell / 2, y: 16, middle: true })),
      ...s.layer_labels.map((/** @type {number} */ l, /** @type {number} */ i) => ({ text: String(l), x: 4, y: at(i) + g.cell / 2 + 4, middle: false })),
    ],
  };
}

/** The grid canvas with its labels, on the theme's background, as a PNG download. @param {ModelView} v */
export function savePng(v) {
  const canvas = v.grid.canvas;
  const layout = exportLayout(v);
  const ratio = canvas.width / Math.max(1, layout.g.width);
  const out = document.createElement("canvas");
  out.width = Math.round(layout.width * ratio);
  out.height = Math.round(layout.height * ratio);
  const ctx = /** @type {CanvasRenderingContext2D} */ (out.getContext("2d"));
  ctx.scale(ratio, ratio);
  ctx.fillStyle = layout.bg;
  ctx.fillRect(0, 0, layout.width, layout.height);
  ctx.fillStyle = layout.fg;
  ctx.font = "11px sans-serif";
  for (const label of layout.labels) {
    ctx.textAlign = label.middle ? "center" : "start";
    ctx.fillText(label.text, label.x, label.y);
  }
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.drawImage(canvas, Math.round(EXPORT_MARGIN * ratio), Math.round(EXPORT_MARGIN * ratio));
  out.toBlob((blob) => { if (blob) download(`${exportName(v)}.png`, blob); }, "image/png");
}

/**
 * The grid as an SVG download: per thumbnail a <g> of <line> (lines) or <rect> (matrix) elements made
 * from the same marks the canvas shows; past SVG_MAX_MARKS, the canvas embedded as an image instead.
 * @param {ModelView} v
 */
export function saveSvg(v) {
  const { state } = v;
  const s = shownStack(v);
  const layout = exportLayout(v);
  const { rows, cols } = positions(v);
  const minByte = minDrawnByte(state.threshold);
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${layout.width}" height="${layout.height}" font-family="sans-serif" font-size="11">`,
    `<rect class="background" width="100%" height="100%" fill="${layout.bg}"/>`,
    ...layout.labels.map((t) => `<text x="${t.x}" y="${t.y}" fill="${layout.fg}"${t.middle ? ' text-anchor="middle"' : ""}>${xmlText(t.text)}</text>`)];
  const raster = Number(v.root.dataset.drawn) > SVG_MAX_MARKS;
  if (raster) parts.push(`<image x="${EXPORT_MARGIN}" y="${EXPORT_MARGIN}" width="${layout.g.width}" height="${layout.g.height}" href="${v.grid.canvas.toDataURL("image/png")}"/>`);
  for (let l = 0; l < s.layers && !raster; l++) {
    const bytes = layerBytes(v, l);
    for (let h = 0; bytes && h < s.heads; h++) {
      collectMarks(bytes, h * s.query * s.key, s.key, rows, cols, minByte, v.marks);
      parts.push(`<g class="cell" data-layer="${s.layer_labels[l]}" data-head="${s.head_labels[h] ?? state.aggregation}" transform="translate(${layout.at(h)},${layout.at(l)})">`,
        svgHead(v.marks, styleOf(v), layout.g.cell, rows.length, cols.length, colourOf(v, h), v.scratch), "</g>");
    }
  }
  parts.push("</svg>");
  download(`${exportName(v)}.svg`, new Blob([parts.join("\n")], { type: "image/svg+xml" }));
}
