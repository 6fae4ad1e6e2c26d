"""`attnscope serve` as a real subprocess on a free loopback port, for tests over real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Served:
    """A running server: its base URL (``http://127.0.0.1:<port>``) and its process id."""

    base: str
    pid: int


@contextmanager
def serving(
    args: Sequence[str], cwd: Path, timeout: float = 180, env: dict[str, str] | None = None
) -> Iterator[Served]:
    """Run ``attnscope serve <args> --port <free>`` in ``cwd`` until the block ends; yields it as `Served`.

    Waits until ``GET /api/models`` answers; on a failure or exit the server's log is in the error.
    ``env`` adds to the environment. The log is ``cwd / "serve-<port>.log"``.
    """
    port = free_port()
    log = cwd / f"serve-{port}.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src"), **(env or {})}
    command = [sys.executable, "-c", "from attnscope.cli import app; app()", "serve", *args, "--port", str(port)]
    with log.open("wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if server.poll() is not None:
                raise AssertionError(f"attnscope serve exited with {server.returncode}:\n{log.read_text()}")
            try:
                httpx.get(f"{base}/api/models", timeout=5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"attnscope serve did not answer in {timeout} s:\n{log.read_text()}") from None
                time.sleep(0.3)
        try:
            yield Served(base, server.pid)
        except AssertionError:
            print(log.read_text())
            raise
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
