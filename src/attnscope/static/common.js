// @ts-check
/**
 * Shared by every attnscope view: the head palette, the sentence filters, byte decoding, DOM helpers,
 * layers that arrive lazily from Python or inflate from a page's deflated bytes, and file downloads. Imported by every view and by the
 * explorer app's modules; esbuild copies what each bundle uses into it (js/build.mjs).
 */

/** Paul Tol's "muted" scheme followed by three Okabe–Ito colours: colour-blind-safe, 12 distinct. */
export const PALETTE = [
  "#CC6677", "#332288", "#DDCC77", "#117733", "#88CCEE", "#882255",
  "#44AA99", "#999933", "#AA4499", "#E69F00", "#0072B2", "#D55E00",
];
/**
 * `PALETTE` for dark backgrounds. Two of its colours nearly vanish on a dark theme's panel (#161b22):
 * indigo #332288 (1.4:1) and wine #882255 (2.0:1). Here they are a violet #963CFF and a crimson #E12D4B,
 * so every colour has at least 3:1 against #161b22 and #0d1117 (WCAG 1.4.11, graphics); the others
 * already do and stay, so ten of twelve heads keep their colour across themes. The two were chosen
 * (on a 16-step RGB grid, within the hues of the colours they replace) as far as possible, in CIELAB,
 * from the other ten under simulated protanopia, deuteranopia and tritanopia (Machado et al. 2009):
 * the palette's closest pair under each simulation is then the same as `PALETTE`'s (ΔE 8.0, 13.7, 13.7).
 */
export const PALETTE_DARK = [
  "#CC6677", "#963CFF", "#DDCC77", "#117733", "#88CCEE", "#E12D4B",
  "#44AA99", "#999933", "#AA4499", "#E69F00", "#0072B2", "#D55E00",
];
/** Weights travel as bytes: decoded weight = byte / SCALE. */
export const SCALE = 255;
/**
 * The sentence-pair filters of the head, model and neuron views and the app: [value, label]. The value's
 * first letter is the queries' sentence, the second the keys' ("AB": A's queries on B's keys).
 */
export const FILTERS = [["all", "All"], ["AA", "A→A"], ["BB", "B→B"], ["AB", "A→B"], ["BA", "B→A"]];

/** A head's colour, from `PALETTE_DARK` when it is drawn on a dark background. @param {number} head @param {boolean} [dark] */
export function headColour(head, dark = false) {
  const palette = dark ? PALETTE_DARK : PALETTE;
  return palette[head % palette.length];
}

/**
 * Bytes as a Uint8Array, whatever form they arrived in (widget buffers arrive as DataView).
 * @param {any} value
 * @returns {Uint8Array}
 */
export function toBytes(value) {
  if (value instanceof Uint8Array) return value;
  if (value instanceof DataView) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (typeof value === "string") {
    const fromBase64 = /** @type {any} */ (Uint8Array).fromBase64; // native where the browser has it (2-3x faster)
    if (typeof fromBase64 === "function") return fromBase64.call(Uint8Array, value);
    const text = atob(value);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return bytes;
  }
  throw new TypeError("attnscope: binary data must be bytes or a base64 string");
}

/**
 * A new element with a class and, optionally, text (always as text, never parsed as HTML).
 * @param {string} tag
 * @param {string} className
 * @param {string} [text]
 */
export function make(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * A label holding a control, the text first ("Layer [select]").
 * @param {string} className @param {string} text @param {HTMLElement} control
 */
export function labelled(className, text, control) {
  const label = make("label", className, text + " ");
  label.append(control);
  return label;
}

/** A token as displayed: whitespace-only tokens become a visible "␣". @param {string} token */
export function shown(token) {
  return token.trim() === "" ? "␣" : token;
}

/** The payload header from the model (an object from the widget, or a JSON string). @param {any} model */
export function readHeader(model) {
  const raw = model.get("header");
  return typeof raw === "string" ? JSON.parse(raw) : raw;
}

/** A short id unique in the page, for element ids and ARIA links. @param {string} prefix */
export function uniqueId(prefix) {
  return `${prefix}-${Math.random().toString(36).slice(2, 10)}`;
}

/**
 * A layer's bytes from the form they travelled in (`toBytes`), inflated when `compression` names how they were
 * packed: "deflate-raw" (raw DEFLATE, as standalone pages carry their layers: views/compression.py), by the
 * browser's own `DecompressionStream`. Every view reads its layers through this function, by way of
 * `layerStore`; the result is exactly the bytes Python's `layer_bytes` gave.
 * @param {any} value @param {string | null | undefined} compression the header encoding's "compression"
 * @returns {Promise<Uint8Array>}
 */
export async function layerBytes(value, compression) {
  const bytes = toBytes(value);
  if (!compression) return bytes;
  if (compression !== "deflate-raw") throw new TypeError(`attnscope: layers packed as ${JSON.stringify(compression)} cannot be read`);
  const stream = new Blob([/** @type {Uint8Array<ArrayBuffer>} */ (bytes)]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Layers per stack role, decoded once. The model's `field` value (default "layers") holds
 * `{ role: [layer or null, ...] }`; a missing layer is asked of Python with
 * `model.send({ type: message, role, indices })` and arrives as a custom message of the same type
 * with one buffer per index, after which `onArrive` is called (a widget sends only what is viewed).
 * When the header's encoding names a compression (a standalone page's deflated layers), every layer the
 * field holds is inflated at once (`layerBytes`), and `onArrive` is called when all of them have arrived:
 * until then `get` returns null (the view says it is loading), afterwards every layer is at hand, so
 * choosing another layer draws it at once, as with plain bytes. Plain layers (the widget's buffers, the
 * server's) are read when first asked for. `decode(bytes, role)` turns a layer's bytes into what the view
 * uses (default: the bytes).
 * @param {any} model
 * @param {() => void} onArrive
 * @param {{ message?: string, field?: string, decode?: (bytes: Uint8Array, role: string) => any }} [options]
 */
export function layerStore(model, onArrive, options = {}) {
  const message = options.message ?? "attnscope-layers";
  const field = options.field ?? "layers";
  const decode = options.decode ?? ((/** @type {Uint8Array} */ bytes) => bytes);
  /** @type {Map<string, any>} */
  const cache = new Map();
  /** @type {Set<string>} */
  const pending = new Set();
  let disposed = false;
  const compression = readHeader(model)?.encoding?.compression;
  if (compression) inflateAll(model.get(field) ?? {}, compression, decode, cache, pending, () => { if (!disposed) onArrive(); });
  /** @param {any} msg @param {any[]} [buffers] */
  const receive = (msg, buffers) => {
    if (!msg || msg.type !== message || !buffers || !Array.isArray(msg.indices)) return;
    msg.indices.forEach((/** @type {number} */ index, /** @type {number} */ n) => {
      const key = `${msg.role}:${index}`;
      cache.set(key, decode(toBytes(buffers[n]), msg.role));
      pending.delete(key);
    });
    onArrive();
  };
  model.on("msg:custom", receive);
  return {
    /**
     * The decoded layer, or null while it is on its way (asked of Python, or inflating).
     * @param {string} role @param {number} index
     */
    get(role, index) {
      const key = `${role}:${index}`;
      if (cache.has(key)) return cache.get(key);
      if (pending.has(key)) return null;
      const given = compression ? null : model.get(field)?.[role]?.[index];
      if (given) {
        const layer = decode(toBytes(given), role);
        cache.set(key, layer);
        return layer;
      }
      if (typeof model.send === "function") {
        pending.add(key);
        model.send({ type: message, role, indices: [index] });
      }
      return null;
    },
    dispose() {
      disposed = true;
      if (typeof model.off === "function") model.off("msg:custom", receive);
    },
  };
}

/**
 * Inflate every layer of a page's `{ role: [layer or null, ...] }` into `cache` (decoded, by "role:index"),
 * each pending meanwhile; `done()` once all have arrived. A layer that cannot be read is said on the console
 * and stays pending (the view keeps saying it is loading).
 * @param {Record<string, any[]>} layers @param {string} compression @param {(bytes: Uint8Array, role: string) => any} decode
 * @param {Map<string, any>} cache @param {Set<string>} pending @param {() => void} done
 */
function inflateAll(layers, compression, decode, cache, pending, done) {
  /** @type {Promise<void>[]} */
  const arriving = [];
  for (const [role, list] of Object.entries(layers)) {
    (list ?? []).forEach((value, index) => {
      if (!value) return;
      const key = `${role}:${index}`;
      pending.add(key);
      arriving.push(layerBytes(value, compression).then(
        (bytes) => { cache.set(key, decode(bytes, role)); pending.delete(key); },
        (error) => console.error(`attnscope: layer ${index} of ${role} could not be read:`, error)));
    });
  }
  if (arriving.length) Promise.all(arriving).then(done);
}

/**
 * Save a blob as a file through a temporary link (works in notebooks and plain pages).
 * @param {string} filename @param {Blob} blob
 */
export function download(filename, blob) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/**
 * An SVG document rasterised to a PNG blob at the device's pixel ratio (for "save as PNG").
 * @param {string} text the SVG document @param {(blob: Blob) => void} done
 */
export function svgToPng(text, done) {
  const image = new Image();
  image.onload = () => {
    const ratio = window.devicePixelRatio || 1;
    const out = document.createElement("canvas");
    out.width = Math.ceil(image.width * ratio);
    out.height = Math.ceil(image.height * ratio);
    const ctx = /** @type {CanvasRenderingContext2D} */ (out.getContext("2d"));
    ctx.scale(ratio, ratio);
    ctx.drawImage(image, 0, 0);
    out.toBlob((blob) => { if (blob) done(blob); }, "image/png");
  };
  image.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(text);
}

/** Escape text for SVG/XML. @param {string} text */
export function xmlText(text) {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
