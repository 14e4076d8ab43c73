"""Runs and schedules survive a server killed with SIGKILL; two servers share one scheduler."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from jupyter_orch.server.lock import SchedulerLock

from .conftest import texts
from .servers import (
    ServerProcess,
    alive,
    children_of,
    command_line,
    end_runs,
    parent_of,
    run_pids,
    wait_for,
)

pytestmark = pytest.mark.timeout(300)

SLEEPER = """
import os, time
print(os.getpid(), flush=True)
time.sleep(60)
"""

# Numbered lines in three parts; the second starts when the file args["resume"] exists, the
# third when args["finish"] does.
GATED = """
import pathlib, time
import jupyter_orch

args = jupyter_orch.task_args()

def wait(name):
    flag = pathlib.Path(args[name])
    while not flag.exists():
        time.sleep(0.05)

for i in range(0, 5):
    print(i, flush=True)
wait("resume")
for i in range(5, 10):
    print(i, flush=True)
wait("finish")
for i in range(10, 15):
    print(i, flush=True)
"""

Factory = Callable[..., ServerProcess]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Factory]:
    """Start servers on one data directory; every one is stopped at the end, and so is every
    run process left."""
    started: list[ServerProcess] = []
    data_dir = tmp_path / "data"

    def make(*extra: str) -> ServerProcess:
        proc = ServerProcess(tmp_path, data_dir, f"server-{len(started)}", *extra)
        started.append(proc)
        return proc.start()

    yield make
    for proc in started:
        proc.close()
    end_runs(data_dir)


def start_run(proc: ServerProcess, code: str, args: Any = None) -> tuple[str, str]:
    """Run `code` once and wait for its first log line; the task and run ids."""
    orch_id = proc.upload({"main.py": code})
    body = {"workspace_id": 1, "orch_id": orch_id, "json": args or {}}
    task_id: str = proc.post("task/run_once", body, status=201)["id"]
    run_id: str = proc.wait_task(task_id, {"started"})["last_runs"][0]["run_id"]
    wait_for(lambda: bool(proc.logs(run_id)), "a line")
    return task_id, run_id


def log_texts(data_dir: Path, run_id: str) -> list[str]:
    """What a run printed, read from its log file (no server needed)."""
    path = data_dir / "runs" / run_id / "log"
    return texts(path.read_text(encoding="utf-8").splitlines())


@pytest.mark.parametrize("fork_server", [True, False])
def test_a_live_run_is_reattached_after_sigkill_and_its_log_is_whole(
    server: Factory, tmp_path: Path, fork_server: bool
) -> None:
    resume, finish = tmp_path / "resume", tmp_path / "finish"
    first = server(f"--OrchApp.fork_server={fork_server}")
    args = {"resume": str(resume), "finish": str(finish)}
    task_id, run_id = start_run(first, GATED, args)
    wait_for(lambda: len(first.logs(run_id)) >= 5, "the first 5 lines")
    run_dir = first.data_dir / "runs" / run_id
    supervisor, child = run_pids(first.data_dir, run_id)
    assert first.proc is not None
    server_pid = first.proc.pid
    starter = parent_of(supervisor)
    if fork_server:
        # Forked by the fork server, a child of the server running forkserver's loop...
        assert starter != server_pid and parent_of(starter or 0) == server_pid
        assert "import forkserver" in " ".join(command_line(starter or 0))
        # ...which wrote no binary spec (a supervisor started as a process reads one)...
        assert not (run_dir / "spec.bin").exists() and (run_dir / "spec.json").exists()
        # ...and whose interpreter the run's own process was forked from.
        assert "import forkserver" in " ".join(command_line(child))
    else:
        assert starter == server_pid
        assert (run_dir / "spec.bin").exists()
        assert command_line(child)[-1] == "main.py"
        assert not [p for p in children_of(server_pid) if "forkserver" in str(command_line(p))]

    first.kill(signal.SIGKILL)
    assert alive(supervisor) and alive(child)
    if fork_server:
        assert starter is not None
        wait_for(lambda: not alive(starter), "the fork server to exit with its server")
    resume.touch()  # the run goes on while no server runs
    wait_for(lambda: len(log_texts(first.data_dir, run_id)) >= 10, "lines 5-9")
    assert alive(supervisor) and alive(child)

    second = server(f"--OrchApp.fork_server={fork_server}")
    assert second.post("task/get_by_id", {"id": task_id})["status"] == "started"
    assert second.run(task_id, run_id)["status"] == "running"
    followed: list[Any] = []
    with ThreadPoolExecutor(1) as pool:
        following = pool.submit(second.follow, run_id, 0, followed)
        wait_for(lambda: len(followed) >= 10 or following.done(), "follow_logs to send lines")
        assert not following.done(), following.result()  # live: the run has not ended
        finish.touch()
        messages = following.result(timeout=60)
    task = second.wait_task(task_id, {"success", "failed", "killed"})
    assert task["status"] == "success"
    numbers = [str(i) for i in range(15)]
    assert texts(second.logs(run_id)) == numbers
    run = second.run(task_id, run_id)
    assert run["status"] == "success" and run["exit_code"] == 0
    assert [m.get("n") for m in messages[:-1]] == list(range(15))
    assert texts([m["line"] for m in messages[:-1]]) == numbers
    assert messages[-1] == {"end": True, "status": "success", "next": 15}
    wait_for(lambda: not alive(supervisor) and not alive(child), "the run's processes to end")


def test_reattached_runs_are_killed_through_the_api_and_leave_no_process(
    server: Factory,
) -> None:
    first = server()
    calm_task, calm_run = start_run(first, SLEEPER)
    hung_task, hung_run = start_run(first, SLEEPER)
    calm = run_pids(first.data_dir, calm_run)
    hung = run_pids(first.data_dir, hung_run)
    first.kill(signal.SIGKILL)

    second = server()  # kill_grace_seconds=1
    for task_id, run_id in ((calm_task, calm_run), (hung_task, hung_run)):
        assert second.run(task_id, run_id)["status"] == "running"
    # A supervisor that no longer answers: only the server's own deadline (the kill grace
    # and 5 s) ends its run, by killing the run's group and the supervisor.
    os.kill(hung[0], signal.SIGSTOP)
    for task_id in (calm_task, hung_task):
        assert second.post("task/kill", {"id": task_id}, status=202)["status"] == "pending_kill"
    assert second.wait_task(calm_task, {"killed"}, timeout=30)["status"] == "killed"
    # With the grace ignored (10 s) the deadline would come 15 s after the request.
    assert second.wait_task(hung_task, {"killed"}, timeout=12)["status"] == "killed"
    for task_id, run_id in ((calm_task, calm_run), (hung_task, hung_run)):
        assert second.run(task_id, run_id)["status"] == "killed"
    assert "before its supervisor could record it" in texts(second.logs(hung_run))[-1]
    for pid in (*calm, *hung):
        wait_for(lambda pid=pid: not alive(pid), f"process {pid} to end", timeout=10)


def catch_ups(proc: ServerProcess, task_id: str) -> list[dict[str, Any]]:
    """A task's runs that caught up an instant missed while no server ran."""
    return [r for r in proc.runs(task_id) if r["trigger"] == "catch_up"]


def scheduled_since(proc: ServerProcess, task_id: str) -> bool:
    """Whether a task has a run on its schedule made after `proc` started."""
    return any(
        r["trigger"] == "schedule" and datetime.fromisoformat(r["created_at"]) > proc.ready_at
        for r in proc.runs(task_id)
    )


def test_schedules_resume_and_missed_instants_follow_the_rule(server: Factory) -> None:
    """After downtime the latest missed instant runs if it is at most the task's
    starting_deadline_seconds old, else the server's OrchApp.starting_deadline_seconds."""
    first = server()
    orch_id = first.upload({"main.py": "print('tick')\n"})
    ids = {}
    for deadline in (0, 3, None):
        body = {"workspace_id": 1, "orch_id": orch_id, "json": {}, "schedule": "* * * * * *"}
        if deadline is not None:
            body["starting_deadline_seconds"] = deadline
        ids[deadline] = first.post("task/run_scheduled", body, status=201)["id"]
    zero, three, default = ids[0], ids[3], ids[None]
    wait_for(lambda: len(first.runs(three)) >= 2 and len(first.runs(default)) >= 2, "runs")
    first.kill(signal.SIGKILL)
    time.sleep(2)

    # Server default 0: only the task with its own 3 s catches up.
    second = server("--OrchApp.starting_deadline_seconds=0")
    wait_for(
        lambda: bool(catch_ups(second, three)) and scheduled_since(second, three),
        "a catch-up, then scheduled runs, after the restart",
        timeout=30,
    )
    time.sleep(1)  # every task's catch-up was decided in the same pass as this one's
    assert len(catch_ups(second, three)) == 1  # only the latest missed instant ran
    assert catch_ups(second, default) == []  # OrchApp.starting_deadline_seconds=0 applies
    assert catch_ups(second, zero) == []
    runs = second.runs(three)
    instants = [r["scheduled_for"] for r in runs]
    assert len(instants) == len(set(instants))  # one instant never runs twice
    task = second.post("task/get_by_id", {"id": three})
    missed = [s for s in task["last_skipped"] if s["reason"] == "missed"]
    assert missed, task
    assert not {s["scheduled_for"] for s in missed} & set(instants)
    assert max(s["scheduled_for"] for s in missed) < catch_ups(second, three)[0]["scheduled_for"]
    second.kill(signal.SIGKILL)
    time.sleep(2)

    # Server default 600: the task without a deadline of its own catches up now; the task
    # with its own 0 still does not.
    third = server()
    wait_for(
        lambda: (
            bool(catch_ups(third, default))
            and len(catch_ups(third, three)) == 2
            and scheduled_since(third, three)
        ),
        "catch-ups, then scheduled runs, after the second restart",
        timeout=30,
    )
    time.sleep(1)
    assert len(catch_ups(third, default)) == 1
    assert len(catch_ups(third, three)) == 2
    assert catch_ups(third, zero) == []
    for task_id in ids.values():
        instants = [r["scheduled_for"] for r in third.runs(task_id)]
        assert len(instants) == len(set(instants))
        third.post("task/kill", {"id": task_id}, status=202)


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


SLEEPER = "import time\nprint('up', flush=True)\ntime.sleep(120)\n"


def _killed_through(answering: ServerProcess, task_id: str, runs_on: ServerProcess) -> None:
    """Kill a task through one server while its run is followed by the other: the answer says
    `pending_kill`, the run ends `killed`, and no run of the task starts after the answer."""
    answer = answering.post("task/kill", {"id": task_id}, status=202)
    answered = datetime.now(timezone.utc)
    assert answer["status"] == "pending_kill"
    final = answering.wait_task(task_id, {"killed"}, timeout=30)
    runs = runs_on.runs(task_id)
    assert runs and all(r["status"] == "killed" for r in runs), runs
    assert all(datetime.fromisoformat(r["created_at"]) <= answered for r in runs)
    assert final["status"] == runs_on.post("task/get_by_id", {"id": task_id})["status"]


def test_a_kill_through_the_other_server_ends_the_scheduler_holders_runs(
    server: Factory,
) -> None:
    holder, other = server(), server()
    wait_for(lambda: "holds the scheduler" in other.log(), "the second server to say so")
    orch_id = holder.upload({"main.py": SLEEPER})
    body = {"workspace_id": 1, "orch_id": orch_id, "json": {}, "name": "sleeper"}
    task_id = holder.post("task/run_continuously", body, status=201)["id"]
    run_id = holder.wait_task(task_id, {"started"})["last_runs"][0]["run_id"]
    wait_for(lambda: bool(holder.logs(run_id)), "the holder's run to start")
    _killed_through(other, task_id, holder)


def test_a_kill_through_the_scheduler_holder_ends_the_other_servers_runs(
    server: Factory,
) -> None:
    holder, other = server(), server()
    wait_for(lambda: "holds the scheduler" in other.log(), "the second server to say so")
    task_id, _ = start_run(other, SLEEPER)  # run once: the server asked starts it
    _killed_through(holder, task_id, other)


def test_scheduler_lock_is_exclusive_until_released(tmp_path: Path) -> None:
    one, two = SchedulerLock(tmp_path / "lock"), SchedulerLock(tmp_path / "lock")
    assert one.try_acquire() and one.held
    assert not two.try_acquire() and not two.held
    assert two.holder() == str(os.getpid())
    one.release()
    assert two.try_acquire()
    two.release()
