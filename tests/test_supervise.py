"""The run supervisor on its own: started as the server starts it, on a temporary run folder."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from jupyter_orch._proc import runfiles, supervise

LINE = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) ([FP]) (.*)$", re.S)

# Ignores SIGTERM, starts a grandchild in its group, says who they are, then sleeps.
STUBBORN = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print("group", os.getpgid(0), "child", child.pid, flush=True)
time.sleep(60)
"""


def make_run(tmp_path: Path, code: str = "", argv: list[str] | None = None, **spec: Any) -> Path:
    """A run folder whose spec runs `code` as main.py (or `argv`) from a fresh source folder."""
    source, run_dir = tmp_path / "source", tmp_path / "run"
    source.mkdir()
    run_dir.mkdir()
    (source / "main.py").write_text(code, encoding="utf-8")
    full = {
        "argv": argv or [sys.executable, "-u", "main.py"],
        "env": {"PATH": os.environ.get("PATH", os.defpath)},
        "source": str(source),
        "cwd": "",
        "timeout": None,
        "grace": 1.0,
        "max_line": 16384,
        **spec,
    }
    runfiles.write_spec(str(run_dir), full)
    return run_dir


def start(run_dir: Path) -> subprocess.Popen[bytes]:
    """Start the supervisor of `run_dir` the way the local executor does."""
    with open(run_dir / "supervisor.err", "wb") as err:
        return subprocess.Popen(
            supervise.command(sys.executable, str(run_dir)),
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            start_new_session=True,
        )


def finish(proc: subprocess.Popen[bytes], run_dir: Path) -> dict[str, Any]:
    """Wait for the supervisor; its exit record (it must have said nothing itself)."""
    assert proc.wait(timeout=60) == 0
    assert (run_dir / "supervisor.err").read_bytes() == b""
    record: dict[str, Any] = json.loads((run_dir / "exit.json").read_text(encoding="utf-8"))
    return record


def supervise_code(tmp_path: Path, code: str, **spec: Any) -> tuple[dict[str, Any], list[bytes]]:
    """Run `code` under a supervisor to its end: the exit record and the raw log lines."""
    run_dir = make_run(tmp_path, code, **spec)
    record = finish(start(run_dir), run_dir)
    return record, log_lines(run_dir)


def log_lines(run_dir: Path) -> list[bytes]:
    """The run's log, line by line, without the newlines."""
    lines = (run_dir / "log").read_bytes().split(b"\n")  # not splitlines(): \r is text
    assert lines.pop() == b""
    return lines


def parsed(lines: list[bytes]) -> list[tuple[str, str, bytes]]:
    """(stream, F or P, text) of each log line, checking the time stamp's format."""
    out = []
    for line in lines:
        match = LINE.match(line)
        assert match, line
        out.append((match[1].decode(), match[2].decode(), match[3]))
    return out


def group_alive(pgid: int) -> bool:
    """Whether any process is left in a process group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pgid: int, timeout: float = 10) -> None:
    """Poll until the process group is empty (its last members may be reaped a bit later)."""
    deadline = time.monotonic() + timeout
    while group_alive(pgid):
        assert time.monotonic() < deadline, f"process group {pgid} still alive"
        time.sleep(0.02)


def wait_for_line(run_dir: Path, prefix: bytes, timeout: float = 30) -> list[bytes]:
    """Poll the log until a line's text starts with `prefix`; the words of that text."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (run_dir / "log").exists():
            for _, _, text in parsed(log_lines(run_dir)):
                if text.startswith(prefix):
                    return text.split()
        time.sleep(0.02)
    raise AssertionError(f"no line starting with {prefix!r} in {run_dir / 'log'}")


def test_a_run_logs_both_streams_in_order_and_records_its_end(tmp_path: Path) -> None:
    # Each line waits until the one before it is in the log (../log from the work folder):
    # lines of two pipes written close together may be read in either order.
    code = (
        "import os, sys, time\n"
        "def logged(text):\n"
        "    while text not in open('../log', 'rb').read():\n"
        "        time.sleep(0.01)\n"
        "print('out 1', flush=True)\n"
        "logged(b'out 1')\n"
        "print('err 1', file=sys.stderr, flush=True)\n"
        "logged(b'err 1')\n"
        "print('out 2', flush=True)\n"
        "print(os.getcwd(), os.getpgid(0) == os.getpid(), flush=True)\n"
    )
    run_dir = make_run(tmp_path, code)
    proc = start(run_dir)
    record = finish(proc, run_dir)
    assert record["status"] == "success"
    assert record["exit_code"] == 0 and record["reason"] == "exit code 0"
    assert isinstance(record["started_ns"], int) and record["started_ns"] <= record["ended_ns"]
    lines = parsed(log_lines(run_dir))
    assert lines == [
        ("stdout", "F", b"out 1"),
        ("stderr", "F", b"err 1"),
        ("stdout", "F", b"out 2"),
        ("stdout", "F", f"{run_dir / 'work'} True".encode()),
    ]
    stamps = [line.split(b" ")[0] for line in log_lines(run_dir)]
    assert stamps == sorted(stamps)
    info = json.loads((run_dir / "supervisor.json").read_text())
    assert info["pid"] == proc.pid and isinstance(info["start"], int) and info["start"] > 0
    child = json.loads((run_dir / "child.json").read_text())
    assert isinstance(child["pid"], int) and child["pid"] != proc.pid


def test_the_working_folder_is_a_copy_with_modes(tmp_path: Path) -> None:
    code = "import os\nprint(os.getcwd(), flush=True)\nprint(open('data.txt').read())\n"
    run_dir = make_run(tmp_path, "", cwd="pkg")
    source = tmp_path / "source"
    (source / "pkg" / "deep").mkdir(parents=True)
    (source / "pkg" / "main.py").write_text(code, encoding="utf-8")
    (source / "pkg" / "data.txt").write_text("data", encoding="utf-8")
    (source / "pkg" / "deep" / "tool.sh").write_bytes(b"#!/bin/sh\n" + bytes(range(256)))
    (source / "pkg" / "deep" / "tool.sh").chmod(0o751)
    record = finish(start(run_dir), run_dir)
    assert record["status"] == "success", record
    work = run_dir / "work"
    assert [text for _, _, text in parsed(log_lines(run_dir))] == [
        str(work / "pkg").encode(),
        b"data",
    ]
    copied = work / "pkg" / "deep" / "tool.sh"
    assert copied.read_bytes() == (source / "pkg" / "deep" / "tool.sh").read_bytes()
    assert copied.stat().st_mode & 0o7777 == 0o751
    assert (work / "main.py").read_text(encoding="utf-8") == ""


def test_long_lines_are_split_into_pieces(tmp_path: Path) -> None:
    code = "import sys\nprint('a' * 25)\nprint('short')\nsys.stdout.write('b' * 12)\n"
    record, lines = supervise_code(tmp_path, code, max_line=10)
    assert record["status"] == "success"
    assert [(flag, text) for _, flag, text in parsed(lines)] == [
        ("P", b"a" * 10),
        ("P", b"a" * 10),
        ("F", b"a" * 5),
        ("F", b"short"),
        ("P", b"b" * 10),
        ("F", b"bb"),
    ]


def test_a_last_line_without_newline_is_kept(tmp_path: Path) -> None:
    code = "import sys\nprint('one')\nsys.stdout.write('two')\nsys.stderr.write('three')\n"
    _, lines = supervise_code(tmp_path, code)
    assert sorted(parsed(lines)) == [
        ("stderr", "F", b"three"),
        ("stdout", "F", b"one"),
        ("stdout", "F", b"two"),
    ]


def test_bytes_that_are_not_utf8_are_kept(tmp_path: Path) -> None:
    code = "import sys\nsys.stdout.buffer.write(b'\\xff\\xfe bad \\xc3\\n\\tx\\r\\n')\n"
    _, lines = supervise_code(tmp_path, code)
    assert [text for _, _, text in parsed(lines)] == [b"\xff\xfe bad \xc3", b"\tx\r"]


@pytest.mark.parametrize(
    ("code", "status", "exit_code", "reason"),
    [
        ("pass", "success", 0, "exit code 0"),
        ("raise SystemExit(3)", "failure", 3, "exit code 3"),
        (
            "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
            "failure",
            -9,
            "ended by signal 9",
        ),
        (
            "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)",
            "failure",
            -11,
            "ended by signal 11",
        ),
    ],
)
def test_exit_codes_and_signals(
    tmp_path: Path, code: str, status: str, exit_code: int, reason: str
) -> None:
    record, _ = supervise_code(tmp_path, code)
    assert (record["status"], record["exit_code"], record["reason"]) == (status, exit_code, reason)


def test_a_timeout_ends_the_whole_group(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, STUBBORN, timeout=0.5, grace=0.5)
    proc = start(run_dir)
    words = wait_for_line(run_dir, b"group")
    record = finish(proc, run_dir)
    assert record["status"] == "timed_out" and record["exit_code"] == -9
    assert record["reason"] == "timed out after 0.5 s"
    wait_gone(int(words[1]))
    texts = [text for _, _, text in parsed(log_lines(run_dir))]
    assert texts[-1] == b"jupyter_orch: run timed out after 0.5 s"


def test_sigterm_kills_the_run_politely_first(tmp_path: Path) -> None:
    code = (
        "import os, signal, sys, time\n"
        "def bye(*_):\n"
        "    print('got SIGTERM', flush=True)\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "print('group', os.getpgid(0), flush=True)\n"
        "time.sleep(60)\n"
    )
    run_dir = make_run(tmp_path, code)
    proc = start(run_dir)
    words = wait_for_line(run_dir, b"group")
    proc.send_signal(signal.SIGTERM)
    record = finish(proc, run_dir)
    assert record["status"] == "killed" and record["reason"] == "killed on request"
    assert record["exit_code"] == 0
    wait_gone(int(words[1]))
    texts = [text for _, _, text in parsed(log_lines(run_dir))]
    assert b"jupyter_orch: run killed on request; stopping it" in texts
    assert texts[-1] == b"got SIGTERM"


def test_sigterm_then_sigkill_for_a_run_that_ignores_it(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, STUBBORN, grace=0.3)
    proc = start(run_dir)
    words = wait_for_line(run_dir, b"group")
    proc.send_signal(signal.SIGTERM)
    record = finish(proc, run_dir)
    assert record["status"] == "killed" and record["exit_code"] == -9
    wait_gone(int(words[1]))


def test_stragglers_are_killed_when_the_main_process_ends(tmp_path: Path) -> None:
    code = (
        "import os, subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print('group', os.getpgid(0), 'child', child.pid, flush=True)\n"
    )
    run_dir = make_run(tmp_path, code)
    record = finish(start(run_dir), run_dir)
    assert record["status"] == "success"
    words = wait_for_line(run_dir, b"group")
    wait_gone(int(words[1]))


# Starts a process that leaves the run's process group (`{escape}`) and forks once more, as a
# daemon does: the grandchild keeps nothing of the run's (its streams are /dev/null), and its
# parent exits, so the grandchild is an orphan. Prints the grandchild's pid, then `{then}`.
ESCAPE = """
import os, sys, time
r, w = os.pipe()
if os.fork() == 0:
    os.close(r)
    {escape}
    if os.fork() == 0:
        os.write(w, str(os.getpid()).encode())
        os.close(w)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        time.sleep(60)
    os._exit(0)
os.close(w)
print("escapee", os.read(r, 100).decode(), flush=True)
{then}
"""
ESCAPES = {"setsid": "os.setsid()", "setpgid": "os.setpgid(0, 0)"}


def alive(pid: int) -> bool:
    """Whether a process exists and has not ended (a zombie has ended)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rpartition(b")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != b"Z"


@pytest.mark.parametrize("escape", sorted(ESCAPES))
@pytest.mark.parametrize("ending", ["end", "timeout", "kill"])
def test_every_process_of_the_run_ends_with_it_wherever_it_moved(
    tmp_path: Path, escape: str, ending: str
) -> None:
    then = "" if ending == "end" else "time.sleep(60)"
    code = ESCAPE.format(escape=ESCAPES[escape], then=then)
    run_dir = make_run(tmp_path, code, timeout=1.0 if ending == "timeout" else None, grace=0.5)
    proc = start(run_dir)
    escapee = int(wait_for_line(run_dir, b"escapee")[1])
    try:
        if ending == "kill":
            proc.send_signal(signal.SIGTERM)
        record = finish(proc, run_dir)
        expected = {"end": "success", "timeout": "timed_out", "kill": "killed"}[ending]
        assert record["status"] == expected, record
        assert not alive(escapee), f"process {escapee} ({escape}) outlived its run"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(escapee, signal.SIGKILL)


def test_a_run_that_closes_its_streams_is_still_timed_out(tmp_path: Path) -> None:
    code = "import os, time\nos.close(1)\nos.close(2)\ntime.sleep(60)\n"
    record, lines = supervise_code(tmp_path, code, timeout=1.0, grace=0.5)
    assert (record["status"], record["reason"]) == ("timed_out", "timed out after 1.0 s")
    assert [text for _, _, text in parsed(lines)] == [b"jupyter_orch: run timed out after 1.0 s"]


def test_a_run_that_closes_its_streams_is_still_killed(tmp_path: Path) -> None:
    code = (
        "import os, time\nprint('closing', flush=True)\nos.close(1)\nos.close(2)\ntime.sleep(60)\n"
    )
    run_dir = make_run(tmp_path, code, grace=0.5)
    proc = start(run_dir)
    wait_for_line(run_dir, b"closing")
    proc.send_signal(signal.SIGTERM)
    record = finish(proc, run_dir)
    assert (record["status"], record["exit_code"]) == ("killed", -15)


@pytest.mark.parametrize(
    ("argv", "cwd", "reason"),
    [
        (
            ["/nonexistent/python", "main.py"],
            "",
            "No such file or directory: '/nonexistent/python'",
        ),
        (
            ["surely-not-a-command-orch"],
            "",
            "No such file or directory: 'surely-not-a-command-orch'",
        ),
        ([sys.executable, "main.py"], "missing", "No such file or directory: '{work}/missing'"),
        (["{work}/main.py"], "", "Permission denied: '{work}/main.py'"),
    ],
)
def test_a_process_that_cannot_start_is_a_failure_with_a_reason(
    tmp_path: Path, argv: list[str], cwd: str, reason: str
) -> None:
    work = tmp_path / "run" / "work"
    argv = [arg.format(work=work) for arg in argv]
    run_dir = make_run(tmp_path, "print('never')\n", argv=argv, cwd=cwd)
    record = finish(start(run_dir), run_dir)
    expected = reason.format(work=work)
    assert record["status"] == "failure" and record["exit_code"] is None
    assert record["reason"].startswith("could not start: [Errno ") and expected in record["reason"]
    texts = [text.decode() for _, _, text in parsed(log_lines(run_dir))]
    assert len(texts) == 1 and texts[0].startswith("jupyter_orch: could not start the run: ")
    assert expected in texts[0]
    assert not (run_dir / "child.json").exists()


def test_a_spec_written_as_json_only_is_read(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "print('from json')\n")
    spec = json.loads((run_dir / "spec.json").read_text(encoding="utf-8"))
    assert spec.pop("secret_names") == []
    assert runfiles.read_spec(str(run_dir)) == {**spec, "secrets": {}}
    (run_dir / runfiles.SPEC_BIN).unlink()
    record = finish(start(run_dir), run_dir)
    assert record["status"] == "success"
    assert [text for _, _, text in parsed(log_lines(run_dir))] == [b"from json"]


def test_the_supervisor_imports_only_cheap_modules() -> None:
    code = (
        supervise.BOOT.split("sys.exit")[0]
        + "print(' '.join(sorted(sys.modules)))"  # everything loaded by start-up and import
    )
    pkg_dir = os.path.dirname(supervise.__file__)
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, pkg_dir], capture_output=True, check=True
    )
    loaded = set(out.stdout.decode().split())
    assert {"supervise", "runfiles"} <= loaded  # by their top-level names, from PKGDIR
    assert not loaded & {"subprocess", "json", "shutil", "typing", "signal", "enum", "re"}


TRICKY = [
    "",
    "plain",
    'quote " and backslash \\ and slash /',
    "".join(map(chr, range(32))) + "\x7f",
    "tab\tnew\nline\rreturn\bback\fform",
    "é ü ñ — €",
    "emoji 🎉 and 𝄞 beyond the BMP",
    "line separators \u2028 \u2029",
    "a lone surrogate \udcff from a file name",
    "\x00nul",
]


@pytest.mark.parametrize("text", TRICKY)
def test_the_json_encoder_writes_what_json_reads(text: str) -> None:
    data: dict[str, Any] = {text: text, "n": -12, "big": 2**70, "none": None, "yes": True}
    encoded = runfiles.encode_json(data)
    assert encoded == json.dumps(data)
    assert encoded.isascii()
    assert json.loads(encoded) == data


def test_the_json_encoder_writes_nested_values_as_json_does() -> None:
    data: dict[str, Any] = {
        "argv": ["/usr/bin/python", "-u", "main.py"],
        "env": {"A": "1", "É": "é\n"},
        "timeout": 2.5,
        "small": 1e-07,
        "big": 1e22,
        "neg": -0.0,
        "nested": [[], {}, [1, [2, {"x": None}]], (True, False)],
    }
    encoded = runfiles.encode_json(data)
    assert encoded == json.dumps(data)
    assert json.loads(encoded) == json.loads(json.dumps(data))


def test_the_json_encoder_refuses_what_it_cannot_write() -> None:
    for value in (object(), {1: "a"}, b"bytes", {1, 2}):
        with pytest.raises(TypeError):
            runfiles.encode_json({"x": value})
    for value in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            runfiles.encode_json({"x": value})


@pytest.mark.parametrize("sync", [True, False])
def test_write_json_replaces_the_file_whole(tmp_path: Path, sync: bool) -> None:
    path = tmp_path / "record.json"
    path.write_text("old", encoding="utf-8")
    data: dict[str, Any] = {"status": "failure", "reason": '"bad"\n\\ é', "exit_code": None}
    runfiles.write_json(str(path), data, sync=sync)
    assert json.loads(path.read_text(encoding="utf-8")) == data
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_a_deadline_beyond_what_one_poll_can_wait_is_waited_for_in_several(
    tmp_path: Path,
) -> None:
    """poll() takes at most 2**31 - 1 ms (24.8 days): a timeout or a grace period beyond it
    is waited for in several sleeps, and the run ends as any other."""
    run_dir = make_run(tmp_path, "print('done')\n", timeout=60 * 86400.0, grace=40 * 86400.0)
    record = finish(start(run_dir), run_dir)
    assert record["status"] == "success"
    sup = supervise.Supervisor(str(run_dir), runfiles.read_spec(str(run_dir)))
    assert sup.next_wait_ms() == supervise.MAX_WAIT_MS
    sup.begin_stop("killed", "stopping")  # no process: only the grace period starts
    assert sup.next_wait_ms() == supervise.MAX_WAIT_MS
    sup.deadline = sup.kill_at = time.monotonic() + 1
    assert 0 < (sup.next_wait_ms() or 0) <= 1001


def test_the_run_is_niced_and_its_supervisor_is_not(tmp_path: Path) -> None:
    """The supervisor keeps its priority so that it outruns the run it reads (it wakes at
    each write instead of reading what piled up while busy user code held the CPU)."""
    code = "import os\nprint(os.nice(0), os.getpriority(os.PRIO_PROCESS, os.getppid()))\n"
    _, lines = supervise_code(tmp_path, code, niceness=5)
    mine = os.nice(0)
    assert [text for _, _, text in parsed(lines)] == [f"{mine + 5} {mine}".encode()]
