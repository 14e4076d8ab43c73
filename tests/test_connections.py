"""Connections: the contract's endpoints, secrets kept out of logs, a run's reach."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import stat
from pathlib import Path
from typing import Any

import pytest

from .conftest import Api, texts

SECRET = "s3cr3t-hunter2-7f1c"
DETAILS = {"host": "db.example.com", "user": "orch", "password": SECRET}


async def create(api: Api, name: str, details: Any = None, kind: str = "ODBC") -> str:
    body = {"name": name, "type": kind, "details": DETAILS if details is None else details}
    conn_id: str = (await api.ok("connections/create", body))["id"]
    return conn_id


async def test_create_get_list_link_and_delete(api: Api) -> None:
    conn_id = await create(api, "warehouse")
    got = await api.ok("connections/get", {"name": "warehouse"})
    assert set(got) == {"id", "name", "type", "details", "created_at", "workspace_names"}
    assert got["id"] == conn_id and got["type"] == "ODBC" and got["details"] == DETAILS
    assert got["workspace_names"] == [] and got["created_at"].endswith("+00:00")
    assert await api.ok("connections/get_by_id", {"id": conn_id}) == got
    listed = (await api.ok("connections/list", {}))["connections"]
    assert [c["name"] for c in listed] == ["warehouse"]
    assert (await api.ok("connections/list", {"workspace_id": 1}))["connections"] == []

    link = await api.ok(
        "connections/add_to_workspace", {"workspace_id": 1, "connection_id": conn_id}
    )
    assert set(link) == {"id"}
    again = {"workspace_id": 1, "connection_id": conn_id}
    assert await api.ok("connections/add_to_workspace", again) == link  # already linked
    assert (await api.ok("connections/get", {"name": "warehouse"}))["workspace_names"] == [
        "default"
    ]
    in_default = (await api.ok("connections/list", {"workspace_id": 1}))["connections"]
    assert [c["id"] for c in in_default] == [conn_id]
    assert await api.ok("connections/remove_from_workspace", again) == {}
    assert (await api.ok("connections/list", {"workspace_id": 1}))["connections"] == []
    await api.refused("connections/remove_from_workspace", again, 404)

    assert await api.ok("connections/delete", {"name": "warehouse"}) == {}
    await api.refused("connections/get", {"name": "warehouse"}, 404)
    await api.refused("connections/get_by_id", {"id": conn_id}, 404)
    assert (await api.ok("connections/list", {}))["connections"] == []


async def test_mistakes_are_4xx_naming_what_is_wrong(api: Api) -> None:
    conn_id = await create(api, "api")
    assert "already exists" in await api.refused(
        "connections/create", {"name": "api", "type": "HTTP", "details": DETAILS}, 409
    )
    assert "type: is required" in await api.refused("connections/create", {"name": "x"}, 400)
    assert "details: must be a JSON object" in await api.refused(
        "connections/create", {"name": "x", "type": "HTTP", "details": [SECRET]}, 400
    )
    assert "name: must not be empty" in await api.refused(
        "connections/create", {"name": " ", "type": "HTTP"}, 400
    )
    link = {"workspace_id": 99, "connection_id": conn_id}
    assert "workspace 99 not found" in await api.refused("connections/add_to_workspace", link, 404)
    assert "connection_id" in await api.refused(
        "connections/add_to_workspace", {"workspace_id": 1, "connection_id": "x"}, 400
    )
    # No details given: an empty object.
    await api.ok("connections/create", {"name": "bare", "type": "HTTP"})
    assert (await api.ok("connections/get", {"name": "bare"}))["details"] == {}


READER = """\
import hashlib, json, wallaroo

wl = wallaroo.Client()
name = wl.task_args()["connection"]
seen = {"names": [c.name() for c in wl.list_connections()]}
try:
    details = wl.get_connection(name).details()
    seen["password"] = hashlib.sha256(details["password"].encode()).hexdigest()
except Exception as exc:
    seen["error"] = type(exc).__name__
try:
    wl.create_connection("made-by-a-run", "HTTP", {})
except Exception as exc:
    seen["create"] = type(exc).__name__
print(json.dumps(seen))
"""


async def run_reader(api: Api, workspace: int, connection: str) -> dict[str, Any]:
    orch_id = await api.upload({"main.py": READER}, workspace_id=workspace)
    await api.wait_orch(orch_id, {"ready"})
    args = {"connection": connection}
    task_id = await api.run_once(orch_id, args, workspace_id=workspace)
    task = await api.wait_task(task_id, {"success", "failed"})
    lines = texts(await api.logs(task["last_runs"][0]["run_id"]))
    assert task["status"] == "success", lines
    assert SECRET not in json.dumps(task) and SECRET not in "\n".join(lines)
    seen: dict[str, Any] = json.loads(lines[-1])
    return seen


async def test_a_run_reads_its_own_workspaces_connections_only(
    api: Api, caplog: pytest.LogCaptureFixture, data_dir: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    other = (await api.ok("workspaces/create", {"workspace_name": "other"}))["workspace_id"]
    mine = await create(api, "mine")
    theirs = await create(api, "theirs", {"password": "not-for-this-run"})
    await api.ok("connections/add_to_workspace", {"workspace_id": 1, "connection_id": mine})
    await api.ok("connections/add_to_workspace", {"workspace_id": other, "connection_id": theirs})

    seen = await run_reader(api, 1, "mine")
    assert seen["names"] == ["mine"]
    assert seen["password"] == hashlib.sha256(SECRET.encode()).hexdigest()
    assert seen["create"] == "AuthorizationError"  # a run's token only reads
    # Another workspace's connection does not exist for this run.
    assert (await run_reader(api, 1, "theirs"))["error"] == "NotFoundError"
    assert (await run_reader(api, other, "theirs"))["names"] == ["theirs"]

    # The secret is in no log of the server's, no run's log, no error.
    assert SECRET not in caplog.text
    for log in data_dir.glob("runs/*/log"):
        assert SECRET not in log.read_text()
    # The database holds it, readable by the server's user only.
    for name in ("orch.db", "orch.db-wal"):
        mode = stat.S_IMODE((data_dir / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))


async def test_the_sdks_connection_objects(jp_serverapp: Any, jp_fetch: Any) -> None:
    from jupyter_orch import Client, ConflictError, NotFoundError

    base = jp_serverapp.connection_url.rstrip("/")
    wl = Client(url=base, token=jp_serverapp.identity_provider.token)

    def scenario() -> None:
        conn = wl.create_connection("store", "HTTP", DETAILS)
        assert (conn.name(), conn.connection_type(), conn.details()) == ("store", "HTTP", DETAILS)
        assert conn.created_at() is not None and conn.workspace_names() == []
        assert SECRET not in repr(conn) and SECRET not in conn._repr_html_()
        assert SECRET not in repr(wl.list_connections()) and wl.list_connections() == [conn]
        with pytest.raises(ConflictError):
            wl.create_connection("store", "HTTP", {})
        workspace = wl.get_workspace("default")
        assert workspace is not None
        workspace.add_connection("store")
        assert workspace.list_connections() == [conn]
        assert wl.get_connection("store").workspace_names() == ["default"]
        workspace.remove_connection("store")
        assert workspace.list_connections() == []
        conn.add_connection_to_workspace(workspace.id())
        assert conn.workspace_names() == ["default"]
        conn.remove_connection_from_workspace(workspace.id())
        assert conn.workspace_names() == []
        conn.delete_connection()
        with pytest.raises(NotFoundError):
            wl.get_connection("store")

    try:
        await asyncio.to_thread(scenario)
    finally:
        wl.close()
