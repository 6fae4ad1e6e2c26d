// @ts-check
/**
 * The explorer app's corpus and summary views, drawn from one `POST /api/search` result.
 *
 * Corpus view: one row per match: rank, score (its meaning in the column's tooltip), one metadata
 * field of the words at offsets −span…+span from the matched word, and the match in its sentence.
 * The sentence reads as the corpus writes it (each token's `surface` text, spaces where the sentence
 * has them, case kept); a token that continues the previous token's word has the class
 * `continuation` and a thin mark at its left edge, so "allergies" reads as one word whose pieces still
 * show. A token with no text of its own (a later piece of a character split over several tokens, such
 * as an emoji in byte-level BPE, or a token that stands for a space) is a thin mark (`as-notext`),
 * shaded and outlined like the others, its tooltip saying what it is. Up to CONTEXT words either side of the match and of its most-attended token are shown; the
 * matched token (or word) is outlined (`.as-cmatch`, its tokens `.as-matched`; a matched piece inside
 * its word), every token shaded by the attention the match pays it (mean
 * of the searched layer's selected heads; the strongest fully shaded), its metadata in its tooltip.
 * The rows never widen the page: when the columns and a readable context do not fit on one line,
 * the context wraps below them (CSS flex-wrap), columns shrink with ellipses, and long words break.
 * A click on a match, or Enter on its link, calls `onOpen(match)`; the link's href is `hrefOf(match)`
 * (so it also opens in a new tab). Summary view: histograms of a field for the matched tokens and for
 * the tokens they attend to most, and of the offset to that token. For a causal model (the result's
 * summary has `next`) each row also has a "next" column (the field of the token after the match) and
 * the summary a histogram of it (exBERT's "Next"). All text goes in as text.
 */

import { make } from "./common.js";
import { fitLabels } from "./contrast.js";

const HISTOGRAM_BARS = 12; // bars per histogram; the rest are summed into "other"
const CONTEXT = 12; // words shown either side of the matched word and of the word it attends to most
const META_CHARS = 8; // widest metadata column, in characters (longer values end in an ellipsis)

/**
 * Whether a match's token stands for whitespace only (a byte-level "␣" token): it shows no text and
 * continues no word, so it starts no word of its own.
 * @param {any} m a match @param {number} p
 */
export function isBlank(m, p) {
  return m.surface?.[p] === "" && !m.continues?.[p] && (m.words?.[p] ?? 0) < 0;
}

/**
 * Each token's word number within the match (tokens joined by `continues` form one word; a blank
 * token goes with the word before it, so the metadata columns count words, not spaces).
 * @param {any} m a match @returns {{ wordOf: number[], starts: number[] }}
 */
export function wordsOf(m) {
  /** @type {number[]} */
  const wordOf = [];
  /** @type {number[]} */
  const starts = [];
  m.tokens.forEach((/** @type {string} */ _, /** @type {number} */ p) => {
    if (starts.length === 0 || (!m.continues?.[p] && !isBlank(m, p))) starts.push(p);
    wordOf.push(starts.length - 1);
  });
  return { wordOf, starts };
}

/**
 * A metadata value as its column shows it: UD features (`feats`) by their values only, so narrow
 * columns still tell them apart ("Mood=Ind|Number=Sing|Person=3" reads "Ind|Sing|3"; the cell's
 * tooltip has them whole); any other value as it is. @param {string} field @param {string} value
 */
export function columnValue(field, value) {
  if (field !== "feats" || !value.includes("=")) return value;
  return value.split("|").map((feature) => feature.slice(feature.indexOf("=") + 1)).join("|");
}

/**
 * A metadata field's name as the app shows it: marked silver, with the model that predicted it, when
 * the corpus says a model (not annotators) gave its values, e.g. "ner (silver, spacy en_core_web_sm 3.8.0)";
 * ``short`` leaves the model out ("ner (silver)").
 * @param {string} field @param {Record<string, string>} [silver] the corpus's field -> model (GET /api/corpora)
 * @param {boolean} [short]
 */
export function fieldLabel(field, silver, short = false) {
  const model = silver?.[field];
  return !model ? field : short ? `${field} (silver)` : `${field} (silver, ${model})`;
}

/**
 * @param {HTMLElement} host
 * @param {any} result the body of POST /api/search
 * @param {{ field: string, span: number, fields: string[], silver?: Record<string, string>, onOpen: (m: any) => void,
 *   hrefOf: (m: any) => string }} options
 */
export function renderMatches(host, result, options) {
  const offsets = [];
  for (let o = -options.span; o <= options.span; o++) offsets.push(o);
  const widest = Math.max(2, ...result.matches.flatMap((/** @type {any} */ m) => (m.metadata[options.field] ?? [])
    .map((/** @type {any} */ v) => columnValue(options.field, String(v ?? "·")).length)));
  const table = make("div", "as-matches");
  table.setAttribute("role", "table");
  table.setAttribute("aria-label", "Matches in context");
  table.style.setProperty("--as-meta-w", `${Math.min(META_CHARS, widest) + 1}ch`);
  const head = row("as-mhead");
  const score = cell("span", "as-num as-score", "score", "columnheader");
  score.title = `score: ${result.score_meaning ?? "similarity"}`;
  const next = hasNext(result);
  table.style.setProperty("--as-meta-n", String(offsets.length + (next ? 1 : 0)));
  const heads = offsets.map((o) => {
    const th = cell("span", "as-meta", o === 0 ? options.field : `${o > 0 ? "+" : "−"}${Math.abs(o)}`, "columnheader");
    th.title = `${fieldLabel(options.field, options.silver)} of the ${o === 0 ? "matched word" : `word at offset ${o} from the match`}` +
      (options.field === "feats" ? " (the features' values; hover a cell for them whole)" : "");
    return th;
  });
  if (next) {
    const th = cell("span", "as-meta as-next", "next", "columnheader");
    th.title = `${fieldLabel(options.field, options.silver)} of the token after the match (what a causal model was predicting there)`;
    heads.push(th);
  }
  head.append(columns(cell("span", "as-num as-rank", "#", "columnheader"), score, heads),
    cell("span", "as-context", "match in context (shade: attention the match pays each token; click to open)", "columnheader"));
  table.append(head);
  for (const [i, m] of result.matches.entries()) table.append(matchRow(m, i, offsets, options, next));
  host.replaceChildren(table);
  fitLabels(table.querySelectorAll(".as-ctok")); // readable on every shade (contrast.js)
}

/** @param {string} className */
function row(className) {
  const el = make("div", `as-mrow ${className}`);
  el.setAttribute("role", "row");
  return el;
}

/** @param {string} tag @param {string} className @param {string} text @param {string} [role] */
function cell(tag, className, text, role = "cell") {
  const el = make(tag, className, text);
  el.setAttribute("role", role);
  return el;
}

/**
 * A row's columns before the context: rank, score and the metadata cells, in one group that stays on
 * one line (shrinking the metadata cells when it must) and keeps them aligned from row to row.
 * @param {HTMLElement} rank @param {HTMLElement} score @param {HTMLElement[]} cells
 */
function columns(rank, score, cells) {
  const metas = make("span", "as-metas");
  metas.append(...cells);
  const group = make("span", "as-cols");
  group.append(rank, score, metas);
  return group;
}

/**
 * One match's row (with the "next" cell when `next`). @param {any} m @param {number} i @param {number[]} offsets
 * @param {{ field: string, fields: string[], silver?: Record<string, string>, onOpen: (m: any) => void,
 *   hrefOf: (m: any) => string }} options
 * @param {boolean} next
 */
function matchRow(m, i, offsets, options, next) {
  const tr = row("as-match");
  tr.dataset.sentId = m.sent_id;
  const { wordOf, starts } = wordsOf(m);
  const values = m.metadata[options.field];
  const centre = wordOf[m.position];
  const cells = offsets.map((o) => {
    const w = centre + o;
    const value = values && w >= 0 && w < starts.length ? values[starts[w]] : null;
    const text = value === null || value === undefined ? "·" : String(value);
    const td = cell("span", o === 0 ? "as-meta as-meta-centre" : "as-meta", columnValue(options.field, text));
    td.dataset.offset = String(o);
    td.title = text;
    return td;
  });
  if (next) cells.push(nextCell(m, options.field));
  tr.append(columns(cell("span", "as-num as-rank", String(i + 1)), cell("span", "as-num as-score", m.score.toFixed(3)), cells));
  const context = cell("span", "as-context", "");
  const link = /** @type {HTMLAnchorElement} */ (make("a", "as-open"));
  link.href = options.hrefOf(m);
  link.title = "Open this sentence in the attention view, the matched token selected";
  link.append(...contextNodes(m, wordOf, starts, options.fields, options.silver));
  const where = make("span", "as-where", m.sent_id);
  where.title = `${m.sent_id} (${m.source}:${m.line})`;
  context.append(link, where);
  tr.append(context);
  tr.addEventListener("click", (event) => {
    const e = /** @type {MouseEvent} */ (event);
    if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return; // a new tab or window: the browser's
    if (window.getSelection()?.toString()) return; // selecting text, not opening
    event.preventDefault();
    options.onOpen(m);
  });
  return tr;
}

/**
 * Whether a result has the token after each match (a causal model's: its summary has "next").
 * @param {any} result the body of POST /api/search
 */
export function hasNext(result) {
  return Object.keys(result.summary?.next ?? {}).length > 0;
}

/**
 * A match's "next" cell: `field` of the token after it ("end" after the last token of its sentence); its
 * tooltip names the token. @param {any} m @param {string} field
 */
function nextCell(m, field) {
  const p = m.next_position;
  const value = p === null || p === undefined ? null : m.metadata[field]?.[p];
  const text = p === null || p === undefined ? "end" : value === null || value === undefined ? "·" : String(value);
  const td = cell("span", "as-meta as-next", columnValue(field, text));
  td.title = p === null || p === undefined ? "the match ends its sentence"
    : `next token: “${m.surface?.[p] || m.tokens[p]}” (${field}: ${text})`;
  return td;
}

/**
 * The context's nodes: the words around the match and its most-attended token, as written.
 * @param {any} m @param {number[]} wordOf @param {number[]} starts @param {string[]} fields
 * @param {Record<string, string>} [silver] the fields a model predicted, with its name
 */
function contextNodes(m, wordOf, starts, fields, silver) {
  let strongest = 0;
  for (const w of m.attention) strongest = Math.max(strongest, w);
  const matched = new Set(m.matched?.length ? m.matched : [m.position]);
  const firstWord = Math.max(0, Math.min(wordOf[m.position], wordOf[m.max_attention]) - CONTEXT);
  const lastWord = Math.min(starts.length - 1, Math.max(wordOf[m.position], wordOf[m.max_attention]) + CONTEXT);
  /** @type {Node[]} */
  const nodes = [];
  /** @type {HTMLElement | null} one outline around the matched token, or around all of a matched word's tokens */
  let outline = null;
  if (firstWord > 0) nodes.push(make("span", "as-muted", "…"));
  m.tokens.forEach((/** @type {string} */ token, /** @type {number} */ p) => {
    if (wordOf[p] < firstWord || wordOf[p] > lastWord) return;
    const space = m.space_before?.[p] ?? true;
    if (nodes.length && space) nodes.push(document.createTextNode(" "));
    const span = make("span", "as-ctok", m.surface?.[p] ?? token);
    span.dataset.pos = String(p);
    if (m.continues?.[p]) span.classList.add("continuation");
    if (span.textContent === "") span.classList.add("as-notext"); // a thin mark: a later piece of a character, or a space
    const w = m.attention[p] ?? 0;
    if (strongest > 0 && w > 0) span.style.backgroundColor = `rgba(213, 94, 0, ${(0.75 * w / strongest).toFixed(3)})`;
    if (matched.has(p)) span.classList.add("as-matched");
    if (p === m.max_attention) span.classList.add("as-strongest");
    span.title = metadataText(m, p, fields, wordOf, starts, silver);
    if (!matched.has(p)) {
      nodes.push(span);
    } else if (outline && matched.has(p - 1) && !space) {
      outline.append(span);
    } else {
      outline = make("span", "as-cmatch");
      outline.append(span);
      nodes.push(outline);
    }
  });
  if (lastWord < starts.length - 1) nodes.push(document.createTextNode(" "), make("span", "as-muted", "…"));
  return nodes;
}

/**
 * A token's text, metadata and attention as tooltip text.
 * @param {any} m @param {number} p @param {string[]} fields @param {number[]} wordOf @param {number[]} starts
 * @param {Record<string, string>} [silver] the fields a model predicted, marked "(silver)"
 */
function metadataText(m, p, fields, wordOf, starts, silver) {
  const surface = m.surface?.[p] ?? m.tokens[p];
  const first = starts[wordOf[p]];
  let end = starts[wordOf[p] + 1] ?? m.tokens.length;
  while (end > first + 1 && isBlank(m, end - 1)) end--; // a blank token after the word is not part of it
  const word = (m.surface ?? m.tokens).slice(first, end).join("");
  const shown = surface || (isBlank(m, p) ? "a space" : "no text of its own");
  const lines = [isBlank(m, p) ? `${shown} (the model reads “${m.tokens[p]}”)`
    : end - first > 1 ? `${shown} (token ${p - first + 1} of ${end - first} of “${word}”; the model reads “${m.tokens[p]}”)`
    : surface === m.tokens[p] ? surface : `${shown} (the model reads “${m.tokens[p]}”)`];
  for (const f of fields) {
    const v = m.metadata[f]?.[p];
    lines.push(`${f}${silver?.[f] ? " (silver)" : ""}: ${v === null || v === undefined ? "—" : v}`);
  }
  lines.push(`attention from the match: ${(m.attention[p] ?? 0).toFixed(3)}`);
  if (p === m.position || m.matched?.includes(p)) lines.push("(matched)");
  return lines.join("\n");
}

/**
 * One histogram: a bar per value (most frequent first), the rest as "other".
 * `vertical`: a column per value, in the given order, in one compact row (the offsets).
 * @param {string} title @param {string} which @param {Array<[string, number]>} entries
 * @param {number} [limit] most bars (default HISTOGRAM_BARS) @param {boolean} [vertical]
 * @param {string} [note] the caption's tooltip
 */
function histogram(title, which, entries, limit = HISTOGRAM_BARS, vertical = false, note = "") {
  const box = make("figure", vertical ? "as-histogram as-vbars" : "as-histogram");
  box.dataset.which = which;
  const caption = make("figcaption", "", title);
  if (note) caption.title = note;
  box.append(caption);
  const bars = vertical ? make("div", "as-vbar-row") : box;
  if (vertical) box.append(bars);
  let shownEntries = entries;
  if (entries.length > limit) {
    const rest = entries.slice(limit - 1).reduce((s, [, c]) => s + c, 0);
    shownEntries = [...entries.slice(0, limit - 1), ["other", rest]];
  }
  const most = Math.max(1, ...shownEntries.map(([, c]) => c));
  for (const [value, count] of shownEntries) {
    const row = make("div", "as-bar");
    row.dataset.value = value;
    row.dataset.count = String(count);
    const fill = make("span", "as-bar-fill");
    fill.style[vertical ? "height" : "width"] = `${(100 * count) / most}%`;
    const track = make("span", "as-bar-track");
    track.append(fill);
    const label = make("span", "as-bar-label", value);
    row.title = `${value}: ${count}`;
    row.append(label, track, make("span", "as-bar-count", String(count)));
    bars.append(row);
  }
  if (shownEntries.length === 0) box.append(make("p", "as-empty", "no matches"));
  return box;
}

/**
 * @param {HTMLElement} host @param {any} result the body of POST /api/search @param {string} field
 * @param {Record<string, string>} [silver] the corpus's silver fields (see fieldLabel)
 */
export function renderSummary(host, result, field, silver) {
  const s = result.summary;
  const matched = Object.entries(s.matched[field] ?? {});
  const strongest = Object.entries(s.max_attention[field] ?? {});
  const offsets = Object.entries(s.offsets).map(([o, c]) => [Number(o) > 0 ? `+${o}` : o, c])
    .sort((a, b) => Number(a[0]) - Number(b[0]));
  host.replaceChildren(
    histogram(`${fieldLabel(field, silver, true)} of the matched tokens`, "matched", /** @type {any} */ (matched),
      HISTOGRAM_BARS, false, fieldLabel(field, silver)),
    histogram(`${fieldLabel(field, silver, true)} of the token each match attends to most`, "max",
      /** @type {any} */ (strongest), HISTOGRAM_BARS, false, fieldLabel(field, silver)),
    histogram("offset from the match to that token", "offset", /** @type {any} */ (offsets), Infinity, true),
  );
  if (s.next?.[field]) { // a causal model: what comes after each match (exBERT's "Next")
    host.append(histogram(`${fieldLabel(field, silver, true)} of the next token (after each match)`, "next",
      /** @type {any} */ (Object.entries(s.next[field])), HISTOGRAM_BARS, false,
      `${fieldLabel(field, silver)} of the token after each match: what the model was predicting there`));
  }
}
