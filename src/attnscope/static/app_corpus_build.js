// @ts-check
/**
 * The explorer app's corpus built on first use: a served model without a corpus may be offered one that
 * the server indexes in the background when first asked (`GET /api/corpus-build?model=…`, e.g. SmolLM2's
 * UD English EWT index). When the model has no corpus, `check` asks; while the server reads and indexes
 * the corpus the search panel shows its progress (#corpus-build, asked again every second, as the head
 * atlas's progress is shown), and once it is ready the page gets the new corpus list and selects the
 * corpus (`host.ready`). #corpus-build[data-state] is idle | none | reading | indexing | ready | failed | error.
 */

import { api, ApiFailure } from "./app_state.js";

const BUILD_POLL_MS = 1000;

/**
 * What the build asks of the page: the served model's name, whether it has a corpus already, and
 * `ready` (the corpora the server lists now, and the name of the one just built).
 * @typedef {{ model: () => string, hasCorpus: () => boolean, ready: (corpora: any[], corpus: string) => void }} BuildHost
 */

/** @param {string} id @returns {any} */
function part(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`attnscope: the page has no #${id}`);
  return el;
}

/**
 * The progress line of a build: reading the corpus, or tokens indexed so far, and the layers it stores.
 * @param {any} answer the body of GET /api/corpus-build
 */
export function buildProgressText(answer) {
  const layers = answer.layers ? ` (layers ${answer.layers.join(", ")})` : "";
  if (answer.status === "reading") return `Reading and annotating corpus ${answer.corpus} for ${answer.model}…`;
  const total = answer.total ? answer.total.toLocaleString("en") : "?";
  return `Indexing corpus ${answer.corpus} for ${answer.model}${layers}: ${answer.done.toLocaleString("en")} of ${total} tokens`;
}

/** @param {BuildHost} host */
export function createCorpusBuild(host) {
  let run = 0, timer = 0;

  /** Show where the model's corpus build stands, starting it on the server if it has not started. */
  async function check() {
    const id = ++run;
    clearTimeout(timer);
    const box = part("corpus-build"), model = host.model();
    if (!model || host.hasCorpus()) {
      box.hidden = true;
      box.dataset.state = "idle";
      return;
    }
    try {
      const answer = await api(`/api/corpus-build?model=${encodeURIComponent(model)}`);
      if (id !== run) return;
      box.dataset.state = answer.status;
      box.hidden = answer.status === "none" || answer.status === "ready";
      if (answer.status === "failed") {
        part("corpus-build-bar").hidden = true;
        part("corpus-build-text").textContent = `The corpus index could not be built: ${answer.message}`;
      } else if (answer.status === "ready") {
        const corpora = await api("/api/corpora");
        if (id === run) host.ready(corpora, answer.corpus);
      } else if (answer.status !== "none") {
        const bar = part("corpus-build-bar");
        bar.hidden = false;
        if (answer.total) bar.value = answer.done / answer.total;
        else bar.removeAttribute("value"); // indeterminate while the corpus is read
        part("corpus-build-text").textContent = buildProgressText(answer);
        timer = window.setTimeout(() => void check(), BUILD_POLL_MS);
      }
    } catch (error) {
      if (id !== run) return;
      box.hidden = false;
      box.dataset.state = "error";
      part("corpus-build-bar").hidden = true;
      part("corpus-build-text").textContent = error instanceof ApiFailure
        ? `Could not ask for the corpus index: ${error.message}` : String(error);
    }
  }

  return { check };
}
