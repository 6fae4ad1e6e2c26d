// @ts-check
/**
 * Long inputs in the explorer app. `POST /api/attention` answers a long input (server/token_limits.py) with the
 * long-context head view's payload (each query's strongest keys per head) without its layers, and `long_view`
 * naming the id they are asked for by. The head view (head_view.js with head_view_long.js: a scrolling band of
 * query rows, keys outside it at edge slots) asks its host model for what it lacks with the notebook's custom
 * messages; `createServerModel` answers them from the server (server/long_routes.py): a layer
 * ("attnscope-layers": GET /api/attention/{id}/layers/{role}/{layer}, bytes), the band's rows while the layer
 * is computed ("attnscope-rows": POST …/rows, bytes) and exact weights for the tooltip ("attnscope-weights":
 * POST …/weights). So a layer change fetches that layer alone.
 *
 * `showLength` sets the page's controls for the input's length: what needs every weight of a row or a layer
 * (words, Show's aggregations, the top share) is turned off at length, each control saying why (the reasons the
 * payload's header gives, as the notebook's long view says them), and the note under the title says how the
 * input is drawn; a short input gets the controls back.
 */

import { ApiFailure } from "./app_state.js";
import { WEIGHTS_MESSAGE } from "./head_view_exact.js";
import { ROWS_MESSAGE } from "./head_view_long.js";
import { createStaticModel } from "./static_model.js";

const LAYERS_MESSAGE = "attnscope-layers";
export const WORDS_REASON = "words merge every weight of a row: at long context only each query's strongest keys are carried";
export const TOP_SHARE_REASON = "a share of each row's attention needs every weight of the row: at long context only each " +
  "query's strongest keys are carried, and all of them are drawn";
/** The view's values a long input overrides: each head's lines, all of them, over tokens. */
export const LONG_VALUES = { aggregation: "raw", top_share: 1, merge_subwords: false, mean_heads: false, head_thumbnails: false };

/** The response's bytes, or an `ApiFailure` with the server's message. @param {string} path @param {any} [body] */
async function bytesOf(path, body) {
  const init = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiFailure("the attnscope server cannot be reached: is `attnscope serve` still running?", null, 0);
  }
  if (!response.ok) {
    const e = (await response.json().catch(() => null))?.error;
    throw new ApiFailure(e ? e.message : `the server answered ${response.status}`, e ? e.field : null, response.status);
  }
  return new Uint8Array(await response.arrayBuffer());
}

/**
 * The server's answer to one of the view's messages, as the custom message (and buffers) a notebook's kernel
 * would send; a failure is answered as an error the view says (a layer's as its rows', which the long view's
 * status shows). @param {string} base @param {any} msg @returns {Promise<[any, Uint8Array[]]>}
 */
async function answer(base, msg) {
  const { role, layer } = msg;
  try {
    if (msg.type === LAYERS_MESSAGE) {
      const path = (/** @type {number} */ i) => `${base}/layers/${encodeURIComponent(role)}/${i}`;
      const buffers = await Promise.all(msg.indices.map((/** @type {number} */ i) => bytesOf(path(i))));
      return [{ type: LAYERS_MESSAGE, role, indices: msg.indices }, buffers];
    }
    if (msg.type === ROWS_MESSAGE) {
      const fields = { role, layer, start: msg.start, stop: msg.stop };
      return [{ type: ROWS_MESSAGE, ...fields }, [await bytesOf(`${base}/rows`, fields)]];
    }
    const text = new TextDecoder().decode(await bytesOf(`${base}/weights`, { role, layer, cells: msg.cells }));
    return [{ type: WEIGHTS_MESSAGE, id: msg.id, role, layer, cells: msg.cells, weights: JSON.parse(text).weights }, []];
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    if (msg.type === WEIGHTS_MESSAGE) return [{ type: WEIGHTS_MESSAGE, id: msg.id, error: why }, []];
    return [{ type: ROWS_MESSAGE, role, layer: layer ?? msg.indices?.[0], error: why }, []];
  }
}

/**
 * A head-view model (static_model.js's, with `send` and custom messages) whose requests the server answers for
 * the long input `id`. @param {Record<string, any>} values @param {string} id
 */
export function createServerModel(values, id) {
  const model = createStaticModel(values), base = `/api/attention/${encodeURIComponent(id)}`;
  const { on, off } = model;
  /** @type {Set<Function>} */
  const hearers = new Set();
  let closed = false;
  let rows = Promise.resolve(); // the rows asked for so far, answered (or failed)
  return Object.assign(model, {
    /** @param {string} event @param {Function} callback */
    on(event, callback) { if (event === "msg:custom") hearers.add(callback); else on(event, callback); },
    /** @param {string} event @param {Function} callback */
    off(event, callback) { if (event === "msg:custom") hearers.delete(callback); else off(event, callback); },
    /** @param {any} msg */
    send(msg) {
      if (![LAYERS_MESSAGE, ROWS_MESSAGE, WEIGHTS_MESSAGE].includes(msg?.type)) return;
      // A layer is asked for once the band's rows, asked in the same redraw, are answered: on two cores the
      // server's pass over the layer would otherwise slow the rows the reader waits for.
      const answered = msg.type !== LAYERS_MESSAGE ? answer(base, msg)
        : new Promise((resolve) => setTimeout(resolve, 0)).then(() => rows).then(() => answer(base, msg));
      if (msg.type === ROWS_MESSAGE) rows = Promise.all([rows, answered]).then(() => {});
      void answered.then(([reply, buffers]) => { if (!closed) for (const hear of [...hearers]) hear(reply, buffers); });
    },
    close() { closed = true; hearers.clear(); },
  });
}

/**
 * Whether the server refused an input's aggregation because the input is long (400 about "aggregations.0":
 * server/long_routes.py; a short input's faults in aggregations are about "aggregations").
 * @param {ApiFailure} error
 */
export const refusedAtLength = (error) => error.status === 400 && error.field === "aggregations.0";

/** @param {string} id @returns {HTMLElement} */
function byId(id) {
  return /** @type {HTMLElement} */ (document.getElementById(id));
}

/** The note under the attention title that says how a long input is drawn (made once, after the stack's note). */
function lengthNote() {
  let note = document.getElementById("length-note");
  if (!note) {
    note = document.createElement("p");
    Object.assign(note, { id: "length-note", className: "as-help" });
    note.setAttribute("role", "note");
    byId("stack-note").after(note);
  }
  return note;
}

/**
 * Set the page's controls for the response's length: at length, words, the top share and Show's aggregations
 * are off, each saying why, and the note says how the input is drawn; otherwise all are back.
 * @param {any} response the body of POST /api/attention
 */
export function showLength(response) {
  const long = response.long_view ?? null, lines = response.payload.header.lines;
  const app = byId("app"), words = /** @type {HTMLInputElement} */ (byId("words"));
  const share = /** @type {HTMLInputElement} */ (byId("top-share")), show = /** @type {HTMLSelectElement} */ (byId("show"));
  app.dataset.long = long ? "true" : "false";
  words.disabled = share.disabled = Boolean(long);
  const label = /** @type {HTMLElement} */ (words.parentElement);
  label.dataset.title ??= label.title; // the page's own help, given back to a short input
  label.title = long ? WORDS_REASON : label.dataset.title;
  share.title = long ? TOP_SHARE_REASON : "";
  for (const option of show.options) {
    const why = long && option.value !== "raw" ? lines?.not_offered?.[option.value] ?? "not offered at long context" : "";
    option.disabled = Boolean(why);
    option.title = why;
  }
  const note = lengthNote();
  note.hidden = !long;
  note.textContent = long ? `${long.note[0].toUpperCase()}${long.note.slice(1)}: scroll through its rows; a line to a ` +
    `key outside the rows shown ends at the band's edge. Words, the top share and Show's aggregations need every weight ` +
    `and are off at this length (hover them for why).` : "";
}
