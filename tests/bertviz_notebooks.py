"""BertViz's example notebooks as a user ports them, in one notebook that a real kernel runs once.

BertViz's notebooks (those it ships now and those its history holds) show the head, model and neuron
views of BERT, DistilBERT, RoBERTa, ALBERT, XLNet, XLM, GPT-2, BART, MarianMT and T5, of sentence
pairs, and of BERT/GPT-2/RoBERTa neurons. Each `Scenario` here is one of them written as a notebook does
with transformers 5 (``tokenizer(...)``, ``model(..., output_attentions=True)``, ``outputs.attentions``,
``tokenizer.convert_ids_to_tokens``), on a tiny random model of that architecture (`tiny_models`) or the
default model, only the imports being attnscope's. Every view call of a scenario is made four ways:
inside a helper function that returns nothing, in a loop over layers, followed by another statement,
and as the cell's last value; a BertViz-style call must display exactly one view each time.

The `bertviz_notebook` fixture builds the notebook (every cell tagged with what it must display) and
executes it once per session through nbclient; tests read its cells' outputs.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from attnscope.capture.loading import default_model_path

from .browser.jupyter_server import KERNEL_NAME, install_kernel, sealed_env

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
SENTENCE_A = "The girl ran to a local pub."
SENTENCE_B = "She wanted to escape the din."
TARGET = "She went home."
VIEW_CLASSES = {"HeadView": "head", "ModelView": "model", "NeuronView": "neuron"}

PRELUDE = """\
from transformers import AutoTokenizer, utils

from attnscope import head_view, model_view     # was: from bertviz import head_view, model_view
from attnscope.views.neuron import show         # was: from bertviz.neuron_view import show

utils.logging.set_verbosity_error()             # as BertViz's notebooks do: no loading reports
utils.logging.disable_progress_bar()
"""


@dataclass(frozen=True)
class Call:
    """One view call: ``code`` as the notebook writes it, ``looped`` the same call inside
    ``for layer in range(...)`` choosing ``layer``; ``layer``/``head`` are what ``code`` shows
    (None: the view's default, layer 0 and every head)."""

    kind: str  # "head", "model" or "neuron"
    code: str
    looped: str
    layer: int | None = None
    head: int | None = None


@dataclass(frozen=True)
class Scenario:
    """One of BertViz's notebooks: ``setup`` loads the model and tokenizer and runs them; ``layers`` is an
    expression for how many layers the loop covers; ``shown`` an expression, evaluated after ``setup``, for
    (attention tuple, token strings) of the stack the views show first."""

    name: str
    setup: str
    calls: tuple[Call, ...]
    layers: str
    shown: str
    models: tuple[str, ...] = ()


def _encoder(
    name: str,
    arch: str,
    model_class: str,
    *,
    pair: bool = False,
    neuron: str | None = None,
    views: tuple[str, ...] = ("head", "model"),
) -> Scenario:
    """A scenario of an encoder or decoder-only model on one sentence or a pair (``sentence_b_start``)."""
    texts = "SENTENCE_A, SENTENCE_B" if pair else "SENTENCE_A"
    setup = (
        f"from transformers import {model_class}\n"
        f'tokenizer = AutoTokenizer.from_pretrained(MODELS["{arch}"])\n'
        f'model = {model_class}.from_pretrained(MODELS["{arch}"], output_attentions=True)\n'
        f'inputs = tokenizer({texts}, return_tensors="pt")\n'
        "outputs = model(**inputs)\n"
        "attention = outputs.attentions\n"
        'tokens = tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])\n'
    )
    args = "attention, tokens"
    if pair:
        setup += 'sentence_b_start = inputs["token_type_ids"][0].tolist().index(1)\n'
        args += ", sentence_b_start"
    calls = []
    if "head" in views:
        calls.append(Call("head", f"head_view({args})", f"head_view({args}, layer=layer)"))
    if "model" in views:
        calls.append(Call("model", f"model_view({args})", f"model_view({args}, include_layers=[layer])"))
    if neuron is not None:
        shown = f"show(model, {neuron!r}, tokenizer, {texts}, layer={{layer}}, head=1)"
        calls.append(Call("neuron", shown.format(layer=1), shown.format(layer="layer"), layer=1, head=1))
    return Scenario(name, setup, tuple(calls), "len(attention)", "attention, tokens", (arch,))


def _encoder_decoder(name: str, arch: str, model_class: str) -> Scenario:
    """A scenario of an encoder-decoder: the source through the encoder, the target as decoder input."""
    setup = (
        f"from transformers import {model_class}\n"
        f'tokenizer = AutoTokenizer.from_pretrained(MODELS["{arch}"])\n'
        f'model = {model_class}.from_pretrained(MODELS["{arch}"], output_attentions=True)\n'
        'encoder_input_ids = tokenizer(SENTENCE_A, return_tensors="pt").input_ids\n'
        'decoder_input_ids = tokenizer(text_target=TARGET, return_tensors="pt").input_ids\n'
        "outputs = model(input_ids=encoder_input_ids, decoder_input_ids=decoder_input_ids)\n"
        "encoder_text = tokenizer.convert_ids_to_tokens(encoder_input_ids[0])\n"
        "decoder_text = tokenizer.convert_ids_to_tokens(decoder_input_ids[0])\n"
    )
    args = (
        "encoder_attention=outputs.encoder_attentions, decoder_attention=outputs.decoder_attentions, "
        "cross_attention=outputs.cross_attentions, encoder_tokens=encoder_text, decoder_tokens=decoder_text"
    )
    calls = (
        Call("head", f"head_view({args})", f"head_view({args}, layer=layer)"),
        Call("model", f"model_view({args})", f"model_view({args}, include_layers=[layer])"),
    )
    return Scenario(
        name, setup, calls, "len(outputs.encoder_attentions)", "outputs.encoder_attentions, encoder_text", (arch,)
    )


SCENARIOS: tuple[Scenario, ...] = (
    _encoder("bert", "bert", "BertModel"),
    _encoder("sentence_pair", "bert", "BertModel", pair=True),
    _encoder("distilbert", "distilbert", "DistilBertModel"),
    _encoder("roberta", "roberta", "RobertaModel"),
    _encoder("albert", "albert", "AlbertModel"),
    _encoder("xlnet", "xlnet", "XLNetModel"),
    _encoder("xlm", "xlm", "XLMModel"),
    _encoder("gpt2", "gpt2", "GPT2Model"),
    _encoder_decoder("bart", "bart", "BartModel"),
    _encoder_decoder("marian", "marian", "MarianMTModel"),
    _encoder_decoder("t5", "t5", "T5Model"),
    _encoder("neuron_bert", "bert", "BertModel", pair=True, neuron="bert", views=()),
    _encoder("neuron_gpt2", "gpt2", "GPT2Model", neuron="gpt2", views=()),
    _encoder("neuron_roberta", "roberta", "RobertaModel", neuron="roberta", views=()),
    _encoder("default", "default", "BertModel", pair=True, neuron="bert"),
)
TINY = sorted({arch for s in SCENARIOS for arch in s.models if arch != "default"})

# attnscope's own API, after the scenarios (it uses the default scenario's `attention` and `tokens`): each
# cell's code and the output types of the views it must show.
OWN_API: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "own_setup",
        'import attnscope\nhandle = attnscope.load("default")\ncap = attnscope.capture(handle, SENTENCE_A)',
        (),
    ),
    ("capture_then_statement", "head_view(cap)\nmodel_view(cap)\nafter = 1", ()),
    ("handle_then_statement", "attnscope.neuron_view(handle, SENTENCE_A)\nafter = 1", ()),
    ("capture_last", "view = head_view(cap)\nview", ("execute_result",)),
    (
        "return_then_statement",
        'head_view(attention, tokens, html_action="return")\n'
        'show(model, "bert", tokenizer, SENTENCE_A, html_action="return")\nafter = 1',
        (),
    ),
    (
        "return_last",
        'returned = model_view(attention, tokens, html_action="return")\nprint(returned.data[:15])\nreturned',
        ("execute_result",),
    ),
    ("explicit_display", "shown = head_view(attention, tokens)\ndisplay(shown)", ("display_data", "display_data")),
    ("later_cell_value", "shown", ("execute_result",)),
)


def _cell(code: str, scenario: str, variant: str, views: list[dict[str, Any]]) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(code)
    cell.metadata["attnscope"] = {"scenario": scenario, "variant": variant, "views": views}
    return cell


def _view(call: Call, layer: int | None) -> dict[str, Any]:
    """What one displayed view must show: its kind, its layer (None: the head view's default, layer 0; the
    model view's, every layer; an int for the model view: that layer only) and the neuron view's head."""
    return {"kind": call.kind, "layer": layer, "head": call.head}


def scenario_cells(scenario: Scenario, layer_count: int) -> list[nbformat.NotebookNode]:
    """The setup cell, then each call in a helper function, in a loop over ``layer_count`` layers, followed
    by a statement, and as the cell's last value; each cell tagged with the views it must display."""
    cells = [_cell(scenario.setup, scenario.name, "setup", [])]
    for call in scenario.calls:
        helper = f"show_{call.kind}_view"
        cells += [
            _cell(
                f"def {helper}():\n{textwrap.indent(scenario.setup + call.code, '    ')}\n\n\n{helper}()",
                scenario.name,
                f"{call.kind}-function",
                [_view(call, call.layer)],
            ),
            _cell(
                f"for layer in range({scenario.layers}):\n    {call.looped}",
                scenario.name,
                f"{call.kind}-loop",
                [_view(call, layer) for layer in range(layer_count)],
            ),
            _cell(f"{call.code}\nafter = 1", scenario.name, f"{call.kind}-then", [_view(call, call.layer)]),
            _cell(call.code, scenario.name, f"{call.kind}-last", [_view(call, call.layer)]),
        ]
    return cells


def build_notebook(models: dict[str, str], layer_counts: dict[str, int]) -> nbformat.NotebookNode:
    """Every scenario, then attnscope's own API, in one notebook; ``models`` maps names to checkpoints."""
    book = nbformat.v4.new_notebook()
    book.cells = [
        _cell(PRELUDE, "prelude", "imports", []),
        _cell(
            f"MODELS = {models!r}\nSENTENCE_A, SENTENCE_B, TARGET = {SENTENCE_A!r}, {SENTENCE_B!r}, {TARGET!r}",
            "prelude",
            "inputs",
            [],
        ),
    ]
    for scenario in SCENARIOS:
        book.cells += scenario_cells(scenario, layer_counts[scenario.name])
    book.cells += [_cell(code, "own_api", name, [{"output_type": t} for t in types]) for name, code, types in OWN_API]
    return book


def layer_count(scenario: Scenario, models: dict[str, str]) -> int:
    """How many layers the scenario's loop covers: its model's (encoder) depth, read from its config."""
    import transformers

    config = transformers.AutoConfig.from_pretrained(models[scenario.models[0]])
    for name in ("num_hidden_layers", "n_layer", "n_layers", "encoder_layers", "num_layers"):
        if isinstance(getattr(config, name, None), int):
            return getattr(config, name)
    raise AssertionError(f"no layer count in {models[scenario.models[0]]}'s config")


def attnscope_views(cell: nbformat.NotebookNode) -> list[tuple[str, str, dict[str, Any]]]:
    """(output type, view kind, data) of each attnscope view among ``cell``'s outputs, in order: a widget
    whose plain-text form names a view class (not, say, a progress bar's widget)."""
    found = []
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        kind = re.match(r"<attnscope\.views\.\w+\.(HeadView|ModelView|NeuronView) object", data.get("text/plain", ""))
        if WIDGET_MIME in data and kind:
            found.append((output["output_type"], VIEW_CLASSES[kind.group(1)], data))
    return found


def cells_of(book: nbformat.NotebookNode, scenario: str) -> list[nbformat.NotebookNode]:
    return [c for c in book.cells if c.metadata["attnscope"]["scenario"] == scenario]


@pytest.fixture(scope="session")
def bertviz_models(tiny_path) -> dict[str, str]:
    """Checkpoint folder of every model the scenarios load, by name (tiny models have their LM heads, as
    hub checkpoints such as bert-base-uncased do; the notebooks load the base model from them)."""
    return {**{name: str(tiny_path(name)) for name in TINY}, "default": str(default_model_path())}


@pytest.fixture(scope="session")
def bertviz_notebook(bertviz_models, tmp_path_factory) -> nbformat.NotebookNode:
    """The notebook of every scenario, executed once by nbclient in a kernel running this interpreter, with
    every Jupyter/IPython folder in a temporary directory; errors are kept as outputs for the tests to report."""
    base = tmp_path_factory.mktemp("bertviz-notebook")
    env = sealed_env(base)
    install_kernel(env)
    counts = {s.name: layer_count(s, bertviz_models) for s in SCENARIOS}
    book = build_notebook(bertviz_models, counts)
    work = Path(base / "work")
    work.mkdir()
    with pytest.MonkeyPatch.context() as patch:  # where the client looks for the kernelspec
        for name in ("JUPYTER_DATA_DIR", "JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_PLATFORM_DIRS"):
            patch.setenv(name, env[name])
        client = NotebookClient(
            book,
            timeout=300,
            kernel_name=KERNEL_NAME,
            allow_errors=True,
            store_widget_state=False,  # the tests read outputs only: 40% less to keep
            resources={"metadata": {"path": str(work)}},
        )
        client.execute(env=env)
    return book
