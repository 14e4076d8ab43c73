"""One suite of run semantics, run over both executors: what a run sees and how its task
behaves are the same whether it runs on the server's machine or on a Dask worker."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import texts
from .dask_cluster import DaskCluster
from .servers import ServerProcess, end_runs, wait_for

pytestmark = pytest.mark.timeout(300)

FINAL = {"success", "failed", "timed_out", "killed"}
EXECUTORS = ["local", "dask"]

SEES = """
import json, os, sys, jupyter_orch
from jupyter_orch.sdk.client import Client
args = jupyter_orch.task_args()
print("in_task", jupyter_orch.in_task(), flush=True)
print("args", json.dumps(args, sort_keys=True), flush=True)
task = Client().get_task_by_id(os.environ["TASK_ID"])  # through the run's own token
print("task", task.name(), flush=True)
print("oops", file=sys.stderr, flush=True)
sys.exit(args["code"])
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One Jupyter server with both executors (a Dask cluster of two workers), for the module."""
    workdir = tmp_path_factory.mktemp("semantics")
    cluster = DaskCluster(workdir)
    proc = ServerProcess(
        workdir,
        workdir / "data",
        "server",
        f"--OrchApp.dask_scheduler_address={cluster.address}",
        "--OrchApp.keep_runs=3",
    )
    try:
        cluster.start_scheduler()
        cluster.start_worker("a")
        cluster.start_worker("b")
        yield proc.start()
    finally:
        proc.close()
        cluster.stop()
        end_runs(workdir / "data")
        for cache in workdir.glob("cache-*"):
            end_runs(cache)


def start(server: ServerProcess, kind: str, files: dict[str, str], **body: Any) -> str:
    """Upload `files` and start a task of `kind` (run_once ...); the task id."""
    orch_id = server.upload(files)
    request = {"orch_id": orch_id, "workspace_id": 1, **body}
    task_id: str = server.post(f"task/{kind}", request, status=201)["id"]
    return task_id


def ended_runs(server: ServerProcess, task_id: str) -> list[dict[str, Any]]:
    """The task's runs that have ended."""
    return [r for r in server.runs(task_id) if r["status"] != "running"]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_run_sees_its_arguments_token_and_exit_code(server: ServerProcess, executor: str) -> None:
    args = {"code": 3, "x": [1, "ü"]}
    task_id = start(
        server, "run_once", {"main.py": SEES}, json=args, name="sees", executor=executor
    )
    task = server.wait_task(task_id, FINAL, 120)
    [run] = server.runs(task_id)
    lines = server.logs(run["run_id"])
    assert task["status"] == "failed", lines
    assert (run["status"], run["exit_code"], run["reason"]) == ("failure", 3, "exit code 3")
    assert run["executor"] == executor
    assert texts(lines, "stdout") == [
        "in_task True",
        f"args {json.dumps(args, sort_keys=True)}",
        "task sees",
    ]
    assert texts(lines, "stderr") == ["oops"]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_scheduled_runs_forbid_overlap_and_keep_the_newest(
    server: ServerProcess, executor: str
) -> None:
    code = "import time\nprint('tick', flush=True)\ntime.sleep(1.5)\n"
    task_id = start(
        server,
        "run_scheduled",
        {"main.py": code},
        schedule="* * * * * *",
        concurrency_policy="forbid",
        executor=executor,
    )
    seen: set[str] = set()

    def four() -> bool:
        seen.update(r["run_id"] for r in ended_runs(server, task_id))
        return len(seen) >= 4

    wait_for(four, "four scheduled runs", 120)
    server.post("task/kill", {"id": task_id}, status=202)
    server.wait_task(task_id, {"killed"}, 60)
    runs = server.runs(task_id)
    assert len(runs) <= 3  # retention: the newest 3
    assert all(r["executor"] == executor for r in runs)
    assert all(r["status"] in ("success", "killed") for r in runs), runs
    spans = sorted((r["started_at"], r["ended_at"]) for r in runs)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), spans  # never two at once
    skipped = server.post("task/get_by_id", {"id": task_id})["last_skipped"]
    assert any("still running" in s["reason"] for s in skipped), skipped


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_continuous_task_starts_the_next_run_when_one_ends(
    server: ServerProcess, executor: str
) -> None:
    task_id = start(
        server, "run_continuously", {"main.py": "print('again')\n"}, name="c", executor=executor
    )
    wait_for(lambda: len(ended_runs(server, task_id)) >= 3, "three runs", 120)
    server.post("task/kill", {"id": task_id}, status=202)
    server.wait_task(task_id, {"killed"}, 60)
    for run in ended_runs(server, task_id):
        assert run["executor"] == executor
        if run["status"] == "success":
            assert texts(server.logs(run["run_id"])) == ["again"]


NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "id": "one",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": "print(6 * 7)",
        }
    ],
    "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_notebook_run_keeps_its_executed_copy(server: ServerProcess, executor: str) -> None:
    files = {"main.ipynb": json.dumps(NOTEBOOK)}
    task_id = start(server, "run_once", files, executor=executor)
    assert server.wait_task(task_id, FINAL, 120)["status"] == "success"
    [run] = server.runs(task_id)
    assert "42" in texts(server.logs(run["run_id"]))
    response = server.session.get(
        f"{server.url}/task/get_run_output", params={"id": run["run_id"]}, timeout=30
    )
    assert response.status_code == 200, response.text
    outputs = response.json()["cells"][0]["outputs"]
    assert outputs[0]["text"] == "42\n"


def test_the_log_arrives_while_the_run_goes_on(server: ServerProcess, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    code = (
        "import pathlib, time, jupyter_orch\n"
        "print('before', flush=True)\n"
        "gate = pathlib.Path(jupyter_orch.task_args()['gate'])\n"
        "while not gate.exists():\n    time.sleep(0.05)\n"
        "print('after', flush=True)\n"
    )
    task_id = start(
        server, "run_once", {"main.py": code}, json={"gate": str(gate)}, executor="dask"
    )
    wait_for(lambda: bool(server.runs(task_id)), "the run", 60)
    run_id = server.runs(task_id)[0]["run_id"]
    wait_for(lambda: "before" in texts(server.logs(run_id)), "the first line, mid-run", 60)
    assert server.runs(task_id)[0]["status"] == "running"
    gate.touch()
    assert server.wait_task(task_id, FINAL, 60)["status"] == "success"
    assert texts(server.logs(run_id)) == ["before", "after"]
