// @ts-check
/**
 * The explorer app's corpus and summary views, drawn from one `POST /api/search` result.
 *
 * Corpus view: each match in its sentence (up to CONTEXT tokens either side of the match and of its
 * most-attended token), the matched token outlined, every token shaded by the
 * attention the match pays it (mean of the searched layer's selected heads; the strongest is fully
 * shaded), its metadata in the token's tooltip, and columns with one metadata field at offsets
 * −span…+span from the match. Summary view: histograms of a field for the matched tokens and for
 * the tokens they attend to most, and of the offset to that token. All text goes in as text.
 */

const HISTOGRAM_BARS = 12; // bars per histogram; the rest are summed into "other"
const CONTEXT = 12; // tokens shown either side of the match and of the token it attends to most

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
 * @param {{ field: string, span: number, fields: string[], silver?: Record<string, string> }} options
 */
export function renderMatches(host, result, options) {
  const table = make("table", "as-matches");
  const head = make("thead", "");
  const headRow = make("tr", "");
  headRow.append(make("th", "as-num", "#"), make("th", "as-num", "score"));
  const offsets = [];
  for (let o = -options.span; o <= options.span; o++) offsets.push(o);
  for (const o of offsets) {
    const th = make("th", "as-meta", o === 0 ? `${options.field}` : `${o > 0 ? "+" : "−"}${Math.abs(o)}`);
    th.title = `${fieldLabel(options.field, options.silver)} of the token ${o === 0 ? "matched" : `at offset ${o} from the match`}`;
    headRow.append(th);
  }
  headRow.append(make("th", "", "match in context (shade: attention the match pays each token)"));
  head.append(headRow);
  const body = make("tbody", "");
  result.matches.forEach((/** @type {any} */ m, /** @type {number} */ i) => {
    const tr = make("tr", "as-match");
    tr.dataset.sentId = m.sent_id;
    tr.append(make("td", "as-num", String(i + 1)), make("td", "as-num", m.score.toFixed(3)));
    const values = m.metadata[options.field];
    for (const o of offsets) {
      const p = m.position + o;
      const value = values && p >= 0 && p < m.tokens.length ? values[p] : null;
      const td = make("td", o === 0 ? "as-meta as-meta-centre" : "as-meta", value === null || value === undefined ? "·" : String(value));
      td.dataset.offset = String(o);
      tr.append(td);
    }
    const context = make("td", "as-context");
    let strongest = 0;
    for (const w of m.attention) strongest = Math.max(strongest, w);
    const first = Math.max(0, Math.min(m.position, m.max_attention) - CONTEXT);
    const last = Math.min(m.tokens.length - 1, Math.max(m.position, m.max_attention) + CONTEXT);
    if (first > 0) context.append(make("span", "as-muted", "… "));
    m.tokens.forEach((/** @type {string} */ token, /** @type {number} */ p) => {
      if (p < first || p > last) return;
      const span = make("span", "as-ctok", shown(token));
      span.dataset.pos = String(p);
      const w = m.attention[p] ?? 0;
      if (strongest > 0 && w > 0) span.style.backgroundColor = `rgba(213, 94, 0, ${(0.75 * w / strongest).toFixed(3)})`;
      if (p === m.position) span.classList.add("as-matched");
      if (p === m.max_attention) span.classList.add("as-strongest");
      span.title = metadataText(m, p, options.fields, options.silver);
      context.append(span, document.createTextNode(" "));
    });
    if (last < m.tokens.length - 1) context.append(make("span", "as-muted", "…"));
    const where = make("span", "as-where", `${m.sent_id}`);
    where.title = `${m.source}:${m.line}`;
    context.append(where);
    tr.append(context);
    body.append(tr);
  });
  table.append(head, body);
  host.replaceChildren(table);
  fitLabels(table.querySelectorAll(".as-ctok")); // readable on every shade (contrast.js)
}

/**
 * A token's metadata and attention as tooltip text.
 * @param {any} m @param {number} p @param {string[]} fields @param {Record<string, string>} [silver]
 */
function metadataText(m, p, fields, silver) {
  const lines = [`${m.tokens[p]}`];
  for (const f of fields) {
    const v = m.metadata[f]?.[p];
    lines.push(`${f}${silver?.[f] ? " (silver)" : ""}: ${v === null || v === undefined ? "—" : v}`);
  }
  lines.push(`attention from the match: ${(m.attention[p] ?? 0).toFixed(3)}`);
  if (p === m.position) lines.push("(the matched token)");
  return lines.join("\n");
}

/**
 * One histogram: a bar per value (most frequent first), the rest as "other".
 * @param {string} title @param {string} which @param {Array<[string, number]>} entries
 * @param {number} [limit] most bars (default HISTOGRAM_BARS) @param {string} [note] the caption's tooltip
 */
function histogram(title, which, entries, limit = HISTOGRAM_BARS, note = "") {
  const box = make("figure", "as-histogram");
  box.dataset.which = which;
  const caption = make("figcaption", "", title);
  if (note) caption.title = note;
  box.append(caption);
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
    fill.style.width = `${(100 * count) / most}%`;
    const track = make("span", "as-bar-track");
    track.append(fill);
    row.append(make("span", "as-bar-label", value), track, make("span", "as-bar-count", String(count)));
    box.append(row);
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
      HISTOGRAM_BARS, fieldLabel(field, silver)),
    histogram(`${fieldLabel(field, silver, true)} of the token each match attends to most`, "max",
      /** @type {any} */ (strongest), HISTOGRAM_BARS, fieldLabel(field, silver)),
    histogram("offset from the match to that token", "offset", /** @type {any} */ (offsets), Infinity),
  );
}
