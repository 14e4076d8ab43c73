"""The scheduler lock: of the servers sharing one data directory, one makes timed runs.

An advisory `flock` on `scheduler.lock`: the kernel drops it when its holder dies, however it
dies, so a second server can take over without any stale-lock cleanup.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class SchedulerLock:
    """A non-blocking exclusive lock on a file, held until released or the process ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this process holds the lock."""
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True when held afterwards."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        """The pid written by the current holder (for log messages)."""
        with contextlib.suppress(OSError):
            return self.path.read_text(encoding="utf-8").strip()
        return "?"

    def release(self) -> None:
        """Let another server take over."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
