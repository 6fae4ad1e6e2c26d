"""attnscope: see what a Transformer attends to and what its internal representations encode.

>>> import attnscope
>>> model = attnscope.load()                      # the offline default, all-MiniLM-L6-v2
>>> cap = attnscope.capture(model, "The girl ran to a local pub.", fields="all")
>>> cap.attentions.shape                          # (layers, heads, query, key)
"""

from .analysis import Aggregation, aggregate
from .analysis.comparison import Comparison, compare, compare_models
from .capture import (
    ALL_FIELDS,
    DEFAULT_FIELDS,
    DEFAULT_MODEL,
    AttentionStack,
    Capture,
    CaptureInput,
    Generation,
    GenerationStep,
    ModelHandle,
    Predictions,
    Tokens,
    capture,
    capture_batch,
    encode,
    generate,
    load,
    masking_caveat,
    tokens_from_ids,
    wrap,
)
from .errors import (
    AttnscopeError,
    AttnscopeWarning,
    InputError,
    MaskingWarning,
    ModelNotFoundError,
    NoLanguageModelHeadError,
)
from .views import DiffView, HeadView, ModelView, NeuronView, diff_view, head_view, model_view, neuron_view

__version__ = "0.1.0"

__all__ = [
    "ALL_FIELDS",
    "Aggregation",
    "DEFAULT_FIELDS",
    "DEFAULT_MODEL",
    "AttentionStack",
    "AttnscopeError",
    "Capture",
    "CaptureInput",
    "Generation",
    "GenerationStep",
    "HeadView",
    "InputError",
    "ModelHandle",
    "ModelNotFoundError",
    "NoLanguageModelHeadError",
    "Predictions",
    "Tokens",
    "aggregate",
    "capture",
    "capture_batch",
    "encode",
    "generate",
    "head_view",
    "load",
    "AttnscopeWarning",
    "MaskingWarning",
    "masking_caveat",
    "tokens_from_ids",
    "wrap",
    "Comparison",
    "compare",
    "compare_models",
    "DiffView",
    "diff_view",
    "ModelView",
    "model_view",
    "NeuronView",
    "neuron_view",
]
