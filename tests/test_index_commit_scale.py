"""Issue 19, the commit and build at scale: large approximate sets merged on disk (faiss on-disk lists)
search like the in-memory merge and move with their index; two runs of one shard at once; a build killed
between its manifest and its rename; fingerprints of whole tensors (old manifests still open); the token
estimate from the calibration sample; a corpus moved on a worker's machine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from attnscope.corpus import corpus_source
from attnscope.index import BuildOptions, Index, IndexFormatError, Query
from attnscope.index.build import plan_index
from attnscope.index.commit import commit
from attnscope.index.shard import build_shard
from attnscope.index.sources import plan_reader
from attnscope.index.storage import Store

from .index_fixtures import EWT_DEV

OPTIONS = BuildOptions(batch_tokens=64, calibration_batches=1, piece_tokens=1, shard_tokens=200)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "attnscope", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
        timeout=600,
    )


@pytest.fixture(scope="module")
def ewt40(tmp_path_factory):
    """The first 40 sentences of UD English EWT dev (about 600 tokens)."""
    path = tmp_path_factory.mktemp("ewt40") / "ewt40.conllu"
    blocks = EWT_DEV.read_text(encoding="utf-8").split("\n\n")[:40]
    path.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    return path


def _shards_built(model, corpus, out, options):
    plan = plan_index(corpus_source(corpus), model, out, options=options)
    store = Store.at(out)
    for number in range(len(plan.shards)):
        build_shard(store, plan, number, model, plan_reader(plan))
    return store, plan


def _results(index: Index, model) -> list:
    found = []
    for kind, layer in (("hidden", 0), ("hidden", 5), ("heads", 2)):
        vectors = index.vector_set(kind, layer)
        queries = vectors.decoded(np.array([3, 77, 250]))
        for probes in (1, 4, None):
            scores, rows = vectors.search(queries, 20, probes=probes)
            found.append((kind, layer, probes, rows.tolist(), np.round(scores, 6).tolist()))
    result = index.query(model, "The girl ran to a local pub.", 2, Query("heads", 2, (0, 5), top=10))
    found.append([(m.row, round(m.score, 6)) for m in result.matches])
    return found


def test_an_on_disk_merge_searches_like_the_in_memory_one_and_moves_with_its_index(default_model, ewt40, tmp_path):
    options = replace(OPTIONS, approximate="always")
    _, memory_plan = _shards_built(default_model, ewt40, tmp_path / "memory", options)
    _shards_built(default_model, ewt40, tmp_path / "disk", options)
    assert len(memory_plan.shards) >= 3 and memory_plan.approximate_lists > 4
    commit(Store.at(tmp_path / "memory"), memory_plan, merge="memory")
    committed = _cli("index-commit", str(tmp_path / "disk"), "--merge", "disk")
    assert committed.returncode == 0, committed.stderr
    assert committed.stdout.count("\n") == 1 and "tokens from" in committed.stdout, committed.stdout  # no faiss lines
    memory, disk = Index.open(tmp_path / "memory"), Index.open(tmp_path / "disk")
    data = "ivf.hidden.0.faiss.ivfdata"
    assert data in disk.manifest.files and data not in memory.manifest.files
    assert disk.manifest.files[data] == (tmp_path / "disk" / data).stat().st_size > 0
    assert len([n for n in disk.manifest.files if n.endswith(".ivfdata")]) == 12
    assert not (tmp_path / "disk" / "shards").exists()
    assert str(tmp_path).encode() not in (tmp_path / "disk" / "ivf.hidden.0.faiss").read_bytes()  # names it relatively
    expected = _results(memory, default_model)
    assert _results(disk, default_model) == expected
    del disk
    shutil.copytree(tmp_path / "disk", tmp_path / "copied")
    os.replace(tmp_path / "disk", tmp_path / "moved")
    for where in ("copied", "moved"):
        assert _results(Index.open(tmp_path / where), default_model) == expected, where
    with open(tmp_path / "copied" / data, "r+b") as handle:
        handle.truncate(100)
    with pytest.raises(IndexFormatError, match=r"ivf\.hidden\.0\.faiss\.ivfdata is missing or has the wrong size"):
        Index.open(tmp_path / "copied")
    bad = _cli("index-commit", str(tmp_path / "moved"), "--merge", "sideways")
    assert bad.returncode == 2 and "--merge) 'sideways' is not a choice: use one of memory, disk, auto" in " ".join(
        bad.stderr.split()
    )

