"""`jupyter orch ...` as a subprocess against the live test server: output and exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import shutil
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from jupyter_orch import cli

from .conftest import Api

HELLO = "import jupyter_orch\nprint('hello,', jupyter_orch.task_args().get('name', 'world'))\n"
FAILING = "print('about to fail', flush=True)\nraise SystemExit(3)\n"
FAR = "0 0 1 1 *"  # a schedule that does not fire during a test


@dataclass
class Outcome:
    """How a command ended and what it printed."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """The standard output as JSON."""
        return json.loads(self.out)


Orch = Callable[..., Awaitable[Outcome]]


@pytest.fixture
def orch(jp_serverapp: Any, jp_fetch: Any) -> Orch:
    """Run `python -m jupyter_orch.cli ARGS` (`jupyter orch ARGS`) with this test's environment.

    The command is a child of this process, which is the test server: discovery finds it.
    """

    async def run(
        *args: str,
        env: dict[str, str] | None = None,
        program: str = "",
        stdin: int = asyncio.subprocess.DEVNULL,
    ) -> Outcome:
        argv = [program] if program else [sys.executable, "-m", "jupyter_orch.cli"]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            *args,
            stdin=stdin,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 90)
        assert proc.returncode is not None
        return Outcome(proc.returncode, out.decode(), err.decode())

    return run


def write(folder: Path, files: dict[str, str]) -> Path:
    """A folder holding `files`."""
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


async def test_upload_run_once_wait_and_logs(orch: Orch, tmp_path: Path) -> None:
    folder = write(tmp_path / "hello", {"main.py": HELLO})
    shown = await orch("upload", str(folder))
    assert shown.code == 0 and shown.out.startswith("Orchestration ") and "hello.zip" in shown.out
    uploaded = (await orch("upload", str(folder), "--name", "greeter", "--wait", "--json")).json()
    assert (uploaded["name"], uploaded["status"]) == ("greeter", "ready")

    args = ["--args", '{"name": "cli"}', "--wait", "--json"]
    run = await orch("run-once", uploaded["id"], *args)
    assert run.code == 0, run.err
    assert run.json()["status"] == "success"
    run_id = run.json()["run_id"]

    logs = await orch("logs", run_id)
    assert (logs.code, logs.out) == (0, "hello, cli\n")
    raw = (await orch("logs", run_id, "--json")).json()["logs"]
    assert raw[0].endswith(" stdout F hello, cli")
    stamped = await orch("logs", run_id, "--timestamps")
    assert stamped.out.split(" ", 1)[1] == "stdout hello, cli\n"
    followed = await orch("logs", "-f", run_id)
    assert (followed.code, followed.out) == (0, "hello, cli\n")
    assert followed.err == f"run {run_id} ended: success\n"

    by_name = await orch("run-once", "greeter", "--wait", "--json")
    assert by_name.code == 0 and by_name.json()["status"] == "success"


async def test_follow_a_failing_script_exits_1(orch: Orch, tmp_path: Path) -> None:
    script = write(tmp_path, {"job.py": FAILING}) / "job.py"
    result = await orch("run-once", str(script), "--follow")
    assert result.code == cli.RUN_FAILED
    assert result.out == "about to fail\n"
    assert result.err.endswith(" ended: failure\n")


async def test_tasks_runs_kill_and_refusals(orch: Orch, tmp_path: Path) -> None:
    script = write(tmp_path, {"sleepy.py": "import time\ntime.sleep(60)\n"}) / "sleepy.py"
    task = (await orch("run-once", str(script), "--name", "nap", "--json")).json()
    listed = await orch("tasks")
    assert listed.code == 0 and task["id"] in listed.out and listed.out.startswith("id ")
    assert [t["name"] for t in (await orch("tasks", "--json")).json()] == ["nap"]
    runs = (await orch("runs", task["id"], "--json")).json()
    assert len(runs) <= 1

    killed = await orch("kill", task["id"], "--json")
    assert killed.code == 0 and killed.json()["status"] in ("pending_kill", "killed")
    again = await orch("kill", task["id"])
    assert again.code == cli.REFUSED and "already killed (409 Conflict)" in again.err
    assert (await orch("tasks")).out == "(no tasks)\n"
    assert task["id"] in (await orch("tasks", "--killed")).out

    missing = await orch("runs", "00000000-0000-0000-0000-000000000000")
    assert missing.code == cli.REFUSED and "not found" in missing.err
    unknown = await orch("run-once", "no-such-thing")
    assert unknown.code == cli.USAGE and "no such file, orchestration id or" in unknown.err
    bad_args = await orch("run-once", str(script), "--args", "[1]")
    assert bad_args.code == cli.USAGE and "--args must be a JSON object" in bad_args.err
    bad = await orch("tasks", "--nope")
    assert bad.code == cli.USAGE and "unrecognized arguments: --nope" in bad.err


async def test_tasks_and_runs_a_page_at_a_time(orch: Orch, api: Api) -> None:
    orch_id = await api.upload({"main.py": HELLO}, name="paged")
    await api.wait_orch(orch_id, {"ready"})
    ids = []
    for n in range(3):
        body = {"workspace_id": 1, "orch_id": orch_id, "json": {}, "name": f"p{n}", "schedule": FAR}
        ids.append((await api.ok("task/run_scheduled", body, status=201))["id"])

    # the newest N, and on stderr how to list the rest (stdout stays the JSON)
    newest = await orch("tasks", "--limit", "2", "--json")
    assert newest.code == 0 and [t["name"] for t in newest.json()] == ["p2", "p1"]
    assert newest.err == (
        f"2 tasks shown, more follow: --after {ids[1]} for the next page, --all for every one\n"
    )
    rest = await orch("tasks", "--limit", "2", "--after", ids[1], "--json")
    assert [t["name"] for t in rest.json()] == ["p0"] and rest.err == ""
    every = await orch("tasks", "--all", "--json")
    assert [t["name"] for t in every.json()] == ["p2", "p1", "p0"] and every.err == ""
    table = await orch("tasks")
    assert table.code == 0 and table.err == "" and len(table.out.splitlines()) == 5

    runs = await orch("runs", ids[0], "--all", "--json")
    assert (runs.code, runs.json()) == (0, [])
    for bad in (["--limit", "0"], ["--limit", "2", "--all"]):
        refused = await orch("tasks", *bad)
        assert refused.code == cli.USAGE, bad
    assert "must be at least 1" in (await orch("runs", ids[0], "--limit", "0")).err
    for task_id in ids:
        await api.ok("task/kill", {"id": task_id}, status=202)


async def answering(orch: Orch, answer: bytes, *args: str) -> Outcome:
    """Run a command whose standard input is a terminal, on which `answer` is typed."""
    controller, terminal = pty.openpty()
    try:
        os.write(controller, answer)
        return await orch(*args, stdin=terminal)
    finally:
        os.close(terminal)
        os.close(controller)


async def test_delete_says_what_goes_and_asks_unless_yes(orch: Orch, api: Api) -> None:
    sleepy = await api.upload({"main.py": "print('up', flush=True)\nimport time\ntime.sleep(60)\n"})
    going = await api.run_once(sleepy)
    run_id = (await api.wait_task(going, {"started"}))["last_runs"][0]["run_id"]
    await api.wait_for_log(run_id, "up")
    done = await api.run_once(await api.upload({"main.py": HELLO}))
    await api.wait_task(done, {"success"})

    refused = await orch("delete", going, done[:8])  # ids, or the short ids shown
    assert refused.code == cli.USAGE
    assert refused.out == (
        f"would delete 2 tasks ({going}, {done}) and 2 runs; would kill first, as they have "
        f"a run going: {going}\n"
    )
    assert refused.err == "jupyter orch: not deleted: confirm with --yes\n"
    declined = await answering(orch, b"n\n", "delete", done)
    assert declined.code == 0 and declined.out.endswith("Delete? [y/N] nothing deleted\n")
    for task_id in (going, done):
        assert not (await api.ok("task/get_by_id", {"id": task_id}))["killed"]

    confirmed = await answering(orch, b"y\n", "delete", done)
    assert confirmed.code == 0, confirmed.err
    assert confirmed.out.endswith(f"Delete? [y/N] deleted 1 task ({done}) and 1 run\n")
    await api.ok("task/get_by_id", {"id": done}, status=404)
    forced = await orch("delete", going, "--yes", "--json")
    assert forced.code == 0, forced.err
    assert forced.json() == {"tasks": [going], "task_runs": 1, "running": [going], "deleted": True}
    await api.ok("task/get_by_id", {"id": going}, status=404)
    missing = await orch("delete", going, "--yes")
    assert missing.code == cli.REFUSED and "not found" in missing.err


async def test_schedule_pause_resume_and_kill(orch: Orch, api: Api, tmp_path: Path) -> None:
    script = write(tmp_path, {"tick.py": "print('tick')\n"}) / "tick.py"
    created = await orch("schedule", str(script), "*/1 * * * * *", "--timezone", "UTC", "--json")
    assert created.code == 0, created.err
    task = created.json()
    assert (task["run_type"], task["schedule"], task["timezone"]) == (
        "CronJob",
        "*/1 * * * * *",
        "UTC",
    )
    first = await orch("schedule", str(script), "*/1 * * * * *", "--follow")
    assert first.code == 0 and first.out == "tick\n"
    paused = (await orch("pause", task["id"], "--json")).json()
    assert paused["status"] in ("pending_pause", "paused")
    resumed = (await orch("resume", task["id"], "--json")).json()
    assert resumed["status"] in ("pending_resume", "started")
    for listed in (await orch("tasks", "--json")).json():
        assert (await orch("kill", listed["id"])).code == 0
        await api.wait_task(listed["id"], {"killed"})
    bad = await orch("schedule", str(script), "whenever")
    assert bad.code == cli.REFUSED and "schedule: 'whenever'" in bad.err


async def test_continuous_and_orchestrations(orch: Orch, api: Api, tmp_path: Path) -> None:
    script = write(tmp_path, {"loop.py": "print('again')\n"}) / "loop.py"
    task = (await orch("continuous", str(script), "--name", "looping", "--json")).json()
    assert (task["name"], task["run_type"]) == ("looping", "NetworkService")
    orchs = await orch("orchestrations")
    assert orchs.code == 0 and "loop.zip" in orchs.out
    assert [o["name"] for o in (await orch("orchestrations", "--json")).json()] == ["loop"]
    assert (await orch("kill", task["id"])).code == 0
    await api.wait_task(task["id"], {"killed"})


async def test_update_history_and_rerun_by_short_ids(orch: Orch, tmp_path: Path) -> None:
    script = write(tmp_path, {"hello.py": HELLO}) / "hello.py"
    task = (await orch("schedule", str(script), FAR, "--name", "hi", "--json")).json()
    short = task["id"][:8]
    changed = await orch(
        "update", short, "--schedule", "30 9 * * 1-5", "--timezone", "Asia/Tokyo",
        "--args", '{"name": "edited"}', "--timeout", "60", "--json",
    )  # fmt: skip
    assert changed.code == 0, changed.err
    data = changed.json()
    assert (data["schedule"], data["timezone"], data["timeout"]) == (
        "30 9 * * 1-5",
        "Asia/Tokyo",
        60,
    )
    assert len(data["next_fires"]) == 3 and data["next_fires"][0].endswith("+09:00")
    cleared = (await orch("update", "hi", "--timeout", "none", "--json")).json()
    assert cleared["timeout"] is None and cleared["input_data"] == {"name": "edited"}
    shown = await orch("update", short, "--keep-runs", "5")
    assert shown.code == 0 and "At 09:30, Monday through Friday" in shown.out
    history = await orch("history", short)
    assert history.code == 0 and '  schedule: "0 0 1 1 *" -> "30 9 * * 1-5"' in history.out
    assert "  timeout: 60 -> null" in history.out and history.out.count(" by ") == 4
    refused = await orch("update", short, "--schedule", "61 * * * *")
    assert refused.code == cli.REFUSED and "schedule:" in refused.err

    once = (await orch("run-once", str(script), "--name", "hi", "--wait", "--json")).json()
    run_short = once["run_id"][:8]
    again = await orch("rerun", run_short, "--args", '{"name": "again"}', "--wait", "--json")
    assert again.code == 0, again.err
    new_run = again.json()
    assert new_run["task"] != once["task"] and new_run["status"] == "success"
    logs = await orch("logs", new_run["run_id"][:8])
    assert logs.code == 0 and logs.out == "hello, again\n"

    # Two live tasks named "hi" (the run-once ones have ended): the name is ambiguous.
    twin = (await orch("schedule", str(script), FAR, "--name", "hi", "--json")).json()
    ambiguous = await orch("kill", "hi")
    assert ambiguous.code == cli.USAGE and "fits 2 tasks" in ambiguous.err
    assert task["id"] in ambiguous.err and twin["id"] in ambiguous.err
    assert (await orch("kill", short)).code == 0
    assert (await orch("kill", "hi", "--json")).json()["id"] == twin["id"]
    unknown = await orch("history", "ffffffffff")
    assert unknown.code == cli.USAGE and "no task has the id or name" in unknown.err


async def test_explicit_url_and_token_and_no_server(
    orch: Orch, jp_serverapp: Any, tmp_path: Path
) -> None:
    hidden = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "empty")}
    for name in ("JUPYTER_ORCH_URL", "JUPYTER_ORCH_TOKEN", "JUPYTERHUB_SERVICE_URL"):
        hidden.pop(name, None)
    url, token = jp_serverapp.connection_url, jp_serverapp.identity_provider.token
    given = await orch("tasks", "--url", url, "--token", token, env=hidden)
    assert (given.code, given.out) == (0, "(no tasks)\n")

    lost = await orch("tasks", env=hidden)
    assert lost.code == cli.NO_SERVER
    assert "no Jupyter server with jupyter_orch found; tried:" in lost.err
    assert "the Jupyter server that started this process" in lost.err

    wrong = await orch("tasks", "--url", url, "--token", "wrong", env=hidden)
    assert wrong.code == cli.REFUSED and "the token is missing or wrong" in wrong.err
    assert "(403 Forbidden)" in wrong.err
    away = await orch("tasks", "--url", "http://127.0.0.1:9/", "--token", "x", env=hidden)
    assert away.code == cli.NO_SERVER and "cannot reach http://127.0.0.1:9/" in away.err


async def test_help_lists_every_command(orch: Orch) -> None:
    result = await orch("--help")
    assert result.code == 0
    for command in cli.COMMANDS:
        assert command in result.out


@pytest.mark.skipif(
    shutil.which("jupyter-orch") is None,
    reason="the jupyter-orch entry point is not installed (pyproject [project.scripts])",
)
async def test_as_a_jupyter_subcommand(orch: Orch) -> None:
    jupyter = shutil.which("jupyter")
    assert jupyter is not None
    result = await orch("orch", "tasks", "--json", program=jupyter)
    assert (result.code, result.json()) == (0, [])
