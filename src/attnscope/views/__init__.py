"""Views of captured attention: the head, model and neuron views as notebook widgets and HTML files.

Each view is a widget (`widget.AttentionWidget`) drawing with an ES module from ``attnscope/static``;
attention crosses as uint8 bytes (`payload`). The functions take a `Capture` or BertViz's arguments; with
BertViz's, they display the view where they are called, as BertViz does (`display`).
"""

from ..quantise import MAX_ERROR, SCALE, quantise
from .diff import DiffView, diff_view
from .head import HeadView, head_view
from .html import page
from .model import ModelView, model_view
from .neuron import NeuronView, neuron_view
from .overview import ModelOverview
from .payload import DEFAULT_THRESHOLD, Payload, payload_from_arrays, payload_from_capture
from .widget import AttentionWidget, PayloadWidget

__all__ = [
    "DEFAULT_THRESHOLD",
    "MAX_ERROR",
    "SCALE",
    "AttentionWidget",
    "DiffView",
    "HeadView",
    "ModelOverview",
    "ModelView",
    "NeuronView",
    "Payload",
    "PayloadWidget",
    "diff_view",
    "head_view",
    "model_view",
    "neuron_view",
    "page",
    "payload_from_arrays",
    "payload_from_capture",
    "quantise",
]
