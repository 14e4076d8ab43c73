"""The use cases of the orchestration API: upload, run, schedule, kill, list, read logs.

Knows nothing of HTTP: it takes plain values, returns records, and raises the errors of
`errors.py`. Every blocking step (SQLite, files, process start) runs off the event loop.
Run mechanics live in `runner.py`, task life cycles and timers in `tasks.py`.
"""

from __future__ import annotations

import asyncio
import gc
import getpass
import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from . import logfiles
from .archive import ArchiveLimits, extract_archive
from .background import Background
from .bundle_path import bundle_path, resolve_inside
from .cron import parse_cron, parse_timezone
from .datadir import DataDir
from .errors import InvalidRequest, Missing, WrongState
from .executors import Executor
from .lock import SchedulerLock
from .logfiles import LogWatcher
from .models import (
    Activity,
    ConcurrencyPolicy,
    Orchestration,
    OrchestrationStatus,
    RunStatus,
    RunType,
    Task,
    TaskQuery,
    TaskRun,
    TaskStatus,
    Workspace,
    new_id,
    now,
)
from .packaging import Packager
from .requirements import check_requirements, normalise_requirements
from .runner import Runner, RunSettings
from .store import Store
from .tasks import TaskManager, TaskSettings

log = logging.getLogger(__name__)
T = TypeVar("T")
STREAM_PAGE = 100  # tasks read, encoded and sent at a time by an unpaged listing


def default_owner() -> str:
    """The server's user: the JupyterHub user name, or the account the server runs as."""
    return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()


@dataclass
class ServiceConfig:
    """The settings the service needs (the app fills them from its traitlets)."""

    data_dir: Path
    archive_limits: ArchiveLimits = field(default_factory=ArchiveLimits)
    kill_grace: float = 10.0
    max_line: int = 16384
    callback_url: str = ""
    allow_requirement_options: bool = False
    owner: str = field(default_factory=default_owner)
    task_settings: TaskSettings = field(default_factory=TaskSettings)
    keep_runs: int = 100
    keep_days: float = 30.0
    retention_interval: float = 3600.0
    sync_interval: float = 2.0
    stop_runs_on_shutdown: bool = False
    run_niceness: int = 0
    freeze_startup_objects: bool = False  # gc.freeze() a second after start (OrchApp's docs)
    root_dir: Path | None = None  # the Jupyter root, for orchestrations made from its files


@dataclass
class TaskRequest:
    """What a client asks for when it creates a task (fields already type-checked)."""

    orch_id: str
    workspace_id: int
    args: dict[str, Any]
    name: str | None = None
    timeout: int | None = None
    schedule: str | None = None
    timezone: str | None = None
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.ALLOW
    starting_deadline_seconds: int | None = None
    keep_runs: int | None = None
    keep_days: float | None = None


class OrchService:
    """Orchestrations, tasks and runs of one data directory."""

    def __init__(
        self, config: ServiceConfig, store: Store, executor: Executor, packager: Packager
    ) -> None:
        self.config = config
        self.store = store
        self.executor = executor
        self.packager = packager
        self.data = DataDir(config.data_dir)
        self._locks: dict[str, asyncio.Lock] = {}
        settings = RunSettings(
            self.data,
            config.callback_url,
            config.kill_grace,
            config.max_line,
            config.run_niceness,
        )
        self.runner = Runner(settings, store, executor, self._lock, packager)
        self.tasks = TaskManager(store, self.runner, config.task_settings, self._lock)
        self.tasks.on_run_end = self._after_run
        self.follower = LogWatcher(
            self.data.run_log, self.runner.ended_event, self._running_elsewhere
        )
        self.scheduler_lock = SchedulerLock(self.data.scheduler_lock)
        self._background = Background("background work")
        self._spawn = self._background.spawn
        self._prune_pending: set[str] = set()  # tasks whose runs ended since the last pass
        self._prune_pass: asyncio.Future[Any] | None = None  # the pass scheduled, if any
        self._seen_version = -1
        self._started: asyncio.Future[None] | None = None

    # -- life cycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Create the data directory and open the database (blocking; at server start)."""
        self.data.create()
        self.store.open()

    async def ensure_started(self) -> None:
        """Start once: clear half-done work, then schedule if this server holds the lock."""
        if self._started is None:
            self._started = asyncio.ensure_future(self._start())
        await asyncio.shield(self._started)

    async def _start(self) -> None:
        await asyncio.to_thread(self._clean_scratch)
        await self.executor.start()
        self._spawn(self._every(self.config.sync_interval, self._sync))
        if self.scheduler_lock.try_acquire():
            await self._take_over()
        else:
            log.info(
                "jupyter_orch: the server with pid %s holds the scheduler of %s; this server "
                "serves the API and runs what it is asked to run, and takes over if that one stops",
                self.scheduler_lock.holder(),
                self.data.root,
            )
            self._spawn(self._wait_for_lock())
        if self.config.freeze_startup_objects:
            # A second later: after the other extensions' start, not before.
            asyncio.get_running_loop().call_later(1.0, _freeze_startup_objects)

    async def _take_over(self) -> None:
        """This server holds the scheduler lock: re-attach runs, resume work, plan timers."""
        await self.runner.reattach()
        for status in (OrchestrationStatus.PENDING_PACKAGING, OrchestrationStatus.PACKAGING):
            for orch in await self._db(self.store.list_orchestrations, (), status):
                self._spawn(self._package(orch))
        ready = await self._db(self.store.list_orchestrations, (), OrchestrationStatus.READY)
        for orch in ready:
            for task in await self._db(self.store.tasks_waiting_for, orch.id):
                self._spawn(self.tasks.begin(task.id))
        await self.tasks.take_scheduling()
        self._spawn(self.packager.collect_forever(self._env_keys_in_use))
        self._spawn(self._every(self.config.retention_interval, self._prune_all))

    async def _wait_for_lock(self) -> None:
        # Another process holds the lock: nothing here can signal its release, so look again.
        while not self.scheduler_lock.try_acquire():  # noqa: ASYNC110
            await asyncio.sleep(5.0)
        log.info("jupyter_orch: this server now holds the scheduler of %s", self.data.root)
        await self._take_over()

    async def _env_keys_in_use(self) -> set[str]:
        """Environments of the orchestrations behind active runs (never collected)."""
        keys = set()
        for task_id in set(self.runner.active.values()):
            task = await self._db(self.store.get_task, task_id, 0)
            orch = await self._db(self.store.get_orchestration, task.orch_id) if task else None
            if orch is not None and orch.env_key:
                keys.add(orch.env_key)
        return keys

    async def _sync(self) -> None:
        """Follow what another server of this data directory wrote: end the runs here of
        tasks it killed; the scheduler holder also adopts the runs and tasks it started."""
        version = await self._db(self.store.data_version)
        if version == self._seen_version:
            return  # nobody else wrote: nothing to adopt (our own writes are known already)
        self._seen_version = version
        active = sorted(set(self.runner.active.values()))
        for task_id in await self._db(self.store.killed_among, active):
            self.runner.kill(task_id)
        if self.tasks.scheduling:
            await self.runner.reattach()
            await self.tasks.sync()

    async def _every(self, seconds: float, work: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await work()
            except Exception:  # the next round tries again; one failure stops nothing
                log.exception("jupyter_orch: periodic work failed")

    def _clean_scratch(self) -> None:
        shutil.rmtree(self.data.tmp, ignore_errors=True)
        self.data.tmp.mkdir(parents=True, exist_ok=True)
        for leftover in self.data.unpacking_leftovers():
            shutil.rmtree(leftover, ignore_errors=True)
        self.packager.clean_incomplete()

    async def stop(self) -> None:
        """Stop timers and watchers; runs go on unless configured to stop with the server."""
        await self.tasks.stop()
        await self.packager.close()
        await self.runner.stop(kill_runs=self.config.stop_runs_on_shutdown)
        await self._background.stop()
        self.scheduler_lock.release()
        await asyncio.to_thread(self.store.close)

    def _lock(self, task_id: str) -> asyncio.Lock:
        """Serialises status changes of one task (kill vs a run ending)."""
        return self._locks.setdefault(task_id, asyncio.Lock())

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.store.call(fn, *args)

    # -- workspaces -------------------------------------------------------------------------

    async def create_workspace(self, name: str, user: str) -> Workspace:
        """A new workspace; 409 when the name is taken."""
        if not name.strip():
            raise InvalidRequest("name", "must not be empty")
        workspace = await self._db(self.store.create_workspace, name.strip(), user)
        if workspace is None:
            raise WrongState(f"a workspace named {name!r} already exists")
        return workspace

    async def list_workspaces(self) -> list[Workspace]:
        """Every workspace."""
        return await self._db(self.store.list_workspaces)

    async def get_workspace(self, workspace_id: int) -> Workspace:
        """One workspace, or Missing."""
        workspace = await self._db(self.store.get_workspace, workspace_id)
        if workspace is None:
            raise Missing("workspace", workspace_id)
        return workspace

    # -- orchestrations ---------------------------------------------------------------------

    async def upload(
        self,
        zip_path: Path,
        *,
        file_name: str,
        sha: str,
        size: int,
        workspace_id: int,
        name: str | None,
        owner: str,
    ) -> Orchestration:
        """Check and store an uploaded zip; packaging goes on in the background."""
        await self.get_workspace(workspace_id)
        orch_id = new_id()
        info, requirements = await asyncio.to_thread(self._unpack, zip_path, orch_id, sha)
        stamp = now()
        orch = Orchestration(
            id=orch_id,
            name=name or Path(file_name).stem or orch_id,
            file_name=file_name,
            file_size=size,
            sha=sha,
            status=(
                OrchestrationStatus.PENDING_PACKAGING
                if requirements is not None
                else OrchestrationStatus.READY
            ),
            owner_id=owner,
            workspace_id=workspace_id,
            entrypoint=info,
            requirements=requirements,
            image_path="" if requirements is not None else "server",
            created_at=stamp,
            updated_at=stamp,
        )
        try:
            await self._db(self.store.insert_orchestration, orch)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, self.data.orchestration(orch_id), True)
            raise
        if requirements is not None:
            self._spawn(self._package(orch))
        return orch

    async def create_from_path(
        self, relative: str, workspace_id: int, name: str | None, owner: str
    ) -> Orchestration:
        """An orchestration from a folder or a `.py` file under the Jupyter root."""
        await self.get_workspace(workspace_id)
        if self.config.root_dir is None:
            raise WrongState("this server has no Jupyter root to take files from")
        target = resolve_inside(self.config.root_dir, relative)
        fd, tmp = tempfile.mkstemp(prefix="bundle-", suffix=".zip", dir=self.data.tmp)
        os.close(fd)
        try:
            limits = self.config.archive_limits
            file_name = await asyncio.to_thread(bundle_path, target, Path(tmp), limits)
            sha, size = await asyncio.to_thread(_digest, Path(tmp))
            return await self.upload(
                Path(tmp),
                file_name=file_name,
                sha=sha,
                size=size,
                workspace_id=workspace_id,
                name=name or target.name,
                owner=owner,
            )
        finally:
            await asyncio.to_thread(Path(tmp).unlink, True)

    def _unpack(self, zip_path: Path, orch_id: str, sha: str) -> tuple[str, str | None]:
        """Validate, extract to a scratch folder, then move into place (all or nothing)."""
        scratch = self.data.unpacking(orch_id)
        info = extract_archive(zip_path, scratch, self.config.archive_limits)
        try:
            requirements = None
            if info.requirements is not None:
                requirements = (scratch / info.requirements).read_text("utf-8", "replace")
                check_requirements(requirements, self.config.allow_requirement_options)
            archive = self.data.archive(sha)
            if not archive.exists():
                shutil.copyfile(zip_path, archive.with_suffix(".part"))
                os.replace(archive.with_suffix(".part"), archive)
            os.replace(scratch, self.data.orchestration(orch_id))
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        return info.entrypoint, requirements

    async def _package(self, orch: Orchestration) -> None:
        """Build (or reuse) the orchestration's environment, then start waiting tasks."""
        orch.status = OrchestrationStatus.PACKAGING
        await self._db(self.store.update_orchestration, orch)
        result = await self.packager.prepare(normalise_requirements(orch.requirements or ""))
        build_log = self.data.build_log(orch.id)
        await asyncio.to_thread(build_log.write_text, result.log, "utf-8")
        orch.env_key, orch.build_seconds, orch.error = result.key, result.seconds, result.error
        if result.error is None:
            orch.status, orch.image_path = OrchestrationStatus.READY, f"env:{result.key}"
        else:
            orch.status = OrchestrationStatus.ERROR
        await self._db(self.store.update_orchestration, orch)
        for task in await self._db(self.store.tasks_waiting_for, orch.id):
            await self.tasks.begin(task.id)

    async def get_orchestration(self, orch_id: str) -> Orchestration:
        """One orchestration, or Missing."""
        orch = await self._db(self.store.get_orchestration, orch_id)
        if orch is None:
            raise Missing("orchestration", orch_id)
        return orch

    async def build_log(self, orch_id: str) -> str:
        """The installer's output for an orchestration's environment."""
        await self.get_orchestration(orch_id)
        return await asyncio.to_thread(_read_text, self.data.build_log(orch_id))

    async def list_orchestrations(self, workspace_id: int) -> list[Orchestration]:
        """The orchestrations of one workspace."""
        await self.get_workspace(workspace_id)
        return await self._db(self.store.list_orchestrations, [workspace_id])

    async def list_all(
        self,
        workspace_ids: list[int],
        run_statuses: list[RunStatus],
        killed: bool | None,
        time_range: tuple[datetime, datetime] | None,
    ) -> list[dict[str, Any]]:
        """Orchestrations with their tasks and workspace, filtered as the contract says."""
        workspaces = {w.id: w for w in await self.list_workspaces()}
        orchs = await self._db(self.store.list_orchestrations, workspace_ids)
        query = TaskQuery(workspace_ids, [o.id for o in orchs], None, killed, time_range)
        tasks = await self._db(self.store.list_tasks, query)
        if run_statuses:
            tasks = [t for t in tasks if t.last_runs and t.last_runs[0].status in run_statuses]
        result = []
        for orch in orchs:
            mine = [t.to_json() for t in tasks if t.orch_id == orch.id]
            if (killed is not None or run_statuses or time_range) and not mine:
                continue
            workspace = workspaces.get(orch.workspace_id)
            result.append(
                {
                    "orchestration": orch.to_json(),
                    "tasks": mine,
                    "workspace": {
                        "id": orch.workspace_id,
                        "name": workspace.name if workspace else None,
                    },
                }
            )
        return result

    async def archive_file(self, orch_id: str) -> tuple[Orchestration, Path]:
        """The stored zip of an orchestration, byte for byte as uploaded."""
        orch = await self.get_orchestration(orch_id)
        return orch, self.data.archive(orch.sha)

    async def delete_orchestrations(self, orch_ids: list[str], confirm: bool) -> dict[str, Any]:
        """Delete orchestrations with their tasks, runs and files; without confirm, a preview."""
        orchs = [await self.get_orchestration(orch_id) for orch_id in dict.fromkeys(orch_ids)]
        ids = [o.id for o in orchs]
        tasks = await self._db(self.store.list_tasks, TaskQuery(orch_ids=ids, run_limit=0))
        task_ids = [t.id for t in tasks]
        busy = sorted({t for t in self.runner.active.values() if t in task_ids})
        run_ids = await self._db(self.store.run_ids, task_ids)
        answer = {
            "orchestrations": ids,
            "tasks": task_ids,
            "task_runs": len(run_ids),
            "deleted": False,
        }
        if not confirm:
            return answer
        if busy:
            raise WrongState(f"tasks {', '.join(busy)} still have runs running; kill them first")
        await self._db(self.store.delete_orchestrations, ids)
        self.tasks.forget(task_ids)
        # An archive goes with its last orchestration (two uploads of one zip share it).
        unused = [
            sha
            for sha in dict.fromkeys(o.sha for o in orchs)
            if await self._db(self.store.count_sha_users, sha) == 0
        ]
        await asyncio.to_thread(self._remove_files, orchs, unused, run_ids)
        answer["deleted"] = True
        return answer

    def _remove_files(
        self, orchs: list[Orchestration], unused_shas: list[str], run_ids: list[str]
    ) -> None:
        for orch in orchs:
            shutil.rmtree(self.data.orchestration(orch.id), ignore_errors=True)
            self.data.build_log(orch.id).unlink(missing_ok=True)
        for sha in unused_shas:
            self.data.archive(sha).unlink(missing_ok=True)
        for run_id in run_ids:
            shutil.rmtree(self.data.run(run_id), ignore_errors=True)

    # -- tasks ------------------------------------------------------------------------------

    async def create_task(self, kind: RunType, request: TaskRequest, owner: str) -> Task:
        """A new task of any kind; it starts as soon as its orchestration is ready."""
        orch = await self.get_orchestration(request.orch_id)
        await self.get_workspace(request.workspace_id)
        if orch.workspace_id != request.workspace_id:
            raise InvalidRequest(
                "workspace_id",
                f"orchestration {orch.id} is in workspace {orch.workspace_id}",
            )
        if kind is RunType.SCHEDULED:
            parse_cron(request.schedule or "")
            parse_timezone(request.timezone)
        stamp = now()
        task = Task(
            id=new_id(),
            name=request.name,
            workspace_id=request.workspace_id,
            orch_id=orch.id,
            orch_sha=orch.sha,
            owner_id=owner,
            status=TaskStatus.PENDING,
            run_type=kind,
            input_data=request.args,
            timeout=request.timeout,
            schedule=" ".join((request.schedule or "").split()) or None,
            timezone=(request.timezone or "UTC") if kind is RunType.SCHEDULED else None,
            concurrency_policy=request.concurrency_policy,
            starting_deadline_seconds=request.starting_deadline_seconds,
            keep_runs=request.keep_runs,
            keep_days=request.keep_days,
            created_at=stamp,
            updated_at=stamp,
        )
        await self._db(self.store.insert_task, task)
        await self.tasks.created(task, orch)
        return task

    async def get_task(self, task_id: str, run_limit: int = 5) -> Task:
        """One task with its newest runs, or Missing."""
        task = await self._db(self.store.get_task, task_id, run_limit)
        if task is None:
            raise Missing("task", task_id)
        task.next_run_at = self.tasks.next_run_at(task)
        return task

    async def list_tasks(self, query: TaskQuery, after: str | None = None) -> list[Task]:
        """Tasks matching the query, newest first; the page after the task `after`, if given
        (an unknown one is a 404, not an empty page)."""
        if after is not None:
            start = await self.get_task(after, 0)
            query = replace(query, before=(start.created_at, start.id))
        return await self._read_tasks(query)

    async def _read_tasks(self, query: TaskQuery) -> list[Task]:
        tasks = await self._db(self.store.list_tasks, query)
        for task in tasks:
            task.next_run_at = self.tasks.next_run_at(task)
        return tasks

    async def stream_tasks(self, query: TaskQuery) -> AsyncIterator[list[Task]]:
        """Every task matching the query, newest first, `STREAM_PAGE` at a time: one listing
        of every task never holds the event loop or the database thread for long."""
        query = replace(query, limit=STREAM_PAGE)
        while True:
            tasks = await self._read_tasks(query)
            if tasks:
                yield tasks
            if len(tasks) < STREAM_PAGE:
                return
            query = replace(query, before=(tasks[-1].created_at, tasks[-1].id))

    async def task_ids_by_sha(self, sha: str) -> list[str]:
        """Ids of the tasks of every orchestration with this archive hash."""
        return await self._db(self.store.task_ids_by_sha, sha)

    async def kill_task(self, task_id: str) -> Task:
        """Stop a task: no new runs; active runs get SIGTERM, then SIGKILL after the grace."""
        return await self.tasks.kill(task_id)

    async def pause_task(self, task_id: str, pause: bool) -> Task:
        """Pause (no new runs) or resume a scheduled or continuous task."""
        task = await (self.tasks.pause(task_id) if pause else self.tasks.resume(task_id))
        task.next_run_at = self.tasks.next_run_at(task)
        return task

    async def run_now(self, task_id: str) -> TaskRun:
        """One immediate run of a scheduled task."""
        return await self.tasks.run_now(task_id)

    # -- runs -------------------------------------------------------------------------------

    async def activity(self, since: datetime | None, limit: int) -> Activity:
        """How many tasks have a run going; the newest `limit` failures (after `since`)."""
        return await self._db(self.store.activity, since, limit)

    async def list_task_runs(
        self,
        task_id: str,
        limit: int | None,
        status: RunStatus | None,
        time_range: tuple[datetime, datetime] | None,
        after: str | None = None,
    ) -> list[TaskRun]:
        """A task's runs, newest first; `limit` and `after` page through them."""
        await self.get_task(task_id, 0)
        if after is not None:
            await self.get_run(task_id, after)
        return await self._db(self.store.list_runs, task_id, limit, status, time_range, after)

    async def get_run(self, task_id: str, run_id: str) -> TaskRun:
        """One run of one task, or Missing."""
        run = await self._db(self.store.get_run, run_id)
        if run is None or run.task_id != task_id:
            raise Missing("task run", run_id)
        return run

    async def _known_run(self, run_id: str) -> TaskRun:
        run = await self._db(self.store.get_run, run_id)
        if run is None:
            raise Missing("task run", run_id)
        return run

    async def run_logs(self, run_id: str, lines: int | None) -> list[str]:
        """A run's log lines (the last `lines` when given)."""
        await self._known_run(run_id)
        return await asyncio.to_thread(logfiles.read_lines, self.data.run_log(run_id), lines)

    async def follow_logs(self, run_id: str, start: int) -> AsyncIterator[tuple[int, str]]:
        """(index, line) of a run's log from line `start`, live until the run ends."""
        await self._known_run(run_id)
        return self.follower.follow(run_id, start)

    async def _running_elsewhere(self, run_id: str) -> bool:
        """Whether a run this server does not follow is still running (another server of the
        data directory started it): no exit record yet, and its row says running."""
        if self.data.run_exit(run_id).exists():
            return False
        run = await self._db(self.store.get_run, run_id)
        return run is not None and run.status is RunStatus.RUNNING

    async def run_status(self, run_id: str) -> RunStatus:
        """A run's current status."""
        return (await self._known_run(run_id)).status

    def run_for_token(self, token: str) -> str | None:
        """The active run a run-scoped token belongs to, if any."""
        return self.runner.run_for_token(token)

    # -- retention --------------------------------------------------------------------------

    #: Seconds from the first run end that makes a task pending to the pass over every
    #: pending task; runs one pass removes of one task, and in all; tasks per store call when
    #: every task is looked at (hourly).
    prune_delay = 1.0
    prune_task_limit = 500
    prune_pass_limit = 2000
    prune_chunk = 500

    def _after_run(self, run: TaskRun) -> None:
        self._prune_later([run.task_id])

    def _prune_later(self, task_ids: list[str]) -> None:
        """Add tasks to the pending set; schedule a pass unless one is scheduled already."""
        self._prune_pending.update(task_ids)
        if self._prune_pending and self._prune_pass is None:
            self._prune_pass = self._spawn(self._prune_soon())

    async def _prune_wait(self) -> None:
        """The pause between the first run end that makes a task pending and its pass."""
        await asyncio.sleep(self.prune_delay)

    async def _prune_soon(self) -> None:
        try:
            await self._prune_wait()  # one pass for a burst of runs ending together
        finally:
            self._prune_pass = None
        task_ids, self._prune_pending = sorted(self._prune_pending), set()
        await self._prune_tasks(task_ids)

    async def _prune_all(self) -> None:
        task_ids = await self._db(self.store.task_ids)
        step = self.prune_chunk
        for start in range(0, len(task_ids), step):
            await self._prune_tasks(task_ids[start : start + step])

    async def _prune_tasks(
        self, task_ids: list[str], limit: int | None = None, total: int | None = None
    ) -> list[str]:
        """One retention pass over some tasks: one store call, then the runs' folders go.
        Tasks left with runs to remove (a limit was hit) are pruned again by a later pass."""
        pruned = await self._db(
            self.store.prune_due,
            task_ids,
            self.config.keep_runs,
            self.config.keep_days,
            now(),
            self.prune_task_limit if limit is None else limit,
            self.prune_pass_limit if total is None else total,
        )
        if pruned.run_ids:
            await asyncio.to_thread(self._remove_runs, pruned.run_ids)
        if pruned.unfinished:
            self._prune_later(pruned.unfinished)
        return pruned.run_ids

    async def prune(self, task_id: str, limit: int = 500) -> list[str]:
        """Apply retention to one task now: keep its newest runs, and runs younger than the
        limit; the ids of the runs removed."""
        return await self._prune_tasks([task_id], limit, limit)

    def _remove_runs(self, run_ids: list[str]) -> None:
        for run_id in run_ids:
            shutil.rmtree(self.data.run(run_id), ignore_errors=True)


def _digest(path: Path) -> tuple[str, int]:
    """SHA-256 and size of a file, read in chunks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


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
