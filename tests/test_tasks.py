"""Timers and task rules with an injected clock and a fake executor: no waiting for real time."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jupyter_orch.server.datadir import DataDir
from jupyter_orch.server.models import (
    RunStatus,
    RunType,
    Task,
    TaskRun,
    TaskStatus,
    Trigger,
    new_id,
)
from jupyter_orch.server.runner import RunSettings
from jupyter_orch.server.store import Store
from jupyter_orch.server.tasks import TaskManager, TaskSettings
from jupyter_orch.server.timers import Scheduler

from .fakes import (
    START,
    UTC,
    BlockingStore,
    Clock,
    FakeExecutor,
    open_store,
    orchestration,
    scheduled_task,
)


async def test_timers_fire_in_order_and_can_be_replaced_or_cancelled() -> None:
    fired: list[str] = []
    three = asyncio.Event()

    def on_due(key: str, at: datetime) -> None:
        fired.append(key)
        if len(fired) == 3:
            three.set()

    scheduler = Scheduler(on_due)
    soon = datetime.now(UTC)
    scheduler.set("b", soon + timedelta(milliseconds=40))
    scheduler.set("a", soon + timedelta(milliseconds=20))
    scheduler.set("c", soon + timedelta(milliseconds=30))
    scheduler.set("c", None)  # cancelled
    scheduler.set("d", soon + timedelta(hours=1))
    scheduler.set("d", soon + timedelta(milliseconds=50))  # replaced by an earlier time
    scheduler.start()
    try:
        await asyncio.wait_for(three.wait(), 5)
    finally:
        await scheduler.stop()
    assert fired == ["a", "b", "d"]
    assert len(scheduler) == 0


@pytest.mark.timeout(10)
async def test_a_sleeping_scheduler_wakes_for_an_earlier_timer() -> None:
    fired = asyncio.Event()
    scheduler = Scheduler(lambda key, at: fired.set())
    scheduler.set("late", datetime.now(UTC) + timedelta(hours=1))
    scheduler.start()
    await asyncio.sleep(0)  # one turn of the event loop: the scheduler now sleeps for an hour
    scheduler.set("early", datetime.now(UTC))
    try:
        await asyncio.wait_for(fired.wait(), 5)  # without the wake-up this waits an hour
    finally:
        await scheduler.stop()


@pytest.mark.timeout(10)
async def test_stopping_right_after_a_timer_wakes_the_loop_still_stops_it() -> None:
    scheduler = Scheduler(lambda key, at: None)
    scheduler.set("far", datetime.now(UTC) + timedelta(hours=1))
    scheduler.start()
    await asyncio.sleep(0)  # the loop sleeps for an hour
    scheduler.set("sooner", datetime.now(UTC) + timedelta(minutes=1))  # wakes it...
    await asyncio.wait_for(scheduler.stop(), 5)  # ...and the stop comes in the same turn


World = tuple[TaskManager, FakeExecutor, Clock, BlockingStore]


@pytest.fixture
def world(tmp_path: Path, jp_asyncio_loop: asyncio.AbstractEventLoop) -> Iterator[World]:
    """A task manager over a real store, a fake executor and a hand-moved clock."""
    store = Store(tmp_path / "orch.db")
    store.open()
    executor = FakeExecutor()
    clock = Clock(START)
    manager = TaskManager(
        store,
        executor,
        RunSettings(DataDir(tmp_path), "http://127.0.0.1/orch", 1.0, 16384),
        TaskSettings(starting_deadline_seconds=60),
        clock=clock,
    )
    stack = AsyncExitStack()
    jp_asyncio_loop.run_until_complete(manager.runner.start(stack))
    jp_asyncio_loop.run_until_complete(manager.start(stack))
    yield manager, executor, clock, BlockingStore(store)
    jp_asyncio_loop.run_until_complete(stack.aclose())
    store.close()


async def settle(manager: TaskManager, executor: FakeExecutor, count: int) -> None:
    """Let the task work started so far run to its end; then `count` runs were launched."""
    await manager.idle()
    assert len(executor.launched) == count


async def test_catch_up_after_downtime_runs_the_latest_instant_once(world: World) -> None:
    manager, executor, clock, store = world
    orch = orchestration(store)
    task = scheduled_task(store, orch, "*/10 * * * *")
    task.last_fire_at = START - timedelta(minutes=50)
    store.update_task(task)
    clock.moment = START + timedelta(seconds=30)  # 12:00 is 30 s old: within the 60 s deadline
    await manager.take_scheduling()
    await settle(manager, executor, 1)
    runs = store.list_runs(task.id)
    assert [(r.trigger, r.scheduled_for) for r in runs] == [(Trigger.CATCH_UP, START)]
    missed = sorted(s.scheduled_for for s in store.list_skips(task.id))
    assert missed == [START - timedelta(minutes=m) for m in (40, 30, 20, 10)]
    assert manager.scheduler.get(task.id) == START + timedelta(minutes=10)


async def test_catch_up_past_the_deadline_runs_nothing(world: World) -> None:
    manager, executor, clock, store = world
    task = scheduled_task(store, orchestration(store), "0 * * * *")
    task.last_fire_at = START - timedelta(hours=3)
    store.update_task(task)
    clock.moment = START + timedelta(minutes=5)  # 12:00 is 300 s old: past the deadline
    await manager.take_scheduling()
    await manager.idle()
    assert executor.launched == []
    assert len(store.list_skips(task.id)) == 3


async def test_instants_missed_past_the_deadline_are_listed_once(world: World) -> None:
    manager, executor, clock, store = world
    task = scheduled_task(store, orchestration(store), "0 * * * *")
    task.last_fire_at = START - timedelta(hours=3)
    store.update_task(task)
    clock.moment = START + timedelta(minutes=5)
    await manager.take_scheduling()
    await manager.idle()
    stored = store.get_task(task.id, 0)
    assert stored is not None and stored.last_fire_at == START  # accounted for
    # The next start (another server, a restart) finds nothing more to record.
    await manager.scheduler.stop()
    manager._unplan(task.id)
    await manager.take_scheduling()
    await manager.idle()
    assert len(store.list_skips(task.id)) == 3 and executor.launched == []


async def test_instants_of_a_pause_are_not_caught_up(world: World) -> None:
    manager, executor, clock, store = world
    task = scheduled_task(store, orchestration(store), "*/10 * * * *")
    task.last_fire_at = START - timedelta(hours=1)
    task.status = TaskStatus.PAUSED
    store.update_task(task)
    clock.moment = START + timedelta(seconds=30)  # 12:00 fell in the pause
    await manager.resume(task.id)
    # The server stops before the resumed task's next instant; another one takes over.
    await manager.stop()
    await manager.take_scheduling()
    await manager.idle()
    assert executor.launched == []
    assert store.list_skips(task.id) == []
    assert manager.scheduler.get(task.id) == START + timedelta(minutes=10)


async def test_a_lagging_loop_records_missed_instants_instead_of_a_flood(world: World) -> None:
    manager, executor, clock, store = world
    task = scheduled_task(store, orchestration(store), "* * * * *")
    task.last_fire_at = START
    store.update_task(task)
    clock.moment = START + timedelta(seconds=1)
    await manager.take_scheduling()
    # The machine slept: the 12:01 timer is handled at 12:05:30.
    clock.moment = START + timedelta(minutes=5, seconds=30)
    manager.scheduler.run_due()
    await manager.idle()
    assert executor.launched == []  # 12:01 is 270 s late: past the 60 s deadline
    missed = sorted(s.scheduled_for for s in store.list_skips(task.id))
    assert missed == [START + timedelta(minutes=m) for m in (1, 2, 3, 4, 5)]
    assert manager.scheduler.get(task.id) == START + timedelta(minutes=6)


def continuous_task(
    store: BlockingStore,
    ended_at: list[datetime],
    ended: RunStatus = RunStatus.FAILURE,
    status: TaskStatus = TaskStatus.CRASH_LOOP,
) -> Task:
    """A continuous task in `status` whose runs ended (`ended`) 1 s after their start, at
    these moments (oldest first)."""
    task = scheduled_task(store, orchestration(store), "* * * * *")
    task.run_type, task.schedule, task.status = RunType.CONTINUOUS, None, status
    store.sql(
        "UPDATE tasks SET run_type = ?, schedule = NULL WHERE id = ?",
        (RunType.CONTINUOUS.value, task.id),
    )
    store.update_task(task)
    for end in ended_at:
        begun = end - timedelta(seconds=1)
        run = TaskRun(new_id(), task.id, RunStatus.RUNNING, begun, begun, started_at=begun)
        assert store.start_run(task, run, None)
        run.status, run.exit_code, run.ended_at = ended, int(ended is not RunStatus.SUCCESS), end
        store.finish_run(run, task)
    return task


@pytest.mark.parametrize("ended", [RunStatus.FAILURE, RunStatus.SUCCESS])
async def test_a_crash_loop_keeps_its_back_off_through_a_restart(
    world: World, ended: RunStatus
) -> None:
    manager, executor, clock, store = world
    # Three fast ends in a row: the next run waits 4 s from the last one's end.
    task = continuous_task(store, [START - timedelta(seconds=s) for s in (8, 5, 1)], ended)
    await manager.take_scheduling()  # a new server: nothing in memory about this task
    await manager.idle()
    assert executor.launched == []  # not at once, which would restart the loop's count
    assert manager.scheduler.get(task.id) == START + timedelta(seconds=3)
    clock.moment = START + timedelta(seconds=3) - timedelta(milliseconds=1)
    manager.scheduler.run_due()
    await settle(manager, executor, 0)  # not a moment too early
    clock.moment = START + timedelta(seconds=3)
    manager.scheduler.run_due()
    await settle(manager, executor, 1)


async def test_a_crash_loop_whose_back_off_has_passed_restarts_at_once(world: World) -> None:
    manager, executor, _, store = world
    continuous_task(store, [START - timedelta(minutes=10)])
    await manager.take_scheduling()
    await settle(manager, executor, 1)


@pytest.mark.parametrize("ended", [RunStatus.SUCCESS, RunStatus.FAILURE])
async def test_a_continuous_run_that_ends_at_once_backs_off(world: World, ended: RunStatus) -> None:
    manager, executor, _, store = world
    task = continuous_task(store, [], status=TaskStatus.STARTED)
    await manager.take_scheduling()
    await settle(manager, executor, 1)
    executor.end(executor.launched[0].run_id, ended)  # a few ms after its start
    for _ in range(500):  # the runner writes the end on its own
        stored = store.get_task(task.id, 0)
        if stored is not None and stored.status is not TaskStatus.STARTED:
            break
        await asyncio.sleep(0.01)
    await settle(manager, executor, 1)  # no second run at once: that would spin
    assert stored is not None and stored.status is TaskStatus.CRASH_LOOP
    assert manager.scheduler.get(task.id) is not None  # the back-off's end


async def test_one_instant_never_gets_two_runs(world: World) -> None:
    manager, executor, _, store = world
    task = scheduled_task(store, orchestration(store), "0 0 1 1 *")
    manager.scheduling = True
    await asyncio.gather(manager.fire(task.id, START), manager.fire(task.id, START))
    await manager.idle()
    assert len(executor.launched) == 1
    assert len(store.list_runs(task.id)) == 1


def test_the_store_refuses_a_second_run_of_one_instant(tmp_path: Path) -> None:
    store = open_store(tmp_path / "orch.db")
    task = scheduled_task(store, orchestration(store), "* * * * *")
    runs = [
        TaskRun(new_id(), task.id, RunStatus.RUNNING, START, START, scheduled_for=START)
        for _ in range(2)
    ]
    assert store.start_run(task, runs[0], None) is True
    assert store.start_run(task, runs[1], None) is False
    manual = TaskRun(new_id(), task.id, RunStatus.RUNNING, START, START, trigger=Trigger.MANUAL)
    assert store.start_run(task, manual, None) is True  # no instant: no conflict
    store.close()


async def test_a_runs_end_is_written_once_the_database_has_room(world: World) -> None:
    """A write refused for want of room (SQLITE_FULL) is tried again until it lands: the
    run does not stay `running`."""
    manager, executor, _, store = world
    task = scheduled_task(store, orchestration(store), "0 0 1 1 *")
    manager.scheduling = True
    await manager.fire(task.id, START)
    await settle(manager, executor, 1)
    real = manager.runner.store.finish_run
    refused: list[str] = []

    def full_then_fine(run: Any, owner: Any) -> None:
        if len(refused) < 2:
            refused.append(run.id)
            raise sqlite3.OperationalError("database or disk is full")
        real(run, owner)

    manager.runner.store.finish_run = full_then_fine  # type: ignore[method-assign,assignment]
    executor.end(executor.launched[0].run_id, RunStatus.SUCCESS)
    deadline = time.monotonic() + 30
    while store.list_runs(task.id)[0].status is RunStatus.RUNNING:
        assert time.monotonic() < deadline, "the run's end was never written"
        await asyncio.sleep(0.05)
    assert len(refused) == 2 and store.list_runs(task.id)[0].status is RunStatus.SUCCESS


async def test_a_schedule_edited_here_re_arms_the_timer_at_once(world: World) -> None:
    manager, executor, clock, store = world
    task = scheduled_task(store, orchestration(store), "0 0 1 1 *")
    await manager.take_scheduling()
    assert manager.scheduler.get(task.id) == datetime(2027, 1, 1, tzinfo=UTC)
    edited = await manager.update(task.id, {"schedule": "*/10 * * * *"}, "me", None)
    assert edited.schedule == "*/10 * * * *"
    assert manager.scheduler.get(task.id) == START + timedelta(minutes=10)
    # A restart later does not catch up instants of the old schedule, nor before the edit.
    assert edited.last_fire_at == START
    clock.moment = START + timedelta(seconds=30)
    await manager.stop()
    await manager.take_scheduling()
    await manager.idle()
    assert executor.launched == []
    assert manager.scheduler.get(task.id) == START + timedelta(minutes=10)
    await manager.stop()


async def test_a_schedule_edited_through_another_server_is_picked_up_at_sync(
    world: World,
) -> None:
    manager, executor, clock, store = world
    task = scheduled_task(store, orchestration(store), "0 0 1 1 *")
    await manager.take_scheduling()
    other = TaskManager(  # another server of the data directory: it does not schedule
        store.store,
        executor,
        manager.runner.settings,
        TaskSettings(),
        clock=clock,
    )
    await other.update(task.id, {"schedule": "30 12 * * *", "timezone": "Asia/Tokyo"}, "me", None)
    assert manager.scheduler.get(task.id) == datetime(2027, 1, 1, tzinfo=UTC)  # not yet
    await manager.sync()
    # 12:30 in Tokyo is 03:30 UTC: the next one after START (12:00 UTC) is tomorrow's.
    assert manager.scheduler.get(task.id) == START.replace(hour=3, minute=30) + timedelta(days=1)
    await manager.stop()
