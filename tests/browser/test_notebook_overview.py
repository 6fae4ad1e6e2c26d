"""M3 in a real JupyterLab, offline: the model view of an on-demand capture is the live overview widget, its zooms
travel to the kernel as custom messages and come back with exact float32 buffers, and Python reads the selection."""

from __future__ import annotations

import ast

import numpy as np
import pytest
from playwright.sync_api import expect

import attnscope

from ..conftest import PUB
from .jupyter_server import KERNEL_NAME
from .test_notebook_frontends import WAIT, Notebook, jupyter, server_page  # noqa: F401 - fixtures used by name

pytestmark = pytest.mark.jupyter

LONG = " ".join([PUB] * 6)  # truncated to the tiny model's 128 positions


def test_the_overview_widget_zooms_through_the_kernel_to_exact_weights(jupyter, server_page, tiny_path):  # noqa: F811
    import nbformat

    model = str(tiny_path("smollm2"))
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "attnscope e2e", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell(
            f"import attnscope\nm = attnscope.load({model!r})\n"
            f"cap = attnscope.capture(m, {LONG!r}, truncate=True, attention='on_demand')\n"
            "view = attnscope.model_view(cap, cells=16)\nview"
        )
    ]
    nbformat.write(nb, jupyter.root / "overview.ipynb")
    page = server_page.page
    with jupyter.log_on_failure():
        page.goto(jupyter.url("lab/tree/overview.ipynb"))
        notebook = Notebook(page)
        notebook.wait_for_kernel()
        notebook.run_all()
        root = notebook.cells.nth(0).locator(".jp-OutputArea-output .attnscope-mo")
        expect(root).to_have_attribute("data-ready", "true", timeout=WAIT)
        assert root.evaluate("e => e.closest('.attnscope-host') === null")  # the live widget, not the static copy
        assert root.locator(".attnscope-mo-cell").count() == 8
        root.locator(".attnscope-mo-cell[data-layer='1'][data-head='2']").click()
        detail = root.locator(".attnscope-mo-detail")
        expect(detail).to_have_attribute("data-exact", "true", timeout=WAIT)  # the kernel answered
        box = root.locator(".attnscope-mo-detail-canvas").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 13.5 / 16, box["y"] + box["height"] * 4.5 / 16)
        expect(detail).to_have_attribute("data-kind", "tile", timeout=WAIT)
        expect(detail).to_have_attribute("data-exact", "true", timeout=WAIT)
        rows, cols = (list(map(int, detail.get_attribute(f"data-{side}").split(":"))) for side in ("rows", "cols"))
        box = root.locator(".attnscope-mo-detail-canvas").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 3.5 / 16, box["y"] + box["height"] * 2.5 / 16)
        weight = root.locator(".attnscope-mo-tooltip .attnscope-mo-weight")
        printed = weight.get_attribute("data-weight")
        query, key = rows[0] + 2, cols[0] + 3
        assert (int(weight.get_attribute("data-query")), int(weight.get_attribute("data-key"))) == (query, key)

        # The same weight computed here (this interpreter is the kernel's), and the selection read back.
        cap = attnscope.capture(attnscope.load(model), LONG, truncate=True, attention="on_demand")
        assert np.float32(float(printed)) == cap.attentions.tile(1, 2, [query], [key])[0, 0]
        wanted = {"stack": "decoder", "layer": 1, "head": 2, "region": [*rows, *cols], "pooling": "max"}
        cell = notebook.add_cell("print(view.selection)")
        for _ in range(5):  # the front end may batch trait updates while the kernel is busy
            selection = ast.literal_eval(notebook.run_cell(cell).strip().splitlines()[-1])
            if selection == wanted:
                break
        assert selection == wanted
    assert server_page.blocked == []
