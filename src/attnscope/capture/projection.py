"""Each attention layer's output projection W_O, split per head: what turns a head's values into its
contribution to the residual stream (``f(x) = v · W_O^h``, Kobayashi et al. 2020).

The projection is found on the module that runs the attention (``o_proj``: Llama, Mistral, Qwen,
Gemma; ``out_proj``: BART; ``c_proj``: GPT-2, a transposed Conv1D; ``o``: T5, MPNet; ``out_lin``:
DistilBERT; ``dense``: ALBERT, GPT-NeoX) or beside it (``output.dense``: BERT, RoBERTa, ELECTRA).
The bias is left out, as in the paper. Arrays are cached per projection module until its weight
changes, so every capture of a model shares one read-only copy.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import torch

OWN_NAMES = ("o_proj", "out_proj", "c_proj", "o", "out_lin", "dense")
"""Attribute names of the output projection on the attention module itself, tried in order."""
SIBLING_PATH = ("output", "dense")
"""Where BERT-like models keep it: ``<parent>.output.dense`` beside the ``<parent>.self`` attention."""

_CACHE: weakref.WeakKeyDictionary[torch.nn.Module, dict[tuple, tuple[tuple[int, ...], np.ndarray]]] = (
    weakref.WeakKeyDictionary()
)


class ProjectionNotFound(LookupError):
    """No output projection of the expected shape was found for an attention module."""


def _weight_in_out(module: Any) -> torch.Tensor | None:
    """The projection's weight as ``(in, out)``: a Linear's transposed, a Conv1D's (GPT-2) as stored."""
    from transformers.pytorch_utils import Conv1D

    if isinstance(module, torch.nn.Linear):
        return module.weight.detach().T
    if isinstance(module, Conv1D):
        return module.weight.detach()
    return None


def _candidates(model: torch.nn.Module, module_name: str) -> list[torch.nn.Module]:
    """Modules that may be ``module_name``'s output projection, most likely first."""
    attention = model.get_submodule(module_name)
    found = [getattr(attention, n) for n in OWN_NAMES if isinstance(getattr(attention, n, None), torch.nn.Module)]
    sibling: Any = model.get_submodule(module_name.rpartition(".")[0])
    for part in SIBLING_PATH:
        sibling = getattr(sibling, part, None)
    if isinstance(sibling, torch.nn.Module):
        found.append(sibling)
    return found


def find_projection(model: torch.nn.Module, module_name: str, inputs: int) -> torch.nn.Module:
    """The Linear or Conv1D with ``inputs`` inputs that projects ``module_name``'s heads back to the hidden size.

    Raises `ProjectionNotFound`, naming what was looked for, when there is none where transformers'
    models keep it.
    """
    for module in _candidates(model, module_name):
        weight = _weight_in_out(module)
        if weight is not None and weight.shape[0] == inputs:
            return module
    raise ProjectionNotFound(
        f"no output projection with {inputs} inputs was found for {module_name} "
        f"({type(model.get_submodule(module_name)).__name__}): looked for {', '.join(OWN_NAMES)} on it "
        f"and {'.'.join(SIBLING_PATH)} beside it"
    )


def _found_weight(module: Any) -> torch.Tensor:
    """The ``(in, out)`` weight of a module `find_projection` found (so it has one)."""
    weight = _weight_in_out(module)
    if weight is None:
        raise ProjectionNotFound(f"{type(module).__name__} is not a Linear or Conv1D projection")
    return weight


def stack_projection(
    model: torch.nn.Module, module_names: list[str], heads: int, head_dim: int, dtype: torch.dtype = torch.float32
) -> np.ndarray:
    """Every layer's output projection split per head: ``(layers, heads, head_dim, hidden)``, bias excluded.

    ``W_O^h`` is rows ``h·head_dim`` to ``(h+1)·head_dim`` of the ``(in, out)`` weight, so a head's
    contribution to the layer's output is ``head_output^h · W_O^h``. The result is read-only and shared
    by every call with the same modules until one of their weights changes.
    """
    modules = [find_projection(model, name, heads * head_dim) for name in module_names]
    versions = tuple(m.weight._version for m in modules)
    key = (tuple(module_names), heads, head_dim, str(dtype))
    cached = _CACHE.setdefault(model, {})
    if key in cached and cached[key][0] == versions:
        return cached[key][1]
    array = np.stack(
        [_found_weight(m).to(dtype=dtype, device="cpu").reshape(heads, head_dim, -1).numpy() for m in modules]
    )
    array.flags.writeable = False
    cached[key] = (versions, array)
    return array
