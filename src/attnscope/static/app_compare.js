// @ts-check
/**
 * The explorer app's "compare with" control: beside the attention view, a menu of the served models (or "none").
 * Choosing one asks the server to run the same text (and second text) through that model as well
 * (`POST /api/compare`, server/compare_routes.py) and draws the answer with the diff view itself (diff_view.js on a
 * stand-in model, static_model.js): model A (the page's model), model B, A − B, the per-head distances, a head
 * against its matched head of B on click, and which positions could not be aligned when the tokenizers differ
 * (the units are then words). While a comparison is shown, #app[data-comparing=true] hides the single-model view
 * (app.css); "none" brings it back. #compare-view[data-state] is idle | loading | ready | error; a refusal is
 * said in #compare-note and nothing is drawn. Masks and a continuation are not part of a comparison (the note
 * says so when the page has them). The state's `compare` (the URL's compare=) names model B.
 */

import { make } from "./common.js";
import diffView from "./diff_view.js";
import { api, ApiFailure } from "./app_state.js";
import { createStaticModel } from "./static_model.js";
/** @import { AppState } from "./app_state.js" */

/**
 * What the control asks of the page: its state, the page's model (GET /api/models's entry, or null), every
 * served model, and `choose(name)` (the menu changed: "" for none).
 * @typedef {{ state: () => AppState, model: () => any, models: () => any[], choose: (name: string) => void }} CompareHost
 */

/** @param {CompareHost} host */
export function createComparePanel(host) {
  const part = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
  let run = 0, asked = ""; // the request last sent (answered, refused or on its way), as JSON
  /** @type {(() => void) | null} */
  let cleanup = null;

  /** The menu: "none", then every served model by its served name. */
  function fill() {
    const select = part("compare");
    const none = /** @type {HTMLOptionElement} */ (make("option", "", "none"));
    none.value = "";
    select.replaceChildren(none, ...host.models().map((m) => new Option(m.name, m.name)));
    const chosen = host.models().find((m) => m.name === host.state().compare || m.aliases.includes(host.state().compare));
    select.value = chosen?.name ?? "";
  }

  function unmount() {
    cleanup?.();
    cleanup = null;
    part("compare-view").replaceChildren();
  }

  /** Show what the state asks for: the single-model view, or the comparison of its text with model B (asked of the
   * server once per text and pair of models). */
  async function load() {
    const state = host.state(), info = host.model(), view = part("compare-view"), note = part("compare-note");
    const comparing = Boolean(state.compare && info && state.text.trim());
    part("app").dataset.comparing = String(comparing);
    view.hidden = !comparing;
    if (!comparing) {
      unmount();
      run++; // an answer on its way is dropped
      asked = "";
      note.textContent = "";
      view.dataset.state = "idle";
      return;
    }
    const request = { model: info.name, compare: state.compare, text: state.text, ...(state.pair ? { text_pair: state.pair } : {}) };
    const key = JSON.stringify(request);
    const fresh = key !== asked; // the page's other changes (layer, search, ...) ask nothing again
    if (fresh || view.dataset.state !== "error") note.textContent = state.mask.length || state.gen > 0
      ? "The comparison runs on the text as typed: masked tokens and a continuation are not part of it." : "";
    if (!fresh) return;
    const id = ++run;
    asked = key;
    view.dataset.state = "loading";
    try {
      const response = await api("/api/compare", request);
      if (id !== run) return;
      mount(response);
      view.dataset.state = "ready";
    } catch (error) {
      if (id !== run) return;
      unmount();
      view.dataset.state = "error";
      note.textContent = `Could not compare with ${state.compare}: ${error instanceof ApiFailure ? error.message : String(error)}`;
    }
  }

  /** Draw a comparison with the diff view. @param {any} response the body of POST /api/compare */
  function mount(response) {
    unmount();
    const model = createStaticModel({ header: response.payload.header, layers: response.payload.layers, mode: "diff",
      layer: null, head: null, partner: null, layout: "model", theme: "auto" });
    cleanup = diffView.render({ model, el: part("compare-view") });
  }

  part("compare").addEventListener("change", () => host.choose(part("compare").value));
  return { fill, load };
}
