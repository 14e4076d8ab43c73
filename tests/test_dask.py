"""Runs on a real Dask cluster (a scheduler and two workers on 127.0.0.1): every promise a
local run keeps, and a clear failure where a part of the cluster dies."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import offline_builds, texts
from .dask_cluster import DaskCluster
from .fakes import make_wheel
from .servers import ServerProcess, alive, end_runs, wait_for

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


def stuck_run(server: ServerProcess, tmp_path: Path) -> tuple[str, str, int]:
    """A Dask run that waits for a file never made, once it has printed its pid: (task id,
    run id, pid)."""
    task_id = run_on_dask(server, GATED, {"go": str(tmp_path / "never")})
    run_id = one_run(server, task_id)["run_id"]
    wait_log(server, run_id, "pid")
    return task_id, run_id, int(texts(server.logs(run_id))[0].split()[1])


def ended(server: ServerProcess, task_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The task once it has ended, and its one run."""
    return server.wait_task(task_id, FINAL, 120), one_run(server, task_id)


def wait_refused_claim(server: ServerProcess, task_id: str) -> None:
    """Wait until a worker's claim of the task's run has been refused."""
    wait_for(lambda: server.runs(task_id)[0]["refused_claims"] >= 1, "the refused claim", 60)


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


def test_the_sdk_and_magics_name_an_executor(servers: Callable[..., ServerProcess]) -> None:
    from jupyter_orch.magics import ORCHESTRATE
    from jupyter_orch.sdk.client import Client
    from jupyter_orch.sdk.errors import BadRequestError

    server = servers()
    client = Client(url=server.url.replace("/orch/v1/api", ""), token=server.token)
    orch = client.upload_orchestration(path=None, bytes_buffer=_zip(GATED), name="sdk")
    orch.wait_ready(120)
    task = orch.run_once("on dask", {"lines": 1}, executor="dask")
    assert server.wait_task(task.id(), FINAL, 120)["status"] == "success"
    assert server.post("task/get_by_id", {"id": task.id()})["executor"] == "dask"
    with pytest.raises(BadRequestError, match="unknown executor 'gpu'"):
        orch.run_once("nowhere", executor="gpu")
    assert ORCHESTRATE.parse_args(["n", "--once", "--executor", "dask"]).executor == "dask"
    assert server.post("executors/list") == {"executors": ["local", "dask"], "default": "local"}


def _zip(code: str) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("main.py", code)
    return buf.getvalue()


def test_a_worker_killed_mid_run_fails_the_run_which_never_starts_again(
    servers: Callable[..., ServerProcess], cluster: DaskCluster, tmp_path: Path
) -> None:
    server = servers()
    task_id, run_id, pid = stuck_run(server, tmp_path)
    [worker] = starts(cluster, run_id)
    cluster.kill(worker.removeprefix("cache-"))
    task, run = ended(server, task_id)
    assert task["status"] == "failed" and run["status"] == "failure"
    assert "was lost" in run["reason"] and run["worker"] in run["reason"]
    # Dask gives the task to the other worker: its claim is refused, user code never starts.
    wait_refused_claim(server, task_id)
    assert starts(cluster, run_id) == [worker]
    # The run's process died with its worker (the supervisor's lifeline).
    wait_for(lambda: not alive(pid), "the run's process to end", 30)


def test_a_retired_worker_mid_run_is_a_failure_and_the_retry_is_refused(
    servers: Callable[..., ServerProcess], cluster: DaskCluster, tmp_path: Path
) -> None:
    server = servers()
    task_id, run_id, _ = stuck_run(server, tmp_path)
    [worker] = starts(cluster, run_id)
    address = cluster.worker_names()[worker.removeprefix("cache-")]
    cluster.ask(lambda c: c.retire_workers([address], close_workers=True))
    task, run = ended(server, task_id)
    assert task["status"] == "failed" and address in run["reason"], run
    wait_refused_claim(server, task_id)
    assert starts(cluster, run_id) == [worker]


def test_a_lost_scheduler_fails_its_runs_with_the_reason(
    servers: Callable[..., ServerProcess], cluster: DaskCluster, tmp_path: Path
) -> None:
    server = servers()
    task_id, run_id, pid = stuck_run(server, tmp_path)
    cluster.kill("scheduler")
    task, run = ended(server, task_id)
    assert task["status"] == "failed"
    assert "Dask scheduler" in run["reason"] and "was lost" in run["reason"], run
    assert any("was lost" in line for line in server.logs(run_id))
    # The worker is told the run is over at its next report, and stops it.
    wait_for(lambda: not alive(pid), "the run's process to end", 60)


def test_a_restarted_server_reattaches_to_runs_in_flight(
    servers: Callable[..., ServerProcess], cluster: DaskCluster, tmp_path: Path
) -> None:
    server = servers()
    go = tmp_path / "go"
    task_id = run_on_dask(server, GATED, {"go": str(go), "lines": 50})
    run_id = one_run(server, task_id)["run_id"]
    wait_log(server, run_id, "cache")
    server.kill()
    go.touch()  # lines are printed while no server listens
    time.sleep(1)  # let the worker print them meanwhile (not a wait for a status)
    second = servers(port=server.port)
    task = second.wait_task(task_id, FINAL, 120)
    assert task["status"] == "success", second.logs(run_id)
    run = one_run(second, task_id)
    assert run["status"] == "success" and run["refused_claims"] == 0
    assert texts(second.logs(run_id))[2:] == [f"line {i}" for i in range(50)]
    assert len(starts(cluster, run_id)) == 1


def test_kill_and_timeout_reach_the_remote_process_group(
    servers: Callable[..., ServerProcess], cluster: DaskCluster
) -> None:
    server = servers()
    killed = run_on_dask(server, SLEEPER)
    timed = run_on_dask(server, SLEEPER, timeout=2)
    killed_run = one_run(server, killed)["run_id"]
    wait_log(server, killed_run, "pid")
    server.post("task/kill", {"id": killed}, status=202)
    for task_id, status, run_status in [
        (killed, "killed", "killed"),
        (timed, "timed_out", "timed_out"),
    ]:
        task = server.wait_task(task_id, FINAL, 120)
        run = one_run(server, task_id)
        assert (task["status"], run["status"]) == (status, run_status), run
        lines = texts(server.logs(run["run_id"]))
        # SIGTERM first (the run ignores it), SIGKILL after the grace period.
        assert "got SIGTERM" in lines, lines
        pid = int(lines[0].split()[1])
        assert not alive(pid)


def test_a_run_with_its_own_requirements_builds_them_on_the_worker(
    servers: Callable[..., ServerProcess],
    cluster: DaskCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "orchdemo", "1.0")
    offline_builds(monkeypatch, wheels)
    # Workers started now build from the wheels folder only (their own environment).
    cluster.stop()
    cluster.env = dict(os.environ, PYTHONPATH=cluster.env["PYTHONPATH"])
    cluster.start_scheduler()
    cluster.start_worker("c")
    server = servers()
    code = "import orchdemo, sys\nprint(orchdemo.__version__, sys.prefix, flush=True)\n"
    orch_id = server.upload({"main.py": code, "requirements.txt": "orchdemo==1.0\n"})
    wait_for(
        lambda: server.post("orchestration/get_by_id", {"id": orch_id})["status"] == "ready",
        "packaging",
        180,
    )
    body = {"orch_id": orch_id, "workspace_id": 1, "executor": "dask"}
    task_id = server.post("task/run_once", body, status=201)["id"]
    task = server.wait_task(task_id, FINAL, 180)
    run_id = one_run(server, task_id)["run_id"]
    lines = texts(server.logs(run_id))
    assert task["status"] == "success", lines
    version, prefix = lines[-1].split(" ", 1)
    assert version == "1.0" and prefix.startswith(str(tmp_path / "cache-c" / "envs"))
    # The worker's own interpreter did not gain the package.
    assert not list(Path(os.__file__).parent.glob("site-packages/orchdemo*"))


def test_resources_bound_runs_per_worker_and_a_queued_run_is_killed_unstarted(
    servers: Callable[..., ServerProcess], cluster: DaskCluster, tmp_path: Path
) -> None:
    server = servers()
    gate = {"go": str(tmp_path / "go")}
    # Two workers with orch_runs=2 each, one per run: four run, the fifth waits.
    tasks = [run_on_dask(server, GATED, gate) for _ in range(5)]
    wait_for(
        lambda: sum(1 for t in tasks if (r := server.runs(t)) and r[0]["worker"]) == 4,
        "four claimed runs",
        120,
    )
    [queued] = [t for t in tasks if not server.runs(t)[0]["worker"]]
    time.sleep(1)  # give the scheduler a chance to misplace it (it must not)
    assert not server.runs(queued)[0]["worker"]
    server.post("task/kill", {"id": queued}, status=202)
    assert server.wait_task(queued, FINAL, 60)["status"] == "killed"
    run = one_run(server, queued)
    assert run["status"] == "killed" and "before it started" in run["reason"]
    (tmp_path / "go").touch()
    for task_id in tasks:
        server.wait_task(task_id, FINAL, 120)
    assert starts(cluster, run["run_id"]) == []  # never started anywhere
    assert all(server.runs(t)[0]["status"] == "success" for t in tasks if t != queued)
