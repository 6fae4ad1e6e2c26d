"""Checks the CLI makes before the expensive work, and the notes it prints beside results.

Layer and head numbers are checked against what is known before any weights load: an index's
manifest (see `attnscope.index.Index.check_query`), or a model's config read alone
(`config_stacks`). The error names the allowed range, as the later checks would.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from .errors import check_range


def config_stacks(model: str, trust_remote_code: bool = False) -> tuple[str, dict[str, Any]] | None:
    """``(main stack, {stack: StackShape})`` of ``model`` read from its config alone (no weights), or
    None when the config cannot be read or understood here (loading the model then reports why).

    Raises `ModelNotFoundError` at once for a path that does not exist, or a hub name that is neither
    cached nor reachable.
    """
    import transformers

    from .capture.loading import model_kind, quiet_transformers, resolve_source, stack_shapes
    from .capture.sources import hub_options

    source = resolve_source(model)
    options: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if not os.path.exists(source):
        options.update(hub_options(model))
    try:
        with quiet_transformers():
            config = transformers.AutoConfig.from_pretrained(source, **options)
        kind = model_kind(config)
        stacks = stack_shapes(config, kind)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # `load` reads the config again and says what is wrong with it
    return ("decoder" if kind == "decoder" else "encoder"), stacks


def check_layer_and_heads(model: str, layer: int | None, heads: Sequence[int], trust_remote_code: bool = False) -> None:
    """Refuse a ``layer`` or ``heads`` outside ``model``'s main attention stack, from its config alone.

    Raises `InputError` ("layer 9 is out of range: the encoder stack of ... has layers 0-5")."""
    if layer is None and not heads:
        return
    found = config_stacks(model, trust_remote_code)
    if found is None:
        return
    role, stacks = found
    shape = stacks.get(role)
    if shape is None:
        return
    from .capture.loading import DEFAULT_MODEL

    what = f"the {role} stack of model {DEFAULT_MODEL if model == 'default' else model!r}"
    if layer is not None:
        check_range("layer", layer, shape.layers, what)
    for head in heads:
        check_range("head", head, shape.heads, what)
