"""Real Jupyter servers in subprocesses, for tests that kill and restart them."""

from __future__ import annotations

import contextlib
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
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests

from jupyter_orch._proc.supervise import process_start_ticks


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def terminate(proc: subprocess.Popen[bytes] | None, timeout: float = 30.0) -> None:
    """Stop a process cleanly (SIGTERM), or kill it after `timeout` seconds; nothing if it
    has ended (or never started)."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll until `check()` is true."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), if it exists."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def alive(pid: int) -> bool:
    """Whether a process exists (and is not a zombie)."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in {"Z", "X"}


def parent_of(pid: int) -> int | None:
    """A process's parent pid, if the process exists."""
    fields = _stat(pid)
    return int(fields[1]) if fields is not None else None


def children_of(pid: int) -> list[int]:
    """The live processes whose parent is `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and parent_of(int(entry)) == pid and alive(int(entry)):
            found.append(int(entry))
    return found


def command_line(pid: int) -> list[str]:
    """A process's argv ([] if it has gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [arg.decode(errors="replace") for arg in fh.read().split(b"\0") if arg]
    except (FileNotFoundError, ProcessLookupError):
        return []


def run_pids(data_dir: Path, run_id: str) -> tuple[int, int]:
    """A run's supervisor and run process, as its supervisor recorded them."""
    run_dir = data_dir / "runs" / run_id
    supervisor: int = json.loads((run_dir / "supervisor.json").read_text())["pid"]
    child: int = json.loads((run_dir / "child.json").read_text())["pid"]
    return supervisor, child


def end_runs(data_dir: Path) -> None:
    """Kill whatever run processes are left under a data directory (a test's clean-up)."""
    for record in (data_dir / "runs").glob("*/supervisor.json"):
        try:
            info = json.loads(record.read_text())
            child = json.loads((record.parent / "child.json").read_text())["pid"]
        except (OSError, ValueError, KeyError):
            child = None
            info = {}
        if isinstance(child, int):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child, signal.SIGKILL)
        pid = info.get("pid")
        if isinstance(pid, int) and process_start_ticks(pid) == info.get("start"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def jupyter_argv(
    app: str, port: int, token: str, root: Path, data_dir: Path, *extra: str
) -> list[str]:
    """The command line of a Jupyter app (`jupyter_server`, `jupyterlab`) with the extension,
    for tests: local only, a known token, a short kill grace."""
    return [
        sys.executable,
        "-m",
        app,
        "--allow-root",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--OrchApp.data_dir={data_dir}",
        "--OrchApp.kill_grace_seconds=1",
        *extra,
    ]


def launch(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start a server process writing to `log_path`."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, stdout=log, stderr=log, env=env)


def wait_answering(
    proc: subprocess.Popen[bytes],
    session: requests.Session,
    status_url: str,
    log_path: Path,
    timeout: float,
) -> None:
    """Wait until the server answers `status_url`; fail with its log if it exits or does
    not answer in time."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"server exited:\n{_text(log_path)}"
        try:
            if session.get(status_url, timeout=5).ok:
                return
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, f"server did not start:\n{_text(log_path)}"
        time.sleep(0.1)


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


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
        argv = jupyter_argv(
            "jupyter_server", self.port, self.token, root, self.data_dir, *self.extra
        )
        self.proc = launch(argv, env, self.log_path)
        status = self.url.replace("/orch/v1/api", "/api/status")
        wait_answering(self.proc, self.session, status, self.log_path, timeout)
        self.ready_at = datetime.now(timezone.utc)
        return self

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

    def run(self, task_id: str, run_id: str) -> Any:
        """One run's details."""
        return self.post("task/get_run_details", {"task": task_id, "pod_id": run_id})

    def logs(self, run_id: str) -> list[str]:
        """A run's log lines."""
        lines: list[str] = self.post("task/get_logs_for_run", {"id": run_id})["logs"]
        return lines

    def follow(
        self, run_id: str, start: int = 0, into: list[Any] | None = None, timeout: float = 60.0
    ) -> list[Any]:
        """`task/follow_logs` from line `start` to its end; every message but heartbeats.

        Messages are appended to `into` as they come (another thread may watch it)."""
        messages: list[Any] = [] if into is None else into
        deadline = time.monotonic() + timeout
        with requests.get(
            f"{self.url}/task/follow_logs",
            params={"id": run_id, "from": str(start)},
            headers={"Authorization": f"token {self.token}"},
            stream=True,
            timeout=30,
        ) as response:
            assert response.status_code == 200, (response.status_code, response.text)
            for raw in response.iter_lines():
                assert time.monotonic() < deadline, f"follow_logs did not end: {messages}"
                if not raw:
                    continue
                message = json.loads(raw)
                if not message.get("heartbeat"):
                    messages.append(message)
        return messages

    def close(self) -> None:
        """Stop the server if it still runs."""
        self.session.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
