// @ts-check
/**
 * The diverging palette of a difference A − B: white at 0, blue where A's score is higher, orange where
 * B's is (ColorBrewer's RdBu blue and PuOr orange ends: told apart with every common colour-vision
 * deficiency, as the neuron view's blue/orange), linear in |A − B| / scale and saturated beyond the
 * scale. Imported by atlas_compare.js.
 */

/** The colour of A − B = +scale (A higher). */
export const POSITIVE = [33, 102, 172];
/** The colour of A − B = −scale (B higher). */
export const NEGATIVE = [179, 88, 6];
/** The colour of no difference. */
export const ZERO = [255, 255, 255];

/**
 * The colour of a difference `value` on a scale of ±`scale`.
 * @param {number} value @param {number} scale > 0
 */
export function divergingColour(value, scale) {
  const end = value < 0 ? NEGATIVE : POSITIVE;
  const t = Math.min(1, Math.abs(value) / scale);
  return `rgb(${ZERO.map((c, i) => Math.round(c + (end[i] - c) * t)).join(", ")})`;
}

/**
 * The scale of a grid of differences: its largest |value|, or 1 when every value is 0 (all white).
 * @param {number[][]} grid
 */
export function scaleOf(grid) {
  let most = 0;
  for (const row of grid) for (const value of row) most = Math.max(most, Math.abs(value));
  return most > 0 ? most : 1;
}
