"""What the tests of a decoder's corpus built on first use share: `attnscope serve --model default --model
smollm2` over a stand-in for UD English EWT of a handful of sentences, and waiting for SmolLM2's build."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from .index_fixtures import small_conllu

SMOLLM2_LAYERS = [0, 8, 16, 24, 29]
"""The layers the default corpus's index stores for SmolLM2's 30 (every eighth and the last)."""


def small_ewt_env(root: Path, smollm2_cache: Path) -> dict[str, str]:
    """The environment of a server whose default corpus is a small stand-in for EWT (the small corpus as its dev
    and test files) and whose cache is fresh but holds the converted SmolLM2 (linked from ``smollm2_cache``)."""
    ewt = root / "ewt"
    ewt.mkdir()
    for part in ("dev", "test"):
        text = small_conllu().replace("# sent_id = ", f"# sent_id = {part}-")
        (ewt / f"en_ewt-ud-{part}.conllu").write_text(text, encoding="utf-8")
    cache = root / "cache"
    cache.mkdir()
    (cache / "models").symlink_to(smollm2_cache / "models", target_is_directory=True)
    return {"ATTNSCOPE_EWT_DIR": str(ewt), "ATTNSCOPE_CACHE": str(cache)}


def wait_for_build(base: str, model: str, timeout: float = 600) -> list[dict]:
    """Ask ``GET /api/corpus-build`` for ``model`` until it is ready (or failed); every answer, in order."""
    answers = []
    deadline = time.monotonic() + timeout
    while True:
        answer = httpx.get(f"{base}/api/corpus-build", params={"model": model}, timeout=30).json()
        answers.append(answer)
        if answer["status"] in ("ready", "failed", "none") or time.monotonic() > deadline:
            return answers
        time.sleep(0.5)
