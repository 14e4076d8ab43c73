"""Orchestrations with a requirements.txt: packaging statuses, environments, failures."""

from __future__ import annotations

import json
import sys

import pytest

from jupyter_orch.packaging import env_key, normalise_requirements

from .conftest import Api, make_zip
from .test_api import texts

SHOW_PREFIX = "import sys, tornado\nprint(sys.prefix)\nprint(tornado.__file__)\n"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Builds use the server's pip configuration; here that says: no index, stay offline."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")


@pytest.mark.timeout(300)
async def test_requirements_are_packaged_then_runs_use_the_environment(api: Api) -> None:
    orch_id = await api.upload({"main.py": SHOW_PREFIX, "requirements.txt": "# tools\nTornado\n"})
    first = await api.ok("orchestration/get_by_id", {"id": orch_id})
    assert first["status"] in {"pending_packaging", "packaging", "ready"}
    assert first["requirements"] is True
    task_id = await api.run_once(orch_id)  # asked for while packaging: it waits
    orch = await api.wait_orch(orch_id, {"ready", "error"})
    assert orch["status"] == "ready", orch
    assert orch["image_path"].startswith("env:") and orch["build_seconds"] > 0
    task = await api.wait_task(task_id, {"success", "failed"})
    assert task["status"] == "success"
    prefix, tornado_file = texts(await api.logs(task["last_runs"][0]["run_id"]))
    assert prefix != sys.prefix and prefix.endswith(orch["image_path"][4:])
    assert tornado_file  # the server's packages stay visible (the SDK is one of them)
    build_log = (await api.ok("orchestration/get_build_log", {"id": orch_id}))["log"]
    assert "pip" in build_log

    # The same requirements, written differently, reuse the environment at once.
    again = await api.upload({"main.py": SHOW_PREFIX, "requirements.txt": "tornado  # web\n\n"})
    reused = await api.wait_orch(again, {"ready", "error"})
    assert reused["image_path"] == orch["image_path"]
    assert reused["build_seconds"] == 0


@pytest.mark.timeout(300)
async def test_a_failing_build_sets_error_and_fails_waiting_runs(api: Api) -> None:
    reqs = "surely-not-a-real-package-jupyter-orch==9.9.9\n"
    orch_id = await api.upload({"main.py": "print('never')\n", "requirements.txt": reqs})
    task_id = await api.run_once(orch_id)
    orch = await api.wait_orch(orch_id, {"ready", "error"})
    assert orch["status"] == "error"
    assert "surely-not-a-real-package-jupyter-orch" in orch["error"]
    build_log = (await api.ok("orchestration/get_build_log", {"id": orch_id}))["log"]
    assert "surely-not-a-real-package-jupyter-orch" in build_log
    task = await api.wait_task(task_id, {"failed", "success"})
    assert task["status"] == "failed"
    lines = texts(await api.logs(task["last_runs"][0]["run_id"]))
    assert lines[-1].startswith("jupyter_orch: packaging failed:")
    # Runs asked for after the failure fail the same way, at once.
    later = await api.wait_task(await api.run_once(orch_id), {"failed", "success"})
    assert later["status"] == "failed"


async def test_orchestration_without_requirements_is_ready_at_once(api: Api) -> None:
    response = await api.upload_raw(make_zip({"main.py": "print(1)\n"}))
    orch = await api.ok("orchestration/get_by_id", {"id": json.loads(response.body)["id"]})
    assert orch["status"] == "ready" and orch["image_path"] == "server"


def test_environment_key_ignores_order_comments_blanks_and_case() -> None:
    one = normalise_requirements("numpy==1.26\n# comment\n\nPandas>=2  # why\n")
    two = normalise_requirements("pandas>=2\nNUMPY==1.26\n")
    assert one == two == ["numpy==1.26", "pandas>=2"]
    assert env_key(one) == env_key(two)
    assert env_key(one) != env_key(["numpy==1.26"])
    assert env_key(one, "3.10.0") != env_key(one, "3.11.0")
