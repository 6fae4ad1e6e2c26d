"""Issue 19, the commit and build at scale: large approximate sets merged on disk (faiss on-disk lists)
search like the in-memory merge and move with their index; two runs of one shard at once; a build killed
between its manifest and its rename; fingerprints of whole tensors (old manifests still open); the token
estimate from the calibration sample; a corpus moved on a worker's machine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import replace

import numpy as np
import pytest

from attnscope.corpus import corpus_source, open_corpus
from attnscope.errors import InputError
from attnscope.index import BuildOptions, Index, IndexFormatError, IndexMismatchError, Query, build_index
from attnscope.index.build import plan_index
from attnscope.index.commit import commit
from attnscope.index.manifest import MODEL_FINGERPRINT_VERSION, model_fingerprint
from attnscope.index.shard import build_shard
from attnscope.index.sources import plan_reader
from attnscope.index.storage import Store

from .index_fixtures import EWT_DEV, SMALL, small_conllu

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


def test_two_runs_of_one_shard_at_once_leave_one_whole_shard(default_model, tmp_path):
    """Run B of shard 1 starts and finishes while run A of it is between two batches (a scheduler
    re-queuing a slow task): B's shard stands, A drops its own work and reports the shard as built. An
    unmarked shard folder (a run killed mid-copy) is moved aside; the commit removes what runs left."""
    corpus = tmp_path / "small.conllu"
    corpus.write_text(small_conllu(), encoding="utf-8")
    options = BuildOptions(batch_tokens=16, calibration_batches=1, piece_tokens=1, shard_tokens=8)
    out = tmp_path / "index"
    plan = plan_index(corpus_source(corpus), default_model, out, options=options)
    store, read = Store.at(out), plan_reader(plan)
    assert len(plan.shards) == 3
    second: list = []

    def meanwhile(tokens: int) -> None:
        if not second:
            work = [p.name for p in (out / "shards").iterdir()]
            assert len(work) == 1 and work[0].startswith("00001.work-"), work
            second.append(build_shard(store, plan, 1, default_model, read))

    first = build_shard(store, plan, 1, default_model, read, progress=meanwhile)
    assert not second[0].resumed and first.resumed and (first.rows, first.sentences) == (second[0].rows, 2)
    assert [p.name for p in (out / "shards").iterdir()] == ["00001"]
    marker = json.loads((out / "shards" / "00001" / "done.json").read_text())
    assert {p.name for p in (out / "shards" / "00001").iterdir()} == set(marker["files"]) | {"done.json"}
    (out / "shards" / "00000").mkdir()
    (out / "shards" / "00000" / "tokens.parquet").write_bytes(b"half a file")  # killed before its marker
    (out / "shards" / "00002.work-0badc0ffee00").mkdir()  # a run killed mid-shard
    assert not build_shard(store, plan, 0, default_model, read).resumed
    assert build_shard(store, plan, 0, default_model, read).resumed
    assert build_shard(store, plan, 2, default_model, read).rows > 0
    names = sorted(p.name for p in (out / "shards").iterdir())
    assert names[:3] == ["00000", "00000.stale-" + names[1][12:], "00001"] and len(names) == 5
    manifest = commit(store, plan, fan_out=True)
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["00000", "00001", "00002"]
    single = build_index(corpus_source(corpus), default_model, tmp_path / "single", options=options)
    assert manifest.tokens == single.manifest.tokens
    query = Query("heads", 2, (0, 5))
    a, b = (
        Index.open(out).query(default_model, SMALL[0][1], 2, query),
        Index.open(single.directory).query(default_model, SMALL[0][1], 2, query),
    )
    assert [(m.row, round(m.score, 6)) for m in a.matches] == [(m.row, round(m.score, 6)) for m in b.matches]


KILLED_AFTER_MANIFEST = textwrap.dedent("""
    import os, signal, sys
    import attnscope
    from attnscope.corpus import open_corpus
    from attnscope.index import BuildOptions, build_index
    from attnscope.index import commit
    def die(store):  # the manifest is written; the shards, the plan and the rename are not done
        os.kill(os.getpid(), signal.SIGKILL)
    commit.remove_work_folders = die
    build_index(open_corpus(sys.argv[1]), attnscope.load("default"), sys.argv[2],
                options=BuildOptions(batch_tokens=32, calibration_batches=1, piece_tokens=1, shard_tokens=8))
""")


def test_a_build_killed_between_its_manifest_and_its_rename_is_finished_not_rebuilt(
    default_model, tmp_path, monkeypatch
):
    corpus = tmp_path / "small.conllu"
    corpus.write_text(small_conllu(), encoding="utf-8")
    out, partial = tmp_path / "index", tmp_path / "index.partial"
    run = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_MANIFEST, str(corpus), str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
        timeout=300,
    )
    assert run.returncode == -9, run.stderr
    assert (partial / "manifest.json").is_file() and (partial / "plan.json").is_file() and (partial / "shards").is_dir()
    written = (partial / "manifest.json").read_bytes()
    with pytest.raises(IndexFormatError, match="does not exist"):
        Index.open(out)
    options = BuildOptions(batch_tokens=32, calibration_batches=1, piece_tokens=1, shard_tokens=8)

    def no_plan(*args, **kwargs):
        raise AssertionError("the build was planned again")

    with monkeypatch.context() as patched:
        patched.setattr("attnscope.index.build.make_plan", no_plan)
        report = build_index(open_corpus(corpus), default_model, out, options=options)
    assert report.resumed_shards == 4 and not partial.exists()
    assert (out / "manifest.json").read_bytes() == written
    assert sorted(p.name for p in out.iterdir()) == sorted([*report.manifest.files, "manifest.json"])
    fresh = build_index(open_corpus(corpus), default_model, tmp_path / "fresh", options=options)
    for name in report.manifest.files:
        if not name.endswith(".parquet"):
            assert (out / name).read_bytes() == (fresh.directory / name).read_bytes(), name
    # a committed partial build of other options is not taken for this one: it is built afresh
    shutil.copytree(out, partial)
    (partial / "build.json").write_text(json.dumps({"engine": "in-process", "key": "another build"}))
    other = build_index(
        open_corpus(corpus), default_model, out, options=replace(options, vector_bits=6), overwrite=True
    )
    assert other.manifest.vector_bits == 6 and other.resumed_shards == 0 and not partial.exists()


def test_a_copy_with_one_head_zeroed_is_refused_and_old_manifests_still_open(
    small_index, default_model, zeroed_copy, zeroed_path, tmp_path
):
    """tests/zeroed_model.py's copy differs from the default model only in rows 160-191 of layer 2's query
    weights: the first 64 values of every tensor (fingerprint version 1) are the same, the strided sample
    of version 2 is not. An index records its fingerprint's version and is checked with that one."""
    assert model_fingerprint(zeroed_copy.model, 1) == model_fingerprint(default_model.model, 1)
    assert model_fingerprint(zeroed_copy.model) != model_fingerprint(default_model.model)
    manifest = small_index.manifest
    assert manifest.model_fingerprint_version == 2 == MODEL_FINGERPRINT_VERSION
    assert manifest.model_fingerprint == model_fingerprint(default_model.model, 2)
    query = Query("heads", 2, (5,), top=5)
    with pytest.raises(IndexMismatchError, match="has different weights"):
        small_index.query(zeroed_copy, "The girl ran to a local pub.", 2, query)
    refused = _cli(
        "search", "The girl ran to a local pub.", "--index", str(small_index.directory), "--model", str(zeroed_path),
        "--token", "girl", "--layer", "2", "--heads", "5",
    )  # fmt: skip
    assert refused.returncode == 2 and "has different weights" in " ".join(refused.stderr.split()), refused.stderr
    old = _as_version_1(small_index, default_model, tmp_path / "old")
    opened = Index.open(old)
    assert opened.manifest.model_fingerprint_version == 1
    found = opened.query(default_model, "The girl ran to a local pub.", 2, query)
    expected = small_index.query(default_model, "The girl ran to a local pub.", 2, query)
    assert [(m.row, m.score) for m in found.matches] == [(m.row, m.score) for m in expected.matches]
    searched = _cli(
        "search", "The girl ran to a local pub.", "--index", str(old), "--token", "girl", "--layer", "2", "--json",
    )  # fmt: skip
    assert searched.returncode == 0, searched.stderr
    assert len(json.loads(searched.stdout)["matches"]) == min(50, small_index.size)
    raw = json.loads((old / "manifest.json").read_text(encoding="utf-8"))
    raw["model_fingerprint_version"] = 9
    (old / "manifest.json").write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(IndexFormatError, match="model fingerprint version 9 is not one this attnscope knows"):
        Index.open(old).query(default_model, "The girl ran to a local pub.", 2, query)


def _odd_words(path, sentences: int = 200) -> list[str]:
    """A CoNLL-U file whose words split into several tokens each and whose lines are short: about 7 bytes
    a token, where the plan assumes 60 (`plan.BYTES_PER_TOKEN`)."""
    rng = np.random.default_rng(0)
    texts, blocks = [], []
    for number in range(sentences):
        words = ["".join(rng.choice(list("qzxjkv0123456789"), 5)) for _ in range(6)]
        texts.append(" ".join(words))
        rows = "".join(f"{k + 1}\t{w}\t_\t_\t_\t_\t_\t_\t_\t_\n" for k, w in enumerate(words))
        blocks.append(f"# sent_id = s{number}\n# text = {texts[-1]}\n{rows}")
    path.write_text("\n".join(blocks) + "\n", encoding="utf-8")
    return texts


def test_approximate_auto_follows_the_tokens_the_calibration_sample_measured(default_model, tmp_path, monkeypatch):
    corpus = tmp_path / "odd.conllu"
    texts = _odd_words(corpus)
    tokens = sum(len(default_model.tokenizer(t)["input_ids"]) - 2 for t in texts)
    from_bytes = corpus.stat().st_size / 60
    assert tokens > 4 * from_bytes  # the old estimate, from bytes alone, is far too low here
    monkeypatch.setattr("attnscope.index.plan.APPROXIMATE_ABOVE", int(2 * from_bytes))  # between the two
    options = BuildOptions(batch_tokens=256, calibration_batches=1, piece_tokens=400, shard_tokens=2000)
    plan = plan_index(corpus_source(corpus), default_model, tmp_path / "auto", options=options)
    assert plan.approximate_lists > 0 and plan.estimated_tokens == tokens  # the sample read every piece
    recorded = json.loads((tmp_path / "auto" / "plan.json").read_text(encoding="utf-8"))["extra"]
    assert recorded["estimated_tokens"] == tokens == recorded["sampled_tokens"]
    assert recorded["sampled_pieces"] == sum(len(s.pieces) for s in plan.shards) > 1
    assert abs(recorded["estimated_tokens_before_sample"] - from_bytes) < 0.1 * from_bytes
    exact = plan_index(
        corpus_source(corpus), default_model, tmp_path / "exact", options=replace(options, approximate="never")
    )
    extra = exact.extra  # one batch of one piece sampled: the ratio measured there, applied to every piece
    assert exact.approximate_lists == 0 and extra["sampled_pieces"] == 1
    assert abs(extra["estimated_tokens"] - tokens) < 0.15 * tokens, (extra, tokens)


def test_a_worker_reads_the_corpus_from_another_folder_with_corpus_root(default_model, tmp_path):
    """The plan records the corpus files' paths on the planning machine; a worker that holds a copy
    elsewhere names its folder (``--corpus-root``), and the pieces' SHA-256 still guard the bytes."""
    planned_at = tmp_path / "here" / "corpus"
    planned_at.mkdir(parents=True)
    (planned_at / "a.conllu").write_text(small_conllu(), encoding="utf-8")
    (planned_at / "b.conllu").write_text(
        "\n\n".join(EWT_DEV.read_text(encoding="utf-8").split("\n\n")[:6]) + "\n\n", encoding="utf-8"
    )
    options = BuildOptions(batch_tokens=32, calibration_batches=1, piece_tokens=1, shard_tokens=40)
    reference = build_index(corpus_source(planned_at), default_model, tmp_path / "reference", options=options)
    out = tmp_path / "scheduled"
    plan = plan_index(corpus_source(planned_at), default_model, out, options=options)
    assert len(plan.shards) >= 3 and {p.file for s in plan.shards for p in s.pieces} == {0, 1}
    elsewhere = tmp_path / "worker" / "copy"
    shutil.copytree(planned_at, elsewhere)
    shutil.rmtree(tmp_path / "here")
    lost = _cli("index-shard", str(out), "--shard", "0")
    squeezed = "".join(lost.stderr.split())  # the terminal's line breaks fall anywhere, even in a path
    assert lost.returncode == 2 and "a.conllu" in squeezed and "isnotonthismachine" in squeezed, lost.stderr
    assert "--corpus-root" in squeezed
    built = _cli("index-shard", str(out), "--shard", "0", "--corpus-root", str(elsewhere))
    assert built.returncode == 0, built.stderr
    store = Store.at(out)
    for number in range(1, len(plan.shards)):
        build_shard(store, plan, number, default_model, plan_reader(plan, corpus_root=elsewhere))
    commit(store, plan)
    for name in reference.manifest.files:
        if not name.endswith(".parquet"):
            assert (out / name).read_bytes() == (reference.directory / name).read_bytes(), name
    assert Index.open(out).size == reference.manifest.tokens
    missing = _cli("index-shard", str(tmp_path / "reference"), "--shard", "0", "--corpus-root", str(tmp_path))
    assert missing.returncode == 2  # a committed index holds no plan
    other = plan_index(corpus_source(elsewhere), default_model, tmp_path / "other", options=options)
    (elsewhere / "b.conllu").write_text((elsewhere / "b.conllu").read_text().replace("the", "teh"), encoding="utf-8")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"--corpus-root .*empty: the plan's corpus file .*a\.conllu .* is not at"):
        plan_reader(other, corpus_root=tmp_path / "empty")
    changed = _cli(
        "index-shard", str(tmp_path / "other"), "--shard", str(len(other.shards) - 1), "--corpus-root", str(elsewhere)
    )
    assert changed.returncode == 2 and "the file changed" in " ".join(changed.stderr.split()), changed.stderr


def _as_version_1(index: Index, model, folder):
    """A copy of ``index`` whose manifest is as one written before fingerprint version 2."""
    shutil.copytree(index.directory, folder)
    raw = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    del raw["model_fingerprint_version"]
    raw["model_fingerprint"] = model_fingerprint(model.model, 1)
    (folder / "manifest.json").write_text(json.dumps(raw), encoding="utf-8")
    return folder


def test_the_atlas_of_an_index_with_an_old_fingerprint_is_cached_once(
    small_index, default_model, tmp_path, monkeypatch
):
    from attnscope.atlas import store as atlas_store

    old = _as_version_1(small_index, default_model, tmp_path / "old")
    first = atlas_store.atlas_for_index(old, default_model)
    assert first.model_fingerprint == model_fingerprint(default_model.model, 1)
    monkeypatch.setattr(atlas_store, "score_sentences", lambda *a, **k: pytest.fail("the atlas was computed again"))
    assert atlas_store.atlas_for_index(old, default_model).to_dict() == first.to_dict()


def test_an_on_disk_merge_on_an_object_store_opens_from_the_cache(default_model, ewt40, tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNSCOPE_CACHE", str(tmp_path / "cache"))
    url = "memory://attnscope-tests/on-disk-merge"
    Store.at(url).remove("")
    options = replace(OPTIONS, approximate="always", layers=(2,))
    store, plan = _shards_built(default_model, ewt40, url, options)
    manifest = commit(store, plan, merge="disk")
    assert sorted(n for n in manifest.files if n.endswith(".ivfdata")) == [
        "ivf.heads.2.faiss.ivfdata",
        "ivf.hidden.2.faiss.ivfdata",
    ]
    assert not store.exists("shards") and all(store.size(n) == s for n, s in manifest.files.items())
    _, local_plan = _shards_built(default_model, ewt40, tmp_path / "local", options)
    commit(Store.at(tmp_path / "local"), local_plan, merge="memory")
    remote, local = Index.open(url), Index.open(tmp_path / "local")
    query = Query("heads", 2, (0, 5), top=10)
    a = remote.query(default_model, "The girl ran to a local pub.", 2, query)
    b = local.query(default_model, "The girl ran to a local pub.", 2, query)
    assert [(m.row, round(m.score, 6)) for m in a.matches] == [(m.row, round(m.score, 6)) for m in b.matches]
