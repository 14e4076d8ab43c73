"""Shared by the browser tests: `jupyter lab` with this tree's extension in a subprocess,
and the node scripts of `ui-tests/` that drive Debian's Chromium through playwright-core."""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from .servers import free_port, jupyter_argv, launch, terminate, wait_answering

ROOT = Path(__file__).resolve().parent.parent
LABEXTENSION = ROOT / "labextension"
UI_TESTS = ROOT / "ui-tests"
CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
NO_CHROMIUM = "Chromium is not installed (apt-get install chromium)"


def has_playwright() -> bool:
    """Whether the labextension's dev dependencies (playwright-core) are installed."""
    return (LABEXTENSION / "node_modules" / "playwright-core").is_dir()


def ensure_playwright() -> None:
    """playwright-core comes with the labextension's dev dependencies (no browser in it)."""
    if has_playwright():
        return
    jlpm = shutil.which("jlpm", path=str(Path(sys.executable).parent)) or "jlpm"
    subprocess.run([jlpm, "install"], cwd=LABEXTENSION, check=True, timeout=600)


def run_steps(script: str, config: dict[str, Any], timeout: float, log: Callable[[], str]) -> None:
    """Run `ui-tests/<script>` with `config` (the browser and the output folder added) and
    expect every step to pass; on a failure, its output and the end of the server's `log()`."""
    assert shutil.which("node"), "node is needed to drive the browser"
    config = {"chromium": CHROMIUM, **config}
    result = subprocess.run(
        ["node", str(UI_TESTS / script)],
        env=dict(os.environ, BROWSER_TEST_CONFIG=json.dumps(config)),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    print(result.stdout)
    assert result.returncode == 0, (
        f"browser steps failed (screenshots in {config['output']}):\n{result.stdout}\n"
        f"{result.stderr}\n--- server log ---\n{log()[-5000:]}"
    )


class Lab:
    """`jupyter lab` with the extension, on a root and data directory of its own."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.root = workdir / "root"
        # where the server writes its jpserver-<pid>.json, and where its kernels (which
        # inherit the variable) look for it: `Client()` in a notebook finds this server
        self.runtime = workdir / "runtime"
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.api = f"{self.url}orch/v1/api"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {self.token}"
        self.log_path = workdir / "lab.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> None:
        """Start the server and wait until it answers."""
        self.root.mkdir(parents=True, exist_ok=True)
        settings = self.workdir / "lab-settings"
        notification = settings / "@jupyterlab" / "apputils-extension"
        notification.mkdir(parents=True)
        # no news or update toasts over the screenshots
        (notification / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False})
        )
        env = dict(
            os.environ,
            JUPYTER_PATH=own_build_path(self.workdir),
            JUPYTER_RUNTIME_DIR=str(self.runtime),
            JUPYTER_CONFIG_DIR=str(self.workdir / "config"),
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(self.workdir / "workspaces"),
        )
        argv = jupyter_argv(
            "jupyterlab",
            self.port,
            self.token,
            self.root,
            self.workdir / "orch-data",
            "--OrchApp.stop_runs_on_shutdown=True",
            "--LabApp.expose_app_in_browser=True",
        )
        self.proc = launch(argv, env, self.log_path)
        wait_answering(self.proc, self.session, f"{self.url}api/status", self.log_path, timeout)
        info = self.runtime / f"jpserver-{self.proc.pid}.json"
        assert info.is_file(), f"no {info.name} in {self.runtime}: a kernel would not find it"

    def stop(self) -> None:
        """Stop the server cleanly (its runs are stopped too), or kill it."""
        self.session.close()
        terminate(self.proc)

    def log(self) -> str:
        """What the server printed."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def post(self, endpoint: str, body: Any = None, status: int = 200) -> Any:
        """POST JSON and expect `status`; the decoded answer."""
        response = self.session.post(f"{self.api}/{endpoint}", json=body or {}, timeout=30)
        assert response.status_code == status, (endpoint, response.status_code, response.text)
        return response.json()

    def new_notebook(self, path: str) -> None:
        """An empty Python notebook at `path` of the root, through the contents API."""
        notebook = {
            "cells": [{"cell_type": "code", "source": "", "metadata": {}, "outputs": []}],
            "metadata": {
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
            },
            "nbformat": 4,
            "nbformat_minor": 4,
        }
        response = self.session.put(
            f"{self.url}api/contents/{path}",
            json={"type": "notebook", "format": "json", "content": notebook},
            timeout=30,
        )
        assert response.status_code == 201, response.text

    def upload(self, name: str, main: str, entrypoint: str = "main.py") -> str:
        """Upload a zip holding `main` as `entrypoint` (main.py, main.ipynb); the
        orchestration id."""
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr(entrypoint, main)
        response = self.session.post(
            f"{self.api}/orchestration/upload",
            files=[
                ("file", (f"{name}.zip", buf.getvalue(), "application/octet-stream")),
                ("metadata", ("metadata", json.dumps({"workspace_id": 1}), "application/json")),
            ],
            timeout=30,
        )
        assert response.status_code == 202, response.text
        orch_id: str = response.json()["id"]
        return orch_id

    def steps(self, script: str, output: Path, config: dict[str, Any]) -> None:
        """Run `ui-tests/<script>` against this server, its screenshots in `output` (emptied
        first), with `config` besides the server's address and token."""
        if output.exists():
            shutil.rmtree(output)
        config = {"url": self.url, "token": self.token, "output": str(output), **config}
        run_steps(script, config, 540, self.log)

    def run_once(self, orch_id: str, name: str, status: str) -> dict[str, Any]:
        """A run-once task of the orchestration, once its run has `status`."""
        task: dict[str, Any] = self.post(
            "task/run_once", {"orch_id": orch_id, "workspace_id": 1, "name": name}, status=201
        )
        self.wait_run(task["id"], status)
        return task

    def wait_run(self, task_id: str, status: str, timeout: float = 60.0) -> None:
        """Poll until the task's newest run has `status`."""
        deadline = time.monotonic() + timeout
        while True:
            task = self.post("task/get_by_id", {"id": task_id})
            if task["last_runs"] and task["last_runs"][0]["status"] == status:
                return
            assert time.monotonic() < deadline, f"no {status} run: {task}"
            time.sleep(0.1)


def own_build_path(workdir: Path) -> str:
    """A JUPYTER_PATH whose `labextensions/jupyter_orch` is this tree's build (`jlpm build`
    writes it to jupyter_orch/labextension), so the browser loads the code under test rather
    than the one installed in the environment; the first path naming an extension wins.
    Empty when this tree has no build (the installed one is used)."""
    build = ROOT / "jupyter_orch" / "labextension"
    if not (build / "package.json").is_file():
        return os.environ.get("JUPYTER_PATH", "")
    data = workdir / "jupyter-path"
    (data / "labextensions").mkdir(parents=True, exist_ok=True)
    (data / "labextensions" / "jupyter_orch").symlink_to(build, target_is_directory=True)
    rest = os.environ.get("JUPYTER_PATH")
    return os.pathsep.join([str(data), rest] if rest else [str(data)])
