"""SQLite storage of workspaces, orchestrations, tasks and runs.

One connection, used from one dedicated thread: SQLite serialises writers anyway, and a single
thread keeps every statement off the event loop without locks. The methods here are plain
blocking functions; `Store.call` runs one of them on that thread (`Store.call_blocking` off the
event loop). The rule is checked: the connection is handed out (`Store.db`) on that thread only,
and anywhere else `WrongThread` is raised. The tables and the mapping of
rows to records are `schema.py`'s; retention's queries are `retention_queries.py`'s, those of
workspaces `workspace_queries.py`'s, the SQL of task listings `task_queries.py`'s.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from . import schema
from .models import (
    FAILED_STATUSES,
    Activity,
    Orchestration,
    OrchestrationStatus,
    RunStatus,
    RunType,
    Skip,
    SkipReason,
    Task,
    TaskQuery,
    TaskRun,
    TaskStatus,
    Visible,
    Workspace,
    now,
)
from .schema import (
    CHUNK,
    as_orchestration,
    as_run,
    as_skip,
    as_task,
    as_workspace,
    placeholders,
    stored,
    visible_where,
)
from .task_queries import task_select

T = TypeVar("T")


class WrongThread(AssertionError):
    """The store's connection was asked for off the store's own thread (a bug of the caller)."""

    def __init__(self) -> None:
        super().__init__(
            f"the store's connection is used on its own thread only, not on "
            f"{threading.current_thread().name!r}: go through Store.call (or call_blocking)"
        )


class Store:
    """The SQLite database of one data directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orch-db")
        self._db: sqlite3.Connection | None = None
        self._thread: int | None = None  # the database thread's identity, once it has run

    # -- plumbing ---------------------------------------------------------------------------

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run one blocking store method on the database thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args))

    async def query(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(connection, *args)` on the database thread: for query modules (such as
        `retention_queries`) that work on the connection rather than through a method."""
        return await self.call(lambda: fn(self.db, *args))

    def call_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run one store method on the database thread and wait for it: for start-up,
        shutdown, tools and tests, never on the event loop."""
        return self._executor.submit(fn, *args).result()

    @property
    def db(self) -> sqlite3.Connection:
        """The open connection, on the database thread only (`WrongThread` elsewhere)."""
        if threading.get_ident() != self._thread:  # one compare: always checked
            raise WrongThread()
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    def open(self) -> None:
        """Open (and create or migrate) the database, on the database thread."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.call_blocking(self._connect)

    def _connect(self) -> None:
        self._thread = threading.get_ident()
        # It holds secrets (connections' details): readable by the server's user only.
        # SQLite gives its -wal and -shm files the database file's permissions.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        for path in (
            self.path,
            *(self.path.with_name(self.path.name + s) for s in ("-wal", "-shm")),
        ):
            if path.exists():
                os.chmod(path, 0o600)
        # sqlite3's own check_same_thread stays on: a connection leaked to another thread
        # fails there too.
        db = sqlite3.connect(self.path, isolation_level=None)
        schema.prepare(db)
        self._db = db

    def close(self) -> None:
        """Close the connection on the database thread (after what is queued), then stop it."""
        if self._db is not None:
            # Closing from another thread while a query runs crashes SQLite: queue the close.
            self._executor.submit(self._close_connection).result()
        self._executor.shutdown(wait=True)

    def _close_connection(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def data_version(self) -> int:
        """A number that changes when another connection (another server) commits."""
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    def _write(self, statements: Iterable[tuple[str, Sequence[object]]]) -> None:
        """Run several statements in one transaction: all of them land, or none."""
        schema.transaction(self.db, statements)

    # -- workspaces -------------------------------------------------------------------------

    def get_workspace(self, workspace_id: int) -> Workspace | None:
        """One workspace by id."""
        row = self.db.execute("SELECT * FROM workspaces WHERE id = ?", (workspace_id,)).fetchone()
        return as_workspace(row) if row else None

    def list_workspaces(self) -> list[Workspace]:
        """Every workspace, oldest first."""
        rows = self.db.execute("SELECT * FROM workspaces ORDER BY id").fetchall()
        return [as_workspace(row) for row in rows]

    # -- orchestrations ---------------------------------------------------------------------

    def insert_orchestration(self, orch: Orchestration) -> None:
        """Record a new orchestration."""
        self.db.execute(
            "INSERT INTO orchestrations (id, name, file_name, file_size, sha, status, owner_id,"
            " workspace_id, entrypoint, requirements, image_path, error, env_key, build_seconds,"
            " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                orch.id,
                orch.name,
                orch.file_name,
                orch.file_size,
                orch.sha,
                orch.status.value,
                orch.owner_id,
                orch.workspace_id,
                orch.entrypoint,
                orch.requirements,
                orch.image_path,
                orch.error,
                orch.env_key,
                orch.build_seconds,
                stored(orch.created_at),
                stored(orch.updated_at),
            ),
        )

    def update_orchestration(self, orch: Orchestration) -> None:
        """Write an orchestration's packaging state."""
        orch.updated_at = now()
        self.db.execute(
            "UPDATE orchestrations SET status=?, image_path=?, error=?, env_key=?,"
            " build_seconds=?, updated_at=? WHERE id=?",
            (
                orch.status.value,
                orch.image_path,
                orch.error,
                orch.env_key,
                orch.build_seconds,
                stored(orch.updated_at),
                orch.id,
            ),
        )

    def get_orchestration(self, orch_id: str) -> Orchestration | None:
        """One orchestration by id."""
        row = self.db.execute("SELECT * FROM orchestrations WHERE id = ?", (orch_id,)).fetchone()
        return as_orchestration(row) if row else None

    def list_orchestrations(
        self,
        workspace_ids: Sequence[int] = (),
        status: OrchestrationStatus | None = None,
        visible: Visible | None = None,
    ) -> list[Orchestration]:
        """Orchestrations of some workspaces (all when empty), oldest first; only those a
        caller sees when `visible` is given."""
        sql, params = visible_where(visible)
        sql = "SELECT * FROM orchestrations WHERE 1=1" + sql
        if workspace_ids:
            sql += f" AND workspace_id IN ({placeholders(workspace_ids)})"
            params.extend(workspace_ids)
        if status is not None:
            sql += " AND status = ?"
            params.append(status.value)
        rows = self.db.execute(sql + " ORDER BY created_at", params).fetchall()
        return [as_orchestration(row) for row in rows]

    def delete_orchestrations(self, orch_ids: Sequence[str]) -> None:
        """Remove orchestrations with their tasks and runs, in one transaction."""
        marks, params = placeholders(orch_ids), list(orch_ids)
        statements = _task_deletes(f"SELECT id FROM tasks WHERE orch_id IN ({marks})", params)
        statements.append((f"DELETE FROM orchestrations WHERE id IN ({marks})", params))
        self._write(statements)

    def delete_tasks(self, task_ids: Sequence[str]) -> None:
        """Remove tasks with their runs, skips and changes, in one transaction."""
        self._write(_task_deletes(placeholders(task_ids), list(task_ids)))

    def count_sha_users(self, sha: str) -> int:
        """How many orchestrations share one archive."""
        row = self.db.execute("SELECT COUNT(*) FROM orchestrations WHERE sha = ?", (sha,))
        return int(row.fetchone()[0])

    # -- tasks ------------------------------------------------------------------------------

    def _task_insert(self, task: Task) -> tuple[str, Sequence[object]]:
        return (
            "INSERT INTO tasks (id, name, workspace_id, orch_id, orch_sha, owner_id, status,"
            " run_type, input_data, killed, timeout, schedule, timezone, concurrency_policy,"
            " starting_deadline_seconds, keep_runs, keep_days, max_log_bytes, executor,"
            " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                task.id,
                task.name,
                task.workspace_id,
                task.orch_id,
                task.orch_sha,
                task.owner_id,
                task.status.value,
                task.run_type.value,
                json.dumps(task.input_data),
                int(task.killed),
                task.timeout,
                task.schedule,
                task.timezone,
                task.concurrency_policy.value,
                task.starting_deadline_seconds,
                task.keep_runs,
                task.keep_days,
                task.max_log_bytes,
                task.executor,
                stored(task.created_at),
                stored(task.updated_at),
            ),
        )

    def _task_update(self, task: Task) -> tuple[str, Sequence[object]]:
        task.updated_at = now()
        # A kill is final: a write from a copy of the task read before another server killed
        # it changes nothing.
        return (
            "UPDATE tasks SET status=?, killed=?, last_fire_at=?, updated_at=?"
            " WHERE id=? AND NOT (killed = 1 AND ? = 0)",
            (
                task.status.value,
                int(task.killed),
                stored(task.last_fire_at),
                stored(task.updated_at),
                task.id,
                int(task.killed),
            ),
        )

    def insert_task(self, task: Task) -> None:
        """Record a new task."""
        self._write([self._task_insert(task)])

    def update_task(self, task: Task) -> None:
        """Write a task's status and killed flag."""
        self._write([self._task_update(task)])

    def get_task(self, task_id: str, run_limit: int = 5) -> Task | None:
        """One task by id, with its newest runs."""
        row = self.db.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
        if row is None:
            return None
        task = as_task(row)
        task.last_runs = self.list_runs(task.id, limit=run_limit)
        task.skipped = self.list_skips(task.id, limit=5)
        return task

    def list_tasks(self, query: TaskQuery) -> list[Task]:
        """Tasks matching the query, newest first, each with its newest runs."""
        sql, params = task_select(query)
        tasks = [as_task(row) for row in self.db.execute(sql, params).fetchall()]
        newest = self.newest_runs([t.id for t in tasks], query.run_limit)
        for task in tasks:
            task.last_runs = newest.get(task.id, [])
        return tasks

    def newest_runs(self, task_ids: Sequence[str], limit: int) -> dict[str, list[TaskRun]]:
        """The newest `limit` runs of each task, in one query per chunk of tasks.

        Each task's runs are read through the (task_id, updated_at, ...) index, newest first,
        `limit` of them: the cost follows the page, not how many runs the tasks keep.
        """
        found: dict[str, list[TaskRun]] = {}
        if limit <= 0:
            return found
        for start in range(0, len(task_ids), CHUNK):
            chunk = list(task_ids[start : start + CHUNK])
            rows = self.db.execute(
                "SELECT r.* FROM json_each(?) AS t JOIN runs AS r ON r.id IN ("
                " SELECT id FROM runs WHERE task_id = t.value"
                " ORDER BY updated_at DESC, created_at DESC, id DESC LIMIT ?)"
                " ORDER BY r.task_id, r.updated_at DESC, r.created_at DESC, r.id DESC",
                (json.dumps(chunk), limit),
            ).fetchall()
            for row in rows:
                found.setdefault(row["task_id"], []).append(as_run(row))
        return found

    def task_ids_by_sha(self, sha: str, visible: Visible | None = None) -> list[str]:
        """Ids of the tasks made from orchestrations with this archive hash (that a caller
        sees, when `visible` is given)."""
        where, params = visible_where(visible)
        rows = self.db.execute(
            f"SELECT id FROM tasks WHERE orch_sha = ?{where} ORDER BY created_at", [sha, *params]
        ).fetchall()
        return [row["id"] for row in rows]

    # -- runs -------------------------------------------------------------------------------

    def start_run(self, task: Task, run: TaskRun, token_hash: str | None) -> bool:
        """Record a run and its task's new status together; False if its instant has a run,
        or if the task was killed meanwhile (through another server of the data directory:
        `task` is then stale, and no run may start after a kill's answer)."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT killed FROM tasks WHERE id=?", (task.id,)).fetchone()
            if row is not None and row[0] and not task.killed:
                db.execute("ROLLBACK")
                return False
            db.execute(
                "INSERT INTO runs (id, task_id, status, trigger, token_hash, created_at,"
                " updated_at, started_at, scheduled_for, executor, input_data)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run.id,
                    run.task_id,
                    run.status.value,
                    run.trigger.value,
                    token_hash,
                    stored(run.created_at),
                    stored(run.updated_at),
                    stored(run.started_at),
                    stored(run.scheduled_for),
                    run.executor,
                    None if run.input_data is None else json.dumps(run.input_data),
                ),
            )
            db.execute(*self._task_update(task))
        except sqlite3.IntegrityError:
            db.execute("ROLLBACK")
            return False
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return True

    def finish_run(self, run: TaskRun, task: Task | None) -> None:
        """Record a run's end (and its task's status, when that changes) together."""
        run.updated_at = now()
        statements: list[tuple[str, Sequence[object]]] = [
            (
                "UPDATE runs SET status=?, exit_code=?, reason=?, updated_at=?, ended_at=?,"
                " token_hash=NULL WHERE id=?",
                (
                    run.status.value,
                    run.exit_code,
                    run.reason,
                    stored(run.updated_at),
                    stored(run.ended_at),
                    run.id,
                ),
            )
        ]
        if task is not None:
            statements.append(self._task_update(task))
        self._write(statements)

    def claim_run(self, run_id: str, worker: str) -> str | None:
        """Claim a running run for the worker about to start it, at most once: None when
        this claim won, else who holds it (the refused claim is counted)."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            won = db.execute(
                "UPDATE runs SET worker=? WHERE id=? AND status='running'"
                " AND (worker IS NULL OR worker=?)",  # the same worker asking again: its answer
                (worker, run_id, worker),  # was lost, it is still the one claim
            ).rowcount
            holder = None
            if not won:
                db.execute(
                    "UPDATE runs SET refused_claims = refused_claims + 1 WHERE id=?", (run_id,)
                )
                row = db.execute("SELECT worker, status FROM runs WHERE id=?", (run_id,))
                found = row.fetchone()
                holder = (found[0] or f"nobody (the run is {found[1]})") if found else "nobody"
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return holder

    def get_run(self, run_id: str) -> TaskRun | None:
        """One run by id."""
        row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return as_run(row) if row else None

    def list_runs(
        self,
        task_id: str,
        limit: int | None = None,
        status: RunStatus | None = None,
        created_range: tuple[datetime, datetime] | None = None,
        after: str | None = None,
    ) -> list[TaskRun]:
        """A task's runs, newest first (by `updated_at`, as the contract orders them); with
        `after` (a run id), the page that follows that run."""
        sql = "SELECT * FROM runs WHERE task_id = ?"
        params: list[object] = [task_id]
        if after is not None:
            sql += (
                " AND (updated_at, created_at, id) <"
                " (SELECT updated_at, created_at, id FROM runs WHERE id = ?)"
            )
            params.append(after)
        if status is not None:
            sql += " AND status = ?"
            params.append(status.value)
        if created_range is not None:
            sql += " AND created_at >= ? AND created_at <= ?"
            params.extend([stored(created_range[0]), stored(created_range[1])])
        sql += " ORDER BY updated_at DESC, created_at DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [as_run(row) for row in self.db.execute(sql, params).fetchall()]

    def active_runs(self) -> list[tuple[TaskRun, str | None]]:
        """Every run still marked running, with its token hash."""
        rows = self.db.execute("SELECT * FROM runs WHERE status = ?", (RunStatus.RUNNING.value,))
        return [(as_run(row), row["token_hash"]) for row in rows.fetchall()]

    def count_runs(self, task_ids: Sequence[str]) -> int:
        """How many runs some tasks have."""
        if not task_ids:
            return 0
        sql = f"SELECT COUNT(*) FROM runs WHERE task_id IN ({placeholders(task_ids)})"
        return int(self.db.execute(sql, list(task_ids)).fetchone()[0])

    def run_ids(self, task_ids: Sequence[str]) -> list[str]:
        """Ids of every run of some tasks."""
        if not task_ids:
            return []
        sql = f"SELECT id FROM runs WHERE task_id IN ({placeholders(task_ids)})"
        return [row["id"] for row in self.db.execute(sql, list(task_ids)).fetchall()]

    def running_run_ids(self, task_id: str) -> list[str]:
        """Ids of a task's runs still marked running (by any server of the data directory)."""
        rows = self.db.execute(
            "SELECT id FROM runs WHERE task_id = ? AND status = ?",
            (task_id, RunStatus.RUNNING.value),
        )
        return [row["id"] for row in rows.fetchall()]

    def running_tasks(self, task_ids: Sequence[str]) -> list[str]:
        """Those of some tasks with a run marked running (by any server), sorted."""
        marks = placeholders(task_ids)
        sql = f"SELECT DISTINCT task_id FROM runs WHERE status = ? AND task_id IN ({marks})"
        rows = self.db.execute(sql + " ORDER BY task_id", [RunStatus.RUNNING.value, *task_ids])
        return [row["task_id"] for row in rows.fetchall()]

    def activity(
        self, since: datetime | None, limit: int, visible: Visible | None = None
    ) -> Activity:
        """How many tasks have a run going, and the newest `limit` runs that failed or timed
        out (after `since`, if given), each with its task's name; of the tasks a caller sees,
        when `visible` is given."""
        as_of = now()
        where, seen = visible_where(visible, "tasks")
        join = " JOIN tasks ON tasks.id = runs.task_id" if where else ""
        running = self.db.execute(
            f"SELECT COUNT(DISTINCT task_id) FROM runs{join} WHERE runs.status = ?{where}",
            [RunStatus.RUNNING.value, *seen],
        ).fetchone()[0]
        failed: list[tuple[TaskRun, str | None]] = []
        # one index range per status, newest first: the cost follows `limit`, not how many
        # failures the table keeps
        for status in FAILED_STATUSES:
            rows = self.db.execute(
                "SELECT runs.*, tasks.name AS task_name FROM runs"
                " JOIN tasks ON tasks.id = runs.task_id"
                f" WHERE runs.status = ? AND runs.updated_at > ?{where}"
                " ORDER BY runs.updated_at DESC LIMIT ?",
                [status.value, stored(since) if since is not None else "", *seen, limit],
            )
            failed.extend((as_run(row), row["task_name"]) for row in rows.fetchall())
        failed.sort(key=lambda pair: (pair[0].updated_at, pair[0].id), reverse=True)
        return Activity(running=int(running), failed=failed[:limit], as_of=as_of)

    def killed_among(self, task_ids: Sequence[str]) -> list[str]:
        """Which of some tasks are killed (or gone)."""
        if not task_ids:
            return []
        sql = f"SELECT id FROM tasks WHERE killed = 0 AND id IN ({placeholders(task_ids)})"
        alive = {row["id"] for row in self.db.execute(sql, list(task_ids)).fetchall()}
        return [task_id for task_id in task_ids if task_id not in alive]

    def live_tasks(self) -> list[Task]:
        """Scheduled and continuous tasks that are neither killed nor finished."""
        rows = self.db.execute(
            "SELECT * FROM tasks WHERE run_type != ? AND killed = 0",
            (RunType.ONCE.value,),
        ).fetchall()
        return [task for task in map(as_task, rows) if task.live]

    def add_skips(self, task_id: str, instants: Sequence[datetime], reason: SkipReason) -> None:
        """Record scheduled instants that did not run (once each)."""
        stamp = stored(now())
        self.db.executemany(
            "INSERT OR IGNORE INTO skips (task_id, scheduled_for, reason, recorded_at)"
            " VALUES (?,?,?,?)",
            [(task_id, stored(instant), reason.value, stamp) for instant in instants],
        )

    def list_skips(self, task_id: str, limit: int | None = None) -> list[Skip]:
        """A task's skipped instants, newest first."""
        sql = "SELECT * FROM skips WHERE task_id = ? ORDER BY scheduled_for DESC"
        params: list[object] = [task_id]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [as_skip(row) for row in self.db.execute(sql, params).fetchall()]

    def task_ids(self) -> list[str]:
        """Every task id."""
        return [row["id"] for row in self.db.execute("SELECT id FROM tasks").fetchall()]

    def tasks_waiting_for(self, orch_id: str) -> list[Task]:
        """Tasks of one orchestration still pending (waiting for packaging)."""
        rows = self.db.execute(
            "SELECT * FROM tasks WHERE orch_id = ? AND status = ? AND killed = 0",
            (orch_id, TaskStatus.PENDING.value),
        ).fetchall()
        return [as_task(row) for row in rows]


def _task_deletes(task_ids: str, params: Sequence[object]) -> list[tuple[str, Sequence[object]]]:
    """The statements removing the tasks `task_ids` names (placeholders or a subquery, with
    `params`) and every row that belongs to them, the tasks last."""
    tables = ("runs", "skips", "task_changes")
    statements: list[tuple[str, Sequence[object]]] = [
        (f"DELETE FROM {table} WHERE task_id IN ({task_ids})", params) for table in tables
    ]
    statements.append((f"DELETE FROM tasks WHERE id IN ({task_ids})", params))
    return statements
