"""Run mechanics: record a run, start its supervisor, learn its end, kill it, re-attach to it.

What a run's end means for its task (a final status, the next continuous run, a pause that
completes) is not decided here: `Runner` asks its owner (`RunEnds`, the task manager), so the
run's end and the task's new status are written in one transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from .. import runtime
from .._proc import runfiles
from .background import Background
from .datadir import DataDir
from .errors import OrchError, disk_full
from .executors import Executor, ExitRecord, RunSpec
from .executors.base import with_run_path
from .executors.registry import Executors
from .models import Orchestration, RunStatus, Task, TaskRun, TaskStatus, Trigger, new_id, now
from .notebook import is_notebook
from .packaging import Packager, isolate
from .requirements import normalise_requirements
from .store import Store

log = logging.getLogger(__name__)
NOTEBOOK_RUNNER = "jupyter_orch.nbrun"  # `python -m` it: the executor of notebook runs
ENDED_TOKENS = 10_000  # the dead tokens remembered, to count late claims of ended runs


class RunEnds(Protocol):
    """What a run's end means for its task (the task manager decides)."""

    def decide(self, task: Task, run: TaskRun) -> None:
        """Set the task's status now that `run` has ended (written with the run's end)."""

    async def after_end(self, task: Task | None, run: TaskRun) -> None:
        """What follows once the end is written (the next continuous run, retention)."""


@dataclass
class RunSettings:
    """What every run of this server shares."""

    data: DataDir
    callback_url: str
    kill_grace: float
    max_line: int
    niceness: int = 0
    run_as_owner: bool = False  # each run executes as its task owner's Unix account
    max_log_bytes: int | None = 64 << 20  # each run's log, at most (tasks may set their own)


def hash_token(token: str) -> str:
    """What is stored of a run's token: its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


class Runner:
    """Starts runs and follows them to their end."""

    def __init__(
        self,
        settings: RunSettings,
        store: Store,
        executor: Executor | Executors,
        locks: Callable[[str], asyncio.Lock],
        ends: RunEnds,
        packager: Packager | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.executors = Executors.of(executor)
        self.executor = self.executors.get(None)  # the default: notes of unrun runs
        self.packager = packager
        self._lock = locks
        self._ends = ends
        self.active: dict[str, str] = {}  # run id -> task id
        # run id -> the orchestration it runs from (its task may since point at another)
        self.sources: dict[str, str] = {}
        self._tokens: dict[str, str] = {}  # token hash -> run id
        self._ended_tokens: dict[str, str] = {}  # the same, of the runs ended last (oldest first)
        self._ended: dict[str, asyncio.Event] = {}
        self._watchers = Background("following a run")

    async def start(self, stack: AsyncExitStack, end_runs: bool = False) -> None:
        """Start the executor. At stop (`stack` closing): with `end_runs`, end every active run
        first; then stop the executor and stop following runs (they go on, re-attached by the
        next server)."""
        stack.push_async_callback(self._watchers.stop)
        await self.executors.start()
        stack.push_async_callback(self.executors.stop)
        if end_runs:
            stack.push_async_callback(self._end_runs)

    async def _environment(self, orch: Orchestration, executor: Executor) -> tuple[str | None, str]:
        """The run's interpreter (None if its environment cannot be had) and why not."""
        lines = normalise_requirements(orch.requirements or "")
        if not lines or self.packager is None or executor.builds_environments:
            return executor.interpreter(), ""
        # Reused at once (and marked used); rebuilt if idle collection removed it meanwhile.
        built = await self.packager.ensure(lines, is_notebook(orch.entrypoint))
        return built.python, built.error or ""

    def running(self, task_id: str) -> list[str]:
        """The ids of a task's active runs."""
        return [run for run, task in self.active.items() if task == task_id]

    def ended_event(self, run_id: str) -> asyncio.Event:
        """An event set when the run ends (already set for a run not followed here)."""
        event = self._ended.get(run_id)
        if event is None:
            event = asyncio.Event()
            if run_id in self.active:
                self._ended[run_id] = event
            else:
                event.set()
        return event

    def run_for_token(self, token: str) -> str | None:
        """The active run a run-scoped token belongs to, if any."""
        return self._tokens.get(hash_token(token))

    def ended_run_for_token(self, token: str) -> str | None:
        """The run a dead token belonged to, if it ended lately here (its token opens
        nothing; a remote worker is told the run is over)."""
        return self._ended_tokens.get(hash_token(token))

    def _env(self, executor: Executor, task: Task, run_id: str) -> dict[str, str]:
        env = executor.run_env()
        env.update(task.env_vars())
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                runtime.RUN_ID_VAR: run_id,
                runtime.ARGS_FILE_VAR: str(self.settings.data.run_args(run_id)),
                runtime.URL_VAR: self.settings.callback_url,
                # What Wallaroo's runs see: the task, and the API under which
                # f"{WALLAROO_URL}/v1/api/..." works.
                "WALLAROO_TASK_ID": task.id,
                "WALLAROO_URL": self.settings.callback_url,
            }
        )
        return env

    def _new_run(
        self, task: Task, trigger: Trigger, scheduled_for: datetime | None, executor: str
    ) -> TaskRun:
        stamp = now()
        return TaskRun(
            executor=executor,
            id=new_id(),
            task_id=task.id,
            status=RunStatus.RUNNING,
            created_at=stamp,
            updated_at=stamp,
            started_at=stamp,
            trigger=trigger,
            scheduled_for=scheduled_for,
        )

    async def start_run(
        self,
        task: Task,
        orch: Orchestration,
        trigger: Trigger,
        scheduled_for: datetime | None = None,
        args: dict[str, Any] | None = None,
    ) -> TaskRun | None:
        """Record a run, then start it (the row exists before the process); None if its
        scheduled instant already has a run. The run's arguments are its task's, or `args`
        (a manual run with edited ones); each run records its own. The caller holds the
        task's lock."""
        try:
            name = self.executors.name(task.executor)
        except OrchError as exc:  # an executor no longer configured since the task was made
            await self.record_unrun(task, f"could not start: {exc.message}", trigger)
            return None
        executor = self.executors.get(name)
        python, problem = await self._environment(orch, executor)
        if python is None:
            await self.record_unrun(task, f"packaging failed: {problem}", trigger)
            return None
        run = self._new_run(task, trigger, scheduled_for, name)
        run.input_data = task.input_data if args is None else args
        token = secrets.token_urlsafe(32)
        if not await self.store.call(self.store.start_run, task, run, hash_token(token)):
            return None
        self._tokens[hash_token(token)] = run.id
        self.active[run.id] = task.id
        self.sources[run.id] = orch.id
        entry = Path(orch.entrypoint)
        env = self._env(executor, task, run.id)
        if normalise_requirements(orch.requirements or ""):
            # The environment's own packages, not the server's path (but our `wallaroo`).
            env = with_run_path(isolate(env))
        spec = RunSpec(
            run_id=run.id,
            run_dir=self.settings.data.run(run.id),
            argv=self._command(python, entry, run.id),
            env=env,
            source=self.settings.data.orchestration(orch.id),
            cwd=str(entry.parent) if str(entry.parent) != "." else "",
            timeout=task.timeout,
            grace=self.settings.kill_grace,
            max_line=self.settings.max_line,
            max_log_bytes=task.max_log_bytes or self.settings.max_log_bytes,
            niceness=self.settings.niceness,
            files={runfiles.ARGS: json.dumps(run.input_data)},  # written by the supervisor
            orch_id=orch.id,
            orch_sha=orch.sha,
            requirements=None
            if orch.requirements is None
            else normalise_requirements(orch.requirements),
            notebook=is_notebook(orch.entrypoint),
            secrets={runtime.TOKEN_VAR: token},  # never on disk
        )
        if self.settings.run_as_owner:
            spec.user = task.owner_id
            if is_notebook(orch.entrypoint):
                spec.owner_files = [runfiles.OUTPUT_NOTEBOOK]
        try:
            future = await executor.launch(spec)
        except Exception as exc:  # whatever failed, the recorded run must end, not hang
            future = _done(ExitRecord(RunStatus.FAILURE, None, f"could not start: {exc}", now()))
        self._follow(run, future)
        return run

    def _command(self, python: str, entry: Path, run_id: str) -> list[str]:
        """The run's command line, in the entrypoint's folder: the script, or the notebook run
        by `jupyter_orch.nbrun` into the run folder's executed copy."""
        if not is_notebook(entry.name):
            return [python, "-u", entry.name]
        output = str(self.settings.data.run_output(run_id))
        return [python, "-u", "-m", NOTEBOOK_RUNNER, entry.name, "--output", output]

    async def record_unrun(
        self, task: Task, reason: str, trigger: Trigger = Trigger.ONCE
    ) -> TaskRun:
        """A run that could not start at all: a failure whose log says why."""
        run = self._new_run(task, trigger, None, task.executor or self.executors.default)
        task.status = TaskStatus.STARTED
        await self.store.call(self.store.start_run, task, run, None)
        self.active[run.id] = task.id
        await self.executor.note(self.settings.data.run(run.id), f"jupyter_orch: {reason}")
        await self._finish(run, ExitRecord(RunStatus.FAILURE, None, reason, now()))
        return run

    def _follow(self, run: TaskRun, future: asyncio.Future[ExitRecord]) -> None:
        self._watchers.spawn(self._await_end(run, future))

    async def _await_end(self, run: TaskRun, future: asyncio.Future[ExitRecord]) -> None:
        try:
            record = await future
        except asyncio.CancelledError:
            return  # the server is stopping; the run goes on and is re-attached at start
        async with self._lock(run.task_id):
            await self._finish(run, record)

    async def _finish(self, run: TaskRun, record: ExitRecord) -> None:
        """Write a run's end and its task's new status together, then tell the owner."""
        run.status, run.exit_code, run.reason = record.status, record.exit_code, record.reason
        run.ended_at = record.ended_at
        self.active.pop(run.id, None)
        self.sources.pop(run.id, None)
        for token_hash in [h for h, r in self._tokens.items() if r == run.id]:
            del self._tokens[token_hash]
            self._ended_tokens[token_hash] = run.id
        while len(self._ended_tokens) > ENDED_TOKENS:
            del self._ended_tokens[next(iter(self._ended_tokens))]
        task = await self.store.call(self.store.get_task, run.task_id, 0)
        if task is not None:
            self._ends.decide(task, run)
        await self._write_end(run, task)
        event = self._ended.pop(run.id, None)
        if event is not None:
            event.set()
        await self._ends.after_end(task, run)

    async def _write_end(self, run: TaskRun, task: Task | None) -> None:
        """Write a run's end, as soon as it can be: on a full disk, again and again (every
        second, then less often) until there is room."""
        wait = 1.0
        while True:
            try:
                await self.store.call(self.store.finish_run, run, task)
                return
            except Exception as exc:  # only a full disk is waited out
                if not disk_full(exc):
                    raise
                if wait == 1.0:
                    log.warning(
                        "jupyter_orch: the end of run %s cannot be recorded, the disk is full "
                        "(%s); trying again until there is room",
                        run.id,
                        exc,
                    )
            await asyncio.sleep(wait)
            wait = min(wait * 2, 30.0)

    def kill(self, task_id: str) -> list[str]:
        """Ask every active run of a task to stop; their ids."""
        runs = self.running(task_id)
        for run_id in runs:
            self.executors.kill(run_id)
        return runs

    async def reattach(self) -> None:
        """Follow again every run still marked running (after a restart)."""
        for run, token_hash in await self.store.call(self.store.active_runs):
            if run.id in self.active:
                continue
            if token_hash:
                self._tokens[token_hash] = run.id
            self.active[run.id] = run.task_id
            executor = self.executors.known(run.executor)
            if executor is None:
                reason = f"its executor {run.executor!r} is no longer configured on this server"
                future = _done(ExitRecord(RunStatus.FAILURE, None, reason, now()))
            else:
                future = await executor.reattach(run.id, self.settings.data.run(run.id))
            self._follow(run, future)

    async def _end_runs(self) -> None:
        """Kill every active run and wait for their ends (a grace period and a bit, at most)."""
        events = [self.ended_event(run_id) for run_id in list(self.active)]
        for task_id in set(self.active.values()):
            self.kill(task_id)
        if events:
            await asyncio.wait(
                [asyncio.ensure_future(e.wait()) for e in events],
                timeout=self.settings.kill_grace + 5,
            )


def _done(record: ExitRecord) -> asyncio.Future[ExitRecord]:
    future: asyncio.Future[ExitRecord] = asyncio.get_running_loop().create_future()
    future.set_result(record)
    return future
