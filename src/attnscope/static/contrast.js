// @ts-check
/**
 * Labels that stay readable on any shade: WCAG 2.x relative luminance and contrast ratio, and the
 * colour a label gets on its background. Every view colours its token labels through `fitLabels`
 * (HTML elements) or `fitSvgText` (SVG figures), so a label of any kind (ordinary, special, masked,
 * greyed-out future) keeps a contrast ratio of at least `MIN_CONTRAST` (WCAG AA for normal text) on
 * every shade, in light and dark themes. A label keeps its own colour (its kind's, from the
 * stylesheet) when that is readable; otherwise it gets the nearest colour to it, mixed toward black
 * or white, that is. Labels must not be faded with `opacity`: that would fade the text and the
 * shade alike, and the colour chosen here could not hold. Imported by every view and by the
 * explorer app's attention and corpus views.
 */

/** WCAG AA for normal text. */
export const MIN_CONTRAST = 4.5;
/** What a fitted colour aims at: a little above the minimum, so rounding and alpha quantisation never land below it. */
const AIM = 4.55;

/** @typedef {[number, number, number, number]} RGBA channels 0-255, alpha 0-1 */

/** The relative luminance below which white text contrasts more than black (√(1.05 × 0.05) − 0.05). */
const DARK_BELOW = 0.179;

const CLEAR = /** @type {RGBA} */ ([0, 0, 0, 0]);
const WHITE = /** @type {RGBA} */ ([255, 255, 255, 1]);

/**
 * A CSS colour as computed styles write it ("rgb(1, 2, 3)", "rgba(1, 2, 3, 0.5)", "rgb(1 2 3 / 50%)"),
 * or "#rgb" / "#rrggbb" / "transparent"; null for anything else ("none", gradients).
 * @param {string | null | undefined} text @returns {RGBA | null}
 */
export function parseColour(text) {
  const value = (text ?? "").trim().toLowerCase();
  if (value === "transparent") return CLEAR;
  const hex = /^#([0-9a-f]{3}|[0-9a-f]{6})$/.exec(value);
  if (hex) {
    const h = hex[1].length === 3 ? [...hex[1]].map((c) => c + c).join("") : hex[1];
    return [parseInt(h.slice(0, 2), 16), parseInt(h.slice(2, 4), 16), parseInt(h.slice(4, 6), 16), 1];
  }
  const fn = /^rgba?\(([^)]*)\)$/.exec(value);
  if (!fn) return null;
  const parts = fn[1].split(/[\s,/]+/).filter(Boolean);
  if (parts.length < 3) return null;
  const number = (/** @type {string} */ p, /** @type {number} */ full) =>
    p.endsWith("%") ? (Number(p.slice(0, -1)) / 100) * full : Number(p);
  const rgba = /** @type {RGBA} */ ([number(parts[0], 255), number(parts[1], 255), number(parts[2], 255),
    parts.length > 3 ? number(parts[3], 1) : 1]);
  return rgba.every(Number.isFinite) ? rgba : null;
}

/** `top` painted over `bottom` (source-over). @param {RGBA} top @param {RGBA} bottom @returns {RGBA} */
export function over(top, bottom) {
  const a = top[3] + bottom[3] * (1 - top[3]);
  if (a === 0) return CLEAR;
  const mix = (/** @type {number} */ i) => (top[i] * top[3] + bottom[i] * bottom[3] * (1 - top[3])) / a;
  return [mix(0), mix(1), mix(2), a];
}

/** WCAG 2.x relative luminance of an sRGB colour (alpha ignored), 0 (black) to 1 (white). @param {ArrayLike<number>} rgb */
export function luminance(rgb) {
  const linear = (/** @type {number} */ c) => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * linear(rgb[0]) + 0.7152 * linear(rgb[1]) + 0.0722 * linear(rgb[2]);
}

/** WCAG 2.x contrast ratio of two opaque colours, 1 to 21. @param {ArrayLike<number>} a @param {ArrayLike<number>} b */
export function contrast(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

/** @param {RGBA} c @returns {string} */
export function cssColour(c) {
  return `rgb(${Math.round(c[0])}, ${Math.round(c[1])}, ${Math.round(c[2])})`;
}

/**
 * The colour text of colour `preferred` should have on the opaque `background`: null when `preferred`
 * is readable there (contrast ≥ MIN_CONTRAST), otherwise the least change of it, toward black or
 * white, that reaches the minimum (every background has a contrast of at least 4.58 with one of them).
 * @param {RGBA} preferred @param {RGBA} background @returns {RGBA | null}
 */
export function readableOn(preferred, background) {
  const fg = over(preferred, background);
  if (contrast(fg, background) >= AIM) return null;
  /** @type {RGBA | null} */
  let best = null;
  let bestStep = Infinity;
  for (const end of [0, 255]) {
    const at = (/** @type {number} */ t) => /** @type {RGBA} */ (
      [0, 1, 2].map((i) => Math.round(fg[i] + (end - fg[i]) * t)).concat(1));
    if (contrast(at(1), background) < AIM) continue;
    let lo = 0, hi = 1; // the smallest step toward `end` that is readable, to 1/1024
    for (let i = 0; i < 10; i++) {
      const mid = (lo + hi) / 2;
      if (contrast(at(mid), background) >= AIM) hi = mid;
      else lo = mid;
    }
    if (hi < bestStep) {
      bestStep = hi;
      best = at(hi);
    }
  }
  return best ?? (contrast([0, 0, 0], background) > contrast([255, 255, 255], background) ? [0, 0, 0, 1] : WHITE);
}

/**
 * The opaque colour behind `el`'s own box: its ancestors' backgrounds from the nearest opaque one
 * (the page is taken as white when none is).
 * @param {Element | null} el @returns {RGBA}
 */
export function backdropOf(el) {
  /** @type {RGBA[]} */
  const layers = [];
  for (let node = el; node; node = node.parentElement) {
    const colour = parseColour(getComputedStyle(node).backgroundColor) ?? CLEAR;
    if (colour[3] > 0) layers.push(colour);
    if (colour[3] >= 1) break;
  }
  return layers.reduceRight((below, layer) => over(layer, below), WHITE);
}

/** Whether `el` is drawn on a dark background: white text would contrast more there than black. @param {Element | null} el */
export function onDark(el) {
  return luminance(backdropOf(el)) < DARK_BELOW;
}

/**
 * Black or white, whichever contrasts more with the opaque colour `background` (a CSS colour): at
 * least 4.58:1 on any background. @param {string} background @returns {string}
 */
export function inkOn(background) {
  const bg = parseColour(background) ?? WHITE;
  return contrast([0, 0, 0], bg) >= contrast([255, 255, 255], bg) ? "#000000" : "#ffffff";
}

/**
 * Give each label a colour readable on its own background over its backdrop: the colour its classes
 * give it when that is readable, else `readableOn`'s. Labels of one kind (the same parent, classes
 * and inline style apart from the colour) are fitted once, so thousands of labels cost a few style
 * reads; all reads come before the writes. Labels not in the document are skipped.
 * @param {Iterable<Element>} labels HTML elements with text
 */
export function fitLabels(labels) {
  /** @type {Map<Element | null, Map<string, HTMLElement[]>>} */
  const kinds = new Map();
  for (const el of /** @type {Iterable<HTMLElement>} */ (labels)) {
    if (!el.isConnected) continue;
    const own = (el.getAttribute("style") ?? "").replace(/(^|;)\s*color\s*:[^;]*;?/, "$1").trim();
    const byParent = kinds.get(el.parentElement) ?? kinds.set(el.parentElement, new Map()).get(el.parentElement);
    const key = `${el.className}|${own}`;
    const same = /** @type {Map<string, HTMLElement[]>} */ (byParent).get(key);
    if (same) same.push(el);
    else /** @type {Map<string, HTMLElement[]>} */ (byParent).set(key, [el]);
  }
  const groups = [...kinds.values()].flatMap((byKey) => [...byKey.values()]);
  for (const group of groups) group[0].style.removeProperty("color");
  const colours = [...kinds].flatMap(([parent, byKey]) => {
    const behind = backdropOf(parent);
    return [...byKey.values()].map((group) => {
      const style = getComputedStyle(group[0]);
      const text = parseColour(style.color);
      const fit = text && readableOn(text, over(parseColour(style.backgroundColor) ?? CLEAR, behind));
      return fit ? cssColour(fit) : "";
    });
  });
  groups.forEach((group, i) => {
    for (const el of group) {
      if (el.style.color !== colours[i]) el.style.color = colours[i];
    }
  });
}

/**
 * Give every text of an SVG figure a fill readable on what it is drawn over: the rect right before it
 * when the text's anchor (its x) lies within that rect, else the figure's background (its first
 * `rect.bg`, white if none). Styles are read once per kind of text and rect (tag, class, inside a
 * `.nv-masked` row or not), so long figures stay quick.
 * @param {SVGSVGElement} svg
 */
export function fitSvgText(svg) {
  const texts = [...svg.querySelectorAll("text")];
  for (const text of texts) text.style.removeProperty("fill");
  /** @type {Map<string, RGBA | null>} */
  const seen = new Map();
  const fillOf = (/** @type {Element} */ el) => {
    const key = `${el.tagName} ${el.getAttribute("class")} ${el.closest(".nv-masked") ? "masked" : ""}`;
    if (!seen.has(key)) seen.set(key, parseColour(getComputedStyle(el).fill));
    return seen.get(key) ?? null;
  };
  const background = svg.querySelector("rect.bg");
  const figure = (background && fillOf(background)) ?? WHITE;
  const fills = texts.map((text) => {
    const cell = text.previousElementSibling;
    let behind = figure;
    const x = Number(text.getAttribute("x")), left = Number(cell?.getAttribute("x"));
    if (cell instanceof SVGRectElement && x >= left && x <= left + Number(cell.getAttribute("width"))) {
      const paint = fillOf(cell), opacity = Number(cell.getAttribute("fill-opacity") ?? 1);
      if (paint) behind = over([paint[0], paint[1], paint[2], paint[3] * opacity], figure);
    }
    const own = fillOf(text);
    return own && readableOn(own, behind);
  });
  texts.forEach((text, i) => {
    const fill = fills[i];
    if (fill) text.style.fill = cssColour(fill);
  });
}

/**
 * Call `callback` whenever the page's colour scheme (light or dark) changes; returns a function that stops it.
 * @param {() => void} callback
 */
export function onThemeChange(callback) {
  const query = window.matchMedia("(prefers-color-scheme: dark)");
  query.addEventListener("change", callback);
  return () => query.removeEventListener("change", callback);
}

/**
 * Fit the labels under `root` matching `selector` again whenever the page's colour scheme changes
 * (the shades stay, the theme's colours change). Returns a function that stops it.
 * @param {Element} root @param {string} selector
 */
export function refitOnThemeChange(root, selector) {
  return onThemeChange(() => fitLabels(root.querySelectorAll(selector)));
}
