"""Connections: named, typed settings and credentials that tasks read instead of embedding them.

A connection's `details` are secret: they are stored in the database (readable by the server's
user only), answered to whoever may read the connection, and never written to a log or an
error message; a record's `repr` leaves them out. A run reads, with its own token, only the
connections of its own task's workspace.

Ownership (`access.py`): a user sees their own connections and those added to a workspace they
are a member of (admins every one); anything else is a 404. Only a connection's owner (or an
admin) deletes it or adds it to, or removes it from, a workspace: a member who sees it through
one workspace cannot pass its secret on to another (403). A connection's `workspace_names` name
only the workspaces the caller sees.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from .access import Scope
from .errors import Forbidden, InvalidRequest, Missing, WrongState
from .models import Visible, new_id, now
from .schema import finite_json, placeholders, stored, time_or_none
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
    workspace_ids: list[int] = field(default_factory=list)  # in the order of the names

    def seen_by(self, scope: Scope) -> Connection:
        """The connection as `scope`'s caller may see it: only their workspaces named."""
        if scope.everything:
            return self
        pairs = zip(self.workspace_ids, self.workspace_names, strict=True)
        seen = [(i, n) for i, n in pairs if scope.sees_workspace(i)]
        return replace(
            self, workspace_ids=[i for i, _ in seen], workspace_names=[n for _, n in seen]
        )

    def visible_to(self, scope: Scope) -> bool:
        """Whether `scope`'s caller sees it: theirs, or in a workspace of theirs."""
        return self.owner == scope.user or any(map(scope.sees_workspace, self.workspace_ids))

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
    "SELECT c.*, (SELECT json_group_array(json_array(w.name, w.id)) FROM connection_workspaces l"
    " JOIN workspaces w ON w.id = l.workspace_id WHERE l.connection_id = c.id) AS names"
    " FROM connections c"
)


def _record(row: sqlite3.Row) -> Connection:
    created = time_or_none(row["created_at"])
    assert created is not None
    workspaces = sorted(json.loads(row["names"] or "[]"))
    return Connection(
        id=row["id"],
        name=row["name"],
        type=row["type"],
        details=finite_json(row["details"]),
        owner=row["owner"],
        created_at=created,
        workspace_names=[name for name, _ in workspaces],
        workspace_ids=[int(ident) for _, ident in workspaces],
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
) -> list[Connection]:
    """The connections whose `column` (id or name) is `value`, oldest first (one name may be
    several users'); within `workspace` if given."""
    assert column in ("id", "name")
    sql, params = f"{_SELECT} WHERE c.{column} = ?", list[object]([value])
    if workspace is not None:
        sql += _IN_WORKSPACE
        params.append(workspace)
    return [_record(row) for row in db.execute(sql + " ORDER BY c.created_at, c.id", params)]


_IN_WORKSPACE = (
    " AND c.id IN (SELECT connection_id FROM connection_workspaces WHERE workspace_id = ?)"
)


def listing(
    db: sqlite3.Connection, workspace: int | None, visible: Visible | None = None
) -> list[Connection]:
    """Every connection (of one workspace if given; a caller's own or of their workspaces, if
    `visible` is given), by name."""
    sql, params = f"{_SELECT} WHERE 1=1", list[object]()
    if workspace is not None:
        sql += _IN_WORKSPACE
        params.append(workspace)
    if visible is not None:
        user, workspace_ids = visible
        sql += " AND (c.owner = ?"
        params.append(user)
        if workspace_ids:
            sql += (
                " OR c.id IN (SELECT connection_id FROM connection_workspaces"
                f" WHERE workspace_id IN ({placeholders(workspace_ids)}))"
            )
            params.extend(workspace_ids)
        sql += ")"
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
    """Create, read, link and delete connections, as a caller's `Scope` allows. `run_workspace`
    is the workspace a run's token may read (None: not a run)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def create(
        self, scope: Scope, name: str, kind: str, details: dict[str, Any]
    ) -> Connection:
        """A new connection of the caller's; 409 when they have one of that name."""
        for what, value in (("name", name), ("type", kind)):
            if not value.strip():
                raise InvalidRequest(what, "must not be empty")
        conn = Connection(new_id(), name, kind, details, scope.user, now())
        if not await self.store.query(insert, conn):
            raise WrongState(f"a connection named {name!r} already exists")
        return conn

    async def get(
        self, scope: Scope, column: str, value: str, run_workspace: int | None = None
    ) -> Connection:
        """One connection the caller sees, by id or name (404 also when out of the run's
        workspace). A name several users gave names the caller's own first."""
        found = await self.store.query(find, column, value, run_workspace)
        seen = [conn for conn in found if scope.everything or conn.visible_to(scope)]
        seen.sort(key=lambda conn: conn.owner != scope.user)  # stable: then the oldest
        if not seen:
            raise Missing("connection", repr(value) if column == "name" else value)
        return seen[0].seen_by(scope)

    async def list(
        self, scope: Scope, workspace: int | None, run_workspace: int | None = None
    ) -> list[Connection]:
        """The connections of a workspace the caller sees, or all they see; a run's token sees
        its workspace's only."""
        if workspace is not None:
            workspace = scope.workspace_id(workspace)
            scope.check_workspace(workspace)
        if run_workspace is not None and workspace not in (None, run_workspace):
            raise Missing("workspace", workspace)
        wanted = run_workspace if run_workspace is not None else workspace
        found = await self.store.query(listing, wanted, scope.visible)
        return [conn.seen_by(scope) for conn in found]

    async def delete(self, scope: Scope, name: str) -> None:
        """Remove a connection (the caller's own) by name."""
        conn = await self._owned(scope, "name", name)
        await self.store.query(delete, conn.id)

    async def add_to_workspace(self, scope: Scope, workspace_id: int, connection_id: str) -> str:
        """Link a connection of the caller's to a workspace they see; the link's id."""
        conn = await self._owned(scope, "id", connection_id)
        workspace_id = scope.workspace_id(workspace_id)
        scope.check_workspace(workspace_id)
        if await self.store.call(self.store.get_workspace, workspace_id) is None:
            raise Missing("workspace", workspace_id)
        link_id: str = await self.store.query(link, conn.id, workspace_id)
        return link_id

    async def remove_from_workspace(
        self, scope: Scope, workspace_id: int, connection_id: str
    ) -> None:
        """Unlink a connection of the caller's from a workspace (404 when it is not in it)."""
        conn = await self._owned(scope, "id", connection_id)
        workspace_id = scope.workspace_id(workspace_id)
        scope.check_workspace(workspace_id)
        if not await self.store.query(unlink, conn.id, workspace_id):
            raise Missing(f"connection {conn.id} in workspace", workspace_id)

    async def _owned(self, scope: Scope, column: str, value: str) -> Connection:
        """A connection the caller sees and may change (their own; any, for admins)."""
        conn = await self.get(scope, column, value)
        if not scope.everything and conn.owner != scope.user:
            raise Forbidden(f"only the owner of connection {conn.name!r} changes it")
        return conn
