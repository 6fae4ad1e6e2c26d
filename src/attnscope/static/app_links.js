// @ts-check
/**
 * What a link (the URL's state) asks for that this server or this input cannot show: an unknown
 * model (the compare= model too), corpus or field, something Show cannot draw for the model, a filter on a field the corpus does not have, a layer, head, token or mask
 * position out of range, a search for a special token (the index holds none), a special token
 * selected while special tokens are hidden. Each such parameter is dropped from the state (the rest
 * still applies) and reported in words by `dropped` (app_state.js), "layer=40 was ignored: this model
 * has layers 0-5"; the page lists them in its notice (`showDropped`) and writes the URL again without
 * them. Syntax (numbers, lists, switches, an empty text) is checked when the URL is read
 * (`stateFromQuery`); these checks need /api/models and /api/corpora, or the input's tokens, which a
 * link's mask is checked against before the masked input is asked for (`checkLinkMask`).
 */

import { make } from "./common.js";
import { inputOf } from "./app_head_view.js";
import { filterProblem } from "./app_search_panel.js";
import { api, dropped } from "./app_state.js";
/** @import { AppState } from "./app_state.js" */

/** @typedef {{ name: string, text: string }} Dropped */

/** @param {any[]} models @param {string} name */
function findModel(models, name) {
  return models.find((m) => m.name === name || m.aliases.includes(name)) ?? null;
}

/** @param {number} count @param {string} what "layers" */
function range(count, what) {
  return count === 1 ? `${what} 0 only` : `${what} 0-${count - 1}`;
}

/**
 * Check `state` against what the server serves; what does not fit is reset in `state` and returned.
 * @param {AppState} state changed in place
 * @param {any[]} models GET /api/models @param {any[]} corpora GET /api/corpora
 * @returns {Dropped[]}
 */
export function checkServed(state, models, corpora) {
  /** @type {Dropped[]} */
  const drops = [];
  if (state.model && !findModel(models, state.model)) {
    const served = models.map((m) => m.name).join(", ");
    const shown = models[0]?.name ?? "nothing";
    drops.push(dropped("model", state.model, `it is not served here (this server serves ${served}); showing ${shown}`));
    state.model = "";
  }
  if (state.compare && !findModel(models, state.compare)) {
    drops.push(dropped("compare", state.compare, `it is not served here (this server serves ${models.map((m) => m.name).join(", ")})`));
    state.compare = "";
  }
  const info = findModel(models, state.model || models[0]?.name || "");
  if (!info) return drops;
  const own = corpora.filter((c) => c.model === info.name || info.aliases.includes(c.model));
  const corpus = own.find((c) => c.name === state.corpus) ?? null;
  if (state.corpus && !corpus) {
    const other = corpora.find((c) => c.name === state.corpus);
    const served = own.length ? `corpora of ${info.name}: ${own.map((c) => c.name).join(", ")}`
      : `no corpus is served for ${info.name}`;
    drops.push(dropped("corpus", state.corpus, other ? `it was indexed with model ${other.model}, not ${info.name}`
      : `it is not served here (${served})`));
    state.corpus = "";
  }
  if (state.mask.length && (info.masking_refused || !info.mask_token)) { // a causal model's reason first
    drops.push(dropped("mask", state.mask.join(","), info.masking_refused ?? `model ${info.name} has no mask token, so tokens cannot be masked`));
    state.mask = [];
  }
  const shows = (info.aggregations ?? []).map((/** @type {any} */ a) => a.name);
  if (!shows.includes(state.show)) {
    drops.push(dropped("show", state.show, `the attention view shows ${shows.join(", ")}`));
    state.show = "raw";
  }
  if (state.layer >= info.layers) {
    drops.push(dropped("layer", String(state.layer), `this model has ${range(info.layers, "layers")}`));
    state.layer = 0;
  }
  if (state.heads) {
    const heads = state.heads;
    const outside = heads.filter((h) => h >= info.heads);
    if (outside.length) {
      drops.push(dropped("heads", heads.join(","), `${outside.length > 1 ? "heads" : "head"} ${outside.join(", ")}: ` +
        `this model has ${range(info.heads, "heads")}`));
      const kept = heads.filter((h) => h < info.heads);
      state.heads = kept.length ? kept : null; // none left: every head, as without the parameter
    }
  }
  const served = corpus ?? own[0] ?? null;
  const problem = state.filter ? filterProblem(state.filter, served) : "";
  if (problem) {
    drops.push(dropped("filter", state.filter, problem));
    state.filter = "";
  }
  const fields = served?.fields;
  for (const key of /** @type {const} */ (["field", "cols"])) {
    if (state[key] && !(fields ?? []).includes(state[key])) {
      drops.push(dropped(key, state[key], fields ? `the corpus has the fields ${fields.join(", ")}`
        : `no corpus is served for ${info.name}`));
      state[key] = "";
    }
  }
  if (state.search && !own.length) {
    drops.push(dropped("search", state.search, `no corpus is served for ${info.name}`));
    state.search = "";
  } else if (state.search && state.token === null) {
    drops.push(dropped("search", state.search, "a search needs a token to search for (token=…)"));
    state.search = "";
  }
  if (state.atlas && !own.length) {
    drops.push(dropped("atlas", "open", `no corpus is served for ${info.name}, so there is no head atlas`));
    state.atlas = false;
  }
  return drops;
}

/**
 * Check the selected token against the input's tokens (after the attention has loaded): dropped when
 * out of range, or a special token while special tokens are hidden, with the search that needed it; a
 * search for a special token is dropped (the corpus index holds none), the token stays selected.
 * @param {AppState} state changed in place @param {{ n: number, special: boolean[], tokens: string[] }} input
 * @returns {Dropped[]}
 */
export function checkToken(state, input) {
  const token = state.token;
  if (token === null) return [];
  const special = token < input.n && input.special[token];
  const why = token >= input.n ? `this input has ${range(input.n, "tokens")}`
    : special && state.hideSpecial ? `it is the special token ${input.tokens[token]}, and special tokens are hidden (special=hide)`
      : "";
  if (!why && !(special && state.search)) return [];
  const drops = why ? [dropped("token", String(token), why)] : [];
  if (state.search) {
    drops.push(dropped("search", state.search, why ? "a search needs a token to search for (token=…)"
      : `token ${token} is the special token ${input.tokens[token]}, which the corpus index does not hold`));
  }
  if (why) state.token = null;
  state.search = "";
  return drops;
}

/**
 * The mask positions this input can take (ordinary tokens in range), and the others as dropped.
 * @param {number[]} mask @param {{ n: number, special: boolean[], tokens: string[] }} input the unmasked tokens
 * @returns {{ keep: number[], drops: Dropped[] }}
 */
export function checkMask(mask, input) {
  const outside = mask.filter((p) => p >= input.n);
  const special = mask.filter((p) => p < input.n && input.special[p]);
  /** @type {string[]} */
  const why = [];
  if (outside.length) {
    const which = `${outside.length > 1 ? "positions" : "position"} ${outside.join(", ")}`;
    why.push(`${which}: this input has ${range(input.n, "tokens")}`);
  }
  if (special.length) why.push(special.map((p) => `position ${p} is the special token ${input.tokens[p]}`).join(", ") +
    " (only ordinary tokens can be masked)");
  return { keep: mask.filter((p) => !outside.includes(p) && !special.includes(p)),
    drops: why.length ? [dropped("mask", mask.join(","), why.join("; "))] : [] };
}

/**
 * A link's mask checked before the masked input is asked for: the input's unmasked tokens are asked
 * for and the mask checked against them (`checkMask`), so a position out of range or on a special
 * token is named in the notice and never sent. Null if the unmasked input cannot be loaded (its
 * error is then the page's to show).
 * @param {AppState} state @param {string} model
 * @returns {Promise<{ keep: number[], drops: Dropped[] } | null>}
 */
export async function checkLinkMask(state, model) {
  const body = { model, text: state.text, ...(state.pair ? { text_pair: state.pair } : {}) };
  const input = await api("/api/attention", body).then(inputOf, () => null);
  return input && checkMask(state.mask, input);
}

/**
 * Add `drops` to the page's notice (a list under `host`'s heading) and show it; nothing when empty.
 * @param {HTMLElement} host the notice (hidden until something is dropped) @param {HTMLElement} list its list
 * @param {Dropped[]} drops
 */
export function showDropped(host, list, drops) {
  if (!drops.length) return;
  for (const d of drops) {
    const item = make("li", "", d.text);
    item.dataset.parameter = d.name;
    list.append(item);
  }
  host.hidden = false;
}
