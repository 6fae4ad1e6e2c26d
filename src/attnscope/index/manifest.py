"""An index's manifest: what it was built from (model, tokenizer, corpus, versions) and its shapes.

The manifest is the last file written into a build, so a directory without a valid one is never taken
for an index. Fingerprints of the model and tokenizer let a search refuse a model other than the one
the index was built with.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from ..errors import AttnscopeError
from ..files import atomic_file
from .layout import MANIFEST

FORMAT = "attnscope-index"
FORMAT_VERSION = 1


class IndexFormatError(AttnscopeError):
    """A directory that is not a complete attnscope index (missing, partial, corrupt, other version)."""


class IndexMismatchError(AttnscopeError):
    """An index used with a model or tokenizer other than the one it was built with."""


@dataclass(frozen=True)
class Manifest:
    """Everything a reader needs to trust and interpret an index directory.

    ``layers`` counts the transformer layers; vectors exist for layers ``0..layers-1``: the hidden
    state after layer ``l`` (the last is the model's output) and the head embedding of layer ``l``
    (each head's output unit-normalised, concatenated: ``heads * head_dim`` values). With
    ``approximate_lists`` > 0 the vector sets are approximate (IVF with that many clusters; a search
    scans ``default_probes`` of them unless told otherwise); 0 means exact. ``silver`` maps each
    field a model predicted (`attnscope.corpus.Corpus.silver`) to that model (``"spacy <pipeline>
    <version>"``); indexes built before it existed read as having none.

    ``stored_layers`` lists the layers whose vectors and attention the index holds, ascending
    (``attnscope index --layers``); None (indexes built before the option existed) means every layer.
    `layer_numbers` gives them in both cases; files are named by these layer numbers.

    ``attention`` is "stored" (``attention.bin`` and its spans hold every sentence's blocks) or
    "recomputed" (no attention files: a search recomputes its matches' attention with the query's
    model, ``attnscope index --attention recomputed``); indexes built before the option read as "stored".

    ``codes`` is "sq" (``vector_bits`` a value, scalar-quantised) or "pq<m>" (``m`` bytes a vector,
    product-quantised: each set a faiss IVF-PQ file, `pq.PQSet`).

    ``model_fingerprint_version`` says which `model_fingerprint` made ``model_fingerprint`` (indexes built
    before version 2 read as 1, and are checked with that one).

    ``vector_shards`` (an index committed without merging its vector sets, ``index-commit --fan-out``)
    lists the shards whose vector set files the index keeps, each ``{"folder", "first", "rows"}``: every
    set is searched shard by shard, the top-k merged (`shard_sets.ShardedSet`); None: one file per set.
    """

    model: str
    model_fingerprint: str
    tokenizer_fingerprint: str
    corpus: str
    corpus_checksum: str
    corpus_files: list[str]
    annotator: str
    fields: list[str]
    layers: int
    heads: int
    head_dim: int
    hidden_size: int
    sentences: int
    tokens: int
    truncated_sentences: int
    dropped_tokens: int
    skipped_sentences: int
    vector_bits: int
    attention_bits: int
    versions: dict[str, str]
    revision: str | None = None
    approximate_lists: int = 0
    default_probes: int = 0
    created: str = ""
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    files: dict[str, int] = field(default_factory=dict)
    silver: dict[str, str] = field(default_factory=dict)
    stored_layers: list[int] | None = None
    vector_shards: list[dict[str, Any]] | None = None
    codes: str = "sq"
    attention: str = "stored"
    model_fingerprint_version: int = 1

    @property
    def layer_numbers(self) -> list[int]:
        """The layers this index stores vectors and attention for (every layer unless built with ``--layers``)."""
        return list(range(self.layers)) if self.stored_layers is None else list(self.stored_layers)

    @property
    def all_layers(self) -> bool:
        """Whether the index stores every layer of its model."""
        return self.layer_numbers == list(range(self.layers))

    @property
    def head_embedding_size(self) -> int:
        return self.heads * self.head_dim

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def read_manifest(directory: Path) -> Manifest:
    """The manifest of an index directory; `IndexFormatError` when it is not a complete index."""
    path = directory / MANIFEST
    if not directory.is_dir():
        raise IndexFormatError(
            f"no index at {directory}: the directory does not exist (build one with `attnscope index`)"
        )
    if not path.is_file():
        partial = " (it looks like an unfinished build)" if any(directory.iterdir()) else ""
        raise IndexFormatError(f"{directory} is not an attnscope index: it has no {MANIFEST}{partial}")
    manifest = parse_manifest(path.read_text(encoding="utf-8"), str(path), str(directory))
    sizes = {}
    for name in manifest.files:
        file = directory / name
        sizes[name] = file.stat().st_size if file.is_file() else None
    check_sizes(manifest, sizes, str(directory))
    return manifest


def parse_manifest(text: str, path: str, where: str) -> Manifest:
    """The manifest in ``text``, read from ``path`` (named in errors) of the index at ``where``.
    Raises `IndexFormatError` when it is not one this attnscope reads."""
    try:
        raw = json.loads(text)
        if raw.get("format") != FORMAT:
            raise IndexFormatError(f"{path} is not an attnscope index manifest")
        if raw.get("format_version") != FORMAT_VERSION:
            raise IndexFormatError(
                f"{where} has index format {raw.get('format_version')}; this attnscope reads format "
                f"{FORMAT_VERSION}: rebuild it with `attnscope index`"
            )
        manifest = Manifest(**raw)
    except (ValueError, TypeError) as error:
        raise IndexFormatError(f"{path} is corrupt ({error}): rebuild the index with `attnscope index`") from None
    if manifest.attention not in ("stored", "recomputed"):
        raise IndexFormatError(
            f"{path} is corrupt: attention {manifest.attention!r} is neither 'stored' nor 'recomputed'; "
            "rebuild the index with `attnscope index`"
        )
    return manifest


def check_sizes(manifest: Manifest, sizes: dict[str, int | None], where: str) -> None:
    """Raise `IndexFormatError` unless every file the manifest lists has its listed size in ``sizes``
    (name -> bytes, None or absent for a missing file)."""
    for name, size in manifest.files.items():
        if sizes.get(name) != size:
            raise IndexFormatError(
                f"{where} is damaged: {name} is missing or has the wrong size (expected {size} bytes); "
                "rebuild it with `attnscope index`"
            )


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Write the manifest atomically (temporary file, fsync, rename)."""
    with atomic_file(directory / MANIFEST, "w", durable=True, unique=False) as handle:
        handle.write(manifest.to_json())


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """SHA-256 of what decides tokenisation: the tokenizer class, its vocabulary and special tokens."""
    digest = hashlib.sha256(type(tokenizer).__name__.encode())
    vocab = sorted(tokenizer.get_vocab().items())
    digest.update(json.dumps(vocab, ensure_ascii=False).encode("utf-8"))
    digest.update(json.dumps(sorted(map(str, tokenizer.all_special_tokens))).encode("utf-8"))
    digest.update(str(getattr(tokenizer, "do_lower_case", "")).encode())
    return digest.hexdigest()


MODEL_FINGERPRINT_VERSION = 2
"""The `model_fingerprint` new manifests and plans record (``model_fingerprint_version``): 1 hashed the
first 64 values of each tensor (blind to a change past them: a head's zeroed query rows); 2 hashes a
strided sample across each whole tensor. Indexes record which one made their fingerprint and are checked
with that one, so indexes built before version 2 keep opening."""
SAMPLES_PER_TENSOR = 1 << 18
"""Version 2 hashes about this many values of each tensor, evenly spaced over all of it."""


def model_fingerprint(model: Any, version: int = MODEL_FINGERPRINT_VERSION) -> str:
    """SHA-256 of every parameter's name, shape and values: cheap, and different for different
    checkpoints of one architecture. ``version`` 2 (the default): a strided sample of each tensor's
    values, every ``ceil(n / SAMPLES_PER_TENSOR)``-th (odd, so it never steps in time with a power-of-two
    row width) from the first to the last, every value of a tensor of up to 2^18; 1: the first 64
    values of each tensor (`MODEL_FINGERPRINT_VERSION`), for indexes built with it. Raises
    `IndexFormatError` for a version this attnscope does not know."""
    if version not in (1, 2):
        raise IndexFormatError(
            f"model fingerprint version {version} is not one this attnscope knows (1-{MODEL_FINGERPRINT_VERSION}): "
            "upgrade attnscope to use this index"
        )
    digest = hashlib.sha256()
    for name, parameter in model.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(parameter.shape)).encode())
        flat = parameter.detach().reshape(-1)
        if version == 1:
            sample = flat[:64]
        else:
            step = -(-flat.numel() // SAMPLES_PER_TENSOR)
            sample = flat[:: step | 1]
        digest.update(sample.float().cpu().numpy().tobytes())
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    """Versions of the packages an index's numbers depend on."""
    versions = {}
    for name in ("attnscope", "torch", "transformers", "tokenizers", "numpy", "faiss-cpu", "pyarrow"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def check_model(manifest: Manifest, handle: Any, directory: Path) -> None:
    """Refuse a model or tokenizer other than the index's, saying which differs."""
    if tokenizer_fingerprint(handle.tokenizer) != manifest.tokenizer_fingerprint:
        raise IndexMismatchError(
            f"the index at {directory} was built with the tokenizer of {manifest.model!r}; model "
            f"{handle.name!r} tokenises differently, so its tokens cannot be searched there. "
            f"Load {manifest.model!r} (or build an index for {handle.name!r})."
        )
    if model_fingerprint(handle.model, manifest.model_fingerprint_version) != manifest.model_fingerprint:
        raise IndexMismatchError(
            f"the index at {directory} was built with the weights of {manifest.model!r}; model "
            f"{handle.name!r} has different weights, so its vectors are not comparable. "
            f"Load {manifest.model!r} (or build an index for {handle.name!r})."
        )
