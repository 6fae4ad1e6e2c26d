"""B6: the build as plan / shards / commit: the scheduler's three steps equal one in-process build; a
build on an fsspec object store (memory://); bad input refused: a shard of another plan, a corpus
changed between plan and shard, a marker listing a missing or short file, another model."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from attnscope.corpus import corpus_source
from attnscope.errors import CorpusError, InputError
from attnscope.index import BuildOptions, Index, IndexFormatError, build_index
from attnscope.index.build import plan_index
from attnscope.index.commit import commit
from attnscope.index.shard import build_shard
from attnscope.index.sources import plan_reader
from attnscope.index.storage import Store

from .index_fixtures import small_conllu

OPTIONS = BuildOptions(batch_tokens=32, calibration_batches=1, piece_tokens=1, shard_tokens=8)


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "small.conllu"
    path.write_text(small_conllu(), encoding="utf-8")
    return path


def _same_index(a, b) -> None:
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        if name.endswith(".parquet"):
            assert pq.read_table(a / name).equals(pq.read_table(b / name)), name
        elif name != "manifest.json":
            assert (a / name).read_bytes() == (b / name).read_bytes(), name


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "attnscope", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
        timeout=600,
    )


def test_plan_shard_commit_from_the_command_line_equals_one_build(default_model, corpus_file, tmp_path):
    options = replace(OPTIONS, calibration_batches=4)  # the command line's default
    here = build_index(corpus_source(corpus_file), default_model, tmp_path / "here", options=options)
    out = tmp_path / "scheduled"
    planned = _cli(
        "index", str(corpus_file), "--out", str(out), "--plan-only", "--batch-tokens", "32",
        "--piece-tokens", "1", "--shard-tokens", "8",
    )  # fmt: skip
    assert planned.returncode == 0, planned.stderr
    assert "planned 3 shards" in planned.stdout, planned.stdout
    store = Store.at(out)
    assert store.exists("plan.json") and not store.exists("shards")
    early = _cli("index-commit", str(out))
    assert early.returncode == 2 and "3 of 3 shards are not finished (shard 0, 1, 2)" in early.stderr
    for number in (2, 0, 1, 0):  # any order; a finished shard is not built again
        built = _cli("index-shard", str(out), "--shard", str(number))
        assert built.returncode == 0, built.stderr
    assert "already built" in built.stdout
    with pytest.raises(IndexFormatError, match="no manifest.json"):
        Index.open(out)
    committed = _cli("index-commit", str(out))
    assert committed.returncode == 0, committed.stderr
    assert not store.exists("shards") and not store.exists("plan.json")
    _same_index(out, here.directory)
    missing = _cli("index-shard", str(tmp_path / "nothing"), "--shard", "0")
    assert missing.returncode == 2 and "holds no build plan" in missing.stderr


def test_a_build_on_an_object_store_equals_a_local_one(default_model, corpus_file, tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNSCOPE_CACHE", str(tmp_path / "cache"))
    url = "memory://attnscope-tests/object-store-build"
    Store.at(url).remove("")
    source = corpus_source(corpus_file)
    remote = build_index(source, default_model, url, options=OPTIONS)
    local = build_index(source, default_model, tmp_path / "local", options=OPTIONS)
    assert remote.manifest.tokens == local.manifest.tokens
    fetched = tmp_path / "fetched"  # the store's files, byte for byte as the local build's
    Store.at(url).download("", fetched)
    _same_index(fetched, local.directory)
    assert Index.open(url).size == local.manifest.tokens  # read in place (tests/test_index_remote.py)
    with pytest.raises(InputError, match="already exists"):
        build_index(source, default_model, url, options=OPTIONS)
    with pytest.raises(IndexFormatError, match="no manifest.json"):
        Index.open("memory://attnscope-tests/nothing-here")


def _planned(default_model, corpus_file, out, options=OPTIONS):
    plan = plan_index(corpus_source(corpus_file), default_model, out, options=options)
    return Store.at(out), plan


def test_a_shard_of_another_plan_is_refused(default_model, corpus_file, tmp_path):
    store_a, plan_a = _planned(default_model, corpus_file, tmp_path / "a")
    store_b, plan_b = _planned(default_model, corpus_file, tmp_path / "b", replace(OPTIONS, vector_bits=6))
    assert plan_a.key != plan_b.key
    for number in range(len(plan_a.shards)):
        build_shard(store_a, plan_a, number, default_model, plan_reader(plan_a))
    shutil.copytree(tmp_path / "a" / "shards", tmp_path / "b" / "shards")
    with pytest.raises(InputError, match="shard of another build plan"):
        commit(store_b, plan_b)
    with pytest.raises(InputError, match="shard of another build plan"):
        build_shard(store_b, plan_b, 0, default_model, plan_reader(plan_b))
    assert not store_b.exists("manifest.json")


def test_a_corpus_changed_after_the_plan_is_refused(default_model, corpus_file, tmp_path):
    store, plan = _planned(default_model, corpus_file, tmp_path / "build")
    corpus_file.write_text(small_conllu().replace("The girl ran", "The boy ran"), encoding="utf-8")
    with pytest.raises(CorpusError, match="are not those planned: the file changed"):
        build_shard(store, plan, 0, default_model, plan_reader(plan))
    assert not store.exists("shards/00000/done.json")


def test_a_marker_listing_a_missing_or_short_file_is_refused(default_model, corpus_file, tmp_path):
    store, plan = _planned(default_model, corpus_file, tmp_path / "build")
    for number in range(len(plan.shards)):
        build_shard(store, plan, number, default_model, plan_reader(plan))
    codes = tmp_path / "build" / "shards" / "00001" / "hidden.3.codes.zst"
    codes.write_bytes(codes.read_bytes()[:-1])
    with pytest.raises(InputError, match=r"shard 1 is damaged: .*hidden.3.codes.zst holds \d+ bytes, its marker lists"):
        commit(store, plan)
    codes.unlink()
    with pytest.raises(InputError, match="shard 1 is damaged: .*hidden.3.codes.zst is missing"):
        commit(store, plan)
    assert not store.exists("manifest.json")


def test_a_worker_with_another_model_is_refused(default_model, corpus_file, tmp_path):
    store, plan = _planned(default_model, corpus_file, tmp_path / "build")
    other = copy.copy(default_model)  # another checkpoint of the same model: other weights, same tokenizer
    other.model = copy.deepcopy(default_model.model)
    with torch.no_grad():
        next(other.model.parameters()).mul_(1.01)
    with pytest.raises(InputError, match="has other weights than the plan's model"):
        build_shard(store, plan, 0, other, plan_reader(plan))
    with pytest.raises(InputError, match="shard 7 is not in the plan: it has shards 0-2"):
        build_shard(store, plan, 7, default_model, plan_reader(plan))
    assert not store.exists("shards")


@pytest.mark.parametrize("approximate", ["never", "always"])
def test_an_index_searched_shard_by_shard_equals_the_merged_one(default_model, corpus_file, tmp_path, approximate):
    from attnscope.index import Query
    from attnscope.index.shard_sets import ShardedSet

    options = replace(OPTIONS, approximate=approximate)
    merged = Index.open(
        build_index(corpus_source(corpus_file), default_model, tmp_path / "merged", options=options).directory
    )
    store, plan = _planned(default_model, corpus_file, tmp_path / "fan", options)
    for number in range(len(plan.shards)):
        build_shard(store, plan, number, default_model, plan_reader(plan))
    manifest = commit(store, plan, fan_out=True)
    parts = manifest.vector_shards
    assert len(parts) == 3 and [p["first"] for p in parts] == [0, parts[0]["rows"], parts[0]["rows"] + parts[1]["rows"]]
    assert sum(p["rows"] for p in parts) == manifest.tokens == merged.size
    fan = Index.open(tmp_path / "fan")
    assert isinstance(fan.vector_set("heads", 2), ShardedSet)
    built = build_index(corpus_source(corpus_file), default_model, tmp_path / "built", options=options, fan_out=True)
    assert built.manifest.vector_shards == parts  # `attnscope index --fan-out`: the same shards kept apart
    built_fan = Index.open(built.directory)
    assert sorted(p.name for p in (tmp_path / "fan" / "shards" / "00001").iterdir()) == sorted(
        n.rsplit("/", 1)[1] for n in manifest.files if n.startswith("shards/00001/")
    )
    text = "The girl ran to a local pub."
    for query in (Query("embedding", 3), Query("heads", 2, (0, 5)), Query("heads", 5, (1,), filters={"upos": "NOUN"})):
        a, b = merged.query(default_model, text, 2, query), fan.query(default_model, text, 2, query)
        assert [(m.row, round(m.score, 6)) for m in a.matches] == [(m.row, round(m.score, 6)) for m in b.matches]
        assert a.summary == b.summary
        c = built_fan.query(default_model, text, 2, query)
        assert [(m.row, m.score) for m in c.matches] == [(m.row, m.score) for m in b.matches]


def test_product_codes_build_in_shards_like_in_one_and_search(default_model, tmp_path):
    from attnscope.corpus import open_corpus
    from attnscope.index import Query
    from attnscope.index.pq import PQSet

    from .index_fixtures import EWT_DEV

    blocks = EWT_DEV.read_text(encoding="utf-8").split("\n\n")[:40]
    path = tmp_path / "ewt40.conllu"
    path.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    corpus = open_corpus(path)
    options = replace(OPTIONS, codes="pq8", layers=(1, 4))
    many = build_index(corpus, default_model, tmp_path / "many", options=options)
    one = build_index(corpus, default_model, tmp_path / "one", options=replace(options, shard_tokens=10**6))
    assert many.manifest.codes == "pq8" and many.manifest.tokens >= 256
    _same_index(many.directory, one.directory)
    index = Index.open(many.directory)
    found = index.vector_set("hidden", 4)
    assert isinstance(found, PQSet) and found.m == 8 and found.count == many.manifest.tokens
    result = index.query(default_model, "The girl ran to a local pub.", 2, Query("heads", 4, (0, 5)))
    assert len(result.matches) == 50 and result.matches[0].score >= result.matches[-1].score
    with pytest.raises(InputError, match="training pq8 needs at least 256 sample vectors"):
        build_index(corpus_source(_small(tmp_path)), default_model, tmp_path / "small", options=options)
    with pytest.raises(InputError, match="codes .*'pq0' is not a choice"):
        build_index(corpus, default_model, tmp_path / "bad", options=replace(options, codes="pq0"))
    with pytest.raises(InputError, match="pq7: m must divide the vector width 384"):
        build_index(corpus, default_model, tmp_path / "bad", options=replace(options, codes="pq7"))


def _small(tmp_path):
    path = tmp_path / "tiny.conllu"
    path.write_text(small_conllu(), encoding="utf-8")
    return path


def _scrambled(path) -> None:
    """Overwrite a file with seeded random bytes of its own size (a damaged copy that passes the size check)."""
    path.write_bytes(np.random.default_rng(0).integers(0, 256, path.stat().st_size, dtype=np.uint8).tobytes())


def test_a_damaged_plan_or_shard_file_of_the_right_size_is_named_not_a_traceback(default_model, corpus_file, tmp_path):
    from attnscope.index import Query
    from attnscope.index.layout import ivf_file

    store, plan = _planned(default_model, corpus_file, tmp_path / "build", replace(OPTIONS, approximate="always"))
    ranges = tmp_path / "build" / "ranges.npz"
    saved = ranges.read_bytes()
    ranges.unlink()
    with pytest.raises(InputError, match=r"the build plan in .* is damaged: .*ranges.npz cannot be read .*plan the"):
        build_shard(store, plan, 0, default_model, plan_reader(plan))
    ranges.write_bytes(saved)
    for number in range(len(plan.shards)):
        build_shard(store, plan, number, default_model, plan_reader(plan))
    tokens = tmp_path / "build" / "shards" / "00000" / "tokens.parquet"
    kept = tokens.read_bytes()
    _scrambled(tokens)
    with pytest.raises(
        InputError, match=r"shard 0 is damaged: .*tokens.parquet cannot be read .*index-shard DIR --shard 0"
    ):
        commit(store, plan)
    tokens.write_bytes(kept)
    _scrambled(tmp_path / "build" / "shards" / "00001" / ivf_file("heads", 2))
    with pytest.raises(InputError, match=r"shard 1 is damaged: .*ivf.heads.2.faiss cannot be read"):
        commit(store, plan)
    assert not store.exists("manifest.json")
    commit(store, plan, fan_out=True)  # a fan-out commit leaves the sets unread: the search names the file
    index = Index.open(tmp_path / "build")
    with pytest.raises(IndexFormatError, match=r"the index is damaged: .*00001/ivf.heads.2.faiss cannot be read"):
        index.query(default_model, "The girl ran to a local pub.", 2, Query("heads", 2, (0,)))
    assert len(index.query(default_model, "The girl ran to a local pub.", 2, Query("heads", 3, (0,))).matches) > 0


def test_a_plan_records_its_corpus_files_by_absolute_path(default_model, corpus_file, tmp_path, monkeypatch):
    """A scheduler's job runs in another folder than the planning one: relative paths would not be found."""
    monkeypatch.chdir(corpus_file.parent)
    store, plan = _planned(default_model, corpus_file.name, tmp_path / "build")
    assert plan.corpus["files"] == [str(corpus_file)]
    monkeypatch.chdir("/")
    build_shard(store, plan, 0, default_model, plan_reader(plan))
    assert store.exists("shards/00000/done.json")
