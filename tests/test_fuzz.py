"""Fuzzing the served OpenAPI document: no request answers a 5xx or what the document omits.

schemathesis reads the document a real server serves and sends, for every operation, requests
made from its schemas: boundary, missing and wrongly typed values of each field (its coverage
phase), then random ones (fuzzing), valid and not. Each answer must be one the document
describes: no 5xx, a documented status and content type, a body matching its schema.

Every operation is fuzzed, `upload` (multipart) and `follow_logs` (a stream) too; the lines of
`follow_logs` (JSON lines, `application/x-ndjson`) are not checked against their schema, as
schemathesis reads only JSON bodies, but their status and content type are.

Known records (orchestrations, tasks, a run) are offered as values of the id fields, so that
requests get past "not found" into the code that reads and changes real records. The task
creation endpoints are offered only an orchestration whose packaging failed (the installer
has no index to read), where a new task is a 409: fuzzing cannot start a flood of runs (a
continuous task of a working orchestration would run without end). The known scheduled task
is one of the working orchestration whose instant (1 January) does not come during the test.
Only the server this test starts, on 127.0.0.1, is called.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .servers import ServerProcess, end_runs, wait_for

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
]
#: Requests per operation in the fuzzing phase (the coverage phase adds its own, bounded by
#: each operation's fields): under a minute for all operations on two cores.
MAX_EXAMPLES = int(os.environ.get("JUPYTER_ORCH_FUZZ_EXAMPLES", "100"))
#: The whole schemathesis run, at most.
BUDGET_SECONDS = 200 if MAX_EXAMPLES <= 100 else 200 + 2 * MAX_EXAMPLES
#: The same cases on every run unless JUPYTER_ORCH_FUZZ_SEED says otherwise (to explore, with
#: more cases through JUPYTER_ORCH_FUZZ_EXAMPLES).
SEED = int(os.environ.get("JUPYTER_ORCH_FUZZ_SEED", "20261203"))
HELLO = {"main.py": "print('hello', flush=True)\n"}
UNBUILDABLE = {"main.py": "print(1)\n", "requirements.txt": "surely-not-real-jupyter-orch==1\n"}


def _wait_orch(server: ServerProcess, orch_id: str, status: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def reached() -> bool:
        found.update(server.post("orchestration/get_by_id", {"id": orch_id}))
        return bool(found["status"] == status)

    wait_for(reached, f"orchestration {orch_id} {status}", timeout=120)
    return found


def _known_records(server: ServerProcess) -> dict[str, list[Any]]:
    """Create what the id fields will name: values by kind of id."""
    hello = server.upload(HELLO)
    _wait_orch(server, hello, "ready")
    once = server.post("task/run_once", {"workspace_id": 1, "orch_id": hello}, status=201)["id"]
    done = server.wait_task(once, {"success"})
    run_id = done["last_runs"][0]["run_id"]
    broken = server.upload(UNBUILDABLE)
    orch = _wait_orch(server, broken, "error")
    body = {"workspace_id": 1, "orch_id": broken, "schedule": "0 0 1 1 *"}
    server.post("task/run_scheduled", body, status=409)
    body["orch_id"] = hello
    scheduled = server.post("task/run_scheduled", body, status=201)["id"]
    project = server.workdir / "root" / "project"
    project.mkdir()
    (project / "main.py").write_text("print('from the root')\n")
    return {
        "orchestrations": [hello, broken],
        "tasks": [once, scheduled],
        "runs": [run_id],
        # The only orchestration offered to task creation (see the module's docstring).
        "task_orchestrations": [broken],
        "workspaces": [1],
        "shas": [orch["sha"]],
        "paths": ["project", "project/main.py"],
    }


def _config(known: dict[str, list[Any]], folder: Path) -> Path:
    """schemathesis.toml: known ids offered, half of the time, as the values of id fields."""
    ids = known["orchestrations"] + known["tasks"] + known["runs"]
    dictionaries = {
        "ids": ids,
        "orchestrations": known["orchestrations"],
        "task_orchestrations": known["task_orchestrations"],
        "tasks": known["tasks"],
        "runs": known["runs"],
        "workspaces": known["workspaces"],
        "shas": known["shas"],
        "paths": known["paths"],
    }
    bindings = {
        "body.id": "ids",
        "query.id": "ids",
        "body.orch_id": "task_orchestrations",
        "body.task_id": "tasks",
        "body.task": "tasks",
        "body.pod_id": "runs",
        "body.workspace_id": "workspaces",
        "body.sha": "shas",
        "body.orch_sha": "shas",
        "body.path": "paths",
    }
    lines = []
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    for key, name in bindings.items():
        lines.append(f'"{key}" = {{ dictionary = "{name}", probability = 0.5 }}')
    path = folder / "schemathesis.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.skipif(sys.version_info < (3, 11), reason="schemathesis 4 needs Python 3.11")
@pytest.mark.timeout(BUDGET_SECONDS + 120)
def test_no_request_answers_what_the_document_does_not_describe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server's installer finds no package: the unbuildable orchestration fails at once.
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("UV_OFFLINE", "1")
    data_dir = tmp_path / "data"
    server = ServerProcess(tmp_path, data_dir, "fuzzed")
    try:
        server.start()
        config = _config(_known_records(server), tmp_path)
        argv = [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "--no-color",
            "run",
            f"{server.url}/openapi.json",
            "--url",
            f"http://127.0.0.1:{server.port}/",
            "--header",
            f"Authorization: token {server.token}",
            "--checks",
            ",".join(CHECKS),
            # Stateful testing needs links between operations, which the document has not.
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            str(SEED),
            "--workers",
            "1",
            # How fast cases are made depends on the machine's load, not on the server's answers.
            "--suppress-health-check",
            "too_slow",
            "--generation-database",
            "none",
            "--request-timeout",
            "30",
        ]
        started = time.monotonic()
        result = subprocess.run(
            argv,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=BUDGET_SECONDS,
            check=False,
        )
        took = time.monotonic() - started
        report = result.stdout[-30_000:] + result.stderr[-5_000:]
        assert result.returncode == 0, f"seed {SEED}, {took:.0f} s:\n{report}"
        assert "passed" in result.stdout, report
    finally:
        server.close()
        end_runs(data_dir)
