// @ts-check
/**
 * The neuron view's exports: what is on screen as a standalone SVG document, with the theme's colours
 * written into its style rules, saved as SVG or rasterised at twice its size as PNG. Imported by
 * neuron_view.js.
 */

import { download } from "./common.js";
import { neuronRules } from "./neuron_figure.js";
/** @import { NeuronView } from "./neuron_view.js" */

const FALLBACK = { fg: "#1f2328", bg: "#ffffff", muted: "#6e7781", pos: "#0072b2", neg: "#d55e00",
  masked: "#afb8c1", highlight: "#dbe9f9" };

/** A colour of the current theme, resolved from the root's CSS variables. @param {HTMLElement} root @param {string} name */
function resolved(root, name) {
  const value = getComputedStyle(root).getPropertyValue(`--attnscope-nv-${name}`).trim();
  return value || /** @type {Record<string, string>} */ (FALLBACK)[name];
}

/** What is on screen as a standalone SVG document, with the theme's colours written in. @param {NeuronView} v */
function svgDocument(v) {
  const live = v.figureBox.querySelector("svg");
  if (!live) return null;
  const clone = /** @type {SVGSVGElement} */ (live.cloneNode(true));
  /** @type {Element} */ (clone.querySelector("style")).textContent = neuronRules(v.svgId, (name) => resolved(v.root, name));
  return { text: new XMLSerializer().serializeToString(clone), width: live.width.baseVal.value, height: live.height.baseVal.value };
}

/** The export's file name: stack, layer, head, query and filter. @param {NeuronView} v @param {string} ext */
function fileName(v, ext) {
  const { state } = v;
  return `attnscope-neuron-${state.stack}-layer${state.layer}-head${state.head}` +
    `-query${state.query}${state.filter === "all" ? "" : "-" + state.filter}.${ext}`;
}

/** The figure as an SVG download. @param {NeuronView} v */
export function saveSvg(v) {
  const doc = svgDocument(v);
  if (doc) download(fileName(v, "svg"), new Blob([doc.text], { type: "image/svg+xml" }));
}

/** The figure as a PNG download, at twice its CSS size. @param {NeuronView} v */
export function savePng(v) {
  const doc = svgDocument(v);
  if (!doc) return;
  const image = new Image();
  image.onload = () => {
    const canvas = document.createElement("canvas");
    canvas.width = doc.width * 2;
    canvas.height = doc.height * 2;
    const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
    ctx.scale(2, 2);
    ctx.drawImage(image, 0, 0);
    canvas.toBlob((blob) => { if (blob) download(fileName(v, "png"), blob); }, "image/png");
  };
  image.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(doc.text);
}
