"""Runs as their owner's Unix account (`_proc/account.py`), under a real supervisor as root."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_orch._proc import runfiles, supervise

from .jhub import SYSTEM_PYTHON, UnixUsers

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("useradd") is None or not Path(SYSTEM_PYTHON).exists(),
    reason="runs as another account need root, useradd and Debian's python3",
)

ALICE, BOB = "orch-acct-alice", "orch-acct-bob"
WHO = """
import json, os
print(json.dumps({"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
                  "groups": sorted(os.getgroups()), "home": os.environ["HOME"],
                  "user": os.environ["USER"], "cwd": os.getcwd()}))
"""


@pytest.fixture(scope="module")
def users() -> Iterator[dict[str, pwd.struct_passwd]]:
    """Two Unix accounts; bob has a private file in his home."""
    accounts = UnixUsers([ALICE, BOB]).create()
    try:
        bob = pwd.getpwnam(BOB)
        secret = Path(bob.pw_dir, "secret.txt")
        secret.write_text("bob's secret\n")
        os.chown(secret, bob.pw_uid, bob.pw_gid)
        os.chmod(secret, 0o600)
        yield {ALICE: pwd.getpwnam(ALICE), BOB: bob}
    finally:
        accounts.remove()


@pytest.fixture
def place(passable_dir: Path) -> Path:
    """A folder others may pass through."""
    return passable_dir


def supervise_as(place: Path, user: str, code: str, **spec: Any) -> tuple[dict[str, Any], Path]:
    """Run `code` (Debian's Python) as `user` under a supervisor to its end."""
    source, run_dir = place / "source", place / "run"
    source.mkdir()
    run_dir.mkdir()
    (source / "main.py").write_text(code, encoding="utf-8")
    full = {
        "argv": [SYSTEM_PYTHON, "-u", "main.py"],
        "env": {"PATH": "/usr/bin:/bin", "HOME": "/root"},
        "source": str(source),
        "cwd": "",
        "timeout": 60,
        "grace": 1.0,
        "max_line": 16384,
        "files": {runfiles.ARGS: "{}"},
        "user": user,
        **spec,
    }
    runfiles.write_spec(str(run_dir), full)
    result = subprocess.run(
        supervise.command(sys.executable, str(run_dir)),
        check=False,
        capture_output=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    return json.loads((run_dir / runfiles.EXIT).read_text()), run_dir


def printed(run_dir: Path) -> list[str]:
    """What the run printed, line by line."""
    lines = (run_dir / runfiles.LOG).read_text().splitlines()
    return [line.split(" ", 3)[3] for line in lines]


def test_a_run_executes_as_its_owner_with_files_only_they_can_read(
    users: dict[str, pwd.struct_passwd], place: Path
) -> None:
    alice = users[ALICE]
    record, run_dir = supervise_as(place, ALICE, WHO)
    assert record["status"] == "success", printed(run_dir)
    who = json.loads(printed(run_dir)[-1])
    assert (who["uid"], who["euid"], who["gid"]) == (alice.pw_uid, alice.pw_uid, alice.pw_gid)
    assert who["groups"] == sorted(os.getgrouplist(ALICE, alice.pw_gid))
    assert 0 not in who["groups"]
    assert (who["home"], who["user"]) == (alice.pw_dir, ALICE)
    assert who["cwd"] == str(run_dir / runfiles.WORK)
    # the run's folder: root's, passable, not listable; what the run uses: alice's alone
    folder = run_dir.stat()
    assert (folder.st_uid, stat.S_IMODE(folder.st_mode)) == (0, 0o711)
    for path, mode in ((run_dir / runfiles.WORK, 0o700), (run_dir / runfiles.ARGS, 0o600)):
        info = path.stat()
        assert (info.st_uid, info.st_gid) == (alice.pw_uid, alice.pw_gid), path
        assert stat.S_IMODE(info.st_mode) == mode, path
    assert (run_dir / runfiles.WORK / "main.py").stat().st_uid == alice.pw_uid
    # the records and the log stay the supervisor's; the spec (with the run's token) private
    for name in (runfiles.LOG, runfiles.SPEC_JSON, runfiles.SPEC_BIN):
        info = (run_dir / name).stat()
        assert info.st_uid == 0 and stat.S_IMODE(info.st_mode) == 0o600, name


def test_a_run_cannot_read_another_users_files(
    users: dict[str, pwd.struct_passwd], place: Path
) -> None:
    secret = Path(users[BOB].pw_dir, "secret.txt")
    code = f"""
try:
    print(open({str(secret)!r}).read())
except PermissionError as exc:
    print("refused:", exc.strerror)
"""
    record, run_dir = supervise_as(place, ALICE, code)
    assert record["status"] == "success", printed(run_dir)
    assert printed(run_dir) == ["refused: Permission denied"]


@pytest.mark.parametrize(
    ("user", "reason"),
    [
        ("orch-nobody-such", "'orch-nobody-such' has no Unix account here"),
        ("root", "'root' is a root account: refused"),
    ],
)
def test_an_owner_without_an_account_fails_the_run_and_nothing_runs(
    users: dict[str, pwd.struct_passwd], place: Path, user: str, reason: str
) -> None:
    marker = place / "ran"
    code = f"open({str(marker)!r}, 'w').close()\n"
    record, run_dir = supervise_as(place, user, code)
    assert record["status"] == "failure"
    assert reason in record["reason"]
    assert reason in (run_dir / runfiles.LOG).read_text()
    assert not marker.exists()
