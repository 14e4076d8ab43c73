"""Ownership on a multi-user server: each user sees and acts on their own things and on the
workspaces they are a member of, admins on everything, and anything else is a 404.

The server is a real Jupyter server with `OrchApp.multi_user` on and an identity provider
that knows alice, bob and admin by their tokens (`fakes.TokenUsers`). One test walks every
operation of the served OpenAPI document, so an endpoint added later is tried too.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.auth.identity import User as JupyterUser
from tornado.httpclient import HTTPResponse

from jupyter_orch.sdk.client import Client
from jupyter_orch.sdk.errors import NotFoundError
from jupyter_orch.server import schema
from jupyter_orch.server.identity import HUB_ADMIN_SCOPE, Caller, caller_of, run_caller

from .conftest import API, Api, make_zip, multipart
from .fakes import TokenUser, TokenUsers
from .kernels import server_url

HELLO = {"main.py": "print('hello from the run', flush=True)\n"}
FAIL = {"main.py": "raise SystemExit(3)\n"}
NEVER = "0 0 1 1 *"  # a schedule whose next instant is months away, at most
ENDED = {"success", "failed", "timed_out", "killed"}


@pytest.fixture
def orch_config(orch_config: dict[str, Any]) -> dict[str, Any]:
    """The engine checks ownership per user."""
    return {**orch_config, "multi_user": True}


@pytest.fixture
def server_config() -> dict[str, Any]:
    """Users known by their tokens."""
    return {"identity_provider_class": TokenUsers}


class User(Api):
    """The orchestration API as one user of the test server calls it."""

    def __init__(self, jp_fetch: Callable[..., Any], token: str) -> None:
        async def fetch(*parts: str, **kwargs: Any) -> HTTPResponse:
            headers = {"Authorization": f"token {token}", **kwargs.pop("headers", {})}
            response: HTTPResponse = await jp_fetch(*parts, headers=headers, **kwargs)
            return response

        super().__init__(fetch)
        self.jp_fetch = jp_fetch
        self.name = token.split("-token", maxsplit=1)[0]

    async def get(self, path: str, **params: str) -> HTTPResponse:
        """GET an endpoint of the API; the response whatever its status."""
        response: HTTPResponse = await self.fetch(
            API, *path.split("/"), method="GET", params=params, raise_error=False
        )
        return response

    async def default_workspace(self) -> dict[str, Any]:
        """The user's default workspace, as `workspaces/list` marks it."""
        listed = (await self.ok("workspaces/list"))["workspaces"]
        (default,) = [w for w in listed if w["default"]]
        return dict(default)


@pytest.fixture
def users(jp_fetch: Callable[..., Any]) -> dict[str, User]:
    """alice, bob and admin."""
    return {name: User(jp_fetch, f"{name}-token") for name in ("alice", "bob", "admin")}


async def things_of(user: User) -> dict[str, Any]:
    """A user's records: in their default workspace a script that succeeded and one that
    failed (each run once), a scheduled task, two connections (one named alike for every
    user, one named for this user), and a second workspace of theirs."""
    default = (await user.default_workspace())["id"]
    connections = []
    for name in ("warehouse", f"{user.name}-only"):
        body = {"name": name, "type": "ODBC", "details": {"password": f"{user.name}-secret"}}
        connections.append((await user.ok("connections/create", body))["id"])
        link = {"workspace_id": 1, "connection_id": connections[-1]}
        await user.ok("connections/add_to_workspace", link)
    team = (await user.ok("workspaces/create", {"workspace_name": "team"}))["workspace_id"]
    hello, fail = await user.upload(HELLO), await user.upload(FAIL)
    once = [await user.run_once(hello), await user.run_once(fail)]
    ended = [await user.wait_task(task, ENDED) for task in once]
    body = {"orch_id": hello, "workspace_id": 1, "json": {}, "schedule": NEVER}
    scheduled = (await user.ok("task/run_scheduled", body, status=201))["id"]
    orch = await user.ok("orchestration/get_by_id", {"id": hello})
    return {
        "workspaces": [default, team],
        "orchestrations": [hello, fail],
        "tasks": [*once, scheduled],
        "runs": [task["last_runs"][0]["run_id"] for task in ended],
        "shas": [orch["sha"]],
        "connections": connections,
        "connection_names": [f"{user.name}-only"],
    }


# -- the default workspace ------------------------------------------------------------------


async def test_each_user_has_a_default_workspace_of_their_own(users: dict[str, User]) -> None:
    alice, bob, admin = users["alice"], users["bob"], users["admin"]
    mine = await alice.default_workspace()
    assert mine["name"] == "alice - Default Workspace" and mine["created_by"] == "alice"
    assert [w["id"] for w in (await alice.ok("workspaces/list"))["workspaces"]] == [mine["id"]]
    assert mine["id"] != 1  # never the shared `default`
    orch_id = await alice.upload(HELLO)  # workspace_id 1: her own default workspace
    orch = await alice.ok("orchestration/get_by_id", {"id": orch_id})
    assert orch["workspace_id"] == mine["id"] and orch["owner_id"] == "alice"
    listed = await alice.ok("orchestration/list", {"workspace_id": 1})
    assert [o["id"] for o in listed] == [orch_id]
    theirs = await bob.default_workspace()
    assert theirs["id"] not in (1, mine["id"])
    assert await bob.ok("orchestration/list", {"workspace_id": 1}) == []
    everything = (await admin.ok("workspaces/list"))["workspaces"]
    assert {1, mine["id"], theirs["id"]} <= {w["id"] for w in everything}
    users_of = await alice.ok("workspaces/list_users", {"workspace_id": 1})
    assert users_of == {"users": [{"user_id": "alice", "user_type": "Owner"}]}
    refused = await alice.call("workspaces/remove_user", {"workspace_id": 1, "user_id": "alice"})
    assert refused.code == 409, refused.body  # a default workspace keeps its user as owner


async def test_workspace_names_are_unique_per_user_only(users: dict[str, User]) -> None:
    alice, bob = users["alice"], users["bob"]
    await alice.ok("workspaces/create", {"workspace_name": "team"})
    again = await alice.call("workspaces/create", {"workspace_name": "team"})
    assert again.code == 409
    # bob does not learn that alice has a workspace of that name
    await bob.ok("workspaces/create", {"workspace_name": "team"})


# -- every endpoint, as the wrong user --------------------------------------------------------

#: Candidate values of request fields that name records, by field name: the other user's.
ID_FIELDS: dict[str, Callable[[dict[str, Any]], list[Any]]] = {
    "id": lambda t: t["orchestrations"] + t["tasks"] + t["runs"] + t["connections"],
    "orch_id": lambda t: t["orchestrations"],
    "task_id": lambda t: t["tasks"],
    "task": lambda t: t["tasks"],
    "pod_id": lambda t: t["runs"],
    "after": lambda t: t["tasks"] + t["runs"],
    # 1 is the caller's own default workspace: the other user's records into one's own
    "workspace_id": lambda t: [*t["workspaces"], 1],
    "workspace_ids": lambda t: [t["workspaces"]],
    "orchestrations": lambda t: [[o] for o in t["orchestrations"]],
    "tasks": lambda t: [[task] for task in t["tasks"]],
    "sha": lambda t: t["shas"],
    "orch_sha": lambda t: t["shas"],
    "user_id": lambda t: ["alice", "bob"],
    "email": lambda t: ["alice"],
    "connection_id": lambda t: t["connections"],
    "name": lambda t: t["connection_names"],  # on the paths of NAMED_PATHS only
}
#: The paths whose `name` names a record (elsewhere a name is only a label).
NAMED_PATHS = frozenset({"connections/get", "connections/delete"})
#: Values of the other required fields.
PLAIN: dict[str, Any] = {
    "json": {},
    "schedule": NEVER,
    "pause": True,
    "workspace_name": "made-by-alice",
    "path": "project",
    "confirm_delete": True,  # deleting what one does not see: must be a 404
    "from": "0",
    "name": "made-by-alice",
    "type": "ODBC",
}


def _resolve(document: dict[str, Any], schema_: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema_:
        schema_ = document["components"]["schemas"][schema_["$ref"].rsplit("/", 1)[1]]
    return schema_


def bodies(path: str, fields: dict[str, bool], theirs: dict[str, Any]) -> list[dict[str, Any]]:
    """Requests naming the other user's records: required id fields take their candidates
    side by side; each optional id field is added, one candidate at a time, to the first."""

    def names_a_record(field: str) -> bool:
        return field in ID_FIELDS and (field != "name" or path in NAMED_PATHS)

    required = {
        f: ID_FIELDS[f](theirs) for f, needed in fields.items() if needed and names_a_record(f)
    }
    plain = {
        f: PLAIN[f]
        for f, needed in fields.items()
        if f in PLAIN and not names_a_record(f) and (needed or f == "confirm_delete")
    }
    count = max((len(values) for values in required.values()), default=1)
    found = [
        {**plain, **{f: values[i % len(values)] for f, values in required.items()}}
        for i in range(count)
    ]
    for name, needed in fields.items():
        if not needed and names_a_record(name):
            found += [{**found[0], name: value} for value in ID_FIELDS[name](theirs)]
    return found


def operations(document: dict[str, Any]) -> list[tuple[str, str, str, dict[str, bool]]]:
    """(method, path, kind of body, fields and whether each is required) of every operation:
    kinds `json`, `multipart` (fields of the metadata part) and `query`."""
    found = []
    for full, item in document["paths"].items():
        path = full.split("/orch/v1/api/", 1)[1]
        for method, op in item.items():
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                kind, body = "json", _resolve(document, content["application/json"]["schema"])
            elif "multipart/form-data" in content:
                kind, body = (
                    "multipart",
                    _resolve(document, {"$ref": "#/components/schemas/UploadMetadata"}),
                )
            else:
                params = op.get("parameters", [])
                fields = {p["name"]: bool(p.get("required")) for p in params}
                found.append((method, path, "query", fields))
                continue
            required = set(body.get("required", []))
            fields = {name: name in required for name in body.get("properties", {})}
            found.append((method, path, kind, fields))
    return found


async def send(user: User, method: str, path: str, kind: str, body: dict[str, Any]) -> Any:
    """One request as `user`: (status, decoded answer or text)."""
    if kind == "query":
        response = await user.get(path, **{k: str(v) for k, v in body.items()})
    elif kind == "multipart":
        form, ctype = multipart(
            [
                ("file", "orch.zip", make_zip(HELLO), "application/octet-stream"),
                ("metadata", "metadata", json.dumps(body).encode(), "application/json"),
            ]
        )
        response = await user.call(path, form, headers={"Content-Type": ctype})
    else:
        response = await user.call(path, body)
    text = response.body.decode("utf-8", "replace")
    try:
        return response.code, json.loads(text)
    except ValueError:
        return response.code, text  # a download, or the lines of follow_logs


def not_found(status: int, answer: Any) -> bool:
    """A 404 saying that what was named does not exist."""
    return status == 404 and "not found" in str(answer)


def reached(status: int, answer: Any) -> bool:
    """An answer about the record a request named: done, or refused for its state."""
    return (
        200 <= status < 300
        or status in (403, 409)
        or (status == 404 and not not_found(status, answer))
    )


def mentions(value: Any, theirs: dict[str, Any], key: str = "") -> bool:
    """Whether a request or answer names one of the other user's records (or the user)."""
    if isinstance(value, dict):
        return any(mentions(v, theirs, k) for k, v in value.items())
    if isinstance(value, list):
        return any(mentions(v, theirs, key) for v in value)
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int):  # ids of workspaces are small numbers: only where they are ids
        return key in ("id", "workspace_id", "workspace_ids") and value in theirs["workspaces"]
    # (not the archives' hashes: the same zip uploaded by two users has one)
    skip = ("workspaces", "shas")
    words = [str(v) for k, vs in theirs.items() if k not in skip for v in vs] + ["bob"]
    return any(word in str(value) for word in words)


async def stop_every_task(admin: User) -> None:
    """Kill every task left (some tests make continuous ones) and wait for their runs."""
    for task in await admin.ok("task/list", {"killed": False}):
        await admin.call("task/kill", {"id": task["id"]})
    for task in await admin.ok("task/list"):
        await admin.wait_task(task["id"], ENDED)


async def test_every_endpoint_hides_the_other_users_things(
    users: dict[str, User], jp_root_dir: Path
) -> None:
    alice, bob = users["alice"], users["bob"]
    (jp_root_dir / "project").mkdir()
    (jp_root_dir / "project" / "main.py").write_text("print(1)\n")
    try:
        await _every_endpoint(alice, bob)
    finally:
        await stop_every_task(users["admin"])


async def _every_endpoint(alice: User, bob: User) -> None:
    theirs = await things_of(bob)
    await things_of(alice)
    document = json.loads((await alice.get("openapi.json")).body)
    ops = operations(document)
    assert len(ops) >= 29  # every operation is walked, new ones included
    tried: dict[str, list[tuple[dict[str, Any], int, Any]]] = {}
    for method, path, kind, fields in ops:
        for body in bodies(path, fields, theirs):
            status, answer = await send(alice, method, path, kind, body)
            tried.setdefault(path, []).append((body, status, answer))
            assert status < 500, (path, body, status, answer)
            if 200 <= status < 300:
                assert not mentions(answer, theirs), (path, body, status, answer)
            elif mentions(body, theirs):
                assert not_found(status, answer) or status == 400, (path, body, status, answer)

    # Nothing of bob's changed: not killed, paused, deleted, nor shared with alice.
    for task_id in theirs["tasks"]:
        task = await bob.ok("task/get_by_id", {"id": task_id})
        assert not task["killed"] and task["status"] in {"success", "failed", "started"}, task
    for orch_id in theirs["orchestrations"]:
        await bob.ok("orchestration/get_by_id", {"id": orch_id})
    for workspace_id in theirs["workspaces"]:
        members = await bob.ok("workspaces/list_users", {"workspace_id": workspace_id})
        assert members == {"users": [{"user_id": "bob", "user_type": "Owner"}]}
    assert (await bob.logs(theirs["runs"][0])) != []
    for conn_id in theirs["connections"]:
        conn = await bob.ok("connections/get_by_id", {"id": conn_id})
        assert conn["details"] == {"password": "bob-secret"}
        assert conn["workspace_names"] == ["bob - Default Workspace"]

    # The same requests reach bob's records when bob sends them: each operation that names
    # records found one (so alice's 404s were about ownership, not malformed requests), and a
    # 400 alice got is bob's answer too.
    destructive = {
        "task/kill",
        "task/delete",
        "orchestration/delete_orchestrations",
        "connections/delete",
    }
    for method, path, kind, _ in sorted(ops, key=lambda op: op[1] in destructive):
        named = [(body, status) for body, status, _ in tried[path] if mentions(body, theirs)]
        if not named:
            continue
        answers = []
        for body, status in named:
            safe = {**body, "confirm_delete": False} if "confirm_delete" in body else body
            answers.append(await send(bob, method, path, kind, safe))
            if status == 400:
                assert answers[-1][0] == 400, (path, safe, answers[-1])
        assert any(reached(*answer) for answer in answers), (path, answers)


async def test_admins_see_and_act_on_everything(users: dict[str, User]) -> None:
    alice, bob, admin = users["alice"], users["bob"], users["admin"]
    a_orch, b_orch = await alice.upload(HELLO), await bob.upload(HELLO)
    a_task = (await alice.ok("task/run_scheduled", _scheduled(a_orch), status=201))["id"]
    b_task = (await bob.ok("task/run_scheduled", _scheduled(b_orch), status=201))["id"]
    listed = {t["id"]: t["owner_id"] for t in await admin.ok("task/list")}
    assert listed == {a_task: "alice", b_task: "bob"}
    everything = await admin.ok("orchestration/list_all", {})
    assert {item["orchestration"]["id"] for item in everything} == {a_orch, b_orch}
    assert (await admin.ok("task/get_by_id", {"id": b_task}))["owner_id"] == "bob"
    assert (await alice.ok("task/list")) == [await alice.ok("task/get_by_id", {"id": a_task})]
    killed = await admin.ok("task/kill", {"id": b_task}, status=202)
    assert killed["status"] in {"killed", "pending_kill"}
    assert (await bob.ok("task/get_by_id", {"id": b_task}))["killed"]
    members = await admin.ok("workspaces/list_users", {"workspace_id": _ws(b_orch, everything)})
    assert members["users"] == [{"user_id": "bob", "user_type": "Owner"}]


def _scheduled(orch_id: str) -> dict[str, Any]:
    return {"orch_id": orch_id, "workspace_id": 1, "json": {}, "schedule": NEVER}


def _ws(orch_id: str, items: list[dict[str, Any]]) -> int:
    (workspace_id,) = [i["workspace"]["id"] for i in items if i["orchestration"]["id"] == orch_id]
    return int(workspace_id)


# -- sharing a workspace ------------------------------------------------------------------------


async def test_add_user_shares_a_workspace_and_remove_user_hides_it_again(
    users: dict[str, User],
) -> None:
    alice, bob = users["alice"], users["bob"]
    team = (await alice.ok("workspaces/create", {"workspace_name": "team"}))["workspace_id"]
    orch_id = await alice.upload(HELLO, workspace_id=team)
    body = {"orch_id": orch_id, "workspace_id": team, "json": {}}
    task_id = (await alice.ok("task/run_once", body, status=201))["id"]
    run_id = (await alice.wait_task(task_id, ENDED))["last_runs"][0]["run_id"]

    async def bob_sees() -> bool:
        found = await bob.call("task/get_by_id", {"id": task_id})
        listed = [t["id"] for t in await bob.ok("task/list")]
        logs = await bob.call("task/get_logs_for_run", {"id": run_id})
        orch = await bob.call("orchestration/get_by_id", {"id": orch_id})
        codes = {found.code, logs.code, orch.code}
        assert codes in ({200}, {404}) and (task_id in listed) == (found.code == 200), codes
        return found.code == 200

    assert not await bob_sees()
    assert (await bob.call("workspaces/list_users", {"workspace_id": team})).code == 404
    joined = await bob.call("workspaces/add_user", {"workspace_id": team, "user_id": "bob"})
    assert joined.code == 404  # no one adds themselves to a workspace they do not see

    await alice.ok("workspaces/add_user", {"workspace_id": team, "email": "bob"})
    assert await bob_sees()
    assert team in [w["id"] for w in (await bob.ok("workspaces/list"))["workspaces"]]
    members = await bob.ok("workspaces/list_users", {"workspace_id": team})
    assert members["users"] == [
        {"user_id": "alice", "user_type": "Owner"},
        {"user_id": "bob", "user_type": "Collaborator"},
    ]
    # a collaborator acts on the workspace's things, but does not manage its members
    own = (await bob.ok("task/run_once", body, status=201))["id"]
    assert (await bob.logs(run_id)) == (await alice.logs(run_id))
    carol = await bob.call("workspaces/add_user", {"workspace_id": team, "user_id": "carol"})
    assert carol.code == 403, carol.body

    await bob.ok("workspaces/remove_user", {"workspace_id": team, "user_id": "bob"})  # leaves
    assert not await bob_sees()
    await alice.ok("workspaces/add_user", {"workspace_id": team, "user_id": "bob"})
    assert await bob_sees()
    await alice.ok("workspaces/remove_user", {"workspace_id": team, "user_id": "bob"})
    assert not await bob_sees()
    assert team not in [w["id"] for w in (await bob.ok("workspaces/list"))["workspaces"]]
    assert (await bob.call("orchestration/list", {"workspace_id": team})).code == 404
    # what bob made there stays his: he sees (and may stop) his own task
    assert [t["id"] for t in await bob.ok("task/list")] == [own]
    last = await alice.call("workspaces/remove_user", {"workspace_id": team, "user_id": "alice"})
    assert last.code == 409  # a workspace keeps an owner


# -- a run's token --------------------------------------------------------------------------

CALLER = """
import json, os, urllib.error, urllib.request

def call(path, body=None, base=os.environ["JUPYTER_ORCH_URL"] + "/v1/api/"):
    request = urllib.request.Request(
        base + path, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "token " + os.environ["JUPYTER_ORCH_TOKEN"]},
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, None

SERVER = os.environ["JUPYTER_ORCH_URL"].rsplit("/orch", 1)[0]
with open(os.environ["JUPYTER_ORCH_ARGS_FILE"]) as fh:
    other = json.load(fh)["other"]
with open("token", "w") as fh:  # for the test to try once the run has ended
    fh.write(os.environ["JUPYTER_ORCH_TOKEN"])
seen = {
    "own": call("task/get_by_id", {"id": os.environ["TASK_ID"]})[0],
    "other": call("task/get_by_id", {"id": other})[0],
    "list": [t["id"] for t in call("task/list", {})[1]],
    "workspaces": [w["name"] for w in call("workspaces/list", {})[1]["workspaces"]],
    "contents": call("", base=SERVER + "/api/contents")[0],
}
print("SEEN " + json.dumps(seen), flush=True)
"""


async def test_a_runs_token_acts_as_its_owner_only_while_it_runs(
    users: dict[str, User], data_dir: Path
) -> None:
    alice, bob = users["alice"], users["bob"]
    theirs = (await bob.ok("task/run_scheduled", _scheduled(await bob.upload(HELLO)), 201))["id"]
    orch_id = await alice.upload({"main.py": CALLER})
    task_id = await alice.run_once(orch_id, {"other": theirs})
    done = await alice.wait_task(task_id, ENDED)
    run_id = done["last_runs"][0]["run_id"]
    lines = await alice.logs(run_id)
    assert done["status"] == "success", lines
    (seen,) = [json.loads(line.split("SEEN ", 1)[1]) for line in lines if "SEEN " in line]
    assert seen == {
        "own": 200,
        "other": 404,
        "list": [task_id],
        "workspaces": ["alice - Default Workspace"],
        "contents": 403,  # the orchestration API only
    }
    token = (data_dir / "runs" / run_id / "work" / "token").read_text()
    late = await User(alice.jp_fetch, token).call("task/list")
    assert late.code == 403  # the run has ended: its token is dead


# -- databases made before workspaces had members ---------------------------------------------


def test_an_older_database_loses_unique_workspace_names_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "orch.db"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE workspaces (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
        " created_by TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL);"
        "INSERT INTO workspaces VALUES (1, 'default', '', '2026-01-01T00:00:00+00:00');"
        "INSERT INTO workspaces VALUES (2, 'team', 'me', '2026-01-02T00:00:00+00:00');"
    )
    old.close()
    db = sqlite3.connect(path, isolation_level=None)
    schema.prepare(db)
    rows = db.execute("SELECT id, name, created_by FROM workspaces ORDER BY id").fetchall()
    assert [tuple(row) for row in rows] == [(1, "default", ""), (2, "team", "me")]
    db.execute("INSERT INTO workspaces (name, created_at) VALUES ('team', 'now')")
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    schema.prepare(db)  # opening again changes nothing
    assert db.execute("SELECT COUNT(*) FROM workspaces").fetchone()[0] == 3
    db.close()


async def test_requests_of_users_at_once_make_each_default_workspace_once(
    users: dict[str, User],
) -> None:
    alice = users["alice"]
    answers = await asyncio.gather(*(alice.ok("workspaces/list") for _ in range(5)))
    assert len({json.dumps(a) for a in answers}) == 1
    assert len(answers[0]["workspaces"]) == 1


# -- the SDK ---------------------------------------------------------------------------------


async def test_the_sdk_works_per_user_and_shares_workspaces(
    jp_serverapp: Any, jp_fetch: Any
) -> None:
    url = server_url(jp_serverapp)  # (jp_fetch starts the server's listener)
    alice, bob = (Client(url=url, token=f"{name}-token") for name in ("alice", "bob"))

    def scenario() -> None:
        mine = alice.get_current_workspace()  # workspace 1: her own default
        assert mine.name() == "alice - Default Workspace" and mine.is_default()
        orch = alice.upload_orchestration(bytes_buffer=make_zip(HELLO), name="hello")
        assert orch.workspace_id() == mine.id() and alice.list_orchestrations() == [orch]
        assert bob.list_orchestrations() == []
        team = alice.get_workspace("team", create_if_not_exist=True)
        assert team is not None and bob.get_workspace("team") is None
        alice.set_current_workspace(team)
        shared = alice.upload_orchestration(bytes_buffer=make_zip(FAIL), name="shared")
        assert team.add_user("bob").users() == [
            {"user_id": "alice", "user_type": "Owner"},
            {"user_id": "bob", "user_type": "Collaborator"},
        ]
        assert bob.list_orchestrations(workspace_name="team") == [shared]
        team.add_owner("bob")
        assert bob.get_workspace("team").users()[1]["user_type"] == "Owner"  # type: ignore[union-attr]
        team.remove_user("bob")
        assert bob.get_workspace("team") is None
        with pytest.raises(NotFoundError):
            bob.get_orchestration_by_id(shared.id())

    try:
        await asyncio.to_thread(scenario)
    finally:
        alice.close()
        bob.close()


async def test_pages_of_tasks_hold_own_and_shared_tasks_newest_first(
    users: dict[str, User],
) -> None:
    alice, bob = users["alice"], users["bob"]
    team = (await bob.ok("workspaces/create", {"workspace_name": "team"}))["workspace_id"]
    await bob.ok("workspaces/add_user", {"workspace_id": team, "user_id": "alice"})
    mine, shared, bobs = (
        await alice.upload(HELLO),
        await bob.upload(HELLO, workspace_id=team),
        await bob.upload(HELLO),
    )
    made = []
    for user, orch_id, workspace_id in [(alice, mine, 1), (bob, shared, team), (bob, bobs, 1)] * 3:
        body = {**_scheduled(orch_id), "workspace_id": workspace_id}
        made.append((await user.ok("task/run_scheduled", body, status=201))["id"])
    seen = [task_id for i, task_id in enumerate(made) if i % 3 != 2]  # not bob's own
    everything = [t["id"] for t in await alice.ok("task/list")]
    assert everything == seen[::-1]  # newest first
    pages: list[str] = []
    while True:
        body: dict[str, Any] = {"limit": 2, **({"after": pages[-1]} if pages else {})}
        page = [t["id"] for t in await alice.ok("task/list", body)]
        if not page:
            break
        pages += page
    assert pages == everything
    in_team = [t["id"] for t in await alice.ok("task/list", {"workspace_id": team, "limit": 2})]
    assert in_team == [made[7], made[4]]


# -- the seam: who is asking ------------------------------------------------------------------


def hub_user(model: dict[str, Any]) -> JupyterUser:
    """A user as JupyterHub's identity provider gives it: its Hub model in `hub_user`."""
    user = JupyterUser(str(model["name"]))
    user.hub_user = model  # type: ignore[attr-defined]
    return user


def test_the_caller_comes_from_the_identity_providers_user() -> None:
    def caller(user: Any, **kwargs: Any) -> Caller:
        return caller_of(user, multi_user=True, owner="server", **kwargs)

    assert caller(JupyterUser("ann")) == Caller("ann", admin=False)
    assert caller(TokenUser("root", admin=True)) == Caller("root", admin=True)
    assert caller(hub_user({"name": "hub-admin", "admin": True})).admin
    scoped = hub_user({"name": "ops", "admin": False, "scopes": [HUB_ADMIN_SCOPE]})
    assert caller(scoped).admin
    assert not caller(hub_user({"name": "ann", "admin": False, "scopes": ["self"]})).admin
    assert caller(JupyterUser("ann"), admin_users={"ann"}).admin
    # not multi-user: every caller is the server's one user, who sees everything
    single = caller_of(JupyterUser("anonymous-x"), multi_user=False, owner="server")
    assert single == Caller("server", admin=True)
    assert run_caller("ann", "r1", multi_user=True) == Caller("ann", admin=False, run_id="r1")


# -- connections -----------------------------------------------------------------------------


async def test_connections_are_their_owners_and_their_workspaces_members(
    users: dict[str, User],
) -> None:
    alice, bob, admin = users["alice"], users["bob"], users["admin"]
    team = (await bob.ok("workspaces/create", {"workspace_name": "team"}))["workspace_id"]
    body = {"name": "db", "type": "ODBC", "details": {"password": "bob-secret"}}
    conn_id = (await bob.ok("connections/create", body))["id"]
    for workspace_id in (1, team):  # bob's default, and team
        await bob.ok(
            "connections/add_to_workspace", {"workspace_id": workspace_id, "connection_id": conn_id}
        )
    assert (await alice.call("connections/get_by_id", {"id": conn_id})).code == 404
    assert (await alice.call("connections/get", {"name": "db"})).code == 404
    assert (await alice.ok("connections/list"))["connections"] == []

    await bob.ok("workspaces/add_user", {"workspace_id": team, "user_id": "alice"})
    shared = await alice.ok("connections/get", {"name": "db"})
    assert shared["id"] == conn_id and shared["details"] == {"password": "bob-secret"}
    assert shared["workspace_names"] == ["team"]  # not bob's default workspace
    in_team = (await alice.ok("connections/list", {"workspace_id": team}))["connections"]
    assert [c["id"] for c in in_team] == [conn_id]
    # a member reads it, but neither deletes it nor passes it on to another workspace
    link = {"workspace_id": 1, "connection_id": conn_id}
    for path, request in [
        ("connections/delete", {"name": "db"}),
        ("connections/add_to_workspace", link),
        ("connections/remove_from_workspace", {**link, "workspace_id": team}),
    ]:
        assert (await alice.call(path, request)).code == 403, path
    # names are the owner's own: alice's "db" is hers, and hers comes first by name
    own = (await alice.ok("connections/create", {**body, "details": {}}))["id"]
    assert (await alice.ok("connections/get", {"name": "db"}))["id"] == own
    again = await alice.call("connections/create", body)
    assert again.code == 409

    await bob.ok("workspaces/remove_user", {"workspace_id": team, "user_id": "alice"})
    assert (await alice.call("connections/get_by_id", {"id": conn_id})).code == 404
    assert [c["id"] for c in (await alice.ok("connections/list"))["connections"]] == [own]
    everything = (await admin.ok("connections/list"))["connections"]
    assert {c["id"] for c in everything} == {conn_id, own}


def test_an_older_connections_table_gets_names_unique_per_owner(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "orch.db", isolation_level=None)
    db.executescript(
        "CREATE TABLE connections (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
        " type TEXT NOT NULL, details TEXT NOT NULL, owner TEXT NOT NULL DEFAULT '',"
        " created_at TEXT NOT NULL);"
        "INSERT INTO connections VALUES ('c1', 'db', 'ODBC', '{}', 'ann', 'then');"
    )
    schema.prepare(db)
    insert = "INSERT INTO connections VALUES (?, 'db', 'ODBC', '{}', ?, 'now')"
    db.execute(insert, ("c2", "bea"))  # another owner's "db"
    with pytest.raises(sqlite3.IntegrityError):
        db.execute(insert, ("c3", "ann"))  # ann has one
    assert db.execute("SELECT COUNT(*) FROM connections").fetchone()[0] == 2
    db.close()


async def test_deleting_another_users_tasks_is_a_404(users: dict[str, User]) -> None:
    alice, bob, admin = users["alice"], users["bob"], users["admin"]
    a_task = (await alice.ok("task/run_scheduled", _scheduled(await alice.upload(HELLO)), 201))[
        "id"
    ]
    b_task = (await bob.ok("task/run_scheduled", _scheduled(await bob.upload(HELLO)), 201))["id"]
    for tasks in ([b_task], [a_task, b_task]):
        for confirm in (False, True):
            body = {"tasks": tasks, "confirm_delete": confirm}
            response = await alice.call("task/delete", body)
            assert response.code == 404, response.body
            assert b_task in response.body.decode() and "not found" in response.body.decode()
    # Nothing was deleted, nor killed: not alice's own task named beside bob's either.
    assert not (await alice.ok("task/get_by_id", {"id": a_task}))["killed"]
    assert not (await bob.ok("task/get_by_id", {"id": b_task}))["killed"]
    mine = await alice.ok("task/delete", {"tasks": [a_task], "confirm_delete": True})
    assert mine == {"tasks": [a_task], "task_runs": 0, "running": [], "deleted": True}
    theirs = await admin.ok("task/delete", {"tasks": [b_task], "confirm_delete": True})
    assert theirs["deleted"] is True
    await bob.ok("task/get_by_id", {"id": b_task}, status=404)
