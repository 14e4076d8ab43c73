"""A run's folder is private to its owner, and its token is never written there in clear."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from .conftest import Api

# Hands its token to the test through a file outside the data directory.
TELL_TOKEN = """
import os, jupyter_orch
with open(jupyter_orch.task_args()["out"], "w") as fh:
    fh.write(os.environ["JUPYTER_ORCH_TOKEN"])
print("done", flush=True)
"""


@pytest.fixture(params=[True, False], ids=["fork-server", "new-processes"])
def orch_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Supervisors forked by the fork server, or started as new processes."""
    return {
        "kill_grace_seconds": 1.0,
        "freeze_startup_objects": False,
        "fork_server": request.param,
    }


async def test_run_folders_are_private_and_hold_no_token(
    api: Api, data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "token"
    task_id = await api.run_once(await api.upload({"main.py": TELL_TOKEN}), {"out": str(out)})
    task = await api.wait_task(task_id, {"success", "failed"})
    assert task["status"] == "success"
    token = out.read_bytes()
    assert len(token) > 30
    run_dir = data_dir / "runs" / task["last_runs"][0]["run_id"]
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    names = sorted(p.name for p in run_dir.iterdir())
    assert {"spec.json", "log", "exit.json", "args.json", "supervisor.json"} <= set(names)
    for path in run_dir.iterdir():
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert token not in path.read_bytes(), f"the run's token is in {path}"
