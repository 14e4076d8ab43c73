"""The orchestration API end to end: upload, run once, status, logs, listings, errors, auth."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest

from .conftest import API, Api, make_zip, texts

HELLO = {"main.py": "print('hello')\nprint('world')\n"}


async def test_upload_run_once_status_and_logs(api: Api) -> None:
    orch_id = await api.upload(
        {"main.py": "import sys\nfor i in range(5):\n    print('line', i)\n"}
    )
    orch = await api.ok("orchestration/get_by_id", {"id": orch_id})
    assert orch["status"] == "ready"
    assert orch["file_name"] == "orch.zip"
    task_id = await api.run_once(orch_id)
    task = await api.wait_task(task_id, {"success", "failed"})
    assert task["status"] == "success"
    assert task["run_type"] == "Oneshot" and task["flavor"] == "exec_orch_oneshot"
    [run] = task["last_runs"]
    assert run["status"] == "success"
    lines = await api.logs(run["run_id"])
    assert texts(lines) == [f"line {i}" for i in range(5)]
    stamps = [line.split(" ", 1)[0] for line in lines]
    assert stamps == sorted(stamps)


async def test_stderr_lines_and_failure_with_traceback(api: Api) -> None:
    task = await api.run_to_end(
        {"main.py": "import sys\nprint('to err', file=sys.stderr)\nraise ValueError('boom')\n"}
    )
    assert task["status"] == "failed"
    run_id = task["last_runs"][0]["run_id"]
    run = await api.ok("task/get_run_details", {"task": task["id"], "pod_id": run_id})
    assert run["status"] == "failure" and run["exit_code"] == 1
    errors = texts(await api.logs(run_id), "stderr")
    assert errors[0] == "to err"
    assert "Traceback (most recent call last):" in errors
    assert errors[-1] == "ValueError: boom"


async def test_task_args_in_task_and_environment(api: Api) -> None:
    code = (
        "import json, os, jupyter_orch\n"
        "print(json.dumps({'in_task': jupyter_orch.in_task(), 'args': jupyter_orch.task_args(),"
        " 'env': {k: os.environ.get(k) for k in ('TASK_ID', 'ORCH_ID', 'ORCH_SHA',"
        " 'ORCH_OWNER_ID', 'JUPYTER_ORCH_RUN_ID', 'JUPYTER_ORCH_URL', 'JUPYTER_ORCH_TOKEN',"
        " 'PYTHONUNBUFFERED')}}))\n"
    )
    orch_id = await api.upload({"main.py": code})
    orch = await api.ok("orchestration/get_by_id", {"id": orch_id})
    args = {"workspace_name": "ws", "pipeline_name": "pl", "n": [1, 2]}
    task_id = await api.run_once(orch_id, args)
    task = await api.wait_task(task_id, {"success", "failed"})
    run_id = task["last_runs"][0]["run_id"]
    seen = json.loads(texts(await api.logs(run_id))[0])
    assert seen["in_task"] is True
    assert seen["args"] == args
    env = seen["env"]
    assert env["TASK_ID"] == task_id and env["ORCH_ID"] == orch_id
    assert env["ORCH_SHA"] == orch["sha"] and env["ORCH_OWNER_ID"] == orch["owner_id"]
    assert env["JUPYTER_ORCH_RUN_ID"] == run_id
    assert env["JUPYTER_ORCH_URL"].endswith("/orch") and env["JUPYTER_ORCH_TOKEN"]
    assert task["extra_env_vars"]["TASK_ID"] == task_id
    assert task["input_data"] == args


def test_outside_a_run_there_are_no_args(monkeypatch: pytest.MonkeyPatch) -> None:
    import jupyter_orch

    monkeypatch.delenv("JUPYTER_ORCH_RUN_ID", raising=False)
    assert jupyter_orch.in_task() is False
    assert jupyter_orch.task_args() == {}


async def test_subdirectory_entrypoint_reads_artifact_by_relative_path(api: Api) -> None:
    files = {
        "project/main.py": "print(open('data.txt').read().strip())\n",
        "project/data.txt": "artifact contents\n",
        "project/lib/main.py": "print('not me')\n",
    }
    orch_id = await api.upload(files)
    orch = await api.ok("orchestration/get_by_id", {"id": orch_id})
    assert orch["entrypoint"] == "project/main.py"
    task = await api.wait_task(await api.run_once(orch_id), {"success", "failed"})
    assert texts(await api.logs(task["last_runs"][0]["run_id"])) == ["artifact contents"]


async def test_each_run_gets_a_fresh_working_directory(api: Api) -> None:
    code = "import os\nprint(os.path.exists('scratch.txt'))\nopen('scratch.txt', 'w').write('x')\n"
    orch_id = await api.upload({"main.py": code})
    for _ in range(2):
        task = await api.wait_task(await api.run_once(orch_id), {"success", "failed"})
        assert texts(await api.logs(task["last_runs"][0]["run_id"])) == ["False"]


async def test_log_lines_option_gives_the_last_lines(api: Api) -> None:
    task = await api.run_to_end({"main.py": "for i in range(100):\n    print(i)\n"})
    run_id = task["last_runs"][0]["run_id"]
    assert texts(await api.logs(run_id, lines=3)) == ["97", "98", "99"]
    assert await api.logs(run_id, lines=0) == []
    assert len(await api.logs(run_id)) == 100


async def test_over_long_lines_are_split_into_partial_pieces(api: Api) -> None:
    task = await api.run_to_end({"main.py": "print('a' * 40000)\nprint('x\\ry\\u2028z')\n"})
    lines = await api.logs(task["last_runs"][0]["run_id"])
    tags = [line.split(" ")[2] for line in lines]
    assert tags == ["P", "P", "F", "F"]
    assert "".join(texts(lines)[:3]) == "a" * 40000
    assert texts(lines)[3] == "x\ry\u2028z"  # only "\n" ends a line


async def test_run_limit_and_list_task_runs(api: Api) -> None:
    code = "import sys, jupyter_orch\nsys.exit(jupyter_orch.task_args()['code'])\n"
    orch_id = await api.upload({"main.py": code})
    ok = await api.wait_task(await api.run_once(orch_id, {"code": 0}), {"success"})
    bad = await api.wait_task(await api.run_once(orch_id, {"code": 3}), {"failed"})
    runs = await api.ok("task/list_task_runs", {"task_id": bad["id"], "status": "failure"})
    assert [r["exit_code"] for r in runs] == [3]
    assert await api.ok("task/list_task_runs", {"task_id": bad["id"], "status": "success"}) == []
    assert len(await api.ok("task/list_task_runs", {"task_id": ok["id"], "status": "all"})) == 1
    none = await api.ok("task/get_by_id", {"id": ok["id"], "run_limit": 0})
    assert none["last_runs"] == []
    tasks = await api.ok("task/list", {"orch_id": orch_id})
    assert [t["id"] for t in tasks] == [bad["id"], ok["id"]]  # newest first


async def test_listings_download_and_sha_lookup(api: Api) -> None:
    archive = make_zip(HELLO)
    response = await api.upload_raw(archive, '{"workspace_id": 1, "name": "greeter"}')
    orch_id = json.loads(response.body)["id"]
    orch = await api.ok("orchestration/get_by_id", {"id": orch_id})
    assert orch["name"] == "greeter" and orch["file_size"] == len(archive)
    listed = await api.ok("orchestration/list", {"workspace_id": 1})
    assert [o["id"] for o in listed] == [orch_id]
    downloaded = await api.fetch(API, "orchestration", "download", params={"id": orch_id})
    assert downloaded.body == archive
    task_id = await api.run_once(orch_id)
    await api.wait_task(task_id, {"success"})
    assert await api.ok("task/get_tasks_by_orch_sha", {"sha": orch["sha"]}) == {"ids": [task_id]}
    everything = await api.ok("orchestration/list_all", {"workspace_ids": []})
    assert everything[0]["orchestration"]["id"] == orch_id
    assert [t["id"] for t in everything[0]["tasks"]] == [task_id]
    assert everything[0]["workspace"] == {"id": 1, "name": "default"}
    failed = await api.ok("orchestration/list_all", {"task_run_status": ["failure"]})
    assert failed == []


async def test_workspaces(api: Api) -> None:
    empty_body = await api.call("workspaces/list", b"")
    assert empty_body.code == 200  # no body: every field takes its default
    listed = await api.ok("workspaces/list")
    assert [w["id"] for w in listed["workspaces"]] == [1]
    created = await api.ok("workspaces/create", {"workspace_name": "team"})
    assert created["workspace_id"] == 2
    again = await api.call("workspaces/create", {"workspace_name": "team"})
    assert again.code == 409 and "already exists" in json.loads(again.body)["message"]
    orch_id = await api.upload(HELLO, workspace_id=2)
    assert [o["id"] for o in await api.ok("orchestration/list", {"workspace_id": 2})] == [orch_id]
    assert await api.ok("orchestration/list", {"workspace_id": 1}) == []
    wrong = await api.call("task/run_once", {"workspace_id": 1, "orch_id": orch_id, "json": {}})
    assert wrong.code == 400 and "workspace_id" in json.loads(wrong.body)["message"]


async def test_delete_orchestrations_preview_then_confirm(api: Api, data_dir: Any) -> None:
    orch_id = await api.upload(HELLO)
    task = await api.wait_task(await api.run_once(orch_id), {"success"})
    run_id = task["last_runs"][0]["run_id"]
    body: dict[str, Any] = {"orchestrations": [orch_id], "confirm_delete": False}
    preview = await api.ok("orchestration/delete_orchestrations", body)
    assert preview == {
        "orchestrations": [orch_id],
        "tasks": [task["id"]],
        "task_runs": 1,
        "deleted": False,
    }
    assert (await api.call("orchestration/get_by_id", {"id": orch_id})).code == 200
    body["confirm_delete"] = True
    assert (await api.ok("orchestration/delete_orchestrations", body))["deleted"] is True
    assert (await api.call("orchestration/get_by_id", {"id": orch_id})).code == 404
    assert (await api.call("task/get_by_id", {"id": task["id"]})).code == 404
    assert not (data_dir / "runs" / run_id).exists()
    assert list((data_dir / "archives").iterdir()) == []


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("task/get_by_id", "{not json", "body: is not valid JSON"),
        ("task/get_by_id", "[1, 2]", "body: must be a JSON object"),
        ("task/get_by_id", {}, "id: is required"),
        ("task/get_by_id", {"id": 5}, "id: must be a string, not an integer"),
        ("task/get_by_id", {"id": "nope"}, "id: 'nope' is not a UUID"),
        ("task/get_by_id", {"id": str(uuid.uuid4()), "run_limit": -1}, "run_limit: must be at"),
        ("task/run_once", {"orch_id": str(uuid.uuid4())}, "workspace_id: is required"),
        ("task/run_once", {"workspace_id": True, "orch_id": str(uuid.uuid4())}, "workspace_id"),
        (
            "task/run_once",
            {"workspace_id": 1, "orch_id": str(uuid.uuid4()), "json": [1]},
            "json: must be a JSON object, not a list",
        ),
        (
            "task/run_once",
            {"workspace_id": 1, "orch_id": str(uuid.uuid4()), "json": {}, "timeout": "5"},
            "timeout: must be an integer",
        ),
        ("task/list_task_runs", {"task_id": str(uuid.uuid4()), "status": "odd"}, "status"),
        ("task/list_task_runs", {"task_id": str(uuid.uuid4()), "time_range": ["x"]}, "time_range"),
        ("orchestration/list", {"workspace_id": "1"}, "workspace_id: must be an integer"),
        ("orchestration/delete_orchestrations", {"orchestrations": []}, "orchestrations"),
        ("workspaces/create", {"workspace_name": ""}, "workspace_name: must not be empty"),
    ],
)
async def test_malformed_requests_are_400_naming_the_field(
    api: Api, path: str, body: Any, message: str
) -> None:
    response = await api.call(path, body)
    assert response.code == 400, response.body
    answer = json.loads(response.body)
    assert message in answer["message"] and answer["reason"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("task/get_by_id", {"id": "00000000-0000-4000-8000-000000000000"}),
        ("task/kill", {"id": "00000000-0000-4000-8000-000000000000"}),
        ("task/list_task_runs", {"task_id": "00000000-0000-4000-8000-000000000000"}),
        ("task/get_logs_for_run", {"id": "00000000-0000-4000-8000-000000000000"}),
        (
            "task/get_run_details",
            {"task": "00000000-0000-4000-8000-000000000000", "pod_id": str(uuid.uuid4())},
        ),
        ("orchestration/get_by_id", {"id": "00000000-0000-4000-8000-000000000000"}),
        ("orchestration/get_build_log", {"id": "00000000-0000-4000-8000-000000000000"}),
        ("orchestration/list", {"workspace_id": 99}),
        (
            "task/run_once",
            {"workspace_id": 1, "orch_id": "00000000-0000-4000-8000-000000000000", "json": {}},
        ),
    ],
)
async def test_unknown_ids_are_404(api: Api, path: str, body: Any) -> None:
    response = await api.call(path, body)
    assert response.code == 404, response.body
    assert "not found" in json.loads(response.body)["message"]


async def test_unknown_endpoint_is_a_json_404(api: Api) -> None:
    response = await api.call("task/no_such_thing", {})
    assert response.code == 404
    assert "no_such_thing" in json.loads(response.body)["message"]


async def test_authentication_is_required(api: Api, jp_fetch: Any, jp_serverapp: Any) -> None:
    orch_id = await api.upload(HELLO)
    body = json.dumps({"id": orch_id})
    path = (API, "orchestration", "get_by_id")
    token = jp_serverapp.identity_provider.token
    for headers in ({"Authorization": ""}, {"Authorization": "token wrong"}):
        response = await jp_fetch(
            *path, method="POST", body=body, headers=headers, raise_error=False
        )
        assert response.code == 403
    for scheme in ("token", "Bearer", "bearer"):
        headers = {"Authorization": f"{scheme} {token}"}
        response = await jp_fetch(*path, method="POST", body=body, headers=headers)
        assert response.code == 200


async def test_a_run_calls_back_with_its_own_token(api: Api) -> None:
    code = (
        "import json, os, urllib.request\n"
        "req = urllib.request.Request(os.environ['JUPYTER_ORCH_URL'] + '/v1/api/task/get_by_id',"
        " data=json.dumps({'id': os.environ['TASK_ID']}).encode(), method='POST',"
        " headers={'Authorization': 'Bearer ' + os.environ['JUPYTER_ORCH_TOKEN']})\n"
        "print(json.load(urllib.request.urlopen(req))['status'])\n"
        "print(os.environ['JUPYTER_ORCH_TOKEN'])\n"
    )
    task = await api.run_to_end({"main.py": code})
    lines = texts(await api.logs(task["last_runs"][0]["run_id"]))
    assert task["status"] == "success", lines
    assert lines[0] == "started"
    # The run's token dies with the run.
    dead = await api.fetch(
        API,
        "task",
        "get_by_id",
        method="POST",
        body=json.dumps({"id": task["id"]}),
        headers={"Authorization": f"Bearer {lines[1]}"},
        raise_error=False,
    )
    assert dead.code == 403


async def test_task_and_run_listings_page_by_keyset(api: Api) -> None:
    orch_id = await api.upload(HELLO)
    task_ids = [await api.run_once(orch_id) for _ in range(5)]
    for task_id in task_ids:
        await api.wait_task(task_id, {"success"})
    everything = await api.ok("task/list", {})
    assert [t["id"] for t in everything] == task_ids[::-1]  # newest first
    pages, after = [], None
    while True:
        body: dict[str, Any] = {"limit": 2, **({"after": after} if after else {})}
        page = await api.ok("task/list", body)
        if not page:
            break
        pages.append([t["id"] for t in page])
        after = page[-1]["id"]
    assert pages == [task_ids[4:2:-1], task_ids[2:0:-1], task_ids[:1]]
    for listed in everything:  # each task's last_runs, from one batched query, is right
        alone = await api.ok("task/get_by_id", {"id": listed["id"]})
        assert listed["last_runs"] == alone["last_runs"]
    missing = await api.call("task/list", {"after": "00000000-0000-4000-8000-000000000000"})
    assert missing.code == 404
    # Runs page the same way.
    schedule = {"workspace_id": 1, "orch_id": orch_id, "json": {}, "schedule": "0 0 1 1 *"}
    scheduled = (await api.ok("task/run_scheduled", schedule, status=201))["id"]
    await api.wait_task(scheduled, {"started"})
    for _ in range(3):
        await api.ok("task/run_now", {"id": scheduled}, status=201)
    deadline = time.monotonic() + 30
    while True:
        runs = await api.ok("task/list_task_runs", {"task_id": scheduled})
        if all(r["status"] != "running" for r in runs):
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    first = await api.ok("task/list_task_runs", {"task_id": scheduled, "limit": 2})
    rest = await api.ok(
        "task/list_task_runs", {"task_id": scheduled, "limit": 2, "after": first[-1]["run_id"]}
    )
    assert [r["run_id"] for r in first + rest] == [r["run_id"] for r in runs]
    await api.ok("task/kill", {"id": scheduled}, status=202)


# -- no input answers 500 --------------------------------------------------------------------

ZERO = "00000000-0000-4000-8000-000000000000"
YEAR_ONE = "0001-01-01T00:00:00+01:00"  # before 0001-01-01 in UTC: no datetime holds it


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("orchestration/list", {"workspace_id": 2**63}, "workspace_id: must be at most"),
        ("orchestration/list", {"workspace_id": -(2**63) - 1}, "workspace_id: must be at least"),
        ("orchestration/list_all", {"workspace_ids": [2**64]}, "workspace_ids: items must be"),
        ("task/list", {"limit": 2**63}, "limit: must be at most"),
        ("task/list", {"workspace_id": 2**63}, "workspace_id: must be at most"),
        ("task/list", {"run_limit": 2**63}, "run_limit: must be at most"),
        ("task/get_by_id", {"id": ZERO, "run_limit": 2**63}, "run_limit: must be at most"),
        ("task/list_task_runs", {"task_id": ZERO, "limit": 2**63}, "limit: must be at most"),
        ("task/get_logs_for_run", {"id": ZERO, "lines": 2**63}, "lines: must be at most"),
        ("task/run_once", {"orch_id": ZERO, "workspace_id": 2**63}, "workspace_id: must be"),
        ("task/run_once", {"orch_id": ZERO, "workspace_id": 1, "timeout": 2**63}, "timeout"),
        ("task/run_once", {"orch_id": ZERO, "workspace_id": 1, "keep_runs": 2**63}, "keep_runs"),
        ("task/run_once", {"orch_id": ZERO, "workspace_id": 1, "keep_days": 1e300}, "keep_days"),
        (
            "task/run_scheduled",
            {
                "orch_id": ZERO,
                "workspace_id": 1,
                "schedule": "* * * * *",
                "starting_deadline_seconds": 2**63,
            },
            "starting_deadline_seconds: must be at most",
        ),
        ("orchestration/create_from_path", {"path": "x", "workspace_id": 2**63}, "workspace_id"),
        ("task/activity", {"since": YEAR_ONE}, "since: "),
        ("orchestration/list_all", {"time_range": [YEAR_ONE, YEAR_ONE]}, "time_range: "),
        ("task/list_task_runs", {"task_id": ZERO, "time_range": [YEAR_ONE, YEAR_ONE]}, "time_"),
        ("task/get_by_id", "[" * 100_000, "body: is nested"),
        ("task/run_once", '{"workspace_id": 1, "json": {"x": NaN}}', "not a finite number"),
        ("task/run_once", '{"workspace_id": 1, "keep_days": 1e999}', "not a finite number"),
        ("workspaces/create", '{"workspace_name": "\\udc00"}', "workspace_name: holds a lone"),
    ],
)
async def test_out_of_range_or_unparsable_values_are_400_naming_the_field(
    api: Api, path: str, body: Any, message: str
) -> None:
    response = await api.call(path, body)
    assert response.code == 400, response.body
    assert message in json.loads(response.body)["message"]


def _strict(word: str) -> Any:
    raise AssertionError(f"{word} in an answer: not JSON")


async def test_non_finite_numbers_are_refused_so_listings_stay_strict_json(api: Api) -> None:
    orch_id = await api.upload(HELLO)
    head = f'{{"workspace_id": 1, "orch_id": "{orch_id}"'
    for raw in (
        head + ', "json": {"x": NaN}}',
        head + ', "json": {"x": [Infinity]}}',
        head + ', "keep_days": NaN}',
        head + ', "keep_days": -Infinity}',
    ):
        response = await api.call("task/run_once", raw)
        assert response.code == 400, (raw, response.body)
        assert "not a finite number" in json.loads(response.body)["message"]
    listed = await api.call("task/list", {})
    assert json.loads(listed.body, parse_constant=_strict) == []


def test_answers_are_encoded_as_strict_json() -> None:
    from jupyter_orch.server.handlers import dumps

    assert dumps({"a": [1.5, "x"]}) == '{"a": [1.5, "x"]}'
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="JSON compliant"):
            dumps({"a": bad})


async def test_integral_numbers_are_integers(api: Api) -> None:
    assert await api.ok("orchestration/list", {"workspace_id": 1.0}) == []
    assert await api.ok("task/list", {"limit": 2.0, "run_limit": 0.0}) == []
    response = await api.call("orchestration/list", {"workspace_id": 1.5})
    assert response.code == 400
    assert "workspace_id: must be an integer, not a number" in json.loads(response.body)["message"]


async def test_wrong_methods_are_405_with_an_allow_header(api: Api) -> None:
    response = await api.fetch(API, "task", "list", method="GET", raise_error=False)
    assert response.code == 405, response.body
    assert set(response.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
    assert json.loads(response.body) == {
        "message": "GET is not allowed here (allowed: OPTIONS, POST)",
        "reason": "Method Not Allowed",
    }
    response = await api.fetch(
        API, "orchestration", "download", method="PUT", body=b"", raise_error=False
    )
    assert response.code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "OPTIONS"}


async def test_a_run_with_the_largest_timeout_runs(api: Api) -> None:
    # The supervisor waits for the timeout in one poll(): a C int of milliseconds.
    from jupyter_orch.server.fields import MAX_TIMEOUT

    task_id = await api.run_once(await api.upload(HELLO), timeout=MAX_TIMEOUT)
    task = await api.wait_task(task_id, {"success", "failed"})
    assert task["status"] == "success", await api.logs(task["last_runs"][0]["run_id"])
    response = await api.call(
        "task/run_once", {"orch_id": ZERO, "workspace_id": 1, "timeout": MAX_TIMEOUT + 1}
    )
    assert response.code == 400
    assert json.loads(response.body)["message"] == f"timeout: must be at most {MAX_TIMEOUT}"
