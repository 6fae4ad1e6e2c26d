"""B6: an index searched by several workers (Ray actors, each holding a group of shards) returns what the
merged index and the in-process fan-out return, for exact, IVF and PQ sets, through `Index.query` (filters,
words, one match per sentence) and the command line; a worker that dies is retried or reported, never
waited on; bad options are refused; every process the cluster started is gone afterwards."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace

import numpy as np
import psutil
import pytest

from attnscope.corpus import open_corpus
from attnscope.errors import InputError
from attnscope.index import BuildOptions, Index, Query, SearchWorkerError, SearchWorkers
from attnscope.index.build import plan_index
from attnscope.index.commit import commit
from attnscope.index.search_workers import WorkerPool, WorkerSet, plan_groups
from attnscope.index.shard import build_shard
from attnscope.index.shard_sets import ShardedSet
from attnscope.index.sources import plan_reader
from attnscope.index.storage import Store

from .index_fixtures import EWT_DEV

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray

OPTIONS = BuildOptions(batch_tokens=64, calibration_batches=1, piece_tokens=1, shard_tokens=120)
LAYOUTS = {"exact": OPTIONS, "ivf": replace(OPTIONS, approximate="always"), "pq": replace(OPTIONS, codes="pq8")}
TEXT = "The girl ran to a local pub to escape the din of her city."
QUERIES = [
    Query("embedding", 3),
    Query("heads", 2, (0, 5), filters={"upos": ["NOUN", "VERB"]}),
    Query("heads", 4, (1,), unit="word"),
    Query("embedding", 5, per_sentence=True, filters={"upos": "ADJ"}),
    Query("embedding", 1, unit="word", per_sentence=True, top=20),
]
HALF = dict(cpus_per_worker=0.5)  # two pools of two workers fit the 2-CPU test cluster at once


def _ray_processes(temp_dir: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(temp_dir in part for part in process.info["cmdline"] or ()):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The first 60 sentences of EWT dev (over 900 tokens: enough to train pq8's 256 centroids)."""
    blocks = EWT_DEV.read_text(encoding="utf-8").split("\n\n")[:60]
    path = tmp_path_factory.mktemp("ewt60") / "ewt60.conllu"
    path.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    return open_corpus(path)


@pytest.fixture(scope="module")
def built(corpus, default_model, tmp_path_factory):
    """For each layout: (merged index directory, fan-out index directory), the same shards of one plan (one
    trained quantizer) committed both ways."""
    made = {}
    for name, options in LAYOUTS.items():
        root = tmp_path_factory.mktemp(f"workers-{name}")
        plan = plan_index(corpus, default_model, root / "fan", options=options)
        for number in range(len(plan.shards)):
            build_shard(Store.at(root / "fan"), plan, number, default_model, plan_reader(plan))
        shutil.copytree(root / "fan", root / "merged")
        commit(Store.at(root / "fan"), plan, fan_out=True)
        commit(Store.at(root / "merged"), plan)
        made[name] = (root / "merged", root / "fan")
    return made


@pytest.fixture(scope="module")
def cluster(built):
    """A local 2-CPU Ray cluster, started by the first index opened with workers (which owns it: closing that
    index stops it); every process it started must be gone after the module's tests."""
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    owner = Index.open(
        built["exact"][1], search_workers=SearchWorkers(workers=2, local_cpus=2, local_temp_dir=temp_dir, **HALF)
    )
    try:
        assert ray.is_initialized()
        yield owner
    finally:
        owner.close()
        assert not ray.is_initialized()  # the cluster the index started is stopped with it
        deadline = time.monotonic() + 30
        while _ray_processes(temp_dir) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = _ray_processes(temp_dir)
        for process in left:
            process.kill()
        assert not left, [p.info["cmdline"][:2] for p in left]


def _words(text: str) -> str:
    """Terminal output with its line wrapping undone."""
    return " ".join(text.split())


def _found(result) -> list[tuple[int, float]]:
    return [(m.row, m.score) for m in result.matches]


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_workers_return_what_the_fan_out_and_the_merged_index_return(layout, built, cluster, default_model):
    merged_dir, fan_dir = built[layout]
    merged, here = Index.open(merged_dir), Index.open(fan_dir)
    assert len(here.manifest.vector_shards) >= 5
    with Index.open(fan_dir, search_workers=SearchWorkers(workers=2, **HALF)) as spread:
        assert len(spread.workers.pids) == 2 and os.getpid() not in spread.workers.pids
        for query in QUERIES:
            if layout == "ivf":
                query = replace(query, probes=2)
            a, b, c = (i.query(default_model, TEXT, 2, query) for i in (merged, here, spread))
            assert _found(c) == _found(b) == _found(a), query
            assert c.summary == b.summary == a.summary
        found = spread.vector_set("heads", 2)
        assert isinstance(found, WorkerSet) and isinstance(here.vector_set("heads", 2), ShardedSet)
        assert (found.count, found.dim, found.approximate) == (here.size, 384, layout == "ivf")
        rng = np.random.default_rng(0)
        queries = rng.standard_normal((3, 384)).astype(np.float32)
        allowed = rng.random(here.size) < 0.3
        allowed[: here.manifest.vector_shards[1]["first"]] = False  # the first shard (a worker's part) has none
        for mask in (None, allowed, np.zeros(here.size, bool)):
            for k in (1, 50, here.size + 5):
                got, want = found.search(queries, k, mask, 3), here.vector_set("heads", 2).search(queries, k, mask, 3)
                assert np.array_equal(got[1], want[1]) and np.array_equal(got[0], want[0]), (k, mask is None)
        rows = np.array([here.size - 1, 0, 7, here.manifest.vector_shards[2]["first"]])
        assert np.array_equal(found.decoded(rows), here.vector_set("heads", 2).decoded(rows))


def test_a_merged_exact_index_is_split_into_row_ranges(built, cluster, default_model):
    merged_dir = built["exact"][0]
    merged = Index.open(merged_dir)
    groups = plan_groups(merged.manifest, 3)
    assert [(g.first, g.rows) for g in groups][0][0] == 0 and sum(g.rows for g in groups) == merged.size
    with Index.open(merged_dir, search_workers=SearchWorkers(workers=3, cpus_per_worker=0.25)) as spread:
        for query in QUERIES:
            assert _found(spread.query(default_model, TEXT, 2, query)) == _found(
                merged.query(default_model, TEXT, 2, query)
            )


def test_a_worker_that_dies_is_retried_or_reported(built, cluster, default_model):
    fan_dir = built["ivf"][1]
    here = Index.open(fan_dir)
    query = Query("heads", 2, (0, 5), probes=2)
    want = _found(here.query(default_model, TEXT, 2, query))
    with Index.open(fan_dir, search_workers=SearchWorkers(workers=2, retries=1, **HALF)) as spread:
        assert _found(spread.query(default_model, TEXT, 2, query)) == want
        os.kill(spread.workers.pids[1], signal.SIGKILL)
        assert _found(spread.query(default_model, TEXT, 2, replace(query, layer=3))) == _found(
            here.query(default_model, TEXT, 2, replace(query, layer=3))
        )  # restarted by Ray, its shards loaded again, the call retried
    with Index.open(fan_dir, search_workers=SearchWorkers(workers=2, retries=0, **HALF)) as spread:
        os.kill(spread.workers.pids[0], signal.SIGKILL)
        with pytest.raises(
            SearchWorkerError, match=r"search worker 0 \(shards? 0000\d.*\) died and was not brought back"
        ):
            spread.query(default_model, TEXT, 2, query)
    with pytest.raises(InputError, match="search workers were stopped"):
        spread.query(default_model, TEXT, 2, replace(query, layer=4))


def test_bad_search_worker_options_are_refused(built, cluster):
    merged_ivf, fan_dir = built["ivf"]
    with pytest.raises(InputError, match=r"one merged IVF file, which search workers cannot split.*--fan-out"):
        Index.open(merged_ivf, search_workers=SearchWorkers(workers=2))
    with pytest.raises(InputError, match=r"one merged pq8 \(IVF\) file"):
        Index.open(built["pq"][0], search_workers=SearchWorkers(workers=2))
    for bad, message in (
        (SearchWorkers(workers=0), r"search workers \(--search-workers\) must be a whole number, 1 or more, got 0"),
        (SearchWorkers(cpus_per_worker=0), "CPUs per search worker must be above 0"),
        (SearchWorkers(retries=-1), "retries must be at least 0"),
        (SearchWorkers(timeout_s=0), "timeouts must be above 0 seconds"),
        (
            SearchWorkers(workers=3, cpus_per_worker=1),
            "3 search workers of 1 CPU each need 3 CPUs; the Ray cluster has 2",
        ),
    ):
        with pytest.raises(InputError, match=message):
            Index.open(fan_dir, search_workers=bad)
    here = Index.open(fan_dir)  # workers told to read another index than the driver opened: refused by them
    with pytest.raises(InputError, match="search worker 0 found another index at .*merged than the driver opened"):
        WorkerPool.start(str(merged_ivf), fan_dir, here.manifest, SearchWorkers(workers=2, **HALF), 1 << 30)
    # the refused pools left no actor behind: two more workers of half a CPU still start
    with Index.open(fan_dir, search_workers=SearchWorkers(workers=2, **HALF)) as spread:
        assert len(spread.workers.pids) == 2


def test_the_command_line_searches_with_workers_on_a_cluster(built, cluster, default_model):
    fan_dir = built["exact"][1]
    address = ray.get_runtime_context().gcs_address
    args = [sys.executable, "-m", "attnscope", "search", TEXT, "--index", str(fan_dir), "--token", "2", "--layer", "3"]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [*args, "--filter", "upos=NOUN", "--json", "--search-workers", "1", "--address", address],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    want = Index.open(fan_dir).query(default_model, TEXT, 2, Query("embedding", 3, filters={"upos": "NOUN"}))
    assert [(m["row"], m["score"]) for m in json.loads(done.stdout)["matches"]] == [
        (m.row, pytest.approx(m.score, abs=1e-6)) for m in want.matches
    ]
    refused = subprocess.run([*args, "--address", address], capture_output=True, text=True, env=env, timeout=600)
    assert refused.returncode == 2 and "--address names the Ray cluster of the search workers" in _words(refused.stderr)
    refused = subprocess.run([*args, "--search-workers", "0"], capture_output=True, text=True, env=env, timeout=600)
    assert refused.returncode == 2 and "must be a whole number, 1 or more, got 0" in _words(refused.stderr)
    assert "Traceback" not in refused.stderr


def test_a_worker_reads_only_its_own_files_from_a_remote_store(built, tmp_path, monkeypatch):
    from attnscope.index.remote import RemoteFiles
    from attnscope.index.set_loading import open_set, parts_of, read_ranges

    monkeypatch.setenv("ATTNSCOPE_CACHE", str(tmp_path / "cache"))
    fan_dir = built["exact"][1]
    store = Store.at("memory://attnscope-worker-files")
    store.remove("")
    for path in fan_dir.rglob("*"):
        if path.is_file():
            store.write(str(path.relative_to(fan_dir)), path.read_bytes())
    files = RemoteFiles.open(store.url, eager=("ranges.npz",))  # as a worker opens it
    manifest = files.manifest
    part = parts_of(manifest)[1]
    found = open_set(files.folder, manifest, read_ranges(files.folder), "hidden", 3, [part], part["first"], files.local)
    assert found.count == part["rows"]
    folder = files.folder
    copied = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    wanted = f"{part['folder']}/hidden.3.codes.zst"
    assert copied == sorted(["manifest.json", "ranges.npz", wanted])
    assert (folder / wanted).read_bytes() == (fan_dir / wanted).read_bytes()


def test_the_server_searches_a_corpus_with_workers(built, cluster, default_model):
    from fastapi.testclient import TestClient

    from attnscope.server import AppState, create_app

    fan_dir = built["ivf"][1]
    state = AppState.configure(
        ["default"],
        [fan_dir],
        loader=lambda name: default_model,
        search_workers=SearchWorkers(workers=2, retries=0, **HALF),
    )
    try:
        assert state.corpora["fan"].index.workers is not None
        body = {"corpus": "fan", "text": TEXT, "token": 2, "layer": 5, "filters": {"upos": ["NOUN", "VERB"]}, "top": 10}
        with TestClient(create_app(state), raise_server_exceptions=False) as client:
            response = client.post("/api/search", json=body)
            assert response.status_code == 200, response.text
            want = Index.open(fan_dir).query(
                default_model, TEXT, 2, Query("embedding", 5, top=10, filters=body["filters"])
            )
            assert response.json() == json.loads(json.dumps(want.to_dict()))
            os.kill(state.corpora["fan"].index.workers.pids[0], signal.SIGKILL)  # gone, no retry left
            gone = client.post("/api/search", json={**body, "layer": 3})
        assert gone.status_code == 503, gone.text  # the request was fine: the service is not, for now
        error = gone.json()["error"]
        assert error["code"] == "search_workers_unavailable" and "search worker 0" in error["message"]
    finally:
        state.close()
    assert state.corpora["fan"].index.workers.closed
