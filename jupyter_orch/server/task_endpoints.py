"""The endpoints that create tasks and control them: run once, on a schedule or continuously;
pause, run now, kill, delete (the table of routes is `handlers.py`'s)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import InvalidRequest
from .fields import (
    MAX_DAYS,
    MAX_LOG_BYTES,
    MAX_SECONDS,
    MAX_TIMEOUT,
    MIN_LOG_BYTES,
    Fields,
    as_uuid,
)
from .models import ConcurrencyPolicy, RunType
from .service_config import TaskRequest

if TYPE_CHECKING:
    from .handlers import Answer, Endpoint, OrchHandler

#: `task/delete`: task ids in one request, at most
MAX_DELETE = 1000


def task_request(f: Fields, scheduled: bool = False) -> TaskRequest:
    """The fields every kind of task takes (and, for scheduled tasks, the schedule's)."""
    f.boolean("debug")
    request = TaskRequest(
        orch_id=f.uuid("orch_id"),
        workspace_id=f.req_integer("workspace_id", 1),
        args=f.mapping("json", default={}),
        name=f.string("name", required=False),
        timeout=f.integer("timeout", required=False, minimum=1, maximum=MAX_TIMEOUT),
        keep_runs=f.integer("keep_runs", required=False, minimum=1),
        keep_days=f.number("keep_days", required=False, minimum=0, maximum=MAX_DAYS),
        executor=f.string("executor", required=False),
        max_log_bytes=f.integer(
            "max_log_bytes", required=False, minimum=MIN_LOG_BYTES, maximum=MAX_LOG_BYTES
        ),
    )
    if scheduled:
        request.schedule = f.string("schedule")
        request.timezone = f.string("timezone", required=False)
        policy = f.string("concurrency_policy", required=False) or "allow"
        request.concurrency_policy = f.enum("concurrency_policy", ConcurrencyPolicy, policy)
        request.starting_deadline_seconds = f.integer(
            "starting_deadline_seconds", required=False, minimum=0, maximum=MAX_SECONDS
        )
    return request


async def task_run_once(h: OrchHandler, f: Fields) -> Answer:
    """`task/run_once`: 201 `{"id"}` of the new task."""
    task = await h.service.create_task(h.scope, RunType.ONCE, task_request(f))
    return 201, {"id": task.id}


async def task_run_scheduled(h: OrchHandler, f: Fields) -> Answer:
    """`task/run_scheduled`: a run at every instant of a cron schedule."""
    task = await h.service.create_task(h.scope, RunType.SCHEDULED, task_request(f, True))
    return 201, {"id": task.id}


async def task_run_continuously(h: OrchHandler, f: Fields) -> Answer:
    """`task/run_continuously`: the next run as soon as the previous one ends."""
    task = await h.service.create_task(h.scope, RunType.CONTINUOUS, task_request(f))
    return 201, {"id": task.id}


async def task_pause(h: OrchHandler, f: Fields) -> Answer:
    """`task/pause {"id", "pause"}`: false resumes."""
    pause = f.boolean("pause", required=True)
    return 202, (await h.service.pause_task(h.scope, f.uuid("id"), bool(pause))).to_json()


async def task_run_now(h: OrchHandler, f: Fields) -> Answer:
    """`task/run_now {"id"}` (ours): one immediate run of a scheduled task."""
    run = await h.service.run_now(h.scope, f.uuid("id"))
    return 201, {"id": run.id, **run.to_json()}


async def task_kill(h: OrchHandler, f: Fields) -> Answer:
    """`task/kill {"id"}`: 202 with the task (`pending_kill` while runs end)."""
    return 202, (await h.service.kill_task(h.scope, f.uuid("id"))).to_json()


async def task_delete(h: OrchHandler, f: Fields) -> Answer:
    """`task/delete {"tasks", "confirm_delete"?}` (ours): tasks with their runs and files;
    without confirm, a preview naming the tasks with a run going (they would be killed)."""
    ids = [as_uuid("tasks", i) for i in f.items("tasks", str)]
    if not ids:
        raise InvalidRequest("tasks", "must list at least one task id")
    if len(ids) > MAX_DELETE:
        raise InvalidRequest("tasks", f"must list at most {MAX_DELETE} task ids")
    confirm = bool(f.boolean("confirm_delete"))
    return 200, await h.service.delete_tasks(h.scope, ids, confirm)


TASK_ENDPOINTS: dict[str, Endpoint] = {
    "task/run_once": task_run_once,
    "task/run_scheduled": task_run_scheduled,
    "task/run_continuously": task_run_continuously,
    "task/pause": task_pause,
    "task/run_now": task_run_now,
    "task/kill": task_kill,
    "task/delete": task_delete,
}
