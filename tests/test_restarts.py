"""Runs and schedules survive a server killed with SIGKILL; two servers share one scheduler."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from jupyter_orch.lock import SchedulerLock

from .servers import ServerProcess
from .test_api import texts

pytestmark = pytest.mark.timeout(300)

COUNTER = """
import time
for i in range(40):
    print(i, flush=True)
    time.sleep(0.1)
"""

SLEEPER = """
import os, time
print(os.getpid(), flush=True)
time.sleep(60)
"""

Factory = Callable[..., ServerProcess]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Factory]:
    """Start servers on one data directory; every one is stopped at the end."""
    started: list[ServerProcess] = []
    data_dir = tmp_path / "data"

    def make(*extra: str) -> ServerProcess:
        proc = ServerProcess(tmp_path, data_dir, f"server-{len(started)}", *extra)
        started.append(proc)
        return proc.start()

    yield make
    for proc in started:
        proc.close()


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll until `check()` is true."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def start_run(proc: ServerProcess, code: str) -> tuple[str, str]:
    """Run `code` once and wait for its first log line; the task and run ids."""
    orch_id = proc.upload({"main.py": code})
    body = {"workspace_id": 1, "orch_id": orch_id, "json": {}}
    task_id: str = proc.post("task/run_once", body, status=201)["id"]
    run_id: str = proc.wait_task(task_id, {"started"})["last_runs"][0]["run_id"]
    wait_for(lambda: bool(proc.post("task/get_logs_for_run", {"id": run_id})["logs"]), "a line")
    return task_id, run_id


def alive(pid: int) -> bool:
    """Whether a process exists (and is not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_runs_go_on_through_sigkill_and_their_logs_are_whole(server: Factory) -> None:
    first = server()
    task_id = first.post(
        "task/run_once",
        {"workspace_id": 1, "orch_id": first.upload({"main.py": COUNTER}), "json": {}},
        status=201,
    )["id"]
    run_id = first.wait_task(task_id, {"started"})["last_runs"][0]["run_id"]
    wait_for(
        lambda: len(first.post("task/get_logs_for_run", {"id": run_id})["logs"]) >= 5, "5 lines"
    )
    first.kill(signal.SIGKILL)

    second = server()
    task = second.wait_task(task_id, {"success", "failed"})
    assert task["status"] == "success"
    lines = second.post("task/get_logs_for_run", {"id": run_id})["logs"]
    assert texts(lines) == [str(i) for i in range(40)]
    run = second.post("task/get_run_details", {"task": task_id, "pod_id": run_id})
    assert run["status"] == "success" and run["exit_code"] == 0


def test_schedules_resume_and_missed_instants_follow_the_rule(server: Factory) -> None:
    first = server()
    orch_id = first.upload({"main.py": "print('tick')\n"})
    body = {
        "workspace_id": 1,
        "orch_id": orch_id,
        "json": {},
        "schedule": "* * * * * *",
        "starting_deadline_seconds": 3,
    }
    task_id = first.post("task/run_scheduled", body, status=201)["id"]
    wait_for(lambda: len(first.runs(task_id)) >= 2, "two runs")
    first.kill(signal.SIGKILL)
    time.sleep(3)

    second = server()
    wait_for(
        lambda: any(
            r["trigger"] == "schedule" and datetime.fromisoformat(r["created_at"]) > second.ready_at
            for r in second.runs(task_id)
        ),
        "scheduled runs after the restart",
    )
    runs = second.runs(task_id)
    instants = [r["scheduled_for"] for r in runs]
    assert len(instants) == len(set(instants))  # one instant never runs twice
    catch_ups = [r for r in runs if r["trigger"] == "catch_up"]
    assert len(catch_ups) == 1  # only the latest missed instant ran
    task = second.post("task/get_by_id", {"id": task_id})
    missed = [s for s in task["last_skipped"] if s["reason"] == "missed"]
    assert missed, task
    assert not {s["scheduled_for"] for s in missed} & set(instants)
    assert max(s["scheduled_for"] for s in missed) < catch_ups[0]["scheduled_for"]
    second.post("task/kill", {"id": task_id}, status=202)


def test_a_supervisor_lost_with_the_machine_is_a_failure(server: Factory) -> None:
    first = server()
    task_id, run_id = start_run(first, SLEEPER)
    first.kill(signal.SIGKILL)
    run_dir = first.data_dir / "runs" / run_id
    supervisor = json.loads((run_dir / "supervisor.json").read_text())["pid"]
    child = json.loads((run_dir / "child.json").read_text())["pid"]
    os.kill(supervisor, signal.SIGKILL)  # as a reboot would
    os.killpg(child, signal.SIGKILL)
    wait_for(lambda: not alive(supervisor) and not alive(child), "the run's processes to go")

    second = server()
    task = second.wait_task(task_id, {"failed", "success"})
    assert task["status"] == "failed"
    lines = texts(second.post("task/get_logs_for_run", {"id": run_id})["logs"])
    assert "supervisor vanished" in lines[-1]


def test_a_clean_shutdown_leaves_runs_running(server: Factory) -> None:
    first = server()
    code = "import time\nprint('up', flush=True)\ntime.sleep(3)\nprint('down')\n"
    task_id, run_id = start_run(first, code)
    first.kill(signal.SIGTERM)
    child = json.loads((first.data_dir / "runs" / run_id / "child.json").read_text())["pid"]
    assert alive(child)
    second = server()
    assert second.wait_task(task_id, {"success", "failed"})["status"] == "success"
    assert texts(second.post("task/get_logs_for_run", {"id": run_id})["logs"]) == ["up", "down"]


def test_stop_runs_on_shutdown_ends_them(server: Factory) -> None:
    first = server("--OrchApp.stop_runs_on_shutdown=True")
    task_id, run_id = start_run(first, SLEEPER)
    child = json.loads((first.data_dir / "runs" / run_id / "child.json").read_text())["pid"]
    first.kill(signal.SIGTERM)
    wait_for(lambda: not alive(child), "the run to end with the server")
    second = server()
    run = second.post("task/get_run_details", {"task": task_id, "pod_id": run_id})
    assert run["status"] == "killed"


def test_two_servers_on_one_data_directory_share_one_scheduler(server: Factory) -> None:
    first = server()
    second = server()
    wait_for(lambda: "holds the scheduler" in second.log(), "the second server to say so")
    orch_id = second.upload({"main.py": "print('tick')\n"})
    body = {"workspace_id": 1, "orch_id": orch_id, "json": {}, "schedule": "* * * * * *"}
    task_id = second.post("task/run_scheduled", body, status=201)["id"]
    wait_for(lambda: len(second.runs(task_id)) >= 3, "runs made by the scheduler holder")
    first.kill(signal.SIGKILL)
    count = len(second.runs(task_id))
    wait_for(lambda: len(second.runs(task_id)) >= count + 3, "the second server to take over")
    assert "now holds the scheduler" in second.log()
    instants = [r["scheduled_for"] for r in second.runs(task_id)]
    assert len(instants) == len(set(instants))
    second.post("task/kill", {"id": task_id}, status=202)


def test_scheduler_lock_is_exclusive_until_released(tmp_path: Path) -> None:
    one, two = SchedulerLock(tmp_path / "lock"), SchedulerLock(tmp_path / "lock")
    assert one.try_acquire() and one.held
    assert not two.try_acquire() and not two.held
    assert two.holder() == str(os.getpid())
    one.release()
    assert two.try_acquire()
    two.release()
