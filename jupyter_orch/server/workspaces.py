"""Workspaces and their members (Wallaroo's model), and each caller's `Scope`.

A workspace's members are its owners and collaborators. Every member sees and acts on
everything in it; owners also add and remove members. The creator of a workspace is its first
owner. On a multi-user server each user has a default workspace of their own, made on first
use and named `<user> - Default Workspace`; it always keeps that user as an owner.
"""

from __future__ import annotations

import sqlite3

from . import workspace_queries as queries
from .access import Scope
from .errors import Forbidden, InvalidRequest, Missing, WrongState
from .identity import Caller
from .models import UserType, Workspace, WorkspaceUser
from .store import Store


class Workspaces:
    """The workspaces of one data directory, as each caller sees them."""

    def __init__(self, store: Store, multi_user: bool) -> None:
        self.store = store
        self.multi_user = multi_user

    async def scope(self, caller: Caller) -> Scope:
        """What `caller` sees (on a multi-user server their default workspace is made now,
        on their first request)."""
        if not self.multi_user:
            return Scope(caller)
        default, member_of = await self.store.query(_view, caller.name)
        return Scope(caller, default, None if caller.admin else frozenset(member_of))

    async def get(self, scope: Scope, workspace_id: int) -> Workspace:
        """One workspace the caller sees (1: their default), or Missing."""
        workspace_id = scope.workspace_id(workspace_id)
        scope.check_workspace(workspace_id)
        workspace = await self.store.query(queries.get, workspace_id)
        if workspace is None:
            raise Missing("workspace", workspace_id)
        return workspace

    async def create(self, scope: Scope, name: str) -> Workspace:
        """A new workspace the caller owns; 409 when one they see has that name."""
        if not name.strip():
            raise InvalidRequest("workspace_name", "must not be empty")
        # On a multi-user server a name is unique among the caller's own workspaces: a 409
        # never tells them of a workspace they do not see.
        workspace = await self.store.query(
            queries.create, name.strip(), scope.user, self.multi_user
        )
        if workspace is None:
            raise WrongState(f"a workspace named {name.strip()!r} already exists")
        return workspace

    async def listed(self, scope: Scope, user: str | None = None) -> list[Workspace]:
        """The workspaces the caller sees (those `user` is a member of, when given)."""
        ids = None if scope.member_of is None else sorted(scope.member_of)
        if user is not None:
            theirs = set(await self.store.query(queries.member_of, user))
            ids = sorted(theirs if ids is None else theirs.intersection(ids))
        return await self.store.query(queries.listed, ids)

    async def names(self, scope: Scope) -> dict[int, str]:
        """The name of each workspace the caller sees, by id."""
        return {w.id: w.name for w in await self.listed(scope)}

    async def list_users(self, scope: Scope, workspace_id: int) -> list[WorkspaceUser]:
        """A workspace's members, for anyone who sees it."""
        workspace = await self.get(scope, workspace_id)
        return await self.store.query(queries.members, workspace.id)

    async def add_user(
        self, scope: Scope, workspace_id: int, user: str, kind: UserType = UserType.COLLABORATOR
    ) -> None:
        """Make `user` a member (or change their part), by an owner of the workspace."""
        workspace = await self._managed(scope, workspace_id)
        await self._change(workspace.id, user, kind)

    async def remove_user(self, scope: Scope, workspace_id: int, user: str) -> None:
        """`user` is no longer a member, by an owner of the workspace (or by themselves)."""
        if scope.workspace_id(workspace_id) in (scope.member_of or ()) and user == scope.user:
            workspace = await self.get(scope, workspace_id)  # leaving needs no owner's say
        else:
            workspace = await self._managed(scope, workspace_id)
        found = await self.store.query(queries.members, workspace.id)
        if user not in {m.user_id for m in found}:
            raise Missing("workspace user", f"{user} of workspace {workspace.id}")
        await self._change(workspace.id, user, None)

    async def _managed(self, scope: Scope, workspace_id: int) -> Workspace:
        workspace = await self.get(scope, workspace_id)
        if scope.everything:
            return workspace
        found = await self.store.query(queries.members, workspace.id)
        if not any(m.user_id == scope.user and m.user_type is UserType.OWNER for m in found):
            raise Forbidden(f"only an owner of workspace {workspace.id} adds or removes users")
        return workspace

    async def _change(self, workspace_id: int, user: str, kind: UserType | None) -> None:
        problem = await self.store.query(queries.change_member, workspace_id, user, kind)
        if problem is not None:
            raise WrongState(problem)


def _view(db: sqlite3.Connection, user: str) -> tuple[int, list[int]]:
    """A user's default workspace (made if need be) and the workspaces they are a member of."""
    default = queries.default_of(db, user)
    return default, queries.member_of(db, user)
