"""Capture engine: load a model, run it on text, and record what every attention head computed."""

from .engine import CaptureInput, capture, capture_batch
from .from_ids import tokens_from_ids
from .generation import generate
from .inputs import Tokens, encode, masking_caveat
from .loading import DEFAULT_MODEL, ModelHandle, StackShape, load, wrap
from .result import ALL_FIELDS, DEFAULT_FIELDS, AttentionStack, Capture, Generation, GenerationStep, Predictions

__all__ = [
    "ALL_FIELDS",
    "DEFAULT_FIELDS",
    "DEFAULT_MODEL",
    "AttentionStack",
    "Capture",
    "CaptureInput",
    "Generation",
    "GenerationStep",
    "ModelHandle",
    "Predictions",
    "StackShape",
    "Tokens",
    "capture",
    "capture_batch",
    "encode",
    "generate",
    "load",
    "masking_caveat",
    "tokens_from_ids",
    "wrap",
]
