"""A real Jupyter server in a subprocess, sealed off from the user's home: for notebook front-end tests.

Everything Jupyter and IPython read or write (config, data, runtime, IPython profile) lives under one
temporary directory, the kernel is this interpreter (a kernelspec installed there by ipykernel, with
its absolute path), and the server listens on a free loopback port with a fixed token.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

KERNEL_NAME = "attnscope-e2e"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def sealed_env(base: Path) -> dict[str, str]:
    """Environment for Jupyter processes: every Jupyter/IPython directory under ``base``, offline."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("JUPYTER", "IPYTHON"))}
    dirs = {
        "JUPYTER_CONFIG_DIR": "config",
        "JUPYTER_DATA_DIR": "data",
        "JUPYTER_RUNTIME_DIR": "runtime",
        "IPYTHONDIR": "ipython",
        "HOME": "home",
    }
    for name, sub in dirs.items():
        (base / sub).mkdir(parents=True, exist_ok=True)
        env[name] = str(base / sub)
    env.update(
        JUPYTER_PLATFORM_DIRS="1",
        PYTHONNOUSERSITE="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    return env


def install_kernel(env: dict[str, str]) -> Path:
    """Install a kernelspec for this interpreter into the sealed data dir; returns its kernel.json."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ipykernel",
            "install",
            "--user",
            "--name",
            KERNEL_NAME,
            "--display-name",
            "attnscope e2e",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    spec = Path(env["JUPYTER_DATA_DIR"]) / "kernels" / KERNEL_NAME / "kernel.json"
    argv = json.loads(spec.read_text())["argv"]
    if argv[0] != sys.executable:
        raise RuntimeError(f"kernelspec {spec} runs {argv[0]}, not this interpreter {sys.executable}")
    return spec


def quiet_lab_settings(env: dict[str, str]) -> None:
    """User settings that keep JupyterLab's first-start prompts (news, update checks) away."""
    settings = Path(env["JUPYTER_CONFIG_DIR"]) / "lab" / "user-settings" / "@jupyterlab"
    notification = settings / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True, exist_ok=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True}))


class JupyterServer:
    """``jupyter lab`` (which also serves Notebook 7's /notebooks) on 127.0.0.1:<free port>."""

    def __init__(self, base: Path, root: Path) -> None:
        self.base, self.root = base, root
        self.env = sealed_env(base)
        self.kernelspec = install_kernel(self.env)
        quiet_lab_settings(self.env)
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.origin = f"http://{HOST}:{self.port}"
        self.log_path = base / "server.log"
        self.process: subprocess.Popen | None = None
        self._log_file = None

    def url(self, path: str) -> str:
        return f"{self.origin}/{path.lstrip('/')}?token={self.token}"

    def start(self, timeout: float = 60) -> None:
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            f"--ip={HOST}",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.open_browser=False",
            f"--MappingKernelManager.default_kernel_name={KERNEL_NAME}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            "--ServerApp.terminals_enabled=False",
            "--LanguageServerManager.autodetect=False",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")  # containers and CI often run as root
        self._log_file = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command, env=self.env, cwd=self.root, stdout=self._log_file, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Jupyter server exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=2) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        raise RuntimeError(f"the Jupyter server did not answer within {timeout} s:\n{self.log()}")

    def api(self, path: str, method: str = "GET") -> object:
        request = urllib.request.Request(self.url(path), method=method)
        with urllib.request.urlopen(request, timeout=30) as reply:
            body = reply.read()
        return json.loads(body) if body else None

    def shut_down_sessions(self) -> None:
        """End every notebook session and its kernel (each kernel holds a model)."""
        for session in self.api("api/sessions"):
            self.api(f"api/sessions/{session['id']}", method="DELETE")

    @contextlib.contextmanager
    def log_on_failure(self):
        """Print the server's log when the block fails (pytest shows it with the failure)."""
        try:
            yield
        except BaseException:
            print(f"--- Jupyter server log ({self.log_path}) ---\n{self.log()[-20000:]}")
            raise

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: the server shuts its kernels down and exits
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self._log_file is not None:
            self._log_file.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else "(no log)"
