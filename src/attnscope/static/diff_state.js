// @ts-check
/**
 * The diff view's context and what follows from its header: each side's shape, a head's bytes, the head of B
 * a head of A is matched with, the distance of any pair the header knows. Imported by every diff_* module.
 */

/**
 * @typedef {{
 *   root: HTMLElement, model: any, header: any, u: number,
 *   store: { get(role: string, index: number): Uint8Array | null, dispose(): void },
 *   state: { mode: string, layer: number | null, head: number | null, partner: number[] | null, layout: string, theme: string },
 *   tables: { weight: Uint32Array, difference: Uint32Array },
 *   grid: { canvas: HTMLCanvasElement, cell: number, gap: number, box: HTMLElement, caption: HTMLElement, table: HTMLElement },
 *   detail: { box: HTMLElement, canvases: HTMLCanvasElement[], captions: HTMLElement[], partners: HTMLElement, readout: HTMLElement, labels: HTMLElement[] },
 * }} DiffView
 */

/** [layers, heads] of side "a" or "b". @param {DiffView} v @param {string} side @returns {number[]} */
export const shapeOf = (v, side) => (side === "a" ? v.header.shape_a : v.header.shape_b);

/** A short name of a head: "layer-head". @param {number} layer @param {number} head */
export const headName = (layer, head) => `${layer}-${head}`;

/**
 * One head's bytes, or null while its layer is on its way.
 * @param {DiffView} v @param {string} side @param {number} layer @param {number} head
 * @returns {import("./diff_paint.js").HeadBytes | null}
 */
export function headBytes(v, side, layer, head) {
  const bytes = v.store.get(side, layer);
  return bytes ? { bytes, offset: head * v.u * v.u } : null;
}

/** Whether every layer of both sides is at hand. @param {DiffView} v */
export function allLayers(v) {
  let ready = true;
  for (const side of ["a", "b"]) {
    for (let l = 0; l < shapeOf(v, side)[0]; l++) ready = v.store.get(side, l) !== null && ready;
  }
  return ready;
}

/**
 * The head of B that head (layer, head) of A is matched with: the one-to-one matching's pair, or, for a head
 * the matching left out (B has fewer heads), its nearest head. [layer_b, head_b, distance, how].
 * @param {DiffView} v @param {number} layer @param {number} head @returns {[number, number, number, string]}
 */
export function matchedOf(v, layer, head) {
  const m = v.header.matching.find((/** @type {number[]} */ x) => x[0] === layer && x[1] === head);
  if (m) return [m[2], m[3], m[4], "matched"];
  const [lb, hb] = v.header.nearest[layer][head][0];
  return [lb, hb, v.header.nearest_distances[layer][head][0], "nearest"];
}

/**
 * The head of B the open head of A is set against: the chosen partner, else its matched head.
 * @param {DiffView} v @returns {number[] | null}
 */
export function partnerOf(v) {
  const { layer, head, partner } = v.state;
  if (layer === null || head === null) return null;
  if (partner) return partner;
  const [lb, hb] = matchedOf(v, layer, head);
  return [lb, hb];
}

/**
 * The distance (bits) of head (layer, head) of A to head (lb, hb) of B when the header holds it (the same
 * place's, the matching's or one of the nearest heads'), else null.
 * @param {DiffView} v @param {number} layer @param {number} head @param {number} lb @param {number} hb
 * @returns {number | null}
 */
export function distanceOf(v, layer, head, lb, hb) {
  const h = v.header;
  if (h.distances && layer === lb && head === hb) return h.distances[layer][head];
  const m = h.matching.find((/** @type {number[]} */ x) => x[0] === layer && x[1] === head && x[2] === lb && x[3] === hb);
  if (m) return m[4];
  const i = h.nearest[layer][head].findIndex((/** @type {number[]} */ p) => p[0] === lb && p[1] === hb);
  return i >= 0 ? h.nearest_distances[layer][head][i] : null;
}

/**
 * The head of A a click on head (lb, hb) of B's grid opens: the one matched with it, else the same place.
 * @param {DiffView} v @param {number} lb @param {number} hb @returns {number[] | null}
 */
export function headOfA(v, lb, hb) {
  const m = v.header.matching.find((/** @type {number[]} */ x) => x[2] === lb && x[3] === hb);
  if (m) return [m[0], m[1]];
  const [la, ha] = shapeOf(v, "a");
  return lb < la && hb < ha ? [lb, hb] : null;
}

/** Write a selection back to the model (and Python, in a notebook). @param {DiffView} v @param {Record<string, any>} values */
export function save(v, values) {
  for (const [name, value] of Object.entries(values)) v.model.set(name, value);
  v.model.save_changes();
}
