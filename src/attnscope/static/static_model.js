// @ts-check
/**
 * A stand-in for anywidget's model in pages without a kernel: get, set, on, off and save_changes over
 * a plain object. Changes stay in the page; nothing is sent anywhere. Bundled on its own as
 * static/bundles/static_model.js, which the HTML export inlines before a view's bundle (views/html.py),
 * and imported by the explorer app's atlas panel, which hosts the atlas view on it.
 */

/**
 * @param {Record<string, any>} state initial values ("header", "layers", ...)
 */
export function createStaticModel(state) {
  /** @type {Record<string, any>} */
  const values = { ...state };
  /** @type {Map<string, Set<Function>>} */
  const listeners = new Map();
  return {
    /** @param {string} name */
    get(name) { return values[name]; },
    /** @param {string} name @param {any} value */
    set(name, value) {
      const changed = values[name] !== value;
      values[name] = value;
      if (changed) for (const callback of listeners.get(`change:${name}`) ?? []) callback(value);
    },
    /** @param {string} event @param {Function} callback */
    on(event, callback) {
      if (!listeners.has(event)) listeners.set(event, new Set());
      /** @type {Set<Function>} */ (listeners.get(event)).add(callback);
    },
    /** @param {string} event @param {Function} callback */
    off(event, callback) { listeners.get(event)?.delete(callback); },
    save_changes() {},
  };
}
