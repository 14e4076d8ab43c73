"""Changing a task in place, and the history of its changes.

An edit is a set of fields with their new values (already type-checked by the handler). It
is checked against the task's kind, applied to the task record, and written with one history
entry `{field: [old, new]}` in one transaction. Only real changes are recorded.

The history keeps edits only: a task's creation is derived by undoing them, newest first,
from the task as it is now (which works as well for tasks made before histories were kept).
Queries are plain functions over the store's connection, called through `Store.query`.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .cron import parse_cron, parse_timezone
from .errors import InvalidRequest
from .models import ConcurrencyPolicy, Orchestration, RunType, Task, iso
from .schema import finite_json, stored, transaction

#: The wire names of the fields an edit may change, and the task attribute of each.
EDITABLE = {
    "name": "name",
    "schedule": "schedule",
    "timezone": "timezone",
    "json": "input_data",
    "timeout": "timeout",
    "concurrency_policy": "concurrency_policy",
    "keep_runs": "keep_runs",
    "keep_days": "keep_days",
    "max_log_bytes": "max_log_bytes",
    "orch_id": "orch_id",
}
#: Fields that only scheduled tasks have.
SCHEDULE_FIELDS = ("schedule", "timezone", "concurrency_policy")
KIND_WORDS = {
    RunType.ONCE: "a run-once task",
    RunType.SCHEDULED: "a scheduled task",
    RunType.CONTINUOUS: "a continuous task",
}


@dataclass
class Change:
    """One entry of a task's history."""

    at: datetime
    by: str
    changes: dict[str, list[Any]]

    def to_json(self) -> dict[str, Any]:
        """The wire shape."""
        return {"at": iso(self.at), "by": self.by, "changes": self.changes}


def wire_value(task: Task, name: str) -> Any:
    """A task's value of an editable field, as the wire writes it."""
    value = getattr(task, EDITABLE[name])
    return value.value if isinstance(value, ConcurrencyPolicy) else value


def check(task: Task, edit: dict[str, Any]) -> None:
    """Refuse fields the task's kind does not have, and bad schedules or zones."""
    for name in edit:
        if name in SCHEDULE_FIELDS and task.run_type is not RunType.SCHEDULED:
            raise InvalidRequest(
                name, f"applies only to scheduled tasks; this is {KIND_WORDS[task.run_type]}"
            )
    if "schedule" in edit:
        edit["schedule"] = parse_cron(edit["schedule"]).expr
    if "timezone" in edit:
        if not edit["timezone"].strip():
            raise InvalidRequest("timezone", "must not be empty")
        edit["timezone"] = parse_timezone(edit["timezone"]).key


def apply(task: Task, edit: dict[str, Any], orch: Orchestration | None) -> dict[str, list[Any]]:
    """Change the task record as the edit says; the fields that really changed, `[old, new]`."""
    changes: dict[str, list[Any]] = {}
    for name, value in edit.items():
        old = wire_value(task, name)
        if old == value:
            continue
        changes[name] = [old, value]
        new = ConcurrencyPolicy(value) if name == "concurrency_policy" else value
        setattr(task, EDITABLE[name], new)
    if "orch_id" in changes and orch is not None:
        task.orch_sha = orch.sha
    return changes


def save(db: sqlite3.Connection, task: Task, change: Change) -> None:
    """Write the task's editable fields and the history entry together."""
    transaction(
        db,
        [
            (
                "UPDATE tasks SET name=?, schedule=?, timezone=?, input_data=?, timeout=?,"
                " concurrency_policy=?, keep_runs=?, keep_days=?, max_log_bytes=?, orch_id=?,"
                " orch_sha=?,"
                " last_fire_at=?, updated_at=? WHERE id=?",
                (
                    task.name,
                    task.schedule,
                    task.timezone,
                    json.dumps(task.input_data),
                    task.timeout,
                    task.concurrency_policy.value,
                    task.keep_runs,
                    task.keep_days,
                    task.max_log_bytes,
                    task.orch_id,
                    task.orch_sha,
                    stored(task.last_fire_at),
                    stored(task.updated_at),
                    task.id,
                ),
            ),
            (
                "INSERT INTO task_changes (task_id, at, by, changes) VALUES (?,?,?,?)",
                (task.id, stored(change.at), change.by, json.dumps(change.changes)),
            ),
        ],
    )


def edits(db: sqlite3.Connection, task_id: str) -> list[Change]:
    """A task's recorded edits, oldest first."""
    rows = db.execute(
        "SELECT at, by, changes FROM task_changes WHERE task_id = ? ORDER BY id", (task_id,)
    ).fetchall()
    return [
        Change(datetime.fromisoformat(r["at"]), r["by"], finite_json(r["changes"])) for r in rows
    ]


def history(task: Task, recorded: list[Change]) -> list[Change]:
    """The task's creation (its first values, each `[null, value]`), then its edits."""
    first = {name: wire_value(task, name) for name in EDITABLE}
    for change in reversed(recorded):
        for name, (old, _new) in change.changes.items():
            first[name] = old
    if task.run_type is not RunType.SCHEDULED:
        for name in SCHEDULE_FIELDS:
            first.pop(name)
    created = {name: [None, value] for name, value in first.items() if value is not None}
    return [Change(task.created_at, task.owner_id, created), *recorded]
