// @ts-check
/**
 * The head view's elements: the control row, the head bar (a button per head, with its thumbnail when
 * head_thumbnails is set, and All / None), the token columns, the weights tooltip and the marks on the
 * tokens (focused, pinned, masked, generated, later keys of a causal query, keys shaded by their weight). Imported by
 * head_view.js, which wires the events.
 */

import { FILTERS, labelled, make, shown } from "./common.js";
import { fitLabels } from "./contrast.js";
import { isPerHead, unitText } from "./attention_data.js";
import { activeFocus, drawsMean, lineData, lineSets, rowHeight, stackOf } from "./head_view_data.js";
import { exactNote, exactWeights, formatExact } from "./head_view_exact.js";
import { thumbnailCanvas } from "./head_view_paint.js";
/** @import { Focus, HeadView, HeadViewDom, HeadViewState } from "./head_view_data.js" */

/** @param {string} className @param {boolean} on */
function checkbox(className, on) {
  const box = /** @type {HTMLInputElement} */ (make("input", className));
  box.type = "checkbox";
  box.checked = on;
  return box;
}

/** @param {string} className @param {number[] | null} positions */
function textbox(className, positions) {
  const box = /** @type {HTMLInputElement} */ (make("input", className));
  Object.assign(box, { type: "text", placeholder: "all", size: 8, value: positions ? positions.join(",") : "" });
  return box;
}

/** @param {string} className @param {{ min: string, max: string, value: number }} range */
function numberBox(className, range) {
  const box = /** @type {HTMLInputElement} */ (make("input", className));
  Object.assign(box, { type: "number", min: range.min, max: range.max, step: "0.01", value: String(range.value) });
  return box;
}

/** The control row's inputs, by name. @param {any} header @param {HeadViewState} state */
function controlInputs(header, state) {
  const select = (/** @type {string} */ name) => /** @type {HTMLSelectElement} */ (make("select", `attnscope-hv-${name}`));
  const inputs = {
    stack: select("stack"), aggregation: select("aggregation"), layer: select("layer"), filter: select("filter"),
    threshold: numberBox("attnscope-hv-threshold", { min: "0", max: "0.99", value: state.threshold }),
    topShare: numberBox("attnscope-hv-top-share", { min: "0.01", max: "1", value: state.topShare }),
    hideSpecial: checkbox("attnscope-hv-hide-special", state.hideSpecial), merge: checkbox("attnscope-hv-merge", state.merge),
    rows: textbox("attnscope-hv-rows", state.rows), columns: textbox("attnscope-hv-columns", state.columns),
    png: /** @type {HTMLButtonElement} */ (make("button", "attnscope-hv-png", "PNG")),
    svg: /** @type {HTMLButtonElement} */ (make("button", "attnscope-hv-svg", "SVG")),
  };
  inputs.topShare.title = "per query, only the strongest lines that make up this share of its attention (1: all lines)";
  inputs.png.type = inputs.svg.type = "button";
  for (const s of header.stacks) inputs.stack.append(new Option(s.role, s.role));
  for (const [value, text] of FILTERS) inputs.filter.append(new Option(text, value));
  return inputs;
}

/** Build the view's elements into `el` (the control row hidden when the host says so). @param {HTMLElement} el @param {any} header @param {HeadViewState} state @param {boolean} controlsShown @returns {HeadViewDom} */
export function buildDom(el, header, state, controlsShown) {
  const root = make("div", "attnscope-hv");
  root.dataset.view = "head";
  const controls = make("div", "attnscope-hv-controls");
  const inputs = controlInputs(header, state);
  const note = make("span", "attnscope-hv-note"), status = make("span", "attnscope-hv-status");
  status.setAttribute("role", "status");
  const field = (/** @type {string} */ text, /** @type {HTMLElement} */ control) => labelled("attnscope-hv-label", text, control);
  const stackLabel = field("Attention", inputs.stack), filterLabel = field("Sentences", inputs.filter);
  controls.append(stackLabel, field("Show", inputs.aggregation), field("Layer", inputs.layer), filterLabel,
    field("Threshold", inputs.threshold), field("Top share", inputs.topShare), field("Hide special tokens", inputs.hideSpecial),
    field("Words", inputs.merge), field("Queries", inputs.rows), field("Keys", inputs.columns), inputs.png, inputs.svg, note, status);
  stackLabel.hidden = header.stacks.length < 2;
  controls.hidden = !controlsShown;
  Object.assign(inputs, { stackLabel, filterLabel });
  const headBar = make("div", "attnscope-hv-heads"), heads = make("div", "attnscope-hv-head-buttons");
  headBar.setAttribute("role", "group");
  headBar.setAttribute("aria-label", "Heads");
  const all = /** @type {HTMLButtonElement} */ (make("button", "attnscope-hv-heads-all", "All"));
  const none = /** @type {HTMLButtonElement} */ (make("button", "attnscope-hv-heads-none", "None"));
  all.type = none.type = "button";
  headBar.append(all, none, heads);
  Object.assign(inputs, { all, none });
  const body = make("div", "attnscope-hv-body");
  const queryCol = make("div", "attnscope-hv-col attnscope-hv-queries"), keyCol = make("div", "attnscope-hv-col attnscope-hv-keys");
  const linesBox = make("div", "attnscope-hv-lines");
  const canvas = document.createElement("canvas");
  canvas.className = "attnscope-hv-canvas";
  canvas.setAttribute("aria-hidden", "true");
  linesBox.append(canvas);
  body.append(queryCol, linesBox, keyCol);
  const tooltip = make("div", "attnscope-hv-tooltip");
  tooltip.setAttribute("role", "tooltip");
  tooltip.hidden = true;
  root.append(controls, headBar, body, tooltip);
  el.append(root);
  return { root, controls, headBar, heads, body, queryCol, keyCol, linesBox, canvas, tooltip, note, status, inputs };
}

/**
 * A button per head of the stack (click: show or hide it, double-click: only it), with a thumbnail and a
 * number chip when thumbnails are on. @param {HeadView} v @param {(h: number, only: boolean) => void} toggle
 */
export function headButtons(v, toggle) {
  const s = stackOf(v);
  v.dom.heads.replaceChildren();
  v.thumbnails = ""; // new canvases: nothing painted in them yet
  for (let h = 0; h < s.heads; h++) {
    const button = /** @type {HTMLButtonElement} */ (make("button", "attnscope-hv-head", v.state.thumbnails ? "" : String(h)));
    button.type = "button";
    button.dataset.head = String(h);
    button.title = `head ${h}: click to show or hide, double-click to show only this head`;
    if (v.state.thumbnails) {
      button.classList.add("attnscope-hv-thumb");
      button.setAttribute("aria-label", `head ${h}`);
      button.append(thumbnailCanvas(), make("span", "attnscope-hv-head-label", String(h)));
    }
    button.addEventListener("click", () => toggle(h, false));
    button.addEventListener("dblclick", () => toggle(h, true));
    v.dom.heads.append(button);
  }
}

/**
 * The token nodes of one side, calling `on(side, index, what, node)` for pointer and keyboard events
 * ("enter", "leave", "click", "dblclick", "mask"). Arrow keys move the focus along the column.
 * @param {HeadView} v @param {any[]} units @param {number[]} shownUnits @param {string} side
 * @param {(side: string, index: number, what: string, node: HTMLElement) => void} on
 */
export function tokenNodes(v, units, shownUnits, side, on) {
  const seq = v.header.sequences[side === "query" ? stackOf(v).query_tokens : stackOf(v).key_tokens];
  const masked = new Set(/** @type {number[]} */ (seq.masked ?? []));
  const generated = new Set(/** @type {number[]} */ (seq.generated ?? []));
  const steps = new Map((seq.steps ?? []).map((/** @type {any} */ s) => [s.position, s]));
  const b = seq.sentence_b_start ?? null;
  return shownUnits.map((n) => {
    const unit = units[n];
    const node = make("div", "attnscope-hv-token", shown(unit.label));
    Object.assign(node.dataset, { side, index: String(n) });
    node.tabIndex = 0;
    node.setAttribute("role", "button"); // activated by click, Enter or Space; pressed while pinned
    node.classList.toggle("attnscope-hv-special", unit.special);
    node.classList.toggle("attnscope-hv-continuation", unit.continuation);
    node.classList.toggle("attnscope-hv-masked", unit.tokens.some((/** @type {number} */ t) => masked.has(t)));
    node.classList.toggle("attnscope-hv-seg-b", b !== null && unit.tokens[0] >= b);
    node.classList.toggle("attnscope-hv-generated", unit.tokens.some((/** @type {number} */ t) => generated.has(t)));
    const step = unit.tokens.map((/** @type {number} */ t) => steps.get(t)).find(Boolean);
    if (step) node.title = stepTitle(step);
    const fire = (/** @type {string} */ what) => on(side, n, what, node);
    node.addEventListener("mouseenter", () => fire("enter"));
    node.addEventListener("mouseleave", () => fire("leave"));
    node.addEventListener("focus", () => fire("enter"));
    node.addEventListener("blur", () => fire("leave"));
    node.addEventListener("click", () => fire("click"));
    node.addEventListener("dblclick", () => fire("dblclick"));
    node.addEventListener("keydown", (event) => {
      const step = event.key === "ArrowDown" ? 1 : event.key === "ArrowUp" ? -1 : 0;
      const next = step ? /** @type {HTMLElement | null} */ (step > 0 ? node.nextElementSibling : node.previousElementSibling) : null;
      if (next) next.focus();
      if (event.key === "Enter" || event.key === " ") fire("click");
      else if (event.key === "m" || event.key === "M") fire("mask");
      else if (!step) return;
      event.preventDefault();
    });
    return node;
  });
}

/**
 * A generated token's title: the step that chose it and that step's top next tokens with their probabilities.
 * @param {{ token: string, probability: number, top: [string, number, number][] }} step
 */
function stepTitle(step) {
  const top = step.top.map(([token, , p]) => `${token} ${p.toFixed(3)}`).join(", ");
  return `generated: ${step.token} (p ${step.probability.toFixed(3)}); the step's top next tokens: ${top}`;
}

/** Fill and place the weights tooltip of the focused token (hidden without one, or when the host turns it off). @param {HeadView} v */
export function showTooltip(v) {
  const active = activeFocus(v), d = lineData(v), { tooltip } = v.dom;
  if (!active || !d || v.host.tooltip === false) { tooltip.hidden = true; return; }
  const fromQuery = active.side === "query", { layout, state } = v;
  const own = fromQuery ? layout.q : layout.k, other = fromQuery ? layout.k : layout.q;
  const otherRows = fromQuery ? layout.kRows : layout.qRows;
  tooltip.replaceChildren(make("div", "attnscope-hv-tip-title",
    `${fromQuery ? "query" : "key"} ${active.index} “${unitText(own[active.index])}”, layer ${state.layer}` +
    (fromQuery ? ": weights on keys" : ": weights from queries")));
  const perHead = isPerHead(stackOf(v), state.aggregation) && !drawsMean(v), long = v.long !== null;
  let allExact = true;
  for (const set of lineSets(v)) {
    const line = make("div", "attnscope-hv-tip-head");
    if (perHead) line.dataset.head = String(set.index);
    else line.dataset.aggregation = state.aggregation;
    const swatch = make("span", "attnscope-hv-swatch");
    swatch.style.background = set.colour;
    line.append(swatch, make("span", "attnscope-hv-tip-name", set.label));
    const entries = [];
    for (const o of otherRows.shown) {
      const w = fromQuery ? d.weight(set.index, active.index, o) : d.weight(set.index, o, active.index);
      if (w > state.threshold) entries.push([o, w]);
    }
    entries.sort((a, b) => b[1] - a[1]);
    const listed = entries.slice(0, 8);
    const exact = exactWeights(v, listed.map(([o]) => (fromQuery ? [set.index, active.index, o] : [set.index, o, active.index])));
    listed.forEach(([o, w], n) => line.append(weightItem(other[o], o, w, exact[n], long)));
    allExact &&= exact.every((x) => x !== undefined);
    if (entries.length > 8) line.append(make("span", "attnscope-hv-more", `+${entries.length - 8} more`));
    tooltip.append(line);
  }
  const note = exactNote(v, allExact);
  if (note) tooltip.append(make("div", "attnscope-hv-tip-note", note));
  placeTooltip(v, active);
}

/**
 * One weight of the tooltip: the other side's unit and the weight, exact (7 significant digits) when it is known,
 * else as drawn (3 decimals; "≈" at long context, where the exact one is asked for or not carried).
 * @param {any} unit @param {number} position @param {number} drawn @param {number | undefined} exact @param {boolean} long
 */
function weightItem(unit, position, drawn, exact, long) {
  const text = exact !== undefined ? formatExact(exact) : `${long ? "≈" : ""}${drawn.toFixed(3)}`;
  const item = make("span", "attnscope-hv-weight", `${unitText(unit)} ${text}`);
  Object.assign(item.dataset, { position: String(position), weight: String(exact ?? drawn) });
  if (long) item.dataset.exact = String(exact !== undefined);
  return item;
}

/** Show the tooltip beside the focused token: by its row, or (a long view) by its node in the band. @param {HeadView} v @param {Focus} active */
function placeTooltip(v, active) {
  const { tooltip, body, keyCol, queryCol, root } = v.dom, { layout } = v;
  tooltip.hidden = false;
  if (v.long) {
    const node = /** @type {HTMLElement | null} */ ((active.side === "query" ? queryCol : keyCol).querySelector(`[data-index="${active.index}"]`));
    const box = root.getBoundingClientRect(), at = node?.getBoundingClientRect(), keys = keyCol.getBoundingClientRect();
    tooltip.style.top = `${(at ? at.bottom : keys.top) - box.top + 4}px`;
    tooltip.style.left = `${keys.right - box.left + 12}px`;
    return;
  }
  const rows = active.side === "query" ? layout.qRows : layout.kRows;
  tooltip.style.top = `${body.offsetTop + rows.row[active.index] * rowHeight(v) + 20}px`;
  tooltip.style.left = `${body.offsetLeft + keyCol.offsetLeft + keyCol.offsetWidth + 12}px`;
}

/**
 * Mark the focused and pinned tokens, a causal query's later keys, and (option shade_keys) each key's weight
 * from the focused query as its background and data-weight, when one set of lines is drawn. @param {HeadView} v
 */
export function markTokens(v) {
  const { state, layout } = v, active = activeFocus(v);
  const causal = stackOf(v).causal && !!active && active.side === "query";
  const lastToken = causal && active ? Math.max(...layout.q[active.index].tokens) : -1;
  const sets = state.shadeKeys && active?.side === "query" ? lineSets(v) : [];
  const d = sets.length === 1 ? lineData(v) : null;
  for (const [col, side, units] of /** @type {[HTMLElement, string, any[]][]} */ ([[v.dom.queryCol, "query", layout.q], [v.dom.keyCol, "key", layout.k]])) {
    for (const node of /** @type {HTMLCollectionOf<HTMLElement>} */ (col.children)) {
      if (node.dataset.index === undefined) continue; // a long view's "+N more keys" slot
      const n = Number(node.dataset.index);
      const pinned = !!state.pinned && state.pinned.side === side && state.pinned.index === n;
      node.classList.toggle("attnscope-hv-active", !!active && active.side === side && active.index === n);
      node.classList.toggle("attnscope-hv-pinned", pinned);
      node.setAttribute("aria-pressed", String(pinned));
      node.classList.toggle("attnscope-hv-future", causal && side === "key" && units[n].tokens[0] > lastToken);
      if (side === "key" && state.shadeKeys) shadeKey(node, d && active ? d.weight(sets[0].index, active.index, n) : null, sets[0]?.colour);
    }
  }
  fitLabels([...v.dom.queryCol.children, ...v.dom.keyCol.children]);
}

/** A key's background by its weight (none for null), and the weight as data-weight. @param {HTMLElement} node @param {number | null} weight @param {string | undefined} colour */
function shadeKey(node, weight, colour) {
  node.dataset.weight = weight === null ? "" : weight.toFixed(4);
  const alpha = weight === null || !colour ? 0 : Math.min(0.85, weight);
  node.style.backgroundColor = alpha > 0 && colour ? `${colour}${Math.round(alpha * 255).toString(16).padStart(2, "0")}` : "";
}
