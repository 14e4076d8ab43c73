"""Task life cycles: when runs start, and what a run's end does to its task.

- Run once: one run as soon as the orchestration is ready.
- Scheduled: a run at every instant of the cron schedule, whatever earlier runs are doing
  (`concurrency_policy` `allow`), or skipping (`forbid`) or ending (`replace`) a running one.
- Continuous: the next run as soon as the previous one ends; runs that keep ending fast (within
  `crash_loop_seconds`, whether they fail or succeed) back off exponentially (1 s doubling to
  60 s) and the task shows `crash_loop` meanwhile.

Every status change of a task happens under that task's lock. Timers (cron instants, back-off)
live in `Scheduler`, held only by the server that holds the data directory's scheduler lock.
Runs start and end through the task manager's `Runner`, which asks it what each end means.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from . import task_edits
from .background import Background
from .cron import (
    Cron,
    backoff_seconds,
    catch_up,
    fires_from,
    newest_fires,
    next_fire,
    parse_cron,
    stored_cron,
)
from .cron import parse_timezone as zone_of
from .errors import Missing, WrongState
from .executors import Executor
from .executors.registry import Executors
from .models import (
    TASK_STATUS_FOR_RUN,
    ConcurrencyPolicy,
    Orchestration,
    OrchestrationStatus,
    RunStatus,
    RunType,
    SkipReason,
    Task,
    TaskRun,
    TaskStatus,
    Trigger,
    now,
)
from .packaging import Packager
from .runner import Runner, RunSettings
from .store import Store
from .timers import Scheduler

log = logging.getLogger(__name__)
T = TypeVar("T")
BACKOFF_HISTORY = 10  # runs read to count a crash loop's fast ends (2^9 s > the cap)
ON_TIME_SECONDS = 1.0  # how late the running scheduler may fire an instant and still run it
NEXT_FIRES = 3  # fire times a task shows
#: Statuses in which a scheduled task's next instants will fire (once packaged, for pending).
FIRING = (TaskStatus.PENDING, TaskStatus.STARTED, TaskStatus.PENDING_RESUME)


@dataclass
class TaskSettings:
    """Defaults of the scheduling rules (traitlets of the app)."""

    starting_deadline_seconds: int = 600
    crash_loop_seconds: float = 10.0
    backoff_first: float = 1.0
    backoff_max: float = 60.0


class RunEndListener(Protocol):
    """Told of every run's end once it is written (retention)."""

    def run_ended(self, run: TaskRun) -> None:
        """A run ended (called on the event loop; must not block)."""


class _NoListener:
    def run_ended(self, run: TaskRun) -> None:
        return None


@dataclass(frozen=True)
class _Plan:
    cron: Cron
    zone: ZoneInfo
    deadline: int
    source: tuple[str, str | None]  # the task's schedule and zone as stored


class TaskManager:
    """Starts runs of tasks at the right moments and keeps task statuses true."""

    def __init__(
        self,
        store: Store,
        executor: Executor | Executors,
        run_settings: RunSettings,
        settings: TaskSettings,
        *,
        packager: Packager | None = None,
        listener: RunEndListener | None = None,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        # Built here: the runner asks this manager what each run's end means (`RunEnds`).
        self.runner = Runner(run_settings, store, executor, self.lock, self, packager)
        self.listener: RunEndListener = listener or _NoListener()
        self.scheduler = Scheduler(self._due, clock)
        self.scheduling = False  # only the holder of the scheduler lock makes timed runs
        self._plans: dict[str, _Plan] = {}
        self._failures: dict[str, int] = {}
        self._background = Background("task work")
        self._spawn = self._background.spawn

    async def start(self, stack: AsyncExitStack) -> None:
        """Ready to start tasks; timers and task work stop when `stack` closes (timers run
        once this server takes the scheduling, `take_scheduling`)."""
        stack.push_async_callback(self.stop)

    def lock(self, task_id: str) -> asyncio.Lock:
        """Serialises the status changes of one task (a kill against a run's end)."""
        return self._locks.setdefault(task_id, asyncio.Lock())

    async def idle(self) -> None:
        """Wait until the task work started so far (and what it starts) is done."""
        await self._background.idle()

    # -- helpers ----------------------------------------------------------------------------

    def busy(self, task_ids: list[str]) -> list[str]:
        """Those of some tasks that have a run going here, sorted."""
        wanted = set(task_ids)
        return sorted({task_id for task_id in self.runner.active.values() if task_id in wanted})

    def running_from(self, orch_ids: list[str]) -> list[str]:
        """The tasks with a run going here from one of these orchestrations (a task edited
        to new code may still have a run of the old), sorted."""
        wanted = set(orch_ids)
        runner = self.runner
        return sorted({runner.active[r] for r, o in runner.sources.items() if o in wanted})

    def forget(self, task_ids: list[str]) -> None:
        """Drop the timers, failure counts and locks of deleted tasks."""
        for task_id in task_ids:
            self._unplan(task_id)
            self._failures.pop(task_id, None)
            self._locks.pop(task_id, None)  # a holder or waiter keeps its own reference

    async def _task(self, task_id: str) -> Task:
        task = await self.store.call(self.store.get_task, task_id, 0)
        if task is None:
            raise Missing("task", task_id)
        return task

    async def _orch(self, task: Task) -> Orchestration | None:
        return await self.store.call(self.store.get_orchestration, task.orch_id)

    async def _save(self, task: Task) -> None:
        await self.store.call(self.store.update_task, task)

    def next_run_at(self, task: Task) -> datetime | None:
        """When the task's next run is due, as far as this server knows."""
        due = self.scheduler.get(task.id)
        if due is not None or self.scheduling or task.run_type is not RunType.SCHEDULED:
            return due
        if task.status is not TaskStatus.STARTED or task.schedule is None:
            return None
        return next_fire(stored_cron(task.schedule), zone_of(task.timezone), self.clock())

    def next_fires(self, task: Task, first: datetime | None) -> list[datetime]:
        """The next instants a scheduled task fires, in its zone, from its next one (`first`,
        its `next_run_at`, when known); none unless it fires."""
        if task.run_type is not RunType.SCHEDULED or task.schedule is None:
            return []
        if task.killed or task.status not in FIRING:
            return []
        if first is None:  # pending: not planned yet
            first = next_fire(stored_cron(task.schedule), zone_of(task.timezone), self.clock())
        return fires_from(task.schedule, task.timezone, first, NEXT_FIRES)

    # -- creation and readiness -------------------------------------------------------------

    async def created(self, task: Task, orch: Orchestration) -> None:
        """A new task was stored: start it if its orchestration is ready (or failed)."""
        if orch.status in (OrchestrationStatus.READY, OrchestrationStatus.ERROR):
            await self.begin(task.id)

    async def begin(self, task_id: str) -> None:
        """Start a task that was waiting for its orchestration's packaging."""
        async with self.lock(task_id):
            task = await self.store.call(self.store.get_task, task_id, 0)
            if task is None or task.killed or task.status is not TaskStatus.PENDING:
                return  # deleted, killed or begun meanwhile
            orch = await self._orch(task)
            if orch is None or orch.status not in (
                OrchestrationStatus.READY,
                OrchestrationStatus.ERROR,
            ):
                return
            if orch.status is OrchestrationStatus.ERROR:
                await self.runner.record_unrun(task, f"packaging failed: {orch.error}")
                if task.run_type is not RunType.ONCE:
                    task.status = TaskStatus.FAILED  # it can never run: say so
                    await self._save(task)
                return
            await self._begin_ready(task, orch)

    async def _begin_ready(self, task: Task, orch: Orchestration) -> None:
        if task.run_type is RunType.ONCE:
            task.status = TaskStatus.STARTED
            await self.runner.start_run(task, orch, Trigger.ONCE)
            return
        task.status = TaskStatus.STARTED
        await self._save(task)
        if task.run_type is RunType.SCHEDULED:
            self._plan(task, after=self.clock())
        elif self.scheduling:
            await self.runner.start_run(task, orch, Trigger.CONTINUOUS)

    # -- timers -----------------------------------------------------------------------------

    def _plan(self, task: Task, after: datetime) -> None:
        """Set the timer of a scheduled task's next instant (scheduler holder only)."""
        if not self.scheduling or task.schedule is None:
            return
        plan = _Plan(
            parse_cron(task.schedule),
            zone_of(task.timezone),
            task.starting_deadline_seconds
            if task.starting_deadline_seconds is not None
            else self.settings.starting_deadline_seconds,
            (task.schedule, task.timezone),
        )
        self._plans[task.id] = plan
        self.scheduler.set(task.id, next_fire(plan.cron, plan.zone, after))

    @staticmethod
    def _changed(plan: _Plan, task: Task) -> bool:
        return plan.source != (task.schedule, task.timezone)

    def _unplan(self, task_id: str) -> None:
        self._plans.pop(task_id, None)
        self.scheduler.set(task_id, None)

    def _due(self, task_id: str, at: datetime) -> None:
        """A timer fired: a cron instant, or the end of a continuous task's back-off."""
        plan = self._plans.get(task_id)
        if plan is None:
            self._spawn(self._restart(task_id))
            return
        moment = self.clock()
        # Plan the next instant first, so a slow start never delays the schedule.
        self.scheduler.set(task_id, next_fire(plan.cron, plan.zone, max(at, moment)))
        # Instants passed while the loop lagged (a suspended machine) are missed, not a flood.
        missed, _ = newest_fires(plan.cron, plan.zone, at, moment, 100)
        run_at: datetime | None = at
        # A timer fires a few ms after its instant: lateness under a second is on time, also
        # for tasks whose deadline is shorter (a deadline of 0 means "no catching up").
        if (moment - at).total_seconds() > max(plan.deadline, ON_TIME_SECONDS):
            missed.insert(0, at)
            run_at = None
        if missed:
            self._spawn(self.store.call(self.store.add_skips, task_id, missed, SkipReason.MISSED))
        if run_at is not None:
            self._spawn(self.fire(task_id, run_at))

    async def fire(
        self, task_id: str, instant: datetime, trigger: Trigger = Trigger.SCHEDULE
    ) -> None:
        """Start the run of one scheduled instant, as the task's concurrency policy says."""
        async with self.lock(task_id):
            task = await self.store.call(self.store.get_task, task_id, 0)
            if task is None or not task.live or task.status is not TaskStatus.STARTED:
                return
            orch = await self._orch(task)
            running = self.runner.running(task_id)
            if running and task.concurrency_policy is ConcurrencyPolicy.FORBID:
                await self.store.call(
                    self.store.add_skips, task_id, [instant], SkipReason.STILL_RUNNING
                )
                task.last_fire_at = instant
                await self._save(task)
                return
            if running and task.concurrency_policy is ConcurrencyPolicy.REPLACE:
                self.runner.kill(task_id)
            if orch is not None:
                task.last_fire_at = instant
                await self.runner.start_run(task, orch, trigger, scheduled_for=instant)

    # -- a run's end ------------------------------------------------------------------------

    def decide(self, task: Task, run: TaskRun) -> None:
        """The task's status once `run` has ended (written with the run's end)."""
        others = [r for r in self.runner.running(task.id) if r != run.id]
        if task.killed:
            task.status = TaskStatus.PENDING_KILL if others else TaskStatus.KILLED
        elif task.status is TaskStatus.PENDING_PAUSE:
            task.status = TaskStatus.PENDING_PAUSE if others else TaskStatus.PAUSED
        elif task.run_type is RunType.ONCE:
            task.status = TASK_STATUS_FOR_RUN[run.status]
        elif task.run_type is RunType.CONTINUOUS and task.status in (
            TaskStatus.STARTED,
            TaskStatus.CRASH_LOOP,
        ):
            task.status = self._after_continuous_run(task.id, run)

    def _fast_end(self, run: TaskRun) -> bool:
        """A run that ended by itself (failed or succeeded, not killed) within
        `crash_loop_seconds` of its start: a task that restarts it at once would spin."""
        if run.status in (RunStatus.KILLED, RunStatus.RUNNING):
            return False
        lasted = (run.ended_at or now()) - (run.started_at or run.created_at)
        return lasted < timedelta(seconds=self.settings.crash_loop_seconds)

    def _after_continuous_run(self, task_id: str, run: TaskRun) -> TaskStatus:
        if self._fast_end(run):
            self._failures[task_id] = self._failures.get(task_id, 0) + 1
            return TaskStatus.CRASH_LOOP
        self._failures.pop(task_id, None)
        return TaskStatus.STARTED

    async def _backoff_end(self, task: Task) -> datetime | None:
        """When a crash-looping task's back-off ends, from its runs (after a restart, or on
        the server that takes over the scheduler): the count of fast failures in a row is
        not lost with the server that counted them."""
        runs = await self.store.call(self.store.list_runs, task.id, BACKOFF_HISTORY)
        ended = [run for run in runs if run.status is not RunStatus.RUNNING]
        failures = 0
        for run in ended:  # newest first
            if not self._fast_end(run):
                break
            failures += 1
        if not failures or ended[0].ended_at is None:
            return None
        self._failures[task.id] = failures
        delay = backoff_seconds(failures, self.settings.backoff_first, self.settings.backoff_max)
        return ended[0].ended_at + timedelta(seconds=delay)

    async def after_end(self, task: Task | None, run: TaskRun) -> None:
        """Follow-ups of a run's end: the next continuous run, retention."""
        self.listener.run_ended(run)
        if task is None or task.run_type is not RunType.CONTINUOUS or not self.scheduling:
            return
        if task.killed or task.status not in (TaskStatus.STARTED, TaskStatus.CRASH_LOOP):
            return
        delay = backoff_seconds(
            self._failures.get(task.id, 0), self.settings.backoff_first, self.settings.backoff_max
        )
        if delay <= 0:
            self._spawn(self._restart(task.id))
        else:
            self.scheduler.set(task.id, self.clock() + timedelta(seconds=delay))

    async def _restart(self, task_id: str) -> None:
        """The next run of a continuous task (now, or at the end of its back-off)."""
        async with self.lock(task_id):
            task = await self.store.call(self.store.get_task, task_id, 0)
            if task is None or not task.live:
                return
            if task.status not in (TaskStatus.STARTED, TaskStatus.CRASH_LOOP):
                return
            if self.runner.running(task_id):
                return
            orch = await self._orch(task)
            if orch is not None and orch.status is OrchestrationStatus.READY:
                await self.runner.start_run(task, orch, Trigger.CONTINUOUS)

    # -- control ----------------------------------------------------------------------------

    async def kill(self, task_id: str) -> Task:
        """No new runs from the answer on; active runs get SIGTERM, then SIGKILL."""
        async with self.lock(task_id):
            task = await self._task(task_id)
            if task.killed:
                raise WrongState(f"task {task_id} is already killed")
            self._unplan(task_id)
            self._failures.pop(task_id, None)
            task.killed = True
            # Runs another server of the data directory follows end when it sees the kill.
            running = self.runner.kill(task_id) or await self.store.call(
                self.store.running_run_ids, task_id
            )
            task.status = TaskStatus.PENDING_KILL if running else TaskStatus.KILLED
            await self._save(task)
        return task

    async def pause(self, task_id: str) -> Task:
        """No new runs; a running one finishes (`pending_pause` until it has)."""
        async with self.lock(task_id):
            task = await self._task(task_id)
            if task.run_type is RunType.ONCE:
                raise WrongState("only scheduled and continuous tasks can be paused")
            if not task.live:
                raise WrongState(f"task {task_id} is {task.status.value}; it cannot be paused")
            if task.status in (TaskStatus.PAUSED, TaskStatus.PENDING_PAUSE):
                return task
            self._unplan(task_id)
            running = self.runner.running(task_id)
            task.status = TaskStatus.PENDING_PAUSE if running else TaskStatus.PAUSED
            await self._save(task)
        return task

    async def resume(self, task_id: str) -> Task:
        """Answer `pending_resume`; the task is `started` again once its next run is planned."""
        async with self.lock(task_id):
            task = await self._task(task_id)
            if task.status not in (TaskStatus.PAUSED, TaskStatus.PENDING_PAUSE):
                raise WrongState(f"task {task_id} is {task.status.value}, not paused")
            task.status = TaskStatus.PENDING_RESUME
            if task.run_type is RunType.SCHEDULED:
                # Instants of the pause are not owed: a restart must not catch them up.
                task.last_fire_at = max(task.last_fire_at or task.created_at, self.clock())
            await self._save(task)
        self._spawn(self._resumed(task_id))
        return task

    async def _resumed(self, task_id: str) -> None:
        async with self.lock(task_id):
            task = await self._task(task_id)
            if task.killed or task.status is not TaskStatus.PENDING_RESUME:
                return
            if not self.scheduling:
                return  # the scheduler holder picks it up at its next sync
            task.status = TaskStatus.STARTED
            await self._save(task)
            if task.run_type is RunType.SCHEDULED:
                self._plan(task, after=self.clock())
        if task.run_type is RunType.CONTINUOUS:
            await self._restart(task_id)

    async def update(
        self, task_id: str, edit: dict[str, Any], by: str, orch: Orchestration | None
    ) -> Task:
        """Change a task's settings and record the change; the timers follow at once. Runs
        going keep what they started with."""
        async with self.lock(task_id):
            task = await self._task(task_id)
            if task.killed:
                raise WrongState(f"task {task_id} is killed; it cannot be changed")
            task_edits.check(task, edit)
            changes = task_edits.apply(task, edit, orch)
            if not changes:
                return task
            moment = self.clock()
            rescheduled = "schedule" in changes or "timezone" in changes
            if rescheduled:
                # Instants of the old schedule are not owed: a restart must not catch them up.
                task.last_fire_at = max(task.last_fire_at or task.created_at, moment)
            task.updated_at = moment
            change = task_edits.Change(moment, by, changes)
            await self.store.query(task_edits.save, task, change)
            if rescheduled and task.id in self._plans:
                self._plan(task, after=moment)
        return task

    async def run_now(
        self, task_id: str, args: dict[str, Any] | None = None, rerun: bool = False
    ) -> TaskRun:
        """One immediate run of a scheduled task, outside its schedule; with `rerun`, also
        of a continuous task that has no run going. `args`: this run's own arguments."""
        async with self.lock(task_id):
            task = await self._task(task_id)
            continuous = rerun and task.run_type is RunType.CONTINUOUS
            if task.run_type is not RunType.SCHEDULED and not continuous:
                raise WrongState("run_now is for scheduled tasks; this task is not one")
            if task.killed:
                raise WrongState(f"task {task_id} is killed")
            if task.status is TaskStatus.PENDING:
                raise WrongState(f"task {task_id} waits for its orchestration's packaging")
            if continuous and self.runner.running(task_id):
                raise WrongState("a continuous task runs one run at a time; one is running")
            policy = task.concurrency_policy
            if self.runner.running(task_id) and policy is ConcurrencyPolicy.FORBID:
                raise WrongState("a run of this task is running and its policy is forbid")
            if self.runner.running(task_id) and policy is ConcurrencyPolicy.REPLACE:
                self.runner.kill(task_id)
            orch = await self._orch(task)
            if orch is None or orch.status is not OrchestrationStatus.READY:
                raise WrongState("the task's orchestration is not ready")
            run = await self.runner.start_run(task, orch, Trigger.MANUAL, args=args)
        assert run is not None  # manual runs have no instant, so no duplicate
        return run

    # -- the scheduler's start and sync -----------------------------------------------------

    async def take_scheduling(self) -> None:
        """This server now holds the scheduler lock: catch up, plan, restart."""
        self.scheduling = True
        self.scheduler.start()
        await self.sync(catch_up_missed=True)

    async def sync(self, catch_up_missed: bool = False) -> None:
        """Make the timers match the stored tasks (tasks may change through another server)."""
        live = await self.store.call(self.store.live_tasks)
        seen = set()
        for task in live:
            seen.add(task.id)
            plan = self._plans.get(task.id)
            if plan is not None and self._changed(plan, task):
                self._plan(task, after=self.clock())  # edited through another server
            if plan is not None or self.scheduler.get(task.id) is not None:
                continue
            if task.status in (TaskStatus.PAUSED, TaskStatus.PENDING):
                continue  # nothing to plan until resumed or packaged
            if task.run_type is RunType.CONTINUOUS and self.runner.running(task.id):
                continue  # its next run starts when this one ends
            await self._settle(task, catch_up_missed)
        for task_id in [t for t in self._plans if t not in seen]:
            self._unplan(task_id)

    async def _settle(self, task: Task, catch_up_missed: bool) -> None:
        """Bring one live task without a timer back to its rule."""
        async with self.lock(task.id):
            task = await self._task(task.id)
            running = self.runner.running(task.id)
            settled = task.status
            if task.status is TaskStatus.PENDING_PAUSE and not running:
                settled = TaskStatus.PAUSED
            elif task.status is TaskStatus.PENDING_RESUME:
                settled = TaskStatus.STARTED
            elif task.status is TaskStatus.PENDING:
                return  # packaging will begin it
            if settled is not task.status:
                task.status = settled
                await self._save(task)
            if task.status not in (TaskStatus.STARTED, TaskStatus.CRASH_LOOP):
                return
            if task.run_type is RunType.SCHEDULED:
                await self._catch_up(task, catch_up_missed)
                return
            if running:
                return
            if task.status is TaskStatus.CRASH_LOOP:
                resume_at = await self._backoff_end(task)
                if resume_at is not None and resume_at > self.clock():
                    self.scheduler.set(task.id, resume_at)  # `_due` restarts it then
                    return
        await self._restart(task.id)

    async def _catch_up(self, task: Task, record_missed: bool) -> None:
        """After downtime: the latest missed instant runs if within the deadline."""
        moment = self.clock()
        self._plan(task, after=moment)
        if not record_missed:
            return
        plan = self._plans[task.id]
        last = task.last_fire_at or task.created_at
        outcome = catch_up(plan.cron, plan.zone, last, moment, plan.deadline)
        if outcome.missed:
            await self.store.call(self.store.add_skips, task.id, outcome.missed, SkipReason.MISSED)
            log.info(
                "jupyter_orch: task %s missed %s%d scheduled runs while no scheduler ran",
                task.id,
                "more than " if outcome.more_missed else "",
                len(outcome.missed),
            )
        if outcome.run is not None:
            # `fire` sets last_fire_at
            self._spawn(self.fire(task.id, outcome.run, trigger=Trigger.CATCH_UP))
        elif outcome.missed:
            task.last_fire_at = outcome.missed[-1]  # accounted for: not listed again next time
            await self._save(task)

    async def stop(self) -> None:
        """Stop the timers and background work."""
        await self.scheduler.stop()
        await self._background.stop()
