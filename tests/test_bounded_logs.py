"""A run's log is capped on disk, and every log request is answered in bounded memory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .conftest import Api, texts
from .servers import ServerProcess, end_runs

# Prints `count` numbered lines of about 100 bytes as fast as it can, then a last line.
CHATTY = """
import sys
count = int(sys.argv[1]) if len(sys.argv) > 1 else {count}
pad = "x" * 80
for n in range(count):
    print(f"line {{n:07d}} {{pad}}")
print("the end", flush=True)
"""


async def test_a_tasks_log_cap_keeps_the_start_and_the_end_on_disk(
    api: Api, data_dir: Path
) -> None:
    orch_id = await api.upload({"main.py": CHATTY.format(count=60_000)})  # 8 MB of log
    task_id = await api.run_once(orch_id, max_log_bytes=1 << 20)
    task = await api.wait_task(task_id, {"success", "failed"})
    assert task["status"] == "success" and task["max_log_bytes"] == 1 << 20
    run_id = task["last_runs"][0]["run_id"]
    assert (data_dir / "runs" / run_id / "log").stat().st_size <= 1 << 20
    lines = texts(await api.logs(run_id))
    marker = next(i for i, line in enumerate(lines) if line.startswith("jupyter_orch:"))
    assert lines[:marker] == [f"line {n:07d} {'x' * 80}" for n in range(marker)]
    first_kept = int(lines[marker + 1].split()[1])
    dropped = lines[marker].split()
    assert dropped[1:5] == [dropped[1], "bytes", f"({first_kept - marker}", "lines)"]
    assert lines[marker + 1 :] == [
        *(f"line {n:07d} {'x' * 80}" for n in range(first_kept, 60_000)),
        "the end",
    ]
    assert texts(await api.logs(run_id, lines=2)) == [f"line {59_999:07d} {'x' * 80}", "the end"]


async def test_a_log_cap_out_of_range_is_a_400_naming_it(api: Api) -> None:
    orch_id = await api.upload({"main.py": "print('hi')\n"})
    body = {"orch_id": orch_id, "workspace_id": 1, "json": {}, "max_log_bytes": 1000}
    response = await api.call("task/run_once", body)
    assert response.code == 400
    assert json.loads(response.body)["message"].startswith("max_log_bytes: ")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A Jupyter server in a process of its own (its memory is measured)."""
    proc = ServerProcess(tmp_path, tmp_path / "data", "server")
    try:
        yield proc.start()
    finally:
        proc.close()
        end_runs(tmp_path / "data")


def peak_rss(pid: int) -> int:
    """A process's resident memory high-water mark, in bytes (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.parametrize("lines", [None, 10**9])
def test_reading_a_huge_log_does_not_grow_the_server_with_it(
    server: ServerProcess, lines: int | None
) -> None:
    """A run's log of 512 MiB (written beside the server, as a run with a huge cap would):
    the whole log, or its last 10^9 lines, answered while the server's peak memory grows by
    a small fraction of it."""
    orch_id = server.upload({"main.py": "print('short')\n"})
    task_id = server.post("task/run_once", {"orch_id": orch_id, "workspace_id": 1}, status=201)[
        "id"
    ]
    run_id = server.wait_task(task_id, {"success"})["last_runs"][0]["run_id"]
    log = server.data_dir / "runs" / run_id / "log"
    block = b"".join(
        b"2026-12-03T10:00:00.000000000Z stdout F %07d %s\n" % (n, b"y" * 1000) for n in range(1024)
    )
    size = 0
    with open(log, "wb") as fh:
        while size < 512 << 20:
            fh.write(block)
            size += len(block)
    assert server.proc is not None
    before = peak_rss(server.proc.pid)
    body = {"id": run_id} if lines is None else {"id": run_id, "lines": lines}
    received = 0
    with requests.post(
        f"{server.url}/task/get_logs_for_run",
        json=body,
        headers={"Authorization": f"token {server.token}"},
        stream=True,
        timeout=300,
    ) as response:
        assert response.status_code == 200
        first = b""
        for chunk in response.iter_content(1 << 20):
            if not first:
                first = chunk[:100]
            received += len(chunk)
    assert first.startswith(b'{"logs": ["2026-12-03T10:00:00.000000000Z stdout F 0000000 y')
    assert received > size  # every line, JSON-quoted
    grown = peak_rss(server.proc.pid) - before
    assert grown < size // 8, f"peak memory grew by {grown >> 20} MiB for a {size >> 20} MiB log"
