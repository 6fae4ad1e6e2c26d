// @ts-check
/**
 * The explorer app's attention panel: the notebook's head view (head_view.js) mounted on the payload that
 * `POST /api/attention` returns (the widget's header and base64 layers, one wire format), in a stand-in
 * model (static_model.js) that the app's controls set. The app's way of showing attention is a set of the
 * view's options: the mean of the selected heads as one set of lines (mean_heads), head thumbnails, keys
 * shaded by their weight, a top share of each row instead of a minimum weight (threshold 0), no control
 * row of its own (the page has one) and no weights tooltip (the page shows predictions instead). Clicks on
 * tokens select, double-clicks and M mask, through the view's host hooks; positions the view reports are
 * its units (words in words mode), which `unitTokens` maps back to token positions.
 *
 * A long input (the response's long_view) is drawn by the long-context head view on a model whose layers, rows
 * and exact weights the server gives on request (app_long_view.js), with what needs every weight turned off.
 *
 * Also the page's input summary (`inputOf`: the tokens the server returned, as the search panel and the
 * link checks read them) and the predictions tooltip (`showPredictionsTip`).
 */

import { make, shown } from "./common.js";
import { isPerHead, unitsOf } from "./attention_data.js";
import { createServerModel, LONG_VALUES } from "./app_long_view.js";
import headView from "./head_view.js";
import { createStaticModel } from "./static_model.js";
/** @import { AppState } from "./app_state.js" */

/**
 * The input's tokens as the server returned them, and the shape of its attention.
 * @typedef {{ tokens: string[], special: boolean[], segments: number[], masked: number[], wordIds: (number | null)[],
 *   layers: number, heads: number, n: number }} AttentionData
 */

/** @param {any} response the body of POST /api/attention @returns {AttentionData} */
export function inputOf(response) {
  const t = response.tokens, header = response.payload.header;
  const stack = header.stacks.find((/** @type {any} */ s) => s.role === response.stack) ?? header.stacks[0];
  return { tokens: t.tokens, special: t.special, segments: t.segments, masked: t.masked, wordIds: t.word_ids,
    layers: stack.layers, heads: stack.heads, n: t.tokens.length };
}

/**
 * What the panel asks of the page: `onSelect(tokens)` (a click: the token positions of the unit),
 * `onMask(tokens)` (double-click or M), `onHeads(heads)` (a head toggled, All or None) and
 * `onHover(tokens, element)` (tokens null when the pointer or focus leaves).
 * @typedef {{ onSelect: (tokens: number[]) => void, onMask: (tokens: number[]) => void, onHeads: (heads: number[]) => void,
 *   onHover: (tokens: number[] | null, el: HTMLElement | null) => void }} PanelHandlers
 */

/** The view's values for the app's state: layer, heads, what Show draws, top share, units, filter, token. @param {AppState} state @param {number} heads @param {any} header */
function viewValues(state, heads, header) {
  const seq = header.sequences[header.stacks[0].query_tokens];
  const units = unitsOf(seq, state.words);
  const unit = state.token === null ? -1 : units.findIndex((u) => u.tokens.includes(state.token ?? -1));
  return {
    layer: state.layer, heads: (state.heads ?? [...Array(heads).keys()]).filter((h) => h < heads),
    aggregation: state.show, top_share: state.topShare, hide_special: state.hideSpecial, merge_subwords: state.words,
    filter: state.pairs, token: unit < 0 ? null : { side: "query", index: unit, unit: state.words ? "word" : "token" },
  };
}

/** @param {HTMLElement} host @param {PanelHandlers} handlers */
export function createAttentionPanel(host, handlers) {
  /** @type {any} */
  let model = null;
  /** @type {(() => void) | null} */
  let cleanup = null;
  /** @type {any} */
  let header = null;
  /** @type {any} the response's long_view: a long input, whose layers the server gives one by one (app_long_view.js) */
  let long = null;
  /** The view's values for the state; a long input's override what needs every weight. @param {AppState} state */
  const valuesOf = (state) => ({ ...viewValues(state, header.stacks[0].heads, header), ...(long ? LONG_VALUES : {}) });

  /** The token positions of one of the view's units (a word's tokens in words mode). @param {string} side @param {number} index */
  function unitTokens(side, index) {
    const s = header.stacks[0];
    const seq = header.sequences[side === "query" ? s.query_tokens : s.key_tokens];
    return unitsOf(seq, Boolean(model.get("merge_subwords")))[index]?.tokens ?? [index];
  }

  /** A selector for the token or head that has the keyboard focus in the panel, if one has it (the view is rebuilt). */
  function focusedPart() {
    const el = document.activeElement;
    if (!(el instanceof HTMLElement) || !host.contains(el)) return null;
    if (el.dataset.side) return `.attnscope-hv-token[data-side="${el.dataset.side}"][data-index="${el.dataset.index}"]`;
    if (el.dataset.head) return `.attnscope-hv-head[data-head="${el.dataset.head}"]`;
    return null;
  }

  /**
   * Mount the head view on a new response's payload, with the state's selection; the keyboard focus stays
   * on the same token or head. @param {any} response @param {AppState} state
   */
  function show(response, state) {
    const focused = focusedPart();
    cleanup?.();
    model?.close?.(); // a long input's model: answers still on their way are dropped
    header = response.payload.header;
    long = response.long_view ?? null;
    const values = { header, layers: response.payload.layers, threshold: 0, mean_heads: true, head_thumbnails: true,
      shade_keys: true, ...valuesOf(state) };
    model = long ? createServerModel(values, long.id) : createStaticModel(values);
    host.replaceChildren();
    cleanup = headView.render({ model, el: host, host: {
      controls: false, tooltip: false,
      onToken: (side, index, how) => (how === "click" ? handlers.onSelect : handlers.onMask)(unitTokens(side, index)),
      onHover: (side, index, el) => handlers.onHover(index === null ? null : unitTokens(side, index), el),
      onHeads: (heads) => handlers.onHeads(heads),
    } });
    if (focused) /** @type {HTMLElement | null} */ (host.querySelector(focused))?.focus();
  }

  /** Bring the mounted view to the state (only what changed redraws it). @param {AppState} state */
  function sync(state) {
    if (!model) return;
    const values = valuesOf(state);
    model.set("merge_subwords", values.merge_subwords); // units first: the token is a unit of them
    for (const [name, value] of Object.entries(values)) model.set(name, value);
  }

  /** Whether the mounted payload carries what `show` draws, of these heads for the methods that combine them. @param {string} method @param {number[]} heads */
  function carries(method, heads) {
    if (!header) return false;
    const s = header.stacks[0];
    if (method === "raw") return true;
    if (!(method in (s.aggregations ?? {}))) return false;
    return isPerHead(s, method) || String(s.combined_heads ?? []) === String(heads);
  }

  function unmount() {
    cleanup?.();
    model?.close?.();
    cleanup = model = header = long = null;
    host.replaceChildren();
  }

  /** The view's root (for its data-* facts), or null before the first response. */
  const root = () => /** @type {HTMLElement | null} */ (host.querySelector(".attnscope-hv"));
  return { show, sync, carries, unmount, root };
}

/**
 * Fill and place the predictions tooltip for the token at `at.pos` (below its element `at.el`): the
 * model's top predictions there, said as what they are (`at.mode` "next": the token after this one, as
 * a causal decoder predicts; "masked": what the model puts at this position), or the note saying why
 * there are none; hide it when `at` is null.
 * @param {HTMLElement} tooltip
 * @param {{ attention: AttentionData, predictions: any[] | null, mode: string, note: string, pos: number,
 *   el: HTMLElement } | null} at
 */
export function showPredictionsTip(tooltip, at) {
  if (!at) {
    tooltip.hidden = true;
    return;
  }
  const { attention, predictions, pos } = at;
  const parts = [make("strong", "", `${shown(attention.tokens[pos])} (position ${pos})`)];
  if (predictions) {
    const entry = predictions.find((p) => p.position === pos);
    const list = make("ol", "as-predictions");
    for (const c of entry?.candidates ?? []) {
      const item = make("li", "", `${shown(c.token)} `);
      item.append(make("span", "as-muted", `${(100 * c.probability).toFixed(1)}%`));
      list.append(item);
    }
    const what = at.mode === "next" ? "the model would predict next:"
      : attention.masked.includes(pos) ? "the model's predictions for this masked token:"
        : "the model's predictions for this position:";
    parts.push(make("p", "as-muted", what), list);
  } else {
    const note = at.note || "no predictions";
    parts.push(make("p", "as-muted", note[0].toUpperCase() + note.slice(1))); // a sentence, as the page's notes
  }
  tooltip.replaceChildren(...parts);
  tooltip.hidden = false;
  const box = at.el.getBoundingClientRect();
  const room = document.documentElement.clientWidth - tooltip.offsetWidth - 4; // never past the window's right edge
  tooltip.style.left = `${Math.round(Math.max(0, Math.min(box.left, room)) + window.scrollX)}px`;
  tooltip.style.top = `${Math.round(box.bottom + window.scrollY + 4)}px`;
}
