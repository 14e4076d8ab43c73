"""What the tasks panel says of a task and of a run: table cells, labels, available actions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..sdk.resources import TASK_ENDED
from . import render

TASK_COLUMNS = ("name", "type", "schedule", "status", "last run", "next run", "created")
RUN_COLUMNS = ("run", "status", "trigger", "started", "duration", "exit code")


def kind(task: Mapping[str, Any]) -> str:
    """`run once`, `scheduled` or `continuous`."""
    word = str(task.get("run_type") or "")
    return render.KIND_WORDS.get(word, word)


def schedule(task: Mapping[str, Any]) -> str:
    """The cron schedule, with its time zone when not UTC."""
    cron = task.get("schedule")
    if not cron:
        return ""
    zone = task.get("timezone")
    return f"{cron} ({zone})" if zone and zone != "UTC" else str(cron)


def _last_run(task: Mapping[str, Any]) -> Mapping[str, Any]:
    runs = task.get("last_runs") or []
    return runs[0] if runs else {}


def task_cells(task: Mapping[str, Any], at: datetime) -> list[str]:
    """A task's row of the tasks table, as HTML."""
    last = _last_run(task)
    name = f"<b>{render.esc(task.get('name') or '(no name)')}</b>"
    return [
        f"{name} {render.muted(str(task['id'])[:8])}",
        render.esc(kind(task)),
        render.esc(schedule(task)),
        render.badge(task.get("status")),
        f"{render.badge(last.get('status'))} {render.when(last.get('created_at'), at)}",
        render.when(task.get("next_run_at"), at),
        render.when(task.get("created_at"), at),
    ]


def task_texts(task: Mapping[str, Any], at: datetime) -> list[str]:
    """A task's row, as plain text."""
    return [
        str(task.get("name") or ""),
        kind(task),
        schedule(task),
        render.words(task.get("status")),
        render.words(_last_run(task).get("status")),
        render.relative(task.get("next_run_at"), at),
        render.relative(task.get("created_at"), at),
    ]


def task_title(task: Mapping[str, Any], at: datetime) -> str:
    """The heading of the selected task, as HTML."""
    parts = [
        f"<b>{render.esc(task.get('name') or '(no name)')}</b>",
        render.esc(kind(task)),
        render.badge(task.get("status")),
    ]
    if task.get("schedule"):
        words = task.get("schedule_description")
        said = f"{render.esc(words)} " if words else ""
        parts.append(f"{said}<code>{render.esc(schedule(task))}</code>")
    if task.get("next_run_at"):
        parts.append(f"next run {render.when(task['next_run_at'], at)}")
    parts.append(f"created {render.when(task.get('created_at'), at)}")
    parts.append(render.muted(f"id {task['id']}"))
    return " · ".join(parts)


def availability(task: Mapping[str, Any]) -> dict[str, tuple[bool, str]]:
    """For each action: whether it is off for this task, and the tooltip saying why (or what)."""
    status, run_type = str(task.get("status")), str(task.get("run_type"))
    ended = bool(task.get("killed")) or status in TASK_ENDED or status == "pending_kill"
    paused = status in ("paused", "pending_pause")
    kill = (ended, "the task has ended" if ended else "Kill the task: no more runs")
    if run_type == "Oneshot":
        pause = (True, "a run-once task cannot be paused")
    elif ended or paused:
        pause = (True, f"the task is {render.words(status)}")
    else:
        pause = (False, "Start no new run until resumed")
    resume = (not paused, "Start runs again" if paused else "the task is not paused")
    if run_type != "CronJob":
        run_now = (True, "only a scheduled task can be run now")
    else:
        run_now = (ended, "the task has ended" if ended else "Start one run now")
    return {"kill": kill, "pause": pause, "resume": resume, "run_now": run_now}


def run_cells(run: Mapping[str, Any], at: datetime) -> list[str]:
    """A run's row of the runs table, as HTML."""
    code = run.get("exit_code")
    return [
        render.esc(str(run["run_id"])[:8]),
        render.badge(run.get("status")),
        render.esc(run.get("trigger")),
        render.when(run.get("started_at") or run.get("created_at"), at),
        render.esc(render.duration(run, at)),
        "" if code is None else render.esc(code),
    ]


def run_texts(run: Mapping[str, Any], at: datetime) -> list[str]:
    """A run's row, as plain text."""
    code = run.get("exit_code")
    return [
        str(run["run_id"]),
        render.words(run.get("status")),
        str(run.get("trigger") or ""),
        render.relative(run.get("started_at") or run.get("created_at"), at),
        render.duration(run, at),
        "" if code is None else str(code),
    ]


def run_label(run: Mapping[str, Any]) -> str:
    """A run as the run picker lists it: its start (local time), its status and its id."""
    start = render.parse_time(run.get("started_at") or run.get("created_at"))
    clock = start.astimezone().strftime("%H:%M:%S") if start else "?"
    return f"{clock} · {render.words(run.get('status'))} · {str(run['run_id'])[:8]}"
