// @ts-check
/**
 * The explorer app's state, the URL that holds it, and calls to the JSON API. Pure functions apart
 * from `api` (fetch). Python bundles common.js, raster.js, the app_*.js files and app.js into one ES
 * module served by `attnscope serve`.
 *
 * Every piece of the view lives in the query string, so a link (or a reload) rebuilds the view and
 * re-runs its search: model, corpus, text, pair, mask, layer, heads, show (what the lines are: raw
 * weights or an aggregation), words (rows and columns are words, not tokens), threshold, special
 * (hide), token, search (embedding | heads), field (summary), cols (column field), span (column
 * offsets), atlas (the head atlas panel is open) and score (what colours the atlas grid); the search
 * options top, filter, per and scoring (app_search.js) and pairs (the sentence-pair filter of the lines).
 */

/**
 * @typedef {{
 *   model: string, corpus: string, text: string, pair: string, mask: number[], layer: number,
 *   heads: number[] | null, show: string, words: boolean, threshold: number, hideSpecial: boolean,
 *   token: number | null, search: string, field: string, cols: string, span: number, atlas: boolean, score: string,
 *   top: number, filter: string, perSentence: boolean, scoring: string, pairs: string
 * }} AppState
 */

const SPAN_MAX = 5; // metadata columns reach at most this many tokens either side of a match
const THRESHOLD_DEFAULT = 0.9;
/**
 * What the attention view can show (the `show` key), as `POST /api/aggregation` names the methods,
 * with their labels. Those in attention_data.js's `PER_HEAD` keep a layer per head (the thumbnails
 * show them and the lines average the selected heads); the others combine the selected heads on the server.
 */
const SHOWN = {
  raw: "attention weights α",
  value_norm: "value-weighted ‖α·f(x)‖ per head",
  value_norm_sum: "value-weighted ‖Σ α·f(x)‖ of the selected heads",
  rollout: "attention rollout through the layers",
};

/** @returns {AppState} */
export function defaultState() {
  return {
    model: "", corpus: "", text: "", pair: "", mask: [], layer: 0, heads: null, show: "raw", words: false,
    threshold: THRESHOLD_DEFAULT, hideSpecial: false, token: null, search: "", field: "", cols: "", span: 1, atlas: false, score: "",
    ...searchDefaults(), pairs: "all",
  };
}

/** Non-negative integers from "3,7,9" (anything else dropped), sorted and unique. @param {string | null} text */
export function parseList(text) {
  if (!text) return [];
  const values = text.split(",").filter((s) => /^\d{1,6}$/.test(s.trim())).map((s) => Number(s.trim()));
  return [...new Set(values)].sort((a, b) => a - b);
}

/**
 * The state a query string describes; values out of shape fall back to the defaults (the server
 * checks ranges against the model when they are used).
 * @param {string} search location.search
 * @returns {AppState}
 */
export function stateFromQuery(search) {
  const q = new URLSearchParams(search);
  const state = defaultState();
  state.model = q.get("model") ?? "";
  state.corpus = q.get("corpus") ?? "";
  state.text = q.get("text") ?? "";
  state.pair = q.get("pair") ?? "";
  state.mask = parseList(q.get("mask"));
  const layer = q.get("layer");
  if (layer && /^\d{1,4}$/.test(layer)) state.layer = Number(layer);
  if (q.has("heads")) state.heads = parseList(q.get("heads"));
  const show = q.get("show") ?? "";
  if (Object.hasOwn(SHOWN, show)) state.show = show;
  state.words = q.get("words") === "on";
  const threshold = Number(q.get("threshold"));
  if (q.has("threshold") && threshold > 0 && threshold <= 1) state.threshold = threshold;
  state.hideSpecial = q.get("special") === "hide";
  const token = q.get("token");
  state.token = token && /^\d{1,6}$/.test(token) ? Number(token) : null;
  const mode = q.get("search");
  state.search = mode === "embedding" || mode === "heads" ? mode : "";
  state.field = q.get("field") ?? "";
  state.cols = q.get("cols") ?? "";
  const span = Number(q.get("span"));
  if (q.has("span") && Number.isInteger(span) && span >= 0 && span <= SPAN_MAX) state.span = span;
  state.atlas = q.get("atlas") === "open";
  state.score = q.get("score") ?? "";
  readSearchOptions(q, state);
  const pairs = q.get("pairs") ?? "";
  if (FILTERS.some(([value]) => value === pairs)) state.pairs = pairs;
  return state;
}

/** The query string for a state, defaults left out. @param {AppState} state */
export function queryFromState(state) {
  const base = defaultState();
  const q = new URLSearchParams();
  if (state.model) q.set("model", state.model);
  if (state.corpus) q.set("corpus", state.corpus);
  if (state.text) q.set("text", state.text);
  if (state.pair) q.set("pair", state.pair);
  if (state.mask.length) q.set("mask", state.mask.join(","));
  q.set("layer", String(state.layer));
  if (state.heads !== null) q.set("heads", state.heads.join(","));
  if (state.show !== base.show) q.set("show", state.show);
  if (state.words) q.set("words", "on");
  if (state.threshold !== base.threshold) q.set("threshold", String(state.threshold));
  if (state.hideSpecial) q.set("special", "hide");
  if (state.token !== null) q.set("token", String(state.token));
  if (state.search) q.set("search", state.search);
  if (state.field) q.set("field", state.field);
  if (state.cols) q.set("cols", state.cols);
  if (state.span !== base.span) q.set("span", String(state.span));
  if (state.atlas) q.set("atlas", "open");
  if (state.score) q.set("score", state.score);
  writeSearchOptions(state, q);
  if (state.pairs !== base.pairs) q.set("pairs", state.pairs);
  return "?" + q.toString();
}

/** An API error: the server's message and the request field at fault. */
export class ApiFailure extends Error {
  /** @param {string} message @param {string | null} field @param {number} status */
  constructor(message, field, status) {
    super(message);
    this.field = field;
    this.status = status;
  }
}

/**
 * Call the API: GET without a body, POST with one; the parsed JSON, or an `ApiFailure` with the
 * server's message (every error has the shape {error: {status, code, message, field}}).
 * @param {string} path @param {any} [body] @param {AbortSignal} [signal]
 */
export async function api(path, body, signal) {
  const init = body === undefined ? { signal } : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal,
  };
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new ApiFailure("the attnscope server cannot be reached: is `attnscope serve` still running?", null, 0);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const e = data && data.error;
    throw new ApiFailure(e ? e.message : `the server answered ${response.status}`, e ? e.field : null, response.status);
  }
  return data;
}

/**
 * Keys whose weights together make up `share` of a row's attention, strongest first: the "top X%"
 * threshold. `weights` is the row, `keys` the key positions shown; returns a Uint8Array flag per key.
 * @param {Float32Array} weights @param {number[]} keys @param {number} share in (0, 1]
 */
export function topShare(weights, keys, share) {
  const keep = new Uint8Array(weights.length);
  let total = 0;
  for (const k of keys) total += weights[k];
  if (total <= 0) return keep;
  const order = keys.slice().sort((a, b) => weights[b] - weights[a]);
  let sum = 0;
  for (const k of order) {
    if (weights[k] <= 0 || sum >= share * total - 1e-9) break;
    keep[k] = 1;
    sum += weights[k];
  }
  return keep;
}

export { SHOWN, SPAN_MAX };
