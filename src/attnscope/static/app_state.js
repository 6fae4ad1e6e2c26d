// @ts-check
/**
 * The explorer app's state, the URL that holds it, and calls to the JSON API. Pure functions apart
 * from `api` (fetch). Imported by app.js and the app's panels; part of the app's bundle
 * (static/bundles/app.js, which `attnscope serve` serves).
 *
 * Every piece of the view lives in the query string, so a link (or a reload) rebuilds the view and
 * re-runs its search: model, corpus, text, pair, mask, layer, heads, show (what the lines are: raw
 * weights or an aggregation, as /api/models names them), words (rows and columns are words, not tokens),
 * top_share (per token, its strongest lines that make up this share of its attention; `threshold`, its
 * name in older links, is read as it), special
 * (hide), token, search (embedding | heads), field (summary), cols (column field), span (column
 * offsets), atlas (the head atlas panel is open) and score (what colours the atlas grid); the search
 * options top, filter, per, scoring and rerank (app_search.js), pairs (the sentence-pair filter of the
 * lines), and a causal model's continuation: gen (tokens generated after the text) and seed (sampled with
 * it; absent: greedy), and compare (the served model whose attention over the same text the view is
 * compared with, app_compare.js; absent: none).
 * A value out of shape (or an unknown parameter) is reported (`dropped`) and left at its default.
 */

import { FILTERS } from "./common.js";
import { readSearchOptions, searchDefaults, writeSearchOptions } from "./app_search.js";

/**
 * @typedef {{
 *   model: string, corpus: string, text: string, pair: string, mask: number[], layer: number,
 *   heads: number[] | null, show: string, words: boolean, topShare: number, hideSpecial: boolean,
 *   token: number | null, search: string, field: string, cols: string, span: number, atlas: boolean, score: string,
 *   top: number, filter: string, perSentence: boolean, scoring: string, rerank: number, pairs: string, gen: number,
 *   seed: number | null, compare: string
 * }} AppState
 */

const SPAN_MAX = 5; // metadata columns reach at most this many tokens either side of a match
const TOP_SHARE_DEFAULT = 0.9;

/** @returns {AppState} */
export function defaultState() {
  return {
    model: "", corpus: "", text: "", pair: "", mask: [], layer: 0, heads: null, show: "raw", words: false,
    topShare: TOP_SHARE_DEFAULT, hideSpecial: false, token: null, search: "", field: "", cols: "", span: 1, atlas: false, score: "",
    ...searchDefaults(), pairs: "all", gen: 0, seed: null, compare: "",
  };
}

/** Non-negative integers from "3,7,9" (anything else dropped), sorted and unique. @param {string | null} text */
export function parseList(text) {
  if (!text) return [];
  const values = text.split(",").filter((s) => /^\d{1,6}$/.test(s.trim())).map((s) => Number(s.trim()));
  return [...new Set(values)].sort((a, b) => a - b);
}

/** The parameters the app reads (any other is reported as ignored). */
const PARAMETERS = ["model", "corpus", "text", "pair", "mask", "layer", "heads", "show", "words", "top_share", "special",
  "token", "search", "field", "cols", "span", "atlas", "score", "top", "filter", "per", "scoring", "rerank", "pairs", "gen", "seed", "compare"];
const GEN_MAX = 200; // tokens one Continue request may generate (POST /api/continue's max_new_tokens)
const MAX_TEXT = 30000; // characters, as the page's inputs and the API take (schemas.MAX_TEXT_CHARS)

/**
 * A parameter of the link that was not applied, and why: `text` reads "layer=40 was ignored: this model
 * has layers 0-5". @param {string} name @param {string} value @param {string} why
 */
export function dropped(name, value, why) {
  const shown = value.length > 40 ? `${value.slice(0, 37)}…` : value;
  return { name, text: `${name}=${shown} was ignored: ${why}` };
}

/**
 * The state a query string describes. A value out of shape is left at its default and reported in
 * `drops` (`dropped`); ranges that depend on the model and the input are checked later (app_links.js).
 * @param {string} search location.search
 * @param {{ name: string, text: string }[]} [drops] collects what was ignored
 * @returns {AppState}
 */
export function stateFromQuery(search, drops = []) {
  const q = new URLSearchParams(search);
  const state = defaultState();
  const drop = (/** @type {string} */ name, /** @type {string} */ why) => drops.push(dropped(name, q.get(name) ?? "", why));
  for (const name of new Set(q.keys())) {
    if (!PARAMETERS.includes(name) && name !== "threshold") drop(name, `the app reads only ${PARAMETERS.join(", ")}`);
  }
  state.model = q.get("model") ?? "";
  state.corpus = q.get("corpus") ?? "";
  for (const key of /** @type {const} */ (["text", "pair"])) {
    const value = q.get(key) ?? "";
    const length = value.length.toLocaleString("en");
    if (value.length > MAX_TEXT) drop(key, `it is ${length} characters long; the most is ${MAX_TEXT.toLocaleString("en")}`);
    else if (key === "text" && q.has("text") && !value.trim()) drop(key, "the text is empty; showing the example sentence");
    else state[key] = value.trim() ? value : "";
  }
  const list = (/** @type {string} */ name, /** @type {string} */ what) => {
    const text = q.get(name) ?? "";
    if (text === "" || /^\d{1,6}(,\d{1,6})*$/.test(text.replace(/\s/g, ""))) return parseList(text);
    drop(name, `not a list of ${what} (write them as 1,4,7)`);
    return null;
  };
  if (q.has("mask")) state.mask = list("mask", "token positions") ?? [];
  if (q.has("heads")) state.heads = list("heads", "head numbers");
  const layer = q.get("layer");
  if (layer !== null && /^\d{1,4}$/.test(layer)) state.layer = Number(layer);
  else if (layer !== null) drop("layer", "not a layer number (0, 1, 2, …)");
  state.show = q.get("show") ?? state.show; // what the model can show is known from /api/models (app_links.js)
  state.words = flag(q, "words", "on", drop);
  const shareName = q.has("top_share") ? "top_share" : "threshold"; // its name in older links
  const share = Number(q.get(shareName));
  if (q.has(shareName) && share > 0 && share <= 1) state.topShare = share;
  else if (q.has(shareName)) drop(shareName, "the top share is a share of attention above 0 and at most 1 (e.g. 0.9)");
  state.hideSpecial = flag(q, "special", "hide", drop);
  const token = q.get("token");
  if (token !== null && /^\d{1,6}$/.test(token)) state.token = Number(token);
  else if (token !== null) drop("token", "not a token position (0, 1, 2, …)");
  const mode = q.get("search");
  if (mode === "embedding" || mode === "heads") state.search = mode;
  else if (mode !== null) drop("search", "a search is by embedding or by heads (search=embedding or search=heads)");
  state.field = q.get("field") ?? "";
  state.cols = q.get("cols") ?? "";
  const span = Number(q.get("span"));
  if (q.has("span") && Number.isInteger(span) && span >= 0 && span <= SPAN_MAX) state.span = span;
  else if (q.has("span")) drop("span", `the columns reach 0 to ${SPAN_MAX} tokens either side of a match`);
  state.atlas = flag(q, "atlas", "open", drop);
  state.score = q.get("score") ?? "";
  readSearchOptions(q, state, drop);
  const pairs = q.get("pairs");
  const known = pairs !== null && FILTERS.some(([value]) => value === pairs);
  if (known && pairs !== "all" && !state.pair) drop("pairs", "the sentence filter needs a second sentence (pair=…)");
  else if (known) state.pairs = /** @type {string} */ (pairs);
  else if (pairs !== null) drop("pairs", `the sentence filter is one of ${FILTERS.map(([value]) => value).join(", ")}`);
  readContinuation(q, state, drop);
  state.compare = q.get("compare") ?? ""; // whether it is served is known from /api/models (app_links.js)
  return state;
}

/**
 * A causal model's continuation: gen (tokens generated after the text, 1-200) and seed (sampled with this
 * seed; absent: greedy). @param {URLSearchParams} q @param {AppState} state @param {(name: string, why: string) => void} drop
 */
function readContinuation(q, state, drop) {
  const gen = q.get("gen"), seed = q.get("seed");
  if (gen !== null && /^\d{1,3}$/.test(gen) && Number(gen) >= 1 && Number(gen) <= GEN_MAX) state.gen = Number(gen);
  else if (gen !== null) drop("gen", `the tokens generated after the text are 1 to ${GEN_MAX}`);
  if (seed !== null && /^\d{1,9}$/.test(seed) && state.gen > 0) state.seed = Number(seed);
  else if (seed !== null) drop("seed", state.gen > 0 ? "a sampling seed is a whole number (0, 1, 2, …)" : "a seed needs tokens generated (gen=…)");
}

/**
 * A switch written as `name=value` (absent: off). @param {URLSearchParams} q @param {string} name
 * @param {string} value @param {(name: string, why: string) => void} drop
 */
function flag(q, name, value, drop) {
  const given = q.get(name);
  if (given !== null && given !== value) drop(name, `write ${name}=${value} to turn it on, or leave it out`);
  return given === value;
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
  if (state.topShare !== base.topShare) q.set("top_share", String(state.topShare));
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
  if (state.gen > 0) q.set("gen", String(state.gen));
  if (state.gen > 0 && state.seed !== null) q.set("seed", String(state.seed));
  if (state.compare) q.set("compare", state.compare);
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

export { GEN_MAX, MAX_TEXT, SPAN_MAX };
