"""`task/delete` on a real server: a preview, then the tasks with their runs, skips, changes and
run folders gone; runs going killed first (one that ignores SIGTERM ended by SIGKILL); and an
orchestration whose task has a run going deleted the same way."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from jupyter_orch.server.datadir import DataDir
from jupyter_orch.server.lock import SchedulerLock

from .conftest import Api

HELLO = {"main.py": "print('hello', flush=True)\n"}
#: Writes its pid where its arguments say, then runs until killed (SIGTERM ends it).
SLEEPER = {
    "main.py": "import jupyter_orch, os, pathlib, time\n"
    "pathlib.Path(jupyter_orch.task_args()['pid']).write_text(str(os.getpid()))\n"
    "print('up', flush=True)\n"
    "time.sleep(600)\n"
}
#: The same, deaf to SIGTERM: only SIGKILL ends it.
STUBBORN = {
    "main.py": "import jupyter_orch, os, pathlib, signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "pathlib.Path(jupyter_orch.task_args()['pid']).write_text(str(os.getpid()))\n"
    "print('up', flush=True)\n"
    "time.sleep(600)\n"
}
FAR = "0 0 1 1 *"  # once a year: only manual runs
ENDED = {"success", "failed", "timed_out", "killed"}
TABLES = ("tasks", "runs", "skips", "task_changes")


def rows_of(data_dir: Path, task_ids: list[str]) -> dict[str, int]:
    """How many rows each table holds for these tasks."""
    marks = ",".join("?" for _ in task_ids)
    with sqlite3.connect(DataDir(data_dir).database) as db:
        return {
            table: db.execute(
                f"SELECT COUNT(*) FROM {table} WHERE {'id' if table == 'tasks' else 'task_id'}"
                f" IN ({marks})",
                task_ids,
            ).fetchone()[0]
            for table in TABLES
        }


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def run_ended(api: Api, task_id: str, run_id: str) -> Any:
    """Poll a run until it has ended."""
    deadline = time.monotonic() + 30
    while True:
        run = await api.ok("task/get_run_details", {"task": task_id, "pod_id": run_id})
        if run["status"] != "running":
            return run
        assert time.monotonic() < deadline, f"run {run_id} still running"
        await asyncio.sleep(0.05)


async def running_task(api: Api, files: dict[str, str], tmp_path: Path) -> tuple[str, str, int]:
    """A run-once task whose run is going: (task id, run id, the run's pid)."""
    orch = await api.upload(files)
    await api.wait_orch(orch, {"ready"})
    pid_file = tmp_path / f"pid-{uuid.uuid4().hex}"
    task_id = await api.run_once(orch, {"pid": str(pid_file)})
    task = await api.wait_task(task_id, {"started"} | ENDED)
    run_id = task["last_runs"][0]["run_id"]
    await api.wait_for_log(run_id, "up")
    return task_id, run_id, int(pid_file.read_text())


async def test_preview_then_delete_removes_rows_and_run_folders(api: Api, data_dir: Path) -> None:
    orch = await api.upload(HELLO)
    once = await api.run_once(orch)
    done = await api.wait_task(once, ENDED)
    body = {"orch_id": orch, "workspace_id": 1, "json": {}, "schedule": FAR}
    scheduled = (await api.ok("task/run_scheduled", body, status=201))["id"]
    await api.ok("task/update", {"id": scheduled, "name": "renamed"})  # a task_changes row
    manual = [(await api.ok("task/run_now", {"id": scheduled}, status=201))["run_id"]]
    await run_ended(api, scheduled, manual[0])
    run_ids = [done["last_runs"][0]["run_id"], *manual]
    folders = [DataDir(data_dir).run(run_id) for run_id in run_ids]
    assert all(folder.is_dir() for folder in folders)

    ids = [once, scheduled, once]  # a repeated id counts once
    preview = await api.ok("task/delete", {"tasks": ids})
    assert preview == {"tasks": [once, scheduled], "task_runs": 2, "running": [], "deleted": False}
    assert (await api.ok("task/delete", {"tasks": ids, "confirm_delete": False})) == preview
    before = rows_of(data_dir, [once, scheduled])
    assert before["tasks"] == 2 and before["runs"] == 2 and before["task_changes"] >= 1
    assert all(folder.is_dir() for folder in folders), "a preview removed files"

    done_answer = await api.ok("task/delete", {"tasks": ids, "confirm_delete": True})
    assert done_answer == {**preview, "deleted": True}
    assert rows_of(data_dir, [once, scheduled]) == dict.fromkeys(TABLES, 0)
    assert not any(folder.exists() for folder in folders)
    for task_id in (once, scheduled):
        await api.ok("task/get_by_id", {"id": task_id}, status=404)
    await api.ok("task/delete", {"tasks": [once]}, status=404)
    # The orchestration stays, and takes new tasks.
    assert (await api.ok("orchestration/get_by_id", {"id": orch}))["status"] == "ready"
    assert (await api.ok("task/list", {})) == []


async def test_a_task_with_a_run_going_is_killed_then_deleted(
    api: Api, data_dir: Path, tmp_path: Path
) -> None:
    task_id, run_id, pid = await running_task(api, SLEEPER, tmp_path)
    preview = await api.ok("task/delete", {"tasks": [task_id]})
    assert preview == {"tasks": [task_id], "task_runs": 1, "running": [task_id], "deleted": False}
    assert alive(pid), "a preview stopped the run"
    answer = await api.ok("task/delete", {"tasks": [task_id], "confirm_delete": True})
    assert answer == {**preview, "deleted": True}
    assert not alive(pid)
    assert not DataDir(data_dir).run(run_id).exists()
    assert rows_of(data_dir, [task_id]) == dict.fromkeys(TABLES, 0)
    assert (await api.ok("task/activity", {}))["running"] == 0


async def test_a_run_deaf_to_sigterm_is_ended_by_sigkill_and_deleted(
    api: Api, data_dir: Path, tmp_path: Path
) -> None:
    # The test server's kill grace is 1 s (conftest): SIGKILL follows SIGTERM a second later.
    task_id, run_id, pid = await running_task(api, STUBBORN, tmp_path)
    answer = await api.ok("task/delete", {"tasks": [task_id], "confirm_delete": True})
    assert answer["deleted"] is True and answer["running"] == [task_id]
    assert not alive(pid)
    assert not DataDir(data_dir).run(run_id).exists()
    await api.ok("task/get_by_id", {"id": task_id}, status=404)


async def test_a_run_that_does_not_end_stops_the_deletion(api: Api, data_dir: Path) -> None:
    # Another server of the data directory holds the scheduler (this test, by its lock): it
    # follows the runs it started. One of them is marked running and never ends: no server
    # here can stop it, and the deletion gives up after the kill grace and its slack.
    other = SchedulerLock(DataDir(data_dir).scheduler_lock)
    assert other.try_acquire()
    try:
        task_id = await api.run_once(await api.upload(HELLO))
        run_id = (await api.wait_task(task_id, ENDED))["last_runs"][0]["run_id"]
        with sqlite3.connect(DataDir(data_dir).database) as db:
            db.execute(
                "UPDATE runs SET status = 'running', ended_at = NULL WHERE id = ?", (run_id,)
            )
        response = await api.call("task/delete", {"tasks": [task_id], "confirm_delete": True})
        text = response.body.decode()
        assert response.code == 409, text
        assert task_id in text and "nothing was deleted" in text
        task = await api.ok("task/get_by_id", {"id": task_id})
        assert task["killed"] is True  # killed first, as task/kill does
        assert rows_of(data_dir, [task_id])["runs"] == 1
        assert DataDir(data_dir).run(run_id).is_dir()
    finally:
        other.release()


async def test_deleting_an_orchestration_kills_its_running_tasks(
    api: Api, data_dir: Path, tmp_path: Path
) -> None:
    task_id, run_id, pid = await running_task(api, SLEEPER, tmp_path)
    orch = (await api.ok("task/get_by_id", {"id": task_id}))["orch_id"]
    body = {"orchestrations": [orch], "confirm_delete": True}
    answer = await api.ok("orchestration/delete_orchestrations", body)
    assert answer == {"orchestrations": [orch], "tasks": [task_id], "task_runs": 1, "deleted": True}
    assert not alive(pid)
    assert not DataDir(data_dir).run(run_id).exists()
    assert not DataDir(data_dir).orchestration(orch).exists()
    await api.ok("orchestration/get_by_id", {"id": orch}, status=404)


async def test_the_scheduler_forgets_a_deleted_task(
    api: Api, jp_serverapp: Any, data_dir: Path
) -> None:
    manager = jp_serverapp.web_app.settings["jupyter_orch.service"].tasks
    orch = await api.upload(HELLO)
    await api.wait_orch(orch, {"ready"})
    body = {"orch_id": orch, "workspace_id": 1, "json": {}, "schedule": "*/1 * * * * *"}
    task_id = (await api.ok("task/run_scheduled", body, status=201))["id"]
    deadline = time.monotonic() + 30
    while not (await api.ok("task/get_by_id", {"id": task_id}))["last_runs"]:
        assert time.monotonic() < deadline, "the every-second task never ran"
        await asyncio.sleep(0.05)
    assert manager.scheduler.get(task_id) is not None
    answer = await api.ok("task/delete", {"tasks": [task_id], "confirm_delete": True})
    assert answer["deleted"] is True
    assert manager.scheduler.get(task_id) is None
    assert task_id not in manager._plans and task_id not in manager._locks
    assert rows_of(data_dir, [task_id]) == dict.fromkeys(TABLES, 0)


async def test_an_orchestration_deleted_while_packaged_leaves_no_build_log(
    api: Api, jp_serverapp: Any, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = jp_serverapp.web_app.settings["jupyter_orch.service"]
    built, go_on = asyncio.Event(), asyncio.Event()
    prepare = service.packager.prepare

    async def slow_prepare(*args: Any, **kwargs: Any) -> Any:
        result = await prepare(*args, **kwargs)
        built.set()
        await go_on.wait()
        return result

    monkeypatch.setattr(service.packager, "prepare", slow_prepare)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("UV_OFFLINE", "1")
    orch = await api.upload({"main.py": "print(1)\n", "requirements.txt": "not-real-orch==1\n"})
    await asyncio.wait_for(built.wait(), 120)
    body = {"orchestrations": [orch], "confirm_delete": True}
    assert (await api.ok("orchestration/delete_orchestrations", body))["deleted"] is True
    go_on.set()
    await service.intake._background.idle()
    assert not DataDir(data_dir).build_log(orch).exists()
    await api.ok("orchestration/get_by_id", {"id": orch}, status=404)


async def test_bad_requests_name_the_field(api: Api) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"tasks": []}, "tasks"),
        ({}, "tasks"),
        ({"tasks": ["not-a-uuid"]}, "tasks"),
        ({"tasks": "x"}, "tasks"),
        ({"tasks": [str(uuid.uuid4())], "confirm_delete": "yes"}, "confirm_delete"),
        ({"tasks": [str(uuid.uuid4()) for _ in range(1001)]}, "tasks"),
    ]
    for body, field in cases:
        response = await api.call("task/delete", body)
        assert response.code == 400, (body, response.body)
        assert response.body.decode().startswith(f'{{"message": "{field}'), response.body
    await api.ok("task/delete", {"tasks": [str(uuid.uuid4())], "confirm_delete": True}, 404)
