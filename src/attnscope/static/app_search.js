// @ts-check
/**
 * The explorer app's search options and requests: how many matches (top), metadata filters
 * ("upos=NOUN,PROPN deprel=obj", as `attnscope search --filter` takes them), one match per
 * sentence, and how a head search scores (sum or mean of the heads' cosines). In words mode a word
 * is searched as a word (unit "word": the mean of its tokens' vectors) and the matches are corpus
 * words. Re-ranking (rerank: 1 is off, 2, 4, 8 or 16 a factor, 0 the corpus's default: x4 for PQ
 * codes, off for 8-bit ones) scores the best top x factor candidates again by exact vectors that the
 * server recomputes with the model. These options live in the URL beside the rest of the state (keys
 * top, filter, per, scoring, rerank); `matchPatch` is the state that opens a match's sentence in the
 * attention view with the matched token selected.
 */

const TOP_DEFAULT = 50;
const TOP_MAX = 200; // POST /api/search takes at most this many matches
const SCORINGS = { sum: "sum of the heads' cosines", mean: "mean of the heads' cosines" };
const RERANKS = [1, 2, 4, 8, 16]; // the factors offered (POST /api/search takes 1-16; 0 here: the corpus's default)

/** The search options' defaults, part of `defaultState`. */
function searchDefaults() {
  return { top: TOP_DEFAULT, filter: "", perSentence: false, scoring: "sum", rerank: 0 };
}

/**
 * Read the search options from a query string into `state`; a value out of shape keeps the default and
 * is reported through `drop` (as app_state.js reports the other parameters).
 * @param {URLSearchParams} q @param {any} state @param {(name: string, why: string) => void} drop
 */
function readSearchOptions(q, state, drop) {
  const top = q.get("top");
  if (top !== null && /^\d{1,3}$/.test(top) && Number(top) >= 1 && Number(top) <= TOP_MAX) state.top = Number(top);
  else if (top !== null) drop("top", `the number of matches is 1 to ${TOP_MAX}`);
  const filter = q.get("filter") ?? "";
  if (filter.length > 500) drop("filter", "filters are at most 500 characters");
  else if (filter && parseFilters(filter).error) drop("filter", parseFilters(filter).error);
  else state.filter = filter;
  const per = q.get("per");
  if (per !== null && per !== "sentence") drop("per", "write per=sentence for one match per sentence, or leave it out");
  state.perSentence = per === "sentence";
  const scoring = q.get("scoring");
  if (scoring !== null && Object.hasOwn(SCORINGS, scoring)) state.scoring = scoring;
  else if (scoring !== null) drop("scoring", `a head search's score is ${Object.keys(SCORINGS).join(" or ")}`);
  const rerank = q.get("rerank");
  if (rerank !== null && RERANKS.map(String).includes(rerank)) state.rerank = Number(rerank);
  else if (rerank !== null) drop("rerank", `re-ranking is ${RERANKS.join(", ")} (1: off), or left out for the corpus's default`);
}

/** Write the search options that differ from the defaults. @param {any} state @param {URLSearchParams} q */
function writeSearchOptions(state, q) {
  if (state.top !== TOP_DEFAULT) q.set("top", String(state.top));
  if (state.filter) q.set("filter", state.filter);
  if (state.perSentence) q.set("per", "sentence");
  if (state.scoring !== "sum") q.set("scoring", state.scoring);
  if (state.rerank) q.set("rerank", String(state.rerank));
}

/**
 * Metadata filters from "upos=NOUN,PROPN deprel=obj" (fields separated by spaces or semicolons):
 * `{ filters }`, or `{ error }` saying what is malformed.
 * @param {string} text @returns {{ filters: Record<string, string[]>, error: string }}
 */
export function parseFilters(text) {
  /** @type {Record<string, string[]>} */
  const filters = {};
  for (const part of text.split(/[\s;]+/).filter(Boolean)) {
    const match = /^([^=,]+)=([^=]+)$/.exec(part);
    const values = match ? match[2].split(",").filter(Boolean) : [];
    if (!match || !values.length) {
      return { filters: {}, error: `Filter “${part}”: write FIELD=VALUE[,VALUE…], e.g. upos=NOUN,PROPN deprel=obj` };
    }
    filters[match[1]] = [...(filters[match[1]] ?? []), ...values];
  }
  return { filters, error: "" };
}

/**
 * The body of POST /api/search for the state, or a reason it cannot be sent.
 * @param {any} state @param {string} corpus @param {number[]} heads
 * @returns {{ body: any, error: string }}
 */
export function searchBody(state, corpus, heads) {
  const { filters, error } = parseFilters(state.filter);
  const body = {
    corpus, text: state.text, token: state.token, layer: state.layer, mode: state.search, heads, mask: state.mask,
    top: state.top, unit: state.words ? "word" : "token", per_sentence: state.perSentence,
    ...(state.search === "heads" ? { score: state.scoring } : {}), // only a head search has a score to choose
    ...(state.pair ? { text_pair: state.pair } : {}), ...(Object.keys(filters).length ? { filters } : {}),
    ...(state.rerank ? { rerank: state.rerank } : {}), // 0: the corpus's default
  };
  return { body, error };
}

/**
 * The heading over a result: how many matches ("1 match", "50 matches"), for what (a token, or a word
 * as written with the tokens whose mean was searched), at which layer and how, in which corpus.
 * @param {any} result the body of POST /api/search @param {string} corpus
 */
export function resultsTitle(result, corpus) {
  const positions = result.query_positions?.length ? result.query_positions : [result.token];
  const text = result.query_text || result.token_text;
  const count = result.matches.length;
  const found = `${count} ${count === 1 ? "match" : "matches"}`;
  const how = result.mode === "embedding" ? "by embedding" : `by heads ${result.heads.join(", ")}`;
  const span = positions.length > 1
    ? `tokens ${positions[0]}–${positions[positions.length - 1]}, the mean of its ${positions.length} tokens`
    : `position ${positions[0]}`;
  const what = result.unit === "word" ? `the word “${text}” (${span})` : `“${text}” (position ${result.token})`;
  return `${found} for ${what} at layer ${result.layer}, ${how}, in ${corpus}` +
    (result.per_sentence ? ", one per sentence" : "") +
    (result.rerank > 1 ? `, re-ranked ×${result.rerank} by exact vectors` : "");
}

/**
 * The state that opens a match's sentence in the attention view, its matched token selected (a new
 * input: no mask, no second sentence, no search; layer, heads and view options stay).
 * @param {any} match one of a result's matches
 */
export function matchPatch(match) {
  return { text: match.text, pair: "", mask: [], token: match.input_position, search: "" };
}

/**
 * Set the search controls from the state. @param {any} state
 */
export function syncSearchControls(state) {
  const el = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
  el("search-top").value = String(state.top);
  const filter = el("search-filter"); // a filter the corpus refused stays in its input, to correct (app_search_panel.js)
  if (document.activeElement !== filter && filter.getAttribute("aria-invalid") !== "true") filter.value = state.filter;
  el("search-per-sentence").checked = state.perSentence;
  el("search-score").value = state.scoring;
  el("search-rerank").value = String(state.rerank);
  el("search-unit").textContent = state.words
    ? "Words mode: a word is searched as a word (the mean of its tokens' vectors, each unit length), and the " +
      "matches are corpus words scored the same way."
    : "A token is searched by its own vector; turn on Words to search whole words.";
}

/**
 * Wire the search controls: each reports its change through `update`.
 * @param {(patch: any) => void} update
 */
export function wireSearchControls(update) {
  const el = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
  const score = el("search-score");
  score.replaceChildren(...Object.entries(SCORINGS).map(([value, label]) => new Option(label, value)));
  el("search-top").addEventListener("change", () => {
    const top = Math.round(Number(el("search-top").value));
    update({ top: Number.isFinite(top) ? Math.min(TOP_MAX, Math.max(1, top)) : TOP_DEFAULT });
  });
  el("search-filter").addEventListener("change", () => update({ filter: el("search-filter").value.trim() }));
  el("search-per-sentence").addEventListener("change", () => update({ perSentence: el("search-per-sentence").checked }));
  score.addEventListener("change", () => update({ scoring: score.value }));
  const rerank = el("search-rerank");
  const label = (/** @type {number} */ f) => (f === 1 ? "off" : `×${f}`);
  rerank.replaceChildren(new Option("default", "0"), ...RERANKS.map((f) => new Option(label(f), String(f))));
  rerank.addEventListener("change", () => update({ rerank: Number(rerank.value) }));
}

/**
 * Say what the re-rank control's default is for `corpus` (x4 for PQ codes, off for 8-bit ones) and what
 * re-ranking does. @param {{ codes?: string } | null} corpus
 */
export function syncRerank(corpus) {
  const pq = corpus?.codes?.startsWith("pq") ?? false;
  const select = /** @type {HTMLSelectElement} */ (document.getElementById("search-rerank"));
  select.options[0].text = pq ? "default (×4)" : "default (off)";
  const codes = pq ? `${corpus?.codes} codes` : "8-bit codes";
  select.title = "Score the best matches × this factor again by exact vectors, recomputed with the model for " +
    `their sentences (the corpus stores ${codes}; off: the codes' scores)`;
}

export { TOP_MAX, searchDefaults, readSearchOptions, writeSearchOptions };
