"""The shipped OpenAPI document against the real server: every answer must match its schema.

Each test drives the real in-process server and validates the answers it gets (and the requests
it sends) against the document's schema for that path, method and status. Response object
schemas are strict (`additionalProperties: false`, every emitted field required), so a field the
document forgets, or one the server stops sending, fails here.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import openapi_spec_validator
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from tornado.httpclient import HTTPResponse
from tornado.web import RequestHandler

from jupyter_orch.server import handlers, models

from .conftest import API, Api, make_zip

DOC_TEXT = handlers.openapi_path().read_text(encoding="utf-8")
DOC: dict[str, Any] = json.loads(DOC_TEXT)
DOC_URI = "urn:jupyter-orch:openapi"
REGISTRY: Registry[Any] = Registry().with_resource(
    DOC_URI, Resource.from_contents(DOC, default_specification=DRAFT202012)
)
PREFIX = "/orch/v1/api/"

# The wire contract's words and always-present fields (shared/spec/api.md).
CONTRACT_STATUSES = {
    "OrchestrationStatus": {"pending_packaging", "packaging", "ready", "error", "uninitialized"},
    "TaskStatus": {
        "pending",
        "started",
        "success",
        "failed",
        "timed_out",
        "pending_kill",
        "killed",
        "pending_pause",
        "paused",
        "pending_resume",
        "crash_loop",
        "schedule_error",
        "resource_contention",
    },
    "RunStatus": {"running", "success", "failure", "timed_out", "killed", "unknown"},
    "RunStatusFilter": {"all", "running", "success", "failure", "timed_out"},
}
CONTRACT_REQUIRED = {
    "Orchestration": {
        "id",
        "file_name",
        "file_size",
        "sha",
        "status",
        "owner_id",
        "workspace_id",
        "image_path",
        "created_at",
        "updated_at",
    },
    "Task": {
        "id",
        "status",
        "killed",
        "input_data",
        "last_runs",
        "workspace_id",
        "created_at",
        "updated_at",
    },
    "TaskRunSummary": {"run_id", "status", "created_at", "updated_at"},
    "TaskRun": {"task", "run_id", "status", "created_at", "updated_at"},
    "Error": {"message", "reason"},
}

HELLO = {"main.py": "print('hello', flush=True)\nprint('world', flush=True)\n"}
SLEEPER = {"main.py": "import time\nprint('up', flush=True)\ntime.sleep(60)\n"}
ENDED = {"success", "failed", "timed_out", "killed"}

# -- formats: checked here, not left to optional jsonschema extras --------------------------

FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    """ISO 8601 date and time with a timezone, as the contract writes times."""
    if not isinstance(value, str):
        return True
    return "T" in value and datetime.fromisoformat(value).tzinfo is not None


@FORMATS.checks("uuid", raises=ValueError)
def _is_uuid(value: object) -> bool:
    """A UUID in canonical (lower-case, hyphenated) form."""
    if not isinstance(value, str):
        return True
    return str(uuid.UUID(value)) == value


# -- looking up and applying the document's schemas ----------------------------------------


def _pointer(*parts: str) -> str:
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def _full(path: str) -> str:
    return path if path.startswith("/") else PREFIX + path


def _deref(node: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A node of the document and its location, following a local `$ref` (responses)."""
    ref = node.get("$ref")
    if ref is None:
        return node, []
    assert ref.startswith("#/"), ref
    parts = [p.replace("~1", "/").replace("~0", "~") for p in ref[2:].split("/")]
    target: Any = DOC
    for part in parts:
        assert part in target, f"dangling $ref {ref}"
        target = target[part]
    return target, parts


def operation(path: str, method: str) -> dict[str, Any]:
    """The document's operation for a path and method; fails when it is not documented."""
    item = DOC["paths"].get(_full(path))
    if item is None:
        pytest.fail(f"{_full(path)} is not in the OpenAPI document")
    op = item.get(method.lower())
    if op is None:
        pytest.fail(f"{method.upper()} {_full(path)} is not in the OpenAPI document")
    op_: dict[str, Any] = op
    return op_


def response_media(path: str, method: str, status: int) -> tuple[dict[str, Any], list[str]]:
    """The `content` of a documented response, and its location in the document."""
    op = operation(path, method)
    documented = op["responses"]
    if str(status) not in documented:
        pytest.fail(
            f"{method.upper()} {_full(path)} answered {status}, which the document does not "
            f"list (it lists {sorted(documented)})"
        )
    response, where = _deref(documented[str(status)])
    if not where:
        where = ["paths", _full(path), method.lower(), "responses", str(status)]
    assert "content" in response, f"{method.upper()} {path} {status} documents no content"
    return response["content"], where


def _check(
    instance: Any, location: list[str], what: str, fail: Callable[[str], None] | None = None
) -> list[str]:
    """Validate `instance` against the schema at `location`; the error lines."""
    validator = Draft202012Validator(
        {"$ref": DOC_URI + "#" + _pointer(*location)},
        registry=REGISTRY,
        format_checker=FORMATS,
    )
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    lines = [f"  at {e.json_path}: {e.message}" for e in errors]
    if errors and fail is not None:
        best = best_match(errors)
        shown = json.dumps(instance, indent=1)
        fail(
            f"{what} does not match the OpenAPI document ({len(errors)} errors; most relevant: "
            f"{best.message} at {best.json_path}):\n"
            + "\n".join(lines[:20])
            + f"\n--- the instance:\n{shown[:3000]}"
        )
    return lines


def validate(
    path: str, method: str, status: int, body: Any, media: str = "application/json"
) -> None:
    """Fail unless `body` matches the document's JSON schema for this path, method and status
    (for a JSON-lines answer, `body` is one line)."""
    content, where = response_media(path, method, status)
    if media not in content:
        pytest.fail(f"{method.upper()} {path} {status} documents no {media} answer")
    location = [*where, "content", media, "schema"]
    _check(body, location, f"the {status} answer of {method.upper()} {_full(path)}", pytest.fail)


def mismatches(path: str, method: str, status: int, body: Any) -> list[str]:
    """The schema errors of `body` for this answer (empty when it matches)."""
    content, where = response_media(path, method, status)
    assert "application/json" in content
    return _check(body, [*where, "content", "application/json", "schema"], "")


def validate_request(path: str, body: Any, media: str = "application/json") -> None:
    """Fail unless a request body we send matches the document's request schema."""
    op = operation(path, "post")
    if "requestBody" not in op:
        pytest.fail(f"POST {_full(path)} documents no request body")
    if media not in op["requestBody"]["content"]:
        pytest.fail(f"POST {_full(path)} documents no {media} request body")
    location = ["paths", _full(path), "post", "requestBody", "content", media, "schema"]
    _check(body, location, f"the request body of POST {_full(path)}", pytest.fail)


def component(name: str) -> dict[str, Any]:
    """A schema of `components/schemas`."""
    schema: dict[str, Any] = DOC["components"]["schemas"][name]
    return schema


def assert_strict(path: str, method: str, status: int, body: Any) -> None:
    """The schema must catch a missing field and an unknown one in this (valid) answer."""
    validate(path, method, status, body)
    target = body[0] if isinstance(body, list) else body
    assert isinstance(target, dict) and target, "need an object to mutate"
    for key in target:
        broken = copy.deepcopy(body)
        (broken[0] if isinstance(broken, list) else broken).pop(key)
        assert mismatches(path, method, status, broken), f"{path}: dropping {key!r} goes unseen"
    broken = copy.deepcopy(body)
    (broken[0] if isinstance(broken, list) else broken)["not_documented"] = 1
    assert mismatches(path, method, status, broken), f"{path}: an unknown field goes unseen"


# -- calling the server with validation on both sides --------------------------------------


def _json_answer(response: HTTPResponse, what: str) -> Any:
    ctype = response.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), f"{what}: Content-Type {ctype!r}"
    return json.loads(response.body)


async def call(api: Api, path: str, body: Any, status: int = 200, valid: bool = True) -> Any:
    """POST a JSON body (that must match the document when `valid`); expect `status`; validate
    the answer."""
    if valid:
        validate_request(path, body)
    response = await api.call(path, body)
    assert response.code == status, (path, response.code, response.body[:2000])
    answer = _json_answer(response, path)
    validate(path, "post", status, answer)
    return answer


async def upload(api: Api, files: dict[str, str | bytes], **meta: Any) -> str:
    """Upload an archive (metadata checked against the document); the 202 answer's id."""
    metadata = {"workspace_id": 1, **meta}
    form = {"file": "<zip bytes>", "metadata": json.dumps(metadata)}
    validate_request("orchestration/upload", form, "multipart/form-data")
    _check(metadata, ["components", "schemas", "UploadMetadata"], "metadata", pytest.fail)
    response = await api.upload_raw(make_zip(files), json.dumps(metadata))
    assert response.code == 202, response.body
    answer = _json_answer(response, "upload")
    validate("orchestration/upload", "post", 202, answer)
    orch_id: str = answer["id"]
    return orch_id


async def wait_task(api: Api, task_id: str, statuses: set[str], timeout: float = 30) -> Any:
    """Poll `task/get_by_id` (each answer validated) until the task's status is in `statuses`."""
    deadline = time.monotonic() + timeout
    while True:
        task = await call(api, "task/get_by_id", {"id": task_id})
        if task["status"] in statuses:
            return task
        assert time.monotonic() < deadline, f"task stuck in {task['status']}"
        await asyncio.sleep(0.05)


async def wait_for_log(api: Api, run_id: str, needle: str, timeout: float = 30) -> list[str]:
    """Poll `task/get_logs_for_run` (validated) until a line contains `needle`."""
    deadline = time.monotonic() + timeout
    while True:
        lines: list[str] = (await call(api, "task/get_logs_for_run", {"id": run_id}))["logs"]
        if any(needle in line for line in lines):
            return lines
        assert time.monotonic() < deadline, f"{needle!r} never logged: {lines}"
        await asyncio.sleep(0.05)


# -- the document itself ---------------------------------------------------------------------


def _http_methods(handler: type[RequestHandler]) -> set[str]:
    """The HTTP methods a handler class implements (OPTIONS is Jupyter's CORS answer)."""
    return {
        m
        for m in ("get", "post", "put", "patch", "delete")
        if getattr(handler, m) is not getattr(RequestHandler, m)
    }


def test_every_route_is_documented_and_nothing_else() -> None:
    table = [r for r in handlers.routes() if r[0] != r"/orch/(.*)"]
    assert len(table) == len(handlers.routes()) - 1, "the catch-all route moved"
    routes = {pattern: _http_methods(handler) for pattern, handler, *_ in table}
    assert set(routes) == set(DOC["paths"]), (
        f"routes without a path: {sorted(set(routes) - set(DOC['paths']))}; "
        f"paths without a route: {sorted(set(DOC['paths']) - set(routes))}"
    )
    for pattern, methods in routes.items():
        documented = {
            m for m in DOC["paths"][pattern] if m in {"get", "post", "put", "patch", "delete"}
        }
        assert documented == methods, (pattern, documented, methods)


def test_document_is_valid_openapi_3_1() -> None:
    assert DOC["openapi"] == "3.1.0"
    assert DOC["servers"] == [{"url": "/"}]
    assert "base_url" in DOC["info"]["description"]
    assert json.dumps(DOC, indent=2, ensure_ascii=False) + "\n" == DOC_TEXT, "not 2-space JSON"
    for name, schema in DOC["components"]["schemas"].items():
        try:
            Draft202012Validator.check_schema(schema)
        except Exception as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"components/schemas/{name} is not a JSON schema: {exc}")
    ids = []
    for path, item in DOC["paths"].items():
        for method, op in item.items():
            for key in ("operationId", "summary", "description"):
                assert op.get(key), f"{method.upper()} {path} has no {key}"
            ids.append(op["operationId"])
            assert "403" in op["responses"], f"{method.upper()} {path} omits 403"
    assert len(ids) == len(set(ids)), "operationIds are not unique"
    schemes = DOC["components"]["securitySchemes"]
    kinds = {(s["type"], s.get("scheme"), s.get("in"), s.get("name")) for s in schemes.values()}
    assert ("http", "bearer", None, None) in kinds
    assert ("apiKey", None, "header", "Authorization") in kinds
    assert {name for req in DOC["security"] for name in req} == set(schemes)
    # Every $ref resolves.
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(DOC)
    assert refs
    for ref in refs:
        _deref({"$ref": ref})
    openapi_spec_validator.validate(DOC)


def test_every_operation_documents_the_unavailable_database_and_the_full_disk() -> None:
    # Every route may meet a locked or unreadable database (503) or a full disk (507).
    for path, item in DOC["paths"].items():
        for method, op in item.items():
            documented = op["responses"]
            for status, name in (("503", "ServiceUnavailable"), ("507", "InsufficientStorage")):
                ref = {"$ref": f"#/components/responses/{name}"}
                assert documented.get(status) == ref, f"{method.upper()} {path} {status}"
    unavailable = DOC["components"]["responses"]["ServiceUnavailable"]
    assert unavailable["headers"]["Retry-After"]["schema"] == {"type": "integer", "minimum": 0}
    for name in ("ServiceUnavailable", "InsufficientStorage"):
        content = DOC["components"]["responses"][name]["content"]
        assert content == {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


async def test_a_locked_database_answers_as_documented(api: Api, data_dir: Path) -> None:
    await call(api, "workspaces/list", {})  # started: the database exists
    holder = sqlite3.connect(data_dir / "orch.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # as another process writing for long would
        writes = {
            "workspaces/create": {"workspace_name": "w"},
            "connections/create": {"name": "c", "type": "ODBC", "details": {}},
        }
        for path, body in writes.items():
            response = await api.call(path, body)
            assert response.code == 503 and response.headers["Retry-After"] == "5", path
            assert_strict(path, "post", 503, json.loads(response.body))
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_schemas_follow_the_contract_and_the_code() -> None:
    for name, words in CONTRACT_STATUSES.items():
        assert set(component(name)["enum"]) == words, name
    # Every word the code can write is documented.
    assert {s.value for s in models.OrchestrationStatus} <= words_of("OrchestrationStatus")
    assert {s.value for s in models.TaskStatus} <= words_of("TaskStatus")
    assert {s.value for s in models.RunStatus} <= words_of("RunStatus")
    assert {t.value for t in models.RunType} == words_of("RunType")
    assert {t.flavor for t in models.RunType} == words_of("Flavor")
    triggers = set(component("TaskRun")["properties"]["trigger"]["enum"])
    assert {t.value for t in models.Trigger} == triggers
    for name, fields in CONTRACT_REQUIRED.items():
        assert fields <= set(component(name)["required"]), name
    # Response objects: closed, and everything they declare is always sent.
    for name in (
        "Orchestration",
        "Task",
        "TaskRunSummary",
        "TaskRun",
        "Workspace",
        "CreatedWorkspace",
        "WorkspaceList",
        "ListAllItem",
        "ListAllWorkspace",
        "DeleteResult",
        "TaskDeleteResult",
        "BuildLog",
        "Logs",
        "IdAnswer",
        "TaskIds",
        "Error",
        "Activity",
        "FailedRun",
        "Connection",
        "ConnectionList",
        "EmptyAnswer",
    ):
        schema = component(name)
        assert schema.get("additionalProperties") is False, name
        assert set(schema["required"]) == set(schema["properties"]), name
    for name in ("created_at", "updated_at"):
        for obj in ("Orchestration", "Task", "TaskRunSummary", "TaskRun"):
            assert component(obj)["properties"][name] == {"type": "string", "format": "date-time"}


def words_of(name: str) -> set[str]:
    """The enum of a status schema."""
    return set(component(name)["enum"])


def test_model_shapes_match_the_schemas() -> None:
    """Records built directly (every optional field set, and unset) match their schemas."""
    stamp = models.now()
    run = models.TaskRun(models.new_id(), models.new_id(), models.RunStatus.RUNNING, stamp, stamp)
    ended = models.TaskRun(
        models.new_id(),
        run.task_id,
        models.RunStatus.KILLED,
        stamp,
        stamp,
        started_at=stamp,
        ended_at=stamp,
        exit_code=-15,
        reason="killed",
    )
    task = models.Task(
        id=run.task_id,
        name=None,
        workspace_id=1,
        orch_id=models.new_id(),
        orch_sha="0" * 64,
        owner_id="me",
        status=models.TaskStatus.PENDING,
        run_type=models.RunType.ONCE,
        input_data={},
        created_at=stamp,
        updated_at=stamp,
        last_runs=[ended, run],
    )
    for status in models.OrchestrationStatus:
        orch = models.Orchestration(
            id=models.new_id(),
            name="n",
            file_name="f.zip",
            file_size=1,
            sha="a" * 64,
            status=status,
            owner_id="me",
            workspace_id=1,
            entrypoint="main.py",
            requirements="x\n",
            created_at=stamp,
            updated_at=stamp,
            error="boom",
            build_seconds=1.5,
        )
        _check(orch.to_json(), ["components", "schemas", "Orchestration"], "orch", pytest.fail)
    for value in (run, ended):
        _check(value.to_json(), ["components", "schemas", "TaskRun"], "run", pytest.fail)
    _check(task.to_json(), ["components", "schemas", "Task"], "task", pytest.fail)
    task.name, task.timeout, task.schedule = "t", 5, "*/1 * * * *"
    _check(task.to_json(), ["components", "schemas", "Task"], "task", pytest.fail)
    activity = models.Activity(running=2, failed=[(ended, "t"), (ended, None)], as_of=stamp)
    _check(activity.to_json(), ["components", "schemas", "Activity"], "activity", pytest.fail)


# -- requests: what the document says is what the server takes -----------------------------

# The run channel's reports come from workers with a run's token (tests/test_dask.py).
JSON_OPERATIONS = sorted(
    path[len(PREFIX) :]
    for path, item in DOC["paths"].items()
    if "application/json" in item.get("post", {}).get("requestBody", {}).get("content", {})
    and "run channel" not in item["post"].get("tags", [])
)
LARGEST = 2**53 - 1  # what JavaScript's numbers hold exactly
# A value for each required field, so that a request reaches the field a test is about.
PLAUSIBLE: dict[str, Any] = {
    "id": str(uuid.UUID(int=7)),
    "orch_id": str(uuid.UUID(int=7)),
    "task_id": str(uuid.UUID(int=7)),
    "task": str(uuid.UUID(int=7)),
    "pod_id": str(uuid.UUID(int=8)),
    "orchestrations": [str(uuid.UUID(int=7))],
    "workspace_id": 1,
    "schedule": "* * * * *",
    "path": "x",
    "sha": "x",
    "pause": True,
    "name": "x",
    "type": "x",
    "connection_id": str(uuid.UUID(int=9)),
}


def request_schema(path: str) -> dict[str, Any]:
    """The JSON schema of an operation's request body (a component)."""
    body = operation(path, "post")["requestBody"]["content"]["application/json"]["schema"]
    schema, _ = _deref(body)
    return schema


def _is_integer(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "integer" or (isinstance(kind, list) and "integer" in kind)


def integer_fields() -> list[tuple[str, str, dict[str, Any]]]:
    """(path, field, schema of the integers) for every integer field of a JSON body; for a
    list of integers, the schema of its items."""
    found = []
    for path in JSON_OPERATIONS:
        for name, schema in request_schema(path).get("properties", {}).items():
            if _is_integer(schema):
                found.append((path, name, schema))
            elif _is_integer(schema.get("items", {})):
                found.append((path, name, schema["items"]))
    return found


INTEGER_FIELDS = integer_fields()


def test_every_integer_field_states_its_bounds() -> None:
    assert len(INTEGER_FIELDS) > 15
    metadata = component("UploadMetadata")["properties"]["workspace_id"]
    follow = operation("task/follow_logs", "get")["parameters"]
    start = next(p["schema"] for p in follow if p["name"] == "from")
    for where, schema in [
        *((f"{path} {name}", schema) for path, name, schema in INTEGER_FIELDS),
        ("upload metadata workspace_id", metadata),
        ("follow_logs from", start),
    ]:
        assert "minimum" in schema and "maximum" in schema, where
        assert -LARGEST <= schema["minimum"] <= schema["maximum"] <= LARGEST, where


@pytest.mark.parametrize(
    ("path", "name", "schema"), INTEGER_FIELDS, ids=[f"{p}-{n}" for p, n, _ in INTEGER_FIELDS]
)
async def test_the_server_takes_exactly_the_documented_integers(
    api: Api, path: str, name: str, schema: dict[str, Any]
) -> None:
    required = request_schema(path).get("required", [])
    base = {field: PLAUSIBLE[field] for field in required}
    is_list = _is_integer(schema) and not _is_integer(request_schema(path)["properties"][name])
    for value, refused in [
        (schema["minimum"] - 1, True),
        (schema["maximum"] + 1, True),
        (schema["minimum"], False),
        (float(schema["maximum"]), False),  # an integral number is an integer
    ]:
        body = {**base, name: [value] if is_list else value}
        response = await api.call(path, body)
        answer = json.loads(response.body)
        message = answer.get("message", "") if isinstance(answer, dict) else ""
        named = response.code == 400 and message.startswith(f"{name}: ")
        assert named is refused, (body, response.code, message)


@pytest.mark.parametrize("path", JSON_OPERATIONS)
async def test_an_empty_body_is_read_as_an_empty_object(api: Api, path: str) -> None:
    assert operation(path, "post")["requestBody"]["required"] is False
    required = request_schema(path).get("required", [])
    response = await api.call(path, b"")
    answer = json.loads(response.body)
    if required:
        assert response.code == 400, answer
        assert answer["message"].split(": ")[0] in required, answer  # names a required field
    else:
        assert response.code == 200, answer
        validate(path, "post", 200, answer)


async def test_follow_logs_from_is_bounded_as_documented(api: Api) -> None:
    run = str(uuid.UUID(int=7))
    for start, code in [("-1", 400), (str(LARGEST + 1), 400), ("1.5", 400), (str(LARGEST), 404)]:
        response = await api.fetch(
            API, "task", "follow_logs", params={"id": run, "from": start}, raise_error=False
        )
        assert response.code == code, (start, response.body)
        validate("task/follow_logs", "get", code, json.loads(response.body))


# -- against the running server ------------------------------------------------------------


async def test_document_is_served(jp_fetch: Callable[..., Any]) -> None:
    response = await jp_fetch("orch", "v1", "api", "openapi.json")
    assert response.code == 200
    served = _json_answer(response, "openapi.json")
    assert served == DOC
    validate("openapi.json", "get", 200, served)


async def test_orchestration_endpoints(api: Api, jp_fetch: Callable[..., Any]) -> None:
    orch_id = await upload(api, HELLO, name="hello")
    orch = await call(api, "orchestration/get_by_id", {"id": orch_id})
    assert_strict("orchestration/get_by_id", "post", 200, orch)
    assert orch["status"] == "ready" and orch["name"] == "hello"
    listed = await call(api, "orchestration/list", {"workspace_id": 1})
    assert [o["id"] for o in listed] == [orch_id]
    assert_strict("orchestration/list", "post", 200, listed)

    everything = await call(api, "orchestration/list_all", {})
    assert [item["orchestration"]["id"] for item in everything] == [orch_id]
    assert_strict("orchestration/list_all", "post", 200, everything)
    filtered = {"workspace_ids": [1], "task_run_status": ["success"], "killed": False}
    assert await call(api, "orchestration/list_all", filtered) == []

    build = await call(api, "orchestration/get_build_log", {"id": orch_id})
    assert_strict("orchestration/get_build_log", "post", 200, build)

    response = await jp_fetch(
        "orch", "v1", "api", "orchestration", "download", params={"id": orch_id}
    )
    assert response.code == 200
    content, _ = response_media("orchestration/download", "get", 200)
    assert response.headers["Content-Type"] in content
    assert hashlib.sha256(response.body).hexdigest() == orch["sha"]
    assert len(response.body) == orch["file_size"]
    [param] = operation("orchestration/download", "get")["parameters"]
    assert (param["name"], param["in"], param["required"]) == ("id", "query", True)

    body = {"orchestrations": [orch_id], "confirm_delete": False}
    preview = await call(api, "orchestration/delete_orchestrations", body)
    assert preview == {"orchestrations": [orch_id], "tasks": [], "task_runs": 0, "deleted": False}
    assert_strict("orchestration/delete_orchestrations", "post", 200, preview)
    body["confirm_delete"] = True
    done = await call(api, "orchestration/delete_orchestrations", body)
    assert done["deleted"] is True
    await call(api, "orchestration/get_by_id", {"id": orch_id}, status=404)
    await call(api, "orchestration/get_build_log", {"id": orch_id}, status=404)
    await call(api, "orchestration/delete_orchestrations", body, status=404)


async def test_task_endpoints_after_a_run(api: Api) -> None:
    orch_id = await upload(api, HELLO)
    orch = await call(api, "orchestration/get_by_id", {"id": orch_id})
    run_once = {
        "orch_id": orch_id,
        "workspace_id": 1,
        "json": {"x": 1},
        "name": "hello task",
        "timeout": 60,
        "debug": False,
    }
    task_id = (await call(api, "task/run_once", run_once, status=201))["id"]
    assert_strict("task/run_once", "post", 201, {"id": task_id})
    task = await wait_task(api, task_id, ENDED)
    assert task["status"] == "success", task
    assert task["last_runs"], "a finished run-once task lists its run"
    assert_strict("task/get_by_id", "post", 200, task)
    summary = task["last_runs"][0]
    broken = copy.deepcopy(task)
    broken["last_runs"][0]["extra"] = True
    assert mismatches("task/get_by_id", "post", 200, broken), "last_runs items are not strict"
    broken["last_runs"][0] = {k: v for k, v in summary.items() if k != "run_id"}
    assert mismatches("task/get_by_id", "post", 200, broken), "last_runs items lack required"
    none = await call(api, "task/get_by_id", {"id": task_id, "run_limit": 0})
    assert none["last_runs"] == []

    tasks = await call(api, "task/list", {})
    assert [t["id"] for t in tasks] == [task_id]
    assert_strict("task/list", "post", 200, tasks)
    filters = {"workspace_id": 1, "orch_id": orch_id, "orch_sha": orch["sha"], "killed": False}
    assert len(await call(api, "task/list", {**filters, "run_limit": 1})) == 1

    ids = await call(api, "task/get_tasks_by_orch_sha", {"sha": orch["sha"]})
    assert ids == {"ids": [task_id]}
    assert_strict("task/get_tasks_by_orch_sha", "post", 200, ids)
    everything = await call(api, "orchestration/list_all", {"task_run_status": ["success"]})
    assert [t["id"] for t in everything[0]["tasks"]] == [task_id]

    runs = await call(api, "task/list_task_runs", {"task_id": task_id})
    assert [r["run_id"] for r in runs] == [summary["run_id"]]
    assert_strict("task/list_task_runs", "post", 200, runs)
    for status, count in (("all", 1), ("success", 1), ("failure", 0)):
        body = {"task_id": task_id, "status": status, "limit": 5}
        assert len(await call(api, "task/list_task_runs", body)) == count

    details = {"task": task_id, "pod_id": summary["run_id"]}
    run = await call(api, "task/get_run_details", details)
    assert run["status"] == "success" and run["exit_code"] == 0
    assert_strict("task/get_run_details", "post", 200, run)

    logs = await call(api, "task/get_logs_for_run", {"id": summary["run_id"]})
    assert [line.rsplit(" ", 1)[-1] for line in logs["logs"]] == ["hello", "world"]
    assert_strict("task/get_logs_for_run", "post", 200, logs)
    assert mismatches("task/get_logs_for_run", "post", 200, {"logs": ["hello"]}), "no line format"
    last = await call(api, "task/get_logs_for_run", {"id": summary["run_id"], "lines": 1})
    assert len(last["logs"]) == 1

    body = {"orchestrations": [orch_id], "confirm_delete": False}
    preview = await call(api, "orchestration/delete_orchestrations", body)
    assert preview["tasks"] == [task_id] and preview["task_runs"] == 1


async def test_kill_and_conflicts(api: Api) -> None:
    orch_id = await upload(api, SLEEPER)
    body = {"orch_id": orch_id, "workspace_id": 1, "json": {}}
    task_id = (await call(api, "task/run_once", body, status=201))["id"]
    task = await wait_task(api, task_id, {"started"} | ENDED)
    run_id = task["last_runs"][0]["run_id"]
    await wait_for_log(api, run_id, "up")
    running = await call(api, "task/get_run_details", {"task": task_id, "pod_id": run_id})
    assert running["status"] == "running" and running["ended_at"] is None

    preview = await call(api, "task/delete", {"tasks": [task_id]})
    assert preview == {"tasks": [task_id], "task_runs": 1, "running": [task_id], "deleted": False}
    assert_strict("task/delete", "post", 200, preview)
    delete = {"orchestrations": [orch_id], "confirm_delete": True}

    killed = await call(api, "task/kill", {"id": task_id}, status=202)
    assert killed["killed"] is True and killed["status"] in {"pending_kill", "killed"}
    assert_strict("task/kill", "post", 202, killed)
    again = await call(api, "task/kill", {"id": task_id}, status=409)
    assert_strict("task/kill", "post", 409, again)

    task = await wait_task(api, task_id, {"killed"})
    run = await call(api, "task/get_run_details", {"task": task_id, "pod_id": run_id})
    assert run["status"] == "killed" and run["ended_at"] is not None
    assert (await call(api, "task/list", {"killed": True}))[0]["id"] == task_id
    done = await call(api, "orchestration/delete_orchestrations", delete)
    assert done == {
        "orchestrations": [orch_id],
        "tasks": [task_id],
        "task_runs": 1,
        "deleted": True,
    }


async def test_workspaces(api: Api) -> None:
    created = await call(api, "workspaces/create", {"workspace_name": "team"})
    assert created["workspace_id"] == created["id"] and created["name"] == "team"
    assert_strict("workspaces/create", "post", 200, created)
    listed = await call(api, "workspaces/list", {})
    assert [w["name"] for w in listed["workspaces"]] == ["default", "team"]
    assert_strict("workspaces/list", "post", 200, listed)
    broken = copy.deepcopy(listed)
    broken["workspaces"][0].pop("created_by")
    assert mismatches("workspaces/list", "post", 200, broken), "workspace items are not strict"
    await call(api, "workspaces/create", {"workspace_name": "team"}, status=409)
    await call(api, "workspaces/create", {"workspace_name": 3}, status=400, valid=False)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("task/get_by_id", b"{not json"),
        ("task/get_by_id", b"[1, 2]"),
        ("task/get_by_id", {"id": "not-a-uuid"}),
        ("task/get_by_id", {}),
        ("task/run_once", {"orch_id": str(uuid.UUID(int=1)), "workspace_id": "1"}),
        ("task/list", {"run_limit": -1}),
        ("task/list_task_runs", {"task_id": str(uuid.UUID(int=1)), "status": "sleeping"}),
        ("orchestration/list_all", {"time_range": ["2024-01-01T00:00:00"]}),
        ("orchestration/delete_orchestrations", {"orchestrations": []}),
        ("task/delete", {"tasks": []}),
        ("task/delete", {"tasks": ["not-a-uuid"], "confirm_delete": True}),
        ("workspaces/list", b"null"),
        ("task/activity", {"since": "2026-01-01T00:00:00"}),
        ("task/activity", {"limit": 101}),
    ],
)
async def test_bad_requests_answer_the_error_schema(api: Api, path: str, body: Any) -> None:
    response = await api.call(path, body)
    assert response.code == 400, response.body
    answer = _json_answer(response, path)
    assert_strict(path, "post", 400, answer)
    assert answer["reason"] == "Bad Request"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("orchestration/get_by_id", {"id": str(uuid.UUID(int=7))}),
        ("orchestration/list", {"workspace_id": 99}),
        ("task/get_by_id", {"id": str(uuid.UUID(int=7))}),
        ("task/kill", {"id": str(uuid.UUID(int=7))}),
        ("task/delete", {"tasks": [str(uuid.UUID(int=7))], "confirm_delete": True}),
        ("task/list_task_runs", {"task_id": str(uuid.UUID(int=7))}),
        ("task/get_run_details", {"task": str(uuid.UUID(int=7)), "pod_id": str(uuid.UUID(int=8))}),
        ("task/get_logs_for_run", {"id": str(uuid.UUID(int=7))}),
        ("task/run_once", {"orch_id": str(uuid.UUID(int=7)), "workspace_id": 1, "json": {}}),
    ],
)
async def test_unknown_ids_answer_404(api: Api, path: str, body: Any) -> None:
    answer = await call(api, path, body, status=404)
    assert_strict(path, "post", 404, answer)
    assert answer["reason"] == "Not Found"


async def test_upload_and_download_errors(api: Api, jp_fetch: Callable[..., Any]) -> None:
    path = "orchestration/upload"
    response = await api.upload_raw(make_zip({"lib.py": "x = 1\n"}))
    assert response.code == 400
    answer = _json_answer(response, path)
    validate(path, "post", 400, answer)
    assert answer["reason"] == "Invalid Archive"
    response = await api.upload_raw(make_zip(HELLO), '{"workspace_id": 42}')
    assert response.code == 404
    validate(path, "post", 404, _json_answer(response, path))
    response = await api.upload_raw(make_zip(HELLO), "{}")
    assert response.code == 400
    validate(path, "post", 400, _json_answer(response, path))
    response = await api.fetch(
        "orch", "v1", "api", "orchestration", "upload", method="POST", body="{}", raise_error=False
    )
    assert response.code == 400
    validate(path, "post", 400, _json_answer(response, path))

    for ident, status in (("nope", 400), (str(uuid.UUID(int=7)), 404)):
        response = await jp_fetch(
            "orch",
            "v1",
            "api",
            "orchestration",
            "download",
            params={"id": ident},
            raise_error=False,
        )
        assert response.code == status
        validate("orchestration/download", "get", status, _json_answer(response, "download"))


@pytest.mark.parametrize("orch_config", [{"kill_grace_seconds": 1.0, "max_upload_bytes": 2048}])
async def test_upload_over_the_limit_answers_413(api: Api) -> None:
    response = await api.upload_raw(make_zip({**HELLO, "data.bin": os.urandom(8192)}))
    assert response.code == 413, response.body
    answer = _json_answer(response, "upload")
    validate("orchestration/upload", "post", 413, answer)
    assert answer["reason"] == "Payload Too Large"


async def test_unauthenticated_answers_403(jp_fetch: Callable[..., Any]) -> None:
    wrong = {"Authorization": "token not-the-token"}
    response = await jp_fetch(
        "orch", "v1", "api", "task", "list", method="POST", body="{}", headers=wrong,
        raise_error=False,
    )  # fmt: skip
    assert response.code == 403
    validate("task/list", "post", 403, _json_answer(response, "task/list"))
    response = await jp_fetch("orch", "v1", "api", "openapi.json", headers=wrong, raise_error=False)
    assert response.code == 403
    validate("openapi.json", "get", 403, _json_answer(response, "openapi.json"))


async def test_log_lines_keep_their_format_whatever_was_printed(api: Api) -> None:
    main = "print('a\\rb', flush=True)\nprint('x\\u2028y', flush=True)\n"
    orch_id = await upload(api, {"main.py": main})
    body = {"orch_id": orch_id, "workspace_id": 1, "json": {}}
    task_id = (await call(api, "task/run_once", body, status=201))["id"]
    task = await wait_task(api, task_id, ENDED)
    run_id = task["last_runs"][0]["run_id"]
    await call(api, "task/get_logs_for_run", {"id": run_id})


async def test_scheduling_endpoints_answer_as_documented(api: Api) -> None:
    orch_id = await upload(api, {"main.py": "import time\nprint('x', flush=True)\ntime.sleep(1)\n"})
    body = {
        "orch_id": orch_id,
        "workspace_id": 1,
        "json": {},
        "schedule": "0 0 1 1 *",
        "timezone": "Europe/Paris",
        "concurrency_policy": "forbid",
        "starting_deadline_seconds": 30,
        "keep_runs": 10,
        "keep_days": 1.5,
    }
    task_id = (await call(api, "task/run_scheduled", body, status=201))["id"]
    task = await wait_task(api, task_id, {"started"})
    assert_strict("task/get_by_id", "post", 200, task)
    run = await call(api, "task/run_now", {"id": task_id}, status=201)
    assert_strict("task/run_now", "post", 201, run)
    await call(api, "task/run_now", {"id": task_id}, status=409)  # forbid: one is running
    await call(api, "task/pause", {"id": task_id, "pause": True}, status=202)
    paused = await wait_task(api, task_id, {"paused"})
    assert paused["last_runs"][0]["status"] == "success"
    await call(api, "task/pause", {"id": task_id, "pause": False}, status=202)
    response = await api.fetch(API, "task", "follow_logs", params={"id": run["run_id"]})
    lines = [json.loads(line) for line in response.body.decode().splitlines()]
    for line in lines:
        validate("task/follow_logs", "get", 200, line, "application/x-ndjson")
    assert lines[-1]["end"] is True
    runs = await call(api, "task/list_task_runs", {"task_id": task_id})
    assert runs[0]["trigger"] == "manual" and runs[0]["scheduled_for"] is None
    body = {"orch_id": orch_id, "workspace_id": 1, "json": {}, "name": "loop"}
    loop_id = (await call(api, "task/run_continuously", body, status=201))["id"]
    killed = await call(api, "task/kill", {"id": loop_id}, status=202)
    assert killed["run_type"] == "NetworkService"


async def test_edit_endpoints_answer_as_documented(api: Api) -> None:
    orch_id = await upload(api, {"main.py": "print('x', flush=True)\n"})
    body = {"orch_id": orch_id, "workspace_id": 1, "json": {"a": 1}, "schedule": "0 0 1 1 *"}
    task_id = (await call(api, "task/run_scheduled", body, status=201))["id"]
    await wait_task(api, task_id, {"started"})
    update = {
        "id": task_id,
        "name": "edited",
        "schedule": "*/5 * * * *",
        "timezone": "America/New_York",
        "json": {"a": 2},
        "timeout": 60,
        "concurrency_policy": "replace",
        "keep_runs": 3,
        "keep_days": None,
    }
    task = await call(api, "task/update", update)
    assert_strict("task/update", "post", 200, task)
    assert len(task["next_fires"]) == 3 and task["schedule_description"] == "Every 5 minutes"
    history = await call(api, "task/history", {"id": task_id})
    assert_strict("task/history", "post", 200, history)
    broken = copy.deepcopy(history)
    broken["changes"][0]["changes"]["name"] = [None]
    assert mismatches("task/history", "post", 200, broken), "[old, new] pairs are not checked"
    run = await call(api, "task/run_now", {"id": task_id}, status=201)
    again = await call(api, "task/rerun", {"run_id": run["run_id"], "json": {"b": 1}}, status=201)
    assert_strict("task/rerun", "post", 201, again)
    preview = await call(api, "schedule/preview", {"schedule": "@daily", "timezone": None})
    assert_strict("schedule/preview", "post", 200, preview)
    for path, bad in [
        ("task/update", {"id": task_id, "schedule": "61 * * * *"}),
        ("schedule/preview", {"schedule": "0 0 * * *", "count": 101}),
    ]:
        answer = await call(api, path, bad, status=400, valid=False)
        assert_strict(path, "post", 400, answer)
    unknown = str(uuid.UUID(int=7))
    for path, missing in [
        ("task/update", {"id": unknown, "name": "x"}),
        ("task/history", {"id": unknown}),
        ("task/rerun", {"run_id": unknown}),
    ]:
        assert_strict(path, "post", 404, await call(api, path, missing, status=404))
    await call(api, "task/kill", {"id": task_id}, status=202)
    conflict = await call(api, "task/update", {"id": task_id, "name": "y"}, status=409)
    assert_strict("task/update", "post", 409, conflict)


async def test_activity_answers_as_documented(api: Api) -> None:
    quiet = await call(api, "task/activity", {})
    assert_strict("task/activity", "post", 200, quiet)
    orch_id = await upload(api, {"main.py": "raise SystemExit(2)\n"})
    body = {"orch_id": orch_id, "workspace_id": 1, "json": {}, "name": "broken"}
    task_id = (await call(api, "task/run_once", body, status=201))["id"]
    await wait_task(api, task_id, {"failed"})
    seen = await call(api, "task/activity", {"since": quiet["as_of"], "limit": 5})
    assert [(r["task"], r["task_name"]) for r in seen["failed"]] == [(task_id, "broken")]
    assert_strict("task/activity", "post", 200, seen)
    for key in seen["failed"][0]:
        broken = copy.deepcopy(seen)
        broken["failed"][0].pop(key)
        assert mismatches("task/activity", "post", 200, broken), f"dropping {key!r} goes unseen"


async def test_run_output_answers_as_documented(api: Api, jp_fetch: Callable[..., Any]) -> None:
    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": []}
    document = {
        "cells": [{**cell, "id": "a", "source": "print('hello')"}],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    response = await api.upload_raw(json.dumps(document).encode())
    assert response.code == 202, response.body
    validate("orchestration/upload", "post", 202, _json_answer(response, "upload"))
    body = {"orch_id": json.loads(response.body)["id"], "workspace_id": 1, "json": {}}
    task_id = (await call(api, "task/run_once", body, status=201))["id"]
    task = await wait_task(api, task_id, ENDED)
    assert task["status"] == "success", task
    script = await wait_task(
        api, (await call(api, "task/run_once", {**body, "orch_id": await upload(api, HELLO)},
                         status=201))["id"], ENDED
    )  # fmt: skip
    path = "task/get_run_output"
    [param] = operation(path, "get")["parameters"]
    assert (param["name"], param["in"], param["required"]) == ("id", "query", True)
    cases = [
        (task["last_runs"][0]["run_id"], 200),
        (script["last_runs"][0]["run_id"], 404),
        (str(uuid.UUID(int=7)), 404),
        ("nope", 400),
    ]
    for ident, status in cases:
        response = await jp_fetch(API, *path.split("/"), params={"id": ident}, raise_error=False)
        assert response.code == status, response.body
        answer = _json_answer(response, path)
        validate(path, "get", status, answer)
        if status == 200:
            assert answer["metadata"]["jupyter_orch"]["status"] == "success"
            assert answer["cells"][0]["outputs"][0]["text"] == "hello\n"
