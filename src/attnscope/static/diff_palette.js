// @ts-check
/**
 * The diff view's colours: a ramp of stops (position, r, g, b) applied to a number, with the same arithmetic as
 * Python's `views.diff_payload.ramp_rgb` (clip to the stops' range, linear between the two stops around the value,
 * each channel rounded half up), so a cell's colour can be checked against Python's. The stops come in the
 * payload's header: "diverging" (A − B: blue below zero, white at zero, orange above; limit = limit_code / 255)
 * and "sequential" (a weight 0-1, or a distance over the largest one: white to dark blue). Imported by
 * diff_paint.js, diff_grids.js, diff_detail.js and diff_export.js.
 */

/** @typedef {number[][]} Stops [[position, r, g, b], ...] ascending positions */
/** @typedef {[number, number, number]} RGB */

/** The colour of `value` on `stops`. @param {number} value @param {Stops} stops @returns {RGB} */
export function ramp(value, stops) {
  const first = stops[0][0], last = stops[stops.length - 1][0];
  const t = Math.min(last, Math.max(first, value));
  for (let i = 0; i + 1 < stops.length; i++) {
    const [at0, ...c0] = stops[i];
    const [at1, ...c1] = stops[i + 1];
    if (t > at1) continue;
    const f = (t - at0) / (at1 - at0);
    return /** @type {RGB} */ (c0.map((c, k) => Math.floor(c + (c1[k] - c) * f + 0.5)));
  }
  return /** @type {RGB} */ (stops[stops.length - 1].slice(1));
}

/** CSS text of a colour. @param {RGB} rgb */
export const css = (rgb) => `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;

/**
 * Packed colours for every byte (0-255) of one model's weights: table[byte] is 0xAABBGGRR (an ImageData's
 * little-endian Uint32 view), opaque. @param {Stops} stops @returns {Uint32Array}
 */
export function weightTable(stops) {
  const table = new Uint32Array(256);
  for (let b = 0; b < 256; b++) table[b] = packed(ramp(b / 255, stops));
  return table;
}

/**
 * Packed colours of every byte difference a − b (−255..255) at `limitCode`: table[d + 255].
 * @param {Stops} stops @param {number} limitCode @returns {Uint32Array}
 */
export function differenceTable(stops, limitCode) {
  const table = new Uint32Array(511);
  for (let d = -255; d <= 255; d++) table[d + 255] = packed(ramp(d / limitCode, stops));
  return table;
}

/** @param {RGB} rgb */
function packed(rgb) {
  return ((255 << 24) | (rgb[2] << 16) | (rgb[1] << 8) | rgb[0]) >>> 0;
}

/** Black or white, whichever reads better on `rgb` (WCAG relative luminance). @param {RGB} rgb */
export function textOn(rgb) {
  const [r, g, b] = rgb.map((c) => { const s = c / 255; return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.179 ? "#ffffff" : "#000000";
}
