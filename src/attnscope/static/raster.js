// @ts-check
/**
 * Pixel drawing for attention without canvas strokes, for views that draw many lines or heads at once.
 * Without a GPU, a canvas stroke costs about its pixel coverage plus a fixed overhead; writing pixels
 * into one ImageData and putting it once is far cheaper for hundreds of thousands of short lines.
 * Imported by the model view (its grid and enlarged head), the head view (its lines: `createLineLayer`)
 * and the explorer app's attention view.
 *
 * The pipeline per head: `collectMarks` picks the drawn weights (byte / SCALE > threshold) of the kept
 * query rows and key columns; `rasterLines` (query → key lines, opacity = weight, anti-aliased) or
 * `binMarks` (a heatmap, max-pooled when there are more tokens than pixels) turns them into pixels;
 * `paintCoverage`/`paintBins` write them in the head's colour into an ImageData. The SVG export reads
 * the same marks (`svgLines`, `svgBins`), so the file shows what the canvas shows.
 */

import { SCALE } from "./common.js";

/**
 * Drawn weights of one head, in kept-row/kept-column coordinates: mark m is kept query row `row[m]`,
 * kept key column `col[m]`, weight byte `byte[m]`. Buffers are reused and grow as needed.
 * @typedef {{ row: Int32Array, col: Int32Array, byte: Uint8Array, length: number }} Marks
 */

/** @returns {Marks} */
export function createMarks() {
  return { row: new Int32Array(1024), col: new Int32Array(1024), byte: new Uint8Array(1024), length: 0 };
}

/** The smallest byte that is drawn: byte / SCALE > threshold (the same float test Python makes). @param {number} threshold */
export function minDrawnByte(threshold) {
  for (let b = 0; b <= SCALE; b++) if (b / SCALE > threshold) return b;
  return SCALE + 1;
}

/**
 * Fill `marks` with one head's drawn weights and return how many there are.
 * @param {Uint8Array} bytes a layer: (heads, query, key) row-major
 * @param {number} offset where this head's (query, key) block starts: head * query * key
 * @param {number} keyCount key positions per query row
 * @param {number[]} rows kept query positions, in order
 * @param {number[]} cols kept key positions, in order
 * @param {number} minByte from `minDrawnByte`
 * @param {Marks} marks
 */
export function collectMarks(bytes, offset, keyCount, rows, cols, minByte, marks) {
  let n = 0;
  for (let r = 0; r < rows.length; r++) {
    const base = offset + rows[r] * keyCount;
    for (let c = 0; c < cols.length; c++) {
      const byte = bytes[base + cols[c]];
      if (byte < minByte) continue;
      if (n === marks.row.length) growMarks(marks);
      marks.row[n] = r;
      marks.col[n] = c;
      marks.byte[n] = byte;
      n++;
    }
  }
  marks.length = n;
  return n;
}

/** @param {Marks} marks */
function growMarks(marks) {
  const size = marks.row.length * 2;
  const row = new Int32Array(size), col = new Int32Array(size), byte = new Uint8Array(size);
  row.set(marks.row);
  col.set(marks.col);
  byte.set(marks.byte);
  Object.assign(marks, { row, col, byte });
}

/**
 * Lines from x = 0 (query row r at y = (r + 0.5) * qStep) to x = width (key column c at
 * y = (c + 0.5) * kStep), opacity = weight, composited into `coverage`, a transmittance buffer
 * (1 = untouched; the pixel's alpha is 1 - coverage).
 * @param {Marks} marks @param {number} qStep @param {number} kStep
 * @param {number} width @param {number} height @param {Float32Array} coverage at least width * height
 */
function rasterLines(marks, qStep, kStep, width, height, coverage) {
  coverage.fill(1, 0, width * height);
  for (let m = 0; m < marks.length; m++) {
    strokeAcross(coverage, width, height, (marks.row[m] + 0.5) * qStep, (marks.col[m] + 0.5) * kStep, marks.byte[m] / SCALE);
  }
}

/**
 * One anti-aliased line across the whole width, from (0, y0) to (width, y1), with opacity `alpha`;
 * `thick` lines are 2 pixels wide instead of 1.
 * @param {Float32Array} t @param {number} width @param {number} height
 * @param {number} y0 @param {number} y1 @param {number} alpha @param {boolean} [thick]
 */
function strokeAcross(t, width, height, y0, y1, alpha, thick = false) {
  const dy = y1 - y0;
  if (Math.abs(dy) <= width) {
    const slope = dy / width;
    const shift = thick ? 1 : 0.5;
    for (let x = 0; x < width; x++) {
      const y = y0 + slope * (x + 0.5) - shift;
      const iy = Math.floor(y);
      const f = y - iy;
      if (iy >= 0 && iy < height) t[iy * width + x] *= 1 - alpha * (1 - f);
      if (thick && iy + 1 >= 0 && iy + 1 < height) t[(iy + 1) * width + x] *= 1 - alpha;
      const last = iy + (thick ? 2 : 1);
      if (last >= 0 && last < height) t[last * width + x] *= 1 - alpha * f;
    }
    return;
  }
  const top = Math.max(0, Math.floor(Math.min(y0, y1)));
  const bottom = Math.min(height, Math.ceil(Math.max(y0, y1)));
  const run = width / dy;
  for (let y = top; y < bottom; y++) {
    const x = (y + 0.5 - y0) * run - (thick ? 1 : 0.5);
    const ix = Math.floor(x);
    const f = x - ix;
    if (ix >= 0 && ix < width) t[y * width + ix] *= 1 - alpha * (1 - f);
    if (thick && ix + 1 >= 0 && ix + 1 < width) t[y * width + ix + 1] *= 1 - alpha;
    const last = ix + (thick ? 2 : 1);
    if (last >= 0 && last < width) t[y * width + last] *= 1 - alpha * f;
  }
}

/**
 * Write a coverage buffer into `image` at (x0, y0) in colour `rgb` (alpha = 1 - coverage).
 * @param {ImageData} image @param {number} x0 @param {number} y0
 * @param {number} width @param {number} height @param {Float32Array} coverage @param {number[]} rgb
 */
function paintCoverage(image, x0, y0, width, height, coverage, rgb) {
  const data = image.data;
  for (let y = 0; y < height; y++) {
    let p = ((y0 + y) * image.width + x0) * 4;
    const row = y * width;
    for (let x = 0; x < width; x++, p += 4) {
      const t = coverage[row + x];
      if (t >= 1) continue;
      data[p] = rgb[0];
      data[p + 1] = rgb[1];
      data[p + 2] = rgb[2];
      data[p + 3] = Math.round((1 - t) * 255);
    }
  }
}

/**
 * A heatmap grid of at most `width` × `height` bins, each the largest drawn byte of the weights
 * that fall in it (one bin per weight when the head is no larger than the area).
 * @param {Marks} marks @param {number} rowCount @param {number} colCount
 * @param {number} width @param {number} height @param {Uint8Array} bins at least width * height
 * @returns {{ binRows: number, binCols: number }}
 */
function binMarks(marks, rowCount, colCount, width, height, bins) {
  const binRows = Math.max(1, Math.min(rowCount, height));
  const binCols = Math.max(1, Math.min(colCount, width));
  bins.fill(0, 0, binRows * binCols);
  for (let m = 0; m < marks.length; m++) {
    const index = Math.floor((marks.row[m] * binRows) / rowCount) * binCols + Math.floor((marks.col[m] * binCols) / colCount);
    if (marks.byte[m] > bins[index]) bins[index] = marks.byte[m];
  }
  return { binRows, binCols };
}

/**
 * Write heatmap bins into `image` at (x0, y0), each bin a block of pixels, opacity = its weight.
 * @param {ImageData} image @param {number} x0 @param {number} y0 @param {number} width @param {number} height
 * @param {Uint8Array} bins @param {number} binRows @param {number} binCols @param {number[]} rgb
 */
function paintBins(image, x0, y0, width, height, bins, binRows, binCols, rgb) {
  const data = image.data;
  for (let br = 0; br < binRows; br++) {
    const ya = Math.floor((br * height) / binRows), yb = Math.floor(((br + 1) * height) / binRows);
    for (let bc = 0; bc < binCols; bc++) {
      const byte = bins[br * binCols + bc];
      if (byte === 0) continue;
      const xa = Math.floor((bc * width) / binCols), xb = Math.floor(((bc + 1) * width) / binCols);
      for (let y = ya; y < yb; y++) {
        for (let p = ((y0 + y) * image.width + x0 + xa) * 4, x = xa; x < xb; x++, p += 4) {
          data[p] = rgb[0];
          data[p + 1] = rgb[1];
          data[p + 2] = rgb[2];
          data[p + 3] = byte;
        }
      }
    }
  }
}

/**
 * Reusable pixel buffers: `coverage` for lines, `bins` for heatmaps, grown by `ensure`.
 * @typedef {{ coverage: Float32Array, bins: Uint8Array, ensure: (size: number) => void }} Scratch
 * @returns {Scratch}
 */
export function createScratch() {
  /** @type {Scratch} */
  const scratch = {
    coverage: new Float32Array(0),
    bins: new Uint8Array(0),
    ensure(size) {
      if (scratch.coverage.length < size) scratch.coverage = new Float32Array(size);
      if (scratch.bins.length < size) scratch.bins = new Uint8Array(size);
    },
  };
  return scratch;
}

/**
 * One head's `marks` as lines into a width × height box of `image` at (x0, y0).
 * @param {ImageData} image @param {number} x0 @param {number} y0 @param {number} width @param {number} height
 * @param {Marks} marks @param {number} qStep @param {number} kStep @param {number[]} rgb @param {Scratch} scratch
 */
export function paintLines(image, x0, y0, width, height, marks, qStep, kStep, rgb, scratch) {
  scratch.ensure(width * height);
  rasterLines(marks, qStep, kStep, width, height, scratch.coverage);
  paintCoverage(image, x0, y0, width, height, scratch.coverage, rgb);
}

/**
 * One head's `marks` as a heatmap of rowCount × colCount weights into a width × height box of `image`.
 * @param {ImageData} image @param {number} x0 @param {number} y0 @param {number} width @param {number} height
 * @param {Marks} marks @param {number} rowCount @param {number} colCount @param {number[]} rgb @param {Scratch} scratch
 */
export function paintMatrix(image, x0, y0, width, height, marks, rowCount, colCount, rgb, scratch) {
  scratch.ensure(width * height);
  const { binRows, binCols } = binMarks(marks, rowCount, colCount, width, height, scratch.bins);
  paintBins(image, x0, y0, width, height, scratch.bins, binRows, binCols, rgb);
}

/**
 * One head's `marks` as SVG elements in a size × size box, as the thumbnail draws them.
 * @param {Marks} marks @param {string} style "lines" or "matrix" @param {number} size
 * @param {number} rowCount @param {number} colCount @param {string} colour @param {Scratch} scratch
 */
export function svgHead(marks, style, size, rowCount, colCount, colour, scratch) {
  if (style === "lines") return svgLines(marks, size / rowCount, size / colCount, size, colour);
  scratch.ensure(size * size);
  const { binRows, binCols } = binMarks(marks, rowCount, colCount, size, size, scratch.bins);
  return svgBins(scratch.bins, binRows, binCols, size, size, colour);
}

/** "#RRGGBB" as [r, g, b]. @param {string} hex */
export function rgbOf(hex) {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

/**
 * The same lines as `rasterLines`, as SVG `<line>` elements in a width × height box.
 * @param {Marks} marks @param {number} qStep @param {number} kStep @param {number} width @param {string} colour
 */
function svgLines(marks, qStep, kStep, width, colour) {
  const parts = [];
  for (let m = 0; m < marks.length; m++) {
    const y0 = ((marks.row[m] + 0.5) * qStep).toFixed(2), y1 = ((marks.col[m] + 0.5) * kStep).toFixed(2);
    parts.push(`<line x1="0" y1="${y0}" x2="${width}" y2="${y1}" stroke="${colour}" stroke-opacity="${(marks.byte[m] / SCALE).toFixed(3)}"/>`);
  }
  return parts.join("");
}

/**
 * The same heatmap as `paintBins`, as one SVG `<rect>` per non-empty bin.
 * @param {Uint8Array} bins @param {number} binRows @param {number} binCols
 * @param {number} width @param {number} height @param {string} colour
 */
function svgBins(bins, binRows, binCols, width, height, colour) {
  const parts = [];
  const w = width / binCols, h = height / binRows;
  for (let i = 0; i < binRows * binCols; i++) {
    if (bins[i] === 0) continue;
    const x = ((i % binCols) * w).toFixed(2), y = (Math.floor(i / binCols) * h).toFixed(2);
    parts.push(`<rect x="${x}" y="${y}" width="${w.toFixed(2)}" height="${h.toFixed(2)}" fill="${colour}" fill-opacity="${(bins[i] / SCALE).toFixed(3)}"/>`);
  }
  return parts.join("");
}

/**
 * A width × height layer of lines in several colours, composited source-over in the order drawn
 * (the head view: one colour per head). Per colour: `begin(rgb)`, `line(y0, y1, alpha)` for lines
 * from (0, y0) to (width, y1) in pixels, `end()`; then `write(image)` puts the result in an ImageData
 * of the same size.
 * @param {number} width @param {number} height
 */
export function createLineLayer(width, height) {
  const size = width * height;
  const coverage = new Float32Array(size);
  const colour = new Float32Array(size * 3); // premultiplied red, green, blue
  const alpha = new Float32Array(size);
  coverage.fill(1);
  let rgb = [0, 0, 0], low = height, high = -1;
  return {
    /** @param {number[]} next */
    begin(next) {
      rgb = next;
      if (high >= low) coverage.fill(1, low * width, (high + 1) * width);
      low = height;
      high = -1;
    },
    /** @param {number} y0 @param {number} y1 @param {number} a @param {boolean} thick */
    line(y0, y1, a, thick) {
      strokeAcross(coverage, width, height, y0, y1, a, thick);
      low = Math.max(0, Math.min(low, Math.floor(Math.min(y0, y1)) - 1));
      high = Math.min(height - 1, Math.max(high, Math.ceil(Math.max(y0, y1)) + 1));
    },
    end() {
      for (let p = low * width; p < (high + 1) * width; p++) {
        const a = 1 - coverage[p];
        if (a <= 0) continue;
        const keep = 1 - a;
        colour[p * 3] = rgb[0] * a + colour[p * 3] * keep;
        colour[p * 3 + 1] = rgb[1] * a + colour[p * 3 + 1] * keep;
        colour[p * 3 + 2] = rgb[2] * a + colour[p * 3 + 2] * keep;
        alpha[p] = a + alpha[p] * keep;
      }
    },
    /** @param {ImageData} image */
    write(image) {
      const data = image.data;
      for (let p = 0; p < size; p++) {
        const a = alpha[p];
        if (a <= 0) continue;
        data[p * 4] = colour[p * 3] / a;
        data[p * 4 + 1] = colour[p * 3 + 1] / a;
        data[p * 4 + 2] = colour[p * 3 + 2] / a;
        data[p * 4 + 3] = Math.round(a * 255);
      }
    },
  };
}
