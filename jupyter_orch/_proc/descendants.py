"""Every process a run started, wherever it moved: found, signalled and ended by its supervisor.

A process that calls ``setsid()`` or ``setpgid(0, 0)`` leaves the run's process group, and a
signal to the group no longer reaches it. The supervisor therefore makes itself the *child
subreaper* of everything below it (``prctl(PR_SET_CHILD_SUBREAPER)``): a process of the run
whose parent ends is re-parented to the supervisor instead of to init, so the run's processes
stay below the supervisor in the process tree, whatever group or session they are in. They are
found by walking that tree (each process's parent, from ``/proc``), and the run ends only once
the supervisor has no child left.

Standard library only, and cheap to import (see `supervise`): prctl is called through
``_ctypes``, the C module behind ``ctypes`` (which itself costs ~5 ms to import).
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # see `supervise`: `typing` is never imported at run time
if TYPE_CHECKING:
    from typing import Any

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make this process the subreaper of its descendants; whether the kernel allowed it."""
    try:
        ct: Any = __import__("_ctypes")
    except ImportError:  # a Python built without ctypes
        return False

    class _Int(ct._SimpleCData):
        _type_ = "i"

    class _Function(ct.CFuncPtr):
        _flags_ = ct.FUNCFLAG_CDECL | ct.FUNCFLAG_USE_ERRNO
        _restype_ = _Int

    try:
        prctl = _Function(ct.dlsym(ct.dlopen(None), "prctl"))
    except (OSError, AttributeError):  # not Linux
        return False
    return bool(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def stat_fields(pid: int) -> list[bytes] | None:
    """The fields of /proc/PID/stat after the command name (the state is the first), or None
    if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat_line = fh.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return stat_line[stat_line.rindex(b")") + 2 :].split()


def parent_of(pid: int) -> int | None:
    """The parent pid of a process (field 4 of /proc/PID/stat), or None if it is gone."""
    fields = stat_fields(pid)
    return None if fields is None else int(fields[1])


def below(root: int) -> list[int]:
    """Every process below `root` in the process tree now, parents before their children."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            parent = parent_of(int(name))
            if parent is not None:
                children.setdefault(parent, []).append(int(name))
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def signal_below(root: int, signum: int, but_group: int | None = None) -> int:
    """Send a signal to every process below `root`, except those in the process group
    `but_group` (signalled already: a second SIGTERM could cut a clean exit short); how many
    processes were signalled."""
    count = 0
    for pid in below(root):
        if but_group is not None:
            fields = stat_fields(pid)
            if fields is None or int(fields[2]) == but_group:
                continue
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            continue
        count += 1
    return count


def end_below(kill: int, reaped: dict[int, int]) -> None:
    """SIGKILL (`kill`) every process below this one and reap them, until no child is left.

    This process being their subreaper, any process of the run still alive has a parent
    below it, so "no child left" means "nothing left". Exit statuses reaped are added to
    `reaped` (pid -> status), so that a caller still waiting for one of them learns it.
    """
    me = os.getpid()
    while True:
        signal_below(me, kill)
        got = reap_any(reaped)
        if got is None:
            return
        if not got:
            time.sleep(0.005)  # killed, not yet reapable: its exit is a moment away


def reap_any(reaped: dict[int, int]) -> int | None:
    """Reap every child that has ended, into `reaped`; how many, or None if none is left."""
    count = 0
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return count or None
        if not pid:
            return count
        reaped[pid] = status
        count += 1
