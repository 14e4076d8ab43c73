"""Runs started by the fork server behave as runs started as new processes.

Each case runs one script both ways through the local executor (fork server, and
``fork_server=False``) and compares what the script saw and what it left: log, exit record.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_orch.server.executors.base import ExitRecord, RunSpec, base_env
from jupyter_orch.server.executors.local import LocalExecutor, start_settings
from jupyter_orch.server.models import RunStatus

# What a fresh interpreter shows its script; compared between the two ways of starting.
PROBE = r"""
import __main__, json, os, signal, sys
fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
print(json.dumps({
    "argv": sys.argv, "orig_argv": sys.orig_argv, "path": sys.path, "flags": list(sys.flags),
    "modules": sorted(sys.modules), "main": sorted(vars(__main__)), "file": __file__,
    "name": __name__, "spec": repr(__spec__), "package": __package__,
    "loader": type(__loader__).__name__, "cwd": os.getcwd(), "fds": fds,
    "env": {k: os.environ.get(k) for k in ("RUN_VAR", "TZ", "PYTHONUNBUFFERED")},
    "signals": {name: repr(signal.getsignal(getattr(signal, name)))
                for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGPIPE", "SIGCHLD", "SIGXFSZ")},
    "own_group": os.getpgid(0) == os.getpid(), "nice": os.nice(0),
    "stdio": [sys.stdin.read(), sys.stdout.encoding, sys.stdout.write_through,
              sys.stdout.isatty(), sys.getfilesystemencoding()],
    "streams": [[s.name, s.mode, s.encoding, s.errors, s.line_buffering, s.write_through,
                 s.seekable(), type(s.buffer).__name__]
                for s in (sys.stdin, sys.stdout, sys.stderr)],
    "args_file": open(os.environ["ARGS"]).read(),
}, sort_keys=True))
"""

ENDINGS = {
    "exception": 'import sys\nprint("before")\ndef f():\n    raise ValueError("boom")\nf()\n',
    "exit code": "import sys\nsys.exit(3)\n",
    "exit message": 'import sys\nsys.exit("goodbye")\n',
    "interrupt": "raise KeyboardInterrupt\n",
    "syntax error": "x = (\n",
    "threads and atexit": (
        "import atexit, threading, time\n"
        'atexit.register(print, "atexit")\n'
        'threading.Thread(target=lambda: (time.sleep(0.2), print("thread"))).start()\n'
        'print("main done")\n'
    ),
    "excepthook": (
        "import sys\n"
        'sys.excepthook = lambda kind, exc, tb: print("hook", kind.__name__, tb.tb_lineno)\n'
        "1 / 0\n"
    ),
    "chained exception": (
        "try:\n    {}['key']\nexcept KeyError as exc:\n    raise RuntimeError('wrapped') from exc\n"
    ),
}


@pytest.fixture
def executors(
    jp_asyncio_loop: asyncio.AbstractEventLoop,
) -> Iterator[tuple[LocalExecutor, LocalExecutor]]:
    """The two ways of starting runs: the fork server, and new processes."""
    forked, plain = LocalExecutor(), LocalExecutor(fork_server=False)
    jp_asyncio_loop.run_until_complete(forked.start())
    jp_asyncio_loop.run_until_complete(plain.start())
    yield forked, plain
    jp_asyncio_loop.run_until_complete(forked.stop())
    jp_asyncio_loop.run_until_complete(plain.stop())


def run_env(**extra: str) -> dict[str, str]:
    """A run's environment as the runner builds it, plus `extra`."""
    return {**base_env(), "PYTHONUNBUFFERED": "1", "RUN_VAR": "from the task", **extra}


def spec_for(tmp_path: Path, name: str, code: str, module: bool = False) -> RunSpec:
    """A run of `code` as pkg/main.py (`python -u main.py`, or with `module` `python -u -m
    main`), in TMP_PATH/runs/r."""
    source = tmp_path / f"{name}-source" / "pkg"
    source.mkdir(parents=True)
    (source / "main.py").write_text(code, encoding="utf-8")
    run_dir = tmp_path / "runs" / "r"  # the same path both ways, so outputs compare as text
    spec = RunSpec(
        run_id=name,
        run_dir=run_dir,
        argv=[
            sys.executable,
            "-u",
            *(["-m", "main"] if module else ["main.py"]),
            "first",
            "second",
        ],
        env=run_env(ARGS=str(run_dir / "args.json")),
        source=source.parent,
        cwd="pkg",
        grace=1.0,
        files={"args.json": '{"x": 1}'},
    )
    return spec


async def run(executor: LocalExecutor, spec: RunSpec) -> tuple[ExitRecord, list[str], str]:
    """Run to its end: exit record, log texts (stream + text), the supervisor's own output."""
    future = await executor.launch(spec)
    record = await asyncio.wait_for(future, 60)
    lines = (spec.run_dir / "log").read_text(encoding="utf-8").splitlines()
    texts = [line.split(" ", 1)[1] for line in lines]
    err = (spec.run_dir / "supervisor.err").read_text(encoding="utf-8")
    return record, texts, err


async def both(
    executors: tuple[LocalExecutor, LocalExecutor], tmp_path: Path, code: str, module: bool = False
) -> list[tuple[ExitRecord, list[str], str]]:
    """Run `code` both ways, in the same run folder (moved away after each)."""
    results = []
    for index, executor in enumerate(executors):
        spec = spec_for(tmp_path, str(index), code, module)
        assert executor.inline(spec) is (executor is executors[0])
        results.append(await run(executor, spec))
        (tmp_path / "runs").rename(tmp_path / f"done-{index}")
    return results


async def test_a_forked_run_sees_what_a_new_interpreter_sees(
    executors: tuple[LocalExecutor, LocalExecutor], tmp_path: Path
) -> None:
    (forked, _, _), (plain, _, _) = results = await both(executors, tmp_path, PROBE)
    seen = [json.loads(texts[0].removeprefix("stdout F ")) for _, texts, _ in results]
    assert seen[0] == seen[1]
    assert seen[0]["argv"] == ["main.py", "first", "second"]
    assert seen[0]["path"][0].endswith("/pkg")
    assert not {"forkserver", "supervise"} & set(seen[0]["modules"])
    assert seen[0]["fds"] == [0, 1, 2, 3]  # 3: the listing's own
    assert seen[0]["args_file"] == '{"x": 1}'
    assert forked.status is plain.status is RunStatus.SUCCESS
    assert [err for _, _, err in results] == ["", ""]


@pytest.mark.parametrize("ending", list(ENDINGS))
async def test_a_forked_run_ends_as_a_new_interpreter_ends(
    executors: tuple[LocalExecutor, LocalExecutor], tmp_path: Path, ending: str
) -> None:
    (forked, forked_log, _), (plain, plain_log, _) = await both(
        executors, tmp_path, ENDINGS[ending]
    )
    assert forked_log == plain_log
    assert (forked.status, forked.exit_code) == (plain.status, plain.exit_code)
    expected_code = {
        "exception": 1,
        "exit code": 3,
        "exit message": 1,
        "interrupt": -signal.SIGINT,
        "syntax error": 1,
        "threads and atexit": 0,
        "excepthook": 1,
        "chained exception": 1,
    }[ending]
    assert forked.exit_code == expected_code
    script = f"{tmp_path}/runs/r/work/pkg/main.py"
    if ending == "exception":
        assert forked_log[1:] == [
            "stderr F Traceback (most recent call last):",
            f'stderr F   File "{script}", line 5, in <module>',
            "stderr F     f()",
            f'stderr F   File "{script}", line 4, in f',
            'stderr F     raise ValueError("boom")',
            "stderr F ValueError: boom",
        ]
    if ending == "threads and atexit":
        assert forked_log == ["stdout F main done", "stdout F thread", "stdout F atexit"]


async def test_a_forked_module_run_sees_what_python_m_sees(
    executors: tuple[LocalExecutor, LocalExecutor], tmp_path: Path
) -> None:
    (forked, _, _), (plain, _, _) = results = await both(executors, tmp_path, PROBE, module=True)
    seen = [json.loads(texts[0].removeprefix("stdout F ")) for _, texts, _ in results]
    for probe in seen:  # the spec shows its loader's address
        probe["spec"] = re.sub(r" at 0x[0-9a-f]+", "", probe["spec"])
    assert seen[0] == seen[1]
    folder = f"{tmp_path}/runs/r/work/pkg"
    assert seen[0]["argv"] == [f"{folder}/main.py", "first", "second"]
    assert seen[0]["orig_argv"][1:] == ["-u", "-m", "main", "first", "second"]
    assert seen[0]["path"][0] == folder
    assert seen[0]["name"] == "__main__" and seen[0]["spec"].startswith("ModuleSpec(name='main'")
    assert not {"forkserver", "supervise"} & set(seen[0]["modules"])
    assert forked.status is plain.status is RunStatus.SUCCESS
    assert [err for _, _, err in results] == ["", ""]


@pytest.mark.parametrize("ending", ["exception", "exit message", "syntax error", "interrupt"])
async def test_a_forked_module_run_ends_as_python_m_ends(
    executors: tuple[LocalExecutor, LocalExecutor], tmp_path: Path, ending: str
) -> None:
    (forked, forked_log, _), (plain, plain_log, _) = await both(
        executors, tmp_path, ENDINGS[ending], module=True
    )
    assert forked_log == plain_log
    assert (forked.status, forked.exit_code) == (plain.status, plain.exit_code)
    if ending == "exception":  # runpy's frames, as `python -m` shows them, then the module's
        assert 'stderr F   File "<frozen runpy>", line ' in "\n".join(forked_log)


async def test_runs_start_a_new_interpreter_when_start_up_settings_differ(
    executors: tuple[LocalExecutor, LocalExecutor], tmp_path: Path
) -> None:
    forked, _ = executors
    spec = spec_for(tmp_path, "path", PROBE)
    assert forked.inline(spec)
    spec.env["PYTHONPATH"] = str(tmp_path)
    assert not forked.inline(spec)  # read at start: a forked interpreter would ignore it
    spec.env.pop("PYTHONPATH")
    spec.env["LC_ALL"] = "C"
    assert not forked.inline(spec)
    spec.env.pop("LC_ALL")
    spec.argv[0] = "/usr/bin/python3-of-an-environment"
    assert not forked.inline(spec)
    assert "PYTHONUNBUFFERED" in start_settings(run_env())
    # Still started through the fork server (the supervisor is), with its own interpreter.
    spec = spec_for(tmp_path / "x", "probe", PROBE)
    spec.env["PYTHONPATH"] = str(tmp_path)
    record, texts, _ = await run(forked, spec)
    assert record.status is RunStatus.SUCCESS
    assert str(tmp_path) in json.loads(texts[0].removeprefix("stdout F "))["path"]


async def test_the_fork_server_holds_none_of_the_servers_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_TOKEN", "server-secret")
    executor = LocalExecutor()
    await executor.start()
    try:
        assert executor._fork is not None and executor._fork.proc is not None
        pid = executor._fork.proc.pid
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert b"server-secret" not in environ
        assert b"PYTHONUNBUFFERED=1" in environ.split(b"\0")
    finally:
        await executor.stop()


async def test_a_run_outlives_the_fork_server_and_a_new_one_is_started(
    tmp_path: Path,
) -> None:
    executor = LocalExecutor()
    await executor.start()
    try:
        first = spec_for(tmp_path / "a", "long", 'import time\ntime.sleep(1.5)\nprint("done")\n')
        future = await executor.launch(first)
        assert executor._fork is not None and executor._fork.proc is not None
        old = executor._fork.proc.pid
        os.kill(old, signal.SIGKILL)
        for _ in range(500):  # until the connection closes
            if not executor._fork.alive:
                break
            await asyncio.sleep(0.01)
        second = spec_for(tmp_path / "b", "next", 'print("next")\n')
        record, texts, _ = await run(executor, second)
        assert (record.status, texts) == (RunStatus.SUCCESS, ["stdout F next"])
        assert executor._fork.proc is not None and executor._fork.proc.pid != old
        record = await asyncio.wait_for(future, 30)
        assert record.status is RunStatus.SUCCESS
        assert (first.run_dir / "log").read_text(encoding="utf-8").endswith(" stdout F done\n")
    finally:
        await executor.stop()


async def test_a_fork_server_that_ends_before_forking_fails_the_run_once(
    tmp_path: Path,
) -> None:
    executor = LocalExecutor()
    await executor.start()
    try:
        assert executor._fork is not None and executor._fork.proc is not None
        pid = executor._fork.proc.pid
        os.kill(pid, signal.SIGSTOP)  # it takes the request but never forks
        spec = spec_for(tmp_path, "lost", 'print("ran")\n')
        launch = asyncio.ensure_future(executor.launch(spec))
        await asyncio.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
        record = await asyncio.wait_for(await launch, 30)
        assert record.status is RunStatus.FAILURE
        assert "fork server ended before starting the run" in record.reason
        assert not (spec.run_dir / "log").exists()  # not run by anyone, not started twice
    finally:
        await executor.stop()


AUTOGROUP = Path("/proc/self/autogroup")


@pytest.mark.skipif(not AUTOGROUP.exists(), reason="this kernel does not group by session")
async def test_runs_share_one_autogroup_whose_priority_is_lowered(
    executors: tuple[LocalExecutor, LocalExecutor], tmp_path: Path
) -> None:
    # CPU is shared between autogroups (sessions) first: nice values alone would leave each
    # run in a session of its own with as much CPU as the whole Jupyter server.
    code = 'import os\nprint(open("/proc/self/autogroup").read().strip(), os.nice(0))\n'
    forked, plain = executors
    seen = []
    for index, executor in enumerate([forked, forked, plain]):
        spec = spec_for(tmp_path / str(index), "group", code)
        spec.niceness = 7
        record, texts, _ = await run(executor, spec)
        assert record.status is RunStatus.SUCCESS
        group, word, nice, niceness = texts[0].removeprefix("stdout F ").split()
        assert (word, nice, niceness) == ("nice", "7", "7")
        seen.append(group)
    assert seen[0] == seen[1]  # the fork server's session: one group for all its runs
    assert seen[2] != seen[0]  # a session of its own, niced all the same
    # not the server's; a process in the root group (a container's init session) reads nothing
    server_group = AUTOGROUP.read_text().split()[:1]
    assert not set(server_group) & set(seen)
