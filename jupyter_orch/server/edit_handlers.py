"""Endpoints that change a task in place or run a run again, and the schedule preview
(ours; the table of routes is `handlers.py`'s)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import task_edits
from .errors import InvalidRequest
from .fields import MAX_DAYS, MAX_LOG_BYTES, MAX_TIMEOUT, MIN_LOG_BYTES, Fields
from .models import ConcurrencyPolicy

if TYPE_CHECKING:
    from .handlers import Answer, OrchHandler

# `schedule/preview`: fire times in one answer, by default and at most
PREVIEW_DEFAULT, PREVIEW_LIMIT = 3, 100


def task_edit(f: Fields) -> dict[str, Any]:
    """The fields of a `task/update` (each present one type-checked; null clears name,
    timeout and retention); InvalidRequest naming a field `task/update` does not take."""
    for name in f.body:
        if name != "id" and name not in task_edits.EDITABLE:
            known = ", ".join(task_edits.EDITABLE)
            raise InvalidRequest(name, f"is not a field task/update changes (it changes {known})")
    readers: dict[str, Callable[[], Any]] = {
        "name": lambda: f.string("name", required=False),
        "schedule": lambda: f.string("schedule"),
        "timezone": lambda: f.string("timezone"),
        "json": lambda: f.mapping("json"),
        "timeout": lambda: f.integer("timeout", False, minimum=1, maximum=MAX_TIMEOUT),
        "concurrency_policy": lambda: (
            f.enum("concurrency_policy", ConcurrencyPolicy, f.string("concurrency_policy")).value
        ),
        "keep_runs": lambda: f.integer("keep_runs", False, minimum=1),
        "keep_days": lambda: f.number("keep_days", False, minimum=0, maximum=MAX_DAYS),
        "max_log_bytes": lambda: f.integer(
            "max_log_bytes", False, minimum=MIN_LOG_BYTES, maximum=MAX_LOG_BYTES
        ),
        "orch_id": lambda: f.uuid("orch_id"),
    }
    return {name: read() for name, read in readers.items() if name in f.body}


async def task_update(h: OrchHandler, f: Fields) -> Answer:
    """`task/update {"id", ...fields}` (ours): 200 with the task as changed."""
    task_id = f.uuid("id")
    task = await h.service.update_task(h.scope, task_id, task_edit(f), h.author)
    return 200, task.to_json()


async def task_history(h: OrchHandler, f: Fields) -> Answer:
    """`task/history {"id"}` (ours): the task's creation and changes, oldest first."""
    changes = await h.service.task_history(h.scope, f.uuid("id"))
    return 200, {"changes": [change.to_json() for change in changes]}


async def task_rerun(h: OrchHandler, f: Fields) -> Answer:
    """`task/rerun {"run_id", "json"?}` (ours): 201 `{"id": task id, "run_id"}`."""
    run_id = f.uuid("run_id")
    args = f.mapping("json", default={}) if f.body.get("json") is not None else None
    task_id, new_run = await h.service.rerun(h.scope, run_id, args)
    return 201, {"id": task_id, "run_id": new_run}


async def schedule_preview(h: OrchHandler, f: Fields) -> Answer:
    """`schedule/preview {"schedule", "timezone"?, "count"?}` (ours): the next fire times
    and the schedule in words."""
    schedule = f.string("schedule")
    assert schedule is not None
    count = f.integer("count", required=False, minimum=1, maximum=PREVIEW_LIMIT)
    fires, description = h.service.preview_schedule(
        schedule, f.string("timezone", required=False), count or PREVIEW_DEFAULT
    )
    return 200, {"fires": [fire.isoformat() for fire in fires], "description": description}
