// @ts-check
/**
 * The explorer app's Continue for a causal decoder: the controls that generate tokens after the text (greedy, or
 * sampled with a seed), the request that asks for them (`POST /api/continue`, which answers as `POST
 * /api/attention` does for prompt plus continuation: the head view marks the generated tokens) and what the page
 * says about them. The continuation lives in the URL as gen (tokens generated) and seed (absent: greedy), so a
 * link shows the same tokens again; Continue once more generates the next tokens of the same run (gen grows:
 * greedy decoding and a seeded sampler give the same first tokens again). Imported by app.js.
 */

import { dropped, GEN_MAX } from "./app_state.js";
/** @import { AppState } from "./app_state.js" */
/** @import { Dropped } from "./app_links.js" */

/** @param {string} id @returns {any} */
function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`attnscope: the page has no #${id}`);
  return el;
}

/** Whether the model (its GET /api/models entry) can continue a text: a causal decoder with a language-model head. @param {any} info */
export const canContinue = (info) => !!info && info.kind === "decoder" && info.has_lm_head;

/**
 * The `POST /api/continue` body for the state's continuation, on top of the attention request's own fields.
 * @param {AppState} state @param {any} attention the attention request (model, text, aggregations, heads)
 */
export function continueRequest(state, attention) {
  const { model, text, aggregations, heads } = attention;
  return { model, text, aggregations, ...(heads ? { heads } : {}), max_new_tokens: state.gen,
    do_sample: state.seed !== null, ...(state.seed !== null ? { seed: state.seed } : {}) };
}

/** What a link's continuation cannot be for this model (dropped), or nothing. @param {AppState} state @param {any} info */
export function checkContinuation(state, info) {
  if (state.gen === 0 || canContinue(info)) return [];
  /** @type {Dropped[]} */
  const drops = [dropped("gen", String(state.gen), `model ${info?.name ?? state.model} is not a causal decoder with a language-model head, so it cannot continue a text`)];
  state.gen = 0;
  state.seed = null;
  return drops;
}

/** A link's mask for a causal model, dropped with the reason before anything is asked. @param {AppState} state @param {any} info */
export function checkCausalMask(state, info) {
  if (!state.mask.length || !info?.masking_refused) return [];
  const drops = [dropped("mask", state.mask.join(","), info.masking_refused)];
  state.mask = [];
  return drops;
}

/**
 * Wire the Continue controls: Continue asks for the number of tokens typed more (greedy, or sampled with the seed
 * typed; a change of how restarts the continuation), and "Back to the prompt" drops it.
 * @param {() => AppState} state @param {(patch: Partial<AppState>) => void} update
 */
export function wireContinue(state, update) {
  const how = byId("continue-how"), seed = byId("continue-seed");
  how.addEventListener("change", () => { seed.hidden = how.value !== "sample"; });
  byId("continue").addEventListener("click", () => {
    const n = Math.round(Number(byId("continue-n").value));
    if (!(n >= 1 && n <= GEN_MAX)) {
      byId("continue-note").textContent = `Continue generates 1 to ${GEN_MAX} tokens at a time.`;
      return;
    }
    const s = state(), chosen = how.value === "sample" ? Math.max(0, Math.round(Number(seed.value) || 0)) : null;
    const gen = (chosen === s.seed ? s.gen : 0) + n;
    update({ gen, seed: chosen, token: s.token });
  });
  byId("continue-clear").addEventListener("click", () => update({ gen: 0, seed: null, token: null }));
}

/**
 * Show the Continue controls for a causal model (hidden otherwise), set as the state says, and say what the shown
 * continuation is. @param {AppState} state @param {any} info @param {any} response the drawn response, if any
 */
export function syncContinue(state, info, response) {
  const bar = byId("continue-bar");
  bar.hidden = !canContinue(info);
  if (bar.hidden) return;
  byId("continue-how").value = state.seed === null ? "greedy" : "sample";
  byId("continue-seed").hidden = state.seed === null;
  if (state.seed !== null) byId("continue-seed").value = String(state.seed);
  byId("continue-clear").disabled = state.gen === 0;
  byId("continue").disabled = !!state.pair;
  byId("continue").title = state.pair ? "Continue takes one text: clear the second sentence" : "";
  const generated = response?.generated?.length ?? 0;
  const how = state.seed === null ? "greedy" : `sampled with seed ${state.seed}`;
  byId("continue-note").textContent = !state.gen || !response?.generated ? "" : generated === state.gen
    ? `${generated} tokens generated (${how}), shown in italics after the text.`
    : `${generated} of ${state.gen} tokens generated (${how}): the model ended its text.`;
}
