"""Changing a task in place (`task/update`), its history, running a run again (`task/rerun`),
and the schedule preview, against the real server."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from .conftest import Api

ARGS = {"main.py": "import jupyter_orch\nprint('args', jupyter_orch.task_args(), flush=True)\n"}
# Prints its arguments, then ends once the file args["flag"] exists.
GATED = {
    "main.py": "import jupyter_orch, pathlib, time\n"
    "args = jupyter_orch.task_args()\n"
    "print('start', args, flush=True)\n"
    "while not pathlib.Path(args['flag']).exists():\n"
    "    time.sleep(0.05)\n"
    "print('done')\n"
}
FAR = "0 0 1 1 *"  # once a year: only manual runs
ENDED = {"success", "failure", "timed_out", "killed"}


async def scheduled(api: Api, files: dict[str, str], **extra: Any) -> str:
    """Upload `files` and schedule them; the task id."""
    orch_id = await api.upload(files)
    await api.wait_orch(orch_id, {"ready"})
    body = {"workspace_id": 1, "orch_id": orch_id, "json": {}, "schedule": FAR, **extra}
    task_id: str = (await api.ok("task/run_scheduled", body, status=201))["id"]
    await api.wait_task(task_id, {"started"})
    return task_id


async def run_ended(api: Api, task_id: str, run_id: str, timeout: float = 60) -> Any:
    """Poll one run until it has ended."""
    deadline = time.monotonic() + timeout
    while True:
        run = await api.ok("task/get_run_details", {"task": task_id, "pod_id": run_id})
        if run["status"] in ENDED:
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run['status']}"
        await asyncio.sleep(0.1)


async def test_a_new_schedule_and_zone_show_their_next_fires_at_once(api: Api) -> None:
    task_id = await scheduled(api, ARGS, timezone="UTC")
    before = await api.ok("task/get_by_id", {"id": task_id})
    assert [datetime.fromisoformat(t).month for t in before["next_fires"]] == [1, 1, 1]
    assert before["schedule_description"] == "At 00:00, on day 1 of the month, only in January"

    task = await api.ok(
        "task/update", {"id": task_id, "schedule": "30 9 * * 1-5", "timezone": "Asia/Tokyo"}
    )
    assert task["schedule"] == "30 9 * * 1-5" and task["timezone"] == "Asia/Tokyo"
    assert task["schedule_description"] == "At 09:30, Monday through Friday"
    fires = [datetime.fromisoformat(t) for t in task["next_fires"]]
    assert len(fires) == 3 and fires == sorted(fires)
    for fire in fires:
        assert fire.utcoffset() == timedelta(hours=9)  # written in the task's zone
        assert (fire.hour, fire.minute, fire.isoweekday() <= 5) == (9, 30, True)
    assert datetime.fromisoformat(task["next_run_at"]) == fires[0]  # the timer re-armed
    again = await api.ok("task/get_by_id", {"id": task_id})
    assert again["next_fires"] == task["next_fires"]


async def test_every_change_is_in_the_history_after_the_creation(api: Api) -> None:
    task_id = await scheduled(api, ARGS, name="report", timeout=60, json={"a": 1})
    await api.ok("task/update", {"id": task_id, "json": {"a": 2}, "timeout": None})
    await api.ok("task/update", {"id": task_id, "concurrency_policy": "forbid", "name": "r2"})
    await api.ok("task/update", {"id": task_id, "name": "r2"})  # no change: not recorded
    changes = (await api.ok("task/history", {"id": task_id}))["changes"]
    assert len(changes) == 3
    created, first, second = changes
    assert created["changes"] == {
        "name": [None, "report"],
        "schedule": [None, FAR],
        "timezone": [None, "UTC"],
        "json": [None, {"a": 1}],
        "timeout": [None, 60],
        "concurrency_policy": [None, "allow"],
        "orch_id": [None, (await api.ok("task/get_by_id", {"id": task_id}))["orch_id"]],
    }
    assert first["changes"] == {"json": [{"a": 1}, {"a": 2}], "timeout": [60, None]}
    assert second["changes"] == {
        "concurrency_policy": ["allow", "forbid"],
        "name": ["report", "r2"],
    }
    assert all(change["by"] for change in changes)
    assert created["at"] <= first["at"] <= second["at"]
    # The history goes with its task when the orchestration is deleted.
    orch_id = (await api.ok("task/get_by_id", {"id": task_id}))["orch_id"]
    await api.ok("task/kill", {"id": task_id}, status=202)
    body = {"orchestrations": [orch_id], "confirm_delete": True}
    assert (await api.ok("orchestration/delete_orchestrations", body))["deleted"] is True
    await api.refused("task/history", {"id": task_id}, 404)


async def test_wrong_updates_are_refused_naming_the_field(api: Api, tmp_path: Path) -> None:
    task_id = await api.run_once(await api.upload(ARGS))
    message = await api.refused("task/update", {"id": task_id, "schedule": "* * * * *"}, 400)
    assert message.startswith("schedule:") and "run-once" in message
    sched = await scheduled(api, ARGS)
    for field, value in [
        ("schedule", "61 * * * *"),
        ("schedule", None),
        ("timezone", "Mars/Olympus"),
        ("timeout", 0),
        ("json", [1]),
        ("concurrency_policy", "sometimes"),
        ("keep_runs", 0),
        ("cron", "* * * * *"),
    ]:
        message = await api.refused("task/update", {"id": sched, field: value}, 400)
        assert message.startswith(f"{field}:"), message
    unknown = "00000000-0000-4000-8000-000000000000"
    await api.refused("task/update", {"id": unknown, "name": "x"}, 404)
    await api.ok("task/kill", {"id": sched}, status=202)
    assert "killed" in await api.refused("task/update", {"id": sched, "name": "x"}, 409)
    # Nothing half-written: the refused changes left no history.
    assert len((await api.ok("task/history", {"id": sched}))["changes"]) == 1


async def test_a_run_going_keeps_its_arguments_and_rerun_reuses_them(
    api: Api, tmp_path: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    task_id = await scheduled(api, GATED, json={"flag": str(first)})
    run = await api.ok("task/run_now", {"id": task_id}, status=201)
    await api.wait_for_log(run["run_id"], "start")
    await api.ok("task/update", {"id": task_id, "json": {"flag": str(second)}})
    first.touch()  # the run going still waits for its own flag, and ends on it
    assert (await run_ended(api, task_id, run["run_id"]))["status"] == "success"

    again = await api.ok("task/rerun", {"run_id": run["run_id"]}, status=201)
    assert again["id"] == task_id  # a manual run of the same task, with the run's arguments
    lines = await api.wait_for_log(again["run_id"], "start")
    assert str(first) in "".join(lines)
    assert (await run_ended(api, task_id, again["run_id"]))["trigger"] == "manual"

    edited = await api.ok(
        "task/rerun", {"run_id": run["run_id"], "json": {"flag": str(first), "x": 7}}, status=201
    )
    assert "'x': 7" in "".join(await api.wait_for_log(edited["run_id"], "start"))
    task = await api.ok("task/get_by_id", {"id": task_id})
    assert task["input_data"] == {"flag": str(second)}  # the task's own arguments stay


async def test_rerun_of_a_run_once_task_is_a_new_run_once_task(api: Api) -> None:
    orch_id = await api.upload(ARGS)
    task_id = await api.run_once(orch_id, {"a": 1}, name="once", timeout=30)
    done = await api.wait_task(task_id, {"success"})
    run_id = done["last_runs"][0]["run_id"]
    again = await api.ok("task/rerun", {"run_id": run_id, "json": {"a": 2}}, status=201)
    assert again["id"] != task_id
    new = await api.wait_task(again["id"], {"success"})
    assert (new["name"], new["orch_id"], new["timeout"]) == ("once", orch_id, 30)
    assert new["input_data"] == {"a": 2} and new["run_type"] == "Oneshot"
    assert again["run_id"] in (None, new["last_runs"][0]["run_id"])
    assert "{'a': 2}" in "".join(await api.logs(new["last_runs"][0]["run_id"]))
    old = await api.ok("task/get_by_id", {"id": task_id})
    assert old["input_data"] == {"a": 1} and len(old["last_runs"]) == 1


async def test_rerun_refuses_a_killed_task_and_a_busy_continuous_one(
    api: Api, tmp_path: Path
) -> None:
    orch_id = await api.upload(GATED)
    body = {"workspace_id": 1, "orch_id": orch_id, "json": {"flag": str(tmp_path / "f")}}
    task_id = (await api.ok("task/run_continuously", body, status=201))["id"]
    task = await api.wait_task(task_id, {"started"})
    while not task["last_runs"]:
        task = await api.ok("task/get_by_id", {"id": task_id})
    run_id = task["last_runs"][0]["run_id"]
    message = await api.refused("task/rerun", {"run_id": run_id}, 409)
    assert "one run at a time" in message
    await api.ok("task/kill", {"id": task_id}, status=202)
    assert "killed" in await api.refused("task/rerun", {"run_id": run_id}, 409)
    unknown = "00000000-0000-4000-8000-000000000000"
    await api.refused("task/rerun", {"run_id": unknown}, 404)


async def test_schedule_preview_lists_fires_in_the_zone_and_names_problems(api: Api) -> None:
    answer = await api.ok(
        "schedule/preview", {"schedule": "0 9 * * *", "timezone": "Europe/Paris", "count": 5}
    )
    fires = [datetime.fromisoformat(t) for t in answer["fires"]]
    assert len(fires) == 5 and fires == sorted(fires)
    assert all(
        f.hour == 9 and f.utcoffset() == f.astimezone(ZoneInfo("Europe/Paris")).utcoffset()
        for f in fires
    )
    assert answer["description"] == "At 09:00"
    default = await api.ok("schedule/preview", {"schedule": "*/2 * * * * *"})
    assert len(default["fires"]) == 3 and default["description"] == "Every 2 seconds"
    assert (await api.refused("schedule/preview", {"schedule": "61 * * * *"}, 400)).startswith(
        "schedule:"
    )
    message = await api.refused(
        "schedule/preview", {"schedule": "@daily", "timezone": "Nowhere"}, 400
    )
    assert message.startswith("timezone:")
    assert (
        await api.refused("schedule/preview", {"schedule": "@daily", "count": 0}, 400)
    ).startswith("count:")


async def test_tasks_without_a_schedule_have_no_fires(api: Api) -> None:
    task_id = await api.run_once(await api.upload(ARGS))
    task = await api.ok("task/get_by_id", {"id": task_id})
    assert task["next_fires"] == [] and task["schedule_description"] is None
    sched = await scheduled(api, ARGS)
    paused = await api.ok("task/pause", {"id": sched, "pause": True}, status=202)
    assert paused["next_fires"] == [] and paused["schedule_description"]


async def test_new_code_for_a_task_runs_from_its_next_run(api: Api) -> None:
    task_id = await scheduled(api, ARGS)
    newer = await api.upload({"main.py": "print('new code', flush=True)\n"})
    await api.wait_orch(newer, {"ready"})
    task = await api.ok("task/update", {"id": task_id, "orch_id": newer})
    assert task["orch_id"] == newer
    run = await api.ok("task/run_now", {"id": task_id}, status=201)
    assert "new code" in "".join(await api.wait_for_log(run["run_id"], "new code"))
    [change] = (await api.ok("task/history", {"id": task_id}))["changes"][1:]
    assert change["changes"]["orch_id"][1] == newer

    elsewhere = (await api.ok("workspaces/create", {"workspace_name": "other"}))["workspace_id"]
    foreign = await api.upload(ARGS, workspace_id=elsewhere)
    await api.wait_orch(foreign, {"ready"})
    message = await api.refused("task/update", {"id": task_id, "orch_id": foreign}, 400)
    assert message.startswith("orch_id:") and "workspace" in message
    missing = "00000000-0000-4000-8000-000000000000"
    await api.refused("task/update", {"id": task_id, "orch_id": missing}, 404)


async def test_deleting_old_code_stops_its_run_going_and_the_task_stays(
    api: Api, tmp_path: Path
) -> None:
    task_id = await scheduled(api, GATED, json={"flag": str(tmp_path / "never")})
    old = (await api.ok("task/get_by_id", {"id": task_id}))["orch_id"]
    run = await api.ok("task/run_now", {"id": task_id}, status=201)
    await api.wait_for_log(run["run_id"], "start")
    newer = await api.upload(ARGS)
    await api.wait_orch(newer, {"ready"})
    await api.ok("task/update", {"id": task_id, "orch_id": newer})
    body = {"orchestrations": [old], "confirm_delete": True}
    answer = await api.ok("orchestration/delete_orchestrations", body)
    assert answer["deleted"] is True and answer["tasks"] == []  # the task is not old's any more
    details = {"task": task_id, "pod_id": run["run_id"]}
    assert (await api.ok("task/get_run_details", details))["status"] == "killed"
    task = await api.ok("task/get_by_id", {"id": task_id})
    assert task["orch_id"] == newer and task["killed"] is False and task["status"] == "started"
    again = await api.ok("task/run_now", {"id": task_id}, status=201)
    assert (await run_ended(api, task_id, again["run_id"]))["status"] == "success"
