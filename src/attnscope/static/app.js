// @ts-check
/**
 * The explorer app's page logic: reads the state from the URL, asks the API for attention and
 * searches, and hands the results to the attention, corpus and summary views. Every change is
 * written back to the URL (history.replaceState): nothing reloads the page, and a link rebuilds
 * the view, search included. The page root exposes progress for tests and benchmarks:
 * #app[data-attention] (idle | loading | ready | error) and data-loads (attention responses drawn),
 * #app[data-aggregation] (the same, for what Show asks of /api/aggregation) and data-aggregations,
 * #results[data-state] (the same) and data-searches (search responses drawn), and #atlas[data-state]
 * (idle | loading | computing | ready | error) and #app[data-stack] (the attention stack drawn). What a
 * link asks for that cannot be shown is dropped, listed in #link-notice and left out of the URL
 * (app_links.js); the rest of the link still applies. The search panel (app_search_panel.js) and the
 * head atlas panel (app_atlas_panel.js) are modules of their own; this file holds the state, the
 * attention view's loading, the controls' wiring and Back / Forward. The entry of the app's bundle
 * (static/bundles/app.js, js/build.mjs), which app.html loads and `attnscope serve` serves; it runs
 * the page on import.
 */

import { FILTERS, make } from "./common.js";
import { onThemeChange, refitOnThemeChange } from "./contrast.js";
import { PER_HEAD } from "./attention_data.js";
import { createAtlasPanel } from "./app_atlas_panel.js";
import { createAttentionView, decodeAggregation, decodeAttention, showPredictionsTip } from "./app_attention.js";
import { fieldLabel } from "./app_corpus.js";
import { checkLinkMask, checkServed, checkToken, showDropped } from "./app_links.js";
import { matchPatch, syncSearchControls, wireSearchControls } from "./app_search.js";
import { createSearchPanel } from "./app_search_panel.js";
import { api, ApiFailure, dropped, queryFromState, SHOWN, SPAN_MAX, stateFromQuery } from "./app_state.js";
/** @import { Aggregated, AttentionData } from "./app_attention.js" */
/** @import { Dropped } from "./app_links.js" */
/** @import { AppState } from "./app_state.js" */

const EXAMPLE = "The girl ran to a local pub to escape the din of her city.";
const RAW_HELP = "Each head's attention weights: how much each token (left) takes from each token (right).";

/** @param {string} id @returns {any} */
function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`attnscope: the page has no #${id}`);
  return el;
}

async function boot() {
  const app = byId("app");
  /** @type {Dropped[]} */
  const drops = [];
  /** @type {AppState} */
  let state = stateFromQuery(location.search, drops);
  /** @type {any[]} */
  let models = [];
  /** @type {any[]} */
  let corpora = [];
  /** @type {AttentionData | null} */
  let attention = null;
  /** @type {any[] | null} */
  let predictions = null;
  let predictionsNote = "", predictionsMode = "";
  /** @type {(Aggregated & { source: AttentionData }) | null} */
  let aggregated = null;
  let aggregationRun = 0;
  /** @type {number | null} */
  let hover = null;
  let attentionRun = 0;
  /** Whether to focus the selected token once the next attention is drawn (an opened match's). */
  let focusAfterLoad = false;
  /** Whether the state's mask came from a link (or Back / Forward), to be checked against the input before it is sent. */
  let maskFromLink = state.mask.length > 0;

  const status = byId("status");
  const tooltip = byId("tooltip");
  // The view's positions are tokens, or words (units) in words mode; `tokensAt` maps them back.
  const view = createAttentionView(byId("attention"), {
    onSelect: (pos) => update({ token: tokensAt(pos)[0] }),
    onMask: (pos) => toggleMask(tokensAt(pos)),
    onHeads: (heads) => update({ heads }),
    onHover: (pos, el) => {
      hover = pos;
      redraw();
      showPredictions(pos === null ? null : tokensAt(pos)[0], el);
    },
  });

  const search = createSearchPanel({
    state: () => state, attention: () => attention, corpus: () => corpusInfo(), heads: () => selectedHeads(),
    update: (patch) => update(patch), open: (match, rank) => openMatch(match, rank),
  });
  const atlas = createAtlasPanel({
    state: () => state, corpus: () => corpusInfo(), head: () => atlasHead(), setScore: (score) => update({ score }),
    dropScore: () => { state.score = ""; writeUrl(); }, notice: (drops) => notice(drops), say: (message) => say(message),
  });

  /** @param {string} message */
  function say(message) {
    status.textContent = message;
  }

  /** List parameters of the link that were not applied in the page's notice. @param {Dropped[]} dropped */
  function notice(dropped) {
    showDropped(byId("link-notice"), byId("link-dropped"), dropped);
  }

  function writeUrl() {
    history.replaceState(null, "", queryFromState(state));
  }

  function modelInfo() {
    return models.find((m) => m.name === state.model || m.aliases.includes(state.model)) ?? null;
  }

  function corporaOfModel() {
    const info = modelInfo();
    return corpora.filter((c) => info && (c.model === info.name || info.aliases.includes(c.model)));
  }

  function corpusInfo() {
    return corporaOfModel().find((c) => c.name === state.corpus) ?? null;
  }

  /** @param {HTMLSelectElement} select @param {Array<[string, string]>} options @param {string} value */
  function fill(select, options, value) {
    select.replaceChildren(...options.map(([v, label]) => {
      const option = /** @type {HTMLOptionElement} */ (make("option", "", label));
      option.value = v;
      return option;
    }));
    select.value = value;
  }

  function fillSelectors() {
    fill(byId("model"), models.map((m) => [m.name, m.name]), modelInfo()?.name ?? "");
    const own = corporaOfModel();
    fill(byId("corpus"), own.length ? own.map((c) => [c.name, `${c.name} (${c.tokens.toLocaleString("en")} tokens)`])
      : [["", "(none for this model)"]], state.corpus);
    const info = modelInfo();
    const shape = info ? `${info.layers} layers × ${info.heads} heads` : "";
    byId("model-note").textContent = !info ? "" : (info.kind === "encoder-decoder" ? `encoder-decoder · encoder: ${shape}` : shape) +
      (info.has_lm_head ? "" : " · no language-model head");
    /** @type {string[]} */
    const fields = corpusInfo()?.fields ?? [];
    const labels = fields.map((f) => /** @type {[string, string]} */ ([f, fieldLabel(f, corpusInfo()?.silver)]));
    fill(byId("summary-field"), labels, state.field || fields[0] || "");
    fill(byId("cols-field"), labels, state.cols || fields[0] || "");
  }

  function fillLayers() {
    const count = attention?.layers ?? modelInfo()?.layers ?? 0;
    const select = byId("layer");
    if (select.options.length !== count) fill(select, [...Array(count).keys()].map((l) => [String(l), String(l)]), "");
    select.value = String(Math.min(state.layer, Math.max(0, count - 1)));
  }

  /** The aggregation to draw: the one loaded for this input, the Show method and words mode, if any. */
  function shownAggregation() {
    return aggregated && aggregated.source === attention && aggregated.method === state.show
      && aggregated.words === state.words ? aggregated : null;
  }

  /**
   * What the attention view draws: the tokens' raw attention (and the shown aggregation), or in words
   * mode the words' (once they are loaded; the tokens' until then).
   */
  function display() {
    const shown = shownAggregation();
    if (!shown?.words) return { data: attention, aggregation: shown, units: null };
    return { data: shown.base ?? shown.data, aggregation: shown.method === "raw" ? null : shown, units: shown.units };
  }

  /** The token positions behind a position of the view (a word's tokens in words mode). @param {number} pos */
  function tokensAt(pos) {
    return display().units?.[pos] ?? [pos];
  }

  /** The selected heads that exist in the loaded attention (all of them when none were chosen). */
  function selectedHeads() {
    const count = attention?.heads ?? modelInfo()?.heads ?? 0;
    return (state.heads ?? [...Array(count).keys()]).filter((h) => h < count);
  }

  function redraw() {
    const { data, aggregation, units } = display();
    if (data) {
      const token = state.token;
      const unit = units && token !== null ? units.findIndex((u) => u.includes(token)) : token;
      view.draw(data, units ? { ...state, token: unit === -1 ? null : unit } : state, hover, aggregation);
    }
    search.sync();
    const masking = modelInfo()?.masking_note, note = byId("mask-note");
    note.textContent = masking ? masking[0].toUpperCase() + masking.slice(1) : "";  // a sentence, as shown
    note.hidden = !masking || state.mask.length === 0;
  }

  /**
   * Apply a change to the state, write the URL, and redo what depends on it.
   * @param {Partial<AppState>} patch
   */
  function update(patch) {
    const before = state;
    state = { ...state, ...patch };
    const inputChanged = ["model", "text", "pair"].some((k) => /** @type {any} */ (before)[k] !== /** @type {any} */ (state)[k])
      || before.mask.join() !== state.mask.join();
    if (inputChanged && !("token" in patch)) state.token = null;
    if (state.token === null) state.search = "";
    writeUrl();
    byId("threshold").value = String(Math.round(state.threshold * 100));
    byId("threshold-value").textContent = `${Math.round(state.threshold * 100)}%`;
    byId("hide-special").checked = state.hideSpecial;
    byId("show").value = state.show;
    byId("words").checked = state.words;
    byId("pairs").value = state.pairs;
    syncSearchControls(state);
    if (before.words !== state.words) hover = null;
    if (before.corpus !== state.corpus || before.atlas !== state.atlas) void atlas.load();
    else atlas.follow();
    if (inputChanged) {
      void loadAttention();
      return;
    }
    fillLayers();
    redraw();
    if (before.show !== state.show || before.words !== state.words || String(before.heads) !== String(state.heads)) {
      void loadAggregation();
    }
    const searchChanged = ["layer", "token", "corpus", "search", "words", "top", "filter", "perSentence", "scoring"]
      .some((k) => /** @type {any} */ (before)[k] !== /** @type {any} */ (state)[k])
      || String(before.heads) !== String(state.heads);
    if (state.search && searchChanged) void search.search();
    else if (!state.search) search.clear();
    else if (search.hasResult()) search.render();
  }

  async function loadAttention() {
    const run = ++attentionRun;
    const info = modelInfo();
    if (!info || !state.text.trim()) {
      attention = null;
      app.dataset.attention = "idle";
      return;
    }
    app.dataset.attention = "loading";
    say("");
    try {
      if (maskFromLink && state.mask.length) { // a link's mask is checked against the input's tokens before it is sent
        const checked = await checkLinkMask(state, info.name);
        if (run !== attentionRun) return;
        if (checked) notice(checked.drops);
        if (checked) state.mask = checked.keep;
      }
      maskFromLink = false;
      const body = { model: info.name, text: state.text, mask: state.mask, ...(state.pair ? { text_pair: state.pair } : {}) };
      const response = await api("/api/attention", body);
      if (run !== attentionRun) return;
      attention = decodeAttention(response);
      predictions = response.predictions;
      predictionsNote = response.predictions_note ?? "";
      predictionsMode = response.predictions_mode ?? "";
      showStack(response.stack, info);
      notice(checkToken(state, attention));
      if (state.layer >= attention.layers) state.layer = attention.layers - 1;
      byId("pairs-label").hidden = !attention.segments.includes(1);
      writeUrl();
      fillLayers();
      redraw();
      app.dataset.attention = "ready";
      app.dataset.loads = String(Number(app.dataset.loads ?? 0) + 1);
      if (focusAfterLoad) byId("attention").querySelector(".as-query.as-selected")?.focus();
      focusAfterLoad = false;
      void loadAggregation();
      if (state.search) void search.search();
      else search.clear();
    } catch (error) {
      if (run !== attentionRun) return;
      if (error instanceof ApiFailure && error.field?.startsWith("mask") && state.mask.length > 0) {
        notice([dropped("mask", state.mask.join(","), error.message)]); // refused although checked: dropped whole
        state.mask = [];
        writeUrl();
        void loadAttention();
        return;
      }
      attention = null;
      app.dataset.attention = "error";
      byId("attention").querySelector(".as-columns")?.replaceChildren();
      say(error instanceof ApiFailure ? `Could not show attention: ${error.message}` : String(error));
    }
  }

  /**
   * Say which attention stack the view draws: an encoder-decoder's encoder (its decoder and cross-attention
   * need a target text, which the explorer does not take), or a causal decoder's.
   * @param {string} stack the response's ("encoder" or "decoder") @param {any} info the model's GET /api/models entry
   */
  function showStack(stack, info) {
    const seq2seq = info.kind === "encoder-decoder";
    app.dataset.stack = stack;
    byId("attention-stack").textContent = seq2seq ? "(the encoder's self-attention)"
      : stack === "decoder" ? "(decoder self-attention, causal)" : "(encoder self-attention)";
    byId("stack-note").textContent = seq2seq ? "This model is an encoder-decoder: this is its encoder's self-attention " +
      "over the sentence. Its decoder's self-attention and its cross-attention need a target text (the decoder's input), " +
      "which the explorer does not take: show them in a notebook with attnscope.model_view(attnscope.capture(model, " +
      "text, target=…))." : stack === "decoder" ? "A causal decoder: each token attends only to itself and the tokens before it." : "";
  }

  /**
   * Ask the server for what Show names, between words in words mode (unless it is the raw weights
   * between tokens, or already loaded for this input, method, words mode and, for the combined
   * methods, heads), then redraw with it.
   */
  async function loadAggregation() {
    const run = ++aggregationRun;
    const info = modelInfo();
    byId("show-help").textContent = state.show === "raw" ? RAW_HELP
      : aggregated?.method === state.show ? aggregated.description : "";
    const perHead = PER_HEAD.has(state.show);
    const heads = perHead ? null : selectedHeads();
    if (!attention || !info || (state.show === "raw" && !state.words) || (heads && heads.length === 0)) {
      app.dataset.aggregation = "idle";
      redraw();
      return;
    }
    const current = shownAggregation();
    if (current && (perHead || String(current.heads) === String(heads))) {
      app.dataset.aggregation = "ready";
      return;
    }
    const source = attention;
    app.dataset.aggregation = "loading";
    try {
      const body = { model: info.name, text: state.text, mask: state.mask, words: state.words,
        ...(state.pair ? { text_pair: state.pair } : {}) };
      // a combined method between words also needs each head's raw weights between the words (thumbnails),
      // which the last words aggregation of this input may already hold
      const previous = aggregated?.source === source && aggregated.words && state.words ? aggregated : null;
      const known = previous?.base ?? (previous?.method === "raw" ? previous.data : null);
      const [response, raw] = await Promise.all([
        api("/api/aggregation", { ...body, method: state.show, ...(heads ? { heads } : {}) }),
        state.words && heads && !known ? api("/api/aggregation", { ...body, method: "raw" }) : null,
      ]);
      if (run !== aggregationRun || source !== attention) return;
      aggregated = { ...decodeAggregation(response, source), source };
      if (state.words && heads) aggregated.base = raw ? decodeAggregation(raw, source).data : known;
      byId("show-help").textContent = (state.show === "raw" ? RAW_HELP : aggregated.description) +
        (aggregated.rowsScaled ? " Each row is scaled to sum to 1 (these are lengths, not probabilities)." : "") +
        (state.words ? " Between words: attention to a word is the sum over its tokens, from a word the mean " +
          "(Clark et al. 2019)." : "");
      redraw();
      app.dataset.aggregation = "ready";
      app.dataset.aggregations = String(Number(app.dataset.aggregations ?? 0) + 1);
    } catch (error) {
      if (run !== aggregationRun) return;
      app.dataset.aggregation = "error";
      const label = SHOWN[/** @type {keyof typeof SHOWN} */ (state.show)];
      say(error instanceof ApiFailure ? `Could not show ${label}: ${error.message}` : String(error));
    }
  }

  /** The head the atlas marks: the shown layer's one selected head, or null when several are shown. */
  function atlasHead() {
    const heads = selectedHeads();
    return heads.length === 1 ? [state.layer, heads[0]] : null;
  }

  /** Mask the tokens at `positions` (a token, or a word's tokens), or unmask them if all are masked. @param {number[]} positions */
  function toggleMask(positions) {
    const info = modelInfo();
    if (!attention || !info) return;
    const pos = positions[0];
    if (attention.special[pos]) {
      say(`"${attention.tokens[pos]}" is a special token: only ordinary tokens can be masked.`);
      return;
    }
    if (!info.mask_token) {
      say(`Model ${info.name} has no mask token, so tokens cannot be masked.`);
      return;
    }
    const unmask = positions.every((p) => state.mask.includes(p));
    const mask = unmask ? state.mask.filter((p) => !positions.includes(p))
      : [...new Set([...state.mask, ...positions])].sort((a, b) => a - b);
    update({ mask, token: pos, search: state.search });
  }

  /** @param {number | null} pos @param {HTMLElement | null} el */
  function showPredictions(pos, el) {
    const at = pos === null || !el || !attention ? null
      : { attention, predictions, mode: predictionsMode, note: predictionsNote, pos, el };
    showPredictionsTip(tooltip, at);
  }

  /**
   * Open a match's sentence in the attention view, its matched token selected: a new history entry,
   * so Back returns to the search; the search's entry remembers the match's rank, so that Back gives
   * the keyboard focus back to it. @param {any} match @param {number} rank
   */
  function openMatch(match, rank) {
    history.replaceState({ opened: rank }, "", location.href);
    history.pushState(null, "", location.href);
    focusAfterLoad = true;
    byId("text").value = match.text;
    byId("pair").value = "";
    update(matchPatch(match));
    byId("attention").scrollIntoView({ block: "nearest" });
  }

  // Wiring: every control calls update() with what it changed.
  byId("input").addEventListener("submit", (/** @type {Event} */ event) => {
    event.preventDefault();
    const text = byId("text").value, pair = byId("pair").value.trim() ? byId("pair").value : "";
    if (text === state.text && pair === state.pair) void loadAttention();
    else update({ text, pair, mask: [], token: null });
  });
  byId("model").addEventListener("change", () => {
    const model = byId("model").value;
    const info = models.find((m) => m.name === model);
    const corpus = corpora.find((c) => info && (c.model === info.name || info.aliases.includes(c.model)))?.name ?? "";
    update({ model, corpus, mask: [], token: null });
    fillSelectors();
  });
  byId("corpus").addEventListener("change", () => {
    update({ corpus: byId("corpus").value });
    fillSelectors();
  });
  byId("layer").addEventListener("change", () => update({ layer: Number(byId("layer").value) }));
  byId("show").addEventListener("change", () => update({ show: byId("show").value }));
  byId("words").addEventListener("change", () => update({ words: byId("words").checked }));
  byId("pairs").addEventListener("change", () => update({ pairs: byId("pairs").value }));
  wireSearchControls((patch) => ("filter" in patch ? search.setFilter(patch.filter ?? "") : update(patch)));
  // Back and Forward (after a match was opened) show the view their URL holds, search included, and
  // give the focus back to the match that was opened from it.
  window.addEventListener("popstate", (event) => {
    const next = stateFromQuery(location.search);
    const opened = event.state?.opened;
    search.focusAfterSearch(Number.isInteger(opened) ? opened : null);
    search.unmarkFilter();
    maskFromLink = next.mask.length > 0;
    byId("text").value = next.text || EXAMPLE;
    byId("pair").value = next.pair;
    const served = models.some((m) => m.name === next.model || m.aliases.includes(next.model));
    update({ ...next, text: next.text || EXAMPLE, model: served ? next.model : state.model,
      corpus: next.corpus || state.corpus });
    fillSelectors();
  });
  byId("atlas-toggle").addEventListener("click", () => update({ atlas: !state.atlas }));
  byId("link-notice-close").addEventListener("click", () => {
    byId("link-notice").hidden = true;
    byId("link-dropped").replaceChildren();
  });
  byId("atlas").addEventListener("attnscope-atlas-open", (/** @type {any} */ event) => {
    update({ layer: event.detail.layer, heads: [event.detail.head] });
  });
  byId("threshold").addEventListener("input", () => update({ threshold: Number(byId("threshold").value) / 100 }));
  byId("hide-special").addEventListener("change", () => {
    const hideSpecial = byId("hide-special").checked; // a hidden special token cannot stay selected
    const hidden = hideSpecial && attention !== null && state.token !== null && attention.special[state.token];
    update({ hideSpecial, ...(hidden ? { token: null } : {}) });
  });
  byId("summary-field").addEventListener("change", () => update({ field: byId("summary-field").value }));
  byId("cols-field").addEventListener("change", () => update({ cols: byId("cols-field").value }));
  byId("cols-narrow").addEventListener("click", () => update({ span: Math.max(0, state.span - 1) }));
  byId("cols-wider").addEventListener("click", () => update({ span: Math.min(SPAN_MAX, state.span + 1) }));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      tooltip.hidden = true;
      const target = /** @type {HTMLElement} */ (event.target);
      if (!(target instanceof HTMLInputElement) && state.token !== null) update({ token: null });
    }
  });

  try {
    [models, corpora] = await Promise.all([api("/api/models"), api("/api/corpora")]);
  } catch (error) {
    say(error instanceof ApiFailure ? error.message : String(error));
    app.dataset.attention = "error";
    return;
  }
  notice([...drops, ...checkServed(state, models, corpora)]);
  if (!modelInfo()) state.model = models[0]?.name ?? "";
  if (!corpusInfo()) state.corpus = corporaOfModel()[0]?.name ?? "";
  if (!state.text) state.text = EXAMPLE;
  byId("text").value = state.text;
  byId("pair").value = state.pair;
  fillSelectors();
  byId("threshold").value = String(Math.round(state.threshold * 100));
  byId("threshold-value").textContent = `${Math.round(state.threshold * 100)}%`;
  byId("hide-special").checked = state.hideSpecial;
  fill(byId("show"), Object.entries(SHOWN), state.show);
  byId("words").checked = state.words;
  fill(byId("pairs"), FILTERS.map(([value, label]) => [value, label]), state.pairs);
  syncSearchControls(state);
  writeUrl();
  refitOnThemeChange(app, ".as-ctok");
  onThemeChange(() => redraw()); // the theme's head colours, the tokens' labels fitted again
  void atlas.load();
  await loadAttention();
}

void boot();
