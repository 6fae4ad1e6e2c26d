"""The ES modules in static/ as they are, unbundled, in a real Chromium: each loads by its own import lines (every
import names a file that a browser finds and an export that file has; tsc checks that nothing is used unimported),
and the view modules export their view as the default `{ render }` that the bundles pass on to anywidget."""

from __future__ import annotations

from .conftest import STATIC, open_sources

IMPORT_ALL = """async (names) => {
  const exported = {};
  for (const name of names) {
    const module = await import(`./${name}`);
    exported[name] = Object.keys(module).sort();
    if (module.default) exported[name].push(`render: ${typeof module.default.render}`);
  }
  return exported;
}"""


def test_every_module_loads_in_the_browser_by_its_import_lines(page):
    names = sorted(p.name for p in STATIC.glob("*.js") if p.name != "app.js")  # app.js runs the app's page on import
    open_sources(page.page, "<!DOCTYPE html><html><body></body></html>")
    exported = page.page.evaluate(IMPORT_ALL, names)
    assert sorted(exported) == names and len(names) >= 18
    for view in ("head_view.js", "model_view.js", "neuron_view.js", "diff_view.js"):
        assert exported[view] == ["default", "render: function"]
    assert "default" in exported["atlas.js"] and "render: function" in exported["atlas.js"]
    assert exported["common.js"] and exported["static_model.js"] == ["createStaticModel"]
    assert page.errors == [] and page.blocked == []
