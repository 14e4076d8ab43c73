"""The `workspaces/...` endpoints (Wallaroo's): create, list, and a workspace's members.

Users are named by their user name (the identity provider's `username`), in `user_id` or in
`email`, Wallaroo's two fields for them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .errors import InvalidRequest
from .fields import Fields
from .models import UserType

if TYPE_CHECKING:
    from .handlers import OrchHandler

Answer = tuple[int, Any]


def _user(f: Fields) -> str:
    """The user a request names, in `user_id` or `email` (the same name if both)."""
    user_id, email = f.string("user_id", required=False), f.string("email", required=False)
    if user_id is not None and email is not None and user_id != email:
        raise InvalidRequest("email", "names another user than user_id: give one of them")
    name = (user_id if user_id is not None else email or "").strip()
    if not name:
        raise InvalidRequest("user_id", "is required (or email): the user's name")
    return name


async def workspace_create(h: OrchHandler, f: Fields) -> Answer:
    """`workspaces/create {"workspace_name"}`: `{"workspace_id"}` (with the workspace)."""
    name = f.string("workspace_name")
    assert name is not None
    workspace = await h.service.workspaces.create(h.scope, name)
    return 200, {"workspace_id": workspace.id, **workspace.to_json()}


async def workspace_list(h: OrchHandler, f: Fields) -> Answer:
    """`workspaces/list {"user_id"?}`: the workspaces the caller sees (of which `user_id` is
    a member, if given)."""
    user = f.string("user_id", required=False)
    workspaces = await h.service.workspaces.listed(h.scope, user)
    default = h.scope.default_workspace
    return 200, {"workspaces": [w.to_json(w.id == default) for w in workspaces]}


async def workspace_add_user(h: OrchHandler, f: Fields) -> Answer:
    """`workspaces/add_user {"workspace_id", "user_id" | "email", "user_type"?}`."""
    word = f.string("user_type", required=False) or UserType.COLLABORATOR.value
    kind = f.enum("user_type", UserType, word)
    workspace_id = f.req_integer("workspace_id", 1)
    await h.service.workspaces.add_user(h.scope, workspace_id, _user(f), kind)
    return 200, {}


async def workspace_remove_user(h: OrchHandler, f: Fields) -> Answer:
    """`workspaces/remove_user {"workspace_id", "user_id" | "email"}`."""
    workspace_id = f.req_integer("workspace_id", 1)
    await h.service.workspaces.remove_user(h.scope, workspace_id, _user(f))
    return 200, {}


async def workspace_list_users(h: OrchHandler, f: Fields) -> Answer:
    """`workspaces/list_users {"workspace_id"}`: `{"users": [{"user_id", "user_type"}]}`."""
    users = await h.service.workspaces.list_users(h.scope, f.req_integer("workspace_id", 1))
    return 200, {"users": [user.to_json() for user in users]}


WORKSPACE_ENDPOINTS: dict[str, Callable[[OrchHandler, Fields], Awaitable[Answer]]] = {
    "workspaces/create": workspace_create,
    "workspaces/list": workspace_list,
    "workspaces/add_user": workspace_add_user,
    "workspaces/remove_user": workspace_remove_user,
    "workspaces/list_users": workspace_list_users,
}
