"""SQLite storage of workspaces, orchestrations, tasks and runs.

One connection, used from one dedicated thread: SQLite serialises writers anyway, and a single
thread keeps every statement off the event loop without locks. The methods here are plain
blocking functions; `Store.call` runs one of them on that thread.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

from .models import (
    FAILED_STATUSES,
    Activity,
    ConcurrencyPolicy,
    Orchestration,
    OrchestrationStatus,
    RunStatus,
    RunType,
    Skip,
    SkipReason,
    Task,
    TaskRun,
    TaskStatus,
    Trigger,
    Workspace,
    now,
)

T = TypeVar("T")

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS workspaces (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_by TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orchestrations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    file_name TEXT NOT NULL,
    file_size INTEGER NOT NULL,
    sha TEXT NOT NULL,
    status TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    entrypoint TEXT NOT NULL,
    requirements TEXT,
    image_path TEXT NOT NULL DEFAULT '',
    error TEXT,
    env_key TEXT,
    build_seconds REAL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orchestrations_workspace ON orchestrations(workspace_id, created_at);
CREATE INDEX IF NOT EXISTS orchestrations_sha ON orchestrations(sha);
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    name TEXT,
    workspace_id INTEGER NOT NULL,
    orch_id TEXT NOT NULL REFERENCES orchestrations(id),
    orch_sha TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    status TEXT NOT NULL,
    run_type TEXT NOT NULL,
    input_data TEXT NOT NULL,
    killed INTEGER NOT NULL DEFAULT 0,
    timeout INTEGER,
    schedule TEXT,
    timezone TEXT,
    concurrency_policy TEXT NOT NULL DEFAULT 'allow',
    starting_deadline_seconds INTEGER,
    keep_runs INTEGER,
    keep_days REAL,
    last_fire_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_workspace ON tasks(workspace_id, created_at);
CREATE INDEX IF NOT EXISTS tasks_created ON tasks(created_at, id);
CREATE INDEX IF NOT EXISTS tasks_orch ON tasks(orch_id);
CREATE INDEX IF NOT EXISTS tasks_sha ON tasks(orch_sha);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL REFERENCES tasks(id),
    status TEXT NOT NULL,
    trigger TEXT NOT NULL,
    exit_code INTEGER,
    reason TEXT,
    token_hash TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    started_at TEXT,
    ended_at TEXT,
    scheduled_for TEXT
);
CREATE INDEX IF NOT EXISTS runs_task_updated ON runs(task_id, updated_at, created_at, id);
CREATE INDEX IF NOT EXISTS runs_task_created ON runs(task_id, created_at);
-- Runs by status, newest change last: the running runs, and the latest failures of every task.
CREATE INDEX IF NOT EXISTS runs_status_updated ON runs(status, updated_at);
DROP INDEX IF EXISTS runs_status;
-- One scheduled instant never gets two runs, whatever happens (manual runs have no instant).
CREATE UNIQUE INDEX IF NOT EXISTS runs_instant ON runs(task_id, scheduled_for);
CREATE TABLE IF NOT EXISTS skips (
    task_id TEXT NOT NULL REFERENCES tasks(id),
    scheduled_for TEXT NOT NULL,
    reason TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    UNIQUE (task_id, scheduled_for)
);
"""


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _req_dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _workspace(row: sqlite3.Row) -> Workspace:
    return Workspace(
        id=row["id"],
        name=row["name"],
        created_by=row["created_by"],
        created_at=_req_dt(row["created_at"]),
    )


def _orchestration(row: sqlite3.Row) -> Orchestration:
    return Orchestration(
        id=row["id"],
        name=row["name"],
        file_name=row["file_name"],
        file_size=row["file_size"],
        sha=row["sha"],
        status=OrchestrationStatus(row["status"]),
        owner_id=row["owner_id"],
        workspace_id=row["workspace_id"],
        entrypoint=row["entrypoint"],
        requirements=row["requirements"],
        image_path=row["image_path"],
        error=row["error"],
        env_key=row["env_key"],
        build_seconds=row["build_seconds"],
        created_at=_req_dt(row["created_at"]),
        updated_at=_req_dt(row["updated_at"]),
    )


def _task(row: sqlite3.Row) -> Task:
    return Task(
        id=row["id"],
        name=row["name"],
        workspace_id=row["workspace_id"],
        orch_id=row["orch_id"],
        orch_sha=row["orch_sha"],
        owner_id=row["owner_id"],
        status=TaskStatus(row["status"]),
        run_type=RunType(row["run_type"]),
        input_data=json.loads(row["input_data"]),
        killed=bool(row["killed"]),
        timeout=row["timeout"],
        schedule=row["schedule"],
        timezone=row["timezone"],
        concurrency_policy=ConcurrencyPolicy(row["concurrency_policy"]),
        starting_deadline_seconds=row["starting_deadline_seconds"],
        keep_runs=row["keep_runs"],
        keep_days=row["keep_days"],
        last_fire_at=_dt(row["last_fire_at"]),
        created_at=_req_dt(row["created_at"]),
        updated_at=_req_dt(row["updated_at"]),
    )


def _run(row: sqlite3.Row) -> TaskRun:
    return TaskRun(
        id=row["id"],
        task_id=row["task_id"],
        status=RunStatus(row["status"]),
        trigger=Trigger(row["trigger"]),
        exit_code=row["exit_code"],
        reason=row["reason"],
        created_at=_req_dt(row["created_at"]),
        updated_at=_req_dt(row["updated_at"]),
        started_at=_dt(row["started_at"]),
        ended_at=_dt(row["ended_at"]),
        scheduled_for=_dt(row["scheduled_for"]),
    )


def _skip(row: sqlite3.Row) -> Skip:
    return Skip(
        task_id=row["task_id"],
        scheduled_for=_req_dt(row["scheduled_for"]),
        reason=SkipReason(row["reason"]),
        recorded_at=_req_dt(row["recorded_at"]),
    )


def _placeholders(values: Sequence[object]) -> str:
    return ",".join("?" for _ in values)


#: How many ids go in one `IN (...)` (well under SQLite's limit on variables).
CHUNK = 500


def _cutoff(at: datetime, days: float) -> str | None:
    """The creation time before which runs are too old, as stored (None: no run is)."""
    try:
        return _ts(at - timedelta(days=days))
    except OverflowError:  # more days than a datetime can count back: nothing is too old
        return None


@dataclass
class Pruned:
    """What a retention pass deleted, and the tasks it left runs to delete of (a limit hit)."""

    run_ids: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)


@dataclass
class TaskQuery:
    """Filters and paging of a task listing (every filter given must hold)."""

    workspace_ids: Sequence[int] = ()
    orch_ids: Sequence[str] = ()
    orch_sha: str | None = None
    killed: bool | None = None
    created_range: tuple[datetime, datetime] | None = None
    run_limit: int = 5
    limit: int | None = None
    # Keyset paging, newest first: only tasks older than this (created_at, id), the key of
    # the last task of the previous page. A page costs the same however deep it is.
    before: tuple[datetime, str] | None = None

    def where(self) -> tuple[str, list[object]]:
        """The SQL condition and its parameters."""
        sql = "1=1"
        params: list[object] = []
        if self.workspace_ids:
            sql += f" AND workspace_id IN ({_placeholders(self.workspace_ids)})"
            params.extend(self.workspace_ids)
        if self.orch_ids:
            sql += f" AND orch_id IN ({_placeholders(self.orch_ids)})"
            params.extend(self.orch_ids)
        if self.orch_sha is not None:
            sql += " AND orch_sha = ?"
            params.append(self.orch_sha)
        if self.killed is not None:
            sql += " AND killed = ?"
            params.append(int(self.killed))
        if self.created_range is not None:
            sql += " AND created_at >= ? AND created_at <= ?"
            params.extend([_ts(self.created_range[0]), _ts(self.created_range[1])])
        if self.before is not None:
            sql += " AND (created_at, id) < (?, ?)"
            params.extend([_ts(self.before[0]), self.before[1]])
        return sql, params


class Store:
    """The SQLite database of one data directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orch-db")
        self._db: sqlite3.Connection | None = None

    # -- plumbing ---------------------------------------------------------------------------

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run one blocking store method on the database thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args))

    @property
    def db(self) -> sqlite3.Connection:
        """The open connection (opened by `open`)."""
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    def open(self) -> None:
        """Open (and create or migrate) the database."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(SCHEMA)
        if db.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 0:
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        db.execute(
            "INSERT OR IGNORE INTO workspaces (id, name, created_by, created_at) "
            "VALUES (1, 'default', '', ?)",
            (_ts(now()),),
        )
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
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            for sql, params in statements:
                db.execute(sql, params)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # -- workspaces -------------------------------------------------------------------------

    def create_workspace(self, name: str, created_by: str) -> Workspace | None:
        """Insert a workspace; None when the name is taken."""
        try:
            cur = self.db.execute(
                "INSERT INTO workspaces (name, created_by, created_at) VALUES (?, ?, ?)",
                (name, created_by, _ts(now())),
            )
        except sqlite3.IntegrityError:
            return None
        return self.get_workspace(int(cur.lastrowid or 0))

    def get_workspace(self, workspace_id: int) -> Workspace | None:
        """One workspace by id."""
        row = self.db.execute("SELECT * FROM workspaces WHERE id = ?", (workspace_id,)).fetchone()
        return _workspace(row) if row else None

    def list_workspaces(self) -> list[Workspace]:
        """Every workspace, oldest first."""
        rows = self.db.execute("SELECT * FROM workspaces ORDER BY id").fetchall()
        return [_workspace(row) for row in rows]

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
                _ts(orch.created_at),
                _ts(orch.updated_at),
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
                _ts(orch.updated_at),
                orch.id,
            ),
        )

    def get_orchestration(self, orch_id: str) -> Orchestration | None:
        """One orchestration by id."""
        row = self.db.execute("SELECT * FROM orchestrations WHERE id = ?", (orch_id,)).fetchone()
        return _orchestration(row) if row else None

    def list_orchestrations(
        self, workspace_ids: Sequence[int] = (), status: OrchestrationStatus | None = None
    ) -> list[Orchestration]:
        """Orchestrations of some workspaces (all when empty), oldest first."""
        sql = "SELECT * FROM orchestrations WHERE 1=1"
        params: list[object] = []
        if workspace_ids:
            sql += f" AND workspace_id IN ({_placeholders(workspace_ids)})"
            params.extend(workspace_ids)
        if status is not None:
            sql += " AND status = ?"
            params.append(status.value)
        rows = self.db.execute(sql + " ORDER BY created_at", params).fetchall()
        return [_orchestration(row) for row in rows]

    def delete_orchestrations(self, orch_ids: Sequence[str]) -> None:
        """Remove orchestrations with their tasks and runs, in one transaction."""
        marks = _placeholders(orch_ids)
        task_q = f"SELECT id FROM tasks WHERE orch_id IN ({marks})"
        self._write(
            [
                (f"DELETE FROM runs WHERE task_id IN ({task_q})", list(orch_ids)),
                (f"DELETE FROM skips WHERE task_id IN ({task_q})", list(orch_ids)),
                (f"DELETE FROM tasks WHERE orch_id IN ({marks})", list(orch_ids)),
                (f"DELETE FROM orchestrations WHERE id IN ({marks})", list(orch_ids)),
            ]
        )

    def count_sha_users(self, sha: str) -> int:
        """How many orchestrations share one archive."""
        row = self.db.execute("SELECT COUNT(*) FROM orchestrations WHERE sha = ?", (sha,))
        return int(row.fetchone()[0])

    # -- tasks ------------------------------------------------------------------------------

    def _task_insert(self, task: Task) -> tuple[str, Sequence[object]]:
        return (
            "INSERT INTO tasks (id, name, workspace_id, orch_id, orch_sha, owner_id, status,"
            " run_type, input_data, killed, timeout, schedule, timezone, concurrency_policy,"
            " starting_deadline_seconds, keep_runs, keep_days, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
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
                _ts(task.created_at),
                _ts(task.updated_at),
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
                _ts(task.last_fire_at),
                _ts(task.updated_at),
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
        task = _task(row)
        task.last_runs = self.list_runs(task.id, limit=run_limit)
        task.skipped = self.list_skips(task.id, limit=5)
        return task

    def list_tasks(self, query: TaskQuery) -> list[Task]:
        """Tasks matching the query, newest first, each with its newest runs."""
        where, params = query.where()
        sql = f"SELECT * FROM tasks WHERE {where} ORDER BY created_at DESC, id DESC"
        if query.limit is not None:
            sql += " LIMIT ?"
            params.append(query.limit)
        tasks = [_task(row) for row in self.db.execute(sql, params).fetchall()]
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
                found.setdefault(row["task_id"], []).append(_run(row))
        return found

    def task_ids_by_sha(self, sha: str) -> list[str]:
        """Ids of the tasks made from orchestrations with this archive hash."""
        rows = self.db.execute(
            "SELECT id FROM tasks WHERE orch_sha = ? ORDER BY created_at", (sha,)
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
                " updated_at, started_at, scheduled_for) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    run.id,
                    run.task_id,
                    run.status.value,
                    run.trigger.value,
                    token_hash,
                    _ts(run.created_at),
                    _ts(run.updated_at),
                    _ts(run.started_at),
                    _ts(run.scheduled_for),
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
                    _ts(run.updated_at),
                    _ts(run.ended_at),
                    run.id,
                ),
            )
        ]
        if task is not None:
            statements.append(self._task_update(task))
        self._write(statements)

    def get_run(self, run_id: str) -> TaskRun | None:
        """One run by id."""
        row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _run(row) if row else None

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
            params.extend([_ts(created_range[0]), _ts(created_range[1])])
        sql += " ORDER BY updated_at DESC, created_at DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_run(row) for row in self.db.execute(sql, params).fetchall()]

    def active_runs(self) -> list[tuple[TaskRun, str | None]]:
        """Every run still marked running, with its token hash."""
        rows = self.db.execute("SELECT * FROM runs WHERE status = ?", (RunStatus.RUNNING.value,))
        return [(_run(row), row["token_hash"]) for row in rows.fetchall()]

    def count_runs(self, task_ids: Sequence[str]) -> int:
        """How many runs some tasks have."""
        if not task_ids:
            return 0
        sql = f"SELECT COUNT(*) FROM runs WHERE task_id IN ({_placeholders(task_ids)})"
        return int(self.db.execute(sql, list(task_ids)).fetchone()[0])

    def run_ids(self, task_ids: Sequence[str]) -> list[str]:
        """Ids of every run of some tasks."""
        if not task_ids:
            return []
        sql = f"SELECT id FROM runs WHERE task_id IN ({_placeholders(task_ids)})"
        return [row["id"] for row in self.db.execute(sql, list(task_ids)).fetchall()]

    def running_run_ids(self, task_id: str) -> list[str]:
        """Ids of a task's runs still marked running (by any server of the data directory)."""
        rows = self.db.execute(
            "SELECT id FROM runs WHERE task_id = ? AND status = ?",
            (task_id, RunStatus.RUNNING.value),
        )
        return [row["id"] for row in rows.fetchall()]

    def activity(self, since: datetime | None, limit: int) -> Activity:
        """How many tasks have a run going, and the newest `limit` runs that failed or timed
        out (after `since`, if given), each with its task's name."""
        as_of = now()
        running = self.db.execute(
            "SELECT COUNT(DISTINCT task_id) FROM runs WHERE status = ?",
            (RunStatus.RUNNING.value,),
        ).fetchone()[0]
        failed: list[tuple[TaskRun, str | None]] = []
        # one index range per status, newest first: the cost follows `limit`, not how many
        # failures the table keeps
        for status in FAILED_STATUSES:
            rows = self.db.execute(
                "SELECT runs.*, tasks.name AS task_name FROM runs"
                " JOIN tasks ON tasks.id = runs.task_id"
                " WHERE runs.status = ? AND runs.updated_at > ?"
                " ORDER BY runs.updated_at DESC LIMIT ?",
                (status.value, _ts(since) if since is not None else "", limit),
            )
            failed.extend((_run(row), row["task_name"]) for row in rows.fetchall())
        failed.sort(key=lambda pair: (pair[0].updated_at, pair[0].id), reverse=True)
        return Activity(running=int(running), failed=failed[:limit], as_of=as_of)

    def killed_among(self, task_ids: Sequence[str]) -> list[str]:
        """Which of some tasks are killed (or gone)."""
        if not task_ids:
            return []
        sql = f"SELECT id FROM tasks WHERE killed = 0 AND id IN ({_placeholders(task_ids)})"
        alive = {row["id"] for row in self.db.execute(sql, list(task_ids)).fetchall()}
        return [task_id for task_id in task_ids if task_id not in alive]

    def live_tasks(self) -> list[Task]:
        """Scheduled and continuous tasks that are neither killed nor finished."""
        rows = self.db.execute(
            "SELECT * FROM tasks WHERE run_type != ? AND killed = 0",
            (RunType.ONCE.value,),
        ).fetchall()
        return [task for task in map(_task, rows) if task.live]

    def add_skips(self, task_id: str, instants: Sequence[datetime], reason: SkipReason) -> None:
        """Record scheduled instants that did not run (once each)."""
        stamp = _ts(now())
        self.db.executemany(
            "INSERT OR IGNORE INTO skips (task_id, scheduled_for, reason, recorded_at)"
            " VALUES (?,?,?,?)",
            [(task_id, _ts(instant), reason.value, stamp) for instant in instants],
        )

    def list_skips(self, task_id: str, limit: int | None = None) -> list[Skip]:
        """A task's skipped instants, newest first."""
        sql = "SELECT * FROM skips WHERE task_id = ? ORDER BY scheduled_for DESC"
        params: list[object] = [task_id]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_skip(row) for row in self.db.execute(sql, params).fetchall()]

    def prune_due(
        self,
        task_ids: Sequence[str],
        default_keep: int,
        default_days: float,
        at: datetime,
        limit: int,
        total: int,
    ) -> Pruned:
        """Apply retention to many tasks at once: find, then delete, the runs they no longer keep.

        Each task keeps its newest `keep_runs` runs and its runs younger than `keep_days` (its
        own settings, else the defaults); running runs and its latest failed run are always
        kept. At most `limit` runs of one task and `total` runs in all are deleted; tasks that
        still have runs to delete are named in `unfinished`. The rows go in one transaction; the
        caller removes the runs' folders.

        One query over the runs' indexes finds the tasks with anything to do (more runs than
        they keep, or an ended run older than the default cutoff): a task with nothing to do
        costs a count and a lookup on the runs' indexes, and no Python. Only the others are
        looked at run by run, and only as far as the limits need.
        """
        ids = list(dict.fromkeys(task_ids))
        if not ids or total <= 0:
            return Pruned()
        at = at.astimezone(timezone.utc)
        cutoffs: dict[float | None, str | None] = {None: _cutoff(at, default_days)}
        rows = self.db.execute(
            "SELECT id, keep, keep_days, oldest, runs FROM ("
            " SELECT t.id AS id, j.key AS k, COALESCE(t.keep_runs, ?) AS keep,"
            " t.keep_days AS keep_days,"
            " (SELECT COUNT(*) FROM runs AS r WHERE r.task_id = t.id) AS runs,"
            " (SELECT r.created_at FROM runs AS r WHERE r.task_id = t.id AND r.status != ?"
            "  ORDER BY r.created_at LIMIT 1) AS oldest"
            " FROM json_each(?) AS j JOIN tasks AS t ON t.id = j.value)"
            # A task with its own keep_days is looked at below if it has any ended run.
            " WHERE runs > keep OR oldest < CASE WHEN keep_days IS NULL THEN ? ELSE '9999' END"
            " ORDER BY k",
            (default_keep, RunStatus.RUNNING.value, json.dumps(ids), cutoffs[None] or ""),
        ).fetchall()
        pruned = Pruned()
        for row in rows:
            days = row["keep_days"]
            if days not in cutoffs:
                cutoffs[days] = _cutoff(at, days)
            cutoff = cutoffs[days] or ""  # every stored time sorts after ""
            oldest = row["oldest"]
            if row["runs"] <= row["keep"] and (oldest is None or oldest >= cutoff):
                continue  # its own keep_days keeps every run
            budget = min(limit, total - len(pruned.run_ids))
            if budget <= 0:
                pruned.unfinished.append(row["id"])
                continue
            doomed, more = self._doomed(row["id"], row["keep"], cutoff, budget)
            pruned.run_ids.extend(doomed)
            if more:
                pruned.unfinished.append(row["id"])
        if pruned.run_ids:
            self._write(
                [
                    (
                        "DELETE FROM runs WHERE id IN (SELECT value FROM json_each(?))",
                        [json.dumps(pruned.run_ids)],
                    )
                ]
            )
        return pruned

    def _doomed(self, task_id: str, keep: int, cutoff: str, budget: int) -> tuple[list[str], bool]:
        """Up to `budget` runs of one task that retention removes, newest first, and whether
        more are left.

        In the order (created_at DESC, id), a run is kept by the rules when it is among the
        first `keep` and not older than the cutoff: that is a prefix of the runs, of length
        `start`. Every later run goes, except running ones and the latest failure, which is
        the first failed run after the prefix when the prefix has none.
        """
        start = self.db.execute(
            "SELECT COUNT(*) FROM ("
            " SELECT 1 FROM runs WHERE task_id = ? AND created_at >= ? LIMIT ?)",
            (task_id, cutoff, keep),
        ).fetchone()[0]
        failed = tuple(status.value for status in FAILED_STATUSES)
        failure_kept = (
            start > 0
            and self.db.execute(
                "SELECT 1 FROM ("
                " SELECT status FROM runs WHERE task_id = ?"
                " ORDER BY created_at DESC, id LIMIT ?) WHERE status IN (?, ?) LIMIT 1",
                (task_id, start, *failed),
            ).fetchone()
            is not None
        )
        rows = self.db.execute(
            "SELECT id, status FROM ("
            " SELECT id, status FROM runs WHERE task_id = ?"
            " ORDER BY created_at DESC, id LIMIT -1 OFFSET ?) WHERE status != ? LIMIT ?",
            (task_id, start, RunStatus.RUNNING.value, budget + 2),
        ).fetchall()
        doomed = []
        for row in rows:
            if not failure_kept and row["status"] in failed:
                failure_kept = True  # the latest failure stays
            else:
                doomed.append(row["id"])
        return doomed[:budget], len(doomed) > budget

    def task_ids(self) -> list[str]:
        """Every task id."""
        return [row["id"] for row in self.db.execute("SELECT id FROM tasks").fetchall()]

    def tasks_waiting_for(self, orch_id: str) -> list[Task]:
        """Tasks of one orchestration still pending (waiting for packaging)."""
        rows = self.db.execute(
            "SELECT * FROM tasks WHERE orch_id = ? AND status = ? AND killed = 0",
            (orch_id, TaskStatus.PENDING.value),
        ).fetchall()
        return [_task(row) for row in rows]
