"""What a stopped server left half done is removed at start, whatever its depth; what cannot
be removed is logged and left, and the API answers all the same."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_orch.server.removal import remove_tree

from .conftest import Api


def deep_tree(root: Path, depth: int) -> None:
    """`root/d/d/.../d/x` `depth` folders deep (past PATH_MAX: made through folder fds)."""
    root.mkdir(parents=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            down = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = down
        os.close(os.open("x", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
        os.symlink("/", "link-to-root", dir_fd=fd)  # removed, never followed
    finally:
        os.close(fd)


def test_remove_tree_removes_any_depth_and_reports_instead_of_raising(tmp_path: Path) -> None:
    deep_tree(tmp_path / "deep", 3000)
    (tmp_path / "wide").mkdir()
    for n in range(300):
        (tmp_path / "wide" / f"f{n}").write_text("x")
    try:
        assert remove_tree(tmp_path / "deep") is None
    finally:
        subprocess.run(["rm", "-rf", str(tmp_path / "deep")], check=False)  # if it failed
    assert remove_tree(tmp_path / "wide") is None
    assert remove_tree(tmp_path / "missing") is None
    assert sorted(os.listdir(tmp_path)) == []
    assert os.path.exists("/usr")


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data directory with leftovers: deep ones, and one that cannot be removed (a file
    system mounted inside it)."""
    data = tmp_path / "orch-data"
    deep_tree(data / "orchestrations" / ".tmp-deep", 2100)
    deep_tree(data / "tmp" / "upload-deep", 2100)
    stuck = data / "orchestrations" / ".tmp-stuck" / "mnt"
    stuck.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(stuck)], check=False
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (root needed) for a leftover that stays")
    try:
        yield data
    finally:
        subprocess.run(["umount", "-l", str(stuck)], check=True)
        # Whatever the test found, no deep tree is left for pytest's own clean-up, which
        # recurses (RecursionError).
        assert remove_tree(data) is None


async def test_leftovers_are_removed_at_start_or_logged_and_the_api_answers(
    api: Api, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "jupyter_orch")
    assert await api.ok("orchestration/list_all") == []
    assert sorted(p.name for p in (data_dir / "orchestrations").iterdir()) == [".tmp-stuck"]
    assert list((data_dir / "tmp").iterdir()) == []
    warnings = [r.getMessage() for r in caplog.records if "could not remove" in r.getMessage()]
    assert len(warnings) == 1 and ".tmp-stuck" in warnings[0], warnings
    orch_id = await api.upload({"main.py": "print('still fine')\n"})
    assert (await api.ok("orchestration/get_by_id", {"id": orch_id}))["status"] == "ready"
