"""The one zip builder: the same folder gives the same bytes whichever way it comes in.

The four ways are the SDK's `read_upload`, `Client.upload_orchestration(path=...)`, the
`jupyter orch upload` command and the sidebar's `orchestration/create_from_path`; a notebook has
a fifth, uploaded as it is (the server zips it).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_orch.bundle import (
    ArchiveLimits,
    BundleError,
    BundleTooLarge,
    cell_entries,
    read_upload,
    write_bundle,
    zip_entries,
)
from jupyter_orch.sdk.client import Client

from .conftest import API, Api, multipart

PROJECT = {
    "main.py": "from pkg import util\nprint(util.VALUE, open('data/rows/x.csv').read())\n",
    "pkg/__init__.py": "",
    "pkg/util.py": "VALUE = 42\n",
    "data/rows/x.csv": "1,2,3\n",
    "requirements.txt": "# nothing to install\n",
    "__pycache__/main.cpython-312.pyc": "cache",
    "pkg/__pycache__/util.cpython-312.pyc": "cache",
    ".ipynb_checkpoints/main-checkpoint.py": "old",
    "node_modules/left-pad/index.js": "",
    ".git": "gitdir: ../.git/worktrees/project\n",  # a worktree's .git is a file
}
NOTEBOOK = json.dumps(
    {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "hello",
                "metadata": {},
                "outputs": [],
                "source": "print('hello')",
            }
        ],
        "metadata": {"kernelspec": {"display_name": "Python 3", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
)
KEPT = ["data/rows/x.csv", "main.py", "pkg/__init__.py", "pkg/util.py", "requirements.txt"]
LINK = "project/data/secrets is a link"
LIMITED = {"kill_grace_seconds": 1.0, "freeze_startup_objects": False, "max_archive_files": 4}


def write(folder: Path, files: dict[str, str]) -> Path:
    """A folder holding `files`."""
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def sha(data: bytes) -> str:
    """The sha256 the server gives an archive."""
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def project(jp_root_dir: Path) -> Path:
    """A project folder under the Jupyter root, so the sidebar's way can reach it too."""
    return write(jp_root_dir / "project", PROJECT)


@pytest.fixture
def client(jp_serverapp: Any, api: Api) -> Iterator[Client]:
    """An SDK client of the test server (`api` starts its HTTP listener); use it in a thread."""
    found = Client(url=jp_serverapp.connection_url, token=jp_serverapp.identity_provider.token)
    yield found
    found.close()


async def cli_upload(jp_serverapp: Any, folder: Path) -> tuple[int, str, str]:
    """`jupyter orch upload FOLDER --json`: its exit code, stdout and stderr."""
    url, token = jp_serverapp.connection_url, jp_serverapp.identity_provider.token
    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "jupyter_orch.cli", "upload", str(folder), "--json"],
        *["--url", url, "--token", token],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def create_from_path(api: Api, path: str) -> tuple[int, dict[str, Any]]:
    """The sidebar's "Create orchestration": the status and the decoded answer."""
    response = await api.call("orchestration/create_from_path", {"path": path})
    return response.code, json.loads(response.body)


# -- one folder, one sha -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "entries"),
    [("project", KEPT), ("report.ipynb", ["main.ipynb"])],
    ids=["folder", "notebook"],
)
async def test_one_folder_or_notebook_gives_one_sha_whichever_way_it_comes(
    path: str,
    entries: list[str],
    project: Path,
    api: Api,
    client: Client,
    jp_serverapp: Any,
    jp_root_dir: Path,
) -> None:
    target = write(jp_root_dir, {"report.ipynb": NOTEBOOK}) / path
    data, file_name = read_upload(target)
    assert file_name == f"{target.stem}.zip"
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == entries
    expected = sha(data)

    uploaded = await asyncio.to_thread(client.upload_orchestration, path=target)
    code, out, err = await cli_upload(jp_serverapp, target)
    assert code == 0, err
    status, answer = await create_from_path(api, path)
    assert status == 202, answer
    from_path = await api.ok("orchestration/get_by_id", {"id": answer["id"]})

    assert uploaded.sha() == expected
    assert json.loads(out)["sha"] == expected
    assert from_path["sha"] == expected
    assert uploaded.file_name() == json.loads(out)["file_name"] == from_path["file_name"]
    if target.suffix == ".ipynb":  # a notebook also comes as it is, zipped by the server
        for name in ("report.ipynb", "orch.zip"):  # by its name, or by its JSON content
            orch = await api.ok(
                "orchestration/get_by_id", {"id": await raw_upload(api, target, name)}
            )
            assert orch["sha"] == expected and orch["entrypoint"] == "main.ipynb"
            assert orch["file_name"] == f"{Path(name).stem}.zip"


async def raw_upload(api: Api, path: Path, file_name: str) -> str:
    """POST a file as the upload's `file` part, as it is; the new orchestration's id."""
    body, ctype = multipart(
        [
            ("file", file_name, path.read_bytes(), "application/octet-stream"),
            ("metadata", None, b'{"workspace_id": 1}', "application/json"),
        ]
    )
    response = await api.fetch(
        API, "orchestration", "upload", method="POST", body=body, headers={"Content-Type": ctype}
    )
    orch_id: str = json.loads(response.body)["id"]
    return orch_id


def test_a_script_is_main_py_the_same_way(tmp_path: Path) -> None:
    script = write(tmp_path, {"nightly.py": "print('nightly')\n"}) / "nightly.py"
    data, file_name = read_upload(script)
    assert file_name == "nightly.zip"
    assert zip_entries({"main.py": script.read_bytes()}) == data
    with (tmp_path / "out.zip").open("wb") as out:
        assert write_bundle(script, out) == "nightly.zip"
    assert (tmp_path / "out.zip").read_bytes() == data


def test_times_and_permissions_do_not_change_the_sha(tmp_path: Path) -> None:
    folder = write(tmp_path / "project", PROJECT)
    before, _ = read_upload(folder)
    os.utime(folder / "pkg" / "util.py", (1_000_000_000, 1_000_000_000))
    (folder / "main.py").chmod(0o755)
    after, _ = read_upload(folder)
    assert sha(after) == sha(before)
    infos = zipfile.ZipFile(io.BytesIO(after)).infolist()
    assert {(i.date_time, i.external_attr >> 16) for i in infos} == {((1980, 1, 1, 0, 0, 0), 0o644)}


def test_a_file_streamed_to_disk_equals_the_one_in_memory(tmp_path: Path) -> None:
    folder = write(tmp_path / "project", {**PROJECT, "big.bin": "x" * 300_000})
    with (tmp_path / "out.zip").open("wb") as out:
        assert write_bundle(folder, out) == "project.zip"
    assert (tmp_path / "out.zip").read_bytes() == read_upload(folder)[0]


# -- links, special files, empty folders ------------------------------------------------------


async def test_a_link_is_refused_the_same_way_by_sdk_and_server(
    project: Path, api: Api, jp_serverapp: Any, data_dir: Path
) -> None:
    os.symlink(project / "main.py", project / "data" / "secrets")
    with pytest.raises(BundleError, match=LINK):
        read_upload(project)
    status, answer = await create_from_path(api, "project")
    assert (status, answer["reason"]) == (400, "Invalid Archive")
    assert LINK in answer["message"]
    code, _, err = await cli_upload(jp_serverapp, project)
    assert code == 2 and LINK in err
    assert list((data_dir / "tmp").iterdir()) == []


def test_a_link_named_in_the_skip_list_is_skipped(tmp_path: Path) -> None:
    folder = write(tmp_path / "project", {"main.py": ""})
    os.symlink(tmp_path, folder / ".venv")
    data, _ = read_upload(folder)
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["main.py"]


def test_the_folder_itself_may_be_a_link(tmp_path: Path) -> None:
    folder = write(tmp_path / "project", PROJECT)
    os.symlink(folder, tmp_path / "alias")
    assert read_upload(tmp_path / "alias") == read_upload(folder)


def test_special_files_and_empty_folders_are_refused(tmp_path: Path) -> None:
    folder = write(tmp_path / "project", {"main.py": ""})
    os.mkfifo(folder / "pipe")
    with pytest.raises(BundleError, match="project/pipe is not a regular file"):
        read_upload(folder)
    write(tmp_path / "empty", {"__pycache__/x.pyc": ""})
    with pytest.raises(BundleError, match="folder 'empty' holds no files"):
        read_upload(tmp_path / "empty")


# -- limits -----------------------------------------------------------------------------------


def test_limits_are_checked_while_walking(tmp_path: Path) -> None:
    folder = write(tmp_path / "project", PROJECT)
    with pytest.raises(BundleTooLarge, match="'project' has more than 4 files"):
        read_upload(folder, ArchiveLimits(max_files=4))
    with pytest.raises(BundleTooLarge, match="'project' holds more than 50 bytes"):
        read_upload(folder, ArchiveLimits(max_bytes=50))
    assert read_upload(folder, ArchiveLimits(max_files=5))[0] == read_upload(folder)[0]
    with pytest.raises(BundleTooLarge, match="the files hold more than 10 bytes"):
        zip_entries({"main.py": b"x" * 11}, ArchiveLimits(max_bytes=10))


@pytest.mark.parametrize("orch_config", [LIMITED])
async def test_the_server_passes_its_limits(project: Path, api: Api, data_dir: Path) -> None:
    status, answer = await create_from_path(api, "project")
    assert (status, answer["reason"]) == (413, "Payload Too Large")
    assert "'project' has more than 4 files" in answer["message"]
    assert list((data_dir / "tmp").iterdir()) == []


# -- a notebook cell ------------------------------------------------------------------------------


def test_a_cells_dir_goes_through_the_same_walk(tmp_path: Path) -> None:
    write(tmp_path / "data", {"x.csv": "1\n", "__pycache__/y.pyc": "", "sub/z.txt": "z"})
    entries = cell_entries("print(1)\n", tmp_path, "pkg==1\n", dirs=[Path("data")])
    assert sorted(entries) == ["data/sub/z.txt", "data/x.csv", "main.py", "requirements.txt"]
    names = zipfile.ZipFile(io.BytesIO(zip_entries(entries))).namelist()
    assert names == sorted(entries)
    os.symlink(tmp_path / "data" / "x.csv", tmp_path / "data" / "link")
    with pytest.raises(BundleError, match="data/link is a link"):
        cell_entries("print(1)\n", tmp_path, dirs=[Path("data")])


def test_an_artifact_named_main_ipynb_is_refused_beside_a_cell(tmp_path: Path) -> None:
    write(tmp_path, {"main.ipynb": NOTEBOOK})
    with pytest.raises(BundleError, match=r"an artifact is named main\.ipynb"):
        cell_entries("print(1)\n", tmp_path, files=[Path("main.ipynb")])
