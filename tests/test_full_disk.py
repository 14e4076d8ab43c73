"""A full disk: uploads answer 507 and leave nothing behind; a run's end is still recorded.

The data directory is on a small tmpfs mounted for each test (the tests need root, as in CI;
elsewhere they are skipped, saying so), filled up with one file and freed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Api, make_zip, texts
from .servers import end_runs


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 32 MiB tmpfs, unmounted at the end whatever happened."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (root needed): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        end_runs(mount / "orch-data")
        unmounted = subprocess.run(["umount", str(mount)], capture_output=True, check=False)
        if unmounted.returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.fixture
def data_dir(small_disk: Path) -> Path:
    """The extension's data directory, on the small disk."""
    return small_disk / "orch-data"


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill the disk with one file, leaving about `leave` bytes free; the file."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    block = b"\0" * (1 << 16)
    try:
        while os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize > leave + len(block):
            os.write(fd, block)
        if not leave:
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, block[:4096])
    finally:
        os.close(fd)
    return filler


def leftovers(data_dir: Path) -> list[str]:
    """What an upload may have left in the data directory."""
    found = [p.name for p in (data_dir / "tmp").iterdir()]
    found += [p.name for p in (data_dir / "archives").iterdir()]
    found += [p.name for p in (data_dir / "orchestrations").iterdir()]
    return found


@pytest.mark.parametrize("stage", ["receiving", "extracting"])
async def test_an_upload_on_a_full_disk_is_a_507_and_leaves_nothing(
    api: Api, small_disk: Path, data_dir: Path, stage: str
) -> None:
    await api.ok("orchestration/list_all")  # the server has started: its folders exist
    if stage == "receiving":  # the upload itself does not fit
        files: dict[str, str | bytes] = {
            "main.py": "print('hi')\n",
            "data.bin": os.urandom(1 << 20),
        }
        filler = fill(small_disk)
    else:  # it fits, but what it holds does not (hex digits zip to about half)
        files = {"main.py": "print('hi')\n", "data.txt": os.urandom(2 << 20).hex()}
        filler = fill(small_disk, leave=3 << 20)
    response = await api.upload_raw(make_zip(files))
    assert response.code == 507, response.body
    assert "disk is full" in json.loads(response.body)["message"]
    assert leftovers(data_dir) == []
    assert await api.ok("orchestration/list_all") == []
    filler.unlink()
    await api.upload(files)  # room again: the same upload goes through


# Prints a line every 10 ms until the flag file (argument) exists, then a last line.
WAIT_FOR_FLAG = """
import os, time, jupyter_orch
flag = jupyter_orch.task_args()["flag"]
print("started", flush=True)
while not os.path.exists(flag):
    print("x" * 200, flush=True)
    time.sleep(0.01)
print("bye", flush=True)
"""


async def test_a_run_that_ends_on_a_full_disk_is_recorded_with_its_reason(
    api: Api, small_disk: Path, data_dir: Path, tmp_path: Path
) -> None:
    flag = tmp_path / "flag"  # not on the small disk
    task_id = await api.run_once(await api.upload({"main.py": WAIT_FOR_FLAG}), {"flag": str(flag)})
    task = await api.wait_task(task_id, {"started"})
    run_id = task["last_runs"][0]["run_id"]
    await api.wait_for_log(run_id, "started")
    run_dir = data_dir / "runs" / run_id
    # The disk fills up while the run goes on, then has room again: the run never stopped,
    # and its log says how much it lost.
    filler = fill(small_disk)
    await log_stops_growing(run_dir / "log")
    filler.unlink()
    lines = texts(await api.wait_for_log(run_id, "bytes of output lost"))
    lost = [line for line in lines if line.startswith("jupyter_orch:")]
    assert lost, [line[:80] for line in (await api.logs(run_id)) if "lost" in line]
    assert lost[0].endswith(" bytes of output lost: No space left on device")
    # Full again, and the run ends: its end is recorded all the same, with what was lost.
    filler = fill(small_disk)
    await log_stops_growing(run_dir / "log")
    flag.touch()
    deadline = time.monotonic() + 30
    while not (run_dir / "exit.json").exists():
        assert time.monotonic() < deadline, "no exit record on the full disk"
        await asyncio.sleep(0.05)
    filler.unlink()
    task = await api.wait_task(task_id, {"success", "failed"})
    assert task["status"] == "success"
    run = await api.ok("task/get_run_details", {"task": task_id, "pod_id": run_id})
    assert run["status"] == "success"
    assert run["reason"].startswith("exit code 0; ")
    assert run["reason"].endswith(" bytes of output lost: No space left on device")
    assert (run_dir / "supervisor.err").read_bytes() == b""  # it did not crash
    assert texts(await api.logs(run_id))[0] == "started"  # and every line is whole


async def log_stops_growing(log: Path) -> None:
    """Wait until a log has not grown for half a second (its disk is full)."""
    size, still_since = -1, time.monotonic()
    deadline = time.monotonic() + 20
    while time.monotonic() - still_since < 0.5:
        assert time.monotonic() < deadline, "the log kept growing on a full disk"
        if log.stat().st_size != size:
            size, still_since = log.stat().st_size, time.monotonic()
        await asyncio.sleep(0.05)
