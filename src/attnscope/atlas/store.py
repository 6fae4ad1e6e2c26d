"""The atlas on disk: ``atlas.json`` (everything) and ``atlas.parquet`` (one row per head), written
atomically; and the atlas of an index, computed once from the index's own tables and cached beside it."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..analysis.probes import check_probe_names
from ..capture.inputs import encode
from ..capture.loading import ModelHandle
from ..errors import AttnscopeError, WriteError, count
from ..files import replace_atomically, write_text_atomically, writing
from ..index.manifest import IndexFormatError, Manifest, check_model, read_manifest
from ..index.search import Index
from ..index.tables import Tables
from .compute import (
    AtlasSentence,
    CorpusInfo,
    Progress,
    choose_relations,
    default_probes,
    long_sentence_notices,
    relation_counts,
    score_sentences,
    with_probes,
)
from .model import Atlas

ATLAS_JSON = "atlas.json"
ATLAS_PARQUET = "atlas.parquet"
ATLAS_HTML = "atlas.html"

_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


class AtlasFormatError(AttnscopeError):
    """A file that is not an atlas written by this version of attnscope."""


def write_atlas(atlas: Atlas, directory: Path | str) -> tuple[Path, Path]:
    """Write ``atlas.json`` and ``atlas.parquet`` into ``directory`` (created if needed), each atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory = Path(directory)
    with writing(directory):
        directory.mkdir(parents=True, exist_ok=True)
    document = json.dumps(atlas.to_dict(), ensure_ascii=False)
    table = pa.table(atlas.table()).replace_schema_metadata(
        {"attnscope": json.dumps({"model": atlas.model, "corpus": atlas.corpus, "stack": atlas.stack})}
    )
    parquet = replace_atomically(directory / ATLAS_PARQUET, lambda path: pq.write_table(table, path))
    return write_text_atomically(directory / ATLAS_JSON, document), parquet


def read_atlas(path: Path | str) -> Atlas:
    """The atlas in ``path`` (an ``atlas.json`` or the directory holding one); `AtlasFormatError` otherwise."""
    path = Path(path)
    if path.is_dir():
        path = path / ATLAS_JSON
    try:
        return Atlas.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise AtlasFormatError(f"no atlas at {path}: compute one with `attnscope atlas`") from None
    except (ValueError, KeyError, TypeError) as error:
        raise AtlasFormatError(
            f"{path} is not an atlas this attnscope reads ({error}); compute it again with `attnscope atlas`"
        ) from None


def index_sentences(tables: Tables, handle: ModelHandle) -> list[AtlasSentence]:
    """The index's sentences as the atlas scores them: tokens from the model's tokenizer, each token's
    word and each word's head and relation from the index's token table (words without tokens are
    absent there, so their arcs are too)."""
    tokens, sentences = tables.tokens, tables.sentences
    deprels = tokens.get("deprel")
    result = []
    for number, text in enumerate(sentences["text"]):
        encoded = encode(handle, str(text), truncate=True)
        if len(encoded) != int(sentences["model_tokens"][number]):
            raise IndexFormatError(
                f"sentence {number} of the index has {count(int(sentences['model_tokens'][number]), 'token')} "
                f"but the model makes {len(encoded)}: the index does not match this model"
            )
        rows = tables.sentence_rows(number)
        word_of: list[int | None] = [None] * len(encoded)
        size = max([int(w) for w in tokens["word"][rows.start : rows.stop]] + [-1]) + 1
        heads: list[int | None] = [None] * size
        relations: list[str | None] = [None] * size
        for row in rows:
            word = int(tokens["word"][row])
            if word < 0:
                continue
            word_of[int(tokens["position"][row])] = word
            head = int(tokens["head"][row])
            heads[word] = None if head == -2 else head
            relations[word] = deprels[row] if deprels is not None else None
        result.append(AtlasSentence(encoded, word_of, heads, relations))
    return result


def _corpus_info(manifest: Manifest) -> CorpusInfo:
    notices = long_sentence_notices(manifest.truncated_sentences, manifest.dropped_tokens, manifest.skipped_sentences)
    return CorpusInfo(manifest.corpus, manifest.corpus_checksum, manifest.annotator, notices)


def atlas_for_index(
    index: Index | Path | str,
    handle: ModelHandle,
    *,
    relations: Sequence[str] | None = None,
    recompute: bool = False,
    batch_tokens: int = 4096,
    progress: Progress | None = None,
    probes: Sequence[str] | None = None,
) -> Atlas:
    """The atlas of an index's corpus under ``handle``'s model: read from ``<index>/atlas.json`` when it
    was made for this model, tokenizer and corpus, otherwise computed (all relations) and cached there.
    ``probes``: the probe scores wanted (None: `compute.default_probes`, all for causal models; empty:
    none); a cached atlas without them gets them computed (`compute.with_probes`) and cached again.

    A model other than the index's is refused (`IndexMismatchError`); one process computes an index's
    atlas once even when several threads ask at the same time. An index directory that cannot be
    written to still gets its atlas, with a notice that it was not cached. ``relations`` narrows the returned
    atlas (`Atlas.select_relations`); a name the corpus lacks is refused before the model runs.
    """
    if isinstance(index, Index):
        directory, manifest, tables = index.directory, index.manifest, index.tables
    else:
        directory, manifest, tables = Path(index), read_manifest(Path(index)), None
    check_model(manifest, handle, directory)
    wanted = default_probes(handle) if probes is None else check_probe_names(probes)
    with _lock_for(directory):
        atlas = None if recompute else _cached(directory, manifest)
        if atlas is not None and not set(wanted) <= set(atlas.probes.names if atlas.probes else ()):
            atlas = _cache(
                with_probes(atlas, handle, sorted({*wanted, *(atlas.probes.names if atlas.probes else ())})), directory
            )
        if atlas is None:
            sentences = index_sentences(tables if tables is not None else Tables.read(directory), handle)
            if relations:
                choose_relations(relation_counts(sentences), relations, manifest.corpus)
            atlas = score_sentences(
                handle, sentences, _corpus_info(manifest), batch_tokens=batch_tokens, progress=progress
            )
            # the model was checked against the index: record the index's fingerprint (an index built before
            # fingerprint version 2 records an older one), so that `_cached` finds this atlas again
            atlas = replace(atlas, model_fingerprint=manifest.model_fingerprint)
            atlas = _cache(with_probes(atlas, handle, wanted), directory)
    atlas = atlas.select_probes(wanted)
    return atlas.select_relations(relations) if relations else atlas


def _cache(atlas: Atlas, directory: Path) -> Atlas:
    """Write ``atlas`` beside its index; a read-only index still gets its atlas, with a notice."""
    try:
        write_atlas(atlas, directory)
    except WriteError as error:
        return replace(
            atlas,
            notices=(
                *atlas.notices,
                f"the atlas could not be cached beside the index ({error}); it is computed again next time",
            ),
        )
    return atlas


def cached_atlas(index: Index) -> Atlas | None:
    """The atlas cached beside ``index`` when there is one made for its model, tokenizer and corpus;
    None otherwise (nothing is computed)."""
    return _cached(index.directory, index.manifest)


def _cached(directory: Path, manifest: Manifest) -> Atlas | None:
    """The atlas cached in an index directory, if there is one made for the index's model and corpus."""
    try:
        atlas = read_atlas(directory / ATLAS_JSON)
    except AtlasFormatError:
        return None
    made_for = (atlas.model_fingerprint, atlas.tokenizer_fingerprint, atlas.corpus_checksum)
    return (
        atlas
        if made_for == (manifest.model_fingerprint, manifest.tokenizer_fingerprint, manifest.corpus_checksum)
        else None
    )


def _lock_for(directory: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(directory.resolve(), threading.Lock())
