"""The SDK: discovery, the object model, displays and errors, against a live server.

The sync client runs in a worker thread (`asyncio.to_thread`) so that the test server, which
shares this event loop, keeps answering; the kernel tests run it as users do, in a kernel that
the server itself started.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import pickle
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
import requests

import jupyter_orch
from jupyter_orch.bundle import read_upload
from jupyter_orch.sdk import discovery
from jupyter_orch.sdk.client import Client
from jupyter_orch.sdk.errors import (
    AuthorizationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    ServerNotFound,
    ServerUnreachable,
)
from jupyter_orch.sdk.logs import LogLine, LogLines
from jupyter_orch.sdk.resources import TaskList

from .conftest import make_zip
from .kernels import StartKernel, server_url

HELLO = "import jupyter_orch\nprint('hello,', jupyter_orch.task_args().get('name', 'world'))\n"
FAR = "0 0 1 1 *"  # a schedule that does not fire during a test


# -- a kernel started by the server ------------------------------------------------------------


@pytest.fixture
def sdk(jp_serverapp: Any, jp_fetch: Any) -> Iterator[Client]:
    """A client of the test server, given its URL and token (use it from a worker thread).

    `jp_fetch` is asked for because it starts the server's HTTP listener.
    """
    client = Client(url=server_url(jp_serverapp), token=jp_serverapp.identity_provider.token)
    yield client
    client.close()


def folder_with(tmp_path: Path, files: dict[str, str]) -> Path:
    """A folder holding `files`."""
    folder = tmp_path / "code"
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


# -- discovery ---------------------------------------------------------------------------------


def python(code: str) -> str:
    """What a fresh interpreter prints running `code`."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout


def write_server_file(folder: Path, pid: int, url: str, token: str = "t") -> None:
    """A runtime file as a Jupyter server writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    info = {"url": url, "token": token, "pid": pid, "base_url": "/"}
    (folder / f"jpserver-{pid}.json").write_text(json.dumps(info), encoding="utf-8")


def test_explicit_url_takes_the_token_of_the_running_server_with_that_url(tmp_path: Path) -> None:
    env = {"JUPYTER_RUNTIME_DIR": str(tmp_path)}
    write_server_file(tmp_path, 1, "http://127.0.0.1:9999/lab/", token="secret")
    found = discovery.find_server("http://127.0.0.1:9999/lab", environ=env)
    assert found == discovery.ServerInfo(
        "http://127.0.0.1:9999/lab/orch", "secret", "the url argument"
    )
    api = discovery.find_server("http://h:1/x/orch/", "tok", env)
    assert (api.api_url, api.token) == ("http://h:1/x/orch", "tok")
    assert discovery.find_server("http://h:1/orch/v1/api", "", env).api_url == "http://h:1/orch"


def test_inside_a_run_its_own_url_and_token_come_first(tmp_path: Path) -> None:
    write_server_file(tmp_path, os.getpid(), "http://127.0.0.1:1/")
    env = {
        "JUPYTER_RUNTIME_DIR": str(tmp_path),
        "JUPYTER_ORCH_RUN_ID": "r1",
        "JUPYTER_ORCH_URL": "http://127.0.0.1:2/base/orch",
        "JUPYTER_ORCH_TOKEN": "run-token",
    }
    found = discovery.find_server(environ=env)
    assert found == discovery.ServerInfo(
        "http://127.0.0.1:2/base/orch", "run-token", "inside run r1"
    )
    del env["JUPYTER_ORCH_RUN_ID"]
    assert "JUPYTER_ORCH_URL in the environment" in discovery.find_server(environ=env).source


def test_the_server_that_started_this_process_wins_over_newer_ones(tmp_path: Path) -> None:
    write_server_file(tmp_path, os.getppid(), "http://127.0.0.1:3/parent/", token="p")
    write_server_file(tmp_path, 1, "http://127.0.0.1:4/newest/", token="n")
    found = discovery.find_server(environ={"JUPYTER_RUNTIME_DIR": str(tmp_path)})
    assert (found.api_url, found.token) == ("http://127.0.0.1:3/parent/orch", "p")
    assert f"(pid {os.getppid()})" in found.source


def test_newest_live_server_is_the_last_resort(tmp_path: Path) -> None:
    dead = int(python("import os; print(os.getpid())"))
    write_server_file(tmp_path, dead, "http://127.0.0.1:5/dead/")
    write_server_file(tmp_path, 1, "http://127.0.0.1:6/alive/", token="")
    env = {"JUPYTER_RUNTIME_DIR": str(tmp_path), "JUPYTERHUB_API_TOKEN": "hub"}
    found = discovery.find_server(environ=env)
    # A JupyterHub server's runtime file has no token: the hub's token is the one that works.
    assert (found.api_url, found.token) == ("http://127.0.0.1:6/alive/orch", "hub")
    assert found.source == "the newest running Jupyter server (pid 1)"


def test_jupyterhub_variables(tmp_path: Path) -> None:
    env = {
        "JUPYTER_RUNTIME_DIR": str(tmp_path),
        "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:8888/user/ada/",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/ada/",
        "JUPYTERHUB_API_TOKEN": "hub-token",
    }
    found = discovery.find_server(environ=env)
    assert found == discovery.ServerInfo(
        "http://127.0.0.1:8888/user/ada/orch", "hub-token", "JupyterHub's environment"
    )
    env["JUPYTERHUB_SERVICE_URL"] = "http://[::]:8888"
    assert discovery.find_server(environ=env).api_url == "http://[::1]:8888/user/ada/orch"


def test_nothing_found_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ServerNotFound) as caught:
        discovery.find_server(environ={"JUPYTER_RUNTIME_DIR": str(tmp_path)})
    message = str(caught.value)
    assert len(caught.value.attempts) == 4
    for words in ("JUPYTER_ORCH_URL is not set", f"pids {os.getpid()}, ", "JUPYTERHUB_SERVICE_URL"):
        assert words in message
    assert f"no live jpserver-*.json in {tmp_path}" in message
    assert "Client(url=..., token=...)" in message


def test_import_stays_cheap_and_the_sdk_comes_on_first_use() -> None:
    code = (
        "import sys, jupyter_orch\n"
        "print(sorted(m for m in ('requests', 'IPython', 'jupyter_server') if m in sys.modules))\n"
        "jupyter_orch.Client\n"
        "print('requests' in sys.modules, jupyter_orch.Client.__module__)\n"
    )
    out = python(code).splitlines()
    assert out == ["[]", "True jupyter_orch.sdk.client"]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = jupyter_orch.nope  # type: ignore[attr-defined]


# -- Wallaroo's Client arguments -----------------------------------------------------------------

NOWHERE = "http://127.0.0.1:9/"  # a URL never asked: these clients make no request


def test_wallaroos_auth_types_are_accepted_and_change_nothing() -> None:
    for auth_type in (None, "sso", "SSO", "user_password", "none", "test_auth", "token", "orch"):
        wl = Client(url=NOWHERE, token="t", auth_type=auth_type)
        assert wl.auth.auth_header() == wl.auth_header() == {"Authorization": "token t"}
    accepted = "'none', 'sso', 'user_password', 'test_auth', 'token', 'orch' or None"
    with pytest.raises(ValueError, match=f"auth_type: one of {accepted}, as in Wallaroo's SDK"):
        Client(url=NOWHERE, token="t", auth_type="kerberos")
    assert Client(url=NOWHERE, token="").auth.auth_header() == {}  # a server without a token
    assert "s3cr3t" not in repr(Client(url=NOWHERE, token="s3cr3t").auth)


def test_api_endpoint_is_the_base_of_the_rest_paths() -> None:
    wl = Client(
        api_endpoint="http://127.0.0.1:9/lab/",
        auth_endpoint="http://127.0.0.1:9/auth",
        auth_type="sso",
        interactive=False,
        token="t",
    )
    assert wl.api_endpoint == wl.api_url == "http://127.0.0.1:9/lab/orch"
    assert f"{wl.api_endpoint}/v1/api/task/run_once" == wl._transport.url("task/run_once")
    same = Client(api_endpoint="http://h:1/orch/v1/api", url="http://h:1", token="")
    assert same.api_endpoint == "http://h:1/orch"
    with pytest.raises(ValueError, match="name different servers"):
        Client(api_endpoint="http://a:1/", url="http://b:1/", token="")
    # Wallaroo's second argument is request_timeout: a token there is a mistake, said plainly
    with pytest.raises(TypeError, match=r"by name, Client\(url=\.\.\., token=\.\.\.\)"):
        Client(NOWHERE, "a-token")  # type: ignore[arg-type]


def test_request_timeout_bounds_each_request() -> None:
    assert Client(url=NOWHERE, token="").request_timeout == 120.0
    assert Client(url=NOWHERE, token="")._transport.timeout == (10.0, 120.0)
    wl = Client(api_endpoint=NOWHERE, request_timeout=30, token="")
    assert (wl.request_timeout, wl._transport.timeout) == (30.0, (10.0, 30.0))
    assert Client(url=NOWHERE, token="", timeout=2)._transport.timeout == (2.0, 2.0)
    for bad in (0, -1, "soon"):
        with pytest.raises((ValueError, TypeError)):
            Client(url=NOWHERE, token="", request_timeout=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not two different values"):
        Client(url=NOWHERE, token="", request_timeout=5, timeout=6)
    # a server that takes the connection and never answers: given up after request_timeout
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        slow = Client(api_endpoint=f"http://127.0.0.1:{port}/", request_timeout=0.5, token="")
        start = time.monotonic()
        with pytest.raises(ServerUnreachable, match="timed out"):
            slow.list_workspaces()
        assert time.monotonic() - start < 5


async def test_rest_calls_with_requests_as_wallaroos_tutorials_write_them(
    jp_serverapp: Any, jp_fetch: Any
) -> None:
    def scenario() -> None:
        # no token given: the one of the running server at that URL is found
        wl = Client(api_endpoint=server_url(jp_serverapp), auth_type="sso", request_timeout=60)
        assert wl.api_endpoint == server_url(jp_serverapp) + "orch"
        headers = wl.auth.auth_header()
        assert headers == {"Authorization": f"token {jp_serverapp.identity_provider.token}"}

        data = make_zip({"main.py": HELLO})
        orch = requests.post(
            f"{wl.api_endpoint}/v1/api/orchestration/upload",
            headers=headers,
            files=[
                ("file", ("hello.zip", data, "application/octet-stream")),
                ("metadata", ("metadata", '{"workspace_id": 1}', "application/json")),
            ],
        ).json()
        body = {"workspace_id": 1, "orch_id": orch["id"], "json": {"name": "REST"}}
        url = f"{wl.api_endpoint}/v1/api/task/run_once"
        task = requests.post(url, headers=headers, json=body).json()
        run = wl.get_task_by_id(task["id"]).first_run(timeout=60).wait(timeout=60)
        url = f"{wl.api_endpoint}/v1/api/task/get_logs_for_run"
        logs = requests.post(url, headers=headers, json={"id": run.id()}).json()["logs"]
        assert len(logs) == 1 and logs[0].endswith(" stdout F hello, REST")
        assert run.logs() == logs  # the SDK's lines are those very strings
        refused = requests.post(url, json={"id": run.id()})
        assert refused.status_code == 403

    await asyncio.to_thread(scenario)


# -- the object model ----------------------------------------------------------------------------


async def test_upload_run_once_wait_logs_and_listings(sdk: Client, tmp_path: Path) -> None:
    folder = folder_with(tmp_path, {"main.py": HELLO + "print(open('data/x.txt').read())\n"})
    folder_with(tmp_path, {"data/x.txt": "artifact", "__pycache__/junk.pyc": "x"})

    def scenario() -> None:
        orch = sdk.upload_orchestration(path=folder, name="hello")
        assert (orch.name(), orch.file_name(), orch.workspace_id()) == ("hello", "code.zip", 1)
        assert orch.wait_ready(timeout=60).status() == "ready"
        task = orch.run_once("greet", json_args={"name": "SDK"}, timeout=60)
        assert (task.name(), task.run_type(), task.input_data()) == (
            "greet",
            "once",
            {"name": "SDK"},
        )
        run = task.first_run(timeout=60).wait(timeout=60)
        assert run.status() == "success" and run.task_id() == task.id()
        logs = run.logs()
        assert [line.text for line in logs] == ["hello, SDK", "artifact"]
        # each line is the server's str, as Wallaroo's logs() gives: str operations just work
        assert all(isinstance(line, str) for line in logs) and "hello, SDK" in logs[0]
        assert logs[0].split()[1:] == ["stdout", "F", "hello,", "SDK"]
        assert str(run.logs(limit=1)) == "artifact\n"
        assert task.wait(timeout=30).status() == "success"
        assert task.last_runs() == [run] and task.last_runs(status="failure") == []
        assert sdk.get_task_by_id(task.id()) == task
        assert task in sdk.list_tasks() and task in orch.list_tasks()
        assert orch in sdk.list_orchestrations(workspace_name="default")
        assert sdk.get_orchestration_by_id(orch.id()).sha() == orch.sha()

    await asyncio.to_thread(scenario)


async def test_accessors_are_methods_as_in_wallaroos_sdk(sdk: Client) -> None:
    def scenario() -> None:
        # the bytes first, as Wallaroo's upload_orchestration(bytes_buffer, path, name, ...)
        orch = sdk.upload_orchestration(make_zip({"main.py": HELLO}), name="methods")
        data = orch.to_dict()
        assert orch.task() is None  # no task started from it yet
        assert (orch.id(), orch.name(), orch.file_name(), orch.sha(), orch.workspace_id()) == (
            data["id"],
            "methods",
            "orchestration.zip",
            data["sha"],
            1,
        )
        assert orch.status() == "ready"
        created, updated = orch.created_at(), orch.updated_at()
        assert created == datetime.fromisoformat(data["created_at"]) and created.tzinfo
        assert updated is not None and updated >= created

        once = orch.run_once("once", json_args={"n": 1}, timeout=60)
        yearly = orch.run_scheduled("yearly", FAR, debug=True)
        again = orch.run_continuously("again", {"n": 2})
        assert [t.task_type() for t in (once, yearly, again)] == [
            "Temporary Run",
            "Scheduled Run",
            "Continuous Run",
        ]
        assert [t.run_type() for t in (once, yearly, again)] == ["once", "scheduled", "continuous"]
        assert orch.task() == again  # the newest task of the orchestration
        assert orch.list_tasks() == [again, yearly, once]
        assert (once.name(), once.workspace_id(), once.input_data(), once.orch_id()) == (
            "once",
            1,
            {"n": 1},
            orch.id(),
        )
        assert once.id() == once.to_dict()["id"] and isinstance(once.created_at(), datetime)
        run = once.first_run(timeout=60).wait(timeout=60)
        assert (run.id(), run.task_id()) == (run.to_dict()["run_id"], once.id())
        assert run.created_at() is not None and run.updated_at() is not None
        assert once.wait(timeout=30).status() == "success"
        assert once.last_runs(limit=1, status="success") == [run]
        assert [str(line) for line in run.logs(limit=1)] == [str(run.logs()[-1])]

        # kill() gives the status word, as Wallaroo's does
        for task in (again, yearly):
            word = task.kill()
            assert type(word) is str and word in ("pending_kill", "killed")
            assert task.known_status() == word
            assert task.wait(timeout=30).status() == "killed"
        assert orch.task() == again  # killed tasks too

    await asyncio.to_thread(scenario)


async def test_bytes_buffer_script_and_same_code_same_sha(sdk: Client, tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(HELLO, encoding="utf-8")

    def scenario() -> None:
        one = sdk.upload_orchestration(path=script)
        two = sdk.upload_orchestration(path=script)
        assert (one.name(), one.file_name()) == ("job", "job.zip")
        assert one.sha() == two.sha() and one.id() != two.id()  # reproducible archives
        raw = sdk.upload_orchestration(bytes_buffer=make_zip({"main.py": HELLO}), name="raw")
        assert (raw.name(), raw.file_name()) == ("raw", "orchestration.zip")
        with pytest.raises(ValueError, match="exactly one"):
            sdk.upload_orchestration()

    await asyncio.to_thread(scenario)


async def test_deleting_tasks(sdk: Client) -> None:
    code = "import time\nprint('up', flush=True)\ntime.sleep(60)\n"

    def scenario() -> None:
        slow = sdk.upload_orchestration(bytes_buffer=make_zip({"main.py": code}), name="slow")
        going = slow.run_once("going")
        going.first_run(timeout=30)  # its run is going
        quick = sdk.upload_orchestration(bytes_buffer=make_zip({"main.py": "print(1)\n"}))
        done = quick.run_once("done").wait(timeout=30)
        preview = sdk.delete_tasks([going, done.id()])
        assert preview == {
            "tasks": [going.id(), done.id()],
            "task_runs": 2,
            "running": [going.id()],
            "deleted": False,
        }
        assert done.delete(confirm=False) == {
            "tasks": [done.id()],
            "task_runs": 1,
            "running": [],
            "deleted": False,
        }
        assert going.delete()["deleted"] is True
        answer = sdk.delete_tasks([done], confirm_delete=True)
        assert answer == {"tasks": [done.id()], "task_runs": 1, "running": [], "deleted": True}
        assert sdk.list_tasks(killed=True) == []
        with pytest.raises(NotFoundError, match="not found"):
            done.delete()
        with pytest.raises(BadRequestError, match="tasks"):
            sdk.delete_tasks([])

    await asyncio.to_thread(scenario)


async def test_kill_and_the_servers_errors_as_exceptions(sdk: Client, jp_serverapp: Any) -> None:
    code = "import time\nprint('up', flush=True)\ntime.sleep(60)\n"

    def scenario() -> None:
        orch = sdk.upload_orchestration(bytes_buffer=make_zip({"main.py": code}), name="slow")
        task = orch.run_once("slow")
        run = task.first_run(timeout=30)
        assert task.kill() in ("pending_kill", "killed")  # the status word, as Wallaroo's
        assert task.known_status() in ("pending_kill", "killed")
        assert run.wait(timeout=30).known_status() == "killed"
        assert task.wait(timeout=30).known_status() == "killed"
        with pytest.raises(ConflictError, match="already killed") as conflict:
            task.kill()
        assert conflict.value.status == 409 and conflict.value.reason == "Conflict"
        assert task not in sdk.list_tasks() and task in sdk.list_tasks(killed=True)
        with pytest.raises(NotFoundError, match="not found"):
            sdk.get_task_by_id("00000000-0000-0000-0000-000000000000")
        with pytest.raises(BadRequestError, match="schedule"):
            orch.run_scheduled("bad", "every tuesday")
        with pytest.raises(ValueError, match="exactly one"):
            orch.run_scheduled("bad", ["* * * * *", "@hourly"])
        wrong = Client(url=server_url(jp_serverapp), token="wrong-token")
        with pytest.raises(AuthorizationError):
            wrong.list_workspaces()

    await asyncio.to_thread(scenario)


async def test_failed_runs_and_running_tasks_of_every_task(sdk: Client) -> None:
    def scenario() -> None:
        before = datetime.now(timezone.utc)
        failing = sdk.upload_orchestration(
            bytes_buffer=make_zip({"main.py": "raise SystemExit(4)\n"}), name="failing"
        )
        broke = failing.run_once("broke")
        run = broke.first_run(timeout=60).wait(timeout=30)
        assert run.known_status() == "failure"
        sleepy = sdk.upload_orchestration(
            bytes_buffer=make_zip({"main.py": "import time\ntime.sleep(60)\n"}), name="sleepy"
        )
        slow = sleepy.run_once("slow")
        slow.first_run(timeout=60)
        assert sdk.running_tasks() == 1
        assert [r.id() for r in sdk.failed_runs()] == [run.id()]
        assert [r.id() for r in sdk.failed_runs(since=before)] == [run.id()]
        assert [r.id() for r in sdk.failed_runs(since=before.isoformat(), limit=1)] == [run.id()]
        assert len(sdk.failed_runs(since=datetime.now(timezone.utc))) == 0
        slow.kill()
        slow.wait(timeout=30)
        assert sdk.running_tasks() == 0
        with pytest.raises(BadRequestError, match="since"):
            sdk.failed_runs(since="yesterday")

    await asyncio.to_thread(scenario)


async def test_unreachable_and_not_an_orchestration_server(sdk: Client, jp_serverapp: Any) -> None:
    def scenario() -> None:
        with pytest.raises(ServerUnreachable, match=r"cannot reach http://127\.0\.0\.1:9/"):
            Client(url="http://127.0.0.1:9/", token="").list_workspaces()
        # The Jupyter server answers, but nothing of ours lives at that path.
        other = Client(url=server_url(jp_serverapp) + "elsewhere/", token=sdk.server.token)
        with pytest.raises(NotFoundError, match="is the jupyter_orch extension enabled"):
            other.list_workspaces()

    await asyncio.to_thread(scenario)


async def test_scheduled_task_pause_resume_run_now_and_last_runs(sdk: Client) -> None:
    def scenario() -> None:
        orch = sdk.upload_orchestration(bytes_buffer=make_zip({"main.py": HELLO}), name="tick")
        task = orch.run_scheduled("tick", {"*/1 * * * * *"}, {"name": "cron"}, timezone="UTC")
        assert task.run_type() == "scheduled" and task.to_dict()["schedule"] == "*/1 * * * * *"
        first = task.first_run(timeout=30).wait(timeout=30)
        [line] = first.logs()
        assert (line.text, str(line).endswith(" stdout F hello, cron")) == ("hello, cron", True)
        assert task.pause() in ("pending_pause", "paused")
        deadline = time.monotonic() + 30
        while task.status() != "paused":
            assert time.monotonic() < deadline, task.known_status()
            time.sleep(0.05)
        manual = task.run_now()
        assert manual.wait(timeout=30).to_dict()["trigger"] == "manual"
        assert task.resume() in ("pending_resume", "started")
        assert len(task.last_runs(limit=2)) == 2
        assert task.kill() in ("pending_kill", "killed")
        assert task.wait(timeout=30).known_status() == "killed"

    await asyncio.to_thread(scenario)


async def test_continuous_task_and_following_a_run(sdk: Client) -> None:
    code = "import time\nfor i in range(3):\n    print('n', i, flush=True)\n    time.sleep(0.2)\n"

    def scenario() -> None:
        orch = sdk.upload_orchestration(bytes_buffer=make_zip({"main.py": code}), name="loop")
        task = orch.run_continuously("loop")
        assert task.run_type() == "continuous"
        run = task.first_run(timeout=30)
        out = io.StringIO()
        assert run.follow(out=out).known_status() == "success"
        assert out.getvalue() == "n 0\nn 1\nn 2\n"
        follower = sdk.follow_logs(run.id(), start=2)
        assert [line.text for line in follower] == ["n 2"] and follower.status == "success"
        deadline = time.monotonic() + 30
        while len(task.last_runs()) < 2:
            assert time.monotonic() < deadline, "no second run"
            time.sleep(0.05)
        task.kill()
        assert task.wait(timeout=30).known_status() == "killed"

    await asyncio.to_thread(scenario)


def spy(client: Client, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Record each request the client makes: its endpoint and body."""
    calls: list[tuple[str, dict[str, Any]]] = []
    post = client._post

    def recorded(path: str, body: dict[str, Any] | None = None) -> Any:
        calls.append((path, dict(body or {})))
        return post(path, body)

    monkeypatch.setattr(client, "_post", recorded)
    return calls


async def test_tasks_page_by_keyset(sdk: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    def scenario() -> None:
        orch = sdk.upload_orchestration(bytes_buffer=make_zip({"main.py": HELLO}), name="p")
        other = sdk.upload_orchestration(bytes_buffer=make_zip({"main.py": HELLO}), name="q")
        made = [orch.run_scheduled(f"p{n}", FAR) for n in range(5)]
        other.run_scheduled("q0", FAR)
        made[0].kill()
        calls = spy(sdk, monkeypatch)

        def names(tasks: Any) -> list[str | None]:
            return [t.name() for t in tasks]

        # every task by default, each with its newest run only
        assert names(sdk.list_tasks()) == ["q0", "p4", "p3", "p2", "p1"]
        assert calls[-1] == ("task/list", {"workspace_id": 1, "run_limit": 1, "killed": False})
        newest = sdk.list_tasks(limit=2)
        assert names(newest) == ["q0", "p4"]
        assert names(sdk.list_tasks(limit=2, after=newest[-1])) == ["p3", "p2"]
        assert names(sdk.list_tasks(limit=2, after=made[2].id())) == ["p1"]
        assert names(sdk.list_tasks(limit=2, after=made[1], killed=True)) == ["p0"]
        assert sdk.list_tasks(limit=2, after=made[1]) == []
        assert calls[-1][1] == {
            "workspace_id": 1,
            "run_limit": 1,
            "killed": False,
            "limit": 2,
            "after": made[1].id(),
        }
        with pytest.raises(NotFoundError):  # a page after an unknown task is refused
            sdk.list_tasks(limit=2, after="00000000-0000-0000-0000-000000000000")

        # pages as they are read: a loop that stops early asks only for what it needs
        del calls[:]
        assert names(sdk.iter_tasks(page_size=2)) == ["q0", "p4", "p3", "p2", "p1"]
        assert [body["limit"] for _, body in calls] == [2, 2, 2]
        del calls[:]
        assert names(islice(sdk.iter_tasks(page_size=2, killed=True), 3)) == ["q0", "p4", "p3"]
        assert len(calls) == 2
        with pytest.raises(ValueError, match="page_size"):
            next(sdk.iter_tasks(page_size=0))

        # an orchestration's own tasks page the same way
        assert names(orch.list_tasks(limit=3)) == ["p4", "p3", "p2"]
        assert names(orch.list_tasks(limit=3, after=made[2])) == ["p1"]
        assert names(orch.iter_tasks(killed=True, page_size=3)) == ["p4", "p3", "p2", "p1", "p0"]
        assert calls[-1][1]["orch_id"] == orch.id()
        for task in sdk.list_tasks():
            task.kill()

    await asyncio.to_thread(scenario)


async def test_runs_page_by_keyset_and_the_first_run(
    sdk: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def scenario() -> None:
        orch = sdk.upload_orchestration(bytes_buffer=make_zip({"main.py": HELLO}), name="r")
        task = orch.run_scheduled("manual", FAR)
        first, second, third = (task.run_now().wait(timeout=60) for _ in range(3))
        calls = spy(sdk, monkeypatch)

        # every run the task keeps by default (Wallaroo's limit=None), or the newest N
        assert task.last_runs() == [third, second, first]
        assert calls[-1] == ("task/list_task_runs", {"task_id": task.id()})
        assert task.last_runs(limit=20) == [third, second, first]
        assert calls[-1] == ("task/list_task_runs", {"task_id": task.id(), "limit": 20})
        page = task.last_runs(limit=2)
        assert page == [third, second]
        assert task.last_runs(limit=2, after=page[-1]) == [first]
        assert task.last_runs(limit=2, after=first.id()) == []
        assert list(task.iter_runs(page_size=2)) == [third, second, first]
        assert list(task.iter_runs(status="failure")) == []

        # the first run is the oldest, even when the task has several
        del calls[:]
        assert task.first_run(timeout=10) == first
        assert calls[0] == ("task/list_task_runs", {"task_id": task.id(), "limit": 2})
        task.kill()
        assert task.wait(timeout=30).known_status() == "killed"

    await asyncio.to_thread(scenario)


async def test_workspaces(sdk: Client) -> None:
    def scenario() -> None:
        assert [w.name() for w in sdk.list_workspaces()] == ["default"]
        assert sdk.get_current_workspace().id() == 1
        team = sdk.create_workspace("team")
        assert sdk.get_workspace("team") == team and sdk.get_workspace("nope") is None
        with pytest.raises(ConflictError):
            sdk.create_workspace("team")
        assert sdk.get_workspace("more", create_if_not_exist=True) is not None
        assert sdk.set_current_workspace("team") == team
        orch = sdk.upload_orchestration(bytes_buffer=make_zip({"main.py": HELLO}), name="t")
        assert orch.workspace_id() == team.id()
        assert sdk.list_orchestrations() == [orch]
        assert sdk.list_orchestrations(workspace_id=1) == []
        assert sdk.list_tasks(workspace_name="team") == []

    await asyncio.to_thread(scenario)


async def test_a_run_calls_back_with_its_own_token(sdk: Client) -> None:
    code = (
        "import os, jupyter_orch\n"
        "client = jupyter_orch.Client()\n"
        "task = client.get_task_by_id(os.environ['TASK_ID'])\n"
        "print(client.in_task(), client.task_args(), task.name(), client.server.source[:10])\n"
    )

    def scenario() -> None:
        orch = sdk.upload_orchestration(bytes_buffer=make_zip({"main.py": code}), name="me")
        run = orch.run_once("myself", {"x": 1}).first_run(timeout=30).wait(timeout=30)
        assert [line.text for line in run.logs()] == ["True {'x': 1} myself inside run"]

    await asyncio.to_thread(scenario)


# -- displays -----------------------------------------------------------------------------------


def test_lists_show_empty_states_and_html_is_escaped() -> None:
    client = object.__new__(Client)
    assert repr(TaskList()) == "(no tasks)" and "(no tasks)" in TaskList()._repr_html_()
    task = jupyter_orch.Task(client, {"id": "t1", "name": "<b>&", "status": "started"})
    assert "<b>&" in repr(task) and "&lt;b&gt;&amp;" in task._repr_html_()
    assert "<b>&" not in task._repr_html_()
    table = TaskList([task])
    assert repr(table).splitlines()[0].startswith("id") and "last run" in repr(table)
    assert "&lt;b&gt;" in table._repr_html_()
    run = jupyter_orch.TaskRun(
        client,
        {
            "task": "t1",
            "run_id": "r1",
            "status": "success",
            "created_at": "2026-01-01T00:00:00+00:00",
            "updated_at": "2026-01-01T00:00:05+00:00",
        },
    )
    names = [name for name, _ in run.fields()][:5]
    assert names == ["task id", "run id", "status", "created", "updated"]
    assert "2026-01-01 00:00:05+00:00" in run._repr_html_() and "r1" in repr(run)
    assert jupyter_orch.TaskRun.columns[:5] == ("task id", "run id", "status", "created", "updated")
    once = jupyter_orch.Task(client, {"id": "t2", "run_type": "Oneshot", "status": "pending"})
    assert ("type", "Temporary Run") in once.fields() and "Temporary Run" in once.row()


def test_a_log_line_is_a_str_holding_the_servers_line() -> None:
    raw = "2026-01-01T00:00:00.000000001Z stdout F hello, <world>"
    line = LogLine(raw)
    assert isinstance(line, str) and line == raw and hash(line) == hash(raw)
    assert str(line) == line.raw == raw and type(str(line)) is str
    assert "hello" in line and "bye" not in line and line.endswith("<world>")
    assert line.split() == ["2026-01-01T00:00:00.000000001Z", "stdout", "F", "hello,", "<world>"]
    assert line.split(" ", 3)[3] == line.text == "hello, <world>"
    assert (line.time, line.stream, line.partial) == (
        "2026-01-01T00:00:00.000000001Z",
        "stdout",
        False,
    )
    assert json.dumps([line]) == json.dumps([raw]) and repr(line) == repr(raw)
    again = pickle.loads(pickle.dumps(line))
    assert (again, again.text, again.stream) == (raw, "hello, <world>", "stdout")
    part = LogLine.parse("2026-01-01T00:00:01.5Z stderr P a long li")
    assert (part.stream, part.text, part.partial) == ("stderr", "a long li", True)
    plain = LogLine("not the runtime's format")
    assert (plain.time, plain.stream, plain.text) == ("", "", "not the runtime's format")
    built = LogLine.of_text("x stdout F y")  # a build log's line: text, never parsed
    assert (built, built.text, built.stream) == ("x stdout F y", "x stdout F y", "")

    logs = LogLines([line, part, LogLine("2026-01-01T00:00:02Z stderr F ne")])
    assert logs == [raw, part.raw, "2026-01-01T00:00:02Z stderr F ne"]
    assert str(logs) == "hello, <world>\na long line\n"  # the output, as printed
    shown = repr(logs)
    assert shown.splitlines()[0].split() == ["time", "(UTC)", "stream", "output"]
    assert "2026-01-01 00:00:00  stdout  hello, <world>" in shown
    assert "&lt;world&gt;" in logs._repr_html_() and "<world>" not in logs._repr_html_()
    assert repr(LogLines()) == "(no log lines)"


async def test_client_in_a_kernel_started_by_the_server(
    start_kernel: StartKernel, jp_serverapp: Any
) -> None:
    kernel = await start_kernel()
    await kernel.ok("import jupyter_orch\nclient = jupyter_orch.Client()")
    source = await kernel.value("client.server.source")
    assert source == f"the Jupyter server that started this process (pid {os.getpid()})"
    assert await kernel.value("client.api_url") == server_url(jp_serverapp) + "orch"
    await kernel.ok(
        "from jupyter_orch.bundle import zip_entries\n"
        f"archive = zip_entries({{'main.py': {HELLO!r}.encode()}})\n"
        "orch = client.upload_orchestration(bytes_buffer=archive, name='k')\n"
        "task = orch.run_once('k', {'name': 'kernel'})\n"
        "run = task.first_run(timeout=60).wait(timeout=60)\n"
    )
    assert await kernel.value("[line.text for line in run.logs()]") == ["hello, kernel"]
    shown = await kernel.ok("client.list_tasks()")
    assert "text/html" in shown.data[0] and task_id_in(shown.data[0]["text/plain"])
    assert await kernel.value("client.in_task(), jupyter_orch.task_args()") == [False, {}]


def task_id_in(text: str) -> bool:
    """Whether a table's text holds a row with a task id."""
    return any(len(word) == 36 and word.count("-") == 4 for word in text.split())


def test_zip_of_a_folder_skips_caches(tmp_path: Path) -> None:
    folder = folder_with(
        tmp_path, {"main.py": "", "a/b.txt": "b", ".git/x": "", "__pycache__/y": ""}
    )
    data, name = read_upload(folder)
    assert name == "code.zip"
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["a/b.txt", "main.py"]


async def test_update_history_rerun_and_schedule_preview(sdk: Client) -> None:
    def scenario() -> None:
        orch = sdk.upload_orchestration(bytes_buffer=make_zip({"main.py": HELLO}), name="edit")
        task = orch.run_scheduled("edit", FAR, {"name": "first"}, timeout=30, timezone="UTC")
        assert task.schedule_description() == "At 00:00, on day 1 of the month, only in January"
        assert task.update(schedule="0 6 * * *", timezone="Europe/Paris", timeout=None) is task
        fires = task.next_fires()
        assert len(fires) == 3 and all((f.hour, f.minute) == (6, 0) for f in fires)
        assert fires[0].tzinfo is not None and task.to_dict()["timeout"] is None
        assert "At 06:00" in repr(task)
        task.update(json_args={"name": "second"})
        history = task.history()
        assert [sorted(h["changes"]) for h in history[1:]] == [
            ["schedule", "timeout", "timezone"],
            ["json"],
        ]
        assert history[0]["changes"]["json"] == [None, {"name": "first"}]
        assert isinstance(history[0]["at"], datetime)
        with pytest.raises(BadRequestError, match="schedule"):
            task.update(schedule="every day")

        run = task.run_now().wait(timeout=30)
        again = run.rerun({"name": "third"}).wait(timeout=30)
        assert again.task_id() == task.id() and again.to_dict()["trigger"] == "manual"
        assert [line.text for line in again.logs()] == ["hello, third"]
        same = run.rerun().wait(timeout=30)
        assert [line.text for line in same.logs()] == ["hello, second"]
        task.kill()
        with pytest.raises(ConflictError, match="killed"):
            task.update(name="x")

        once = orch.run_once("one", {"name": "a"})
        first = once.first_run(timeout=30).wait(timeout=30)
        other = first.rerun()
        assert other.task_id() != once.id()
        assert [line.text for line in other.wait(timeout=30).logs()] == ["hello, a"]

        preview = sdk.preview_schedule("*/15 * * * *", "Asia/Kolkata", count=4)
        assert preview["description"] == "Every 15 minutes" and len(preview["fires"]) == 4
        assert all(f.utcoffset().total_seconds() == 5.5 * 3600 for f in preview["fires"])

    await asyncio.to_thread(scenario)


class _Listing:
    """A client whose `task/list` answers given tasks (for the id lookups alone)."""

    def __init__(self, tasks: list[dict[str, Any]]) -> None:
        self.tasks = tasks

    def _post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        assert path == "task/list"
        return self.tasks


def test_short_ids_and_names_resolve_when_unique_and_list_candidates_otherwise() -> None:
    from jupyter_orch.sdk import refs

    def task(ident: str, name: str, killed: bool = False, runs: tuple[str, ...] = ()) -> Any:
        last = [{"run_id": r, "status": "success"} for r in runs]
        return {"id": ident, "name": name, "status": "started", "killed": killed, "last_runs": last}

    a = "abcd1234-0000-4000-8000-000000000001"
    b = "abcd9999-0000-4000-8000-000000000002"
    c = "0123ffff-0000-4000-8000-000000000003"
    run = "feed0000-0000-4000-8000-000000000004"
    d = "4567aaaa-0000-4000-8000-000000000005"
    tasks = [task(a, "n"), task(b, "n", runs=(run,)), task(c, "old", killed=True)]
    tasks += [task(a[::-1], "old"), {**task(d, "done"), "status": "success"}]
    tasks.append({**task(d[::-1], "done"), "status": "failed"})  # older
    client: Any = _Listing(tasks)
    assert refs.task_id(client, a.upper()) == a  # a full id is taken as it is
    assert refs.task_id(client, "abcd1") == a and refs.task_id(client, "0123") == c
    with pytest.raises(refs.AmbiguousId) as ambiguous:
        refs.task_id(client, "abcd")
    assert a in str(ambiguous.value) and b in str(ambiguous.value)
    with pytest.raises(refs.UnknownId):
        refs.task_id(client, "9999")
    with pytest.raises(refs.UnknownId):
        refs.task_id(client, "abc")  # too short to be a short id, and names are not asked for
    with pytest.raises(refs.AmbiguousId, match="fits 2 tasks"):
        refs.task_id(client, "n", by_name=True)
    assert refs.task_id(client, "old", by_name=True) == a[::-1]  # the one live
    assert refs.task_id(client, "done", by_name=True) == d  # none live: the newest
    assert refs.run_id(client, "feed") == run
    with pytest.raises(refs.UnknownId):
        refs.run_id(client, "beef")
