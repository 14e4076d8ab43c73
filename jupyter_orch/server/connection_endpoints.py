"""The `connections/...` endpoints: request fields in, the contract's answers out.

A run's own token reads the connections of its task's workspace only (others are 404) and
changes none; otherwise the caller's scope decides (`connections.py`): on a single-user server
its user reads and changes every one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .errors import Forbidden
from .fields import Fields

if TYPE_CHECKING:
    from .handlers import OrchHandler

Answer = tuple[int, Any]


async def _scope(h: OrchHandler) -> int | None:
    """The workspace a run's token may read; None when the caller is not a run."""
    return None if h.run_id is None else await h.service.run_workspace(h.scope, h.run_id)


def _not_a_run(h: OrchHandler) -> None:
    if h.run_id is not None:
        raise Forbidden("a run's token reads connections; it cannot change them")


def _name(f: Fields) -> str:
    name = f.string("name")
    assert name is not None
    return name


async def create(h: OrchHandler, f: Fields) -> Answer:
    """`connections/create {"name", "type", "details"?}`: `{"id"}`; 409 if the name exists."""
    _not_a_run(h)
    kind = f.string("type")
    assert kind is not None
    details = f.mapping("details", {})
    conn = await h.service.connections.create(h.scope, _name(f), kind, details)
    return 200, {"id": conn.id}


async def get(h: OrchHandler, f: Fields) -> Answer:
    """`connections/get {"name"}`."""
    conn = await h.service.connections.get(h.scope, "name", _name(f), await _scope(h))
    return 200, conn.to_json()


async def get_by_id(h: OrchHandler, f: Fields) -> Answer:
    """`connections/get_by_id {"id"}`."""
    conn = await h.service.connections.get(h.scope, "id", f.uuid("id"), await _scope(h))
    return 200, conn.to_json()


async def listing(h: OrchHandler, f: Fields) -> Answer:
    """`connections/list {"workspace_id"?}`: `{"connections": [...]}`, by name."""
    workspace = f.integer("workspace_id", required=False, minimum=1)
    found = await h.service.connections.list(h.scope, workspace, await _scope(h))
    return 200, {"connections": [conn.to_json() for conn in found]}


async def delete(h: OrchHandler, f: Fields) -> Answer:
    """`connections/delete {"name"}`: `{}`."""
    _not_a_run(h)
    await h.service.connections.delete(h.scope, _name(f))
    return 200, {}


async def add_to_workspace(h: OrchHandler, f: Fields) -> Answer:
    """`connections/add_to_workspace {"workspace_id", "connection_id"}`: `{"id"}` (the link)."""
    _not_a_run(h)
    workspace = f.req_integer("workspace_id", 1)
    connection_id = f.uuid("connection_id")
    link = await h.service.connections.add_to_workspace(h.scope, workspace, connection_id)
    return 200, {"id": link}


async def remove_from_workspace(h: OrchHandler, f: Fields) -> Answer:
    """`connections/remove_from_workspace {"workspace_id", "connection_id"}`: `{}`."""
    _not_a_run(h)
    workspace = f.req_integer("workspace_id", 1)
    connection_id = f.uuid("connection_id")
    await h.service.connections.remove_from_workspace(h.scope, workspace, connection_id)
    return 200, {}


CONNECTION_ENDPOINTS: dict[str, Callable[[OrchHandler, Fields], Awaitable[Answer]]] = {
    "connections/create": create,
    "connections/get": get,
    "connections/get_by_id": get_by_id,
    "connections/list": listing,
    "connections/delete": delete,
    "connections/add_to_workspace": add_to_workspace,
    "connections/remove_from_workspace": remove_from_workspace,
}
