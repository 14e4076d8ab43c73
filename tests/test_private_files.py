"""Files of one user's work are that user's (or the server's) alone: run logs, run records,
outputs and environment build logs are 0600 in folders other accounts cannot list.

With `OrchApp.run_as_owner` on, a real server (as root) runs tasks of a Unix account made for
the test; another account then tries to read each file the runs and the packaging left, and
is refused. The Dask executor's run folders on the server, and a data directory an older
server left readable, are checked too.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from tornado.httpclient import HTTPResponse

from jupyter_orch._proc import runfiles
from jupyter_orch.server.datadir import DataDir
from jupyter_orch.server.executors.base import RunSpec
from jupyter_orch.server.executors.dask import DaskExecutor, _append_at, _keep_end
from jupyter_orch.server.executors.local import LocalExecutor
from jupyter_orch.server.packaging import Packager

from .conftest import Api
from .fakes import TokenUsers
from .jhub import SYSTEM_PYTHON, UnixUsers

OWNER, OTHER = "orch-files-alice", "orch-files-bob"
needs_accounts = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("useradd") is None or not Path(SYSTEM_PYTHON).exists(),
    reason="runs as another account need root, useradd and Debian's python3",
)
SCRIPT = {"main.py": "print('secret output', flush=True)\nopen('made.txt', 'w').write('x')\n"}
NOTEBOOK = {
    "main.ipynb": json.dumps(
        {
            "cells": [],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )
}
UNBUILDABLE = {"main.py": "print(1)\n", "requirements.txt": "surely-not-real-jupyter-orch==1\n"}
#: Tries to read each path given (and to list each folder): prints what it could.
READER = """
import json, os, sys
opened = []
for path in sys.argv[1:]:
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, "rb").close()
        opened.append(path)
    except PermissionError:
        pass
print(json.dumps(opened))
"""


class Users(TokenUsers):
    """The test's Unix account, known by its token."""

    users: ClassVar[dict[str, tuple[str, bool]]] = {f"{OWNER}-token": (OWNER, False)}


class SystemPython(LocalExecutor):
    """Runs on Debian's Python, which every account may execute (the test server's own lies
    under root's home)."""

    def __init__(self, fork_server: bool = True) -> None:
        super().__init__(SYSTEM_PYTHON, fork_server=False)


@pytest.fixture(scope="module")
def accounts() -> Iterator[dict[str, pwd.struct_passwd]]:
    """The owner of the runs, and another account."""
    made = UnixUsers([OWNER, OTHER]).create()
    try:
        yield {name: pwd.getpwnam(name) for name in (OWNER, OTHER)}
    finally:
        made.remove()


@pytest.fixture
def data_dir(passable_dir: Path) -> Path:
    """A data directory other accounts may pass through to."""
    return passable_dir / "data"


@pytest.fixture
def orch_config(orch_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Runs as their owners on a multi-user server; packaging finds no package index."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("UV_OFFLINE", "1")
    return {
        **orch_config,
        "multi_user": True,
        "run_as_owner": True,
        "executor_class": SystemPython,
    }


@pytest.fixture
def server_config() -> dict[str, Any]:
    """The owner known by their token."""
    return {"identity_provider_class": Users}


def as_owner(jp_fetch: Callable[..., Any]) -> Api:
    """The API as the test's account calls it."""

    async def fetch(*parts: str, **kwargs: Any) -> HTTPResponse:
        headers = {"Authorization": f"token {OWNER}-token", **kwargs.pop("headers", {})}
        response: HTTPResponse = await jp_fetch(*parts, headers=headers, **kwargs)
        return response

    return Api(fetch)


def readable_by(account: pwd.struct_passwd, paths: list[Path]) -> list[str]:
    """Those of `paths` another account can read (files) or list (folders)."""
    result = subprocess.run(
        [SYSTEM_PYTHON, "-c", READER, *map(str, paths)],
        user=account.pw_uid,
        group=account.pw_gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    opened: list[str] = json.loads(result.stdout)
    return opened


def mode(path: Path) -> tuple[str, int]:
    """Who owns a path, and its permission bits."""
    info = path.lstat()
    return pwd.getpwuid(info.st_uid).pw_name, stat.S_IMODE(info.st_mode)


@needs_accounts
async def test_runs_and_builds_leave_nothing_another_account_can_read(
    accounts: dict[str, pwd.struct_passwd], jp_fetch: Callable[..., Any], data_dir: Path
) -> None:
    api = as_owner(jp_fetch)
    script = await api.run_once(await api.upload(SCRIPT))
    assert (await api.wait_task(script, {"success", "failed"}))["status"] == "success"
    notebook = await api.run_once(await api.upload(NOTEBOOK))
    await api.wait_task(notebook, {"success", "failed"})  # Debian's Python lacks nbformat
    unbuildable = await api.upload(UNBUILDABLE)
    assert (await api.wait_orch(unbuildable, {"ready", "error"}))["status"] == "error"

    data = DataDir(data_dir)
    build_log = data.build_log(unbuildable)
    assert build_log.stat().st_size > 0
    assert mode(build_log) == ("root", 0o600)
    runs = sorted(data.runs.iterdir())
    assert len(runs) == 2
    for run in runs:
        assert mode(run) == ("root", 0o711)
        for name in (runfiles.LOG, runfiles.EXIT, runfiles.SPEC_JSON, runfiles.CHILD):
            assert mode(run / name) == ("root", 0o600), run / name
        assert mode(run / runfiles.ARGS) == (OWNER, 0o600)
        assert mode(run / runfiles.WORK) == (OWNER, 0o700)
    outputs = [run / runfiles.OUTPUT_NOTEBOOK for run in runs]
    assert [mode(o) for o in outputs if o.exists()] == [(OWNER, 0o600)]
    logs = [(run / runfiles.LOG).read_text() for run in runs]
    assert any("secret output" in text for text in logs)

    every = [build_log, data.runs]
    for run in runs:
        every += [run, *run.iterdir(), *(run / runfiles.WORK).iterdir()]
    assert readable_by(accounts[OTHER], every) == []
    # The owner reads their own working files and output (their log through the API).
    own = [run / runfiles.WORK / "made.txt" for run in runs] + outputs
    own = [path for path in own if path.exists()]
    assert len(own) == 2
    assert readable_by(accounts[OWNER], own) == [str(path) for path in own]


def test_a_dask_runs_folder_on_the_server_is_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        run_dir = tmp_path / "runs" / "r1"
        spec = RunSpec("r1", run_dir, ["python"], {}, tmp_path, "")
        DaskExecutor._prepare_dir(spec)
        run_dir.joinpath(runfiles.LOG).unlink()  # appended from the first report on
        _append_at(run_dir / runfiles.LOG, 0, b"a line\n")
        _keep_end(run_dir, {"status": "success"}, {runfiles.OUTPUT_NOTEBOOK: "{}"})
    finally:
        os.umask(old)
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    files = sorted(p.name for p in run_dir.iterdir())
    assert files == sorted([runfiles.LOG, runfiles.SPEC_JSON, runfiles.EXIT, "output.ipynb"])
    for path in run_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert (run_dir / runfiles.LOG).read_bytes() == b"a line\n"


def test_files_an_older_server_left_readable_are_closed(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    data.create()
    run = data.run("r1")
    (run / runfiles.WORK).mkdir(parents=True)
    leftovers = [
        data.build_log("o1"),
        run / runfiles.LOG,
        run / runfiles.EXIT,
        run / "output.ipynb",
    ]
    for path in [*leftovers, run / runfiles.WORK / "theirs.txt"]:
        path.write_text("x")
        path.chmod(0o644)
    data.close_to_others()
    assert [stat.S_IMODE(p.stat().st_mode) for p in leftovers] == [0o600] * len(leftovers)
    assert stat.S_IMODE(run.stat().st_mode) == 0o711
    # What a run keeps in its own working folder is the run's to decide (the folder is 0700).
    assert stat.S_IMODE((run / runfiles.WORK / "theirs.txt").stat().st_mode) == 0o644


def test_the_requirements_an_environment_is_built_from_are_the_servers_alone(
    tmp_path: Path,
) -> None:
    packager = Packager(tmp_path / "envs", 1)
    old = os.umask(0o022)
    try:
        reqs = packager._start_build("k1", tmp_path / "envs" / "k1", ["private-package==1"])
    finally:
        os.umask(old)
    assert reqs.read_text() == "private-package==1\n"
    assert stat.S_IMODE(reqs.stat().st_mode) == 0o600
