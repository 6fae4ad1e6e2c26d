"""Every file attnscope writes (views, atlas, index, manifest) fails with a clear `WriteError` naming the path
and what is wrong (a directory, no permission, a missing directory, a full disk), never an OSError's
traceback; the CLI exits 2 and no half-written file is left."""

from __future__ import annotations

import errno
import os
import resource
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import attnscope
from attnscope.atlas import compute_atlas, write_atlas
from attnscope.errors import WriteError
from attnscope.files import atomic_file, replace_atomically, write_error, write_text_atomically
from attnscope.index import build_index

from .conftest import PUB

FORBIDDEN = Path("/sys/attnscope-test")
"""A path nobody may create, root included: sysfs refuses new files with EACCES."""


def run_cli(*args: str, **options) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "attnscope.cli", *args], capture_output=True, text=True, env=env, timeout=300, **options
    )


def message(result: subprocess.CompletedProcess) -> str:
    return " ".join(result.stderr.split())


def test_view_out_an_existing_directory_is_refused_naming_it(tmp_path):
    """The field report: `attnscope view "The cat sat." --out /tmp/vt` where /tmp/vt is a directory."""
    target = tmp_path / "vt"
    target.mkdir()
    (target / "kept.txt").write_text("x")
    result = run_cli("view", "The cat sat.", "--out", str(target))
    assert result.returncode == 2 and result.stdout == ""
    assert message(result) == f"error: cannot write {target}: it is a directory; name a file to write"
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vt"] and [p.name for p in target.iterdir()] == ["kept.txt"]


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("directory", "it is a directory; name a file to write"),
        ("missing", "its directory {tmp}/no/such does not exist"),
        ("forbidden", "permission denied: this user may not write in /sys"),
        ("device", "it is not a regular file (a device, pipe or socket): name a file"),
    ],
)
def test_every_atomic_write_names_the_path_and_the_reason(tmp_path, where, reason):
    path = {
        "directory": tmp_path,
        "missing": tmp_path / "no" / "such" / "x.html",
        "forbidden": FORBIDDEN,
        "device": Path("/dev/null"),
    }[where]
    writers = [
        lambda: write_text_atomically(path, "text"),
        lambda: replace_atomically(path, lambda temporary: temporary.write_bytes(b"bytes")),
    ]
    for write in writers:
        with pytest.raises(WriteError) as error:
            write()
        assert str(error.value) == f"cannot write {path}: {reason.format(tmp=tmp_path)}"
    assert Path("/dev/null").is_char_device()  # never replaced by a regular file
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_a_full_disk_is_named_as_such(tmp_path):
    with pytest.raises(OSError) as full:  # a real ENOSPC from the kernel
        with open("/dev/full", "w") as handle:
            handle.write("x")
    assert full.value.errno == errno.ENOSPC
    assert str(write_error(full.value, tmp_path / "index" / "codes.zst")) == (
        f"cannot write {tmp_path}/index/codes.zst: the disk is full (no space left on the device)"
    )


def test_a_write_cut_short_leaves_the_old_file_and_no_temporary(tmp_path):
    target = write_text_atomically(tmp_path / "view.html", "old")

    def limited() -> None:  # files over 4 KiB cannot be written: EFBIG, as a full disk would give ENOSPC
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    script = (
        f"from attnscope.files import write_text_atomically\nwrite_text_atomically({str(target)!r}, 'x' * 100_000)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, preexec_fn=limited
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"attnscope.errors.WriteError: cannot write {target}: the file is larger than this process may write "
        "(the file size limit, `ulimit -f`)"
    )
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["view.html"]


def test_the_cli_view_cut_short_exits_2_with_the_reason_and_no_file(tmp_path):
    out = tmp_path / "pub.html"

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))  # a head view of PUB is larger
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    result = run_cli("view", PUB, "--out", str(out), preexec_fn=limited)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message(result) == (
        f"error: cannot write {out}: the file is larger than this process may write (the file size limit, `ulimit -f`)"
    )
    assert list(tmp_path.iterdir()) == []


def test_index_and_atlas_writes_name_the_path(default_model, small_corpus, tmp_path):
    with pytest.raises(WriteError) as error:
        build_index(small_corpus, default_model, FORBIDDEN)
    assert str(error.value) == f"cannot write {FORBIDDEN}.partial: permission denied: this user may not write in /sys"
    atlas = compute_atlas(default_model, small_corpus)
    with pytest.raises(WriteError) as error:
        write_atlas(atlas, FORBIDDEN)
    assert str(error.value) == f"cannot write {FORBIDDEN}: permission denied: this user may not write in /sys"
    with pytest.raises(WriteError, match=f"cannot write {tmp_path}/manifest.json: it is a directory"):
        (tmp_path / "manifest.json").mkdir()
        with atomic_file(tmp_path / "manifest.json", "w") as handle:
            handle.write("{}")


def test_saving_a_view_over_a_directory_raises_write_error(default_model, tmp_path):
    cap = attnscope.capture(default_model, "The cat sat.")
    with pytest.raises(WriteError, match=f"^cannot write {tmp_path}: it is a directory; name a file to write$"):
        attnscope.head_view(cap).save(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_serve_with_an_unwritable_cache_exits_2_naming_it():
    env = dict(os.environ, HF_HUB_OFFLINE="1", COLUMNS="200", ATTNSCOPE_CACHE=str(FORBIDDEN))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run(
        [sys.executable, "-m", "attnscope.cli", "serve", "--port", str(port)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message(result).endswith(
        f"error: cannot write {FORBIDDEN}: permission denied: this user may not write in /sys"
    )  # the first folder of the cache's path that could not be made
