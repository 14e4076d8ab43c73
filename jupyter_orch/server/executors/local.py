"""Runs on the server's own machine: one supervisor process per run, watched through a pidfd.

Supervisors are forked by the fork server (`jupyter_orch._proc.forkserver`), started with the
executor; when it cannot be had, each supervisor is a new process started with `subprocess`.
A pidfd tells the event loop when a process ends whether or not it is our child, so the same
code follows a supervisor of either kind and one re-attached after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..._proc import forkserver, runfiles, supervise
from ..models import RunStatus, now
from .base import Executor, ExitRecord, RunSpec, append_note, base_env

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


def read_exit(run_dir: Path, kill_requested: bool) -> ExitRecord:
    """The run's exit record; a supervisor that left none vanished (or was killed hard)."""
    data = _read_json(run_dir / runfiles.EXIT)
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
    if _no_space(run_dir):
        reason += " (the disk of the run's folder is full)"
    try:
        append_note(run_dir, f"jupyter_orch: {reason}")
    except OSError as exc:  # a full disk: the run's end is recorded all the same
        log.warning("jupyter_orch: could not add to the log of %s: %s", run_dir.name, exc)
    return ExitRecord(status=status, exit_code=None, reason=reason, ended_at=now())


def _no_space(run_dir: Path) -> bool:
    """Whether the file system of a run's folder has no room left for a file."""
    try:
        stat = os.statvfs(run_dir)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < 64 * 1024


def _kill_orphans(run_dir: Path) -> None:
    """Kill the process group of a run whose supervisor is gone, so no process survives it."""
    child = _read_json(run_dir / runfiles.CHILD)
    if child and isinstance(child.get("pid"), int):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child["pid"], signal.SIGKILL)


def supervisor_alive(run_dir: Path) -> int | None:
    """The pid of the run's supervisor if that very process still runs (not a reused pid)."""
    info = _read_json(run_dir / runfiles.SUPERVISOR)
    if not info or not isinstance(info.get("pid"), int):
        return None
    pid: int = info["pid"]
    ticks = supervise.process_start_ticks(pid)
    if ticks is None or ticks != info.get("start"):
        return None
    return pid


def spec_grace(run_dir: Path, default: float = 10.0) -> float:
    """The kill grace period the run's supervisor was started with (its spec says)."""
    spec = _read_json(run_dir / runfiles.SPEC_JSON)
    grace = spec.get("grace") if spec else None
    if isinstance(grace, (int, float)) and not isinstance(grace, bool) and grace >= 0:
        return float(grace)
    return default


#: Environment variables read while Python starts (encodings, paths, the user's site folder):
#: a run whose values differ from the fork server's starts an interpreter of its own.
START_PREFIXES = ("PYTHON", "LC_")
START_NAMES = ("LANG", "HOME")


def start_settings(env: dict[str, str]) -> dict[str, str]:
    """The part of an environment that shapes a starting interpreter."""
    return {k: v for k, v in env.items() if k.startswith(START_PREFIXES) or k in START_NAMES}


class ForkServerGone(ConnectionError):
    """The fork server ended (or never answered); `sent`: whether the request reached it."""

    def __init__(self, message: str, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class ForkServer:
    """The server's end of the fork server: requests out, supervisors' pids back."""

    def __init__(self, python: str, env: dict[str, str]) -> None:
        self.python = python
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._buffer = bytearray()
        self._pending: dict[str, asyncio.Future[tuple[int, int | None]]] = {}
        self._ready: asyncio.Future[int] | None = None
        self._send = asyncio.Lock()

    @property
    def alive(self) -> bool:
        """Whether requests can be sent."""
        return self._sock is not None

    async def start(self, timeout: float = 30.0) -> None:
        """Start the fork server and wait until it is ready (OSError if it is not)."""
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        try:
            self.proc = await asyncio.to_thread(
                subprocess.Popen,
                forkserver.command(self.python, theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                env=self.env,
                cwd="/",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C at the server's terminal does not reach it
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        self._ready = loop.create_future()
        loop.add_reader(ours.fileno(), self._readable)
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except (asyncio.TimeoutError, ConnectionError) as exc:
            await self.stop()
            raise OSError(f"the fork server did not start: {exc or 'no answer'}") from exc

    async def fork(self, request: dict[str, Any]) -> tuple[int, int | None]:
        """Have a supervisor forked; its pid and kernel start time."""
        if self._sock is None:
            raise ForkServerGone("the fork server is not running", sent=False)
        future: asyncio.Future[tuple[int, int | None]] = asyncio.get_running_loop().create_future()
        self._pending[request["id"]] = future
        try:
            async with self._send:
                await asyncio.get_running_loop().sock_sendall(
                    self._sock, forkserver.encode(request)
                )
        except OSError as exc:
            self._pending.pop(request["id"], None)
            self._gone(f"could not send to the fork server: {exc}")
            raise ForkServerGone(str(exc), sent=True) from exc
        return await future

    def _readable(self) -> None:
        assert self._sock is not None
        try:
            data = self._sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError as exc:
            self._gone(f"the fork server's socket failed: {exc}")
            return
        if not data:
            self._gone("the fork server ended")
            return
        self._buffer += data
        for message in forkserver.decode(self._buffer):
            if "ready" in message:
                if self._ready is not None and not self._ready.done():
                    self._ready.set_result(message["ready"])
                continue
            future = self._pending.pop(message["id"], None)
            if future is None or future.done():
                continue
            if "error" in message:
                future.set_exception(OSError(f"the fork server could not fork: {message['error']}"))
            else:
                future.set_result((message["pid"], message["start"]))

    def _gone(self, why: str) -> None:
        """The connection is over: fail whatever waits on it."""
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
            log.warning("jupyter_orch: %s; runs start without it until it is started again", why)
        for future in (self._ready, *self._pending.values()):
            if future is not None and not future.done():
                future.set_exception(ForkServerGone(why, sent=True))
        self._pending.clear()

    async def stop(self) -> None:
        """Close the connection: the fork server exits (the supervisors it forked go on)."""
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        proc, self.proc = self.proc, None
        if proc is not None:
            try:
                await asyncio.to_thread(proc.wait, 5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)


class LocalExecutor(Executor):
    """Runs each run under a supervisor of its own (`supervise`), on this machine.

    With `fork_server` (the default) supervisors are forked from a pre-started interpreter,
    and so is the run's own process when it runs with this interpreter and the fork server's
    start-up settings (`start_settings`); otherwise each is a new process.
    """

    #: After the fork server fails, runs start without it for this long before another try.
    RETRY_SECONDS = 30.0

    def __init__(self, python: str = sys.executable, fork_server: bool = True) -> None:
        self.python = python  # the server's own interpreter, by default
        self.use_fork_server = fork_server
        self._runs: dict[str, _Watched] = {}
        self._fork: ForkServer | None = None
        self._fork_env = {**base_env(), "PYTHONUNBUFFERED": "1"}
        self._fork_settings = start_settings(self._fork_env)
        self._fork_retry_at = 0.0

    def interpreter(self) -> str:
        """The server's interpreter (runs execute on this machine)."""
        return self.python

    async def start(self) -> None:
        """Start the fork server (runs start without it if it cannot be started)."""
        if self.use_fork_server:
            await self._start_fork_server()

    async def _start_fork_server(self) -> ForkServer | None:
        server = ForkServer(self.python, self._fork_env)
        try:
            await server.start()
        except OSError as exc:
            log.warning("jupyter_orch: %s; runs start without it", exc)
            self._fork_retry_at = time.monotonic() + self.RETRY_SECONDS
            return None
        self._fork = server
        return server

    async def _fork_server(self) -> ForkServer | None:
        """The running fork server, started again if it ended (not more than every 30 s)."""
        if not self.use_fork_server:
            return None
        if self._fork is not None and self._fork.alive:
            return self._fork
        if time.monotonic() < self._fork_retry_at:
            return None
        if self._fork is not None:
            await self._fork.stop()
            self._fork = None
        self._fork_retry_at = time.monotonic() + self.RETRY_SECONDS
        return await self._start_fork_server()

    def inline(self, spec: RunSpec) -> bool:
        """Whether the run's process can be forked from the fork server's interpreter."""
        argv = spec.argv
        return (
            self.use_fork_server
            and len(argv) >= 3
            and argv[0] == self.python
            and argv[1] == "-u"
            and start_settings(spec.env) == self._fork_settings
        )

    async def launch(self, spec: RunSpec) -> asyncio.Future[ExitRecord]:
        """Start the run's supervisor: forked by the fork server, else a process of its own."""
        server = await self._fork_server()
        if server is not None:
            request = {
                "id": spec.run_id,
                "dir": str(spec.run_dir),
                "spec": spec.to_json(),
                "inline": self.inline(spec),
            }
            try:
                pid, start = await server.fork(request)
            except ForkServerGone as exc:
                if exc.sent:
                    # It may have forked the supervisor before it ended: find it, never start
                    # the run a second time.
                    return await self._recover(spec)
            else:
                return self._watch(spec.run_id, pid, spec.run_dir, spec.grace, start=start)
        proc = await asyncio.to_thread(self._spawn, spec)
        return self._watch(spec.run_id, proc.pid, spec.run_dir, spec.grace, proc=proc)

    async def _recover(self, spec: RunSpec, wait: float = 5.0) -> asyncio.Future[ExitRecord]:
        """The fork server ended while asked to start a run: follow the run's supervisor if
        it started one, else the run failed to start."""
        record = spec.run_dir / runfiles.SUPERVISOR
        deadline = time.monotonic() + wait
        # Another process writes it, and nothing tells us when: look again, for a bounded time.
        while not record.exists() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if record.exists():
            return await self.reattach(spec.run_id, spec.run_dir)
        reason = "could not start: the fork server ended before starting the run"
        future: asyncio.Future[ExitRecord] = asyncio.get_running_loop().create_future()
        future.set_result(ExitRecord(RunStatus.FAILURE, None, reason, now()))
        return future

    def _spawn(self, spec: RunSpec) -> subprocess.Popen[bytes]:
        """Start the supervisor in a session of its own.

        subprocess rather than os.posix_spawn: posix_spawn holds the GIL until the child has
        exec'd, which stalls the event loop when many runs start at one instant (measured:
        15 ms against 6 ms for 17 spawns from a 300 MB process).
        """
        runfiles.make_run_dir(str(spec.run_dir))
        runfiles.write_spec(str(spec.run_dir), spec.to_json())
        err_path = spec.run_dir / runfiles.SUPERVISOR_ERR
        with open(os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as err:
            proc = subprocess.Popen(
                supervise.command(self.python, str(spec.run_dir)),
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,
                close_fds=True,
                # The run's secrets (its token) reach it here, never through its files; the
                # rest of its environment is in its spec.
                env=dict(spec.secrets),
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
        grace = await asyncio.to_thread(spec_grace, run_dir)
        return self._watch(run_id, pid, run_dir, grace=grace)

    def _watch(
        self,
        run_id: str,
        pid: int,
        run_dir: Path,
        grace: float,
        proc: subprocess.Popen[bytes] | None = None,
        start: int | None = None,
    ) -> asyncio.Future[ExitRecord]:
        """Follow the supervisor `pid`; `start`: its kernel start time, when known, so that
        a pid reused after it ended is not taken for it."""
        loop = asyncio.get_running_loop()
        watched = _Watched(pid, run_dir, loop.create_future(), grace, proc=proc)
        self._runs[run_id] = watched
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._ended(run_id, None)
            return watched.future
        if start is not None and supervise.process_start_ticks(pid) != start:
            os.close(pidfd)  # it ended (and was reaped) before we looked
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
        if self._fork is not None:
            await self._fork.stop()
            self._fork = None
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
