"""Ending runs: timeout and kill reach the whole process group; logs are kept."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import Api, texts

# Prints its process group, starts a grandchild in the same group, then sleeps. SIGTERM is
# ignored so that only the SIGKILL after the grace period can end it.
STUBBORN = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print("group", os.getpgid(0), "child", child.pid, flush=True)
time.sleep(120)
"""

POLITE = """
import os, signal, sys, time
def bye(*_):
    print("got SIGTERM, cleaning up", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
print("group", os.getpgid(0), "child", os.getpid(), flush=True)
time.sleep(120)
"""


def group_alive(pgid: int) -> bool:
    """Whether any process is left in a process group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


async def wait_gone(pgid: int, timeout: float = 10) -> None:
    """Poll until the process group is empty."""
    deadline = time.monotonic() + timeout
    while group_alive(pgid):
        assert time.monotonic() < deadline, f"process group {pgid} still alive"
        await asyncio.sleep(0.05)


async def started_run(api: Api, code: str, **extra: Any) -> tuple[str, str, int, int]:
    """Start a run of `code` and wait for its first line: task, run, group and grandchild."""
    task_id = await api.run_once(await api.upload({"main.py": code}), **extra)
    task = await api.wait_task(task_id, {"started"})
    run_id = task["last_runs"][0]["run_id"]
    lines = await api.wait_for_log(run_id, "group")
    words = texts(lines)[0].split()
    return task_id, run_id, int(words[1]), int(words[3])


async def test_timeout_ends_the_whole_group_and_marks_timed_out(api: Api) -> None:
    task_id, run_id, pgid, grandchild = await started_run(api, STUBBORN, timeout=1)
    task = await api.wait_task(task_id, {"timed_out", "failed", "success"})
    assert task["status"] == "timed_out"
    run = await api.ok("task/get_run_details", {"task": task_id, "pod_id": run_id})
    assert run["status"] == "timed_out"
    assert "timed out after 1 s" in run["reason"]
    await wait_gone(pgid)
    assert not Path(f"/proc/{grandchild}").exists()
    lines = texts(await api.logs(run_id))
    assert lines[0].startswith("group")
    assert lines[-1] == "jupyter_orch: run timed out after 1 s"


async def test_kill_answers_pending_kill_then_killed_and_keeps_logs(api: Api) -> None:
    task_id, run_id, pgid, grandchild = await started_run(api, STUBBORN)
    answer = await api.ok("task/kill", {"id": task_id}, status=202)
    assert answer["status"] == "pending_kill" and answer["killed"] is True
    task = await api.wait_task(task_id, {"killed"})
    assert task["killed"] is True
    assert task["last_runs"][0]["status"] == "killed"
    await wait_gone(pgid)
    assert not Path(f"/proc/{grandchild}").exists()
    lines = texts(await api.logs(run_id))
    assert lines[0].startswith("group")
    assert "killed on request" in lines[-1]
    again = await api.call("task/kill", {"id": task_id})
    assert again.code == 409 and "already killed" in json.loads(again.body)["message"]


async def test_kill_sends_sigterm_first(api: Api) -> None:
    task_id, run_id, pgid, _ = await started_run(api, POLITE)
    await api.ok("task/kill", {"id": task_id}, status=202)
    await api.wait_task(task_id, {"killed"})
    await wait_gone(pgid)
    assert "got SIGTERM, cleaning up" in texts(await api.logs(run_id))


# A daemon's escape from the run's group and session: setsid(), fork, the parent exits.
DAEMON = """
import os, time
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.write(w, str(os.getpid()).encode())
        time.sleep(120)
    os._exit(0)
os.close(w)
print("group", os.getpgid(0), "daemon", os.read(r, 100).decode(), flush=True)
time.sleep(120)
"""


def ended(pid: int) -> bool:
    """Whether a process is gone, or a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rpartition(b")")[2].split()[0] == b"Z"
    except FileNotFoundError:
        return True


async def test_kill_ends_a_process_that_left_the_runs_session(api: Api) -> None:
    task_id, _, pgid, daemon = await started_run(api, DAEMON)
    try:
        assert os.getsid(daemon) != os.getsid(pgid)  # in a session of its own
        await api.ok("task/kill", {"id": task_id}, status=202)
        await api.wait_task(task_id, {"killed"})
        assert ended(daemon)
    finally:
        if not ended(daemon):
            os.kill(daemon, 9)


async def test_killing_a_finished_task(api: Api) -> None:
    task = await api.run_to_end({"main.py": "print('done')\n"})
    answer = await api.ok("task/kill", {"id": task["id"]}, status=202)
    assert answer["status"] == "killed" and answer["killed"] is True
    assert texts(await api.logs(task["last_runs"][0]["run_id"])) == ["done"]
    killed = await api.ok("task/list", {"killed": True})
    assert [t["id"] for t in killed] == [task["id"]]
    assert await api.ok("task/list", {"killed": False}) == []


async def test_runs_never_stay_running_after_their_process_ends(api: Api) -> None:
    code = "import os, signal\nprint('bye', flush=True)\nos.kill(os.getpid(), signal.SIGKILL)\n"
    task = await api.run_to_end({"main.py": code})
    assert task["status"] == "failed"
    run = await api.ok(
        "task/get_run_details", {"task": task["id"], "pod_id": task["last_runs"][0]["run_id"]}
    )
    assert run["status"] == "failure" and run["reason"] == "ended by signal 9"


async def test_a_vanished_supervisor_is_a_failure_with_a_reason(api: Api, data_dir: Path) -> None:
    task_id, run_id, pgid, _ = await started_run(api, STUBBORN)
    info = json.loads((data_dir / "runs" / run_id / "supervisor.json").read_text())
    os.kill(info["pid"], 9)
    task = await api.wait_task(task_id, {"failed", "success", "killed"})
    assert task["status"] == "failed"
    await wait_gone(pgid)
    lines = texts(await api.logs(run_id))
    assert "supervisor vanished" in lines[-1]


@pytest.mark.parametrize("count", [8])
async def test_concurrent_runs_each_get_their_own_log(api: Api, count: int) -> None:
    code = "import jupyter_orch\nprint(jupyter_orch.task_args()['n'])\n"
    orch_id = await api.upload({"main.py": code})
    tasks = await asyncio.gather(*(api.run_once(orch_id, {"n": n}) for n in range(count)))
    for n, task_id in enumerate(tasks):
        task = await api.wait_task(task_id, {"success", "failed"})
        assert task["status"] == "success"
        assert texts(await api.logs(task["last_runs"][0]["run_id"])) == [str(n)]


@pytest.mark.parametrize("orch_config", [{"kill_grace_seconds": 1.0, "run_niceness": 7}])
async def test_runs_have_a_lower_cpu_priority_than_the_server(api: Api) -> None:
    task = await api.run_to_end({"main.py": "import os\nprint(os.nice(0))\n"})
    assert texts(await api.logs(task["last_runs"][0]["run_id"])) == [str(os.nice(0) + 7)]
