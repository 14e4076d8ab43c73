"""Real Jupyter servers in subprocesses, for tests that kill and restart them."""

from __future__ import annotations

import io
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """`jupyter server` with the extension, on a data directory a test chooses."""

    def __init__(self, workdir: Path, data_dir: Path, name: str, *extra: str) -> None:
        self.workdir = workdir
        self.data_dir = data_dir
        self.name = name
        self.extra = extra
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_at = datetime.now(timezone.utc)
        self.log_path = workdir / f"{name}.log"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {self.token}"

    @property
    def url(self) -> str:
        """The orchestration API's base URL."""
        return f"http://127.0.0.1:{self.port}/orch/v1/api"

    def start(self, timeout: float = 90.0) -> ServerProcess:
        """Start the server and wait until it answers."""
        root = self.workdir / "root"
        root.mkdir(exist_ok=True)
        env = dict(
            os.environ,
            JUPYTER_RUNTIME_DIR=str(self.workdir / "runtime"),
            JUPYTER_CONFIG_DIR=str(self.workdir / "config"),
        )
        argv = [
            sys.executable,
            "-m",
            "jupyter_server",
            "--allow-root",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={root}",
            f"--OrchApp.data_dir={self.data_dir}",
            "--OrchApp.kill_grace_seconds=1",
            *self.extra,
        ]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, f"server exited:\n{self.log()}"
            try:
                if self.session.get(self.url.replace("/orch/v1/api", "/api/status")).ok:
                    self.ready_at = datetime.now(timezone.utc)
                    return self
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, f"server did not start:\n{self.log()}"
            time.sleep(0.1)

    def kill(self, signum: int = signal.SIGKILL, timeout: float = 30.0) -> None:
        """Send a signal and wait for the server to exit."""
        assert self.proc is not None
        self.proc.send_signal(signum)
        self.proc.wait(timeout)

    def log(self) -> str:
        """What the server printed."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def post(self, path: str, body: Any = None, status: int = 200) -> Any:
        """POST JSON and expect `status`; the decoded answer."""
        response = self.session.post(f"{self.url}/{path}", json=body or {}, timeout=30)
        assert response.status_code == status, (response.status_code, response.text)
        return response.json()

    def upload(self, files: dict[str, str]) -> str:
        """Upload a zip of `files`; the orchestration id."""
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name, content in files.items():
                zf.writestr(name, content)
        response = self.session.post(
            f"{self.url}/orchestration/upload",
            files=[
                ("file", ("orch.zip", buf.getvalue(), "application/octet-stream")),
                ("metadata", ("metadata", json.dumps({"workspace_id": 1}), "application/json")),
            ],
            timeout=30,
        )
        assert response.status_code == 202, response.text
        orch_id: str = response.json()["id"]
        return orch_id

    def wait_task(self, task_id: str, statuses: set[str], timeout: float = 60.0) -> Any:
        """Poll a task until its status is one of `statuses`."""
        deadline = time.monotonic() + timeout
        while True:
            task = self.post("task/get_by_id", {"id": task_id})
            if task["status"] in statuses:
                return task
            assert time.monotonic() < deadline, f"task stuck in {task['status']}"
            time.sleep(0.1)

    def runs(self, task_id: str) -> list[dict[str, Any]]:
        """Every run of a task, oldest first."""
        runs: list[dict[str, Any]] = self.post("task/list_task_runs", {"task_id": task_id})
        return sorted(runs, key=lambda r: r["created_at"])

    def close(self) -> None:
        """Stop the server if it still runs."""
        self.session.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
