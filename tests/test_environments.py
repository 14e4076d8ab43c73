"""What a run can import: no requirements, layered and isolated environments, pip's indexes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from jupyter_orch.server.packaging import Packager
from jupyter_orch.server.pipconfig import uv_settings

from .conftest import Api, offline_builds, texts
from .fakes import make_wheel

IMPORTS = """\
import importlib.util, sys
import requests, jupyter_orch, wallaroo
from jupyter_orch.sdk.client import Client
print(sys.prefix)
print(importlib.util.find_spec("tornado") is not None)
print(wallaroo.Client.__module__)
"""


def simple_index(folder: Path, wheels: list[Path]) -> str:
    """A PEP 503 index of `wheels` in `folder`; its file:// URL."""
    for wheel in wheels:
        project = folder / wheel.name.split("-")[0]
        project.mkdir(parents=True, exist_ok=True)
        link = f'<a href="{wheel.absolute().as_uri()}">{wheel.name}</a>\n'
        with open(project / "index.html", "a", encoding="utf-8") as fh:
            fh.write(link)
    return folder.absolute().as_uri()


@pytest.fixture
def two_indexes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """pip's configuration names two local indexes: the main one holds orchdemo 2.0, the extra
    one an older 1.0 (as a mirror holding old releases would)."""
    wheels = tmp_path / "wheels"
    (wheels / "new").mkdir(parents=True)
    (wheels / "old").mkdir(parents=True)
    main = simple_index(tmp_path / "main", [make_wheel(wheels / "new", "orchdemo", "2.0")])
    extra = simple_index(tmp_path / "extra", [make_wheel(wheels / "old", "orchdemo", "1.0")])
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", main)
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", extra)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no uv.toml of this user
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    for name in ("PIP_NO_INDEX", "PIP_FIND_LINKS", "UV_INDEX_URL", "UV_DEFAULT_INDEX"):
        monkeypatch.delenv(name, raising=False)
    for name in ("UV_INDEX", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS", "UV_INDEX_STRATEGY"):
        monkeypatch.delenv(name, raising=False)


def test_pips_extra_index_keeps_pips_resolution(two_indexes: None) -> None:
    args, _, _ = uv_settings(os.environ)
    assert args[-2:] == ["--index-strategy", "unsafe-best-match"]
    # The administrator's own choice for uv stays.
    args, _, _ = uv_settings({**os.environ, "UV_INDEX_STRATEGY": "first-index"})
    assert "--index-strategy" not in args


@pytest.mark.timeout(120)
async def test_a_version_only_the_main_index_has_builds_with_pips_extra_index(
    two_indexes: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packager = Packager(tmp_path / "envs")
    built = await packager.prepare(["orchdemo==2.0"])
    assert built.error is None, built.log
    assert "--index-strategy unsafe-best-match" in built.log
    # uv's own default (the first index that has the package, the extra one) cannot.
    monkeypatch.setenv("UV_INDEX_STRATEGY", "first-index")
    refused = await Packager(tmp_path / "envs-first").prepare(["orchdemo==2.0"])
    assert refused.error is not None and "orchdemo" in refused.error


async def run_lines(api: Api, files: dict[str, str | bytes]) -> tuple[Any, list[str]]:
    """Run `files` once; the task and its log's text."""
    task = await api.run_to_end(files)
    lines = texts(await api.logs(task["last_runs"][0]["run_id"]))
    assert task["status"] == "success", lines
    return task, lines


async def test_a_requirements_file_of_blanks_and_comments_is_no_requirements(api: Api) -> None:
    files: dict[str, str | bytes] = {"main.py": IMPORTS, "requirements.txt": "\n# none\n  \n"}
    orch_id = await api.upload(files)
    orch = await api.ok("orchestration/get_by_id", {"id": orch_id})
    assert orch["status"] == "ready" and orch["image_path"] == "server"
    _, lines = await run_lines(api, files)
    assert lines[1:] == ["True", "jupyter_orch.sdk.wallaroo"]


@pytest.fixture
def wheels(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, jp_environ: None) -> Path:
    """Builds install from a folder of wheels only."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    make_wheel(folder, "orchdemo", "1.0")
    make_wheel(folder, "packaging", "0.0.1")
    offline_builds(monkeypatch, folder)
    return folder


@pytest.mark.timeout(120)
async def test_an_environment_is_layered_over_the_servers_packages(
    wheels: Path, api: Api, data_dir: Path
) -> None:
    code = IMPORTS + "import packaging, orchdemo\nprint(packaging.__version__)\n"
    files: dict[str, str | bytes] = {
        "main.py": code,
        "requirements.txt": "orchdemo\npackaging==0.0.1\n",
    }
    _, lines = await run_lines(api, files)
    assert lines[0].startswith(str(data_dir / "envs"))  # the environment's interpreter
    # The server's packages are there (tornado), the environment's pins win (packaging).
    assert lines[1:] == ["True", "jupyter_orch.sdk.wallaroo", "0.0.1"]


@pytest.mark.timeout(120)
async def test_an_isolated_environment_still_has_the_sdk_and_its_dependencies(
    wheels: Path, api: Api, jp_serverapp: Any
) -> None:
    packager: Packager = jp_serverapp.web_app.settings["jupyter_orch.service"].packager
    packager.isolated = True  # OrchApp.isolated_environments
    files: dict[str, str | bytes] = {"main.py": IMPORTS, "requirements.txt": "orchdemo\n"}
    _, lines = await run_lines(api, files)
    assert lines[1:] == ["False", "jupyter_orch.sdk.wallaroo"]
