"""The run supervisor: starts one run's process, writes its log, and records how it ended.

It is started as ``python -I -S supervise.py RUN_DIR`` in a session of its own, so it does not
die with the Jupyter server and costs little to start (standard library only, no site
packages). ``RUN_DIR/spec.json`` says what to run; the supervisor writes:

- ``supervisor.json``: its pid and kernel start time (to re-attach after a server restart);
- ``child.json``: the run process's pid, which is also its process group;
- ``log``: every line the process prints, as ``<RFC 3339 ns>Z <stream> F|P <text>``;
- ``exit.json``: the end of the run (status, exit code, reason, times), written atomically.

SIGTERM to the supervisor means "kill the run": the run's process group gets SIGTERM, then
SIGKILL after the grace period. The supervisor enforces the run's timeout the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

CHUNK = 1 << 16
STREAMS = ("stdout", "stderr")


def process_start_ticks(pid: int) -> int | None:
    """The kernel's start time of a process (field 22 of /proc/PID/stat), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return int(stat[stat.rindex(b")") + 2 :].split()[19])


def write_json(path: str, data: dict[str, Any]) -> None:
    """Write a small JSON file atomically (write then rename)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Clock:
    """Formats nanosecond times as RFC 3339, caching the part that changes once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def stamp(self, ns: int) -> str:
        """`2023-05-22T21:09:17.683428502Z` for a time in nanoseconds since the epoch."""
        second, frac = divmod(ns, 1_000_000_000)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{frac:09d}Z"


class LogWriter:
    """Turns raw output of the run's streams into CRI log lines, appended to one file."""

    def __init__(self, path: str, max_line: int) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.max_line = max_line
        self.clock = Clock()
        self.pending: dict[str, bytes] = {name: b"" for name in STREAMS}
        self.out: list[bytes] = []

    def feed(self, stream: str, data: bytes, ns: int) -> None:
        """Take a chunk read from one stream; whole lines become log lines."""
        data = self.pending[stream] + data
        lines = data.split(b"\n")
        rest = lines.pop()
        head = f"{self.clock.stamp(ns)} {stream} ".encode()
        if lines:
            if max(map(len, lines)) <= self.max_line:
                full = head + b"F "
                self.out.append(full + (b"\n" + full).join(lines) + b"\n")
            else:
                for line in lines:
                    self._long_line(head, line, final=True)
        while len(rest) > self.max_line:
            self.out.append(head + b"P " + rest[: self.max_line] + b"\n")
            rest = rest[self.max_line :]
        self.pending[stream] = rest

    def _long_line(self, head: bytes, line: bytes, final: bool) -> None:
        while len(line) > self.max_line:
            self.out.append(head + b"P " + line[: self.max_line] + b"\n")
            line = line[self.max_line :]
        self.out.append(head + (b"F " if final else b"P ") + line + b"\n")

    def end_stream(self, stream: str, ns: int) -> None:
        """The stream closed: what is left of an unfinished line is written as a full line."""
        rest, self.pending[stream] = self.pending[stream], b""
        if rest:
            self._long_line(f"{self.clock.stamp(ns)} {stream} ".encode(), rest, final=True)

    def note(self, text: str) -> None:
        """A line of the supervisor's own (why a run was stopped), on stderr."""
        self.out.append(f"{self.clock.stamp(time.time_ns())} stderr F {text}\n".encode())

    def flush(self) -> None:
        """Append everything gathered since the last flush in one write."""
        if self.out:
            data = b"".join(self.out)
            self.out.clear()
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]


class Supervisor:
    """One run: its process, its pipes, its deadlines."""

    def __init__(self, run_dir: str, spec: dict[str, Any]) -> None:
        self.run_dir = run_dir
        self.spec = spec
        self.log = LogWriter(os.path.join(run_dir, "log"), int(spec.get("max_line", 16384)))
        self.grace = float(spec.get("grace", 10.0))
        timeout = spec.get("timeout")
        self.deadline = time.monotonic() + float(timeout) if timeout else None
        self.stop_reason: str | None = None  # "killed" or "timed_out" once stopping
        self.kill_at: float | None = None
        self.requested = False
        self.child: subprocess.Popen[bytes] | None = None

    def prepare_workdir(self) -> str:
        """A fresh copy of the orchestration's files; returns the entrypoint's folder in it."""
        work = os.path.join(self.run_dir, "work")
        shutil.copytree(self.spec["source"], work, copy_function=shutil.copy, dirs_exist_ok=True)
        return os.path.join(work, self.spec.get("cwd", ""))

    def start(self) -> None:
        """Start the run's process in a process group of its own."""
        cwd = self.prepare_workdir()
        # A process group of its own, so kill and timeout reach whatever the run starts.
        group: dict[str, Any] = (
            {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
        )
        self.child = subprocess.Popen(
            self.spec["argv"],
            cwd=cwd,
            env=self.spec["env"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            **group,
        )
        write_json(os.path.join(self.run_dir, "child.json"), {"pid": self.child.pid})

    def signal_group(self, signum: int) -> None:
        """Send a signal to every process of the run."""
        if self.child is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.child.pid, signum)

    def begin_stop(self, reason: str, note: str) -> None:
        """Start ending the run: SIGTERM now, SIGKILL after the grace period."""
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        self.log.note(note)
        self.signal_group(signal.SIGTERM)
        self.kill_at = time.monotonic() + self.grace

    def check_deadlines(self) -> None:
        """Act on a kill request, the run's timeout, or the end of the grace period."""
        if self.requested:
            self.begin_stop("killed", "jupyter_orch: run killed on request; stopping it")
        if self.deadline is not None and time.monotonic() >= self.deadline:
            timeout = self.spec.get("timeout")
            self.begin_stop("timed_out", f"jupyter_orch: run timed out after {timeout} s")
        if self.kill_at is not None and time.monotonic() >= self.kill_at:
            self.signal_group(signal.SIGKILL)
            self.kill_at = None

    def next_wait_ms(self) -> int | None:
        """How long poll() may sleep before a deadline needs attention."""
        moments = [t for t in (self.deadline, self.kill_at) if t is not None]
        if self.stop_reason is not None:
            moments = [t for t in (self.kill_at,) if t is not None]
        if not moments:
            return None
        return max(0, int((min(moments) - time.monotonic()) * 1000) + 1)

    def pump(self, wake_fd: int) -> None:
        """Copy the run's output into the log until both pipes close."""
        assert self.child is not None and self.child.stdout and self.child.stderr
        fds = {self.child.stdout.fileno(): "stdout", self.child.stderr.fileno(): "stderr"}
        poller = select.poll()
        for fd in (*fds, wake_fd):
            poller.register(fd, select.POLLIN)
        reaped_at: float | None = None
        while fds:
            wait = self.next_wait_ms()
            if reaped_at is not None:
                # The main process ended; stragglers were killed. Don't wait forever on
                # pipes held open by a process that escaped the group.
                left = int((reaped_at + 2.0 - time.monotonic()) * 1000)
                if left <= 0:
                    break
                wait = left if wait is None else min(wait, left)
            for fd, _ in poller.poll(wait):
                if fd == wake_fd:
                    _drain(wake_fd)
                    continue
                data = os.read(fd, CHUNK)
                stamp = time.time_ns()
                if data:
                    self.log.feed(fds[fd], data, stamp)
                else:
                    self.log.end_stream(fds.pop(fd), stamp)
                    poller.unregister(fd)
            self.log.flush()
            self.check_deadlines()
            if reaped_at is None and self.child.poll() is not None:
                self.signal_group(signal.SIGKILL)
                reaped_at = time.monotonic()
        for stream in STREAMS:
            self.log.end_stream(stream, time.time_ns())
        self.log.flush()

    def outcome(self) -> dict[str, Any]:
        """The exit record of the ended run."""
        assert self.child is not None
        code = self.child.wait()
        self.signal_group(signal.SIGKILL)
        if self.stop_reason == "killed":
            status, reason = "killed", "killed on request"
        elif self.stop_reason == "timed_out":
            status, reason = "timed_out", f"timed out after {self.spec.get('timeout')} s"
        elif code == 0:
            status, reason = "success", "exit code 0"
        elif code < 0:
            status, reason = "failure", f"ended by signal {-code}"
        else:
            status, reason = "failure", f"exit code {code}"
        return {"status": status, "exit_code": code, "reason": reason}


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def run(run_dir: str) -> int:
    """Supervise the run described in RUN_DIR/spec.json to its end."""
    with open(os.path.join(run_dir, "spec.json"), encoding="utf-8") as fh:
        spec = json.load(fh)
    sup = Supervisor(run_dir, spec)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)

    def on_term(signum: int, frame: object) -> None:
        sup.requested = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    me = os.getpid()
    write_json(
        os.path.join(run_dir, "supervisor.json"), {"pid": me, "start": process_start_ticks(me)}
    )
    started = time.time_ns()
    try:
        if sup.requested:
            raise InterruptedError("killed before it started")
        sup.start()
    except InterruptedError as exc:
        record: dict[str, Any] = {"status": "killed", "exit_code": None, "reason": str(exc)}
    except OSError as exc:
        sup.log.note(f"jupyter_orch: could not start the run: {exc}")
        sup.log.flush()
        record = {"status": "failure", "exit_code": None, "reason": f"could not start: {exc}"}
    else:
        sup.pump(wake_r)
        record = sup.outcome()
    record["started_ns"], record["ended_ns"] = started, time.time_ns()
    write_json(os.path.join(run_dir, "exit.json"), record)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1]))
