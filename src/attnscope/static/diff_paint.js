// @ts-check
/**
 * Pixels of the diff view's heatmaps. A head is an (u, u) block of bytes of one layer, (heads, u, u) row-major;
 * what a cell shows is one model's weight (byte / 255) or the difference of two heads, byte_a − byte_b, coloured
 * through a table (diff_palette.js). `paintHead` writes one cell per pixel (the open head, drawn full size and
 * scaled up by CSS without smoothing, so a pixel is a cell); `pooledHead` reduces a head to at most `size` ×
 * `size` cells for a thumbnail: the largest weight of each block or, for a difference, the value of largest
 * magnitude with its sign, so a strong change survives the pooling. Imported by diff_grids.js and diff_detail.js.
 */

/**
 * A head of a layer: the layer's bytes and where the head's block starts.
 * @typedef {{ bytes: Uint8Array, offset: number }} HeadBytes
 */

/**
 * One head (or a − b of two) as an (u, u) ImageData, cell (query q, key k) at pixel (k, q).
 * @param {HeadBytes} a @param {HeadBytes | null} b null: `a`'s weights alone
 * @param {number} u @param {Uint32Array} table a weight table, or a difference table when `b` is given
 * @returns {ImageData}
 */
export function paintHead(a, b, u, table) {
  const image = new ImageData(u, u);
  const out = new Uint32Array(image.data.buffer);
  const n = u * u;
  if (b === null) {
    for (let i = 0; i < n; i++) out[i] = table[a.bytes[a.offset + i]];
  } else {
    for (let i = 0; i < n; i++) out[i] = table[a.bytes[a.offset + i] - b.bytes[b.offset + i] + 255];
  }
  return image;
}

/**
 * A head pooled to m × m cells, m = min(u, size): per block the largest weight, or, for a − b, the difference
 * of largest magnitude (offset by 255 so it indexes a difference table).
 * @param {HeadBytes} a @param {HeadBytes | null} b @param {number} u @param {number} size
 * @returns {{ cells: Int16Array, m: number }}
 */
export function pooledHead(a, b, u, size) {
  const m = Math.min(u, size);
  const cells = new Int16Array(m * m).fill(b === null ? 0 : 255);
  const bin = new Int32Array(u);
  for (let i = 0; i < u; i++) bin[i] = Math.floor((i * m) / u);
  for (let q = 0; q < u; q++) {
    const row = bin[q] * m, base = q * u;
    for (let k = 0; k < u; k++) {
      const at = row + bin[k];
      if (b === null) {
        const w = a.bytes[a.offset + base + k];
        if (w > cells[at]) cells[at] = w;
      } else {
        const d = a.bytes[a.offset + base + k] - b.bytes[b.offset + base + k] + 255;
        if (Math.abs(d - 255) > Math.abs(cells[at] - 255)) cells[at] = d;
      }
    }
  }
  return { cells, m };
}

/**
 * Write pooled cells into `out` (a canvas-wide Uint32 view of `width` pixels) as a `size` × `size` square at
 * (x, y), each pixel taking its nearest cell.
 * @param {Uint32Array} out @param {number} width @param {number} x @param {number} y @param {number} size
 * @param {{ cells: Int16Array, m: number }} pooled @param {Uint32Array} table
 */
export function blitPooled(out, width, x, y, size, pooled, table) {
  const { cells, m } = pooled;
  for (let py = 0; py < size; py++) {
    const row = Math.floor((py * m) / size) * m, line = (y + py) * width + x;
    for (let px = 0; px < size; px++) out[line + px] = table[cells[row + Math.floor((px * m) / size)]];
  }
}
