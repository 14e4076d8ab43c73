"""Orchestrations made from files of the Jupyter root, with every path and archive check."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import API, Api, texts


async def create(api: Api, path: str, **extra: object) -> tuple[int, dict[str, object]]:
    """POST create_from_path; the status and the decoded answer."""
    response = await api.call("orchestration/create_from_path", {"path": path, **extra})
    return response.code, json.loads(response.body)


async def test_a_folder_becomes_an_orchestration(api: Api, jp_root_dir: Path) -> None:
    project = jp_root_dir / "project"
    (project / "data").mkdir(parents=True)
    (project / "main.py").write_text("print(open('data/x.txt').read())\n")
    (project / "data" / "x.txt").write_text("from the root")
    (project / "__pycache__").mkdir()
    (project / "__pycache__" / "junk.pyc").write_bytes(b"\0")
    code, answer = await create(api, "project")
    assert code == 202
    orch = await api.ok("orchestration/get_by_id", {"id": answer["id"]})
    assert orch["name"] == "project" and orch["file_name"] == "project.zip"
    task = await api.wait_task(await api.run_once(orch["id"]), {"success", "failed"})
    assert texts(await api.logs(task["last_runs"][0]["run_id"])) == ["from the root"]
    archive = await api.fetch(API, "orchestration", "download", params={"id": orch["id"]})
    assert b"junk.pyc" not in archive.body


async def test_a_python_file_becomes_main_py(api: Api, jp_root_dir: Path) -> None:
    (jp_root_dir / "jobs").mkdir()
    (jp_root_dir / "jobs" / "nightly.py").write_text("print('nightly')\n")
    code, answer = await create(api, "jobs/nightly.py", name="nightly job")
    assert code == 202
    orch = await api.ok("orchestration/get_by_id", {"id": answer["id"]})
    assert orch["name"] == "nightly job" and orch["entrypoint"] == "main.py"


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("", 400, "path: must name a folder"),
        ("/etc", 400, "must be relative to the Jupyter root"),
        ("../outside", 400, "must be relative to the Jupyter root"),
        ("missing", 404, "not found"),
        ("escape", 400, "leads outside the Jupyter root"),
        ("notes.txt", 400, "not a folder, a .py or a .ipynb file"),
        ("linked", 400, "is a link"),
        ("nomain", 400, "main.py"),
        ("a\x00b", 400, "path: must not contain a NUL character"),
        ("project\x00/main.py", 400, "path: must not contain a NUL character"),
        ("x" * 300, 400, "path: has a name of 300 bytes, over the limit of 255"),
        ("d/" * 3000, 400, "path: is 6000 bytes long, over the limit of 4096"),
        ("loop/main.py", 400, "path: 'loop/main.py' cannot be read (a link loop)"),
        ("latin1", 400, "a file name is not UTF-8: '\\udce9t\\udce9.txt'"),
    ],
)
async def test_paths_are_checked(
    api: Api, jp_root_dir: Path, data_dir: Path, path: str, status: int, message: str
) -> None:
    os.symlink("/etc", jp_root_dir / "escape")
    os.symlink("loop", jp_root_dir / "loop")
    (jp_root_dir / "latin1").mkdir()
    (jp_root_dir / "latin1" / "main.py").write_text("print(1)\n")
    (jp_root_dir / "latin1" / os.fsdecode(b"\xe9t\xe9.txt")).write_text("written on Windows")
    (jp_root_dir / "notes.txt").write_text("hi")
    (jp_root_dir / "linked").mkdir()
    (jp_root_dir / "linked" / "main.py").write_text("print(1)\n")
    os.symlink("/etc/passwd", jp_root_dir / "linked" / "secrets")
    (jp_root_dir / "nomain").mkdir()
    (jp_root_dir / "nomain" / "app.py").write_text("print(1)\n")
    code, answer = await create(api, path)
    assert code == status, answer
    assert message in str(answer["message"])
    assert list((data_dir / "orchestrations").iterdir()) == []
    assert list((data_dir / "tmp").iterdir()) == []
