"""The notebooks under examples/ run offline from top to bottom, and their views display as widgets
with a static HTML copy."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def test_there_are_example_notebooks():
    assert {p.stem for p in NOTEBOOKS} >= {
        "head_view",
        "model_view",
        "neuron_view",
        "encoder_decoder",
        "decoder",
        "model_diff",
    }


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    book = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in book.cells if cell.cell_type == "code"), (
        "commit notebooks without outputs"
    )
    client = NotebookClient(book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    views = [
        output["data"]
        for cell in book.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.get("output_type") in ("execute_result", "display_data")
        and WIDGET_MIME in output.get("data", {})
        and output["data"].get("text/plain", "").startswith("<attnscope.views.")
    ]  # a cell's value, or a display of its own (BertViz-style calls display their view where they are made)
    assert views, f"{path.name} displays no view"
    for data in views:
        assert 'class="attnscope-host"' in data["text/html"]  # the static copy for front ends without widgets
    errors = [o for cell in book.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
