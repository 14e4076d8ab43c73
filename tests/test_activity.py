"""`task/activity`: the running count and the latest failures of every task, at a cost that
does not follow how many tasks and runs are stored."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from jupyter_orch.server.models import RunStatus, TaskRun, new_id, now

from .conftest import Api
from .fakes import open_store, orchestration, scheduled_task

SLEEPER = {"main.py": "import time\nprint('up', flush=True)\ntime.sleep(60)\n"}
FAILING = {"main.py": "raise SystemExit(3)\n"}
HELLO = {"main.py": "print('hello')\n"}


async def _ready(api: Api, files: dict[str, str]) -> str:
    orch_id = await api.upload(files)
    await api.wait_orch(orch_id, {"ready"})
    return orch_id


def _in(offset_hours: int, moment: datetime) -> str:
    """`moment` written in another timezone than the server's UTC."""
    return moment.astimezone(timezone(timedelta(hours=offset_hours))).isoformat()


async def test_running_tasks_and_failures_since(api: Api) -> None:
    sleeper, failing, hello = [await _ready(api, f) for f in (SLEEPER, FAILING, HELLO)]
    first = await api.ok("task/activity", {})
    assert first["running"] == 0 and first["failed"] == []
    since = first["as_of"]

    # two run-once sleepers, and a scheduled task with two runs going at once: three tasks
    sleepers = [await api.run_once(sleeper, name=f"sleeper {i}") for i in range(2)]
    body = {"workspace_id": 1, "orch_id": sleeper, "json": {}, "schedule": "0 0 1 1 *"}
    scheduled = (await api.ok("task/run_scheduled", {**body, "name": "yearly"}, status=201))["id"]
    for _ in range(2):
        await api.ok("task/run_now", {"id": scheduled}, status=201)
    for task_id in sleepers:
        await api.wait_task(task_id, {"started"})
    running = await api.ok("task/list_task_runs", {"task_id": scheduled, "status": "running"})
    assert len(running) == 2
    assert (await api.ok("task/activity", {}))["running"] == 3

    broke = await api.run_once(failing, name="broken")
    slow = await api.run_once(sleeper, name="slow", timeout=1)
    fine = await api.run_once(hello, name="fine")
    for task_id, status in ((broke, "failed"), (slow, "timed_out"), (fine, "success")):
        assert (await api.wait_task(task_id, {status}))["status"] == status

    seen = await api.ok("task/activity", {"since": since})
    assert seen["running"] == 3
    assert [(r["task"], r["task_name"], r["status"]) for r in seen["failed"]] == [
        (slow, "slow", "timed_out"),  # newest first: the timeout ended last
        (broke, "broken", "failure"),
    ]
    assert seen["as_of"] > since
    newest = await api.ok("task/activity", {"since": since, "limit": 1})
    assert [r["task"] for r in newest["failed"]] == [slow]
    assert (await api.ok("task/activity", {}))["failed"] == seen["failed"]  # the newest ever
    # the same moment written in another timezone means the same failures
    moment = datetime.fromisoformat(since)
    assert (await api.ok("task/activity", {"since": _in(5, moment)}))["failed"] == seen["failed"]
    assert (await api.ok("task/activity", {"since": _in(-7, moment)}))["failed"] == seen["failed"]
    # nothing failed after the answer's own time; killed runs are no failures
    for task_id in [*sleepers, scheduled]:
        await api.ok("task/kill", {"id": task_id}, status=202)
    for task_id in [*sleepers, scheduled]:
        await api.wait_task(task_id, {"killed"})
    after = await api.ok("task/activity", {"since": seen["as_of"]})
    assert after == {"running": 0, "failed": [], "as_of": after["as_of"]}


async def test_bad_fields_are_named(api: Api) -> None:
    for body, word in (
        ({"since": "2026-01-01T00:00:00"}, "has no timezone"),
        ({"since": "yesterday"}, "is not an ISO 8601 time"),
        ({"limit": 0}, "must be at least 1"),
        ({"limit": 101}, "must be at most 100"),
        ({"limit": "5"}, "must be an integer"),
    ):
        response = await api.call("task/activity", body)
        assert response.code == 400, (body, response.body)
        assert word in response.body.decode(), (body, response.body)


def test_failures_come_newest_first_across_statuses_and_read_by_index(tmp_path: Path) -> None:
    store = open_store(tmp_path / "orch.db")
    t0 = now()
    orch = orchestration(store)
    statuses = [RunStatus.FAILURE, RunStatus.TIMED_OUT, RunStatus.SUCCESS, RunStatus.FAILURE]
    statuses += [RunStatus.KILLED, RunStatus.TIMED_OUT, RunStatus.RUNNING, RunStatus.RUNNING]
    order: dict[str, int] = {}
    for i, status in enumerate(statuses):
        task = scheduled_task(store, orch, "0 0 1 1 *", f"t{i}")
        stamp = t0 + timedelta(seconds=i)
        run = TaskRun(
            id=new_id(), task_id=task.id, status=status, created_at=stamp, updated_at=stamp
        )
        assert store.start_run(task, run, None)
        order[run.id] = i
    try:
        activity = store.activity(t0 + timedelta(milliseconds=500), limit=3)
        assert activity.running == 2
        assert [(order[r.id], name) for r, name in activity.failed] == [
            (5, "t5"),
            (3, "t3"),
            (1, "t1"),
        ]
        assert [order[r.id] for r, _ in store.activity(t0, 10).failed] == [5, 3, 1]  # after t0
        early = t0 - timedelta(seconds=1)
        assert [order[r.id] for r, _ in store.activity(early, 10).failed] == [5, 3, 1, 0]
        assert [order[r.id] for r, _ in store.activity(early, 2).failed] == [5, 3]
        assert [order[r.id] for r, _ in store.activity(None, 3).failed] == [5, 3, 1]  # ever
        plans = [
            " ".join(row[3] for row in store.sql("EXPLAIN QUERY PLAN " + sql, params))
            for sql, params in (
                ("SELECT COUNT(DISTINCT task_id) FROM runs WHERE status = ?", ("running",)),
                (
                    "SELECT * FROM runs WHERE status = ? AND updated_at > ?"
                    " ORDER BY updated_at DESC LIMIT 3",
                    ("failure", t0.isoformat()),
                ),
            )
        ]
        for plan in plans:
            assert "runs_status_updated" in plan and "TEMP B-TREE FOR ORDER BY" not in plan, plan
    finally:
        store.close()
