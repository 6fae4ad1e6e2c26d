"""BertViz-style arguments checked and converted: per-layer attention read as one stack, token lists to strings.

BertViz's notebooks were written for transformers 2-4. Ported to transformers 5 (which attnscope needs),
some of their idioms hand a view something other than attention or tokens: ``outputs[-1]`` is now a
model's (empty) ``cross_attentions``, a ``DynamicCache`` or the pooler output; the whole ``outputs``;
token ids or the tokenizer's ``BatchEncoding`` for tokens. Each of these *porting traps* is recognised
here and named with what to write instead (README, "Porting a BertViz notebook").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError, check_range, count
from .generated_steps import assemble_steps, is_stepwise

NO_WEIGHTS = (
    "the model ran without attention weights: transformers' SDPA and flash-attention kernels do not return "
    "them, and a model returns them only when asked. Capture them with attnscope.capture(handle, text), "
    "where handle = attnscope.load(name) or attnscope.wrap(model, tokenizer), and pass the capture to the "
    'view; or load the model with attn_implementation="eager" and call it with output_attentions=True'
)
"""Why attention given to a view can be None or empty, and how to get the weights (any view, any stack)."""

ATTENTIONS = "outputs.attentions (outputs = model(**inputs, output_attentions=True))"
"""What BertViz's ``outputs[-1]`` is written as under transformers 5."""

SEQ2SEQ_ATTENTIONS = (
    "encoder_attention=outputs.encoder_attentions, decoder_attention=outputs.decoder_attentions, "
    "cross_attention=outputs.cross_attentions"
)
TOKENS_FROM_IDS = 'tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])'


def no_weights_error(what: str, given: str) -> InputError:
    """The error for attention that holds no weights: ``given`` says what arrived ("None", "a tuple of 6 Nones")."""
    return InputError(f"{what} is {given}: {NO_WEIGHTS}")


def empty_attention_error(what: str, given: str) -> InputError:
    """The error for an empty tuple of attention: ``outputs[-1]`` ported from transformers 4, or SDPA's output.

    Under transformers 5 a model run under SDPA with ``output_attentions=True`` returns ``attentions == ()``,
    and ``outputs[-1]`` of an encoder or decoder without cross-attention is its empty ``cross_attentions``
    (transformers 4 put the self-attention last, and BertViz's notebooks read it there).
    """
    if what != "attention":
        return no_weights_error(what, given)
    return InputError(
        f"{what} is {given}. If it is outputs[-1], as BertViz's notebooks (written for transformers 4) pass it: "
        "under transformers 5 that is the model's cross_attentions, empty for a model without cross-attention; "
        f"pass {ATTENTIONS}. If it is outputs.attentions, {NO_WEIGHTS}"
    )


def _module_of(value: Any) -> str:
    return type(value).__module__ or ""


def attention_trap(attention: Any, what: str) -> str | None:
    """The message for attention that is a known porting trap, or None when it is not one.

    Recognised: a transformers ``ModelOutput`` (the whole ``outputs``) and a transformers ``Cache``
    (``outputs[-1]`` of a decoder called without ``output_attentions=True``).
    """
    name = type(attention).__name__
    if _module_of(attention).startswith("transformers") and hasattr(attention, "to_tuple"):
        has = [field for field in ("attentions", "encoder_attentions") if field in attention.keys()]
        if "encoder_attentions" in has:
            return f"{what} is the model's whole output ({name}): pass its attentions, {SEQ2SEQ_ATTENTIONS}"
        if has:
            return f"{what} is the model's whole output ({name}): pass outputs.attentions"
        return (
            f"{what} is the model's whole output ({name}) and it holds no attentions: call the model with "
            f"output_attentions=True and pass {ATTENTIONS}"
        )
    if _module_of(attention).startswith("transformers") and name.endswith("Cache"):
        return (
            f"{what} is a {name}, the model's past_key_values: outputs[-1] is not the attention under "
            f"transformers 5. Pass {ATTENTIONS}"
        )
    return None


def as_numpy(value: Any, what: str) -> np.ndarray:
    """A torch tensor or array-like as a float numpy array (float32 stays float32: no copy to widen it)."""
    if hasattr(value, "detach"):  # torch.Tensor, without importing torch
        value = value.detach().to("cpu").float().numpy()
    try:
        array = np.asarray(value)
        if array.dtype not in (np.float32, np.float64):
            array = array.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must be numeric arrays or tensors: {exc}") from None
    return array


class StackedLayers:
    """Per-layer ``(heads, query, key)`` arrays read as one ``(layers, heads, query, key)`` stack, not copied into one.

    ``stacked[l]`` is layer ``l`` as it was given (a view of the caller's tensor: no copy); ``np.asarray(stacked)``
    (and any other index) stacks every layer into a new array. BertViz-style attention arrives as one tensor per
    layer, and the payload reads it a layer at a time (`payload.check_weights`, `payload.build_payload`): at
    2,048 tokens, 12 layers x 12 heads, one float32 copy of the whole would be 2.4 GB written for nothing.
    """

    ndim = 4

    def __init__(self, layers: list[np.ndarray]) -> None:
        self.layers = layers
        self.shape: tuple[int, int, int, int] = (len(layers), *layers[0].shape)
        self.dtype = np.result_type(*layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __repr__(self) -> str:
        return f"StackedLayers({self.shape}, {self.dtype})"

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            return self.layers[index]
        return np.asarray(self)[index]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.stack(self.layers) if dtype is None else np.stack(self.layers).astype(dtype, copy=False)


def stack_layers(attention: Any, batch_index: int, what: str) -> StackedLayers:
    """BertViz-style attention (a tuple/list of per-layer ``(batch, heads, query, key)``) as (layers, heads, query,
    key): a `StackedLayers` of the ``batch_index`` entry of each layer, not a copy.

    A single array of shape ``(layers, batch, heads, query, key)`` is taken too, and so is
    ``model.generate``'s step-wise attention, assembled into one matrix (`generated_steps`). None, an empty tuple or
    a tuple of Nones (what models run under SDPA return) raise `no_weights_error` or
    `empty_attention_error`; porting traps (see
    `attention_trap`) raise an `InputError` saying what to pass instead.
    """
    if attention is None:
        raise no_weights_error(what, "None")
    trap = attention_trap(attention, what)
    if trap:
        raise InputError(trap)
    if is_stepwise(attention):
        layers = assemble_steps(attention, what, as_numpy)
    elif isinstance(attention, (tuple, list)):
        if not attention:
            raise empty_attention_error(what, f"an empty {type(attention).__name__}")
        if all(a is None for a in attention):
            raise no_weights_error(
                what, f"a {type(attention).__name__} of {count(len(attention), 'None')}, one per layer"
            )
        missing = [i for i, a in enumerate(attention) if a is None]
        if missing:
            raise InputError(
                f"{what} layer {missing[0]} is None while layer "
                f"{next(i for i, a in enumerate(attention) if a is not None)} holds weights: "
                "pass the weights of every layer"
            )
        layers = [as_numpy(a, what) for a in attention]
    else:
        array = as_numpy(attention, what)
        if array.ndim != 5:
            raise InputError(
                f"{what} must be a tuple or list with one (batch, heads, query, key) array per layer "
                f"(or one (layers, batch, heads, query, key) array); got an array of shape {array.shape}. "
                f"outputs[-1] is not the attention under transformers 5: pass {ATTENTIONS}"
            )
        layers = list(array)
    for i, layer in enumerate(layers):
        if layer.ndim != 4:
            raise InputError(
                f"{what} layer {i} has {count(layer.ndim, 'dimension')} {layer.shape}: each layer must be "
                "(batch, heads, query, key), 4 dimensions, as model(..., output_attentions=True) returns"
            )
        if layer.shape != layers[0].shape:
            raise InputError(f"{what} layer {i} has shape {layer.shape} but layer 0 has {layers[0].shape}")
    check_range(
        "batch_index", batch_index, layers[0].shape[0], f"{what} (batch size {layers[0].shape[0]})", unit="batch index"
    )
    return StackedLayers([layer[batch_index] for layer in layers])


def check_tokens(tokens: Any, what: str) -> list[str]:
    """``tokens`` as a list of strings, one per token; token ids, a string, a batch or the tokenizer's
    output raise `InputError` saying how to get the token strings."""
    if tokens is None:
        raise InputError(f"{what} are missing: pass one string per token, {TOKENS_FROM_IDS}")
    if isinstance(tokens, str):
        raise InputError(f"{what} is one string ({tokens[:40]!r}): pass one string per token, {TOKENS_FROM_IDS}")
    if isinstance(tokens, dict) or hasattr(tokens, "input_ids"):
        raise InputError(
            f"{what} is the tokenizer's output ({type(tokens).__name__}): pass the token strings, {TOKENS_FROM_IDS}"
        )
    if hasattr(tokens, "detach") or isinstance(tokens, np.ndarray):
        tokens = tokens.tolist()
    try:
        tokens = list(tokens)
    except TypeError:
        raise InputError(f"{what} must be a list of strings, one per token; got {type(tokens).__name__}") from None
    if tokens and all(isinstance(t, (list, tuple)) for t in tokens):
        raise InputError(
            f"{what} holds a batch of {count(len(tokens), 'sequence')}: pass one sequence's tokens "
            f"({what}[0], or {TOKENS_FROM_IDS})"
        )
    bad = next((i for i, t in enumerate(tokens) if not isinstance(t, str)), None)
    if bad is not None:
        kind = "token ids" if isinstance(tokens[bad], (int, np.integer)) else f"a {type(tokens[bad]).__name__}"
        raise InputError(
            f"{what} must be strings, one per token; {what}[{bad}] is {kind}"
            + (f": convert the ids with {TOKENS_FROM_IDS}" if kind == "token ids" else "")
        )
    if len(tokens) == 0:
        raise InputError(f"{what} are empty: the view needs at least one token")
    return tokens
