"""A real Jupyter server with the extension enabled, and a small client for its API."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shutil
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPResponse

from .fakes import make_wheel
from .kernels import Kernel, StartKernel

pytest_plugins = ["pytest_jupyter.jupyter_server"]

API = "orch/v1/api"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) [FP] (.*)$")


@pytest.fixture
def orch_config() -> dict[str, Any]:
    """OrchApp settings a test may change before the server starts. The in-process servers
    leave the test process's garbage collector alone (tests/test_app.py checks the freeze)."""
    return {"kill_grace_seconds": 1.0, "freeze_startup_objects": False}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The extension's data directory for this test."""
    return tmp_path / "orch-data"


@pytest.fixture
def passable_dir() -> Iterator[Path]:
    """A folder other Unix accounts may pass through (0711; pytest's own temporary folders
    are private), removed at the end."""
    folder = Path(tempfile.mkdtemp(prefix="orch-passable-", dir="/var/tmp"))
    folder.chmod(0o711)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def server_config() -> dict[str, Any]:
    """ServerApp settings a test may add."""
    return {}


@pytest.fixture
def jp_server_config(
    data_dir: Path, orch_config: dict[str, Any], server_config: dict[str, Any]
) -> dict[str, Any]:
    """Enable the extension with its data under the test's temporary folder."""
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_orch": True}, **server_config},
        "OrchApp": {"data_dir": str(data_dir), **orch_config},
    }


def make_zip(files: dict[str, str | bytes]) -> bytes:
    """A zip archive holding `files` (name -> content)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


def multipart(parts: list[tuple[str, str | None, bytes, str]]) -> tuple[bytes, str]:
    """A multipart/form-data body from (name, file name or None, data, content type) parts."""
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, file_name, data, ctype in parts:
        disposition = f'form-data; name="{name}"'
        if file_name is not None:
            disposition += f'; filename="{file_name}"'
        out.write(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode())
        out.write(f"Content-Type: {ctype}\r\n\r\n".encode())
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def texts(lines: list[str], stream: str | None = None) -> list[str]:
    """The printed text of log lines, optionally of one stream."""
    out = []
    for line in lines:
        match = LOG_LINE.match(line)
        assert match, f"not a log line: {line!r}"
        if stream is None or match.group(1) == stream:
            out.append(match.group(2))
    return out


class Api:
    """Calls the orchestration API of the test server the way a client would."""

    def __init__(self, fetch: Callable[..., Any]) -> None:
        self.fetch = fetch

    async def call(self, path: str, body: Any = None, **kwargs: Any) -> HTTPResponse:
        """POST a JSON body; the response whatever its status."""
        data = body if isinstance(body, (bytes, str)) else json.dumps(body or {})
        response: HTTPResponse = await self.fetch(
            API, *path.split("/"), method="POST", body=data, raise_error=False, **kwargs
        )
        return response

    async def ok(self, path: str, body: Any = None, status: int = 200) -> Any:
        """POST and expect `status`; the decoded JSON answer."""
        response = await self.call(path, body)
        assert response.code == status, (response.code, response.body)
        return json.loads(response.body)

    async def refused(self, path: str, body: Any, status: int) -> str:
        """POST expecting the error `status`; the error's message."""
        answer = await self.ok(path, body, status)
        message: str = answer["message"]
        return message

    async def upload_raw(
        self, zip_bytes: bytes, metadata: str = '{"workspace_id": 1}', **kwargs: Any
    ) -> HTTPResponse:
        """Upload a zip as Wallaroo's documented client does (file + metadata parts)."""
        body, ctype = multipart(
            [
                ("file", "orch.zip", zip_bytes, "application/octet-stream"),
                ("metadata", "metadata", metadata.encode(), "application/json"),
            ]
        )
        headers = {"Content-Type": ctype, **kwargs.pop("headers", {})}
        response: HTTPResponse = await self.fetch(
            API,
            "orchestration",
            "upload",
            method="POST",
            body=body,
            headers=headers,
            raise_error=False,
            **kwargs,
        )
        return response

    async def upload(self, files: dict[str, str | bytes], **meta: Any) -> str:
        """Upload an archive of `files`; the new orchestration's id."""
        metadata = json.dumps({"workspace_id": 1, **meta})
        response = await self.upload_raw(make_zip(files), metadata)
        assert response.code == 202, response.body
        orch_id: str = json.loads(response.body)["id"]
        return orch_id

    async def run_once(self, orch_id: str, args: Any = None, **extra: Any) -> str:
        """Start a run-once task; its id."""
        body = {"workspace_id": 1, "orch_id": orch_id, "json": args or {}, **extra}
        task_id: str = (await self.ok("task/run_once", body, status=201))["id"]
        return task_id

    async def wait_task(self, task_id: str, statuses: set[str], timeout: float = 30) -> Any:
        """Poll a task until its status is one of `statuses` (deadline, no fixed sleeps)."""
        deadline = time.monotonic() + timeout
        while True:
            task = await self.ok("task/get_by_id", {"id": task_id})
            if task["status"] in statuses:
                return task
            assert time.monotonic() < deadline, f"task stuck in {task['status']}"
            await asyncio.sleep(0.05)

    async def wait_orch(self, orch_id: str, statuses: set[str], timeout: float = 120) -> Any:
        """Poll an orchestration until its status is one of `statuses`."""
        deadline = time.monotonic() + timeout
        while True:
            orch = await self.ok("orchestration/get_by_id", {"id": orch_id})
            if orch["status"] in statuses:
                return orch
            assert time.monotonic() < deadline, f"orchestration stuck in {orch['status']}"
            await asyncio.sleep(0.1)

    async def logs(self, run_id: str, lines: int | None = None) -> list[str]:
        """A run's log lines."""
        body: dict[str, Any] = {"id": run_id}
        if lines is not None:
            body["lines"] = lines
        logs: list[str] = (await self.ok("task/get_logs_for_run", body))["logs"]
        return logs

    async def run_to_end(self, files: dict[str, str | bytes], args: Any = None) -> Any:
        """Upload, run once, wait for the end; the finished task."""
        task_id = await self.run_once(await self.upload(files), args)
        return await self.wait_task(task_id, {"success", "failed", "timed_out", "killed"})

    async def wait_for_log(self, run_id: str, needle: str, timeout: float = 30) -> list[str]:
        """Poll a run's log until a line contains `needle`."""
        deadline = time.monotonic() + timeout
        while True:
            lines = await self.logs(run_id)
            if any(needle in line for line in lines):
                return lines
            assert time.monotonic() < deadline, f"{needle!r} never logged: {lines}"
            await asyncio.sleep(0.05)


@pytest.fixture
def api(jp_fetch: Callable[..., Any]) -> Api:
    """A client of the running test server's orchestration API."""
    return Api(jp_fetch)


@pytest.fixture
def start_kernel(jp_serverapp: Any, jp_fetch: Callable[..., Any]) -> Iterator[StartKernel]:
    """Start kernels as JupyterLab does: a session for a notebook at the server's root."""
    clients: list[Any] = []

    async def start() -> Kernel:
        name = f"notebook-{len(clients)}.ipynb"
        session = {"path": name, "name": name, "type": "notebook", "kernel": {"name": "python3"}}
        response = await jp_fetch("api", "sessions", method="POST", body=json.dumps(session))
        kernel_id = json.loads(response.body)["kernel"]["id"]
        client = jp_serverapp.kernel_manager.get_kernel(kernel_id).client()
        client.start_channels()
        clients.append(client)
        await client.wait_for_ready(timeout=60)
        return Kernel(client)

    yield start
    for client in clients:
        client.stop_channels()


@pytest.fixture
def local_wheels(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, jp_environ: None) -> None:
    """Environment builds install from a folder of wheels, never from the network."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    make_wheel(folder, "orchdemo", "1.0")
    offline_builds(monkeypatch, folder)


def offline_builds(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Environment builds install from `folder` only (no index, no pip or uv configuration),
    and runs do not see the server's packages through PYTHONPATH."""
    monkeypatch.delenv("PYTHONPATH", raising=False)  # runs must not see the server's packages
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "UV_CACHE_DIR", "UV_INDEX_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in ("UV_DEFAULT_INDEX", "UV_INDEX", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS"):
        monkeypatch.delenv(name, raising=False)
