"""B6: an index on an object store (fsspec's ``memory://``) read in place: opening fetches only the small
files, a search fetches the vector set it uses, attention is read as byte ranges (never the whole file),
and every result equals the same index read from a local folder. Damaged or changed indexes are
refused or fetched again."""

from __future__ import annotations

from dataclasses import replace

import pytest

from attnscope.corpus import corpus_source
from attnscope.index import BuildOptions, Index, IndexFormatError, Query, build_index
from attnscope.index.build import plan_index
from attnscope.index.commit import commit
from attnscope.index.layout import ATTENTION, MANIFEST, RANGES, SENTENCES, SPANS, TOKENS
from attnscope.index.shard import build_shard
from attnscope.index.sources import plan_reader
from attnscope.index.storage import Store

from .index_fixtures import small_conllu

OPTIONS = BuildOptions(batch_tokens=32, calibration_batches=1, piece_tokens=1, shard_tokens=8)
TEXT = "The girl ran to a local pub."
QUERIES = (Query("embedding", 3), Query("heads", 2, (0, 5)), Query("heads", 5, (1,), filters={"upos": "NOUN"}))


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "small.conllu"
    path.write_text(small_conllu(), encoding="utf-8")
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("ATTNSCOPE_CACHE", str(folder))
    return folder


def _fresh(url: str) -> str:
    Store.at(url).remove("")
    return url


def _cached(index: Index) -> set[str]:
    folder = index.directory
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def _same_results(a: Index, b: Index, handle) -> None:
    for query in QUERIES:
        x, y = a.query(handle, TEXT, 2, query), b.query(handle, TEXT, 2, query)
        assert [(m.row, m.score, m.attention, m.max_attention) for m in x.matches] == [
            (m.row, m.score, m.attention, m.max_attention) for m in y.matches
        ]
        assert x.summary == y.summary


def test_a_remote_index_is_read_in_place(default_model, corpus_file, tmp_path, cache):
    url = _fresh("memory://attnscope-tests/remote-read")
    source = corpus_source(corpus_file)
    build_index(source, default_model, url, options=OPTIONS)
    local = Index.open(build_index(source, default_model, tmp_path / "local", options=OPTIONS).directory)
    remote = Index.open(url)
    assert remote.remote is not None and remote.directory.is_relative_to(cache)
    assert _cached(remote) == {MANIFEST, TOKENS, SENTENCES, RANGES, SPANS}
    assert replace(remote.manifest, created="") == replace(local.manifest, created="")
    _same_results(remote, local, default_model)
    # the three queries searched three sets; attention came as ranges, never the whole file
    assert _cached(remote) == {MANIFEST, TOKENS, SENTENCES, RANGES, SPANS} | {
        "hidden.3.codes.zst",
        "heads.2.codes.zst",
        "heads.5.codes.zst",
    }
    assert ATTENTION not in _cached(remote)
    again = Index.open(url)  # the next open reuses what was fetched
    assert again.directory == remote.directory and "heads.2.codes.zst" in _cached(again)
    _same_results(again, local, default_model)


def test_a_changed_remote_index_is_fetched_again(default_model, corpus_file, tmp_path, cache):
    url = _fresh("memory://attnscope-tests/remote-changed")
    source = corpus_source(corpus_file)
    build_index(source, default_model, url, options=OPTIONS)
    first = Index.open(url)
    first.vector_set("heads", 2)
    assert "heads.2.codes.zst" in _cached(first)
    build_index(source, default_model, url, options=replace(OPTIONS, vector_bits=6), overwrite=True)
    second = Index.open(url)
    assert second.manifest.vector_bits == 6
    assert "heads.2.codes.zst" not in _cached(second)  # the other version's files are gone
    local = Index.open(
        build_index(source, default_model, tmp_path / "six", options=replace(OPTIONS, vector_bits=6)).directory
    )
    _same_results(second, local, default_model)


def test_a_damaged_remote_index_is_refused(default_model, corpus_file, cache):
    url = _fresh("memory://attnscope-tests/remote-damaged")
    build_index(corpus_source(corpus_file), default_model, url, options=OPTIONS)
    store = Store.at(url)
    data = store.read("heads.4.codes.zst")
    store.write("heads.4.codes.zst", data[:-3])
    with pytest.raises(IndexFormatError, match=r"damaged: heads\.4\.codes\.zst is missing or has the wrong size"):
        Index.open(url)
    store.remove("heads.4.codes.zst")
    with pytest.raises(IndexFormatError, match=r"heads\.4\.codes\.zst is missing"):
        Index.open(url)
    with pytest.raises(IndexFormatError, match="no manifest.json"):
        Index.open("memory://attnscope-tests/remote-nothing-here")


def test_a_remote_fan_out_index_fetches_only_the_searched_shards_sets(default_model, corpus_file, tmp_path, cache):
    url = _fresh("memory://attnscope-tests/remote-fan-out")
    source = corpus_source(corpus_file)
    plan = plan_index(source, default_model, url, options=OPTIONS)
    store = Store.at(url)
    for number in range(len(plan.shards)):
        build_shard(store, plan, number, default_model, plan_reader(plan))
    commit(store, plan, fan_out=True)
    local = Index.open(build_index(source, default_model, tmp_path / "local", options=OPTIONS).directory)
    remote = Index.open(url)
    assert len(remote.manifest.vector_shards) == 3
    _same_results(remote, local, default_model)
    fetched = sorted(name for name in _cached(remote) if name.startswith("shards/"))
    searched = ("hidden.3.codes.zst", "heads.2.codes.zst", "heads.5.codes.zst")
    assert fetched == sorted(f"shards/{n:05d}/{name}" for n in range(3) for name in searched)


def test_the_search_command_reads_a_remote_index(default_model, corpus_file, tmp_path, cache):
    import json

    from typer.testing import CliRunner

    from attnscope.cli import app

    url = _fresh("memory://attnscope-tests/remote-cli")
    source = corpus_source(corpus_file)
    build_index(source, default_model, url, options=OPTIONS)
    local = build_index(source, default_model, tmp_path / "local", options=OPTIONS).directory
    args = ["search", TEXT, "--token", "2", "--layer", "3", "--top", "5", "--json", "--index"]
    remote, here = CliRunner().invoke(app, [*args, url]), CliRunner().invoke(app, [*args, str(local)])
    assert remote.exit_code == 0 and here.exit_code == 0, remote.output + here.output
    assert json.loads(remote.output)["matches"] == json.loads(here.output)["matches"]
    missing = CliRunner().invoke(app, [*args, "memory://attnscope-tests/remote-cli-nothing"])
    assert missing.exit_code == 2 and "no manifest.json" in missing.output and "Traceback" not in missing.output
