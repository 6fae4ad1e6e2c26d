"""Files attnscope writes take the umask's permissions (as any new file does); what it shows of a model is
readable and never a path of the user's machine; a model handle prints on one line."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import attnscope
from attnscope.atlas import compute_atlas, write_atlas
from attnscope.capture.loading import readable_model_name
from attnscope.files import atomic_file, write_text_atomically
from attnscope.views.atlas import save_atlas_page

from .conftest import PUB


@contextlib.contextmanager
def umask(mask: int):
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_saved_views_follow_the_umask(default_model, tmp_path, mask):
    cap = attnscope.capture(default_model, "The girl ran.", fields="all")
    with umask(mask):
        written = [
            attnscope.head_view(cap).save(tmp_path / "head.html"),
            attnscope.model_view(cap).save(tmp_path / "model.html"),
            attnscope.neuron_view(cap).save(tmp_path / "neuron.html"),
        ]
    assert [mode(Path(p)) for p in written] == [0o666 & ~mask] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["head.html", "model.html", "neuron.html"]  # no leftovers


def test_atlas_files_follow_the_umask(default_model, small_corpus, tmp_path):
    atlas = compute_atlas(default_model, small_corpus)
    with umask(0o027):
        written = [*write_atlas(atlas, tmp_path), save_atlas_page(tmp_path / "atlas.html", atlas)]
    assert sorted(p.name for p in written) == ["atlas.html", "atlas.json", "atlas.parquet"]
    assert [mode(p) for p in written] == [0o640] * 3


def test_cli_view_out_follows_the_umask(tmp_path):
    out = tmp_path / "view.html"
    result = subprocess.run(
        [sys.executable, "-m", "attnscope.cli", "view", PUB, "--out", str(out)],
        capture_output=True,
        text=True,
        env=dict(os.environ, HF_HUB_OFFLINE="1"),
        timeout=300,
        umask=0o027,
    )
    assert result.returncode == 0, result.stderr
    assert mode(out) == 0o640


def test_index_files_follow_the_umask(small_index):
    current = os.umask(0o022)
    os.umask(current)
    files = [p for p in small_index.directory.iterdir() if p.is_file()]
    assert files and {mode(p) for p in files} == {0o666 & ~current}


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    target = write_text_atomically(tmp_path / "a.txt", "first")
    with pytest.raises(RuntimeError, match="half way"):
        with atomic_file(target, "w") as handle:
            handle.write("second, half")
            raise RuntimeError("half way")
    assert target.read_text() == "first" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb'"):
        with atomic_file(target, "a"):
            pass


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("sentence-transformers/all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"),
        ("gpt2", "gpt2"),
        ("/home/alice/models/my-bert", "my-bert"),
        ("/home/alice/models/my-bert/", "my-bert"),
        ("~/runs/bert-ner/checkpoint-500", "bert-ner/checkpoint-500"),
        (
            "/home/alice/.cache/huggingface/hub/models--google-bert--bert-base-uncased/snapshots/86b5e09",
            "google-bert/bert-base-uncased",
        ),
        ("/home/alice/.cache/huggingface/hub/models--gpt2/snapshots/607a30d", "gpt2"),
        ("C:\\Users\\bob\\models\\tiny", "tiny"),
        ("./tiny", "tiny"),
    ],
)
def test_readable_model_names(name, shown):
    assert readable_model_name(name) == shown


def test_the_default_models_folder_reads_as_its_hub_id(default_model):
    assert readable_model_name(default_model.source) == "sentence-transformers/all-MiniLM-L6-v2"


def test_neuron_view_of_a_local_checkpoint_names_it_without_its_path(tiny, tiny_path):
    directory = Path(tiny_path("bert"))
    handle = attnscope.load(str(directory))
    assert handle.name == str(directory) and handle.label == directory.name
    cap = attnscope.capture(handle, "The girl ran.", fields="all")
    view = attnscope.neuron_view(cap)
    assert view.header["model"] == directory.name
    assert attnscope.head_view(cap).payload.header()["model"] == directory.name
    for html in (view.to_html(), attnscope.head_view(cap).to_html(), attnscope.model_view(cap).to_html()):
        assert str(directory.parent) not in html


def test_model_handle_prints_on_one_short_line(default_model, tiny):
    assert repr(default_model) == (
        "ModelHandle('sentence-transformers/all-MiniLM-L6-v2', encoder bert: encoder 6×12; no LM head)"
    )
    llama = repr(tiny("llama"))
    assert llama.endswith("decoder llama: decoder 2×4 (kv 2); LM head)") and "\n" not in llama
    assert repr(tiny("bert2bert")).endswith(
        "encoder-decoder encoder-decoder: encoder 2×4, decoder 3×4, cross 3×4; LM head)"
    )
