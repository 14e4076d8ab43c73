"""The orchestration/ endpoints (the table of routes is `handlers.py`'s)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import InvalidRequest
from .fields import Fields, as_uuid
from .models import RunStatus

if TYPE_CHECKING:
    from .handlers import Answer, OrchHandler


async def orch_list(h: OrchHandler, f: Fields) -> Answer:
    """`orchestration/list {"workspace_id"}`."""
    orchs = await h.service.list_orchestrations(h.scope, f.req_integer("workspace_id", 1))
    return 200, [o.to_json() for o in orchs]


async def orch_list_all(h: OrchHandler, f: Fields) -> Answer:
    """`orchestration/list_all` with the contract's filters."""
    statuses = [f.enum("task_run_status", RunStatus, s) for s in f.items("task_run_status", str)]
    answer = await h.service.list_all(
        h.scope, f.integers("workspace_ids", 1), statuses, f.boolean("killed"), f.time_range()
    )
    return 200, answer


async def orch_get(h: OrchHandler, f: Fields) -> Answer:
    """`orchestration/get_by_id {"id"}`."""
    return 200, (await h.service.get_orchestration(h.scope, f.uuid("id"))).to_json()


async def orch_create_from_path(h: OrchHandler, f: Fields) -> Answer:
    """`orchestration/create_from_path {"path", "workspace_id"?, "name"?}` (ours): a folder
    or `.py` file of the Jupyter root becomes an orchestration, under every archive rule."""
    path = f.string("path")
    assert path is not None
    orch = await h.service.create_from_path(
        h.scope,
        path,
        f.integer("workspace_id", required=False, minimum=1) or 1,
        f.string("name", required=False),
    )
    return 202, {"id": orch.id}


async def orch_build_log(h: OrchHandler, f: Fields) -> Answer:
    """`orchestration/get_build_log {"id"}` (ours): the environment build's output."""
    return 200, {"log": await h.service.build_log(h.scope, f.uuid("id"))}


async def orch_delete(h: OrchHandler, f: Fields) -> Answer:
    """`orchestration/delete_orchestrations {"orchestrations", "confirm_delete"}`."""
    ids = [as_uuid("orchestrations", i) for i in f.items("orchestrations", str)]
    if not ids:
        raise InvalidRequest("orchestrations", "must list at least one orchestration id")
    confirm = bool(f.boolean("confirm_delete"))
    return 200, await h.service.delete_orchestrations(h.scope, ids, confirm)
