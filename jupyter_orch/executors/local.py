"""Runs on the server's own machine: one supervisor process per run, watched through a pidfd.

A pidfd tells the event loop when a process ends whether or not it is our child, so the same
code follows a supervisor started by this server and one re-attached after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import supervise
from ..models import RunStatus, now
from .base import Executor, ExitRecord, RunSpec

log = logging.getLogger(__name__)

# Supervisors outlive a stopping server on purpose (a restarted one re-attaches to them);
# their Popen objects are kept here so they are never collected as "still running".
_DETACHED: list[subprocess.Popen[bytes]] = []


@dataclass
class _Watched:
    pid: int
    run_dir: Path
    future: asyncio.Future[ExitRecord]
    grace: float
    pidfd: int | None = None
    proc: subprocess.Popen[bytes] | None = None  # when the supervisor is our own child
    kill_requested: bool = False


def _from_ns(value: object) -> datetime | None:
    if not isinstance(value, int):
        return None
    return datetime.fromtimestamp(value / 1e9, tz=timezone.utc)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def append_note(run_dir: Path, text: str) -> None:
    """Append a line of our own to a run's log, in the log's format."""
    stamp = supervise.Clock().stamp(time.time_ns())
    with open(run_dir / "log", "a", encoding="utf-8") as fh:
        fh.write(f"{stamp} stderr F {text}\n")


def read_exit(run_dir: Path, kill_requested: bool) -> ExitRecord:
    """The run's exit record; a supervisor that left none vanished (or was killed hard)."""
    data = _read_json(run_dir / "exit.json")
    if data is not None and data.get("status") in {s.value for s in RunStatus}:
        return ExitRecord(
            status=RunStatus(data["status"]),
            exit_code=data.get("exit_code"),
            reason=str(data.get("reason", "")),
            started_at=_from_ns(data.get("started_ns")),
            ended_at=_from_ns(data.get("ended_ns")) or now(),
        )
    _kill_orphans(run_dir)
    if kill_requested:
        reason = "killed on request before its supervisor could record it"
        status = RunStatus.KILLED
    else:
        reason = "the run's supervisor vanished before recording an exit status"
        status = RunStatus.FAILURE
    append_note(run_dir, f"jupyter_orch: {reason}")
    return ExitRecord(status=status, exit_code=None, reason=reason, ended_at=now())


def _kill_orphans(run_dir: Path) -> None:
    """Kill the process group of a run whose supervisor is gone, so no process survives it."""
    child = _read_json(run_dir / "child.json")
    if child and isinstance(child.get("pid"), int):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child["pid"], signal.SIGKILL)


def supervisor_alive(run_dir: Path) -> int | None:
    """The pid of the run's supervisor if that very process still runs (not a reused pid)."""
    info = _read_json(run_dir / "supervisor.json")
    if not info or not isinstance(info.get("pid"), int):
        return None
    pid: int = info["pid"]
    ticks = supervise.process_start_ticks(pid)
    if ticks is None or ticks != info.get("start"):
        return None
    return pid


class LocalExecutor(Executor):
    """Launches a supervisor (`supervise.command`) in a new session for each run."""

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python
        self._runs: dict[str, _Watched] = {}

    async def launch(self, spec: RunSpec) -> asyncio.Future[ExitRecord]:
        """Write the run's spec and start its supervisor."""
        proc = await asyncio.to_thread(self._spawn, spec)
        return self._watch(spec.run_id, proc.pid, spec.run_dir, spec.grace, proc)

    def _spawn(self, spec: RunSpec) -> subprocess.Popen[bytes]:
        """Start the supervisor in a session of its own.

        subprocess rather than os.posix_spawn: posix_spawn holds the GIL until the child has
        exec'd, which stalls the event loop when many runs start at one instant (measured:
        15 ms against 6 ms for 17 spawns from a 300 MB process).
        """
        spec.run_dir.mkdir(parents=True, exist_ok=True)
        supervise.write_spec(str(spec.run_dir), spec.to_json())
        with open(spec.run_dir / "supervisor.err", "wb") as err:
            proc = subprocess.Popen(
                supervise.command(self.python, str(spec.run_dir)),
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,
                close_fds=True,
            )
        return proc

    async def reattach(self, run_id: str, run_dir: Path) -> asyncio.Future[ExitRecord]:
        """Follow a supervisor started by an earlier server, or record how its run ended."""
        pid = await asyncio.to_thread(supervisor_alive, run_dir)
        if pid is None:
            record = await asyncio.to_thread(read_exit, run_dir, False)
            future: asyncio.Future[ExitRecord] = asyncio.get_running_loop().create_future()
            future.set_result(record)
            return future
        return self._watch(run_id, pid, run_dir, grace=10.0)

    def _watch(
        self,
        run_id: str,
        pid: int,
        run_dir: Path,
        grace: float,
        proc: subprocess.Popen[bytes] | None = None,
    ) -> asyncio.Future[ExitRecord]:
        loop = asyncio.get_running_loop()
        watched = _Watched(pid, run_dir, loop.create_future(), grace, proc=proc)
        self._runs[run_id] = watched
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._ended(run_id, None)
            return watched.future
        watched.pidfd = pidfd
        loop.add_reader(pidfd, self._ended, run_id, pidfd)
        return watched.future

    def _ended(self, run_id: str, pidfd: int | None) -> None:
        watched = self._runs.pop(run_id, None)
        if pidfd is not None:
            asyncio.get_running_loop().remove_reader(pidfd)
            os.close(pidfd)
        if watched is None:
            return
        if watched.proc is not None:
            watched.proc.poll()  # reap our own child
        task = asyncio.ensure_future(
            asyncio.to_thread(read_exit, watched.run_dir, watched.kill_requested)
        )
        task.add_done_callback(lambda done: _settle(watched.future, done))

    def kill(self, run_id: str) -> bool:
        """SIGTERM to the supervisor, which stops the run; SIGKILL all if it does not end."""
        watched = self._runs.get(run_id)
        if watched is None:
            return False
        watched.kill_requested = True
        _signal(watched.pid, signal.SIGTERM)
        loop = asyncio.get_running_loop()
        loop.call_later(watched.grace + 5.0, self._force, run_id, watched)
        return True

    def _force(self, run_id: str, watched: _Watched) -> None:
        """The supervisor did not finish in time: kill it and the run's process group."""
        if self._runs.get(run_id) is not watched:
            return
        log.warning("run %s did not stop within its grace period; killing it", run_id)
        _kill_orphans(watched.run_dir)
        _signal(watched.pid, signal.SIGKILL)

    async def stop(self) -> None:
        """Stop watching (runs go on; a restarted server re-attaches to them)."""
        loop = asyncio.get_running_loop()
        for watched in self._runs.values():
            if watched.pidfd is not None:
                loop.remove_reader(watched.pidfd)
                os.close(watched.pidfd)
            if watched.proc is not None:
                _DETACHED.append(watched.proc)
            watched.future.cancel()
        self._runs.clear()


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _settle(future: asyncio.Future[ExitRecord], done: asyncio.Future[ExitRecord]) -> None:
    if future.done():
        return
    if done.exception() is not None:
        exc = done.exception()
        future.set_result(
            ExitRecord(RunStatus.FAILURE, None, f"could not read the exit record: {exc}", now())
        )
    else:
        future.set_result(done.result())
