"""B6: shards built on a local Ray cluster equal shards built in this process; a worker that dies is
retried; every process the cluster started is gone afterwards."""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

from attnscope.index import BuildOptions, Index, build_index
from attnscope.index.build import run_in_process
from attnscope.index.commit import commit
from attnscope.index.plan import make_plan, sentence_pieces
from attnscope.index.sources import corpus_record
from attnscope.index.storage import Store

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray

OPTIONS = BuildOptions(batch_tokens=32, calibration_batches=1, piece_tokens=1, shard_tokens=1, approximate="always")


class CrashOnce:
    """Kills the worker process the first time it takes shard ``number`` (a file marks that it happened)."""

    def __init__(self, flag: Path, number: int):
        self.flag, self.number = flag, number

    def __call__(self, number: int) -> None:
        if number == self.number and not self.flag.exists():
            self.flag.write_text(str(os.getpid()))
            os._exit(1)


def _ray_processes(temp_dir: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(temp_dir in part for part in process.info["cmdline"] or ()):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def test_shards_built_on_ray_equal_shards_built_here(default_model, small_corpus, tmp_path):
    from attnscope.index.ray_engine import RayOptions, run_on_ray

    record = corpus_record(small_corpus)
    pieces = sentence_pieces(small_corpus.sentences, OPTIONS.piece_tokens)
    sentences = small_corpus.sentences

    def read(piece):
        return sentences[piece.start : piece.end]

    here = build_index(small_corpus, default_model, tmp_path / "here", options=OPTIONS)
    store = Store.at(tmp_path / "ray")
    plan = make_plan(store, default_model, record, pieces, read, OPTIONS)
    assert len(plan.shards) == 5
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    flag = tmp_path / "crashed"
    try:
        options = RayOptions(workers=2, local_cpus=2, threads_per_worker=2, local_temp_dir=temp_dir)
        reports = run_on_ray(store, plan, read, options=options, hook=CrashOnce(flag, 3))
        assert sorted(r.number for r in reports) == [0, 1, 2, 3, 4] and not any(r.resumed for r in reports)
        assert flag.exists()  # shard 3's first worker died, and the shard was built again
    finally:
        deadline = time.monotonic() + 30
        while _ray_processes(temp_dir) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = _ray_processes(temp_dir)
        for process in left:
            process.kill()
    assert not left, [p.info["cmdline"][:2] for p in left]
    manifest = commit(store, plan)
    assert manifest.tokens == here.manifest.tokens
    for path in here.directory.iterdir():
        ours = tmp_path / "ray" / path.name
        if path.suffix == ".parquet":
            assert pq.read_table(path).equals(pq.read_table(ours)), path.name
        elif path.name != "manifest.json":
            assert path.read_bytes() == ours.read_bytes(), path.name
    assert Index.open(tmp_path / "ray").size == here.manifest.tokens


def test_a_memory_store_is_refused_for_ray(default_model, small_corpus):
    from attnscope.errors import InputError
    from attnscope.index.ray_engine import run_on_ray

    store = Store.at("memory://attnscope-ray-refused")
    record = corpus_record(small_corpus)
    pieces = sentence_pieces(small_corpus.sentences, 10**6)
    options = replace(OPTIONS, approximate="never")
    plan = make_plan(store, default_model, record, pieces, lambda p: small_corpus.sentences, options)
    with pytest.raises(InputError, match="memory:// store lives in one process"):
        run_on_ray(store, plan, lambda p: small_corpus.sentences)
    assert run_in_process(store, plan, default_model, lambda p: small_corpus.sentences) == 0
