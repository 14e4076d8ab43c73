"""The store's queries of workspaces and their members, run on the database thread through
`Store.query` (each function takes the connection first)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from .models import UserType, Workspace, WorkspaceUser, now
from .schema import as_member, as_workspace, placeholders, stored


def _insert(db: sqlite3.Connection, name: str, user: str) -> int:
    """A new workspace with `user` as its owner (inside the caller's transaction)."""
    stamp = stored(now())
    cur = db.execute(
        "INSERT INTO workspaces (name, created_by, created_at) VALUES (?, ?, ?)",
        (name, user, stamp),
    )
    workspace_id = int(cur.lastrowid or 0)
    db.execute(
        "INSERT INTO workspace_users (workspace_id, user_id, user_type, added_at)"
        " VALUES (?, ?, ?, ?)",
        (workspace_id, user, UserType.OWNER.value, stamp),
    )
    return workspace_id


def create(db: sqlite3.Connection, name: str, user: str, among_members: bool) -> Workspace | None:
    """A new workspace owned by `user`; None when a workspace of that name exists among the
    ones `user` is a member of (`among_members`) or among all of them."""
    db.execute("BEGIN IMMEDIATE")
    try:
        sql = "SELECT 1 FROM workspaces WHERE name = ?"
        params: list[object] = [name]
        if among_members:
            sql += " AND id IN (SELECT workspace_id FROM workspace_users WHERE user_id = ?)"
            params.append(user)
        if db.execute(sql, params).fetchone() is not None:
            db.execute("ROLLBACK")
            return None
        workspace_id = _insert(db, name, user)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return get(db, workspace_id)


def get(db: sqlite3.Connection, workspace_id: int) -> Workspace | None:
    """One workspace by id."""
    row = db.execute("SELECT * FROM workspaces WHERE id = ?", (workspace_id,)).fetchone()
    return as_workspace(row) if row else None


def default_of(db: sqlite3.Connection, user: str) -> int:
    """The id of `user`'s own default workspace, made (with `user` its owner) on first use."""
    sql = "SELECT workspace_id FROM default_workspaces WHERE user_id = ?"
    row = db.execute(sql, (user,)).fetchone()
    if row is not None:
        return int(row[0])
    db.execute("BEGIN IMMEDIATE")
    try:
        row = db.execute(sql, (user,)).fetchone()  # another server may have made it meanwhile
        if row is not None:
            db.execute("ROLLBACK")
            return int(row[0])
        workspace_id = _insert(db, f"{user} - Default Workspace", user)
        db.execute(
            "INSERT INTO default_workspaces (user_id, workspace_id) VALUES (?, ?)",
            (user, workspace_id),
        )
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return workspace_id


def whose_default(db: sqlite3.Connection, workspace_id: int) -> str | None:
    """The user whose default workspace this is, if any."""
    row = db.execute(
        "SELECT user_id FROM default_workspaces WHERE workspace_id = ?", (workspace_id,)
    ).fetchone()
    return str(row[0]) if row is not None else None


def member_of(db: sqlite3.Connection, user: str) -> list[int]:
    """Ids of the workspaces `user` is a member of."""
    rows = db.execute("SELECT workspace_id FROM workspace_users WHERE user_id = ?", (user,))
    return [int(row[0]) for row in rows.fetchall()]


def listed(db: sqlite3.Connection, ids: Sequence[int] | None) -> list[Workspace]:
    """Workspaces by id (every one when None), oldest first."""
    if ids is None:
        rows = db.execute("SELECT * FROM workspaces ORDER BY id").fetchall()
    elif not ids:
        return []
    else:
        rows = db.execute(
            f"SELECT * FROM workspaces WHERE id IN ({placeholders(ids)}) ORDER BY id", list(ids)
        ).fetchall()
    return [as_workspace(row) for row in rows]


def members(db: sqlite3.Connection, workspace_id: int) -> list[WorkspaceUser]:
    """A workspace's members, in the order they were added."""
    rows = db.execute(
        "SELECT * FROM workspace_users WHERE workspace_id = ? ORDER BY added_at, user_id",
        (workspace_id,),
    ).fetchall()
    return [as_member(row) for row in rows]


def change_member(
    db: sqlite3.Connection, workspace_id: int, user: str, kind: UserType | None
) -> str | None:
    """Make `user` a member of a workspace of part `kind`, or remove them (`kind` None), in one
    transaction; None when done, else why not (a workspace keeps an owner, and a user's
    default workspace keeps that user as an owner)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        problem = _member_problem(db, workspace_id, user, kind)
        if problem is None and kind is None:
            db.execute(
                "DELETE FROM workspace_users WHERE workspace_id = ? AND user_id = ?",
                (workspace_id, user),
            )
        elif problem is None and kind is not None:
            db.execute(
                "INSERT INTO workspace_users (workspace_id, user_id, user_type, added_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (workspace_id, user_id)"
                " DO UPDATE SET user_type = excluded.user_type",
                (workspace_id, user, kind.value, stored(now())),
            )
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT" if problem is None else "ROLLBACK")
    return problem


def _member_problem(
    db: sqlite3.Connection, workspace_id: int, user: str, kind: UserType | None
) -> str | None:
    current = {m.user_id: m.user_type for m in members(db, workspace_id)}
    if kind is UserType.OWNER or current.get(user) is not UserType.OWNER:
        return None  # no owner is lost
    if whose_default(db, workspace_id) == user:
        return f"workspace {workspace_id} is {user}'s default workspace: {user} stays its owner"
    if list(current.values()).count(UserType.OWNER) == 1:
        return f"{user} is the last owner of workspace {workspace_id}: add another owner first"
    return None
