"""Orchestrations written for Wallaroo: `import wallaroo` in a run, Wallaroo's variables."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from .conftest import Api, offline_builds, texts
from .fakes import make_wheel

WALLAROO_RUN = """\
import json, os
import wallaroo

wl = wallaroo.Client()
seen = {"in_task": wl.in_task(), "args": wl.task_args(), "module": wallaroo.__name__}
seen["env"] = {k: os.environ.get(k) for k in ("WALLAROO_TASK_ID", "WALLAROO_URL", "TASK_ID")}
seen["workspace"] = wl.get_current_workspace().name()
seen["tasks"] = [t.id() for t in wl.list_tasks()]
seen["orchestrations"] = [o.id() for o in wl.list_orchestrations()]
try:
    wl.list_pipelines()
except AttributeError as exc:
    seen["pipelines"] = str(exc)
try:
    import wallaroo.pipeline
except ModuleNotFoundError as exc:
    seen["pipeline_module"] = str(exc)
try:
    wallaroo.ModelConfig
except AttributeError as exc:
    seen["model"] = str(exc)
print(json.dumps(seen))
"""


async def test_a_run_imports_wallaroo_bound_to_itself(api: Api) -> None:
    created = await api.ok("workspaces/create", {"workspace_name": "wallaroo-ws"})
    workspace = created["workspace_id"]
    orch_id = await api.upload({"main.py": WALLAROO_RUN}, workspace_id=workspace)
    await api.wait_orch(orch_id, {"ready"})
    args = {"connection_name": "db", "n": 2}
    task_id = await api.run_once(orch_id, args, workspace_id=workspace)
    task = await api.wait_task(task_id, {"success", "failed"})
    lines = texts(await api.logs(task["last_runs"][0]["run_id"]))
    assert task["status"] == "success", lines
    seen = json.loads(lines[-1])
    assert seen["in_task"] is True and seen["args"] == args
    assert seen["module"] == "jupyter_orch.sdk.wallaroo"
    env = seen["env"]
    assert env["WALLAROO_TASK_ID"] == env["TASK_ID"] == task_id
    assert env["WALLAROO_URL"].endswith("/orch")
    # The client's workspace is the run's own.
    assert seen["workspace"] == "wallaroo-ws"
    assert seen["tasks"] == [task_id] and seen["orchestrations"] == [orch_id]
    # What is not an orchestration's says which Wallaroo feature it is.
    assert "wallaroo.Client.list_pipelines: Wallaroo pipelines" in seen["pipelines"]
    assert "wallaroo.pipeline: Wallaroo pipelines" in seen["pipeline_module"]
    assert "wallaroo.ModelConfig: Wallaroo models" in seen["model"]


def test_wallaroo_is_not_importable_outside_runs() -> None:
    # Nothing of ours is installed as `wallaroo`: a kernel or the server does not see it.
    spec = importlib.util.find_spec("wallaroo")
    assert spec is None or "_wallaroo" not in str(spec.origin)


@pytest.fixture
def wallaroo_wheel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, jp_environ: None) -> Path:
    """Builds install from a folder holding a package named `wallaroo`."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    make_wheel(folder, "wallaroo", "2099.1")
    offline_builds(monkeypatch, folder)
    return folder


@pytest.mark.timeout(120)
async def test_the_real_wallaroo_wins_when_the_environment_installs_it(
    wallaroo_wheel: Path, api: Api
) -> None:
    code = "import wallaroo\nprint(wallaroo.__version__, wallaroo.__file__)\n"
    task: Any = await api.run_to_end({"main.py": code, "requirements.txt": "wallaroo==2099.1\n"})
    lines = texts(await api.logs(task["last_runs"][0]["run_id"]))
    assert task["status"] == "success", lines
    version, path = lines[-1].split(" ", 1)
    assert version == "2099.1" and path.endswith("/site-packages/wallaroo/__init__.py")


#: An orchestration as Wallaroo's tutorials write them.
WALLAROO_SHAPED = """\
import requests
import wallaroo

wl = wallaroo.Client()

if wl.in_task():
    arguments = wl.task_args()
    connection_name = arguments["connection_name"]
else:
    connection_name = "external_inference_connection"

connection = wl.get_connection(connection_name)
details = connection.details()
request = requests.Request(
    "POST", details["host"], headers={"Authorization": f"Bearer {details['token']}"}
).prepare()
print(f"{connection.name()} ({connection.connection_type()}): {request.method} {request.url}")
print("authorized" if request.headers["Authorization"].endswith(details["token"]) else "no")
"""


async def test_a_zip_written_for_wallaroo_runs_unchanged(
    api: Api, caplog: pytest.LogCaptureFixture, data_dir: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "tok-0a9f-not-for-logs"
    body = {
        "name": "external_inference_connection",
        "type": "HTTP",
        "details": {"host": "https://inference.example.com/score", "token": secret},
    }
    conn_id = (await api.ok("connections/create", body))["id"]
    await api.ok("connections/add_to_workspace", {"workspace_id": 1, "connection_id": conn_id})
    orch_id = await api.upload({"main.py": WALLAROO_SHAPED, "requirements.txt": ""})
    assert (await api.wait_orch(orch_id, {"ready"}))["image_path"] == "server"
    args = {"connection_name": "external_inference_connection"}
    task = await api.wait_task(await api.run_once(orch_id, args), {"success", "failed"})
    lines = texts(await api.logs(task["last_runs"][0]["run_id"]))
    assert task["status"] == "success", lines
    assert lines == [
        "external_inference_connection (HTTP): POST https://inference.example.com/score",
        "authorized",
    ]
    assert task["input_data"] == args
    assert secret not in json.dumps(task) and secret not in caplog.text
    assert all(secret not in log.read_text() for log in data_dir.glob("runs/*/log"))
