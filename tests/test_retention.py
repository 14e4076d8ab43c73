"""Retention: one batched store call per pass, and one pass for a burst of runs ending together."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jupyter_orch.server import retention_queries
from jupyter_orch.server.access import Scope
from jupyter_orch.server.identity import Caller
from jupyter_orch.server.models import RunStatus, RunType, TaskRun, new_id, now
from jupyter_orch.server.packaging import Packager
from jupyter_orch.server.retention_queries import Pruned
from jupyter_orch.server.service import OrchService
from jupyter_orch.server.service_config import ServiceConfig, TaskRequest
from jupyter_orch.server.store import Store

from .fakes import START, BlockingStore, FakeExecutor, open_store, orchestration, scheduled_task

FAILED = {RunStatus.FAILURE.value, RunStatus.TIMED_OUT.value}


def reference_doomed(rows: list[sqlite3.Row], keep: int, cutoff: datetime) -> list[str]:
    """The rule retention has always had (rows of one task, newest first): ended runs beyond
    the newest `keep` or older than `cutoff`, never the latest failure."""
    latest_failure = next((r["id"] for r in rows if r["status"] in FAILED), None)
    return [
        row["id"]
        for index, row in enumerate(rows)
        if row["status"] != RunStatus.RUNNING.value
        and row["id"] != latest_failure
        and (index >= keep or datetime.fromisoformat(row["created_at"]) < cutoff)
    ]


def add_run(store: BlockingStore, task_id: str, status: RunStatus, created: datetime) -> str:
    """An ended (or running) run of a task, created at `created`."""
    run_id = new_id()
    store.sql(
        "INSERT INTO runs (id, task_id, status, trigger, created_at, updated_at)"
        " VALUES (?,?,?,?,?,?)",
        (run_id, task_id, status.value, "manual", created.isoformat(), created.isoformat()),
    )
    return run_id


def runs_of(store: BlockingStore, task_id: str) -> list[sqlite3.Row]:
    """A task's runs in retention's order, newest first."""
    return store.sql(
        "SELECT id, status, created_at FROM runs WHERE task_id = ? ORDER BY created_at DESC, id",
        (task_id,),
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[BlockingStore]:
    """An open store."""
    opened = open_store(tmp_path / "orch.db")
    yield opened
    opened.close()


def test_one_call_prunes_many_tasks_each_by_its_own_rules(store: BlockingStore) -> None:
    rng = random.Random(7)
    orch = orchestration(store)
    statuses = [RunStatus.SUCCESS] * 4 + [
        RunStatus.FAILURE,
        RunStatus.TIMED_OUT,
        RunStatus.KILLED,
        RunStatus.RUNNING,
    ]
    default_keep, default_days = 4, 5.0
    tasks = []
    for number in range(120):
        extra: dict[str, Any] = {}
        if number % 3 == 1:
            extra["keep_runs"] = rng.randint(1, 6)
        if number % 4 == 2:
            extra["keep_days"] = rng.choice([0.0, 0.5, 2.0, 12.5, 1e12])
        task = scheduled_task(store, orch, "* * * * *", **extra)
        for _ in range(rng.randint(0, 14)):
            # Whole minutes, whole seconds and microseconds, some runs sharing an instant.
            created = START - timedelta(minutes=rng.randint(0, 14 * 24 * 60) // 7 * 7)
            if rng.random() < 0.5:
                created -= timedelta(microseconds=rng.randint(1, 999_999))
            add_run(store, task.id, rng.choice(statuses), created)
        tasks.append(task)
    expected: dict[str, list[str]] = {}
    for task in tasks:
        keep = task.keep_runs if task.keep_runs is not None else default_keep
        days = task.keep_days if task.keep_days is not None else default_days
        never = datetime.min.replace(tzinfo=START.tzinfo)  # 1e12 days: nothing is too old
        cutoff = START - timedelta(days=days) if days < 1e9 else never
        expected[task.id] = reference_doomed(runs_of(store, task.id), keep, cutoff)
    assert sum(map(len, expected.values())) > 100  # the rules have work to do
    assert any(not doomed for doomed in expected.values())  # and tasks with nothing to do
    before = {task.id: {row["id"] for row in runs_of(store, task.id)} for task in tasks}

    pruned = store.prune_due(
        [t.id for t in tasks], default_keep, default_days, START, 1000, 100_000
    )

    assert pruned.unfinished == []
    assert sorted(pruned.run_ids) == sorted(i for doomed in expected.values() for i in doomed)
    for task in tasks:
        left = {row["id"] for row in runs_of(store, task.id)}
        assert left == before[task.id] - set(expected[task.id]), task


def test_the_latest_failure_and_running_runs_stay_and_overrides_win(store: BlockingStore) -> None:
    orch = orchestration(store)
    day = timedelta(days=1)
    plain = scheduled_task(store, orch, "* * * * *")
    old_fail = add_run(store, plain.id, RunStatus.FAILURE, START - 40 * day)
    older_fail = add_run(store, plain.id, RunStatus.TIMED_OUT, START - 41 * day)
    old_running = add_run(store, plain.id, RunStatus.RUNNING, START - 50 * day)
    new = [add_run(store, plain.id, RunStatus.SUCCESS, START - i * day) for i in range(1, 5)]
    # keep_runs=1 keeps the newest; its old failure stays, the newer success after it goes.
    few = scheduled_task(store, orch, "* * * * *", keep_runs=1)
    few_fail = add_run(store, few.id, RunStatus.FAILURE, START - 3 * day)
    few_ok = [add_run(store, few.id, RunStatus.SUCCESS, START - i * day) for i in (1, 2)]
    # keep_days=100: runs 40 days old stay, though the default (30 days) would remove them.
    patient = scheduled_task(store, orch, "* * * * *", keep_days=100.0)
    patient_old = add_run(store, patient.id, RunStatus.SUCCESS, START - 40 * day)

    pruned = store.prune_due(
        [plain.id, few.id, patient.id, "no-such-task"], 3, 30.0, START, 500, 500
    )

    assert sorted(pruned.run_ids) == sorted([older_fail, new[3], few_ok[1]])
    assert {r["id"] for r in runs_of(store, plain.id)} == {old_fail, old_running, *new[:3]}
    assert {r["id"] for r in runs_of(store, few.id)} == {few_fail, few_ok[0]}
    assert [r["id"] for r in runs_of(store, patient.id)] == [patient_old]


def test_limits_bound_a_call_and_name_what_is_left(store: BlockingStore) -> None:
    orch = orchestration(store)
    tasks = [scheduled_task(store, orch, "* * * * *", keep_runs=1) for _ in range(3)]
    for task in tasks:
        for minutes in range(11):
            add_run(store, task.id, RunStatus.SUCCESS, START - timedelta(minutes=minutes))
    ids = [t.id for t in tasks]

    first = store.prune_due(ids, 100, 30.0, START, 4, 10)  # 4, 4, then 2 of the third task
    assert len(first.run_ids) == 10
    assert first.unfinished == ids
    assert [len(runs_of(store, t.id)) for t in tasks] == [7, 7, 9]

    second = store.prune_due(first.unfinished, 100, 30.0, START, 6, 100)
    assert len(second.run_ids) == 18
    assert second.unfinished == [ids[2]]  # 6 of its 8 doomed runs: more are left
    third = store.prune_due(second.unfinished, 100, 30.0, START, 6, 100)
    assert len(third.run_ids) == 2 and third.unfinished == []
    assert [len(runs_of(store, t.id)) for t in tasks] == [1, 1, 1]


def test_tasks_with_nothing_to_prune_cost_one_query(store: BlockingStore) -> None:
    orch = orchestration(store)
    tasks = [scheduled_task(store, orch, "* * * * *") for _ in range(200)]
    for task in tasks:
        for minutes in range(3):
            add_run(store, task.id, RunStatus.SUCCESS, START - timedelta(minutes=minutes))
    statements: list[str] = []
    store.with_connection(lambda db: db.set_trace_callback(statements.append))
    try:
        pruned = store.prune_due([t.id for t in tasks], 3, 30.0, START, 500, 2000)
    finally:
        store.with_connection(lambda db: db.set_trace_callback(None))
    assert pruned == Pruned()
    assert len(statements) == 1  # no per-task statement, no transaction


# -- the service: run ends, passes ---------------------------------------------------------


@pytest.fixture
def service(
    tmp_path: Path, jp_asyncio_loop: asyncio.AbstractEventLoop
) -> Iterator[tuple[OrchService, FakeExecutor]]:
    """A service over a real store and a fake executor (runs end when the test says so)."""
    executor = FakeExecutor()
    config = ServiceConfig(data_dir=tmp_path / "data", keep_runs=2)
    store = Store(config.data_dir / "orch.db")
    made = OrchService(config, store, executor, Packager(tmp_path / "data" / "envs"))
    made.open()
    jp_asyncio_loop.run_until_complete(made.ensure_started())
    yield made, executor
    jp_asyncio_loop.run_until_complete(made.stop())


def count_calls(service: OrchService, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The task ids of every `prune_due` call the service made (once it returned)."""
    calls: list[list[str]] = []
    real = retention_queries.prune_due

    def counting(db: Any, task_ids: list[str], *args: Any) -> Pruned:
        pruned = real(db, task_ids, *args)
        calls.append(list(task_ids))
        return pruned

    monkeypatch.setattr(retention_queries, "prune_due", counting)
    return calls


async def until(condition: Any) -> None:
    """Let background work go on until `condition()` holds (bounded; no timing asserted)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


async def test_many_runs_ending_together_lead_to_one_pass(
    service: tuple[OrchService, FakeExecutor], monkeypatch: pytest.MonkeyPatch
) -> None:
    orch_service, executor = service
    store = BlockingStore(orch_service.store)
    gate = asyncio.Event()
    retention = orch_service.retention
    monkeypatch.setattr(retention, "wait", gate.wait)
    calls = count_calls(orch_service, monkeypatch)
    orch = orchestration(store)
    task_ids, old_runs = [], {}
    for number in range(60):
        request = TaskRequest(orch.id, 1, {}, keep_runs=1 if number % 2 else None)
        task = await orch_service.create_task(Scope(Caller("me")), RunType.ONCE, request)
        task_ids.append(task.id)
        old_runs[task.id] = [
            add_run(store, task.id, RunStatus.SUCCESS, now() - timedelta(minutes=m)) for m in (1, 2)
        ]
        for run_id in old_runs[task.id]:
            (orch_service.data.run(run_id) / "work").mkdir(parents=True)
    await until(lambda: len(executor.pending) == 60)

    for run_id in list(executor.pending):
        executor.end(run_id, RunStatus.SUCCESS)
    await until(lambda: len(retention._pending) == 60)  # every end reached retention

    scheduled = retention._pass
    assert scheduled is not None and calls == []  # one pass waits for all of them
    gate.set()
    await scheduled
    assert calls == [sorted(task_ids)]
    for number, task_id in enumerate(task_ids):
        runs = store.list_runs(task_id)
        assert len(runs) == (1 if number % 2 else 2)  # keep_runs=1 here, the default 2 there
        assert all(r.status is RunStatus.SUCCESS and r.trigger == "once" for r in runs[:1])
        for run_id in old_runs[task_id]:
            assert orch_service.data.run(run_id).exists() == any(r.id == run_id for r in runs)
    assert retention._pass is None and not retention._pending


async def test_what_a_pass_leaves_is_pruned_by_the_next(
    service: tuple[OrchService, FakeExecutor], monkeypatch: pytest.MonkeyPatch
) -> None:
    orch_service, _ = service
    store = BlockingStore(orch_service.store)
    retention = orch_service.retention
    monkeypatch.setattr(retention, "delay", 0.0)
    monkeypatch.setattr(retention, "pass_limit", 5)
    calls = count_calls(orch_service, monkeypatch)
    task = scheduled_task(store, orchestration(store), "* * * * *")
    for minutes in range(14):
        add_run(store, task.id, RunStatus.SUCCESS, now() - timedelta(minutes=minutes))
    run = TaskRun(new_id(), task.id, RunStatus.SUCCESS, now(), now())

    retention.run_ended(run)
    retention.run_ended(run)  # a second end before the pass: no second pass
    await until(lambda: len(calls) >= 3 and retention._pass is None)

    assert calls == [[task.id]] * 3  # 5 + 5 + 2 of the 12 beyond keep_runs
    assert len(store.list_runs(task.id)) == 2


async def test_the_hourly_pass_goes_through_chunks_of_tasks(
    service: tuple[OrchService, FakeExecutor], monkeypatch: pytest.MonkeyPatch
) -> None:
    orch_service, _ = service
    store = BlockingStore(orch_service.store)
    monkeypatch.setattr(orch_service.retention, "chunk", 10)
    calls = count_calls(orch_service, monkeypatch)
    orch = orchestration(store)
    tasks = [scheduled_task(store, orch, "* * * * *") for _ in range(25)]
    for task in tasks:
        for minutes in range(4):
            add_run(store, task.id, RunStatus.SUCCESS, now() - timedelta(minutes=minutes))

    await orch_service.retention.prune_all()

    assert [len(ids) for ids in calls] == [10, 10, 5]
    assert all(len(store.list_runs(task.id)) == 2 for task in tasks)
