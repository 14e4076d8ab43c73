"""The SQL of task listings: a query's filters, its keyset page, and a caller's ownership
condition, read through the tasks' indexes so that a page costs the page."""

from __future__ import annotations

from .models import TaskQuery
from .schema import placeholders, stored, visible_where


def task_where(query: TaskQuery) -> tuple[str, list[object]]:
    """The SQL condition of a task listing, and its parameters."""
    sql = "1=1"
    params: list[object] = []
    if query.workspace_ids:
        sql += f" AND workspace_id IN ({placeholders(query.workspace_ids)})"
        params.extend(query.workspace_ids)
    if query.orch_ids:
        sql += f" AND orch_id IN ({placeholders(query.orch_ids)})"
        params.extend(query.orch_ids)
    if query.orch_sha is not None:
        sql += " AND orch_sha = ?"
        params.append(query.orch_sha)
    if query.killed is not None:
        sql += " AND killed = ?"
        params.append(int(query.killed))
    if query.created_range is not None:
        sql += " AND created_at >= ? AND created_at <= ?"
        params.extend([stored(query.created_range[0]), stored(query.created_range[1])])
    if query.before is not None:
        sql += " AND (created_at, id) < (?, ?)"
        params.extend([stored(query.before[0]), query.before[1]])
    return sql, params


#: Member workspaces up to which a listing reads each one's tasks through its own index branch
#: (SQLite allows 500 terms in a compound SELECT); beyond, one condition over all.
MAX_BRANCHES = 100


def task_select(query: TaskQuery) -> tuple[str, list[object]]:
    """The SQL of a task listing, newest first, and its parameters.

    A caller's ownership condition (`query.visible`) is read as one branch per index, their
    own tasks and each member workspace's, each newest first up to the page: a page costs the
    page, not how many tasks the caller sees (an OR of the two makes SQLite sort them all)."""
    order = " ORDER BY created_at DESC, id DESC"
    limit, limit_params = (" LIMIT ?", [query.limit]) if query.limit is not None else ("", [])
    where, params = task_where(query)
    if query.visible is None or len(query.visible[1]) > MAX_BRANCHES:
        more, more_params = visible_where(query.visible)
        return f"SELECT * FROM tasks WHERE {where}{more}{order}{limit}", [
            *params,
            *more_params,
            *limit_params,
        ]
    user, workspace_ids = query.visible
    branches, values = [], []
    for column, value in [("owner_id", user), *(("workspace_id", w) for w in workspace_ids)]:
        branches.append(
            f"SELECT * FROM (SELECT id FROM tasks WHERE {where} AND {column} = ?{order}{limit})"
        )
        values += [*params, value, *limit_params]
    sql = f"SELECT * FROM tasks WHERE id IN ({' UNION '.join(branches)}){order}{limit}"
    return sql, [*values, *limit_params]
