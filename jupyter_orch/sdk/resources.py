"""The SDK's objects, after Wallaroo's: workspaces, orchestrations, tasks and task runs.

As in Wallaroo's SDK, what an object holds is read by calling a method (`task.id()`,
`task.name()`, `run.logs()`). Each object keeps the server's answer as last fetched
(`to_dict()`); those accessors read it, while `status()` and the actions (`kill()` ...) ask the
server and refresh it. Displaying an object never calls the server.
"""

from __future__ import annotations

import json
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, TextIO

from . import display
from .base import (
    Dated,
    ResourceList,
    given,
    moment,
    one_schedule,
    page_start,
    paged,
    poll,
    task_query,
)
from .errors import OrchClientError, OrchestrationFailed
from .logs import LogLines, write_lines

RUN_ENDED = frozenset({"success", "failure", "timed_out", "killed", "unknown"})
TASK_ENDED = frozenset({"success", "failed", "timed_out", "killed"})
#: `Task.run_type()`: the server's run type in a word.
KINDS = {"Oneshot": "once", "CronJob": "scheduled", "NetworkService": "continuous"}
#: `Task.task_type()`: the run type as Wallaroo's SDK displays it.
TASK_TYPES = {
    "Oneshot": "Temporary Run",
    "CronJob": "Scheduled Run",
    "NetworkService": "Continuous Run",
}
#: Runs the command line and `%orch_runs` list unless told otherwise.
RUN_LIMIT = 20
#: Objects asked for per request by the `iter_*` methods unless told otherwise.
PAGE_SIZE = 100


class _Keep:
    """The default of `Task.update`'s clearable fields: leave the field as it is."""

    def __repr__(self) -> str:
        return "KEEP"


#: `Task.update(timeout=KEEP)`: unchanged (None clears the field).
KEEP: Any = _Keep()


class Orchestration(Dated):
    """Uploaded code: run it once, on a schedule, or continuously."""

    kind = "Orchestration"
    columns = ("id", "name", "status", "file", "sha", "created")

    def id(self) -> str:
        """The orchestration's id."""
        return self._key

    def name(self) -> str | None:
        """The name given at upload."""
        return self._data.get("name")

    def file_name(self) -> str:
        """The uploaded file's name."""
        return self._text("file_name")

    def sha(self) -> str:
        """SHA-256 of the uploaded zip."""
        return self._text("sha")

    def workspace_id(self) -> int:
        """The workspace the orchestration belongs to."""
        return int(self._data["workspace_id"])

    def fields(self) -> list[tuple[str, str]]:
        """Fields shown when displayed."""
        data = self._data
        pairs = [
            ("name", display.cell(data.get("name"))),
            ("status", display.cell(data.get("status"))),
            ("file", f"{self.file_name()} ({data.get('file_size', '?')} bytes)"),
            ("sha", self.sha()),
            ("workspace", display.cell(data.get("workspace_id"))),
            ("created", display.short_time(data.get("created_at"))),
            ("updated", display.short_time(data.get("updated_at"))),
        ]
        if data.get("error"):
            pairs.insert(2, ("error", str(data["error"])))
        return pairs

    def row(self) -> list[str]:
        """Cells of an orchestration table."""
        data = self._data
        name, status = display.cell(data.get("name")), display.cell(data.get("status"))
        created = display.short_time(data.get("created_at"))
        return [self.id(), name, status, self.file_name(), self.sha()[:12], created]

    def refresh(self) -> Orchestration:
        """Fetch the orchestration again."""
        self._data = self._client._post("orchestration/get_by_id", {"id": self.id()})
        return self

    def status(self) -> str:
        """The packaging status now: `pending_packaging`, `packaging`, `ready` or `error`."""
        return str(self.refresh()._data["status"])

    def build_log(self) -> str:
        """The output of the build of the orchestration's environment."""
        return str(self._client._post("orchestration/get_build_log", {"id": self.id()})["log"])

    def wait_ready(self, timeout: float | None = None) -> Orchestration:
        """Wait until packaging ends; OrchestrationFailed with the reason when it failed."""

        def ended() -> str | None:
            status = self.status()
            return status if status in ("ready", "error") else None

        if poll(ended, timeout, f"orchestration {self.id()} packaging") == "error":
            raise OrchestrationFailed(f"orchestration {self.id()}: {self._data.get('error')}")
        return self

    def run_once(
        self,
        name: str,
        json_args: Mapping[str, Any] | None = None,
        timeout: int | None = None,
        debug: bool = False,
        executor: str | None = None,
        *,
        max_log_bytes: int | None = None,
    ) -> Task:
        """A task that runs the orchestration once, with `json_args` as its arguments;
        `executor` names where it runs (`local`, `dask`; the server's default if None).

        `max_log_bytes`: the cap on the run's log on disk (the server's setting by default);
        a log over it keeps its start and its end, with a line saying how much was dropped.
        """
        extra = {"timeout": timeout, "executor": executor, "max_log_bytes": max_log_bytes}
        return self._start("task/run_once", name, json_args, debug, **extra)

    def run_scheduled(
        self,
        name: str,
        schedule: str | Iterable[str],
        json_args: Mapping[str, Any] | None = None,
        timeout: int | None = None,
        debug: bool = False,
        timezone: str | None = None,
        executor: str | None = None,
        *,
        max_log_bytes: int | None = None,
    ) -> Task:
        """A task that runs each time the cron `schedule` is met (5 fields, or 6 with seconds),
        in UTC unless `timezone` names another; on `executor` if given; `max_log_bytes` as for
        `run_once`."""
        extra = {
            "schedule": one_schedule(schedule),
            "timezone": timezone,
            "executor": executor,
            "max_log_bytes": max_log_bytes,
        }
        return self._start("task/run_scheduled", name, json_args, debug, timeout=timeout, **extra)

    def run_continuously(
        self,
        name: str,
        json_args: Mapping[str, Any] | None = None,
        debug: bool = False,
        executor: str | None = None,
        *,
        max_log_bytes: int | None = None,
    ) -> Task:
        """A task that starts a new run whenever the previous one ends (on `executor`);
        `max_log_bytes` as for `run_once`."""
        return self._start(
            "task/run_continuously",
            name,
            json_args,
            debug,
            executor=executor,
            max_log_bytes=max_log_bytes,
        )

    def task(self) -> Task | None:
        """The newest task started from this orchestration (killed or not); None if none was.

        Wallaroo's `task()` gives the orchestration's task; here an orchestration may have
        started many, and this is the one started last.
        """
        tasks = self.list_tasks(killed=True, limit=1)
        return tasks[0] if tasks else None

    def list_tasks(
        self,
        killed: bool = False,
        limit: int | None = None,
        after: str | Task | None = None,
        run_limit: int = 1,
    ) -> TaskList:
        """The tasks of this orchestration, newest first (killed ones too when `killed`).

        Every one by default; `limit` gives the newest N, and `after` (the last task of the
        previous page, or its id) the page after it. Each task comes with its newest
        `run_limit` runs.
        """
        body = task_query({"orch_id": self.id()}, killed, run_limit, limit, after)
        return TaskList(Task(self._client, t) for t in self._client._post("task/list", body))

    def iter_tasks(
        self, killed: bool = False, page_size: int = PAGE_SIZE, run_limit: int = 1
    ) -> Iterator[Task]:
        """Each task of this orchestration, newest first, fetched `page_size` at a time."""
        body = task_query({"orch_id": self.id()}, killed, run_limit)
        for data in paged(self._client, "task/list", body, page_size):
            yield Task(self._client, data)

    def _start(
        self,
        endpoint: str,
        name: str,
        json_args: Mapping[str, Any] | None,
        debug: bool,
        **extra: Any,
    ) -> Task:
        body = {
            "orch_id": self.id(),
            "workspace_id": self.workspace_id(),
            "json": dict(json_args or {}),
        }
        body.update({"name": name, **{k: v for k, v in extra.items() if v is not None}})
        if debug:
            body["debug"] = True
        task_id = self._client._post(endpoint, body)["id"]
        return self._client.get_task_by_id(task_id)


class Task(Dated):
    """An order to run an orchestration: once, on a schedule, or continuously."""

    kind = "Task"
    columns = ("id", "name", "type", "status", "schedule", "last run", "created")

    def id(self) -> str:
        """The task's id."""
        return self._key

    def name(self) -> str | None:
        """The task's name."""
        return self._data.get("name")

    def workspace_id(self) -> int:
        """The workspace the task belongs to."""
        return int(self._data["workspace_id"])

    def input_data(self) -> dict[str, Any]:
        """The task's arguments (its `json_args`)."""
        return dict(self._data.get("input_data") or {})

    def task_type(self) -> str:
        """`Temporary Run` (run once), `Scheduled Run` or `Continuous Run`, as Wallaroo's."""
        word = self._text("run_type")
        return TASK_TYPES.get(word, word)

    def run_type(self) -> str:
        """`once`, `scheduled` or `continuous`."""
        word = self._text("run_type")
        return KINDS.get(word, word)

    def orch_id(self) -> str:
        """The orchestration the task runs."""
        return self._text("orch_id")

    def fields(self) -> list[tuple[str, str]]:
        """Fields shown when displayed."""
        data = self._data
        pairs = [
            ("name", display.cell(self.name())),
            ("type", self.task_type()),
            ("status", display.cell(data.get("status"))),
            ("orchestration", self.orch_id()),
            ("arguments", json.dumps(self.input_data())),
        ]
        if data.get("schedule"):
            zone = data.get("timezone") or "UTC"
            words = data.get("schedule_description") or data["schedule"]
            pairs.append(("schedule", f"{words} ({data['schedule']}, {zone})"))
            fires = ", ".join(display.short_time(t) for t in data.get("next_fires") or [])
            pairs.append(("next runs", fires or display.short_time(data.get("next_run_at"))))
        if data.get("timeout"):
            pairs.append(("timeout", f"{data['timeout']} s"))
        if data.get("max_log_bytes"):
            pairs.append(("log cap", f"{data['max_log_bytes']} bytes"))
        pairs.append(("last run", self._last_run_text()))
        pairs.append(("workspace", display.cell(data.get("workspace_id"))))
        pairs.append(("created", display.short_time(data.get("created_at"))))
        pairs.append(("updated", display.short_time(data.get("updated_at"))))
        return pairs

    def _last_run_text(self) -> str:
        runs = self._data.get("last_runs") or []
        return f"{runs[0]['status']} ({runs[0]['run_id']})" if runs else ""

    def row(self) -> list[str]:
        """Cells of a task table."""
        runs = self._data.get("last_runs") or []
        return [
            self.id(),
            display.cell(self.name()),
            self.task_type(),
            display.cell(self._data.get("status")),
            display.cell(self._data.get("schedule")),
            display.cell(runs[0]["status"]) if runs else "",
            display.short_time(self._data.get("created_at")),
        ]

    def refresh(self) -> Task:
        """Fetch the task again."""
        self._data = self._client._post("task/get_by_id", {"id": self.id()})
        return self

    def status(self) -> str:
        """The task's status now (`started`, `success`, `failed`, `killed`, `paused` ...)."""
        return str(self.refresh()._data["status"])

    def kill(self) -> str:
        """Stop future runs and end the active ones; the status word (`pending_kill` until
        its runs have ended, then `killed`)."""
        return self._act("task/kill", {"id": self.id()})

    def delete(self, confirm: bool = True) -> dict[str, Any]:
        """Delete the task with its runs, their logs and outputs (runs going are killed
        first); with `confirm=False`, only say what would go. The server's answer:
        `{"tasks", "task_runs", "running", "deleted"}`."""
        return self._client.delete_tasks([self], confirm_delete=confirm)

    def pause(self) -> str:
        """Start no run until resumed (active runs go on); the status word (`pending_pause`,
        then `paused`)."""
        return self._act("task/pause", {"id": self.id(), "pause": True})

    def resume(self) -> str:
        """Start runs again after a pause; the status word (`pending_resume`, then
        `started`)."""
        return self._act("task/pause", {"id": self.id(), "pause": False})

    def _act(self, endpoint: str, body: dict[str, Any]) -> str:
        self._data = self._client._post(endpoint, body)
        return self.known_status()

    def run_now(self) -> TaskRun:
        """Start one run of a scheduled task at once, outside its schedule."""
        answer = self._client._post("task/run_now", {"id": self.id()})
        if "run_id" in answer:  # the server sends the whole run along with its id
            return TaskRun(self._client, answer)
        return self._client.get_task_run(self.id(), answer["id"])

    def next_fires(self) -> list[datetime]:
        """The next (up to three) times a scheduled task runs, in its time zone."""
        return [t for t in map(moment, self._data.get("next_fires") or []) if t is not None]

    def schedule_description(self) -> str | None:
        """The schedule in words (`At 09:00, Monday through Friday`), None without one."""
        return self._data.get("schedule_description")

    def update(
        self,
        *,
        schedule: str | None = None,
        timezone: str | None = None,
        json_args: Mapping[str, Any] | None = None,
        concurrency_policy: str | None = None,
        orchestration: Orchestration | str | None = None,
        name: Any = KEEP,
        timeout: Any = KEEP,
        keep_runs: Any = KEEP,
        keep_days: Any = KEEP,
        max_log_bytes: Any = KEEP,
    ) -> Task:
        """Change the task in place; what is not given stays. `name`, `timeout`, `keep_runs`,
        `keep_days` and `max_log_bytes` set to None are cleared (no timeout; the server's
        retention and log cap).
        The next runs follow at once; runs going keep what they started with. The change is
        in `history()`. `schedule`, `timezone` and `concurrency_policy` are for scheduled
        tasks; `orchestration` (one of the task's workspace) gives the task new code."""
        body = given(
            {"id": self.id()},
            schedule=schedule,
            timezone=timezone,
            json=None if json_args is None else dict(json_args),
            concurrency_policy=concurrency_policy,
            orch_id=orchestration.id()
            if isinstance(orchestration, Orchestration)
            else orchestration,
        )
        clearable = {
            "name": name,
            "timeout": timeout,
            "keep_runs": keep_runs,
            "keep_days": keep_days,
            "max_log_bytes": max_log_bytes,
        }
        body.update({key: value for key, value in clearable.items() if value is not KEEP})
        self._data = self._client._post("task/update", body)
        return self

    def history(self) -> list[dict[str, Any]]:
        """The task's changes, oldest first, its creation first: each `{"at": datetime,
        "by": who, "changes": {field: [old, new]}}`."""
        answer = self._client._post("task/history", {"id": self.id()})
        return [{**change, "at": moment(change["at"])} for change in answer["changes"]]

    def last_runs(
        self,
        limit: int | None = None,
        status: str | None = None,
        after: str | TaskRun | None = None,
    ) -> TaskRunList:
        """The task's runs, newest first: every run it keeps, or the newest `limit`.

        `status` keeps one kind (`running`, `success`, `failure`, `timed_out`; `all`);
        `after` (the last run of the previous page, or its id) gives the page after it:
        `last_runs(limit=20, after=page[-1])`. Runs are ordered by their last change, so a
        run that ends moves to the front.
        """
        body = given({"task_id": self.id()}, limit=limit, status=status, after=page_start(after))
        runs = self._client._post("task/list_task_runs", body)
        return TaskRunList(TaskRun(self._client, run) for run in runs)

    def iter_runs(self, page_size: int = PAGE_SIZE, status: str | None = None) -> Iterator[TaskRun]:
        """Each run of the task, newest first, fetched `page_size` at a time."""
        body = given({"task_id": self.id()}, status=status)
        for data in paged(self._client, "task/list_task_runs", body, page_size, "run_id"):
            yield TaskRun(self._client, data)

    def first_run(self, timeout: float | None = None) -> TaskRun:
        """The task's first run, once it exists (a run-once task's only run).

        While the task has no run, each look asks for at most two runs; only a task that
        already has several (an old scheduled one, say) is paged through to its oldest.
        """

        def found() -> TaskRun | None:
            runs = self.last_runs(limit=2)
            if len(runs) == 1:
                return runs[0]
            if runs:
                oldest = deque(self.iter_runs(), maxlen=1)
                return oldest[0] if oldest else None
            if self.status() in TASK_ENDED:
                raise OrchClientError(f"task {self.id()} is {self.known_status()} without a run")
            return None

        return poll(found, timeout, f"task {self.id()} has no run yet")

    def wait(self, timeout: float | None = None) -> Task:
        """Wait until the task has ended (a run-once task: its run has ended)."""
        poll(lambda: self if self.status() in TASK_ENDED else None, timeout, f"task {self.id()}")
        return self


class TaskRun(Dated):
    """One execution of a task, with its status and log."""

    kind = "Task run"
    columns = ("task id", "run id", "status", "created", "updated", "trigger", "exit code")

    @property
    def _key(self) -> str:
        return str(self._data["run_id"])

    def id(self) -> str:
        """The run's id (Wallaroo's "pod id")."""
        return self._key

    def task_id(self) -> str:
        """The task this run belongs to."""
        return str(self._data["task"])

    def fields(self) -> list[tuple[str, str]]:
        """Fields shown when displayed."""
        data = self._data
        pairs = [
            ("task id", self.task_id()),
            ("run id", self.id()),
            ("status", display.cell(data.get("status"))),
            ("created", display.short_time(data.get("created_at"))),
            ("updated", display.short_time(data.get("updated_at"))),
            ("trigger", display.cell(data.get("trigger"))),
            ("started", display.short_time(data.get("started_at"))),
            ("ended", display.short_time(data.get("ended_at"))),
            ("exit code", display.cell(data.get("exit_code"))),
        ]
        if data.get("reason"):
            pairs.append(("reason", str(data["reason"])))
        return pairs

    def row(self) -> list[str]:
        """Cells of a run table."""
        data = self._data
        return [
            self.task_id(),
            self.id(),
            display.cell(data.get("status")),
            display.short_time(data.get("created_at")),
            display.short_time(data.get("updated_at")),
            display.cell(data.get("trigger")),
            display.cell(data.get("exit_code")),
        ]

    def refresh(self) -> TaskRun:
        """Fetch the run again."""
        body = {"task": self.task_id(), "pod_id": self.id()}
        self._data = self._client._post("task/get_run_details", body)
        return self

    def status(self) -> str:
        """The run's status now: `running`, `success`, `failure`, `timed_out` or `killed`."""
        return str(self.refresh()._data["status"])

    def logs(self, limit: int | None = None) -> LogLines:
        """The run's log lines, oldest first, each a `str` in the container runtime's format
        (`LogLine`); only the newest `limit` when given."""
        return self._client.run_logs(self.id(), limit)

    def output_notebook(self) -> Any:
        """The executed notebook of a notebook run: every cell with its outputs, as
        `nbformat.NotebookNode` (a dict without nbformat); while the run goes on, the copy so
        far. NotFoundError with the server's reason when there is none (the run of a script,
        or a notebook run that has not written it yet)."""
        return self._client.run_output(self.id())

    def wait(self, timeout: float | None = None) -> TaskRun:
        """Wait until the run has ended."""
        poll(lambda: self if self.status() in RUN_ENDED else None, timeout, f"run {self.id()}")
        return self

    def follow(self, out: TextIO | None = None) -> TaskRun:
        """Print the run's output as it is written, until the run ends; then the ended run."""
        write_lines(self._client.follow_logs(self.id()), out or sys.stdout)
        return self.refresh()

    def rerun(self, json_args: Mapping[str, Any] | None = None) -> TaskRun:
        """Run this run again, with the arguments it ran with or `json_args`; the new run.

        For a scheduled or continuous task, a manual run of the same task (the task keeps its
        own arguments); for a run-once task, the run of a new run-once task (`task_id()`)."""
        return rerun(self._client, self.id(), json_args)


def rerun(client: Any, run_id: str, json_args: Mapping[str, Any] | None = None) -> TaskRun:
    """`task/rerun` of a run given by id; the new run (waited for if not started yet)."""
    body = given({"run_id": run_id}, json=None if json_args is None else dict(json_args))
    answer = client._post("task/rerun", body)
    if answer["run_id"] is None:  # a new run-once task whose run has not started yet
        return Task(client, client._post("task/get_by_id", {"id": answer["id"]})).first_run()
    return TaskRun(
        client,
        client._post("task/get_run_details", {"task": answer["id"], "pod_id": answer["run_id"]}),
    )


class OrchestrationList(ResourceList[Orchestration]):
    """Orchestrations, displayed as a table."""

    columns = Orchestration.columns
    empty = "(no orchestrations)"


class TaskList(ResourceList[Task]):
    """Tasks, displayed as a table."""

    columns = Task.columns
    empty = "(no tasks)"


class TaskRunList(ResourceList[TaskRun]):
    """Task runs, newest first, displayed as a table."""

    columns = TaskRun.columns
    empty = "(no task runs)"
