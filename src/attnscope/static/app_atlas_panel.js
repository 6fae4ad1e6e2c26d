// @ts-check
/**
 * The explorer app's head atlas panel: opened or closed by the state's `atlas`, it fetches the corpus's
 * atlas (`GET /api/atlas`, asked again every second while the server computes it, with its progress
 * shown), draws it with atlas.js and marks the head the attention view shows. A click on a head in the
 * atlas reaches the page as the event "attnscope-atlas-open" (app.js). #atlas[data-state] is idle |
 * loading | computing | ready | error.
 */

import { api, ApiFailure, dropped } from "./app_state.js";
import atlasView, { scoreOptions } from "./atlas.js";
import { createStaticModel } from "./static_model.js";
/** @import { Dropped } from "./app_links.js" */
/** @import { AppState } from "./app_state.js" */

const ATLAS_POLL_MS = 1000;

/**
 * What the panel asks of the page: its state, the model's corpus, the one head shown ([layer, head],
 * null when several are), `setScore` (the atlas's score menu changed), `dropScore` (the state's score
 * is not the atlas's: leave it out), `notice` (the link notice) and `say` (the status line).
 * @typedef {{ state: () => AppState, corpus: () => any, head: () => number[] | null,
 *   setScore: (score: string) => void, dropScore: () => void, notice: (drops: Dropped[]) => void,
 *   say: (message: string) => void }} AtlasHost
 */

/** @param {AtlasHost} host */
export function createAtlasPanel(host) {
  const part = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
  let run = 0, timer = 0;
  /** @type {{ corpus: string, model: any } | null} */
  let view = null;

  /** Mark the head the attention view shows, when it shows one. */
  function follow() {
    const head = host.head();
    if (view && head) view.model.set("selected", head);
  }

  /** Open or close the panel as the state says; when open, fetch and draw the corpus's atlas. */
  async function load() {
    const id = ++run;
    clearTimeout(timer);
    const state = host.state(), frame = part("atlas"), corpus = host.corpus(), toggle = part("atlas-toggle");
    toggle.setAttribute("aria-expanded", String(state.atlas));
    toggle.textContent = state.atlas ? "Hide the head atlas" : "Show the head atlas";
    toggle.disabled = !corpus;
    part("atlas-body").hidden = !state.atlas;
    if (!state.atlas || !corpus) {
      frame.dataset.state = "idle";
      return;
    }
    if (view?.corpus === corpus.name) {
      frame.dataset.state = "ready";
      follow();
      return;
    }
    view = null;
    frame.replaceChildren();
    if (frame.dataset.state !== "computing") frame.dataset.state = "loading";
    try {
      const answer = await api(`/api/atlas?corpus=${encodeURIComponent(corpus.name)}`);
      if (id !== run) return;
      part("atlas-progress").hidden = answer.status !== "computing";
      if (answer.status === "computing") {
        part("atlas-bar").value = answer.total ? answer.done / answer.total : 0;
        part("atlas-progress-text").textContent = `Computing the atlas of ${corpus.name}: ` +
          `${answer.done.toLocaleString("en")} of ${answer.total ? answer.total.toLocaleString("en") : "?"} tokens`;
        frame.dataset.state = "computing";
        timer = window.setTimeout(() => void load(), ATLAS_POLL_MS);
        return;
      }
      if (answer.status === "failed") throw new ApiFailure(answer.message, null, 200);
      if (state.score && !scoreOptions(answer.atlas).some((o) => o.key === state.score)) {
        host.notice([dropped("score", state.score, "the head atlas has no score of that name (its menu lists them)")]);
        host.dropScore();
      }
      const model = createStaticModel({ atlas: answer.atlas, app_url: null, example_text: null,
        score: host.state().score || "previous", selected: host.head() ?? [state.layer, 0] });
      model.on("change:score", (/** @type {string} */ score) => host.setScore(score));
      atlasView.render({ model, el: frame });
      view = { corpus: corpus.name, model };
      frame.dataset.state = "ready";
    } catch (error) {
      if (id !== run) return;
      frame.dataset.state = "error";
      part("atlas-progress").hidden = true;
      host.say(error instanceof ApiFailure ? `Could not show the head atlas: ${error.message}` : String(error));
    }
  }

  return { load, follow };
}
