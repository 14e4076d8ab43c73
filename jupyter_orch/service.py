"""The use cases of the orchestration API: upload, run, kill, list, read logs.

Knows nothing of HTTP: it takes plain values, returns records, and raises the errors of
`errors.py`. Every blocking step (SQLite, files, process start) runs off the event loop.
"""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import json
import logging
import os
import secrets
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from . import logs, runtime
from .archive import ArchiveLimits, extract_archive
from .errors import Conflict, InvalidRequest, NotFound
from .executors import Executor, ExitRecord, RunSpec
from .executors.local import append_note
from .models import (
    TASK_STATUS_FOR_RUN,
    Orchestration,
    OrchestrationStatus,
    RunStatus,
    RunType,
    Task,
    TaskRun,
    TaskStatus,
    Workspace,
    new_id,
    now,
)
from .packaging import Packager, check_requirements, normalise_requirements
from .store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Variables of the server's own that a run must not inherit (it gets a token of its own).
SECRET_VARS = ("JUPYTER_TOKEN", "JPY_API_TOKEN", "JUPYTERHUB_API_TOKEN", "JPY_COOKIE_SECRET")


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


def hash_token(token: str) -> str:
    """What is stored of a run's token: its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


class OrchService:
    """Orchestrations, tasks and runs of one data directory."""

    def __init__(
        self, config: ServiceConfig, store: Store, executor: Executor, packager: Packager
    ) -> None:
        self.config = config
        self.store = store
        self.executor = executor
        self.packager = packager
        self._active: dict[str, str] = {}  # run id -> task id
        self._tokens: dict[str, str] = {}  # token hash -> run id
        self._locks: dict[str, asyncio.Lock] = {}
        self._background: set[asyncio.Future[Any]] = set()
        self._started: asyncio.Future[None] | None = None

    # -- paths ------------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        """The root of everything this service writes."""
        return self.config.data_dir

    def archive_path(self, sha: str) -> Path:
        """Where an uploaded zip is kept, by content."""
        return self.data_dir / "archives" / f"{sha}.zip"

    def orch_dir(self, orch_id: str) -> Path:
        """The extracted files of an orchestration."""
        return self.data_dir / "orchestrations" / orch_id

    def run_dir(self, run_id: str) -> Path:
        """A run's log, records and working directory."""
        return self.data_dir / "runs" / run_id

    def tmp_dir(self) -> Path:
        """Scratch space on the data directory's file system (renames stay atomic)."""
        return self.data_dir / "tmp"

    # -- life cycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Create the data directory and open the database (blocking; at server start)."""
        for sub in ("archives", "orchestrations", "runs", "envs", "tmp"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        self.store.open()

    async def ensure_started(self) -> None:
        """Start once: clear half-done work, re-attach runs, resume packaging."""
        if self._started is None:
            self._started = asyncio.ensure_future(self._start())
        await asyncio.shield(self._started)

    async def _start(self) -> None:
        await asyncio.to_thread(self._clean_scratch)
        await self.executor.start()
        for run, token_hash in await self.store.call(self.store.active_runs):
            if token_hash:
                self._tokens[token_hash] = run.id
            self._active[run.id] = run.task_id
            future = await self.executor.reattach(run.id, self.run_dir(run.id))
            self._spawn(self._await_end(run, future))
        for status in (OrchestrationStatus.PENDING_PACKAGING, OrchestrationStatus.PACKAGING):
            for orch in await self.store.call(self.store.list_orchestrations, (), status):
                self._spawn(self._package(orch))
        for orch in await self.store.call(
            self.store.list_orchestrations, (), OrchestrationStatus.READY
        ):
            for task in await self.store.call(self.store.tasks_waiting_for, orch.id):
                self._spawn(self._start_pending(task.id))

    def _clean_scratch(self) -> None:
        shutil.rmtree(self.tmp_dir(), ignore_errors=True)
        self.tmp_dir().mkdir(parents=True, exist_ok=True)
        for leftover in (self.data_dir / "orchestrations").glob(".tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        self.packager.clean_incomplete()

    async def stop(self) -> None:
        """Stop watching runs (they go on) and close the database."""
        await self.executor.stop()
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await asyncio.to_thread(self.store.close)

    def _spawn(self, coro: Awaitable[T]) -> None:
        """Run a coroutine in the background, keeping a reference and logging its failure."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Future[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("jupyter_orch background work failed", exc_info=task.exception())

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
            raise Conflict(f"a workspace named {name!r} already exists")
        return workspace

    async def list_workspaces(self) -> list[Workspace]:
        """Every workspace."""
        return await self._db(self.store.list_workspaces)

    async def get_workspace(self, workspace_id: int) -> Workspace:
        """One workspace, or NotFound."""
        workspace = await self._db(self.store.get_workspace, workspace_id)
        if workspace is None:
            raise NotFound("workspace", workspace_id)
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
            await asyncio.to_thread(shutil.rmtree, self.orch_dir(orch_id), True)
            raise
        if requirements is not None:
            self._spawn(self._package(orch))
        return orch

    def _unpack(self, zip_path: Path, orch_id: str, sha: str) -> tuple[str, str | None]:
        """Validate, extract to a scratch folder, then move into place (all or nothing)."""
        scratch = self.data_dir / "orchestrations" / f".tmp-{orch_id}"
        info = extract_archive(zip_path, scratch, self.config.archive_limits)
        try:
            requirements = None
            if info.requirements is not None:
                requirements = (scratch / info.requirements).read_text("utf-8", "replace")
                check_requirements(requirements, self.config.allow_requirement_options)
            archive = self.archive_path(sha)
            if not archive.exists():
                shutil.copyfile(zip_path, archive.with_suffix(".part"))
                os.replace(archive.with_suffix(".part"), archive)
            os.replace(scratch, self.orch_dir(orch_id))
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        return info.entrypoint, requirements

    async def _package(self, orch: Orchestration) -> None:
        """Build (or reuse) the orchestration's environment, then start waiting tasks."""
        orch.status = OrchestrationStatus.PACKAGING
        await self._db(self.store.update_orchestration, orch)
        result = await self.packager.prepare(normalise_requirements(orch.requirements or ""))
        build_log = self.data_dir / "envs" / f"{orch.id}.build.log"
        await asyncio.to_thread(build_log.write_text, result.log, "utf-8")
        orch.env_key, orch.build_seconds, orch.error = result.key, result.seconds, result.error
        if result.error is None:
            orch.status, orch.image_path = OrchestrationStatus.READY, f"env:{result.key}"
        else:
            orch.status = OrchestrationStatus.ERROR
        await self._db(self.store.update_orchestration, orch)
        for task in await self._db(self.store.tasks_waiting_for, orch.id):
            await self._start_pending(task.id)

    async def get_orchestration(self, orch_id: str) -> Orchestration:
        """One orchestration, or NotFound."""
        orch = await self._db(self.store.get_orchestration, orch_id)
        if orch is None:
            raise NotFound("orchestration", orch_id)
        return orch

    async def build_log(self, orch_id: str) -> str:
        """The installer's output for an orchestration's environment."""
        await self.get_orchestration(orch_id)
        path = self.data_dir / "envs" / f"{orch_id}.build.log"
        return await asyncio.to_thread(_read_text, path)

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
        tasks = await self._db(
            self.store.list_tasks, workspace_ids, [o.id for o in orchs], None, killed, time_range
        )
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
        return orch, self.archive_path(orch.sha)

    async def delete_orchestrations(self, orch_ids: list[str], confirm: bool) -> dict[str, Any]:
        """Delete orchestrations with their tasks, runs and files; without confirm, a preview."""
        orchs = [await self.get_orchestration(orch_id) for orch_id in dict.fromkeys(orch_ids)]
        ids = [o.id for o in orchs]
        tasks = await self._db(self.store.list_tasks, (), ids, None, None, None, 0)
        task_ids = [t.id for t in tasks]
        busy = sorted({t for t in self._active.values() if t in task_ids})
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
            raise Conflict(f"tasks {', '.join(busy)} still have runs running; kill them first")
        await self._db(self.store.delete_orchestrations, ids)
        await asyncio.to_thread(self._remove_files, orchs, run_ids)
        answer["deleted"] = True
        return answer

    def _remove_files(self, orchs: list[Orchestration], run_ids: list[str]) -> None:
        for orch in orchs:
            shutil.rmtree(self.orch_dir(orch.id), ignore_errors=True)
            (self.data_dir / "envs" / f"{orch.id}.build.log").unlink(missing_ok=True)
            if self.store.count_sha_users(orch.sha) == 0:
                self.archive_path(orch.sha).unlink(missing_ok=True)
        for run_id in run_ids:
            shutil.rmtree(self.run_dir(run_id), ignore_errors=True)

    # -- tasks ------------------------------------------------------------------------------

    async def run_once(
        self,
        *,
        orch_id: str,
        workspace_id: int,
        args: dict[str, Any],
        name: str | None,
        timeout: int | None,
        owner: str,
    ) -> Task:
        """A task that runs the orchestration once (as soon as it is packaged)."""
        orch = await self.get_orchestration(orch_id)
        await self.get_workspace(workspace_id)
        if orch.workspace_id != workspace_id:
            raise InvalidRequest(
                "workspace_id", f"orchestration {orch_id} is in workspace {orch.workspace_id}"
            )
        stamp = now()
        task = Task(
            id=new_id(),
            name=name,
            workspace_id=workspace_id,
            orch_id=orch.id,
            orch_sha=orch.sha,
            owner_id=owner,
            status=TaskStatus.PENDING,
            run_type=RunType.ONCE,
            input_data=args,
            timeout=timeout,
            created_at=stamp,
            updated_at=stamp,
        )
        await self._db(self.store.insert_task, task)
        if orch.status in (OrchestrationStatus.READY, OrchestrationStatus.ERROR):
            await self._start_pending(task.id)
        return task

    async def _start_pending(self, task_id: str) -> None:
        """Start the first run of a task that was waiting (for packaging, or just created)."""
        async with self._lock(task_id):
            task = await self._db(self.store.get_task, task_id, 0)
            if task is None or task.killed or task.status is not TaskStatus.PENDING:
                return
            orch = await self.get_orchestration(task.orch_id)
            if orch.status is OrchestrationStatus.READY:
                await self._start_run(task, orch, trigger="once")
            elif orch.status is OrchestrationStatus.ERROR:
                await self._fail_unrun(task, f"packaging failed: {orch.error}")

    def _python_for(self, orch: Orchestration) -> str:
        if orch.env_key:
            return str(self.data_dir / "envs" / orch.env_key / "bin" / "python")
        return self.executor_python

    @property
    def executor_python(self) -> str:
        """The interpreter of runs that need no environment of their own: the server's."""
        return getattr(self.executor, "python", None) or "python3"

    def _run_env(self, task: Task, run_id: str, token: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in SECRET_VARS}
        env.update(task.env_vars())
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                runtime.RUN_ID_VAR: run_id,
                runtime.ARGS_FILE_VAR: str(self.run_dir(run_id) / "args.json"),
                runtime.URL_VAR: self.config.callback_url,
                runtime.TOKEN_VAR: token,
            }
        )
        return env

    async def _start_run(self, task: Task, orch: Orchestration, trigger: str) -> TaskRun:
        """Record a run, then start its supervisor (the row exists before the process)."""
        stamp = now()
        run = TaskRun(
            id=new_id(),
            task_id=task.id,
            status=RunStatus.RUNNING,
            created_at=stamp,
            updated_at=stamp,
            started_at=stamp,
            trigger=trigger,
        )
        token = secrets.token_urlsafe(32)
        task.status = TaskStatus.STARTED
        await self._db(self.store.start_run, task, run, hash_token(token))
        self._tokens[hash_token(token)] = run.id
        self._active[run.id] = task.id
        entry = Path(orch.entrypoint)
        spec = RunSpec(
            run_id=run.id,
            run_dir=self.run_dir(run.id),
            argv=[self._python_for(orch), "-u", entry.name],
            env=self._run_env(task, run.id, token),
            source=self.orch_dir(orch.id),
            cwd=str(entry.parent) if str(entry.parent) != "." else "",
            timeout=task.timeout,
            grace=self.config.kill_grace,
            max_line=self.config.max_line,
        )
        try:
            await asyncio.to_thread(_write_args, spec.run_dir, task.input_data)
            future = await self.executor.launch(spec)
        except OSError as exc:
            future = asyncio.get_running_loop().create_future()
            future.set_result(ExitRecord(RunStatus.FAILURE, None, f"could not start: {exc}", now()))
        self._spawn(self._await_end(run, future))
        return run

    async def _fail_unrun(self, task: Task, reason: str) -> None:
        """A run that could not start at all: recorded as a failure with the reason as log."""
        run = await self._start_run_record_only(task)
        await asyncio.to_thread(_note_only, self.run_dir(run.id), reason)
        await self._finish(run, ExitRecord(RunStatus.FAILURE, None, reason, now()))

    async def _start_run_record_only(self, task: Task) -> TaskRun:
        stamp = now()
        run = TaskRun(new_id(), task.id, RunStatus.RUNNING, stamp, stamp, started_at=stamp)
        task.status = TaskStatus.STARTED
        await self._db(self.store.start_run, task, run, None)
        self._active[run.id] = task.id
        return run

    async def _await_end(self, run: TaskRun, future: asyncio.Future[ExitRecord]) -> None:
        try:
            record = await future
        except asyncio.CancelledError:
            return  # the server is stopping; the run goes on and is re-attached at start
        async with self._lock(run.task_id):
            await self._finish(run, record)

    async def _finish(self, run: TaskRun, record: ExitRecord) -> None:
        """Write a run's end, and its task's status where the run decides it."""
        run.status, run.exit_code, run.reason = record.status, record.exit_code, record.reason
        run.ended_at = record.ended_at
        self._active.pop(run.id, None)
        self._tokens = {h: r for h, r in self._tokens.items() if r != run.id}
        task = await self._db(self.store.get_task, run.task_id, 0)
        if task is not None:
            still_running = run.task_id in self._active.values()
            if task.killed and not still_running:
                task.status = TaskStatus.KILLED
            elif task.run_type is RunType.ONCE and not task.killed:
                task.status = TASK_STATUS_FOR_RUN[record.status]
        await self._db(self.store.finish_run, run, task)

    async def get_task(self, task_id: str, run_limit: int = 5) -> Task:
        """One task with its newest runs, or NotFound."""
        task = await self._db(self.store.get_task, task_id, run_limit)
        if task is None:
            raise NotFound("task", task_id)
        return task

    async def list_tasks(
        self,
        workspace_id: int | None,
        orch_id: str | None,
        orch_sha: str | None,
        killed: bool | None,
        run_limit: int,
    ) -> list[Task]:
        """Tasks matching the filters, newest first."""
        return await self._db(
            self.store.list_tasks,
            [workspace_id] if workspace_id is not None else [],
            [orch_id] if orch_id is not None else [],
            orch_sha,
            killed,
            None,
            run_limit,
        )

    async def task_ids_by_sha(self, sha: str) -> list[str]:
        """Ids of the tasks of every orchestration with this archive hash."""
        return await self._db(self.store.task_ids_by_sha, sha)

    async def kill_task(self, task_id: str) -> Task:
        """Stop a task: no new runs; active runs get SIGTERM, then SIGKILL after the grace."""
        async with self._lock(task_id):
            task = await self.get_task(task_id)
            if task.killed:
                raise Conflict(f"task {task_id} is already killed")
            running = [r for r, t in self._active.items() if t == task_id]
            task.killed = True
            task.status = TaskStatus.PENDING_KILL if running else TaskStatus.KILLED
            await self._db(self.store.update_task, task)
        for run_id in running:
            self.executor.kill(run_id)
        return task

    # -- runs -------------------------------------------------------------------------------

    async def list_task_runs(
        self,
        task_id: str,
        limit: int | None,
        status: RunStatus | None,
        time_range: tuple[datetime, datetime] | None,
    ) -> list[TaskRun]:
        """A task's runs, newest first."""
        await self.get_task(task_id, 0)
        return await self._db(self.store.list_runs, task_id, limit, status, time_range)

    async def get_run(self, task_id: str, run_id: str) -> TaskRun:
        """One run of one task, or NotFound."""
        run = await self._db(self.store.get_run, run_id)
        if run is None or run.task_id != task_id:
            raise NotFound("task run", run_id)
        return run

    async def run_logs(self, run_id: str, lines: int | None) -> list[str]:
        """A run's log lines (the last `lines` when given)."""
        run = await self._db(self.store.get_run, run_id)
        if run is None:
            raise NotFound("task run", run_id)
        return await asyncio.to_thread(logs.read_lines, self.run_dir(run_id) / "log", lines)

    def run_for_token(self, token: str) -> str | None:
        """The active run a run-scoped token belongs to, if any."""
        return self._tokens.get(hash_token(token))


def _write_args(run_dir: Path, args: dict[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "args.json").write_text(json.dumps(args), encoding="utf-8")


def _note_only(run_dir: Path, text: str) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    append_note(run_dir, f"jupyter_orch: {text}")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
