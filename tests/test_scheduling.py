"""Scheduled and continuous tasks, pause and resume, run_now, retention, live logs."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from .conftest import API, Api, texts

QUICK = {"main.py": "print('tick', flush=True)\n"}
SLOW = {"main.py": "import time\nprint('start', flush=True)\ntime.sleep(3)\nprint('done')\n"}
# Prints "start", then ends once the file args["flag"] exists.
GATED = {
    "main.py": "import jupyter_orch, pathlib, time\n"
    "print('start', flush=True)\n"
    "flag = pathlib.Path(jupyter_orch.task_args()['flag'])\n"
    "while not flag.exists():\n"
    "    time.sleep(0.05)\n"
    "print('done')\n"
}
EVERY_SECOND = "* * * * * *"
FAR = "0 0 1 1 *"  # once a year: only manual runs


@pytest.fixture
def orch_config(orch_config: dict[str, Any], request: pytest.FixtureRequest) -> dict[str, Any]:
    """The shared OrchApp settings, with a test's own (indirect parametrization)."""
    return {**orch_config, **getattr(request, "param", {})}


async def scheduled(api: Api, files: dict[str, str], **extra: Any) -> str:
    """Upload `files` and schedule them; the task id."""
    orch_id = await api.upload(files)
    body = {"workspace_id": 1, "orch_id": orch_id, "json": {}, "schedule": EVERY_SECOND, **extra}
    task_id: str = (await api.ok("task/run_scheduled", body, status=201))["id"]
    return task_id


async def continuous(api: Api, files: dict[str, str], args: Any = None) -> str:
    """Upload `files` and run them continuously; the task id."""
    orch_id = await api.upload(files)
    body = {"workspace_id": 1, "orch_id": orch_id, "json": args or {}, "name": "loop"}
    task_id: str = (await api.ok("task/run_continuously", body, status=201))["id"]
    return task_id


async def runs_of(api: Api, task_id: str) -> list[dict[str, Any]]:
    """All runs of a task, oldest first."""
    runs: list[dict[str, Any]] = await api.ok("task/list_task_runs", {"task_id": task_id})
    return sorted(runs, key=lambda r: r["created_at"])


async def wait_runs(api: Api, task_id: str, count: int, timeout: float = 30) -> list[Any]:
    """Poll until a task has at least `count` runs."""
    deadline = time.monotonic() + timeout
    while len(runs := await runs_of(api, task_id)) < count:
        assert time.monotonic() < deadline, f"only {len(runs)} runs"
        await asyncio.sleep(0.1)
    return runs


async def wait_ended(api: Api, task_id: str, timeout: float = 30) -> list[Any]:
    """Poll until no run of a task is running."""
    deadline = time.monotonic() + timeout
    while True:
        runs = await runs_of(api, task_id)
        if all(r["status"] != "running" for r in runs):
            return runs
        assert time.monotonic() < deadline, "runs still running"
        await asyncio.sleep(0.1)


def when(text: str) -> datetime:
    """A time from the API."""
    return datetime.fromisoformat(text)


async def wait_until(check: Any, what: str, timeout: float = 30) -> None:
    """Poll the coroutine function `check` until it returns true."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("kind", ["scheduled", "continuous"])
async def test_kill_leaves_no_run_created_after_its_answer(api: Api, kind: str) -> None:
    if kind == "scheduled":
        task_id = await scheduled(api, QUICK, schedule="*/1 * * * * *")
        await wait_runs(api, task_id, 2)
    else:
        task_id = await continuous(api, QUICK)
        await wait_runs(api, task_id, 3)
    answer = await api.ok("task/kill", {"id": task_id}, status=202)
    answered = datetime.now(timezone.utc)  # the server shares this clock
    assert answer["status"] in {"pending_kill", "killed"}
    await asyncio.sleep(3)
    runs = await runs_of(api, task_id)
    late = [r for r in runs if when(r["created_at"]) > answered]
    assert late == [], f"runs created after the kill was answered at {answered}"
    # The answer carries the task's newest runs, as get_by_id does.
    assert 2 <= len(answer["last_runs"]) <= 5
    assert {r["run_id"] for r in answer["last_runs"]} <= {r["run_id"] for r in runs}
    task = await api.wait_task(task_id, {"killed"})
    assert task["next_run_at"] is None
    assert all(r["status"] != "running" for r in await runs_of(api, task_id))


async def test_scheduled_runs_fire_on_their_instants_and_stop_when_killed(api: Api) -> None:
    task_id = await scheduled(api, QUICK, name="every second")
    task = await api.ok("task/get_by_id", {"id": task_id})
    assert task["run_type"] == "CronJob" and task["flavor"] == "exec_orch_cron"
    assert task["schedule"] == EVERY_SECOND and task["timezone"] == "UTC"
    assert task["concurrency_policy"] == "allow"
    assert when(task["next_run_at"]) > when(task["created_at"])
    runs = await wait_runs(api, task_id, 3)
    instants = [when(r["scheduled_for"]) for r in runs]
    assert len(set(instants)) == len(instants)
    for instant in instants:
        assert instant.microsecond == 0  # whole seconds, as the schedule says
    for run in runs:
        lateness = when(run["created_at"]) - when(run["scheduled_for"])
        assert timedelta(0) <= lateness < timedelta(seconds=1)
        assert run["trigger"] == "schedule"
    answer = await api.ok("task/kill", {"id": task_id}, status=202)
    assert answer["status"] in {"pending_kill", "killed"}
    count = len(await wait_ended(api, task_id))
    await asyncio.sleep(1.5)
    assert len(await runs_of(api, task_id)) == count  # nothing started after the answer
    task = await api.wait_task(task_id, {"killed"})
    assert task["next_run_at"] is None


async def test_each_run_has_its_own_log(api: Api) -> None:
    code = "import os\nprint(os.environ['JUPYTER_ORCH_RUN_ID'])\n"
    task_id = await scheduled(api, {"main.py": code})
    await wait_runs(api, task_id, 3)
    await api.ok("task/kill", {"id": task_id}, status=202)
    runs = await wait_ended(api, task_id)
    finished = [r for r in runs if r["status"] == "success"]
    assert len(finished) >= 2, runs  # the kill may end the newest run; earlier ones succeeded
    for run in finished:
        assert texts(await api.logs(run["run_id"])) == [run["run_id"]]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"schedule": "* * *"}, "schedule: '* * *' has 3 fields"),
        ({"schedule": "99 * * * *"}, "schedule: '99 * * * *' is not a valid cron string"),
        ({"timezone": "Atlantis/Capital"}, "timezone: 'Atlantis/Capital' is not an IANA"),
        ({"concurrency_policy": "sometimes"}, "concurrency_policy: 'sometimes' is not one of"),
        ({"starting_deadline_seconds": -1}, "starting_deadline_seconds: must be at least 0"),
        ({"schedule": None}, "schedule: must not be null"),
        ({"schedule": "0 0 31 2 *"}, "schedule: '0 0 31 2 *' never fires"),
        ({"timezone": "Europe"}, "timezone: 'Europe' is not an IANA"),
    ],
)
async def test_bad_schedules_are_400(api: Api, extra: dict[str, Any], message: str) -> None:
    orch_id = await api.upload(QUICK)
    body = {"workspace_id": 1, "orch_id": orch_id, "json": {}, "schedule": EVERY_SECOND, **extra}
    response = await api.call("task/run_scheduled", body)
    assert response.code == 400
    assert message in json.loads(response.body)["message"]
    assert await api.ok("task/list", {}) == []


async def test_time_zone_is_kept_and_next_run_follows_it(api: Api) -> None:
    task_id = await scheduled(
        api, QUICK, schedule="0 9 * * *", timezone="Asia/Tokyo", starting_deadline_seconds=0
    )
    task = await api.ok("task/get_by_id", {"id": task_id})
    assert task["timezone"] == "Asia/Tokyo"
    local = when(task["next_run_at"]).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))
    assert (local.hour, local.minute, local.second) == (9, 0, 0)
    await api.ok("task/kill", {"id": task_id}, status=202)


async def test_forbid_skips_instants_while_a_run_is_running(api: Api) -> None:
    task_id = await scheduled(api, SLOW, concurrency_policy="forbid")
    deadline = time.monotonic() + 30
    while not (await api.ok("task/get_by_id", {"id": task_id}))["last_skipped"]:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    task = await api.ok("task/get_by_id", {"id": task_id})
    assert "still running" in task["last_skipped"][0]["reason"]
    runs = await runs_of(api, task_id)
    assert sum(r["status"] == "running" for r in runs) <= 1
    await api.ok("task/kill", {"id": task_id}, status=202)
    await api.wait_task(task_id, {"killed"})


async def test_allow_lets_runs_overlap(api: Api) -> None:
    task_id = await scheduled(api, SLOW)
    deadline = time.monotonic() + 30
    while sum(r["status"] == "running" for r in await runs_of(api, task_id)) < 2:
        assert time.monotonic() < deadline, "runs never overlapped"
        await asyncio.sleep(0.1)
    await api.ok("task/kill", {"id": task_id}, status=202)
    await api.wait_task(task_id, {"killed"})
    assert all(r["status"] != "running" for r in await runs_of(api, task_id))


async def test_replace_ends_the_running_one(api: Api) -> None:
    task_id = await scheduled(api, SLOW, concurrency_policy="replace")
    runs = await wait_runs(api, task_id, 3)
    await api.ok("task/kill", {"id": task_id}, status=202)
    runs = await wait_ended(api, task_id)
    assert runs[0]["status"] == "killed"  # replaced by the next instant's run
    assert texts(await api.logs(runs[0]["run_id"]))[0] == "start"


async def test_timeout_applies_to_each_run_and_later_runs_still_come(api: Api) -> None:
    task_id = await scheduled(api, SLOW, timeout=1, concurrency_policy="forbid")
    deadline = time.monotonic() + 30
    while sum(r["status"] == "timed_out" for r in await runs_of(api, task_id)) < 2:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    task = await api.ok("task/get_by_id", {"id": task_id})
    assert task["status"] == "started"
    await api.ok("task/kill", {"id": task_id}, status=202)


async def test_run_now_and_pause_resume(api: Api) -> None:
    task_id = await scheduled(api, SLOW, schedule="0 0 1 1 *")  # far away: only manual runs
    started = await api.ok("task/run_now", {"id": task_id}, status=201)
    assert started["trigger"] == "manual" and started["status"] == "running"
    paused = await api.ok("task/pause", {"id": task_id, "pause": True}, status=202)
    assert paused["status"] == "pending_pause" and paused["next_run_at"] is None
    await api.wait_task(task_id, {"paused"})
    [run] = await runs_of(api, task_id)
    assert run["status"] == "success"  # a running run finishes
    again = await api.ok("task/pause", {"id": task_id, "pause": True}, status=202)
    assert again["status"] == "paused"
    resumed = await api.ok("task/pause", {"id": task_id, "pause": False}, status=202)
    assert resumed["status"] == "pending_resume"
    task = await api.wait_task(task_id, {"started"})
    assert task["next_run_at"] is not None
    bad = await api.call("task/pause", {"id": task_id, "pause": False})
    assert bad.code == 409 and "not paused" in json.loads(bad.body)["message"]
    await api.ok("task/kill", {"id": task_id}, status=202)
    gone = await api.call("task/run_now", {"id": task_id})
    assert gone.code == 409


async def test_paused_scheduled_task_makes_no_runs(api: Api) -> None:
    task_id = await scheduled(api, QUICK)
    await wait_runs(api, task_id, 1)
    await api.ok("task/pause", {"id": task_id, "pause": True}, status=202)
    await api.wait_task(task_id, {"paused"})
    count = len(await wait_ended(api, task_id))
    await asyncio.sleep(2.2)
    assert len(await runs_of(api, task_id)) == count
    await api.ok("task/pause", {"id": task_id, "pause": False}, status=202)
    await wait_runs(api, task_id, count + 1)
    await api.ok("task/kill", {"id": task_id}, status=202)


async def test_pause_and_run_now_refuse_run_once_tasks(api: Api) -> None:
    task = await api.run_to_end(QUICK)
    for path, body in (("task/pause", {"pause": True}), ("task/run_now", {})):
        response = await api.call(path, {"id": task["id"], **body})
        assert response.code == 409
    missing = await api.call("task/pause", {"id": task["id"]})
    assert missing.code == 400 and "pause: is required" in json.loads(missing.body)["message"]


async def test_continuous_runs_follow_each_other_within_a_second(api: Api) -> None:
    # Runs that end at once back off as a crash loop would; here no run counts as fast.
    _service().tasks.settings.crash_loop_seconds = 0
    task_id = await continuous(api, {"main.py": "print('round')\n"})
    runs = await wait_runs(api, task_id, 4)
    task = await api.ok("task/get_by_id", {"id": task_id})
    assert task["run_type"] == "NetworkService" and task["status"] == "started"
    await api.ok("task/kill", {"id": task_id}, status=202)
    runs = await wait_ended(api, task_id)
    ended = [r for r in runs if r["ended_at"]]
    for previous, following in pairwise(ended):
        gap = when(following["created_at"]) - when(previous["ended_at"])
        assert timedelta(0) <= gap < timedelta(seconds=1)
    assert all(r["trigger"] == "continuous" for r in runs)


async def test_continuous_crash_loop_backs_off_then_recovers(api: Api, tmp_path: Path) -> None:
    flag = tmp_path / "healthy"
    # A healthy run lasts longer than crash_loop_seconds (one that ends at once backs off too).
    _service().tasks.settings.crash_loop_seconds = 3
    code = (
        "import pathlib, sys, time\n"
        f"if not pathlib.Path({str(flag)!r}).exists():\n"
        "    sys.exit('not yet')\n"
        "time.sleep(3.5)\n"
        "print('healthy')\n"
    )
    task_id = await continuous(api, {"main.py": code})
    runs = await wait_runs(api, task_id, 3)
    task = await api.ok("task/get_by_id", {"id": task_id})
    assert task["status"] == "crash_loop"
    gaps = [
        (when(b["created_at"]) - when(a["ended_at"])).total_seconds() for a, b in pairwise(runs)
    ]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.9  # 1 s, then 2 s
    flag.write_text("yes")
    deadline = time.monotonic() + 30
    while (await api.ok("task/get_by_id", {"id": task_id}))["status"] != "started":
        assert time.monotonic() < deadline, "never recovered"
        await asyncio.sleep(0.1)
    await api.ok("task/kill", {"id": task_id}, status=202)
    await api.wait_task(task_id, {"killed"})


async def test_pausing_a_continuous_task_lets_its_run_finish_and_resuming_starts_the_next(
    api: Api, tmp_path: Path
) -> None:
    flag = tmp_path / "finish"
    task_id = await continuous(api, GATED, {"flag": str(flag)})
    [first] = await wait_runs(api, task_id, 1)
    await api.wait_for_log(first["run_id"], "start")
    paused = await api.ok("task/pause", {"id": task_id, "pause": True}, status=202)
    assert paused["status"] == "pending_pause"
    assert (await api.ok("task/get_by_id", {"id": task_id}))["status"] == "pending_pause"
    flag.touch()  # the running run finishes
    await api.wait_task(task_id, {"paused"})
    [first] = await wait_ended(api, task_id)
    assert first["status"] == "success"
    await asyncio.sleep(2)
    assert [r["run_id"] for r in await runs_of(api, task_id)] == [first["run_id"]]
    assert (await api.ok("task/get_by_id", {"id": task_id}))["status"] == "paused"
    flag.unlink()  # the next run waits for the flag again
    asked = datetime.now(timezone.utc)
    resumed = await api.ok("task/pause", {"id": task_id, "pause": False}, status=202)
    assert resumed["status"] == "pending_resume"
    await api.wait_task(task_id, {"started"})
    runs = await wait_runs(api, task_id, 2)
    second = runs[-1]
    assert len(runs) == 2 and second["trigger"] == "continuous"
    assert when(second["created_at"]) > asked  # started by the resume
    await api.wait_for_log(second["run_id"], "start")
    await api.ok("task/kill", {"id": task_id}, status=202)
    await api.wait_task(task_id, {"killed"})
    assert [r["status"] for r in await runs_of(api, task_id)] == ["success", "killed"]


@pytest.mark.parametrize("orch_config", [{"keep_runs": 2}], indirect=True)
async def test_the_server_keep_runs_applies_and_a_task_keep_runs_overrides_it(api: Api) -> None:
    default = await scheduled(api, QUICK, schedule=FAR)
    own = await scheduled(api, QUICK, schedule=FAR, keep_runs=3)
    made: dict[str, list[str]] = {default: [], own: []}
    for _ in range(4):
        for task_id, ids in made.items():
            ids.append((await api.ok("task/run_now", {"id": task_id}, status=201))["id"])
        for task_id in made:
            await wait_ended(api, task_id)

    async def pruned() -> bool:
        counts = [len(await runs_of(api, task_id)) for task_id in made]
        return counts == [2, 3]

    await wait_until(pruned, "retention to keep 2 runs, and 3 for the task's own keep_runs")
    await asyncio.sleep(1.5)  # one more pass would not remove more
    for task_id, keep in ((default, 2), (own, 3)):
        kept = [r["run_id"] for r in await runs_of(api, task_id)]
        assert kept == made[task_id][-keep:]  # the newest


@pytest.mark.parametrize("orch_config", [{"keep_days": 2 / 86400}], indirect=True)
async def test_the_server_keep_days_applies_and_a_task_keep_days_overrides_it(api: Api) -> None:
    default = await scheduled(api, QUICK, schedule=FAR)
    own = await scheduled(api, QUICK, schedule=FAR, keep_days=1)
    old = {t: (await api.ok("task/run_now", {"id": t}, status=201))["id"] for t in (default, own)}
    for task_id in old:
        await wait_ended(api, task_id)
    await asyncio.sleep(2.5)  # the first runs are now older than 2 s
    new = {t: (await api.ok("task/run_now", {"id": t}, status=201))["id"] for t in old}
    for task_id in old:
        await wait_ended(api, task_id)  # their ends start a retention pass

    async def old_one_gone() -> bool:
        return old[default] not in {r["run_id"] for r in await runs_of(api, default)}

    await wait_until(old_one_gone, "retention to remove the run older than 2 s")
    await asyncio.sleep(1.5)  # a pass for the other task would have come too
    assert {r["run_id"] for r in await runs_of(api, own)} == {old[own], new[own]}


async def test_a_task_without_catch_up_still_runs_on_its_schedule(api: Api) -> None:
    task_id = await scheduled(api, QUICK, starting_deadline_seconds=0)
    try:
        runs = await wait_runs(api, task_id, 2, timeout=5)
        assert all(r["trigger"] == "schedule" for r in runs)
    finally:
        await api.ok("task/kill", {"id": task_id}, status=202)


async def test_retention_keeps_the_newest_runs_and_the_latest_failure(api: Api) -> None:
    code = "import jupyter_orch, sys\nsys.exit(jupyter_orch.task_args().get('code', 0))\n"
    orch_id = await api.upload({"main.py": code})
    body = {
        "workspace_id": 1,
        "orch_id": orch_id,
        "json": {"code": 1},
        "schedule": "0 0 1 1 *",
        "keep_runs": 2,
    }
    task_id = (await api.ok("task/run_scheduled", body, status=201))["id"]
    assert (await api.ok("task/get_by_id", {"id": task_id}))["keep_runs"] == 2
    first = await api.ok("task/run_now", {"id": task_id}, status=201)
    await wait_ended(api, task_id)
    service = _service()
    # The task's arguments decide the exit code; make later runs succeed.
    await service.store.call(
        lambda: service.store.db.execute("UPDATE tasks SET input_data='{}' WHERE id=?", (task_id,))
    )
    for _ in range(4):
        await api.ok("task/run_now", {"id": task_id}, status=201)
        await wait_ended(api, task_id)
    before = {r["run_id"] for r in await runs_of(api, task_id)}
    await service.prune(task_id)
    runs = await runs_of(api, task_id)
    kept = {r["run_id"] for r in runs}
    assert len(runs) == 3
    assert first["run_id"] in kept  # the latest failure stays
    newest = sorted(runs, key=lambda r: r["created_at"])[-2:]
    assert all(r["status"] == "success" for r in newest)
    for run_id in before - kept:  # logs go with their run
        assert not service.data.run(run_id).exists()
    for run_id in kept:
        assert (service.data.run(run_id) / "log").exists()
    await api.ok("task/kill", {"id": task_id}, status=202)


async def test_retention_by_age(api: Api) -> None:
    task = await api.run_to_end(QUICK)
    service = _service()
    run_id = task["last_runs"][0]["run_id"]
    old = "2020-01-01T00:00:00+00:00"
    await service.store.call(
        lambda: service.store.db.execute("UPDATE runs SET created_at=? WHERE id=?", (old, run_id))
    )
    assert await service.prune(task["id"]) == [run_id]
    assert not service.data.run(run_id).exists()
    assert await runs_of(api, task["id"]) == []


async def test_follow_logs_streams_lines_until_the_run_ends(api: Api) -> None:
    code = (
        "import time\nfor i in range(5):\n    print('line', i, flush=True)\n    time.sleep(0.2)\n"
    )
    task_id = await api.run_once(await api.upload({"main.py": code}))
    task = await api.wait_task(task_id, {"started", "success"})
    run_id = task["last_runs"][0]["run_id"]

    async def follow(start: int) -> list[Any]:
        response = await api.fetch(
            API, "task", "follow_logs", params={"id": run_id, "from": str(start)}
        )
        assert response.headers["Content-Type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in response.body.decode().splitlines()]

    everything, tail, *more = await asyncio.gather(follow(0), follow(3), *[follow(0)] * 5)
    assert [m["n"] for m in everything[:-1]] == [0, 1, 2, 3, 4]
    assert texts([m["line"] for m in everything[:-1]]) == [f"line {i}" for i in range(5)]
    assert everything[-1] == {"end": True, "status": "success", "next": 5}
    assert [m["n"] for m in tail[:-1]] == [3, 4]
    assert all(m == everything for m in more)
    after = await follow(5)
    assert after == [{"end": True, "status": "success", "next": 5}]


async def test_follow_logs_errors(api: Api) -> None:
    missing = await api.fetch(
        API,
        "task",
        "follow_logs",
        params={"id": "00000000-0000-4000-8000-000000000000"},
        raise_error=False,
    )
    assert missing.code == 404
    bad = await api.fetch(API, "task", "follow_logs", params={"id": "x"}, raise_error=False)
    assert bad.code == 400


def _service() -> Any:
    """The service of the in-process test server."""
    from jupyter_server.serverapp import ServerApp

    return ServerApp.instance().web_app.settings["jupyter_orch.service"]


@pytest.mark.timeout(300)
async def test_a_scheduled_task_whose_packaging_fails_is_failed(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("UV_OFFLINE", "1")
    files = {"main.py": "print(1)\n", "requirements.txt": "surely-not-real-jupyter-orch==1\n"}
    gate = asyncio.Semaphore(0)  # the build waits for a slot until the task exists
    _service().packager._slots = gate
    task_id = await scheduled(api, files)
    gate.release()
    task = await api.wait_task(task_id, {"failed"}, timeout=240)
    [run] = task["last_runs"]
    assert run["status"] == "failure"
    assert texts(await api.logs(run["run_id"]))[-1].startswith("jupyter_orch: packaging failed")


async def test_deleting_a_scheduled_orchestration_stops_its_schedule(api: Api) -> None:
    orch_id = await api.upload(QUICK)
    body = {"workspace_id": 1, "orch_id": orch_id, "json": {}, "schedule": "0 0 1 1 *"}
    task_id = (await api.ok("task/run_scheduled", body, status=201))["id"]
    await api.wait_task(task_id, {"started"})
    assert _service().tasks.scheduler.get(task_id) is not None
    body = {"orchestrations": [orch_id], "confirm_delete": True}
    assert (await api.ok("orchestration/delete_orchestrations", body))["deleted"] is True
    assert _service().tasks.scheduler.get(task_id) is None
