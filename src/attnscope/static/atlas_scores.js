// @ts-check
/**
 * What the head atlas colours its grid by and how it shows numbers: the score options (pattern shares, the
 * entropy, the synthetic-probe scores when the atlas has them, each relation's accuracy in one direction),
 * the grid's colour ramp, and the number formats of
 * cells and tables. Imported by atlas.js (which passes `scoreOptions`, `colourOf`, `LOW` and `HIGH` on) and
 * atlas_tables.js.
 */

export const PATTERN_LABELS = {
  previous: "previous token", next: "next token", self: "itself", first: "first token",
  special: "special tokens", entropy: "entropy",
};
/** The synthetic-probe scores (`atlas.probes`, analysis/probes.py), keyed as atlas.parquet's columns. */
export const PROBE_LABELS = {
  induction: "induction", duplicate: "duplicate token", previous: "previous token (probe)",
  first: "first-token sink (probe)",
};
export const DIRECTIONS = { dependent_to_head: "dependent→head", head_to_dependent: "head→dependent" };
/** The colour ramp of the grid: a score of 0 is LOW, 1 is HIGH, linear in between. */
export const LOW = [247, 251, 255];
export const HIGH = [8, 48, 107];

/** The grid colour of a score in [0, 1]. @param {number} value */
export function colourOf(value) {
  const t = Math.min(1, Math.max(0, value));
  return `rgb(${LOW.map((c, i) => Math.round(c + (HIGH[i] - c) * t)).join(", ")})`;
}

/**
 * @typedef {{ key: string, label: string, group: string, values: number[][], baseline?: number, offset?: number }} ScoreOption
 */

/**
 * Every score the grid can be coloured by: key, label, values [layer][head], and for relations the baseline.
 * Probe scores are keyed `probe_<name>` (the parquet's column names), after the pattern shares.
 * @param {any} atlas
 * @returns {ScoreOption[]}
 */
export function scoreOptions(atlas) {
  /** @type {ScoreOption[]} */
  const options = Object.entries(PATTERN_LABELS).map(([key, label]) => ({
    key, label, group: "Patterns", values: atlas.patterns[key],
  }));
  for (const name of atlas.probes?.names ?? []) {
    options.push({
      key: `probe_${name}`, label: PROBE_LABELS[/** @type {keyof typeof PROBE_LABELS} */ (name)] ?? name,
      group: "Probes", values: atlas.probes[name],
    });
  }
  for (const relation of atlas.relations ?? []) {
    for (const [direction, arrow] of Object.entries(DIRECTIONS)) {
      options.push({
        key: `${relation.relation} ${direction}`, label: `${relation.relation}: ${arrow}`, group: "Relations",
        values: relation[direction], baseline: relation.baseline, offset: relation.baseline_offset,
      });
    }
  }
  return options;
}

/**
 * What the atlas says about its probe: its size and seed, and the model's in-context copying on it
 * (mean log-probability of the repeated tokens against their first occurrence), or why that is absent.
 * @param {any} probes `atlas.probes`
 */
export function probeSummary(probes) {
  const size = `Probe scores from ${probes.batch} sequences of ${probes.length} random tokens, each repeated ` +
    `${probes.repeats} times (seed ${probes.seed}). `;
  const copying = probes.copying;
  return size + (copying
    ? `In-context copying: mean log-probability ${copying.later.toFixed(2)} on the repeated tokens against ` +
      `${copying.first.toFixed(2)} on their first occurrence (${copying.gain >= 0 ? "+" : ""}${copying.gain.toFixed(2)} nats).`
    : probes.copying_note);
}

/** A score as shown in cells and tables. @param {number} value */
export function format(value) {
  return value.toFixed(2);
}

/** A signed offset: +1, -2. @param {number} offset */
export function signed(offset) {
  return offset > 0 ? `+${offset}` : String(offset);
}
