"""jupyter_orch with a real JupyterHub: users' servers, the hub service, runs as their owner."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pwd
import subprocess
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from .browser import CHROMIUM, NO_CHROMIUM, ROOT, has_playwright, run_steps
from .jhub import PASSWORD, Hub, UnixUsers, build_wheel, read_json, skip_reason, users_venv

pytestmark = [pytest.mark.skipif(skip_reason() is not None, reason=str(skip_reason()))]

ALICE, BOB, ADMIN = "orch-alice", "orch-bob", "orch-admin"


def make_zip(files: dict[str, str]) -> bytes:
    """A zip archive of `files` (name -> text)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The users' environment, with a wheel of this tree."""
    return users_venv(build_wheel(tmp_path_factory.mktemp("wheel")))


@pytest.fixture(scope="module")
def unix_users() -> Iterator[UnixUsers]:
    """alice, bob and an admin as Unix accounts, removed after."""
    users = UnixUsers([ALICE, BOB, ADMIN]).create()
    try:
        bob = pwd.getpwnam(BOB)
        secret = Path(bob.pw_dir, "secret.txt")
        secret.write_text("bob's secret\n")
        os.chown(secret, bob.pw_uid, bob.pw_gid)
        os.chmod(secret, 0o600)
        yield users
    finally:
        users.remove()


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, venv: Path, unix_users: UnixUsers
) -> Iterator[Hub]:
    """A running Hub with the orchestration service; stopped (with its runs) after."""
    hub = Hub(tmp_path_factory.mktemp("hub"), venv, [ALICE, BOB, ADMIN], [ADMIN], service=True)
    try:
        yield hub.start()
    finally:
        hub.stop()
        unix_users.remove()  # the users' servers and anything they started
        hub.remove_data()


def test_users_servers_have_the_extension(hub: Hub) -> None:
    hub.start_server(ALICE)
    token = hub.token_for(ALICE)
    answer = requests.post(
        f"{hub.user_url(ALICE)}orch/v1/api/workspaces/list",
        json={},
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def service_post(hub: Hub, token: str, endpoint: str, body: Any = None) -> requests.Response:
    """POST to the hub service's API (through the Hub's proxy) with a token."""
    return requests.post(
        f"{hub.service_url()}orch/v1/api/{endpoint}",
        json=body or {},
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )


def test_the_service_knows_hub_users_and_serves_only_its_api(hub: Hub) -> None:
    alice = hub.token_for(ALICE)
    answer = service_post(hub, alice, "engine/info")
    assert answer.status_code == 200, answer.text
    info = answer.json()
    assert (info["kind"], info["name"], info["user"]) == ("hub-service", "orch", ALICE)
    # no token, or a token without access:services!service=orch: refused
    assert service_post(hub, "", "engine/info").status_code == 403
    assert service_post(hub, hub.token, "engine/info").status_code == 403
    # the Jupyter APIs of the service's own process are nobody's: not even an admin's
    admin = hub.token_for(ADMIN)
    for path in ("api/kernels", "api/contents", "api/terminals", "api/sessions"):
        for token in (alice, admin):
            answer = requests.get(
                f"{hub.service_url()}{path}",
                headers={"Authorization": f"token {token}"},
                timeout=30,
            )
            assert answer.status_code in (403, 404), (path, answer.status_code, answer.text)


class UserServer:
    """A user's own server through the Hub's proxy (or, `direct`, the hub service itself),
    with one of the user's tokens."""

    def __init__(self, hub: Hub, user: str, direct: bool = False) -> None:
        if not direct:
            hub.start_server(user)
        self.user = user
        base = hub.service_url() if direct else hub.user_url(user)
        self.url = f"{base}orch/v1/api"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {hub.token_for(user)}"

    def post(self, endpoint: str, body: Any = None, status: int = 200) -> Any:
        """POST JSON, expect `status`; the decoded answer."""
        answer = self.session.post(f"{self.url}/{endpoint}", json=body or {}, timeout=60)
        assert answer.status_code == status, (endpoint, answer.status_code, answer.text)
        return answer.json()

    def upload(self, files: dict[str, str], name: str) -> str:
        """Upload a zip of `files`; the orchestration's id."""
        answer = self.session.post(
            f"{self.url}/orchestration/upload",
            files=[
                ("file", ("orch.zip", make_zip(files), "application/octet-stream")),
                ("metadata", ("metadata", json.dumps({"workspace_id": 1, "name": name}))),
            ],
            timeout=60,
        )
        assert answer.status_code == 202, answer.text
        orch_id: str = answer.json()["id"]
        return orch_id

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 90.0) -> Any:
        """Poll `check` until it returns something true."""
        deadline = time.monotonic() + timeout
        while not (value := check()):
            assert time.monotonic() < deadline, f"{self.user}: timed out waiting for {what}"
            time.sleep(0.3)
        return value

    def ready(self, orch_id: str) -> None:
        """Wait until an orchestration is packaged."""
        self.wait(
            "packaging",
            lambda: self.post("orchestration/get_by_id", {"id": orch_id})["status"] == "ready",
        )

    def runs(self, task_id: str) -> list[dict[str, Any]]:
        """A task's runs."""
        runs: list[dict[str, Any]] = self.post("task/list_task_runs", {"task_id": task_id})
        return runs

    def ended_run(self, task_id: str) -> dict[str, Any]:
        """The first run of a task, once it has ended."""
        ended = {"success", "failure", "killed", "timed_out"}
        runs = self.wait("a run", lambda: [r for r in self.runs(task_id) if r["status"] in ended])
        run: dict[str, Any] = runs[0]
        return run

    def logs(self, run_id: str) -> list[str]:
        """A run's log lines (the text after the stamp)."""
        lines = self.post("task/get_logs_for_run", {"id": run_id})["logs"]
        return [line.split(" ", 3)[3] for line in lines]


@pytest.fixture
def alice(hub: Hub) -> UserServer:
    """alice's server, started through the Hub (if it is not running)."""
    return UserServer(hub, ALICE)


def test_a_users_server_passes_everything_on_to_the_service(hub: Hub, alice: UserServer) -> None:
    info = alice.post("engine/info")
    assert (info["kind"], info["name"], info["user"]) == ("hub-service", "orch", ALICE)
    orch_id = alice.upload({"main.py": WHO}, "hello")
    alice.ready(orch_id)
    task = alice.post(
        "task/run_once", {"orch_id": orch_id, "workspace_id": 1, "json": {}}, status=201
    )
    run = alice.ended_run(task["id"])
    assert run["status"] == "success", alice.logs(run["run_id"])
    # the run lives in the service's data directory, not in alice's server
    assert (hub.data_dir / "runs" / run["run_id"]).is_dir()
    # a followed log streams through alice's server
    answer = alice.session.get(
        f"{alice.url}/task/follow_logs", params={"id": run["run_id"]}, stream=True, timeout=60
    )
    assert answer.status_code == 200, answer.text
    messages = [json.loads(line) for line in answer.iter_lines() if line]
    assert any("hello from" in str(m) for m in messages), messages

    # the run was alice's: her uid, gid and groups, her home; bob's files closed to it
    alice_account = pwd.getpwnam(ALICE)
    printed = alice.logs(run["run_id"])
    who = json.loads(printed[1])
    assert (who["uid"], who["gid"]) == (alice_account.pw_uid, alice_account.pw_gid)
    assert who["groups"] == sorted(os.getgrouplist(ALICE, alice_account.pw_gid))
    assert (who["home"], who["user"]) == (alice_account.pw_dir, ALICE)
    assert who["bob"] == "PermissionError", who
    # the service's own token is nowhere in the run's environment
    token = service_token(hub)
    assert token and not any(token in value for value in who["env"].values())


WHO = f"""
import json, os
print("hello from", os.getuid(), flush=True)
try:
    open(os.path.expanduser("~{BOB}/secret.txt")).read()
    bob = "read"
except PermissionError:
    bob = "PermissionError"
print(json.dumps({{"uid": os.getuid(), "gid": os.getgid(), "groups": sorted(os.getgroups()),
                  "home": os.environ["HOME"], "user": os.environ["USER"], "bob": bob,
                  "env": dict(os.environ)}}))
"""


def service_token(hub: Hub) -> str:
    """The hub service's own API token, read from its process's environment."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            if b"hub-service" in argv and f"--OrchApp.data_dir={hub.data_dir}".encode() in argv:
                environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
                for item in environ:
                    if item.startswith(b"JUPYTERHUB_API_TOKEN="):
                        return item.partition(b"=")[2].decode()
    raise AssertionError("the hub service's process was not found")


def uid_of(pid: int) -> int:
    """The real uid of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid in /proc/{pid}/status")


LOOP = "import time\nwhile True:\n    print('beat', flush=True)\n    time.sleep(0.3)\n"


def test_schedules_and_runs_outlive_the_users_server_and_a_hub_restart(
    hub: Hub, alice: UserServer
) -> None:
    ticker = alice.upload({"main.py": "print('tick')\n"}, "ticker")
    looper = alice.upload({"main.py": LOOP}, "looper")
    alice.ready(ticker)
    alice.ready(looper)
    scheduled = alice.post(
        "task/run_scheduled",
        {"orch_id": ticker, "workspace_id": 1, "schedule": "*/2 * * * * *", "json": {}},
        status=201,
    )["id"]
    continuous = alice.post(
        "task/run_continuously", {"orch_id": looper, "workspace_id": 1, "json": {}}, status=201
    )["id"]
    alice.wait("a scheduled run", lambda: alice.runs(scheduled))
    (loop_run,) = alice.wait("the continuous run", lambda: alice.runs(continuous))
    loop_id = loop_run["run_id"]
    # the run's process (and its process group) is alice's
    child = read_json(hub.data_dir / "runs" / loop_id / "child.json")["pid"]
    assert uid_of(child) == pwd.getpwnam(ALICE).pw_uid

    # the culler's way: alice's server is stopped through the Hub's API
    hub.stop_server(ALICE)
    direct = UserServer(hub, ALICE, direct=True)  # alice's token, straight to the service
    before = len(direct.runs(scheduled))
    direct.wait("two more scheduled runs", lambda: len(direct.runs(scheduled)) >= before + 2)
    beats = len(direct.logs(loop_id))
    direct.wait("the continuous run's log to grow", lambda: len(direct.logs(loop_id)) > beats)
    assert [r["run_id"] for r in direct.runs(continuous)] == [loop_id]

    # the Hub restarts (and with it the service): the runs are re-attached, not restarted
    hub.restart()
    direct = UserServer(hub, ALICE, direct=True)
    (again,) = direct.runs(continuous)
    assert (again["run_id"], again["status"]) == (loop_id, "running")
    beats = len(direct.logs(loop_id))
    direct.wait("the re-attached run's log to grow", lambda: len(direct.logs(loop_id)) > beats)
    before = len(direct.runs(scheduled))
    direct.wait("scheduled runs after the restart", lambda: len(direct.runs(scheduled)) > before)

    direct.post("task/pause", {"id": scheduled, "pause": True}, status=202)
    direct.post("task/kill", {"id": continuous}, status=202)
    direct.wait(
        "the continuous run to end",
        lambda: direct.runs(continuous)[0]["status"] != "running",
    )


def as_user(hub: Hub, user: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run a command of the users' environment as `user`, in their home."""
    home = pwd.getpwnam(user).pw_dir
    return subprocess.run(
        ["runuser", "-u", user, "--", "env", "-i", f"HOME={home}", "PATH=/usr/bin:/bin", *argv],
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_users_files_and_terminal_reach_the_service(hub: Hub, alice: UserServer) -> None:
    account = pwd.getpwnam(ALICE)
    for folder in ("report", "report2"):
        path = Path(account.pw_dir, folder)
        path.mkdir()
        (path / "main.py").write_text(f"print('{folder} ran')\n")
        for item in (path, path / "main.py"):
            os.chown(item, account.pw_uid, account.pw_gid)
    # the sidebar's Create orchestration: the folder is zipped in alice's server, where it is
    made = alice.post("orchestration/create_from_path", {"path": "report2"}, status=202)
    alice.ready(made["id"])
    assert alice.post("orchestration/get_by_id", {"id": made["id"]})["name"] == "report2"
    answer = alice.session.post(
        f"{alice.url}/orchestration/create_from_path", json={"path": "../"}, timeout=60
    )
    assert answer.status_code == 400, answer.text
    # `jupyter orch` in alice's terminal, through her server, with one of her tokens
    cli = str(hub.venv / "bin" / "jupyter-orch")
    where = ["--url", hub.user_url(ALICE), "--token", hub.token_for(ALICE)]
    done = as_user(hub, ALICE, cli, "upload", "report", "--wait", "--json", *where)
    assert done.returncode == 0, done.stdout + done.stderr
    orch_id = json.loads(done.stdout)["id"]
    assert alice.post("orchestration/get_by_id", {"id": orch_id})["status"] == "ready"
    done = as_user(hub, ALICE, cli, "orchestrations", "--json", *where)
    assert done.returncode == 0, done.stdout + done.stderr
    names = {o["name"] for o in json.loads(done.stdout)}
    assert {"report", "report2"} <= names, names


@pytest.fixture
def bob(hub: Hub) -> UserServer:
    """bob's server, started through the Hub (if it is not running)."""
    return UserServer(hub, BOB)


def test_users_see_only_their_own_and_admins_see_everything(
    hub: Hub, alice: UserServer, bob: UserServer
) -> None:
    made = {}
    for client in (alice, bob):
        orch_id = client.upload({"main.py": "print('mine')\n"}, f"{client.user}-orch")
        client.ready(orch_id)
        task = client.post(
            "task/run_once",
            {"orch_id": orch_id, "workspace_id": 1, "name": f"{client.user}-task", "json": {}},
            status=201,
        )
        run = client.ended_run(task["id"])
        made[client.user] = {"orch": orch_id, "task": task["id"], "run": run["run_id"]}
    for me, other in ((alice, bob), (bob, alice)):
        mine, theirs = made[me.user], made[other.user]
        names = [t["name"] for t in me.post("task/list", {})]
        assert f"{me.user}-task" in names and f"{other.user}-task" not in names, names
        orchs = [o["id"] for o in me.post("orchestration/list", {"workspace_id": 1})]
        assert mine["orch"] in orchs and theirs["orch"] not in orchs
        for endpoint, body in (
            ("task/get_by_id", {"id": theirs["task"]}),
            ("task/list_task_runs", {"task_id": theirs["task"]}),
            ("task/get_run_details", {"task": theirs["task"], "pod_id": theirs["run"]}),
            ("task/get_logs_for_run", {"id": theirs["run"]}),
            ("task/kill", {"id": theirs["task"]}),
            ("task/pause", {"id": theirs["task"], "pause": True}),
            ("task/run_now", {"id": theirs["task"]}),
            ("orchestration/get_by_id", {"id": theirs["orch"]}),
            ("orchestration/get_build_log", {"id": theirs["orch"]}),
            ("task/run_once", {"orch_id": theirs["orch"], "workspace_id": 1, "json": {}}),
        ):
            answer = me.session.post(f"{me.url}/{endpoint}", json=body, timeout=60)
            assert answer.status_code == 404, (me.user, endpoint, answer.status_code, answer.text)
        for path, params in (
            ("task/follow_logs", {"id": theirs["run"]}),
            ("task/get_run_output", {"id": theirs["run"]}),
            ("orchestration/download", {"id": theirs["orch"]}),
        ):
            answer = me.session.get(f"{me.url}/{path}", params=params, timeout=60)
            assert answer.status_code == 404, (me.user, path, answer.status_code, answer.text)
    # the Hub's admin sees both users' tasks (straight at the service, with an admin's token)
    admin = UserServer(hub, ADMIN, direct=True)
    names = [t["name"] for t in admin.post("task/list", {})]
    assert f"{ALICE}-task" in names and f"{BOB}-task" in names, names
    for user in (ALICE, BOB):
        assert admin.post("task/get_by_id", {"id": made[user]["task"]})["name"] == f"{user}-task"


OUTPUT = ROOT / "test-output" / "hub-browser"


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
@pytest.mark.skipif(
    not has_playwright(),
    reason="playwright-core is not installed (jlpm install in labextension/)",
)
@pytest.mark.timeout(300)
def test_a_user_logs_in_and_the_sidebar_lists_only_their_tasks(
    hub: Hub, alice: UserServer, bob: UserServer
) -> None:
    for client in (alice, bob):
        orch_id = client.upload({"main.py": "print('listed')\n"}, f"{client.user}-listed")
        client.ready(orch_id)
        client.post(
            "task/run_once",
            {"orch_id": orch_id, "workspace_id": 1, "name": f"{client.user}-sidebar", "json": {}},
            status=201,
        )
    config = {
        "hub": f"{hub.url}/",
        "user": ALICE,
        "password": PASSWORD,
        "output": str(OUTPUT),
        "mine": [f"{ALICE}-sidebar"],
        "others": [f"{BOB}-sidebar", f"{BOB}-task"],
        "engine": "Engine: JupyterHub service orch",
    }
    run_steps("hub-sidebar.mjs", config, 280, hub.log)


NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "c1",
            "metadata": {},
            "outputs": [],
            "source": "import os\nprint('notebook as', os.getuid())",
        }
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


def test_a_notebook_run_as_its_owner_keeps_its_executed_copy(hub: Hub, alice: UserServer) -> None:
    orch_id = alice.upload({"main.ipynb": json.dumps(NOTEBOOK)}, "notebook")
    alice.ready(orch_id)
    task = alice.post(
        "task/run_once", {"orch_id": orch_id, "workspace_id": 1, "json": {}}, status=201
    )
    run = alice.ended_run(task["id"])
    assert run["status"] == "success", alice.logs(run["run_id"])
    uid = pwd.getpwnam(ALICE).pw_uid
    assert f"notebook as {uid}" in alice.logs(run["run_id"])
    answer = alice.session.get(
        f"{alice.url}/task/get_run_output", params={"id": run["run_id"]}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    outputs = answer.json()["cells"][0]["outputs"]
    assert any(f"notebook as {uid}" in "".join(o.get("text", "")) for o in outputs), outputs
    # the executed copy is alice's own, and no one else's
    copy = (hub.data_dir / "runs" / run["run_id"] / "output.ipynb").stat()
    assert (copy.st_uid, copy.st_mode & 0o777) == (uid, 0o600)
