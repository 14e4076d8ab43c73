"""The fork server: a Python started ahead of runs, which forks each run's supervisor.

Starting an interpreter costs tens of milliseconds of CPU (more when `site` imports a lot),
and a run used to start two: its supervisor and `python -u main.py`. The server therefore
starts this module once, as ``python -u -c BOOT PKGDIR FD`` in a session of its own and with
the environment every run starts from. Asked over the socket FD, it forks:

- the run's **supervisor**, in a process group of its own, which runs `supervise.supervise` as
  a process started by the server would (it outlives the server and the fork server alike);
- and, when the run's interpreter and start-up settings are this one's, the supervisor forks
  the **run's process** from this same warm interpreter instead of executing a new one: the
  child resets what the fork server and supervisor set up, unwinds to the top of the stack
  (`supervise.BecomeRun`), and runs ``main.py`` as ``python -u main.py`` would, or a module
  as ``python -u -m MODULE`` would (`run_script`).

Requests and replies are frames: a 4-byte big-endian length, then a marshalled dict.
Request ``{"id", "dir", "spec", "inline"}``; reply ``{"id", "pid", "start"}`` (the
supervisor's pid and kernel start time) or ``{"id", "error"}``. The first frame the fork server
sends is ``{"ready": pid}``. It exits when the server's end of the socket closes; the
supervisors it forked go on. It reaps them as they end (the server follows each through a
pidfd, which reports the end whether or not the process has been reaped yet).

Like `supervise`, it imports only built-in or already loaded modules: whatever it imports,
every run's process inherits in `sys.modules`.
"""

from __future__ import annotations

import marshal
import os
import select
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal  # `_signal` has no stubs; `signal` re-exports its whole API
    from typing import Any
else:
    import _signal  # the C module behind `signal` (which would import `enum`)
if TYPE_CHECKING or __name__ != "forkserver":
    from . import runfiles, supervise  # imported by the server, for `command`, `encode`...
else:
    import runfiles  # the fork server itself: the package folder is on sys.path (BOOT)
    import supervise

BOOT = (
    "import sys; started = set(sys.modules); sys.path.append(sys.argv[1]); import forkserver; "
    "forkserver.main(sys.argv[1], int(sys.argv[2]), started)"
)
HEADER = 4


def command(python: str, fd: int) -> list[str]:
    """The fork server's command line; FD is its end of the socket pair."""
    pkg_dir = os.path.dirname(os.path.realpath(__file__))
    return [python, "-u", "-c", BOOT, pkg_dir, str(fd)]


def encode(message: dict[str, Any]) -> bytes:
    """One frame."""
    body = marshal.dumps(message)
    return len(body).to_bytes(HEADER, "big") + body


def decode(buffer: bytearray) -> list[dict[str, Any]]:
    """The whole frames at the start of `buffer`, which keeps what is left of the last."""
    messages = []
    while len(buffer) >= HEADER:
        size = int.from_bytes(buffer[:HEADER], "big")
        if len(buffer) < HEADER + size:
            break
        messages.append(marshal.loads(bytes(buffer[HEADER : HEADER + size])))
        del buffer[: HEADER + size]
    return messages


def main(pkg_dir: str, fd: int, started: set[str]) -> None:
    """Serve fork requests until the server goes; in a run's process, run its script.

    `started`: the modules loaded when Python had started, before any of ours.
    """
    job = serve(fd)
    if job is not None:
        run_script(job, pkg_dir, started)


def serve(fd: int) -> supervise.BecomeRun | None:
    """The request loop. Returns only in a run's forked process, with what it is to run."""
    os.chdir("/")
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    _signal.set_wakeup_fd(wake_w)
    _signal.signal(_signal.SIGCHLD, _ignore)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    runfiles.write_all(fd, encode({"ready": os.getpid()}))
    buffer = bytearray()
    while True:
        for ready, _ in poller.poll():
            if ready == wake_r:
                supervise.drain(wake_r)
                continue
            data = os.read(fd, 1 << 16)
            if not data:  # the server has gone
                return None
            buffer += data
        _reap()
        for request in decode(buffer):
            job = _fork(request, (fd, wake_r, wake_w))
            if job is not None:
                return job


def _ignore(signum: int, frame: object) -> None:
    """SIGCHLD only wakes the loop (through the wakeup fd), which then reaps."""


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not pid:
            return


def _fork(request: dict[str, Any], own_fds: tuple[int, ...]) -> supervise.BecomeRun | None:
    try:
        pid = os.fork()
    except OSError as exc:
        runfiles.write_all(own_fds[0], encode({"id": request["id"], "error": str(exc)}))
        return None
    if pid == 0:
        return _supervisor(request, own_fds)
    reply = {"id": request["id"], "pid": pid, "start": supervise.process_start_ticks(pid)}
    runfiles.write_all(own_fds[0], encode(reply))
    return None


def _supervisor(request: dict[str, Any], own_fds: tuple[int, ...]) -> supervise.BecomeRun:
    """In the forked supervisor: leave the fork server behind, then supervise the run."""
    code = 1
    try:
        for fd in own_fds:
            os.close(fd)
        _signal.set_wakeup_fd(-1)
        _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
        # A process group of its own (signals to the fork server's group do not reach it), in
        # the fork server's session: one autogroup for every run, whose CPU priority
        # `supervise.lower_priority` lowers for all (one session per run would get each as
        # much CPU as the whole Jupyter server).
        os.setpgid(0, 0)
        run_dir = request["dir"]
        runfiles.make_run_dir(run_dir)
        err = os.open(
            os.path.join(run_dir, runfiles.SUPERVISOR_ERR), os.O_WRONLY | os.O_CREAT, 0o600
        )
        os.dup2(err, 1)
        os.dup2(err, 2)
        os.close(err)
        runfiles.write_spec(run_dir, request["spec"], binary=False)  # for people
        code = supervise.supervise(run_dir, request["spec"], inline=request["inline"])
    except supervise.BecomeRun as job:
        return job  # this is the run's process now: up the stack, out of the loop, to its code
    except BaseException:
        import traceback

        traceback.print_exc()
    os._exit(code)


# -- the run's process -------------------------------------------------------------------------


def run_script(job: supervise.BecomeRun, pkg_dir: str, started: set[str]) -> None:
    """Run `job.argv` (``python -u SCRIPT ARGS`` or ``python -u -m MODULE ARGS``) here, as a
    fresh interpreter would.

    The process already has its process group, standard streams, working directory and
    signal handlers (`supervise.spawn(inline=True)`). What a fresh start would differ in is set
    here: open files, modules of ours, `sys.path`, `sys.argv`, the environment, `__main__`.
    An uncaught exception is printed without the frames of this module and ends the process
    with status 1 (KeyboardInterrupt: by SIGINT), as Python does.
    """
    # Closing the report pipe tells the supervisor the run has started (as exec would).
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    for name in set(sys.modules) - started:  # ours, and what they imported
        del sys.modules[name]
    if sys.path and sys.path[-1] == pkg_dir:
        sys.path.pop()
    os.environ.clear()
    os.environ.update(job.env)
    time.tzset()
    _fresh_streams()
    sys.orig_argv = list(job.argv)
    namespace = sys.modules["__main__"].__dict__
    namespace.clear()
    namespace.update(
        __name__="__main__",
        __doc__=None,
        __package__=None,
        __spec__=None,
        __annotations__={},
        __builtins__=sys.modules["builtins"],
    )
    try:
        if job.argv[2] == "-m":
            _run_module(job.argv[3], job.argv[4:])
        else:
            _run_file(job.argv[2], job.argv[3:], namespace)
    except SystemExit:
        raise
    except BaseException as exc:
        _uncaught(exc)


def _fresh_streams() -> None:
    """`sys.stdin`, `sys.stdout` and `sys.stderr` made again over descriptors 0-2 (now the
    run's), as the interpreter makes them at start.

    The fork server's were made over its own files (/dev/null) and keep what they learned of
    them: a stream made over a seekable file stays seekable, and `reconfigure()` (which the
    notebook executor calls) would then seek a pipe. Encoding, errors and buffering stay those
    of this interpreter's start (`-u`: write-through, unbuffered below).
    """
    io = sys.modules["io"]
    for fd, name in enumerate(("stdin", "stdout", "stderr")):
        old = getattr(sys, f"__{name}__")
        writing = fd > 0
        buffered = not old.write_through  # -u: write-through text over an unbuffered file
        buffering = -1 if buffered or not writing else 0  # stdin is buffered whatever -u says
        buffer = io.open(fd, "wb" if writing else "rb", buffering, closefd=False)
        raw = buffer.raw if hasattr(buffer, "raw") else buffer
        raw.name = f"<{name}>"
        line_buffering = buffered and (raw.isatty() or fd == 2)
        stream = io.TextIOWrapper(
            buffer, old.encoding, old.errors, "\n", line_buffering, old.write_through
        )
        stream.mode = "w" if writing else "r"
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _run_file(script: str, args: list[str], namespace: dict[str, Any]) -> None:
    """``python SCRIPT ARGS``: the script's folder first on `sys.path`, its code in
    `__main__`."""
    path = os.path.abspath(script)
    sys.argv = [script, *args]
    sys.path[0] = os.path.dirname(os.path.realpath(path))
    loader_type = sys.modules["_frozen_importlib_external"].SourceFileLoader
    namespace.update(__loader__=loader_type("__main__", path), __file__=path, __cached__=None)
    try:
        with open(path, "rb") as fh:
            source = fh.read()
    except OSError as exc:
        sys.stderr.write(
            f"{sys.executable}: can't open file {path!r}: [Errno {exc.errno}] {exc.strerror}\n"
        )
        raise SystemExit(2) from None
    exec(compile(source, path, "exec", dont_inherit=True), namespace)


def _run_module(module: str, args: list[str]) -> None:
    """``python -m MODULE ARGS``: the working directory first on `sys.path`, the module run
    as `__main__` by runpy, as the interpreter itself does it."""
    import runpy  # frozen: what a fresh `python -m` imports too

    sys.argv = ["-m", *args]  # runpy puts the module's file in place of "-m"
    sys.path[0] = os.getcwd()
    runpy._run_module_as_main(module, alter_argv=True)  # type: ignore[attr-defined]


def _uncaught(exc: BaseException) -> None:
    """End as Python ends on an uncaught exception, showing only the script's frames."""
    tb = exc.__traceback__
    # The first frames are this module's own; a SyntaxError from compile() has no other.
    while tb is not None and tb.tb_frame.f_code.co_filename == _uncaught.__code__.co_filename:
        tb = tb.tb_next
    kind = type(exc)
    sys.last_type, sys.last_value, sys.last_traceback = kind, exc.with_traceback(tb), tb
    sys.excepthook(kind, exc, tb)
    if isinstance(exc, KeyboardInterrupt):
        # Python ends by SIGINT after an uncaught KeyboardInterrupt: raise it again at the
        # top, where the interpreter does that, with the traceback already shown.
        sys.excepthook = _quiet
        raise exc
    raise SystemExit(1)


def _quiet(*args: object) -> None:
    """An excepthook that prints nothing."""
