"""Runs on a real Dask cluster (a scheduler and two workers on 127.0.0.1): every promise a
local run keeps, and a clear failure where a part of the cluster dies."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import texts
from .dask_cluster import DaskCluster
from .servers import ServerProcess, end_runs, wait_for

pytestmark = pytest.mark.timeout(300)

FINAL = {"success", "failed", "timed_out", "killed"}

# Prints its pid and where it runs, then waits for the file args["go"] (if given), then ends.
GATED = """
import os, pathlib, time, jupyter_orch
args = jupyter_orch.task_args()
print("pid", os.getpid(), flush=True)
print("cache", os.environ.get("JUPYTER_ORCH_WORKER_DIR"), flush=True)
go = args.get("go")
while go and not pathlib.Path(go).exists():
    time.sleep(0.05)
for i in range(args.get("lines", 3)):
    print("line", i, flush=True)
"""

SLEEPER = """
import os, signal, time
print("pid", os.getpid(), flush=True)
def term(signum, frame):
    print("got SIGTERM", flush=True)
    time.sleep(30)  # ignores the request: only SIGKILL ends it
signal.signal(signal.SIGTERM, term)
time.sleep(120)
"""


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[DaskCluster]:
    """A scheduler and two workers (`a`, `b`), stopped whatever happens."""
    dask = DaskCluster(tmp_path)
    try:
        dask.start_scheduler()
        dask.start_worker("a")
        dask.start_worker("b")
        yield dask
    finally:
        dask.stop()
        for cache in tmp_path.glob("cache-*"):
            end_runs(cache)


@pytest.fixture
def servers(tmp_path: Path, cluster: DaskCluster) -> Iterator[Callable[..., ServerProcess]]:
    """Start Jupyter servers on one data directory, with the cluster as the `dask` executor."""
    started: list[ServerProcess] = []
    data_dir = tmp_path / "data"

    def make(*extra: str, port: int | None = None) -> ServerProcess:
        proc = ServerProcess(
            tmp_path,
            data_dir,
            f"server-{len(started)}",
            f"--OrchApp.dask_scheduler_address={cluster.address}",
            "--OrchApp.dask_run_resources={'orch_runs': 1}",
            "--OrchApp.dask_scheduler_grace_seconds=3",
            *extra,
        )
        if port is not None:
            proc.port = port
        started.append(proc)
        return proc.start()

    yield make
    for proc in started:
        proc.close()
    end_runs(data_dir)


def run_on_dask(server: ServerProcess, code: str, args: Any = None, **extra: Any) -> str:
    """Upload `code` as main.py and run it once on the `dask` executor; the task id."""
    orch_id = server.upload({"main.py": code})
    body = {"orch_id": orch_id, "workspace_id": 1, "json": args or {}, "executor": "dask"}
    task_id: str = server.post("task/run_once", {**body, **extra}, status=201)["id"]
    return task_id


def one_run(server: ServerProcess, task_id: str) -> dict[str, Any]:
    """The task's only run (waiting for it to exist)."""
    wait_for(lambda: bool(server.runs(task_id)), "the run", 60)
    runs = server.runs(task_id)
    assert len(runs) == 1, runs
    return runs[0]


def wait_log(server: ServerProcess, run_id: str, needle: str, timeout: float = 120) -> list[str]:
    """Poll the run's log through the API until a line holds `needle`."""
    found: list[str] = []

    def check() -> bool:
        found[:] = server.logs(run_id)
        return any(needle in line for line in found)

    wait_for(check, f"{needle!r} in the log", timeout)
    return found


def starts(cluster: DaskCluster, run_id: str) -> list[str]:
    """The workers whose cache holds a run folder of this run (where user code started)."""
    return sorted(
        p.parent.parent.parent.name
        for p in cluster.workdir.glob(f"cache-*/runs/{run_id}/child.json")
    )


def test_a_run_on_dask_logs_like_a_local_one(servers: Callable[..., ServerProcess]) -> None:
    server = servers()
    task_id = run_on_dask(server, GATED, {"lines": 200})
    task = server.wait_task(task_id, FINAL, 120)
    assert task["status"] == "success", task
    assert task["executor"] == "dask"
    run = one_run(server, task_id)
    assert run["executor"] == "dask" and run["worker"] and run["refused_claims"] == 0
    lines = server.logs(run["run_id"])
    assert texts(lines)[2:] == [f"line {i}" for i in range(200)]
    # The same CRI lines, with the supervisor's nanosecond stamps, in order.
    stamps = [line.split(" ", 1)[0] for line in lines]
    assert all(len(s) == 30 and s.endswith("Z") for s in stamps) and stamps == sorted(stamps)
    assert "cache-" in texts(lines)[1]  # it ran on a worker, in the worker's folder
    follow = server.follow(run["run_id"])
    assert [m["line"] for m in follow if "line" in m] == lines


def test_unknown_or_unreachable_executor_is_a_clear_4xx(
    servers: Callable[..., ServerProcess], cluster: DaskCluster
) -> None:
    server = servers()
    orch_id = server.upload({"main.py": "print('hi')"})
    body = {"orch_id": orch_id, "workspace_id": 1, "executor": "nowhere"}
    answer = server.post("task/run_once", body, status=400)
    assert "unknown executor 'nowhere'" in answer["message"] and "local, dask" in answer["message"]
    cluster.kill("scheduler")
    answer = server.post("task/run_once", {**body, "executor": "dask"}, status=422)
    assert "unreachable" in answer["message"] and cluster.address in answer["message"]
    # The local executor is unaffected.
    task_id = server.post("task/run_once", {**body, "executor": "local"}, status=201)["id"]
    assert server.wait_task(task_id, FINAL)["status"] == "success"
