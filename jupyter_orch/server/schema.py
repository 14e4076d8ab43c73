"""The database's tables, how they are opened, and how rows become records.

Times are stored as ISO 8601 text with their offset (UTC): text of one offset sorts as time.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any, TypeVar

from .models import (
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
    UserType,
    Visible,
    Workspace,
    WorkspaceUser,
    now,
)

#: How many ids go in one `IN (...)` (well under SQLite's limit on variables).
CHUNK = 500

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS workspaces (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
-- Who may see a workspace and what is in it (Wallaroo's model): its owners and collaborators.
CREATE TABLE IF NOT EXISTS workspace_users (
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id),
    user_id TEXT NOT NULL,
    user_type TEXT NOT NULL,
    added_at TEXT NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX IF NOT EXISTS workspace_users_user ON workspace_users(user_id, workspace_id);
-- Each user's own default workspace, on a multi-user server (what workspace id 1 names then).
CREATE TABLE IF NOT EXISTS default_workspaces (
    user_id TEXT PRIMARY KEY,
    workspace_id INTEGER NOT NULL UNIQUE REFERENCES workspaces(id)
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
CREATE INDEX IF NOT EXISTS orchestrations_owner ON orchestrations(owner_id);
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
    max_log_bytes INTEGER,
    last_fire_at TEXT,
    executor TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_workspace ON tasks(workspace_id, created_at);
CREATE INDEX IF NOT EXISTS tasks_created ON tasks(created_at, id);
CREATE INDEX IF NOT EXISTS tasks_orch ON tasks(orch_id);
CREATE INDEX IF NOT EXISTS tasks_sha ON tasks(orch_sha);
CREATE INDEX IF NOT EXISTS tasks_owner ON tasks(owner_id, created_at, id);
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
    scheduled_for TEXT,
    executor TEXT,
    worker TEXT,
    refused_claims INTEGER NOT NULL DEFAULT 0,
    input_data TEXT
);
CREATE INDEX IF NOT EXISTS runs_task_updated ON runs(task_id, updated_at, created_at, id);
CREATE INDEX IF NOT EXISTS runs_task_created ON runs(task_id, created_at);
-- Runs by status, newest change last: the running runs, and the latest failures of every task.
CREATE INDEX IF NOT EXISTS runs_status_updated ON runs(status, updated_at);
DROP INDEX IF EXISTS runs_status;
-- One scheduled instant never gets two runs, whatever happens (manual runs have no instant).
CREATE UNIQUE INDEX IF NOT EXISTS runs_instant ON runs(task_id, scheduled_for);
-- Connections: `details` (JSON) are secret; `owner` is the name of the user who made it.
CREATE TABLE IF NOT EXISTS connections (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    details TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
-- A connection's name is unique among its owner's connections.
CREATE UNIQUE INDEX IF NOT EXISTS connections_owner_name ON connections(owner, name);
CREATE TABLE IF NOT EXISTS connection_workspaces (
    id TEXT PRIMARY KEY,
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    workspace_id INTEGER NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    UNIQUE (connection_id, workspace_id)
);
CREATE INDEX IF NOT EXISTS connection_workspaces_workspace
    ON connection_workspaces(workspace_id);
CREATE TABLE IF NOT EXISTS skips (
    task_id TEXT NOT NULL REFERENCES tasks(id),
    scheduled_for TEXT NOT NULL,
    reason TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    UNIQUE (task_id, scheduled_for)
);
-- Changes of a task's settings, oldest first: `changes` is a JSON object {field: [old, new]}.
CREATE TABLE IF NOT EXISTS task_changes (
    id INTEGER PRIMARY KEY,
    task_id TEXT NOT NULL REFERENCES tasks(id),
    at TEXT NOT NULL,
    by TEXT NOT NULL,
    changes TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS task_changes_task ON task_changes(task_id, id);
"""


#: Columns added after a table was first created, as (table, column, definition). A database
#: made by an older version gains each one it lacks when it is opened; the order does not
#: matter. A new column goes both in its table's `CREATE TABLE` above and here.
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("tasks", "executor", "TEXT"),
    ("runs", "executor", "TEXT"),
    ("runs", "worker", "TEXT"),
    ("runs", "refused_claims", "INTEGER NOT NULL DEFAULT 0"),
    ("tasks", "max_log_bytes", "INTEGER"),
    # The arguments a run ran with (JSON; null in older rows: its task's arguments).
    ("runs", "input_data", "TEXT"),
)


def add_missing_columns(db: sqlite3.Connection) -> None:
    """Give each table the columns of `ADDED_COLUMNS` it lacks."""
    have: dict[str, set[str]] = {}
    for table, column, definition in ADDED_COLUMNS:
        if table not in have:
            have[table] = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in have[table]:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            have[table].add(column)


#: Tables whose names were once unique server-wide; now a name is unique per user (a workspace's
#: among the workspaces one is a member of, a connection's among one's own), so that no name
#: tells a user what others have.
NAMES_NO_LONGER_UNIQUE = ("workspaces", "connections")


def _unique_on_name(db: sqlite3.Connection, table: str) -> bool:
    """Whether a table has the old constraint: a UNIQUE on `name` alone, in its definition."""
    for index in db.execute(f"PRAGMA index_list({table})").fetchall():
        if index["unique"] and index["origin"] == "u":
            columns = [row["name"] for row in db.execute(f"PRAGMA index_info({index['name']})")]
            if columns == ["name"]:
                return True
    return False


def drop_unique_names(db: sqlite3.Connection) -> bool:
    """Rebuild each table of `NAMES_NO_LONGER_UNIQUE` made with its name unique server-wide:
    SQLite cannot drop a constraint in place, so such a table is copied once into one made
    without it (foreign keys off meanwhile). True if a table was rebuilt (its indexes are then
    to be made again)."""
    rebuilt = False
    db.execute("BEGIN IMMEDIATE")
    try:
        for table in NAMES_NO_LONGER_UNIQUE:
            if not _unique_on_name(db, table):
                continue
            columns = ", ".join(row[1] for row in db.execute(f"PRAGMA table_info({table})"))
            definition = SCHEMA.split(f"CREATE TABLE IF NOT EXISTS {table} ", 1)[1]
            db.execute(f"CREATE TABLE {table}_copy {definition.split(';', 1)[0]}")
            db.execute(f"INSERT INTO {table}_copy ({columns}) SELECT {columns} FROM {table}")
            db.execute(f"DROP TABLE {table}")
            db.execute(f"ALTER TABLE {table}_copy RENAME TO {table}")
            rebuilt = True
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return rebuilt


def prepare(db: sqlite3.Connection) -> None:
    """Set a new connection up: WAL, foreign keys, a busy timeout; create or migrate the
    tables, and the default workspace."""
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=5000")
    db.executescript(SCHEMA)
    add_missing_columns(db)
    if drop_unique_names(db):
        db.executescript(SCHEMA)  # the rebuilt tables' indexes
    db.execute("PRAGMA foreign_keys=ON")
    if db.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 0:
        db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
    db.execute(
        "INSERT OR IGNORE INTO workspaces (id, name, created_by, created_at) "
        "VALUES (1, 'default', '', ?)",
        (stored(now()),),
    )


def transaction(db: sqlite3.Connection, statements: Iterable[tuple[str, Sequence[object]]]) -> None:
    """Run several statements in one transaction: all of them land, or none."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for sql, params in statements:
            db.execute(sql, params)
        db.execute("COMMIT")  # may fail too (a full disk): the transaction is then undone
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def placeholders(values: Sequence[object]) -> str:
    """`?,?,?`: one parameter per value."""
    return ",".join("?" for _ in values)


# -- times -------------------------------------------------------------------------------------


def stored(value: datetime | None) -> str | None:
    """A time as stored."""
    return value.isoformat() if value is not None else None


def time_or_none(value: str | None) -> datetime | None:
    """A stored time, or None."""
    return datetime.fromisoformat(value) if value is not None else None


# -- rows -> records ---------------------------------------------------------------------------


#: Columns holding times (ISO 8601 text), by the name of the record field they fill.
TIME_FIELDS = frozenset(
    {"created_at", "updated_at", "started_at", "ended_at", "scheduled_for", "last_fire_at"}
    | {"recorded_at"}
)
R = TypeVar("R")


def record(kind: type[R], row: sqlite3.Row, **convert: Callable[[Any], Any]) -> R:
    """A record from its row: each field of the dataclass `kind` read from the column of its
    name (fields without a column keep their defaults), times parsed, and a non-null value
    passed through its converter when one is given (an Enum, `json.loads` ...)."""
    columns = set(row.keys())
    values = {}
    for name in (f.name for f in fields(kind)):  # type: ignore[arg-type]
        if name not in columns:
            continue
        value = row[name]
        change = convert.get(name) or (time_or_none if name in TIME_FIELDS else None)
        values[name] = change(value) if change is not None and value is not None else value
    return kind(**values)


def finite_json(text: str) -> Any:
    """Stored JSON, with any NaN or Infinity (kept by servers that accepted them) as null: answers
    are strict JSON."""
    return json.loads(text, parse_constant=lambda _constant: None)


def as_workspace(row: sqlite3.Row) -> Workspace:
    """A workspace row as its record."""
    return record(Workspace, row)


def as_member(row: sqlite3.Row) -> WorkspaceUser:
    """A workspace membership row as its record."""
    return record(WorkspaceUser, row, user_type=UserType)


def visible_where(visible: Visible | None, table: str = "") -> tuple[str, list[object]]:
    """The ownership condition of a listing (` AND ...`, empty for a caller who sees
    everything): the caller's own rows, or rows of the workspaces they are a member of."""
    if visible is None:
        return "", []
    user, workspace_ids = visible
    prefix = f"{table}." if table else ""
    sql = f" AND ({prefix}owner_id = ?"
    if workspace_ids:
        sql += f" OR {prefix}workspace_id IN ({placeholders(workspace_ids)})"
    return sql + ")", [user, *workspace_ids]


def as_orchestration(row: sqlite3.Row) -> Orchestration:
    """An orchestration row as its record."""
    return record(Orchestration, row, status=OrchestrationStatus)


def as_task(row: sqlite3.Row) -> Task:
    """A task row as its record (without its runs)."""
    convert: dict[str, Callable[[Any], Any]] = {"status": TaskStatus, "run_type": RunType}
    convert.update(input_data=finite_json, killed=bool, concurrency_policy=ConcurrencyPolicy)
    return record(Task, row, **convert)


def as_run(row: sqlite3.Row) -> TaskRun:
    """A run row as its record."""
    return record(TaskRun, row, status=RunStatus, trigger=Trigger, input_data=finite_json)


def as_skip(row: sqlite3.Row) -> Skip:
    """A skipped instant's row as its record."""
    return record(Skip, row, reason=SkipReason)
