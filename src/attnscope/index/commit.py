"""The last step of a sharded build: check every shard, join them into one index, write the manifest.

The commit refuses to make an index of anything it cannot vouch for: a shard without its marker, a
marker of another plan, a file a marker lists that is missing or of another size. It then joins the
shards in shard order (rows, sentences and attention bytes shifted by what the earlier shards hold):
tables rewritten with the shifted numbers, codes and attention files concatenated (their zstd frames
read back as one stream; a build whose attention is "recomputed" has no attention files), approximate
sets merged into the plan's trained index, ids shifted to index rows: in memory (faiss ``merge_from``)
or, for large sets, on disk (`merge.py`: the set's lists in an ``.ivfdata`` file the manifest lists).
``manifest.json`` is written last: the index exists once it does. The shards' folders and the plan's
files are removed afterwards.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..corpus import METADATA_FIELDS
from ..errors import InputError
from . import vectors
from .layout import ATTENTION, CODES, MANIFEST, RANGES, SENTENCES, SPANS, TOKENS, codes_file, ivf_file
from .manifest import Manifest, package_versions
from .merge import DATA_SUFFIX, check_merge, join_on_disk, on_disk
from .options import options_from_dict
from .plan import PLAN, Plan, created_now, trained_file
from .shard import remove_work_folders, shard_marker
from .storage import Store
from .tables import WORD_FIELDS
from .unreadable import damaged_plan, damaged_shard, decoding


def check_shards(store: Store, plan: Plan) -> list[dict[str, Any]]:
    """Every shard's marker, after checking it names this plan and that each file it lists exists with
    the size it records. Raises `InputError` naming the first shard that is unfinished or damaged."""
    markers = []
    unfinished = []
    for spec in plan.shards:
        marker = shard_marker(store, plan, spec)
        if marker is None:
            unfinished.append(spec.number)
            continue
        for name, size in marker["files"].items():
            path = f"{spec.folder}/{name}"
            found = store.size(path) if store.exists(path) else None
            if found != size:
                what = "is missing" if found is None else f"holds {found} bytes"
                raise InputError(
                    f"shard {spec.number} is damaged: {store.path(path)} {what}, its marker lists {size} bytes; "
                    f"remove {store.path(spec.folder)} and build the shard again"
                )
        markers.append(marker)
    if unfinished:
        listed = ", ".join(map(str, unfinished[:10])) + (" ..." if len(unfinished) > 10 else "")
        raise InputError(
            f"{len(unfinished)} of {len(plan.shards)} shards are not finished (shard {listed}): build them "
            f"(`attnscope index-shard DIR --shard N`) before the commit"
        )
    return markers


def commit(store: Store, plan: Plan, *, fan_out: bool = False, merge: str = "auto") -> Manifest:
    """Join the finished shards of ``plan`` into one index in ``store`` and write its manifest.

    With ``fan_out`` the vector sets are not joined: each shard's files stay in its folder, and searches
    run over the shards and merge their top-k (the same results; for indexes too large to merge on one
    machine, or searched by several). ``merge`` ("memory", "disk" or "auto", `merge.MERGES`) says how
    approximate sets are joined (`merge.on_disk`). Raises `InputError` for another ``merge``, or when a
    shard is unfinished, of another plan or damaged (`check_shards`)."""
    check_merge(merge)
    markers = check_shards(store, plan)
    corpus = plan.corpus
    options = options_from_dict(plan.options)
    present = {f for m in markers for f in m["fields"]}
    fields = [f for f in METADATA_FIELDS if f in present]
    rows = np.cumsum([0] + [m["rows"] for m in markers])
    sentences = np.cumsum([0] + [m["sentences"] for m in markers])
    read = np.cumsum([0] + [m["read"] for m in markers])
    with tempfile.TemporaryDirectory(prefix="attnscope-commit-", dir=_work_parent(store)) as folder:
        work = Path(folder)
        _join_tables(store, plan, work, fields, rows, sentences, read)
        for name in (TOKENS, SENTENCES):
            store.put(work / name, name)
    if options.attention == "stored":
        _join_attention(store, plan, len(plan.stored_layers))
    data_files = [] if fan_out else _join_sets(store, plan, markers, rows, merge)
    kept = [
        {"folder": spec.folder, "first": int(rows[n]), "rows": int(rows[n + 1] - rows[n])}
        for n, spec in enumerate(plan.shards)
    ]
    names = _index_files(plan, kept if fan_out else None) + data_files
    files = {name: store.size(name) for name in sorted(names)}
    manifest = Manifest(
        model=plan.model,
        model_fingerprint=plan.model_fingerprint,
        model_fingerprint_version=plan.model_fingerprint_version,
        tokenizer_fingerprint=plan.tokenizer_fingerprint,
        corpus=corpus["name"],
        corpus_checksum=corpus["checksum"],
        corpus_files=list(corpus["files"]),
        annotator=corpus["annotator"],
        fields=fields,
        silver={f: s for f, s in corpus.get("silver", {}).items() if f in fields},
        layers=plan.layers,
        heads=plan.heads,
        head_dim=plan.extra["head_width"] // plan.heads,
        hidden_size=plan.hidden_size,
        sentences=int(sentences[-1]),
        tokens=int(rows[-1]),
        truncated_sentences=sum(m["truncated_sentences"] for m in markers),
        dropped_tokens=sum(m["dropped_tokens"] for m in markers),
        skipped_sentences=sum(m["skipped_sentences"] for m in markers),
        vector_bits=options.vector_bits,
        attention_bits=options.attention_bits,
        versions=package_versions(),
        approximate_lists=plan.approximate_lists,
        default_probes=max(1, plan.approximate_lists // 4) if plan.approximate_lists else 0,
        revision=plan.revision,
        created=created_now(),
        stored_layers=list(plan.stored_layers),
        codes=options.codes,
        attention=options.attention,
        files=files,
        vector_shards=kept if fan_out else None,
    )
    if manifest.tokens == 0:
        raise InputError(f"corpus {corpus['name']!r} has no tokens to index (every sentence was empty or skipped)")
    store.write(MANIFEST, manifest.to_json().encode())
    for spec in plan.shards:
        for name in store.names(spec.folder):
            if f"{spec.folder}/{name}" not in files:
                store.remove(f"{spec.folder}/{name}")
    remove_work_folders(store)
    if not fan_out:
        store.remove("shards")
    for kind in CODES:
        for layer in plan.stored_layers:
            store.remove(trained_file(kind, layer))
    store.remove(PLAN)
    return manifest


def _join_sets(store: Store, plan: Plan, markers: list[dict[str, Any]], rows: np.ndarray, merge: str) -> list[str]:
    """Join every vector set of the shards into one file per set (codes concatenated; IVF sets merged in
    memory or on disk, `merge.on_disk`); the names of the on-disk sets' data files."""
    options = options_from_dict(plan.options)
    data_files: list[str] = []
    for kind in CODES:
        for layer in plan.stored_layers:
            if not (plan.approximate_lists or options.codes != "sq"):
                parts = [f"{spec.folder}/{codes_file(kind, layer)}" for spec in plan.shards]
                _concatenate(store, parts, codes_file(kind, layer))
                continue
            name = ivf_file(kind, layer)
            if not on_disk(merge, sum(m["files"][name] for m in markers)):
                store.remove(name + DATA_SUFFIX)  # a data file of an earlier, interrupted commit
                _join_ivf(store, plan, kind, layer, rows)
                continue
            with tempfile.TemporaryDirectory(prefix="attnscope-merge-", dir=_work_parent(store)) as folder:
                data_files.append(join_on_disk(store, plan, kind, layer, rows, Path(folder))[1])
    return data_files


def _index_files(plan: Plan, vector_shards: list[dict[str, Any]] | None) -> list[str]:
    """The committed index's files: its tables, ranges and (when stored) attention, and each vector set's
    file (or, for ``vector_shards``, each shard's file of it)."""
    names = [TOKENS, SENTENCES, RANGES]
    if options_from_dict(plan.options).attention == "stored":
        names += [ATTENTION, SPANS]
    folders = [""] if vector_shards is None else [f"{s['folder']}/" for s in vector_shards]
    for kind in CODES:
        for layer in plan.stored_layers:
            trained = plan.approximate_lists or plan.options.get("codes", "sq") != "sq"
            name = ivf_file(kind, layer) if trained else codes_file(kind, layer)
            names += [folder + name for folder in folders]
    return sorted(names)


def _work_parent(store: Store) -> str | None:
    """Where the commit's temporary files go: beside the index on a local store (so that they move in
    by renaming), else the system's temporary folder."""
    return store.root if store.is_local else None


def _concatenate(store: Store, names: list[str], target: str) -> None:
    with store.writer(target) as out:
        for name in names:
            with store.fs.open(store.path(name), "rb") as source:
                while chunk := source.read(8 << 20):
                    out.write(chunk)


def _join_attention(store: Store, plan: Plan, layers: int) -> None:
    """``attention.bin`` (the shards' files in order) and its spans shifted by the bytes before each shard."""
    _concatenate(store, [f"{s.folder}/{ATTENTION}" for s in plan.shards], ATTENTION)
    spans, position = [], 0
    for spec in plan.shards:
        with decoding(store.path(f"{spec.folder}/{SPANS}"), damaged_shard(spec.number, store.path(spec.folder))):
            shard_spans = np.load(io.BytesIO(store.read(f"{spec.folder}/{SPANS}")))
        spans.append(shard_spans + position)
        position += store.size(f"{spec.folder}/{ATTENTION}")
    buffer = io.BytesIO()
    np.save(buffer, np.concatenate(spans) if spans else np.zeros((0, 2), np.int64))
    store.write(SPANS, buffer.getvalue())


def _join_ivf(store: Store, plan: Plan, kind: str, layer: int, rows: np.ndarray) -> None:
    """The plan's trained index of one vector set, holding every shard's vectors under index rows."""
    with decoding(store.path(trained_file(kind, layer)), damaged_plan(store.path(""))):
        merged = vectors.deserialise(store.read(trained_file(kind, layer)))
    for number, spec in enumerate(plan.shards):
        name = f"{spec.folder}/{ivf_file(kind, layer)}"
        with decoding(store.path(name), damaged_shard(spec.number, store.path(spec.folder))):
            part = vectors.deserialise(store.read(name))
            merged.merge_from(part, int(rows[number]))
    store.write(ivf_file(kind, layer), vectors.serialise(merged))


def _join_tables(
    store: Store,
    plan: Plan,
    work: Path,
    fields: list[str],
    rows: np.ndarray,
    sentences: np.ndarray,
    read: np.ndarray,
) -> None:
    """Write ``tokens.parquet`` and ``sentences.parquet`` of the whole index into ``work``, shard by shard
    (one row group per shard), with sentence, row and corpus numbers shifted; fields no shard has are left out."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    dropped = [f for f in METADATA_FIELDS if f not in fields]
    writers: dict[str, Any] = {}
    try:
        for number, spec in enumerate(plan.shards):
            for name, shifts in (
                (TOKENS, {"sentence": sentences[number]}),
                (SENTENCES, {"first_row": rows[number], "corpus_index": read[number]}),
            ):
                with decoding(store.path(f"{spec.folder}/{name}"), damaged_shard(spec.number, store.path(spec.folder))):
                    table = pq.read_table(io.BytesIO(store.read(f"{spec.folder}/{name}")))
                table = table.drop_columns([c for c in dropped if c in table.column_names])
                for column, shift in shifts.items():
                    at = table.column_names.index(column)
                    values = table.column(column).to_numpy().astype(np.int64) + int(shift)
                    table = table.set_column(at, column, pa.array(values, pa.int64()))
                table = table.cast(_schema(table, name))
                if name not in writers:
                    writers[name] = pq.ParquetWriter(work / name, table.schema)
                writers[name].write_table(table)
    finally:
        for writer in writers.values():
            writer.close()


def _schema(table: Any, name: str) -> Any:
    """The table's schema with every word field typed as it is when any shard has a value (columns that
    were all empty in one shard are typed null there)."""
    import pyarrow as pa

    text = set(WORD_FIELDS) - {"head"}
    fields = []
    for field in table.schema:
        if name == TOKENS and field.name in text:
            fields.append(pa.field(field.name, pa.string()))
        elif name == TOKENS and field.name == "head":
            fields.append(pa.field(field.name, pa.int64()))
        else:
            fields.append(field)
    return pa.schema(fields)
