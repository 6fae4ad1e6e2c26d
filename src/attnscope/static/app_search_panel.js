// @ts-check
/**
 * The explorer app's corpus search panel: whether a search can run (and the hint that says why not),
 * running one, drawing its result, and what a search that cannot run or fails leaves on the page.
 *
 * A search needs a corpus for the model and a selected token the index holds: for a special token
 * ([CLS], [SEP]) both buttons are disabled and the hint says why. A search by heads needs at least one
 * selected head; the head score (sum or mean of the heads' cosines) can be chosen whenever heads are
 * selected. A filter is checked against the corpus's fields before anything is asked (`filterProblem`).
 *
 * A search that cannot run or fails clears the previous results and says why in their place
 * (#results-error); the search, and the option to blame (a filter: marked invalid at its input, with the
 * reason beside it and its text kept there to correct), are left out of the state and the URL, as a
 * link's parameters that cannot apply are (app_links.js): the URL holds only what the page shows.
 * #results[data-state] is idle | loading | ready | error; data-searches counts the results drawn.
 */

import { renderMatches, renderSummary } from "./app_corpus.js";
import { matchPatch, parseFilters, resultsTitle, searchBody, syncRerank } from "./app_search.js";
import { api, ApiFailure, queryFromState } from "./app_state.js";
/** @import { AttentionData } from "./app_head_view.js" */
/** @import { AppState } from "./app_state.js" */

/** @param {string} id @returns {any} */
function panelPart(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`attnscope: the page has no #${id}`);
  return el;
}

/**
 * Why a filter cannot be sent to `corpus`: malformed (`parseFilters`), or naming a field the corpus's
 * tokens do not have (names are case-sensitive); "" when it can (or when there is no corpus to ask).
 * @param {string} text @param {{ name: string, fields: string[] } | null} corpus
 */
export function filterProblem(text, corpus) {
  const { filters, error } = parseFilters(text);
  if (error || !corpus) return error;
  const unknown = Object.keys(filters).filter((f) => !corpus.fields.includes(f));
  if (!unknown.length) return "";
  const meant = unknown.map((f) => corpus.fields.find((g) => g.toLowerCase() === f.toLowerCase())).filter(Boolean);
  return `cannot filter on ${unknown.map((f) => `“${f}”`).join(", ")}: corpus ${corpus.name} has the fields ` +
    corpus.fields.join(", ") + (meant.length ? ` (names are case-sensitive: did you mean ${meant.map((f) => `“${f}”`).join(", ")}?)` : "");
}

/**
 * Draw a result: its heading, what its scores mean, the summary and the matches (app_corpus.js), with
 * the state's summary field, column field and span; a match opens through `onOpen`.
 * @param {any} result the body of POST /api/search @param {any} state
 * @param {{ name: string, fields: string[], silver?: Record<string, string> }} corpus
 * @param {(match: any) => void} onOpen
 */
export function showResults(result, state, corpus, onOpen) {
  const el = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
  const fields = corpus.fields;
  const field = fields.includes(state.field) ? state.field : fields[0];
  const cols = fields.includes(state.cols) ? state.cols : fields[0];
  el("results-title").textContent = resultsTitle(result, corpus.name);
  el("results-score").textContent = result.score_meaning ? `Score: ${result.score_meaning}.` : "";
  el("summary-field").value = field;
  el("cols-field").value = cols;
  el("cols-span").textContent = state.span ? `offsets −${state.span} to +${state.span} (words)` : "the matched word only";
  renderSummary(el("summary"), result, field, corpus.silver);
  renderMatches(el("matches"), result, { field: cols, span: state.span, fields, silver: corpus.silver, onOpen,
    hrefOf: (m) => queryFromState({ ...state, ...matchPatch(m) }) });
}

/**
 * What the panel asks of the page: its state and loaded attention, the model's corpus, the selected
 * heads, `update` (app.js) and `open` (a match, with its rank, in the attention view).
 * @typedef {{ state: () => AppState, attention: () => AttentionData | null, corpus: () => any,
 *   heads: () => number[], update: (patch: Partial<AppState>) => void, open: (match: any, rank: number) => void }} SearchHost
 */

/**
 * The panel's own context, passed to the functions below.
 * @typedef {object} SearchPanel
 * @property {SearchHost} host
 * @property {HTMLElement} results #results
 * @property {HTMLElement} failure #results-error
 * @property {HTMLInputElement} filterInput
 * @property {HTMLElement} filterError
 * @property {number} run the number of the latest search (or clear): an older search's answer is dropped
 * @property {any} result the body of the last POST /api/search drawn
 * @property {number | null} focusRank the rank of a match to give the focus once results are drawn (Back)
 */

/** The search panel of the page's #results and search controls, and what app.js calls. @param {SearchHost} host */
export function createSearchPanel(host) {
  /** @type {SearchPanel} */
  const p = {
    host, results: panelPart("results"), failure: panelPart("results-error"),
    filterInput: panelPart("search-filter"), filterError: panelPart("search-filter-error"),
    run: 0, result: null, focusRank: null,
  };
  panelPart("search-embedding").addEventListener("click", () => start(p, "embedding"));
  panelPart("search-heads").addEventListener("click", () => start(p, "heads"));

  return {
    sync: () => sync(p),
    search: () => search(p),
    clear: () => clear(p),
    render: () => render(p),
    setFilter: (/** @type {string} */ text) => setFilter(p, text),
    unmarkFilter: () => unmarkFilter(p),
    /** Whether a result is drawn (or kept to draw again). */
    hasResult: () => p.result !== null,
    /** Give the focus to the match at `rank` once the next search's results are drawn. @param {number | null} rank */
    focusAfterSearch: (rank) => { p.focusRank = rank; },
  };
}

/** Enable the search buttons and the head score when they can be used; the hint says why not. @param {SearchPanel} p */
function sync(p) {
  const { host } = p;
  const s = host.state(), attention = host.attention(), corpus = host.corpus(), token = s.token;
  const special = attention !== null && token !== null && token < attention.n && attention.special[token];
  const heads = host.heads().length;
  const unstored = corpus !== null && !storesLayer(corpus, s.layer);
  let hint = "";
  if (!corpus) hint = "No corpus is served for this model.";
  else if (unstored) hint = `Corpus ${corpus.name} stores layers ${corpus.stored_layers.join(", ")} only: choose one of them to search.`;
  else if (token === null) hint = "Click a token to search the corpus for it.";
  else if (special && attention) {
    hint = `“${attention.tokens[token]}” is a special token, which the corpus index does not hold: select another token to search.`;
  } else if (heads === 0) hint = "Select at least one head to search by heads.";
  const ready = corpus !== null && attention !== null && token !== null && !special && !unstored;
  panelPart("search-embedding").disabled = !ready;
  panelPart("search-heads").disabled = !ready || heads === 0;
  panelPart("search-hint").textContent = hint;
  const score = panelPart("search-score");
  score.disabled = heads === 0;
  score.title = heads === 0 ? "Select heads to choose how a search by heads scores its matches"
    : "How a search by heads scores a match: the sum or the mean of the selected heads' cosines";
  syncRerank(corpus);
}

/**
 * Whether a search at `layer` can run on `corpus`: an index built with `--layers` stores only those
 * (GET /api/corpora's stored_layers; an older server lists none: every layer).
 * @param {{ stored_layers?: number[] }} corpus @param {number} layer
 */
export function storesLayer(corpus, layer) {
  return !corpus.stored_layers?.length || corpus.stored_layers.includes(layer);
}

/** Run the state's search, if it has one, and draw its result (or say why there is none). @param {SearchPanel} p */
async function search(p) {
  const { host, results } = p;
  const id = ++p.run;
  const s = host.state(), attention = host.attention(), corpus = host.corpus();
  if (!attention || s.token === null || !corpus || !s.search) return;
  const heads = s.heads ?? [...Array(attention.heads).keys()];
  if (attention.special[s.token]) {
    fail(p, `“${attention.tokens[s.token]}” (position ${s.token}) is a special token, which the corpus index does not hold`);
    return;
  }
  if (heads.length === 0) {
    fail(p, "no heads are selected: select at least one head to search by heads (or to see the matches' attention)");
    return;
  }
  const problem = filterProblem(s.filter, corpus);
  if (problem) {
    fail(p, problem, s.filter);
    return;
  }
  results.dataset.state = "loading";
  try {
    const found = await api("/api/search", searchBody(s, corpus.name, heads).body);
    if (id !== p.run) return;
    p.result = found;
    p.failure.textContent = "";
    render(p);
    results.dataset.state = "ready";
    results.dataset.searches = String(Number(results.dataset.searches ?? 0) + 1);
    if (p.focusRank !== null) panelPart("matches").querySelectorAll(".as-match a.as-open")[p.focusRank]?.focus();
    p.focusRank = null;
  } catch (error) {
    if (id !== p.run) return;
    const failed = error instanceof ApiFailure ? error : null;
    fail(p, failed ? failed.message : String(error), failed?.field?.startsWith("filters") ? s.filter : null);
  }
}

/**
 * No results, and why in their place: the search (and a filter to blame, whose text stays in its
 * input, marked invalid) is left out of the state and the URL.
 * @param {SearchPanel} p @param {string} message @param {string | null} [filter] the filter that is to blame
 */
function fail(p, message, filter = null) {
  p.focusRank = null;
  if (filter !== null) markFilter(p, message);
  p.host.update({ search: "", ...(filter !== null ? { filter: "" } : {}) }); // clears the results
  const why = /[.?!]$/.test(message) ? message : `${message}.`;
  p.failure.textContent = `Search failed: ${why}` +
    (filter !== null ? ` The filter “${filter}” was not applied: correct it and search again.` : "");
  p.results.dataset.state = "error";
}

/** @param {SearchPanel} p @param {string} message */
function markFilter(p, message) {
  p.filterInput.setAttribute("aria-invalid", "true");
  p.filterError.textContent = `Not applied: ${message}`;
  p.filterError.hidden = false;
}

/** @param {SearchPanel} p */
function unmarkFilter(p) {
  p.filterInput.removeAttribute("aria-invalid");
  p.filterError.textContent = "";
  p.filterError.hidden = true;
}

/**
 * The filter the user typed: applied when the corpus can take it; otherwise marked at its input and,
 * when a search is shown, that search fails (`fail`). @param {SearchPanel} p @param {string} text
 */
function setFilter(p, text) {
  const problem = filterProblem(text, p.host.corpus());
  if (!problem) {
    unmarkFilter(p);
    p.host.update({ filter: text });
  } else if (p.host.state().search) {
    fail(p, problem, text);
  } else {
    markFilter(p, problem);
    p.host.update({ filter: "" });
  }
}

/** A search button: search by `mode` (again); an invalid filter still at its input fails first. @param {SearchPanel} p @param {string} mode */
function start(p, mode) {
  const typed = p.filterInput.value.trim();
  const problem = p.filterInput.getAttribute("aria-invalid") === "true" ? filterProblem(typed, p.host.corpus()) : "";
  if (problem) fail(p, problem, typed);
  else if (p.host.state().search === mode) void search(p);
  else p.host.update({ search: mode });
}

/** No results: drop the last one and any search still on its way. @param {SearchPanel} p */
function clear(p) {
  p.run++;
  p.result = null;
  for (const id of ["results-title", "results-score", "results-error"]) panelPart(id).textContent = "";
  panelPart("summary").replaceChildren();
  panelPart("matches").replaceChildren();
  p.results.dataset.state = "idle";
}

/** Draw the last result again (with the state's fields and span). @param {SearchPanel} p */
function render(p) {
  const corpus = p.host.corpus();
  if (p.result && corpus) showResults(p.result, p.host.state(), corpus, (match) => p.host.open(match, p.result.matches.indexOf(match)));
}
