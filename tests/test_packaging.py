"""Orchestrations with a requirements.txt: packaging statuses, environments, failures.

Builds install tiny wheels made by a fixture from a local folder (no index, no network), except
the one test marked `network`.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_orch.server.errors import ArchiveError
from jupyter_orch.server.packaging import (
    LAST_USED,
    READY_MARK,
    SDK_PTH,
    UV_CACHE,
    Packager,
    _summarise_failure,
    env_key,
)
from jupyter_orch.server.pipconfig import redact, uv_settings
from jupyter_orch.server.requirements import check_requirements, normalise_requirements

from .conftest import Api, make_zip, texts
from .fakes import make_wheel

SHOW = (
    "import importlib.util, sys\n"
    "import jupyter_orch, orchdemo\n"
    "print(sys.prefix)\n"
    "print(orchdemo.__version__)\n"
    "print(importlib.util.find_spec('tornado') is None)\n"  # the server's, layered under
    "print(jupyter_orch.in_task())\n"  # the SDK is there without being listed
)
UNKNOWN = "surely-not-a-real-package-jupyter-orch"


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Local wheels: orchdemo 1.0 and 2.0, and `packaging` 0.0.1 (older than the server's)."""
    folder = tmp_path_factory.mktemp("wheelhouse")
    for name, version in [("orchdemo", "1.0"), ("orchdemo", "2.0"), ("packaging", "0.0.1")]:
        make_wheel(folder, name, version)
    return folder


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, wheelhouse: Path, jp_environ: None) -> None:
    """Builds use the server's pip configuration; here: no index, only the local wheels."""
    # pytest-jupyter puts this process's sys.path in PYTHONPATH (for kernels); runs that
    # inherited it would see the server's packages before their own (ISOLATING_VARS).
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # not this machine's pip.conf
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheelhouse))
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "UV_CACHE_DIR", "UV_INDEX_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in ("UV_DEFAULT_INDEX", "UV_INDEX", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def packager(jp_serverapp: Any) -> Packager:
    """The test server's packager."""
    found: Packager = jp_serverapp.web_app.settings["jupyter_orch.service"].packager
    return found


def hold_builds(packager: Packager) -> asyncio.Semaphore:
    """Keep builds waiting for a slot until the returned gate is released."""
    gate = asyncio.Semaphore(0)
    packager._slots = gate
    return gate


# -- through the API ---------------------------------------------------------------------------


@pytest.mark.timeout(120)
async def test_requirements_are_packaged_then_runs_use_the_environment(
    api: Api, packager: Packager
) -> None:
    gate = hold_builds(packager)
    orch_id = await api.upload({"main.py": SHOW, "requirements.txt": "# tools\nOrchDemo\n"})
    first = await api.wait_orch(orch_id, {"packaging"})
    assert first["requirements"] is True
    task_id = await api.run_once(orch_id)  # asked for while packaging: it waits
    assert (await api.ok("task/get_by_id", {"id": task_id}))["status"] == "pending"
    gate.release()
    orch = await api.wait_orch(orch_id, {"ready", "error"})
    assert orch["status"] == "ready", orch
    assert orch["image_path"].startswith("env:") and orch["build_seconds"] > 0
    task = await api.wait_task(task_id, {"success", "failed"})
    assert task["status"] == "success"
    prefix, version, no_tornado, in_task = texts(await api.logs(task["last_runs"][0]["run_id"]))
    assert prefix != sys.prefix and prefix.endswith(orch["image_path"][4:])
    assert (version, no_tornado, in_task) == ("2.0", "False", "True")
    build_log = (await api.ok("orchestration/get_build_log", {"id": orch_id}))["log"]
    assert "uv pip install" in build_log and "+ orchdemo==2.0" in build_log

    # The same requirements, written differently, reuse the environment at once.
    again = await api.upload({"main.py": SHOW, "requirements.txt": "orchdemo  # web\n\n"})
    reused = await api.wait_orch(again, {"ready", "error"})
    assert reused["image_path"] == orch["image_path"]
    assert reused["build_seconds"] == 0
    assert packager.builds == 1


@pytest.mark.timeout(120)
async def test_reordered_requirements_share_one_environment(api: Api, packager: Packager) -> None:
    one = await api.upload({"main.py": SHOW, "requirements.txt": "orchdemo==1.0\npackaging\n"})
    two_reqs = "# pinned\nPackaging\n\nOrchDemo == 1.0  # old on purpose\n"
    first = await api.wait_orch(one, {"ready", "error"})
    two = await api.upload({"main.py": SHOW, "requirements.txt": two_reqs})
    second = await api.wait_orch(two, {"ready", "error"})
    assert first["status"] == second["status"] == "ready"
    assert first["image_path"] == second["image_path"]
    assert second["build_seconds"] == 0 and packager.builds == 1


@pytest.mark.timeout(120)
async def test_concurrent_identical_uploads_build_once(api: Api, packager: Packager) -> None:
    gate = hold_builds(packager)
    variants = ["orchdemo==1.0\n", "OrchDemo==1.0\n", "# same\norchdemo == 1.0\n"]
    ids = await asyncio.gather(
        *(api.upload({"main.py": SHOW, "requirements.txt": r}) for r in variants)
    )
    for orch_id in ids:
        await api.wait_orch(orch_id, {"packaging"})
    gate.release()
    orchs = [await api.wait_orch(orch_id, {"ready", "error"}) for orch_id in ids]
    assert {o["status"] for o in orchs} == {"ready"}
    assert len({o["image_path"] for o in orchs}) == 1
    assert packager.builds == 1


@pytest.mark.timeout(120)
async def test_a_pinned_version_wins_over_the_servers(api: Api) -> None:
    assert importlib.metadata.version("packaging") != "0.0.1"  # the server has its own
    code = "import packaging\nprint(packaging.__version__)\n"
    task = await api.run_to_end({"main.py": code, "requirements.txt": "packaging==0.0.1\n"})
    assert task["status"] == "success", task
    assert texts(await api.logs(task["last_runs"][0]["run_id"])) == ["0.0.1"]


@pytest.mark.timeout(120)
async def test_a_failing_build_sets_error_and_fails_waiting_runs(
    api: Api, packager: Packager
) -> None:
    gate = hold_builds(packager)
    orch_id = await api.upload({"main.py": "print('never')\n", "requirements.txt": UNKNOWN})
    await api.wait_orch(orch_id, {"packaging"})
    task_id = await api.run_once(orch_id)
    gate.release()
    orch = await api.wait_orch(orch_id, {"ready", "error"})
    assert orch["status"] == "error"
    assert UNKNOWN in orch["error"] and "\n" not in orch["error"]
    build_log = (await api.ok("orchestration/get_build_log", {"id": orch_id}))["log"]
    assert UNKNOWN in build_log and "$ " in build_log and "# failed:" in build_log
    task = await api.wait_task(task_id, {"failed", "success"})
    assert task["status"] == "failed"
    lines = texts(await api.logs(task["last_runs"][0]["run_id"]))
    assert lines[-1].startswith("jupyter_orch: packaging failed:") and UNKNOWN in lines[-1]
    # A task asked for after the failure is refused, quoting the failure.
    body = {"workspace_id": 1, "orch_id": orch_id, "json": {}}
    refused = await api.call("task/run_once", body)
    assert refused.code == 409
    message = json.loads(refused.body)["message"]
    assert "failed packaging" in message and UNKNOWN in message


@pytest.mark.timeout(120)
async def test_conflicting_pins_name_the_conflict(api: Api) -> None:
    reqs = "orchdemo==1.0\norchdemo==2.0\n"
    orch_id = await api.upload({"main.py": "print(1)\n", "requirements.txt": reqs})
    orch = await api.wait_orch(orch_id, {"ready", "error"})
    assert orch["status"] == "error"
    assert "orchdemo==1.0" in orch["error"] and "orchdemo==2.0" in orch["error"]


async def test_orchestration_without_requirements_is_ready_at_once(api: Api) -> None:
    response = await api.upload_raw(make_zip({"main.py": "print(1)\n"}))
    orch = await api.ok("orchestration/get_by_id", {"id": json.loads(response.body)["id"]})
    assert orch["status"] == "ready" and orch["image_path"] == "server"


REFUSED = [
    "--index-url https://example.invalid/simple",
    "-i https://example.invalid/simple",
    "--extra-index-url https://example.invalid/simple",
    "--trusted-host example.invalid",
    "-e .",
    "-r other.txt",
    "orchdemo --config-settings=--build-option=--evil",
    "orchdemo @ https://example.invalid/orchdemo-1.0-py3-none-any.whl",
    "orchdemo@https://example.invalid/orchdemo-1.0-py3-none-any.whl",
    "https://example.invalid/orchdemo-1.0-py3-none-any.whl",
    "git+https://example.invalid/orchdemo.git",
    "./vendored/orchdemo",
    "/abs/orchdemo-1.0-py3-none-any.whl",
    "${HOME}",
]


@pytest.mark.parametrize("line", REFUSED)
async def test_option_and_url_lines_are_refused(api: Api, line: str) -> None:
    files: dict[str, str | bytes] = {"main.py": "print(1)\n", "requirements.txt": f"six\n{line}\n"}
    response = await api.upload_raw(make_zip(files))
    assert response.code == 400, response.body
    message = json.loads(response.body)["message"]
    assert "requirements.txt" in message and "not allowed" in message


@pytest.mark.timeout(120)
@pytest.mark.parametrize("orch_config", [{"allow_requirement_options": True}])
async def test_the_operator_may_allow_requirement_options(api: Api, tmp_path: Path) -> None:
    extra = tmp_path / "Extra-Wheels"  # a capital letter: options keep their case
    extra.mkdir()
    make_wheel(extra, "orchextra", "3.1")
    reqs = f"--find-links {extra}\norchextra==3.1\n"
    code = "import orchextra\nprint(orchextra.__version__)\n"
    task = await api.run_to_end({"main.py": code, "requirements.txt": reqs})
    assert task["status"] == "success", task
    assert texts(await api.logs(task["last_runs"][0]["run_id"])) == ["3.1"]


@pytest.mark.network
@pytest.mark.timeout(300)
async def test_a_real_package_from_the_registry(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """six 1.16.0 from the real index, older than the server's own six."""
    monkeypatch.delenv("PIP_NO_INDEX")
    monkeypatch.delenv("PIP_FIND_LINKS")
    code = "import six\nprint(six.__version__)\n"
    task = await api.run_to_end({"main.py": code, "requirements.txt": "six==1.16.0\n"})
    assert task["status"] == "success", task
    assert texts(await api.logs(task["last_runs"][0]["run_id"])) == ["1.16.0"]


# -- the packager alone ------------------------------------------------------------------------


def _fake_env(envs: Path, key: str, age: float) -> Path:
    env = envs / key
    env.mkdir(parents=True)
    (env / READY_MARK).write_text("1\n", encoding="utf-8")
    (env / LAST_USED).touch()
    stamp = time.time() - age
    for mark in (READY_MARK, LAST_USED):
        os.utime(env / mark, (stamp, stamp))
    return env


async def test_idle_environments_are_collected_but_not_those_in_use(tmp_path: Path) -> None:
    envs = tmp_path / "envs"
    packager = Packager(envs)
    day = 86400.0
    _fake_env(envs, "old", 40 * day)
    _fake_env(envs, "old_in_use", 40 * day)
    _fake_env(envs, "old_but_just_run", 40 * day)
    _fake_env(envs, "recent", 1 * day)
    (envs / "building").mkdir()  # no ready mark: a build under way is never collected
    (envs / UV_CACHE).mkdir()
    packager.mark_used("old_but_just_run")
    removed = await packager.collect({"old_in_use"}, 30 * day)
    assert removed == ["old"]
    left = sorted(p.name for p in envs.iterdir())
    assert left == [UV_CACHE, "building", "old_but_just_run", "old_in_use", "recent"]


@pytest.mark.timeout(120)
async def test_ensure_rebuilds_a_collected_environment(tmp_path: Path) -> None:
    packager = Packager(tmp_path / "envs")
    lines = normalise_requirements("orchdemo==1.0\n")
    built = await packager.prepare(lines)
    assert built.error is None and built.python is not None and built.seconds > 0
    assert await packager.collect(set(), 3600) == []  # just built: not idle
    assert await packager.collect(set(), -1) == [built.key]
    assert not Path(built.python).exists()
    again = await packager.ensure(lines)
    assert again.error is None and again.python == built.python and packager.builds == 2
    reused = await packager.ensure(lines)
    assert reused.seconds == 0 and packager.builds == 2


@pytest.mark.timeout(300)
async def test_pip_fallback_builds_the_same_kind_of_environment(tmp_path: Path) -> None:
    packager = Packager(tmp_path / "envs", installer="pip")
    result = await packager.prepare(normalise_requirements("orchdemo==1.0\n"))
    assert result.error is None and result.python is not None, result.log
    assert "-m pip install" in result.log
    code = "import jupyter_orch, orchdemo; print(orchdemo.__version__, jupyter_orch.in_task())"
    argv = [result.python, "-c", code]
    out = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1.0", "False"]
    assert list(Path(result.python).parent.parent.glob(f"lib/*/site-packages/{SDK_PTH}"))


def test_environment_key_ignores_order_comments_blanks_and_case() -> None:
    one = normalise_requirements("numpy==1.26\n# comment\n\nPandas>=2  # why\n")
    two = normalise_requirements("pandas>=2\nNUMPY==1.26\n")
    assert one == two == ["numpy==1.26", "pandas>=2"]
    assert env_key(one) == env_key(two)
    assert env_key(one) != env_key(["numpy==1.26"])
    assert env_key(one, "3.10.0") != env_key(one, "3.11.0")


def test_normalising_keeps_what_is_case_sensitive() -> None:
    text = (
        "Foo_Bar [Extra] >= 1.0 ; sys_platform == 'Linux'\n"
        "--find-links /Srv/Wheels\n"
        "six==1.17.0 \\\n    --hash=sha256:AB12\n"
    )
    assert normalise_requirements(text) == [
        "--find-links /Srv/Wheels",
        "foo-bar[extra]>=1.0; sys_platform == 'Linux'",
        "six==1.17.0 --hash=sha256:AB12",
    ]


def test_plain_requirements_pass_the_check() -> None:
    text = (
        "six\nsix>=1.0,<2\nfoo[bar, baz]==1.0 ; python_version >= '3.8'\nzope.interface~=6.0\n"
        "legacy (>=1.0)\nsix==1.17.0 --hash=sha256:4721f391ed90541fddacab5acf947aa0d3dc7d27b2\n"
    )
    check_requirements(text, allow_options=False)
    with pytest.raises(ArchiveError, match="option line"):
        check_requirements("--no-binary :all:\n", allow_options=False)
    check_requirements("--index-url https://mirror.example/simple\n", allow_options=True)


@pytest.fixture
def pip_conf(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An environment whose pip configuration file names local indexes and a proxy."""
    (tmp_path / "simple").mkdir()
    (tmp_path / "wheels").mkdir()
    conf = tmp_path / "pip.conf"
    conf.write_text(
        f"[global]\nindex-url = file://{tmp_path}/simple\n"
        f"extra-index-url =\n    file:///surely/missing/simple\n    https://mirror.example/simple\n"
        f"find-links = {tmp_path}/wheels /surely/missing/wheels\nproxy = http://proxy.example:3128\n"
        "[install]\ntrusted-host = mirror.example\n",
        encoding="utf-8",
    )
    yield {"PIP_CONFIG_FILE": str(conf), "HOME": str(tmp_path), "XDG_CONFIG_DIRS": str(tmp_path)}


def _values(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args) if arg == flag]


def test_uv_follows_the_servers_pip_configuration(pip_conf: dict[str, str], tmp_path: Path) -> None:
    args, env, notes = uv_settings(pip_conf)
    assert _values(args, "--index-url") == [f"file://{tmp_path}/simple"]
    assert _values(args, "--extra-index-url") == ["https://mirror.example/simple"]
    assert _values(args, "--find-links") == [f"{tmp_path}/wheels"]
    assert _values(args, "--allow-insecure-host") == ["mirror.example"]
    assert env["HTTPS_PROXY"] == "http://proxy.example:3128"
    assert any("/surely/missing/wheels" in note for note in notes)  # skipped, not fatal
    assert any("file:///surely/missing/simple" in note for note in notes)

    # pip's variables override its files; uv's own variables are left to uv.
    more = {**pip_conf, "PIP_NO_INDEX": "yes", "PIP_FIND_LINKS": str(tmp_path)}
    more |= {"UV_INDEX_URL": "https://uv.example/simple", "HTTPS_PROXY": "http://p:1"}
    args, env, _ = uv_settings(more)
    assert "--no-index" in args and _values(args, "--find-links") == [str(tmp_path)]
    assert _values(args, "--index-url") == [] and "HTTPS_PROXY" not in env
    assert uv_settings({"PIP_CONFIG_FILE": os.devnull})[0] == []


def test_failures_are_summarised_in_one_line() -> None:
    unknown = (
        "Using Python 3.11.7 environment at: env\n"
        "error: No solution found when resolving dependencies\n"
        f"  cause: Because {UNKNOWN} was not found in the package registry and you require "
        f"{UNKNOWN}==9.9.9, we can conclude that your requirements are unsatisfiable.\n"
    )
    assert _summarise_failure(unknown, 1).startswith(
        f"No solution found when resolving dependencies: Because {UNKNOWN} was not found"
    )
    network = (
        "error: Request failed after 3 retries in 9.5s\n"
        "  cause: Failed to fetch: https://pypi.org/simple/six/\n"
        "  cause: client error (Connect)\n"
        "  cause: Connection refused (os error 111)\n"
    )
    assert _summarise_failure(network, 2) == (
        "Request failed after 3 retries in 9.5s: Failed to fetch: https://pypi.org/simple/six/ "
        "(Connection refused (os error 111))"
    )
    pip = "Looking in links: /x\nERROR: No matching distribution found for nothing-here\n"
    assert _summarise_failure(pip, 1) == "ERROR: No matching distribution found for nothing-here"
    assert _summarise_failure("", 3) == "installer exited with code 3"


def test_credentials_in_urls_are_redacted() -> None:
    text = "$ uv pip install --index-url https://user:s3cret@mirror.example/simple -r reqs"
    assert redact(text) == "$ uv pip install --index-url https://***@mirror.example/simple -r reqs"
