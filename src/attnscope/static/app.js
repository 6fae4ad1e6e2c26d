// @ts-check
/**
 * The explorer app's page logic: reads the state from the URL, asks the API for attention and
 * searches, and hands the results to the attention panel (the notebook's head view, app_head_view.js),
 * the search panel (app_search_panel.js) and the head atlas panel (app_atlas_panel.js). Every change is
 * written back to the URL (history.replaceState): nothing reloads the page, and a link rebuilds the
 * view, search included. The page root exposes progress for tests and benchmarks:
 * #app[data-attention] (idle | loading | ready | error) and data-loads (attention responses drawn),
 * #app[data-aggregation] (the same, for a response asked for what Show draws) and data-aggregations
 * (responses drawn that carried an aggregation), #results[data-state] (the same) and data-searches,
 * #atlas[data-state] (idle | loading | computing | ready | error) and #app[data-stack] (the attention
 * stack drawn). "Compare with" (app_compare.js) shows the text through a second model with the diff view. What a link asks for that cannot be shown is dropped, listed in #link-notice and left
 * out of the URL (app_links.js); the rest of the link still applies. The entry of the app's bundle
 * (static/bundles/app.js, js/build.mjs), which app.html loads and `attnscope serve` serves; it runs the
 * page on import.
 */

import { FILTERS, make } from "./common.js";
import { onThemeChange, refitOnThemeChange } from "./contrast.js";
import { createAtlasPanel } from "./app_atlas_panel.js";
import { createCorpusBuild } from "./app_corpus_build.js";
import { checkCausalMask, checkContinuation, continueRequest, syncContinue, wireContinue } from "./app_decoder.js";
import { fieldLabel } from "./app_corpus.js";
import { createComparePanel } from "./app_compare.js";
import { createAttentionPanel, inputOf, showPredictionsTip } from "./app_head_view.js";
import { refusedAtLength, showLength } from "./app_long_view.js";
import { checkLinkMask, checkServed, checkToken, showDropped } from "./app_links.js";
import { matchPatch, syncSearchControls, wireSearchControls } from "./app_search.js";
import { createSearchPanel } from "./app_search_panel.js";
import { api, ApiFailure, dropped, queryFromState, SPAN_MAX, stateFromQuery } from "./app_state.js";
/** @import { AttentionData } from "./app_head_view.js" */
/** @import { Dropped } from "./app_links.js" */
/** @import { AppState } from "./app_state.js" */

const EXAMPLE = "The girl ran to a local pub to escape the din of her city.";
const RAW_HELP = "Each head's attention weights: how much each token (left) takes from each token (right).";
const WORDS_HELP = " Between words: attention to a word is the sum over its tokens, from a word the mean (Clark et al. 2019).";
const NORM_HELP = " Each row is scaled to sum to 1 (these are lengths, not probabilities).";

/**
 * The page: its state, what the server serves, the loaded input and its predictions, and the panels.
 * @typedef {{ app: HTMLElement, state: AppState, models: any[], corpora: any[], attention: AttentionData | null,
 *   predictions: any[] | null, predictionsNote: string, predictionsMode: string, run: number, focusAfterLoad: boolean,
 *   maskFromLink: boolean, panel: ReturnType<typeof createAttentionPanel>, search: any, atlas: any, build: any, continuation: any,
 *   compare: ReturnType<typeof createComparePanel> }} Page
 */

/** @param {string} id @returns {any} */
function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`attnscope: the page has no #${id}`);
  return el;
}

/** @param {Page} p */
const modelInfo = (p) => p.models.find((m) => m.name === p.state.model || m.aliases.includes(p.state.model)) ?? null;
/** @param {Page} p */
function corporaOfModel(p) {
  const info = modelInfo(p);
  return p.corpora.filter((c) => info && (c.model === info.name || info.aliases.includes(c.model)));
}
/** @param {Page} p */
const corpusInfo = (p) => corporaOfModel(p).find((c) => c.name === p.state.corpus) ?? null;
/** The selected heads that exist in the loaded attention (all of them when none were chosen). @param {Page} p */
function selectedHeads(p) {
  const count = p.attention?.heads ?? modelInfo(p)?.heads ?? 0;
  return (p.state.heads ?? [...Array(count).keys()]).filter((h) => h < count);
}
/** What Show draws, as /api/models describes it for this model. @param {Page} p */
const shownMethod = (p) => (modelInfo(p)?.aggregations ?? []).find((/** @type {any} */ a) => a.name === p.state.show) ?? null;

/** @param {string} message */
const say = (message) => { byId("status").textContent = message; };
/** List parameters of the link that were not applied in the page's notice. @param {Dropped[]} drops */
const notice = (drops) => showDropped(byId("link-notice"), byId("link-dropped"), drops);
/** @param {Page} p */
const writeUrl = (p) => history.replaceState(null, "", queryFromState(p.state));

/** @param {HTMLSelectElement} select @param {Array<[string, string]>} options @param {string} value */
function fill(select, options, value) {
  select.replaceChildren(...options.map(([v, label]) => {
    const option = /** @type {HTMLOptionElement} */ (make("option", "", label));
    option.value = v;
    return option;
  }));
  select.value = value;
}

/** The model, corpus, Show and summary selectors for what the server serves. @param {Page} p */
function fillSelectors(p) {
  const info = modelInfo(p);
  fill(byId("model"), p.models.map((m) => [m.name, m.name]), info?.name ?? "");
  const own = corporaOfModel(p);
  fill(byId("corpus"), own.length ? own.map((c) => [c.name, `${c.name} (${c.tokens.toLocaleString("en")} tokens)`])
    : [["", "(none for this model)"]], p.state.corpus);
  const shape = info ? `${info.layers} layers × ${info.heads} heads` : "";
  byId("model-note").textContent = !info ? "" : (info.kind === "encoder-decoder" ? `encoder-decoder · encoder: ${shape}` : shape) +
    (info.has_lm_head ? "" : " · no language-model head");
  fill(byId("show"), (info?.aggregations ?? []).map((/** @type {any} */ a) => [a.name, a.label]), p.state.show);
  /** @type {string[]} */
  const fields = corpusInfo(p)?.fields ?? [];
  const labels = fields.map((f) => /** @type {[string, string]} */ ([f, fieldLabel(f, corpusInfo(p)?.silver)]));
  fill(byId("summary-field"), labels, p.state.field || fields[0] || "");
  fill(byId("cols-field"), labels, p.state.cols || fields[0] || "");
  p.compare.fill();
}

/** @param {Page} p */
function fillLayers(p) {
  const count = p.attention?.layers ?? modelInfo(p)?.layers ?? 0;
  const select = byId("layer");
  if (select.options.length !== count) fill(select, [...Array(count).keys()].map((l) => [String(l), String(l)]), "");
  select.value = String(Math.min(p.state.layer, Math.max(0, count - 1)));
}

/** The page's controls as the state says. @param {Page} p */
function syncControls(p) {
  const { state } = p;
  byId("top-share").value = String(Math.round(state.topShare * 100));
  byId("top-share-value").textContent = `${Math.round(state.topShare * 100)}%`;
  byId("hide-special").checked = state.hideSpecial;
  byId("show").value = state.show;
  byId("words").checked = state.words;
  byId("pairs").value = state.pairs;
  syncSearchControls(state);
}

/** Redraw what depends on the state without asking the server: the attention view, Show's help, the notes. @param {Page} p */
function redraw(p) {
  p.panel.sync(p.state);
  const method = shownMethod(p);
  byId("show-help").textContent = (p.state.show === "raw" ? RAW_HELP : method ? `${method.about[0].toUpperCase()}${method.about.slice(1)}.` : "") +
    (method?.norm ? NORM_HELP : "") + (p.state.words ? WORDS_HELP : "");
  byId("attention-empty").textContent = p.attention && selectedHeads(p).length === 0
    ? "No heads selected: pick heads above (or All) to see their attention." : "";
  p.search.sync();
  syncContinue(p.state, modelInfo(p), p.continuation);
  const masking = modelInfo(p)?.masking_note, note = byId("mask-note");
  note.textContent = masking ? masking[0].toUpperCase() + masking.slice(1) : ""; // a sentence, as shown
  note.hidden = !masking || p.state.mask.length === 0;
}

/** Whether the shown payload lacks what Show draws (or was made of other heads): a new one is asked for. @param {Page} p */
function needsPayload(p) {
  return p.attention !== null && !p.panel.carries(p.state.show, selectedHeads(p))
    && !(shownMethod(p) && !shownMethod(p).per_head && selectedHeads(p).length === 0);
}

/** Apply a change to the state, write the URL, and redo what depends on it. @param {Page} p @param {Partial<AppState>} patch */
function update(p, patch) {
  const before = p.state;
  p.state = { ...p.state, ...patch };
  const state = p.state;
  const inputChanged = ["model", "text", "pair", "gen", "seed"].some((k) => /** @type {any} */ (before)[k] !== /** @type {any} */ (state)[k])
    || before.mask.join() !== state.mask.join();
  if (inputChanged && !("token" in patch)) state.token = null;
  if (inputChanged && !("gen" in patch)) Object.assign(state, { gen: 0, seed: null }); // a new input: no continuation
  if (state.token === null) state.search = "";
  writeUrl(p);
  syncControls(p);
  if (before.model !== state.model) void p.build.check(); // a model without a corpus may get one built
  if (before.corpus !== state.corpus || before.atlas !== state.atlas) void p.atlas.load();
  else p.atlas.follow();
  void p.compare.load(); // asks the server only when the text or either model changed
  if (inputChanged) {
    void loadAttention(p, "input");
    return;
  }
  fillLayers(p);
  redraw(p);
  if (needsPayload(p)) void loadAttention(p, "aggregation");
  const searchChanged = ["layer", "token", "corpus", "search", "words", "top", "filter", "perSentence", "scoring", "rerank"]
    .some((k) => /** @type {any} */ (before)[k] !== /** @type {any} */ (state)[k])
    || String(before.heads) !== String(state.heads);
  if (state.search && searchChanged) void p.search.search();
  else if (!state.search) p.search.clear();
  else if (p.search.hasResult()) p.search.render();
}

/** The request for the input's attention, with what Show draws when it is not the raw weights. @param {Page} p @param {any} info */
function attentionRequest(p, info) {
  const { state } = p, method = shownMethod(p);
  const carried = method && method.name !== "raw" ? [method.name] : [];
  const combined = method && !method.per_head && carried.length ? { heads: selectedHeads(p) } : {};
  return { model: info.name, text: state.text, mask: state.mask, ...(state.pair ? { text_pair: state.pair } : {}),
    aggregations: carried, ...combined };
}

/**
 * Ask for the input's attention (`reason` "input": a new input, "aggregation": what Show draws) and draw
 * it; a link's mask is checked against the input before it is sent. @param {Page} p @param {string} reason
 */
async function loadAttention(p, reason) {
  const run = ++p.run, info = modelInfo(p), { app } = p;
  if (!info || !p.state.text.trim()) {
    p.attention = null;
    p.panel.unmount(); // nothing of an earlier input stays on screen
    app.dataset.attention = "idle";
    return;
  }
  app.dataset[reason === "input" ? "attention" : "aggregation"] = "loading";
  if (reason === "input") say("");
  notice(checkCausalMask(p.state, info));
  try {
    if (p.maskFromLink && p.state.mask.length) {
      const checked = await checkLinkMask(p.state, info.name);
      if (run !== p.run) return;
      if (checked) notice(checked.drops);
      if (checked) p.state.mask = checked.keep;
    }
    p.maskFromLink = false;
    notice(checkContinuation(p.state, info));
    const request = attentionRequest(p, info);
    const response = p.state.gen > 0 ? await api("/api/continue", continueRequest(p.state, request))
      : await api("/api/attention", request);
    if (run !== p.run) return;
    drawResponse(p, response, info);
  } catch (error) {
    if (run !== p.run) return;
    loadFailed(p, error, reason);
  }
}

/** Draw a new response: the input, its predictions, the view; then the search. @param {Page} p @param {any} response @param {any} info */
function drawResponse(p, response, info) {
  const { app } = p;
  p.attention = inputOf(response);
  p.predictions = response.predictions;
  p.predictionsNote = response.predictions_note ?? "";
  p.predictionsMode = response.predictions_mode ?? "";
  p.continuation = response.generated ? response : null;
  showStack(p, response.stack, info);
  notice(checkToken(p.state, p.attention));
  if (p.state.layer >= p.attention.layers) p.state.layer = p.attention.layers - 1;
  byId("pairs-label").hidden = !p.attention.segments.includes(1);
  writeUrl(p);
  fillLayers(p);
  showLength(response); // a long input: what needs every weight is off, saying why
  p.panel.show(response, p.state);
  redraw(p);
  app.dataset.attention = app.dataset.aggregation = "ready";
  app.dataset.loads = String(Number(app.dataset.loads ?? 0) + 1);
  if (response.payload.header.stacks.some((/** @type {any} */ s) => Object.keys(s.aggregations ?? {}).length)) {
    app.dataset.aggregations = String(Number(app.dataset.aggregations ?? 0) + 1);
  }
  if (p.focusAfterLoad) /** @type {HTMLElement | null} */ (byId("attention").querySelector(".attnscope-hv-queries .attnscope-hv-pinned"))?.focus();
  p.focusAfterLoad = false;
  if (p.state.search) void p.search.search();
  else p.search.clear();
}

/** A failed request: a refused link mask is dropped and the input asked again; else the error is said. @param {Page} p @param {any} error @param {string} reason */
function loadFailed(p, error, reason) {
  if (error instanceof ApiFailure && error.field?.startsWith("mask") && p.state.mask.length > 0) {
    notice([dropped("mask", p.state.mask.join(","), error.message)]); // refused although checked: dropped whole
    p.state.mask = [];
    writeUrl(p);
    void loadAttention(p, "input");
    return;
  }
  if (error instanceof ApiFailure && refusedAtLength(error) && p.state.show !== "raw") {
    notice([dropped("show", p.state.show, error.message)]); // a long input: its raw attention instead, saying why
    p.state.show = "raw";
    writeUrl(p);
    syncControls(p);
    void loadAttention(p, "input");
    return;
  }
  if (reason === "input") {
    p.attention = null;
    p.panel.unmount();
    p.app.dataset.attention = "error";
    say(error instanceof ApiFailure ? `Could not show attention: ${error.message}` : String(error));
  } else {
    p.app.dataset.aggregation = "error";
    const label = shownMethod(p)?.label ?? p.state.show;
    say(error instanceof ApiFailure ? `Could not show ${label}: ${error.message}` : String(error));
  }
}

/**
 * Say which attention stack the view draws: an encoder-decoder's encoder (its decoder and cross-attention
 * need a target text, which the explorer does not take), or a causal decoder's.
 * @param {Page} p @param {string} stack the response's ("encoder" or "decoder") @param {any} info the model's GET /api/models entry
 */
function showStack(p, stack, info) {
  const seq2seq = info.kind === "encoder-decoder";
  p.app.dataset.stack = stack;
  byId("attention-stack").textContent = seq2seq ? "(the encoder's self-attention)"
    : stack === "decoder" ? "(decoder self-attention, causal)" : "(encoder self-attention)";
  byId("stack-note").textContent = seq2seq ? "This model is an encoder-decoder: this is its encoder's self-attention " +
    "over the sentence. Its decoder's self-attention and its cross-attention need a target text (the decoder's input), " +
    "which the explorer does not take: show them in a notebook with attnscope.model_view(attnscope.capture(model, " +
    "text, target=…))." : stack === "decoder" ? "A causal decoder: each token attends only to itself and the tokens before it." : "";
}

/** Mask the tokens at `positions` (a token, or a word's tokens), or unmask them if all are masked. @param {Page} p @param {number[]} positions */
function toggleMask(p, positions) {
  const info = modelInfo(p), attention = p.attention;
  if (!attention || !info) return;
  const pos = positions[0];
  if (info.masking_refused) {
    say(info.masking_refused[0].toUpperCase() + info.masking_refused.slice(1) + "."); // a causal model: never masked
    return;
  }
  if (attention.special[pos]) {
    say(`"${attention.tokens[pos]}" is a special token: only ordinary tokens can be masked.`);
    return;
  }
  if (!info.mask_token) {
    say(`Model ${info.name} has no mask token, so tokens cannot be masked.`);
    return;
  }
  const mask = p.state.mask, unmask = positions.every((t) => mask.includes(t));
  const next = unmask ? mask.filter((t) => !positions.includes(t)) : [...new Set([...mask, ...positions])].sort((a, b) => a - b);
  update(p, { mask: next, token: pos, search: p.state.search });
}

/**
 * Open a match's sentence in the attention view, its matched token selected: a new history entry,
 * so Back returns to the search; the search's entry remembers the match's rank, so that Back gives
 * the keyboard focus back to it. @param {Page} p @param {any} match @param {number} rank
 */
function openMatch(p, match, rank) {
  history.replaceState({ opened: rank }, "", location.href);
  history.pushState(null, "", location.href);
  p.focusAfterLoad = true;
  byId("text").value = match.text;
  byId("pair").value = "";
  update(p, matchPatch(match));
  byId("attention").scrollIntoView({ block: "nearest" });
}

/** The attention panel, its clicks, masks, head toggles and hovers going to the page. @param {Page} p */
function attentionPanel(p) {
  const tooltip = byId("tooltip");
  return createAttentionPanel(byId("attention"), {
    onSelect: (tokens) => update(p, { token: tokens[0] }),
    onMask: (tokens) => toggleMask(p, tokens),
    onHeads: (heads) => update(p, { heads }),
    onHover: (tokens, el) => showPredictionsTip(tooltip, tokens === null || !el || !p.attention ? null : {
      attention: p.attention, predictions: p.predictions, mode: p.predictionsMode, note: p.predictionsNote, pos: tokens[0], el }),
  });
}

/** Wire the input form and the model and corpus selectors. @param {Page} p */
function wireInput(p) {
  byId("input").addEventListener("submit", (/** @type {Event} */ event) => {
    event.preventDefault();
    const text = byId("text").value, pair = byId("pair").value.trim() ? byId("pair").value : "";
    if (!text.trim()) {
      say("The sentence is empty: type a sentence to see its attention.");
      return;
    }
    if (text === p.state.text && pair === p.state.pair) void loadAttention(p, "input");
    else update(p, { text, pair, mask: [], token: null });
  });
  byId("model").addEventListener("change", () => {
    const model = byId("model").value;
    const info = p.models.find((m) => m.name === model);
    const corpus = p.corpora.find((c) => info && (c.model === info.name || info.aliases.includes(c.model)))?.name ?? "";
    const show = (info?.aggregations ?? []).some((/** @type {any} */ a) => a.name === p.state.show) ? p.state.show : "raw";
    update(p, { model, corpus, mask: [], token: null, show });
    fillSelectors(p);
  });
  wireContinue(() => p.state, (patch) => update(p, patch));
  byId("corpus").addEventListener("change", () => {
    update(p, { corpus: byId("corpus").value });
    fillSelectors(p);
  });
}

/** Wire the attention controls (layer, Show, words, sentences, top share, special tokens, Escape). @param {Page} p */
function wireView(p) {
  byId("layer").addEventListener("change", () => update(p, { layer: Number(byId("layer").value) }));
  byId("show").addEventListener("change", () => update(p, { show: byId("show").value }));
  byId("words").addEventListener("change", () => update(p, { words: byId("words").checked }));
  byId("pairs").addEventListener("change", () => update(p, { pairs: byId("pairs").value }));
  byId("top-share").addEventListener("input", () => update(p, { topShare: Number(byId("top-share").value) / 100 }));
  byId("hide-special").addEventListener("change", () => {
    const hideSpecial = byId("hide-special").checked, a = p.attention; // a hidden special token cannot stay selected
    const hidden = hideSpecial && a !== null && p.state.token !== null && a.special[p.state.token];
    update(p, { hideSpecial, ...(hidden ? { token: null } : {}) });
  });
  byId("atlas").addEventListener("attnscope-atlas-open", (/** @type {any} */ event) => {
    update(p, { layer: event.detail.layer, heads: [event.detail.head] });
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    byId("tooltip").hidden = true;
    if (!(event.target instanceof HTMLInputElement) && p.state.token !== null) update(p, { token: null });
  });
}

/** Wire the search and corpus columns, the atlas toggle, the notice and Back / Forward. @param {Page} p */
function wirePanels(p) {
  wireSearchControls((patch) => ("filter" in patch ? p.search.setFilter(patch.filter ?? "") : update(p, patch)));
  byId("summary-field").addEventListener("change", () => update(p, { field: byId("summary-field").value }));
  byId("cols-field").addEventListener("change", () => update(p, { cols: byId("cols-field").value }));
  byId("cols-narrow").addEventListener("click", () => update(p, { span: Math.max(0, p.state.span - 1) }));
  byId("cols-wider").addEventListener("click", () => update(p, { span: Math.min(SPAN_MAX, p.state.span + 1) }));
  byId("atlas-toggle").addEventListener("click", () => update(p, { atlas: !p.state.atlas }));
  byId("link-notice-close").addEventListener("click", () => {
    byId("link-notice").hidden = true;
    byId("link-dropped").replaceChildren();
  });
  // Back and Forward (after a match was opened) show the view their URL holds, search included, and
  // give the focus back to the match that was opened from it.
  window.addEventListener("popstate", (event) => {
    const next = stateFromQuery(location.search);
    const opened = event.state?.opened;
    p.search.focusAfterSearch(Number.isInteger(opened) ? opened : null);
    p.search.unmarkFilter();
    p.maskFromLink = next.mask.length > 0;
    byId("text").value = next.text || EXAMPLE;
    byId("pair").value = next.pair;
    const served = p.models.some((m) => m.name === next.model || m.aliases.includes(next.model));
    update(p, { ...next, text: next.text || EXAMPLE, model: served ? next.model : p.state.model, corpus: next.corpus || p.state.corpus });
    fillSelectors(p);
  });
}

/** The page with its panels, its state read from the URL (what it cannot read is listed in `drops`). @param {Dropped[]} drops @returns {Page} */
function createPage(drops) {
  /** @type {Page} */
  const p = {
    app: byId("app"), state: stateFromQuery(location.search, drops), models: [], corpora: [], attention: null,
    predictions: null, predictionsNote: "", predictionsMode: "", run: 0, focusAfterLoad: false, maskFromLink: false,
    panel: /** @type {any} */ (null), search: null, atlas: null, build: null, continuation: null, compare: /** @type {any} */ (null),
  };
  p.maskFromLink = p.state.mask.length > 0; // a link's mask is checked against the input before it is sent
  p.panel = attentionPanel(p);
  p.compare = createComparePanel({ state: () => p.state, model: () => modelInfo(p), models: () => p.models,
    choose: (compare) => update(p, { compare }) });
  p.search = createSearchPanel({
    state: () => p.state, attention: () => p.attention, corpus: () => corpusInfo(p), heads: () => selectedHeads(p),
    update: (patch) => update(p, patch), open: (match, rank) => openMatch(p, match, rank),
  });
  p.atlas = createAtlasPanel({
    state: () => p.state, corpus: () => corpusInfo(p), head: () => {
      const heads = selectedHeads(p); // the head the atlas marks: the shown layer's one selected head
      return heads.length === 1 ? [p.state.layer, heads[0]] : null;
    },
    setScore: (score) => update(p, { score }), dropScore: () => { p.state.score = ""; writeUrl(p); },
    notice: (dropped) => notice(dropped), say: (message) => say(message),
  });
  p.build = createCorpusBuild({
    model: () => modelInfo(p)?.name ?? "", hasCorpus: () => corporaOfModel(p).length > 0,
    ready: (corpora, corpus) => { // the model's corpus is built: select it
      p.corpora = corpora;
      update(p, { corpus });
      fillSelectors(p);
    },
  });
  return p;
}

async function boot() {
  /** @type {Dropped[]} */
  const drops = [];
  const p = createPage(drops);
  wireInput(p);
  wireView(p);
  wirePanels(p);
  try {
    [p.models, p.corpora] = await Promise.all([api("/api/models"), api("/api/corpora")]);
  } catch (error) {
    say(error instanceof ApiFailure ? error.message : String(error));
    p.app.dataset.attention = "error";
    return;
  }
  notice([...drops, ...checkServed(p.state, p.models, p.corpora)]);
  if (!modelInfo(p)) p.state.model = p.models[0]?.name ?? "";
  if (!corpusInfo(p)) p.state.corpus = corporaOfModel(p)[0]?.name ?? "";
  if (!p.state.text) p.state.text = EXAMPLE;
  byId("text").value = p.state.text;
  byId("pair").value = p.state.pair;
  fillSelectors(p);
  fill(byId("pairs"), FILTERS.map(([value, label]) => [value, label]), p.state.pairs);
  syncControls(p);
  writeUrl(p);
  refitOnThemeChange(p.app, ".as-ctok");
  onThemeChange(() => redraw(p)); // the theme's head colours, the tokens' labels fitted again
  void p.atlas.load();
  void p.build.check();
  void p.compare.load();
  await loadAttention(p, "input");
}

void boot();
