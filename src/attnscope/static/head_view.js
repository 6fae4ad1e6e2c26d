// @ts-check
/**
 * attnscope head view (V1): query tokens on the left, key tokens on the right, one line per
 * (head, query, key) whose opacity is the attention weight, a colour per head.
 *
 * Python prepends common.js (palette, byte decoding, DOM helpers, lazy layers) to make one ES module,
 * loaded by the anywidget widget, the HTML export and the app alike. `render({ model, el })` reads from `model`:
 *   - "header": the payload header (object or JSON string) built by attnscope/views/payload.py
 *   - "layers": { role: [layer, ...] }, each layer the uint8 weights (heads, query, key) row-major,
 *     as a Uint8Array, DataView, ArrayBuffer or base64 string; decoded weight = byte / 255
 * and writes the selection back with model.set(...) + model.save_changes():
 *   "stack", "layer" (the model's layer number), "heads" (visible heads), "filter", "token".
 * The root element exposes what is drawn: data-lines-drawn, data-stack, data-layer, data-heads,
 * data-filter, data-token.
 */

const CANVAS_WIDTH = 220;
const TOOLTIP_TOP = 8;
const FILTERS = [["all", "All"], ["AA", "A→A"], ["BB", "B→B"], ["AB", "A→B"], ["BA", "B→A"]];

let viewCounter = 0;

/**
 * @param {{ model: any, el: HTMLElement }} args
 * @returns {() => void} cleanup
 */
export function render({ model, el }) {
  const rawHeader = model.get("header");
  const header = typeof rawHeader === "string" ? JSON.parse(rawHeader) : rawHeader;
  const stacks = Object.fromEntries(header.stacks.map((/** @type {any} */ s) => [s.role, s]));
  /** @type {Map<string, Uint8Array>} */
  const decoded = new Map();

  const initial = header.selection;
  const state = {
    stack: /** @type {string} */ (model.get("stack") ?? initial.stack),
    layer: /** @type {number} */ (model.get("layer") ?? initial.layer),
    heads: new Set(/** @type {number[]} */ (model.get("heads") ?? initial.heads)),
    filter: /** @type {string} */ (model.get("filter") ?? "all"),
    threshold: /** @type {number} */ (model.get("threshold") ?? header.threshold),
    /** @type {{side: string, index: number} | null} */ hover: null,
    /** @type {{side: string, index: number} | null} */ pinned: null,
  };

  const root = make("div", "attnscope-hv");
  root.id = `attnscope-hv-${++viewCounter}-${Math.random().toString(36).slice(2, 8)}`;
  root.dataset.view = "head";
  const controls = make("div", "attnscope-hv-controls");
  const stackSelect = /** @type {HTMLSelectElement} */ (make("select", "attnscope-hv-stack"));
  const layerSelect = /** @type {HTMLSelectElement} */ (make("select", "attnscope-hv-layer"));
  const filterSelect = /** @type {HTMLSelectElement} */ (make("select", "attnscope-hv-filter"));
  const stackLabel = labelled("Attention", stackSelect);
  const filterLabel = labelled("Sentences", filterSelect);
  controls.append(stackLabel, labelled("Layer", layerSelect), filterLabel);
  for (const s of header.stacks) stackSelect.append(new Option(s.role, s.role));
  for (const [value, text] of FILTERS) filterSelect.append(new Option(text, value));
  stackLabel.hidden = header.stacks.length < 2;

  const headBar = make("div", "attnscope-hv-heads");
  const body = make("div", "attnscope-hv-body");
  const queryCol = make("div", "attnscope-hv-col attnscope-hv-queries");
  const keyCol = make("div", "attnscope-hv-col attnscope-hv-keys");
  const canvas = document.createElement("canvas");
  canvas.className = "attnscope-hv-canvas";
  body.append(queryCol, canvas, keyCol);
  const tooltip = make("div", "attnscope-hv-tooltip");
  tooltip.setAttribute("role", "tooltip");
  tooltip.hidden = true;
  root.append(controls, headBar, body, tooltip);
  el.append(root);

  /** @param {string} text @param {HTMLElement} control */
  function labelled(text, control) {
    const label = make("label", "attnscope-hv-label", text + " ");
    label.append(control);
    return label;
  }

  function stack() {
    return stacks[state.stack];
  }

  function layerIndex() {
    return stack().layer_labels.indexOf(state.layer);
  }

  /** The current layer's bytes (heads, query, key), decoded once per layer. */
  function weights() {
    const key = `${state.stack}:${state.layer}`;
    let bytes = decoded.get(key);
    if (!bytes) {
      bytes = toBytes(model.get("layers")[state.stack][layerIndex()]);
      decoded.set(key, bytes);
    }
    return bytes;
  }

  /** The sentence-B start when queries and keys are the same sequence of a sentence pair. */
  function pairStart() {
    const s = stack();
    if (s.query_tokens !== s.key_tokens) return null;
    return header.sequences[s.query_tokens].sentence_b_start ?? null;
  }

  function save() {
    model.set("stack", state.stack);
    model.set("layer", state.layer);
    model.set("heads", [...state.heads].sort((a, b) => a - b));
    model.set("filter", state.filter);
    const token = state.pinned ?? state.hover;
    model.set("token", token ? { ...token } : null);
    model.save_changes();
  }

  function buildStack() {
    const s = stack();
    if (!s.layer_labels.includes(state.layer)) state.layer = s.layer_labels[0];
    state.heads = new Set([...state.heads].filter((h) => h < s.heads));
    if (state.heads.size === 0) for (let h = 0; h < s.heads; h++) state.heads.add(h);
    if (pairStart() === null) state.filter = "all";
    stackSelect.value = state.stack;
    layerSelect.replaceChildren(...s.layer_labels.map((/** @type {number} */ l) => new Option(String(l), String(l))));
    layerSelect.value = String(state.layer);
    filterLabel.hidden = pairStart() === null;
    filterSelect.value = state.filter;
    headBar.replaceChildren();
    for (let h = 0; h < s.heads; h++) {
      const button = make("button", "attnscope-hv-head", String(h));
      button.type = "button";
      button.dataset.head = String(h);
      button.title = `head ${h}: click to show or hide, double-click to show only this head`;
      button.style.setProperty("--attnscope-head", headColour(h));
      button.addEventListener("click", () => {
        if (state.heads.has(h)) state.heads.delete(h);
        else state.heads.add(h);
        update();
      });
      button.addEventListener("dblclick", () => {
        state.heads = new Set([h]);
        update();
      });
      headBar.append(button);
    }
    queryCol.replaceChildren(...tokenNodes(s.query_tokens, "query"));
    keyCol.replaceChildren(...tokenNodes(s.key_tokens, "key"));
    state.hover = null;
    state.pinned = null;
  }

  /** @param {string} sequence @param {string} side */
  function tokenNodes(sequence, side) {
    const seq = header.sequences[sequence];
    return seq.tokens.map((/** @type {string} */ token, /** @type {number} */ i) => {
      const node = make("div", "attnscope-hv-token", shown(token));
      node.dataset.side = side;
      node.dataset.index = String(i);
      if (seq.special[i]) node.classList.add("attnscope-hv-special");
      node.addEventListener("mouseenter", () => { state.hover = { side, index: i }; update(false); });
      node.addEventListener("mouseleave", () => { state.hover = null; update(false); });
      node.addEventListener("click", () => {
        const same = state.pinned && state.pinned.side === side && state.pinned.index === i;
        state.pinned = same ? null : { side, index: i };
        update();
      });
      return node;
    });
  }

  /** Which query and key positions the sentence filter keeps. */
  function kept() {
    const s = stack();
    const b = pairStart();
    const seg = (/** @type {number} */ i) => (b !== null && i >= b ? "B" : "A");
    const f = state.filter;
    const qOk = (/** @type {number} */ i) => f === "all" || seg(i) === f[0];
    const kOk = (/** @type {number} */ j) => f === "all" || seg(j) === f[1];
    const active = state.hover ?? state.pinned;
    const queries = [], keys = [];
    for (let i = 0; i < s.query; i++) if (qOk(i) && (!active || active.side !== "query" || active.index === i)) queries.push(i);
    for (let j = 0; j < s.key; j++) if (kOk(j) && (!active || active.side !== "key" || active.index === j)) keys.push(j);
    return { queries, keys };
  }

  function draw() {
    const s = stack();
    const rows = Math.max(s.query, s.key);
    const row = Math.max(4, Math.min(20, Math.floor(30000 / rows)));
    root.style.setProperty("--attnscope-row", `${row}px`);
    const ratio = window.devicePixelRatio || 1;
    canvas.width = CANVAS_WIDTH * ratio;
    canvas.height = rows * row * ratio;
    canvas.style.width = `${CANVAS_WIDTH}px`;
    canvas.style.height = `${rows * row}px`;
    const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, CANVAS_WIDTH, rows * row);
    ctx.lineWidth = row >= 12 ? 2 : 1;
    const w = weights();
    const { queries, keys } = kept();
    const heads = [...state.heads].sort((a, b) => a - b);
    let count = 0;
    // One stroke per line: software rasterisers (headless, no GPU) handle many short paths far
    // better than a few paths with thousands of overlapping sub-paths.
    for (const h of heads) {
      ctx.strokeStyle = headColour(h);
      let alpha = -1;
      for (const i of queries) {
        const base = (h * s.query + i) * s.key;
        const y0 = (i + 0.5) * row;
        for (const j of keys) {
          const byte = w[base + j];
          if (byte / SCALE <= state.threshold) continue;
          if (byte !== alpha) { ctx.globalAlpha = byte / SCALE; alpha = byte; }
          ctx.beginPath();
          ctx.moveTo(0, y0);
          ctx.lineTo(CANVAS_WIDTH, (j + 0.5) * row);
          ctx.stroke();
          count++;
        }
      }
    }
    ctx.globalAlpha = 1;
    return count;
  }

  function showTooltip() {
    const active = state.hover ?? state.pinned;
    if (!active) {
      tooltip.hidden = true;
      return;
    }
    const s = stack();
    const w = weights();
    const fromQuery = active.side === "query";
    const own = header.sequences[fromQuery ? s.query_tokens : s.key_tokens].tokens;
    const other = header.sequences[fromQuery ? s.key_tokens : s.query_tokens].tokens;
    tooltip.replaceChildren(make("div", "attnscope-hv-tip-title",
      `${fromQuery ? "query" : "key"} ${active.index} “${shown(own[active.index])}”, layer ${state.layer}` +
      (fromQuery ? ": weights on keys" : ": weights from queries")));
    for (const h of [...state.heads].sort((a, b) => a - b)) {
      const line = make("div", "attnscope-hv-tip-head");
      line.dataset.head = String(h);
      const swatch = make("span", "attnscope-hv-swatch");
      swatch.style.background = headColour(h);
      line.append(swatch, make("span", "attnscope-hv-tip-name", `head ${h}`));
      const entries = [];
      const n = fromQuery ? s.key : s.query;
      for (let o = 0; o < n; o++) {
        const byte = fromQuery ? w[(h * s.query + active.index) * s.key + o] : w[(h * s.query + o) * s.key + active.index];
        if (byte / SCALE > state.threshold) entries.push([o, byte]);
      }
      entries.sort((a, b) => b[1] - a[1]);
      for (const [o, byte] of entries.slice(0, 8)) {
        const value = (byte / SCALE).toFixed(3);
        const item = make("span", "attnscope-hv-weight", `${shown(other[o])} ${value}`);
        item.dataset.position = String(o);
        item.dataset.weight = String(byte / SCALE);
        line.append(item);
      }
      if (entries.length > 8) line.append(make("span", "attnscope-hv-more", `+${entries.length - 8} more`));
      tooltip.append(line);
    }
    tooltip.hidden = false;
    const node = (fromQuery ? queryCol : keyCol).children[active.index];
    const top = node instanceof HTMLElement ? node.offsetTop : 0;
    tooltip.style.top = `${top + body.offsetTop + TOOLTIP_TOP + 12}px`;
  }

  function highlight() {
    const active = state.hover ?? state.pinned;
    const s = stack();
    for (const [col, side] of [[queryCol, "query"], [keyCol, "key"]]) {
      const nodes = /** @type {HTMLCollectionOf<HTMLElement>} */ (/** @type {HTMLElement} */ (col).children);
      for (let i = 0; i < nodes.length; i++) {
        nodes[i].classList.toggle("attnscope-hv-active", !!active && active.side === side && active.index === i);
        const future = !!active && s.causal && active.side === "query" && side === "key" && i > active.index;
        nodes[i].classList.toggle("attnscope-hv-future", future);
      }
    }
  }

  /** Redraw and expose the state; `write` sends the selection back to Python. */
  function update(write = true) {
    const count = draw();
    highlight();
    showTooltip();
    for (const button of headBar.querySelectorAll("button")) {
      const on = state.heads.has(Number(/** @type {HTMLElement} */ (button).dataset.head));
      button.classList.toggle("attnscope-hv-off", !on);
      button.setAttribute("aria-pressed", String(on));
    }
    const active = state.hover ?? state.pinned;
    Object.assign(root.dataset, {
      linesDrawn: String(count),
      stack: state.stack,
      layer: String(state.layer),
      heads: [...state.heads].sort((a, b) => a - b).join(","),
      filter: state.filter,
      token: active ? `${active.side}:${active.index}` : "",
    });
    if (write) save();
  }

  stackSelect.addEventListener("change", () => { state.stack = stackSelect.value; buildStack(); update(); });
  layerSelect.addEventListener("change", () => { state.layer = Number(layerSelect.value); update(); });
  filterSelect.addEventListener("change", () => { state.filter = filterSelect.value; update(); });

  /** Changes made from Python (the widget's traits) redraw the view. */
  const listeners = {
    "change:layer": () => { const v = model.get("layer"); if (v !== state.layer && stack().layer_labels.includes(v)) { state.layer = v; layerSelect.value = String(v); update(false); } },
    "change:heads": () => {
      const v = [...new Set(/** @type {number[]} */ (model.get("heads") ?? []))].sort((a, b) => a - b);
      if (v.join(",") === [...state.heads].sort((a, b) => a - b).join(",")) return;
      state.heads = new Set(v);
      update(false);
    },
    "change:filter": () => { const v = model.get("filter"); if (v && v !== state.filter) { state.filter = v; filterSelect.value = v; update(false); } },
    "change:stack": () => { const v = model.get("stack"); if (v in stacks && v !== state.stack) { state.stack = v; buildStack(); update(false); } },
  };
  for (const [event, callback] of Object.entries(listeners)) model.on(event, callback);

  if (!(state.stack in stacks)) state.stack = initial.stack;
  buildStack();
  update(false);
  root.dataset.ready = "true";

  return () => {
    if (typeof model.off === "function") for (const [event, callback] of Object.entries(listeners)) model.off(event, callback);
    root.remove();
  };
}

export default { render };
