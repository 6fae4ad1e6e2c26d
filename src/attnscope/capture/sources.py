"""Where a model name points, checked before transformers is asked to load it.

A name is a local directory or a Hugging Face hub name (``NAME`` or ``OWNER/NAME``). Two faults are
caught here because transformers reports them badly: a local path that does not exist (it would be
tried as a hub name and answered with a message about repo ids), and a hub name that is not in the
local cache while the hub cannot be reached (it would be retried for about half a minute). A hub
name whose files are cached loads from the cache, without the retries, when the hub is unreachable.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import ModelNotFoundError

PROBE_TIMEOUT = 3.0
"""Seconds the one request that tells whether the hub is reachable may take."""


def looks_like_path(name: str) -> bool:
    """True when ``name`` can only be meant as a filesystem path: absolute, starting with ``.`` or ``~``,
    holding a backslash, or with more than one ``/`` (a hub name has at most one)."""
    return os.path.isabs(name) or name.startswith((".", "~")) or "\\" in name or name.count("/") > 1


def check_missing_path(name: str, expanded: str) -> None:
    """Raise `ModelNotFoundError` when ``name`` (``expanded``: with ``~`` expanded) names no existing path
    and cannot be a hub name either; return when it may be a hub name."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if looks_like_path(name):
        shown = name if expanded == name else f"{name} ({expanded})"
        raise ModelNotFoundError(
            f"model {name!r}: the path {shown} does not exist. Give the directory of a saved model "
            "(with its config.json), 'default', or a hub name (NAME or OWNER/NAME)"
        )
    try:
        validate_repo_id(name)
    except HFValidationError:
        raise ModelNotFoundError(
            f"model {name!r} is neither an existing local path nor a valid hub name (NAME or OWNER/NAME, "
            "letters, digits, '-', '_' and '.'). Give the directory of a saved model, 'default', or a hub name"
        ) from None


def hub_unreachable(timeout: float = PROBE_TIMEOUT) -> str | None:
    """Why the Hugging Face hub cannot be reached now (one request, no retries), or None when it answers."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception as error:  # any failure of this one request (DNS, refused, timeout, proxy) means unreachable
        text = str(error).strip()
        return text.splitlines()[0] if text else type(error).__name__
    return None


def hub_options(name: str, revision: str | None = None) -> dict[str, Any]:
    """Extra ``from_pretrained`` options for the hub name ``name``: ``local_files_only`` when the hub is
    unreachable but the model is in the local cache. Raises `ModelNotFoundError` when the model is not
    cached and the hub is offline (``HF_HUB_OFFLINE``) or unreachable, naming the cache and the reason."""
    from huggingface_hub import constants, try_to_load_from_cache

    cached = isinstance(try_to_load_from_cache(name, "config.json", revision=revision), str)
    where = f"it is not in the local Hugging Face cache ({constants.HF_HUB_CACHE})"
    advice = "Give a local path, 'default', or a model already in the cache; downloading a model needs the hub once."
    if constants.HF_HUB_OFFLINE:
        if cached:
            return {}
        raise ModelNotFoundError(
            f"model {name!r} was not found: {where}, and the hub is offline (HF_HUB_OFFLINE is set). {advice}"
        )
    reason = hub_unreachable()
    if reason is None:
        return {}
    if cached:
        return {"local_files_only": True}
    raise ModelNotFoundError(
        f"model {name!r} was not found: {where}, and the hub at {constants.ENDPOINT} is unreachable "
        f"({reason}). {advice}"
    )
