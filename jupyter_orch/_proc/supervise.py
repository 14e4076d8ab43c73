"""The run supervisor: starts one run's process, writes its log, and records how it ended.

The server starts it with `command()` (``python -I -S -c BOOT PKGDIR RUN_DIR``) in a session of
its own, so it does not die with the Jupyter server. ``RUN_DIR/spec.bin`` says what to run; the
supervisor writes ``supervisor.json``, ``child.json``, ``log`` and, last, ``exit.json`` there
(`runfiles` describes them all, and writes them).

SIGTERM to the supervisor means "kill the run": every process of the run gets SIGTERM, then
SIGKILL after the grace period. The supervisor enforces the run's timeout the same way, and
when the run's process ends, whatever it started and left running is killed. "Every process"
includes those that left the run's process group or session: the supervisor is their child
subreaper (`descendants`).

Its start-up is on the path of every run, so it imports only built-in or already loaded
modules: no ``subprocess`` (fork and exec below), ``shutil`` (`runfiles.copy_tree`), ``json``
(the spec is marshalled, the records written by `runfiles.encode_json`), ``typing``, nor
``signal`` (see below).
"""

from __future__ import annotations

import os
import select
import sys
import time

# mypy takes any name TYPE_CHECKING as true; at run time `typing` is never imported (~3 ms).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal  # `_signal` has no stubs; `signal` re-exports its whole API
    from collections.abc import Callable
    from typing import Any, NoReturn

    from .account import Account

    Record = dict[str, str | int | None]
    Env = dict[str, str]
    Owner = Account | None
    # how a forked child becomes the run's process (argv, env, cwd, out, report, owner)
    Become = Callable[[list[str], Env, str, tuple[int, int], int, Owner], NoReturn]
else:
    # The C module behind `signal`: the same functions, with signals as plain ints. `signal`
    # itself wraps them in enums, and importing `enum` costs ~3 ms.
    import _signal
# Imported as part of the package by the server; by its top-level name in a supervisor or the
# fork server, whose path holds this folder (BOOT), where `__package__` is empty.
if TYPE_CHECKING or __package__:
    from . import account, descendants, runfiles, runlog
else:
    import account
    import descendants
    import runfiles
    import runlog

CHUNK = runfiles.CHUNK
MAX_WAIT_MS = 2**31 - 1  # the longest poll() timeout (a C int of milliseconds)
#: The umask the supervisor started with, which the run's process gets back (the
#: supervisor's own files are private: 0077).
_run_umask: int | None = None
#: The niceness the run's process adds to its own as it starts (the supervisor does not).
_run_niceness = 0
STREAMS = runlog.STREAMS
# Run as an imported module, the supervisor's cached bytecode is used; a script is compiled at
# every start. PKGDIR goes last on the path so that it never shadows a standard module.
BOOT = (
    "import sys; sys.path.append(sys.argv[1]); import supervise; "
    "sys.exit(supervise.run(sys.argv[2]))"
)


def command(python: str, run_dir: str) -> list[str]:
    """The command line that supervises the run in `run_dir` (no site packages: quick start)."""
    pkg_dir = os.path.dirname(os.path.realpath(__file__))
    return [python, "-I", "-S", "-c", BOOT, pkg_dir, run_dir]


def process_start_ticks(pid: int) -> int | None:
    """The kernel's start time of a process (field 22 of /proc/PID/stat), or None if gone."""
    fields = descendants.stat_fields(pid)
    return None if fields is None else int(fields[19])


# -- the run's process -------------------------------------------------------------------------


def spawn(
    argv: list[str],
    env: dict[str, str],
    cwd: str,
    stdout: int,
    stderr: int,
    owner: account.Account | None = None,
    inline: bool = False,
) -> int:
    """Start `argv` in `cwd`, in a process group of its own, as `owner` if given; its pid
    (OSError if it can't).

    `inline`: the child runs ``argv`` (``python -u SCRIPT ...``) in this interpreter. Only in a
    supervisor forked by the fork server, whose interpreter is the run's: the child sets itself
    up as it would before exec, then raises `BecomeRun` up to the fork server's top level,
    which runs the script (`forkserver.run_script`). Its report pipe closes there, with every
    other inherited file, just before the script starts.

    What `subprocess.Popen` does, without its import cost: the child reports a failure before
    or in exec through a close-on-exec pipe, which a successful exec closes unwritten.
    """
    become = _become_inline if inline else _become_child
    return _start_child(become, argv, env, cwd, (stdout, stderr), owner)


class BecomeRun(BaseException):
    """Raised in a run's process forked from a warm interpreter: run `argv` with `env`."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        super().__init__("run's process")
        self.argv = argv
        self.env = env


def _start_child(
    become: Become,
    argv: list[str],
    env: dict[str, str],
    cwd: str,
    out: tuple[int, int],
    owner: account.Account | None,
) -> int:
    report_r, report_w = os.pipe()  # both close-on-exec (PEP 446)
    pid = os.fork()
    if pid == 0:
        os.close(report_r)
        become(argv, env, cwd, out, report_w, owner)
    os.close(report_w)
    with open(report_r, "rb") as report_file:
        report = report_file.read()  # until exec closes the pipe, or the child reports
    if not report:
        return pid
    os.waitpid(pid, 0)  # the child that failed has exited: reap it
    errno, _, text = report.decode("utf-8", "surrogateescape").partition(":")
    if int(errno):
        raise OSError(int(errno), os.strerror(int(errno)), text or None)
    raise OSError(f"the run's process failed before exec: {text}")


def _set_up_child(
    out: tuple[int, int], int_handler: _signal._HANDLER, owner: account.Account | None
) -> None:
    """The run's process before it runs: its umask, niceness, signals, process group, standard
    streams and, last, its owner's account."""
    if _run_umask is not None:
        os.umask(_run_umask)
    if _run_niceness:
        os.nice(_run_niceness)
    # The supervisor's handlers are no use here: a kill before exec ends the child. Python
    # ignores SIGPIPE and SIGXFSZ, and exec would keep that (subprocess resets them too);
    # a Python run goes on ignoring them, as Python does at start. SIGHUP stays ignored, as it
    # was under subprocess.
    _signal.set_wakeup_fd(-1)
    _signal.signal(_signal.SIGTERM, _signal.SIG_DFL)
    _signal.signal(_signal.SIGINT, int_handler)
    _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
    os.setpgid(0, 0)  # a group of its own, so kill and timeout reach all it starts
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(out[0], 1)
    os.dup2(out[1], 2)
    if owner is not None:
        account.drop(owner)


def _become_child(
    argv: list[str], env: Env, cwd: str, out: tuple[int, int], report: int, owner: Owner
) -> NoReturn:
    """In the forked child: set up, then exec the run's process (or report why not)."""
    failed = ""  # the file named in the error, as subprocess names it
    try:
        _set_up_child(out, _signal.SIG_DFL, owner)
        for signum in (_signal.SIGPIPE, _signal.SIGXFSZ):
            _signal.signal(signum, _signal.SIG_DFL)
        # Like close_fds=True: only 0-2 and the report pipe (closed by exec) stay open.
        os.closerange(3, report)
        os.closerange(report + 1, os.sysconf("SC_OPEN_MAX"))
        failed = cwd
        os.chdir(cwd)
        failed = argv[0]
        os.execvpe(argv[0], argv, env)
    except BaseException as exc:
        _report(report, exc, failed)
    finally:
        os._exit(127)


def _become_inline(
    argv: list[str], env: Env, cwd: str, out: tuple[int, int], report: int, owner: Owner
) -> NoReturn:
    """In the forked child of a warm supervisor: set up, then become the run's process."""
    try:
        _set_up_child(out, _signal.default_int_handler, owner)
        os.chdir(cwd)
    except BaseException as exc:
        _report(report, exc, cwd)
        os._exit(127)
    raise BecomeRun(argv, env)


def _report(report: int, exc: BaseException, failed: str) -> None:
    if isinstance(exc, OSError) and exc.errno:
        message = f"{exc.errno}:{failed}"
    else:
        message = f"0:{type(exc).__name__}: {exc}"
    os.write(report, message.encode("utf-8", "surrogateescape"))


# -- the supervisor ----------------------------------------------------------------------------


class Supervisor:
    """One run: its process, its pipes, its deadlines."""

    def __init__(self, run_dir: str, spec: dict[str, Any], inline: bool = False) -> None:
        self.run_dir = run_dir
        self.spec = spec
        self.inline = inline  # the run's process is forked from this interpreter (no exec)
        self.log = runlog.LogWriter(
            os.path.join(run_dir, runfiles.LOG),
            int(spec.get("max_line", 16384)),
            int(spec["max_log_bytes"]) if spec.get("max_log_bytes") else None,
        )
        self.grace = float(spec.get("grace", 10.0))
        timeout = spec.get("timeout")
        self.deadline = time.monotonic() + float(timeout) if timeout else None
        self.stop_reason: str | None = None  # "killed" or "timed_out" once stopping
        self.kill_at: float | None = None
        self.requested = False
        self.pid: int | None = None  # the run's process, also its process group
        self.reaped: dict[int, int] = {}  # wait statuses of the children reaped, by pid
        self.pipes: dict[int, str] = {}  # read ends of its stdout and stderr

    def prepare_workdir(self) -> str:
        """A fresh copy of the orchestration's files; returns the entrypoint's folder in it."""
        work = os.path.join(self.run_dir, runfiles.WORK)
        runfiles.copy_tree(self.spec["source"], work)
        return os.path.join(work, self.spec.get("cwd", ""))

    def start(self) -> None:
        """Start the run's process in a process group of its own (as its owner, when the spec
        names one)."""
        owner = account.lookup(self.spec["user"]) if self.spec.get("user") else None
        cwd = self.prepare_workdir()
        env = {**self.spec["env"], **(self.spec.get(runfiles.SECRETS) or {})}
        if owner is not None:
            self.hand_over(owner)
            env = account.environment(owner, env)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            self.pid = spawn(self.spec["argv"], env, cwd, out_w, err_w, owner, self.inline)
        except BaseException:
            os.close(out_r)
            os.close(err_r)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        self.pipes = {out_r: "stdout", err_r: "stderr"}
        # Not fsynced: it names a process, and no process outlives a machine crash. Only a
        # server that finds the supervisor gone reads it: a full disk must not end the
        # supervisor now, with the run's process started.
        try:  # noqa: SIM105 - contextlib costs ~1 ms of start-up
            runfiles.write_json(
                os.path.join(self.run_dir, runfiles.CHILD), {"pid": self.pid}, sync=False
            )
        except OSError:
            pass

    def hand_over(self, owner: account.Account) -> None:
        """The run's folder closed to others; its working copy, its input files and the files
        it writes (`owner_files`) its owner's alone; the log private to the supervisor."""
        account.close_run_folder(self.run_dir)
        os.chmod(os.path.join(self.run_dir, runfiles.LOG), 0o600)
        names = [*(self.spec.get("files") or {}), *(self.spec.get("owner_files") or ())]
        files = [os.path.join(self.run_dir, name) for name in names]
        account.hand_over(owner, os.path.join(self.run_dir, runfiles.WORK), files)

    def signal_all(self, signum: int) -> None:
        """Send a signal to every process of the run: its group, and whatever left it."""
        if self.pid is not None:
            try:  # noqa: SIM105 - contextlib costs ~1 ms of start-up
                os.killpg(self.pid, signum)
            except (ProcessLookupError, PermissionError):
                pass
        descendants.signal_below(os.getpid(), signum, but_group=self.pid)

    def reap(self) -> bool:
        """Collect every child that has ended (the run's processes re-parented to this one
        too); whether the run's process has ended (its exit code is then known)."""
        if self.pid is not None:
            descendants.reap_any(self.reaped)
        return self.ended

    @property
    def ended(self) -> bool:
        """Whether the run's process has ended and been reaped."""
        return self.pid in self.reaped

    def begin_stop(self, reason: str, note: str) -> None:
        """Start ending the run: SIGTERM now, SIGKILL after the grace period."""
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        self.log.note(note)
        self.signal_all(_signal.SIGTERM)
        self.kill_at = time.monotonic() + self.grace

    def check_deadlines(self) -> None:
        """Act on a kill request, the run's timeout, or the end of the grace period."""
        if self.requested:
            self.begin_stop("killed", "jupyter_orch: run killed on request; stopping it")
        if self.deadline is not None and time.monotonic() >= self.deadline:
            timeout = self.spec.get("timeout")
            self.begin_stop("timed_out", f"jupyter_orch: run timed out after {timeout} s")
        if self.kill_at is not None and time.monotonic() >= self.kill_at:
            self.signal_all(_signal.SIGKILL)
            self.kill_at = None

    def next_wait_ms(self) -> int | None:
        """How long poll() may sleep before a deadline needs attention: at most `MAX_WAIT_MS`
        (poll() takes a C int of milliseconds, 24.8 days; a later deadline is waited for in
        several sleeps)."""
        moments = [t for t in (self.deadline, self.kill_at) if t is not None]
        if self.stop_reason is not None:
            moments = [t for t in (self.kill_at,) if t is not None]
        if not moments:
            return None
        return min(MAX_WAIT_MS, max(0, int((min(moments) - time.monotonic()) * 1000) + 1))

    def pump(self, wake_fd: int) -> None:
        """Copy the run's output into the log until its process has ended, and every process
        it started with it; then until both pipes close, for a moment at most.

        The run's process, not its pipes, decides: one that closes its stdout and stderr is
        still timed out or killed. `wake_fd` is readable on a signal (SIGCHLD: a child ended;
        SIGTERM: a kill request).
        """
        fds = dict(self.pipes)
        poller = select.poll()
        for fd in (*fds, wake_fd):
            poller.register(fd, select.POLLIN)
        # The read end of a pipe whose other end only the process that started this supervisor
        # holds (a Dask worker): when that process dies, the run is stopped as on a kill.
        lifeline = self.spec.get("lifeline")
        if lifeline is not None:
            poller.register(lifeline, select.POLLIN)
        ended_at: float | None = None
        while True:
            if ended_at is None and self.reap():
                # The run's end is its process's end: what it left behind ends now, wherever
                # it moved (this process is their subreaper).
                descendants.end_below(_signal.SIGKILL, self.reaped)
                ended_at = time.monotonic()
            wait = self.next_wait_ms()
            if ended_at is not None:
                # Pipes still open are held by a process out of reach (passed to another
                # one over a socket): don't wait for them for ever.
                left = int((ended_at + 2.0 - time.monotonic()) * 1000)
                if not fds or left <= 0:
                    break
                wait = left if wait is None else min(wait, left)
            for fd, _ in poller.poll(wait):
                if fd == wake_fd:
                    drain(wake_fd)
                    continue
                if fd == lifeline:
                    poller.unregister(fd)
                    self.begin_stop(
                        "killed",
                        "jupyter_orch: the process that started the run is gone; stopping it",
                    )
                    continue
                data = os.read(fd, CHUNK)
                stamp = time.time_ns()
                if data:
                    self.log.feed(fds[fd], data, stamp)
                else:
                    self.log.end_stream(fds.pop(fd), stamp)
                    poller.unregister(fd)
                    os.close(fd)
            self.log.flush()
            if ended_at is None:
                self.check_deadlines()
        for fd in fds:
            os.close(fd)
        for stream in STREAMS:
            self.log.end_stream(stream, time.time_ns())
        self.log.flush()

    def outcome(self) -> Record:
        """The exit record of the ended run."""
        assert self.pid is not None
        code = os.waitstatus_to_exitcode(self.reaped[self.pid])
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


def drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def _hold_std_fds() -> None:
    """Open /dev/null on any of fds 0-2 that is closed, so that no pipe made later gets one."""
    for fd in range(3):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free fd: this one


def run(run_dir: str) -> int:
    """Supervise the run described in RUN_DIR's spec to its end (a supervisor of its own)."""
    _hold_std_fds()
    return supervise(run_dir, runfiles.read_spec(run_dir))


def supervise(run_dir: str, spec: dict[str, Any], inline: bool = False) -> int:
    """Supervise a run to its end: start its process, log its output, record how it ended.

    `inline`: fork the run's process from this interpreter (see `spawn`).
    """
    # What the supervisor writes is private to the run's owner; the run's own files follow
    # the umask it was started with (restored in the run's process).
    global _run_umask, _run_niceness
    _run_umask = os.umask(0o077)
    # Lower the run's CPU priority, so under contention the Jupyter server and its kernels
    # stay responsive: the session's autogroup here, the run's process itself as it starts.
    # The supervisor keeps its own, so that it outruns the run it reads: it wakes at each
    # write, and stamps and orders each one, rather than reading what piled up meanwhile.
    if spec.get("niceness"):
        _run_niceness = int(spec["niceness"])
        lower_priority(_run_niceness, own=False)
    sup = Supervisor(run_dir, spec, inline)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    _signal.set_wakeup_fd(wake_w)

    def on_term(signum: int, frame: object) -> None:
        sup.requested = True

    _signal.signal(_signal.SIGTERM, on_term)
    _signal.signal(_signal.SIGINT, on_term)
    _signal.signal(_signal.SIGHUP, _signal.SIG_IGN)
    _signal.signal(_signal.SIGCHLD, lambda signum, frame: None)
    me = os.getpid()
    # Not fsynced: it describes a live process, and none outlives a machine crash (a record
    # lost then reads as "supervisor gone", which is true).
    path = os.path.join(run_dir, runfiles.SUPERVISOR)
    runfiles.write_json(path, {"pid": me, "start": process_start_ticks(me)}, sync=False)
    started = time.time_ns()
    try:
        if sup.requested:
            raise InterruptedError("killed before it started")
        # Room for the exit record, taken now: the run may fill the disk.
        runfiles.reserve(os.path.join(run_dir, runfiles.EXIT))
        runfiles.write_files(run_dir, spec.get("files") or {})
        # Before the run's process exists: whatever it starts stays below this process.
        descendants.become_subreaper()
        sup.start()
    except InterruptedError as exc:
        record: Record = {"status": "killed", "exit_code": None, "reason": str(exc)}
    except OSError as exc:
        sup.log.note(f"jupyter_orch: could not start the run: {exc}")
        sup.log.flush()
        record = {"status": "failure", "exit_code": None, "reason": f"could not start: {exc}"}
    else:
        sup.pump(wake_r)
        record = sup.outcome()
    if sup.log.lost:  # the log could not say so (a full disk to the end): the record does
        record["reason"] = f"{record['reason']}; {sup.log.lost} bytes of output lost: " + (
            sup.log.lost_why
        )
    record["started_ns"], record["ended_ns"] = started, time.time_ns()
    # fsynced: the run's end must last
    runfiles.write_json(os.path.join(run_dir, runfiles.EXIT), record)
    return 0


def lower_priority(niceness: int, own: bool = True) -> None:
    """Add `niceness` to this process's nice value (`own`), and set its autogroup's to it.

    Where the kernel groups processes by session (autogroup, on by default in most
    distributions), CPU time is shared between sessions first and nice values act only within
    one: a run in a session of its own would get as much CPU as the whole Jupyter server
    however nice it is. An unprivileged process may raise its autogroup's nice value (never
    lower it); a kernel without autogroups has no such file.
    """
    if own:
        os.nice(niceness)
    try:
        fd = os.open("/proc/self/autogroup", os.O_WRONLY)
    except OSError:
        return
    try:
        os.write(fd, str(niceness).encode())
    except OSError:
        pass  # a higher nice value already, or not ours to change
    finally:
        os.close(fd)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1]))
