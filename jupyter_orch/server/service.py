"""The use cases of the orchestration API, as the handlers call them: workspaces,
orchestrations, tasks, runs and their logs.

Knows nothing of HTTP: it takes plain values, returns records, and raises the errors of
`errors.py`. Every blocking step (SQLite, files, process start) runs off the event loop. The
work is done by one component per concept, built here and started and stopped as one:
`intake.py` (uploads, packaging), `deletion.py`, `tasks.py` with its `runner.py` (task life cycles,
runs), `retention.py`, `peers.py` (the servers sharing the data directory), over `store.py` and
`datadir.py`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Generator
from contextlib import AsyncExitStack
from dataclasses import fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from . import logfiles, task_edits
from .access import Scope
from .channel import RunChannel
from .connections import Connections
from .cron import parse_cron, parse_timezone, upcoming
from .datadir import DataDir
from .deletion import Deletion
from .errors import InvalidRequest, Missing, NoOutput, WrongState
from .executors import Executor
from .executors.registry import Executors
from .identity import Caller, run_caller
from .intake import Intake, Upload
from .logfiles import LogWatcher
from .models import (
    Activity,
    Orchestration,
    OrchestrationStatus,
    RunStatus,
    RunType,
    Task,
    TaskOptions,
    TaskQuery,
    TaskRun,
    TaskStatus,
    Workspace,
    new_id,
    now,
)
from .notebook import is_notebook
from .packaging import Packager
from .peers import Peers
from .retention import Retention
from .runner import RunSettings
from .service_config import ServiceConfig, TaskRequest
from .store import Store
from .tasks import TaskManager
from .workspaces import Workspaces

log = logging.getLogger(__name__)
STREAM_PAGE = 100  # tasks read, encoded and sent at a time by an unpaged listing


class OrchService:
    """Orchestrations, tasks and runs of one data directory."""

    def __init__(
        self,
        config: ServiceConfig,
        store: Store,
        executor: Executor | Executors,
        packager: Packager,
    ) -> None:
        self.config = config
        self.store = store
        self.executor = executor
        self.packager = packager
        self.data = DataDir(config.data_dir)
        self.workspaces = Workspaces(store, config.multi_user)
        self.retention = Retention(store, self.data, config.keep_runs, config.keep_days)
        run_settings = RunSettings(
            self.data,
            config.callback_url,
            config.kill_grace,
            config.max_line,
            config.run_niceness,
            config.run_as_owner,
            config.max_log_bytes,
        )
        self.tasks = TaskManager(
            store,
            executor,
            run_settings,
            config.task_settings,
            packager=packager,
            listener=self.retention,
        )
        self.runner = self.tasks.runner
        self.channel = RunChannel(store, self.runner.executors)
        self.intake = Intake(
            self.data,
            store,
            packager,
            self.tasks,
            limits=config.archive_limits,
            allow_requirement_options=config.allow_requirement_options,
            root_dir=config.root_dir,
        )
        self.deletion = Deletion(self.data, store, self.tasks, config.kill_grace)
        self.peers = Peers(
            self.data,
            store,
            self.tasks,
            self.intake,
            self.retention,
            packager,
            sync_interval=config.sync_interval,
            retention_interval=config.retention_interval,
        )
        self.follower = LogWatcher(
            self.data.run_log, self.runner.ended_event, self._running_elsewhere
        )
        self.connections = Connections(store)
        self._stack = AsyncExitStack()  # what `stop` undoes, newest first
        self._started: asyncio.Future[None] | None = None

    # -- life cycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Create the data directory and open the database (blocking; at server start)."""
        self.data.create()
        self.store.open()
        self._stack.push_async_callback(asyncio.to_thread, self.store.close)

    async def ensure_started(self) -> None:
        """Start once: clear half-done work, then schedule if this server holds the lock."""
        if self._started is None:
            self._started = asyncio.ensure_future(self._start())
        await asyncio.shield(self._started)

    async def _start(self) -> None:
        # Each part registers its own cleanup as it starts; `stop` runs them newest first:
        # timers, packaging, runs (ended only if configured), background work, the scheduler
        # lock, the database.
        stack = self._stack
        await self.peers.start(stack)
        await self.retention.start(stack)
        await self.intake.start(stack)
        await self.runner.start(stack, end_runs=self.config.stop_runs_on_shutdown)
        stack.push_async_callback(self.packager.close)
        await self.tasks.start(stack)
        await self.peers.join()
        if self.config.freeze_startup_objects:
            # A second later: after the other extensions' start, not before.
            asyncio.get_running_loop().call_later(1.0, _freeze_startup_objects)

    async def stop(self) -> None:
        """Stop timers and watchers; runs go on unless configured to stop with the server."""
        await self._stack.aclose()

    # -- callers and workspaces -------------------------------------------------------------

    async def scope(self, caller: Caller) -> Scope:
        """What a caller sees and acts on (`access.py`)."""
        return await self.workspaces.scope(caller)

    async def caller_for_run(self, run_id: str) -> Caller | None:
        """Who a run's token acts for: the owner of the run's task (None if it is gone)."""
        run = await self.store.call(self.store.get_run, run_id)
        task = await self.store.call(self.store.get_task, run.task_id, 0) if run else None
        if task is None:
            return None
        return run_caller(task.owner_id, run_id, multi_user=self.config.multi_user)

    async def get_workspace(self, scope: Scope, workspace_id: int) -> Workspace:
        """One workspace the caller sees, or Missing."""
        return await self.workspaces.get(scope, workspace_id)

    async def run_workspace(self, scope: Scope, run_id: str) -> int:
        """The workspace of a run's task: what the run's token may read connections of."""
        run = await self._known_run(scope, run_id)
        return (await self.get_task(scope, run.task_id, 0)).workspace_id

    # -- orchestrations ---------------------------------------------------------------------

    async def upload(self, scope: Scope, upload: Upload) -> Orchestration:
        """Check and store an uploaded zip (the caller's, in a workspace they see); packaging
        goes on in the background."""
        workspace = await self.get_workspace(scope, upload.workspace_id)
        return await self.intake.upload(replace(upload, workspace_id=workspace.id))

    async def create_from_path(
        self, scope: Scope, relative: str, workspace_id: int, name: str | None
    ) -> Orchestration:
        """An orchestration from a folder or a `.py` file under the Jupyter root."""
        workspace = await self.get_workspace(scope, workspace_id)
        return await self.intake.create_from_path(relative, workspace.id, name, scope.user)

    async def get_orchestration(self, scope: Scope, orch_id: str) -> Orchestration:
        """One orchestration the caller sees, or Missing."""
        orch = await self.store.call(self.store.get_orchestration, orch_id)
        if orch is None:
            raise Missing("orchestration", orch_id)
        scope.check("orchestration", orch_id, orch.owner_id, orch.workspace_id)
        return orch

    async def build_log(self, scope: Scope, orch_id: str) -> str:
        """The installer's output for an orchestration's environment."""
        await self.get_orchestration(scope, orch_id)
        return await asyncio.to_thread(_read_text, self.data.build_log(orch_id))

    async def list_orchestrations(self, scope: Scope, workspace_id: int) -> list[Orchestration]:
        """The orchestrations of one workspace the caller sees."""
        workspace = await self.get_workspace(scope, workspace_id)
        return await self.store.call(self.store.list_orchestrations, [workspace.id])

    async def list_all(
        self,
        scope: Scope,
        workspace_ids: list[int],
        run_statuses: list[RunStatus],
        killed: bool | None,
        time_range: tuple[datetime, datetime] | None,
    ) -> list[dict[str, Any]]:
        """Orchestrations with their tasks and workspace, filtered as the contract says, of
        what the caller sees."""
        names = await self.workspaces.names(scope)
        workspace_ids = scope.workspace_ids(workspace_ids)
        orchs = await self.store.call(
            self.store.list_orchestrations, workspace_ids, None, scope.visible
        )
        query = TaskQuery(workspace_ids, [o.id for o in orchs], None, killed, time_range)
        query.visible = scope.visible
        tasks = await self.store.call(self.store.list_tasks, query) if orchs else []
        if run_statuses:
            tasks = [t for t in tasks if t.last_runs and t.last_runs[0].status in run_statuses]
        result = []
        for orch in orchs:
            mine = [t.to_json() for t in tasks if t.orch_id == orch.id]
            if (killed is not None or run_statuses or time_range) and not mine:
                continue
            result.append(
                {
                    "orchestration": orch.to_json(),
                    "tasks": mine,
                    "workspace": {"id": orch.workspace_id, "name": names.get(orch.workspace_id)},
                }
            )
        return result

    async def archive_file(self, scope: Scope, orch_id: str) -> tuple[Orchestration, Path]:
        """The stored zip of an orchestration, byte for byte as uploaded."""
        orch = await self.get_orchestration(scope, orch_id)
        return orch, self.data.archive(orch.sha)

    async def delete_orchestrations(
        self, scope: Scope, orch_ids: list[str], confirm: bool
    ) -> dict[str, Any]:
        """Delete orchestrations with their tasks, runs and files; without confirm, a preview."""
        unique = list(dict.fromkeys(orch_ids))
        orchs = [await self.get_orchestration(scope, orch_id) for orch_id in unique]
        if scope.visible is not None:
            every = TaskQuery(orch_ids=unique, run_limit=0)
            seen = replace(every, visible=scope.visible)
            counts = [len(await self.store.call(self.store.list_tasks, q)) for q in (every, seen)]
            if counts[0] != counts[1]:  # own orchestrations, in a workspace one has left
                raise WrongState(
                    "these orchestrations have tasks in workspaces you are not a member of: "
                    "a member of those workspaces can delete them"
                )
        return await self.deletion.delete_orchestrations(orchs, confirm)

    # -- tasks ------------------------------------------------------------------------------

    async def create_task(self, scope: Scope, kind: RunType, request: TaskRequest) -> Task:
        """A new task of any kind, the caller's, in a workspace they see; it starts as soon as
        its orchestration is ready."""
        orch = await self.get_orchestration(scope, request.orch_id)
        workspace = await self.get_workspace(scope, request.workspace_id)
        request = replace(request, workspace_id=workspace.id)
        if orch.workspace_id != request.workspace_id:
            raise InvalidRequest(
                "workspace_id",
                f"orchestration {orch.id} is in workspace {orch.workspace_id}",
            )
        if orch.status is OrchestrationStatus.ERROR:
            raise WrongState(f"orchestration {orch.id} failed packaging: {orch.error}")
        if kind is RunType.SCHEDULED:
            parse_cron(request.schedule or "")
            parse_timezone(request.timezone)
        executor = await self.runner.executors.check(request.executor)
        options = {option.name: getattr(request, option.name) for option in fields(TaskOptions)}
        options.update(
            schedule=" ".join((request.schedule or "").split()) or None,
            timezone=(request.timezone or "UTC") if kind is RunType.SCHEDULED else None,
            executor=executor,
        )
        stamp = now()
        task = Task(
            id=new_id(),
            name=request.name,
            workspace_id=request.workspace_id,
            orch_id=orch.id,
            orch_sha=orch.sha,
            owner_id=scope.user,
            status=TaskStatus.PENDING,
            run_type=kind,
            input_data=request.args,
            created_at=stamp,
            updated_at=stamp,
            **options,
        )
        await self.store.call(self.store.insert_task, task)
        await self.tasks.created(task, orch)
        return task

    async def get_task(self, scope: Scope, task_id: str, run_limit: int = 5) -> Task:
        """One task the caller sees, with its newest runs, or Missing."""
        task = await self.store.call(self.store.get_task, task_id, run_limit)
        if task is None:
            raise Missing("task", task_id)
        scope.check("task", task_id, task.owner_id, task.workspace_id)
        return self._derive(task)

    def _derive(self, task: Task) -> Task:
        """Fill what a task's answer shows but is not stored: when it fires next."""
        task.next_run_at = self.tasks.next_run_at(task)
        task.next_fires = self.tasks.next_fires(task, task.next_run_at)
        return task

    async def list_tasks(
        self, scope: Scope, query: TaskQuery, after: str | None = None
    ) -> list[Task]:
        """Tasks the caller sees matching the query, newest first; the page after the task
        `after`, if given (an unknown one is a 404, not an empty page)."""
        query = self._scoped(scope, query)
        if after is not None:
            start = await self.get_task(scope, after, 0)
            query = replace(query, before=(start.created_at, start.id))
        return await self._read_tasks(query)

    @staticmethod
    def _scoped(scope: Scope, query: TaskQuery) -> TaskQuery:
        return replace(
            query, workspace_ids=scope.workspace_ids(query.workspace_ids), visible=scope.visible
        )

    async def _read_tasks(self, query: TaskQuery) -> list[Task]:
        tasks = await self.store.call(self.store.list_tasks, query)
        return [self._derive(task) for task in tasks]

    async def stream_tasks(self, scope: Scope, query: TaskQuery) -> AsyncIterator[list[Task]]:
        """Every task the caller sees matching the query, newest first, `STREAM_PAGE` at a
        time: one listing of every task never holds the event loop or the database thread
        for long."""
        query = replace(self._scoped(scope, query), limit=STREAM_PAGE)
        while True:
            tasks = await self._read_tasks(query)
            if tasks:
                yield tasks
            if len(tasks) < STREAM_PAGE:
                return
            query = replace(query, before=(tasks[-1].created_at, tasks[-1].id))

    async def task_ids_by_sha(self, scope: Scope, sha: str) -> list[str]:
        """Ids of the tasks the caller sees of every orchestration with this archive hash."""
        return await self.store.call(self.store.task_ids_by_sha, sha, scope.visible)

    async def kill_task(self, scope: Scope, task_id: str) -> Task:
        """Stop a task: no new runs; active runs get SIGTERM, then SIGKILL after the grace.
        The answer carries the task's newest runs, as `get_task` does."""
        await self.get_task(scope, task_id, 0)
        task = await self.tasks.kill(task_id)
        task.last_runs = (await self.get_task(scope, task_id)).last_runs
        return task

    async def delete_tasks(
        self, scope: Scope, task_ids: list[str], confirm: bool
    ) -> dict[str, Any]:
        """Delete tasks the caller sees with their runs and files (runs going are killed
        first); without confirm, a preview."""
        tasks = [await self.get_task(scope, task_id, 0) for task_id in dict.fromkeys(task_ids)]
        return await self.deletion.delete_tasks(tasks, confirm)

    async def pause_task(self, scope: Scope, task_id: str, pause: bool) -> Task:
        """Pause (no new runs) or resume a scheduled or continuous task."""
        await self.get_task(scope, task_id, 0)
        task = await (self.tasks.pause(task_id) if pause else self.tasks.resume(task_id))
        return self._derive(task)

    async def run_now(self, scope: Scope, task_id: str) -> TaskRun:
        """One immediate run of a scheduled task."""
        await self.get_task(scope, task_id, 0)
        return await self.tasks.run_now(task_id)

    async def update_task(
        self, scope: Scope, task_id: str, edit: dict[str, Any], by: str, run_limit: int = 5
    ) -> Task:
        """Change a task the caller sees (recorded in its history); the task as changed."""
        orch = None
        task = await self.get_task(scope, task_id, 0)
        if "orch_id" in edit:
            orch = await self.get_orchestration(scope, edit["orch_id"])
            if orch.workspace_id != task.workspace_id:
                raise InvalidRequest(
                    "orch_id", f"orchestration {orch.id} is not in the task's workspace"
                )
            if orch.status is not OrchestrationStatus.READY:
                raise InvalidRequest(
                    "orch_id", f"orchestration {orch.id} is {orch.status.value}, not ready"
                )
        await self.tasks.update(task_id, edit, by, orch)
        return await self.get_task(scope, task_id, run_limit)

    async def task_history(self, scope: Scope, task_id: str) -> list[task_edits.Change]:
        """A task's creation and changes, oldest first."""
        task = await self.get_task(scope, task_id, 0)
        recorded = await self.store.query(task_edits.edits, task_id)
        return task_edits.history(task, recorded)

    async def rerun(
        self, scope: Scope, run_id: str, args: dict[str, Any] | None
    ) -> tuple[str, str | None]:
        """Run a run again, with its own arguments or `args`: a manual run of its task, or
        for a run-once task a new run-once task. The (task id, run id or None) now going."""
        run = await self._known_run(scope, run_id)
        task = await self.get_task(scope, run.task_id, 0)
        if args is None:  # a run recorded before runs kept their own ran with its task's
            args = task.input_data if run.input_data is None else run.input_data
        if task.run_type is not RunType.ONCE:
            new_run = await self.tasks.run_now(task.id, args, rerun=True)
            return task.id, new_run.id
        request = TaskRequest(
            orch_id=task.orch_id,
            workspace_id=task.workspace_id,
            args=args,
            name=task.name,
            timeout=task.timeout,
            keep_runs=task.keep_runs,
            keep_days=task.keep_days,
        )
        again = await self.create_task(scope, RunType.ONCE, request)
        runs = await self.store.call(self.store.list_runs, again.id, 1)
        return again.id, runs[0].id if runs else None

    def preview_schedule(
        self, schedule: str, timezone: str | None, count: int
    ) -> tuple[list[datetime], str]:
        """The next `count` instants of a schedule in a zone, and the schedule in words."""
        cron = parse_cron(schedule)
        zone = parse_timezone(timezone)
        return upcoming(cron, zone, self.tasks.clock(), count), cron.describe()

    # -- runs -------------------------------------------------------------------------------

    async def activity(self, scope: Scope, since: datetime | None, limit: int) -> Activity:
        """How many of the tasks the caller sees have a run going; the newest `limit` of
        their failures (after `since`)."""
        return await self.store.call(self.store.activity, since, limit, scope.visible)

    async def list_task_runs(
        self,
        scope: Scope,
        task_id: str,
        limit: int | None,
        status: RunStatus | None,
        time_range: tuple[datetime, datetime] | None,
        after: str | None = None,
    ) -> list[TaskRun]:
        """A task's runs, newest first; `limit` and `after` page through them."""
        await self.get_task(scope, task_id, 0)
        if after is not None:
            await self.get_run(scope, task_id, after)
        return await self.store.call(
            self.store.list_runs, task_id, limit, status, time_range, after
        )

    async def get_run(self, scope: Scope, task_id: str, run_id: str) -> TaskRun:
        """One run of one task the caller sees, or Missing."""
        run = await self.store.call(self.store.get_run, run_id)
        if run is None or run.task_id != task_id:
            raise Missing("task run", run_id)
        await self._run_task(scope, run)
        return run

    async def _known_run(self, scope: Scope, run_id: str) -> TaskRun:
        run = await self.store.call(self.store.get_run, run_id)
        if run is None:
            raise Missing("task run", run_id)
        await self._run_task(scope, run)
        return run

    async def _run_task(self, scope: Scope, run: TaskRun) -> None:
        """Missing unless the caller sees the run's task (a run is its task's owner's)."""
        if scope.visible is None:
            return
        task = await self.store.call(self.store.get_task, run.task_id, 0)
        if task is None or not scope.sees(task.owner_id, task.workspace_id):
            raise Missing("task run", run.id)

    async def run_logs(
        self, scope: Scope, run_id: str, lines: int | None
    ) -> AsyncIterator[list[str]]:
        """A run's log lines (the last `lines` when given), a piece at a time: the memory
        they take is a piece's, whatever the log's size."""
        await self._known_run(scope, run_id)
        return _in_thread(logfiles.read_lines(self.data.run_log(run_id), lines))

    async def follow_logs(
        self, scope: Scope, run_id: str, start: int
    ) -> AsyncIterator[tuple[int, str]]:
        """(index, line) of a run's log from line `start`, live until the run ends."""
        await self._known_run(scope, run_id)
        return self.follower.follow(run_id, start)

    async def open_run_output(self, scope: Scope, run_id: str) -> BinaryIO:
        """A notebook run's executed copy, opened (the copy so far while the run goes on);
        NoOutput saying why when there is none."""
        run = await self._known_run(scope, run_id)
        try:
            # Written by renaming a complete file into place: an open handle reads one whole.
            return await asyncio.to_thread(self.data.run_output(run_id).open, "rb")
        except FileNotFoundError:
            raise NoOutput(await self._no_output_reason(run)) from None

    async def _no_output_reason(self, run: TaskRun) -> str:
        task = await self.store.call(self.store.get_task, run.task_id, 0)
        orch = None
        if task is not None:
            orch = await self.store.call(self.store.get_orchestration, task.orch_id)
        if orch is not None and not is_notebook(orch.entrypoint):
            return f"run {run.id} ran a script ({orch.entrypoint}): it has no notebook output"
        if run.active:
            return f"run {run.id} has not written its notebook yet (it is starting)"
        return f"run {run.id} ended ({run.status.value}) without writing its notebook: see its log"

    async def _running_elsewhere(self, run_id: str) -> bool:
        """Whether a run this server does not follow is still running (another server of the
        data directory started it): no exit record yet, and its row says running."""
        if self.data.run_exit(run_id).exists():
            return False
        run = await self.store.call(self.store.get_run, run_id)
        return run is not None and run.status is RunStatus.RUNNING

    async def run_status(self, scope: Scope, run_id: str) -> RunStatus:
        """A run's current status."""
        return (await self._known_run(scope, run_id)).status

    def run_for_token(self, token: str) -> str | None:
        """The active run a run-scoped token belongs to, if any."""
        return self.runner.run_for_token(token)

    # -- retention --------------------------------------------------------------------------

    async def prune(self, task_id: str, limit: int = 500) -> list[str]:
        """Apply retention to one task now: keep its newest runs, and runs younger than the
        limit; the ids of the runs removed."""
        return await self.retention.prune_tasks([task_id], limit, limit)


async def _in_thread(pieces: Generator[list[str], None, None]) -> AsyncIterator[list[str]]:
    """The pieces of a blocking generator, each read in a worker thread."""
    try:
        while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
            yield piece
    finally:
        await asyncio.to_thread(pieces.close)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def _freeze_startup_objects() -> None:
    """gc.freeze() what exists now. The young generations are collected first (a few ms);
    not the old one, whose full collection is the very stall this avoids (its start-up
    garbage, if any, stays: a one-time cost in memory, not time)."""
    started = time.perf_counter()
    gc.collect(1)
    gc.freeze()
    log.debug(
        "jupyter_orch: %d start-up objects frozen in %.0f ms",
        gc.get_freeze_count(),
        (time.perf_counter() - started) * 1000,
    )
