"""BertViz's notebooks, ported: each BertViz-style view call displays its view where it is made, exactly once.

The notebook of every scenario (`bertviz_notebooks`) runs once in a real kernel; each test reads the
outputs of one scenario's cells: a call inside a helper function, in a loop over layers, followed by
another statement, or as the cell's last value shows one view per call (a loop one per layer), as a
display of its own (not the cell's result, which would be a second copy). attnscope's own API shows a view
only as a cell's value; ``html_action="return"`` shows nothing; a plain script prints nothing.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from .bertviz_notebooks import SCENARIOS, attnscope_views, cells_of


def errors(cells) -> list[str]:
    return [
        f"{c.metadata['attnscope']['variant']}: {o['ename']}: {o['evalue']}"
        for c in cells
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_each_bertviz_style_call_displays_exactly_one_view(bertviz_notebook, scenario):
    cells = cells_of(bertviz_notebook, scenario.name)
    assert errors(cells) == []
    variants = {c.metadata["attnscope"]["variant"] for c in cells}
    assert {f"{call.kind}-{way}" for call in scenario.calls for way in ("function", "loop", "then", "last")} <= variants
    for cell in cells:
        wanted = cell.metadata["attnscope"]["views"]
        shown = attnscope_views(cell)
        where = f"{scenario.name} {cell.metadata['attnscope']['variant']}"
        assert [kind for _, kind, _ in shown] == [v["kind"] for v in wanted], where
        assert all(output_type == "display_data" for output_type, _, _ in shown), where  # never also the cell's result
        assert all('class="attnscope-host"' in data["text/html"] for _, _, data in shown), where  # the static copy
    loops = [c for c in cells if c.metadata["attnscope"]["variant"].endswith("-loop")]
    assert loops and all(len(attnscope_views(c)) >= 2 for c in loops)  # one view per layer


def own_api_cells(book):
    return {c.metadata["attnscope"]["variant"]: c for c in cells_of(book, "own_api")}


def test_own_api_displays_a_view_only_as_the_cells_value(bertviz_notebook):
    cells = own_api_cells(bertviz_notebook)
    assert errors(cells.values()) == []
    for name, cell in cells.items():
        wanted = [v["output_type"] for v in cell.metadata["attnscope"]["views"]]
        assert [t for t, _, _ in attnscope_views(cell)] == wanted, name
    assert cells["capture_last"].outputs[0]["output_type"] == "execute_result"


def test_html_action_return_displays_nothing_and_returns_the_page(bertviz_notebook):
    cells = own_api_cells(bertviz_notebook)
    assert attnscope_views(cells["return_then_statement"]) == []
    printed = [o["text"] for o in cells["return_last"].outputs if o.get("output_type") == "stream"]
    assert printed == ["<!DOCTYPE html>\n"]  # .data is the page, as BertViz's returned HTML object has
    assert [kind for _, kind, _ in attnscope_views(cells["return_last"])] == ["model"]


def test_an_explicit_display_or_a_later_cell_shows_the_view_again(bertviz_notebook):
    cells = own_api_cells(bertviz_notebook)
    shown = attnscope_views(cells["explicit_display"])
    assert [t for t, _, _ in shown] == ["display_data", "display_data"]
    model_ids = {data["application/vnd.jupyter.widget-view+json"]["model_id"] for _, _, data in shown}
    assert len(model_ids) == 1  # the same widget twice: the call's display, then the explicit one
    again = attnscope_views(cells["later_cell_value"])
    assert [(t, data["application/vnd.jupyter.widget-view+json"]["model_id"]) for t, _, data in again] == [
        ("execute_result", model_ids.pop())
    ]


SCRIPT = """
import numpy as np
from attnscope import head_view, model_view
from attnscope.views.neuron import show
rng = np.random.default_rng(0)
attention = tuple(rng.dirichlet(np.ones(5), size=(1, 2, 5)).astype("float32") for _ in range(2))
view = head_view(attention, list("abcde"))
model_view(attention, list("abcde"), 1)
assert view.layer == 0
"""


def test_a_plain_script_prints_nothing():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
