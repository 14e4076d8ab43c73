"""Connections: named, typed settings and credentials that tasks read instead of embedding them.

A connection's `details` are secret: they are stored in the database (readable by the server's
user only), answered to whoever may read the connection, and never written to a log or an
error message; a record's `repr` leaves them out. A run reads, with its own token, only the
connections of its own task's workspace.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import InvalidRequest, Missing, WrongState
from .models import new_id, now
from .schema import finite_json, stored, time_or_none
from .store import Store


@dataclass
class Connection:
    """A named connection; `details` never shown by its `repr`."""

    id: str
    name: str
    type: str
    details: dict[str, Any] = field(repr=False)
    owner: str
    created_at: datetime
    workspace_names: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The wire shape (the contract's connection object)."""
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "details": self.details,
            "created_at": stored(self.created_at),
            "workspace_names": self.workspace_names,
        }


# -- queries (on the store's thread, through `Store.query`) ------------------------------------

_SELECT = (
    "SELECT c.*, (SELECT json_group_array(w.name) FROM connection_workspaces l"
    " JOIN workspaces w ON w.id = l.workspace_id WHERE l.connection_id = c.id) AS names"
    " FROM connections c"
)


def _record(row: sqlite3.Row) -> Connection:
    created = time_or_none(row["created_at"])
    assert created is not None
    return Connection(
        id=row["id"],
        name=row["name"],
        type=row["type"],
        details=finite_json(row["details"]),
        owner=row["owner"],
        created_at=created,
        workspace_names=sorted(json.loads(row["names"] or "[]")),
    )


def insert(db: sqlite3.Connection, conn: Connection) -> bool:
    """Store a new connection; False when its name is taken."""
    try:
        db.execute(
            "INSERT INTO connections (id, name, type, details, owner, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                conn.id,
                conn.name,
                conn.type,
                json.dumps(conn.details),
                conn.owner,
                stored(conn.created_at),
            ),
        )
    except sqlite3.IntegrityError:
        return False
    return True


def find(
    db: sqlite3.Connection, column: str, value: str, workspace: int | None
) -> Connection | None:
    """The connection whose `column` (id or name) is `value`; within `workspace` if given."""
    assert column in ("id", "name")
    sql, params = f"{_SELECT} WHERE c.{column} = ?", list[object]([value])
    if workspace is not None:
        sql += _IN_WORKSPACE
        params.append(workspace)
    row = db.execute(sql, params).fetchone()
    return _record(row) if row else None


_IN_WORKSPACE = (
    " AND c.id IN (SELECT connection_id FROM connection_workspaces WHERE workspace_id = ?)"
)


def listing(db: sqlite3.Connection, workspace: int | None) -> list[Connection]:
    """Every connection (of one workspace if given), by name."""
    sql, params = f"{_SELECT} WHERE 1=1", list[object]()
    if workspace is not None:
        sql += _IN_WORKSPACE
        params.append(workspace)
    return [_record(row) for row in db.execute(sql + " ORDER BY c.name", params)]


def delete(db: sqlite3.Connection, connection_id: str) -> None:
    """Remove a connection and its workspace links."""
    db.execute("DELETE FROM connections WHERE id = ?", (connection_id,))


def link(db: sqlite3.Connection, connection_id: str, workspace_id: int) -> str:
    """Add a connection to a workspace; the link's id (the existing one if already linked)."""
    db.execute(
        "INSERT OR IGNORE INTO connection_workspaces (id, connection_id, workspace_id,"
        " created_at) VALUES (?, ?, ?, ?)",
        (new_id(), connection_id, workspace_id, stored(now())),
    )
    row = db.execute(
        "SELECT id FROM connection_workspaces WHERE connection_id = ? AND workspace_id = ?",
        (connection_id, workspace_id),
    ).fetchone()
    return str(row["id"])


def unlink(db: sqlite3.Connection, connection_id: str, workspace_id: int) -> bool:
    """Remove a connection from a workspace; False when it was not in it."""
    cur = db.execute(
        "DELETE FROM connection_workspaces WHERE connection_id = ? AND workspace_id = ?",
        (connection_id, workspace_id),
    )
    return cur.rowcount > 0


# -- the use cases -----------------------------------------------------------------------------


class Connections:
    """Create, read, link and delete connections. `scope` is the workspace a run's token may
    read (None: the server's own user, who may read every connection)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def create(self, name: str, kind: str, details: dict[str, Any], owner: str) -> Connection:
        """A new connection; 409 when the name is taken."""
        for what, value in (("name", name), ("type", kind)):
            if not value.strip():
                raise InvalidRequest(what, "must not be empty")
        conn = Connection(new_id(), name, kind, details, owner, now())
        if not await self.store.query(insert, conn):
            raise WrongState(f"a connection named {name!r} already exists")
        return conn

    async def get(self, column: str, value: str, scope: int | None = None) -> Connection:
        """One connection by id or name (404 also when out of the run's workspace)."""
        found = await self.store.query(find, column, value, scope)
        if found is None:
            raise Missing("connection", repr(value) if column == "name" else value)
        return found

    async def list(self, workspace: int | None, scope: int | None = None) -> list[Connection]:
        """The connections of a workspace, or all; a run's token sees its workspace's only."""
        if scope is not None and workspace not in (None, scope):
            raise Missing("workspace", workspace)
        return await self.store.query(listing, scope if scope is not None else workspace)

    async def delete(self, name: str) -> None:
        """Remove a connection by name."""
        conn = await self.get("name", name)
        await self.store.query(delete, conn.id)

    async def add_to_workspace(self, workspace_id: int, connection_id: str) -> str:
        """Link a connection to a (known) workspace; the link's id."""
        conn = await self.get("id", connection_id)
        if await self.store.call(self.store.get_workspace, workspace_id) is None:
            raise Missing("workspace", workspace_id)
        link_id: str = await self.store.query(link, conn.id, workspace_id)
        return link_id

    async def remove_from_workspace(self, workspace_id: int, connection_id: str) -> None:
        """Unlink a connection from a workspace (404 when it is not in it)."""
        conn = await self.get("id", connection_id)
        if not await self.store.query(unlink, conn.id, workspace_id):
            raise Missing(f"connection {conn.id} in workspace", workspace_id)
