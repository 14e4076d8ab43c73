"""Run logs on the server: read whole or by their last lines, and followed as they are written.

Following keeps one file watcher per run however many follow.

A watcher checks the log's size every `interval` seconds while anyone follows the run and wakes
its followers when the file grows or the run ends; each follower reads the new bytes from its
own offset (the page cache makes that cheap), so a slow follower never holds up the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path

READ_CHUNK = 1 << 20
_BLOCK = 1 << 16


def read_lines(path: Path, last: int | None = None) -> list[str]:
    """The log's lines (without newlines); only the last `last` when given."""
    try:
        with open(path, "rb") as fh:
            data = fh.read() if last is None else _tail_bytes(fh.fileno(), last)
    except FileNotFoundError:
        return []
    # Split on "\n" only: a printed "\r" or U+2028 belongs to its line, not a new one.
    lines = data.decode("utf-8", "replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines if last is None else lines[-last:] if last else []


def _tail_bytes(fd: int, count: int) -> bytes:
    """Enough bytes from the end of a file to hold its last `count` lines."""
    end = os.fstat(fd).st_size
    pos, chunks, newlines = end, [], 0
    while pos > 0 and newlines <= count:
        size = min(_BLOCK, pos)
        pos -= size
        chunk = os.pread(fd, size, pos)
        chunks.append(chunk)
        newlines += chunk.count(b"\n")
    return b"".join(reversed(chunks))


class _Watch:
    """The shared state of everyone following one run."""

    def __init__(self) -> None:
        self.changed = asyncio.Condition()
        self.size = 0
        self.ended = False
        self.followers = 0
        self.task: asyncio.Task[None] | None = None


class LogWatcher:
    """Streams log lines of runs as they are written."""

    def __init__(
        self,
        log_path: Callable[[str], Path],
        ended: Callable[[str], asyncio.Event],
        running_elsewhere: Callable[[str], Awaitable[bool]] | None = None,
        interval: float = 0.1,
    ) -> None:
        """`ended(run)` is set when a run this server follows ends (and is set already for
        the others); `running_elsewhere(run)` tells whether one of the others still runs
        (started by another server of the data directory), looked at every `interval`."""
        self.log_path = log_path
        self.ended = ended
        self.running_elsewhere = running_elsewhere
        self.interval = interval
        self._watches: dict[str, _Watch] = {}

    async def follow(self, run_id: str, start: int) -> AsyncIterator[tuple[int, str]]:
        """(index, line) from line `start` on, until the run has ended and all is sent."""
        watch = self._watches.get(run_id)
        if watch is None:
            watch = self._watches[run_id] = _Watch()
            watch.task = asyncio.ensure_future(self._watch(run_id, watch))
        watch.followers += 1
        try:
            async for item in self._read(run_id, watch, start):
                yield item
        finally:
            watch.followers -= 1
            if watch.followers == 0 and self._watches.get(run_id) is watch:
                del self._watches[run_id]
                if watch.task is not None:
                    watch.task.cancel()

    async def _watch(self, run_id: str, watch: _Watch) -> None:
        path = self.log_path(run_id)
        ended = self.ended(run_id)
        while True:
            finished = ended.is_set() and not (
                self.running_elsewhere is not None and await self.running_elsewhere(run_id)
            )
            with contextlib.suppress(FileNotFoundError):
                size = os.stat(path).st_size
                if size != watch.size or finished:
                    async with watch.changed:
                        watch.size, watch.ended = size, finished
                        watch.changed.notify_all()
            if finished:
                async with watch.changed:
                    watch.ended = True
                    watch.changed.notify_all()
                return
            if ended.is_set():  # another server follows the run: look again
                await asyncio.sleep(self.interval)
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(ended.wait(), self.interval)

    async def _read(self, run_id: str, watch: _Watch, start: int) -> AsyncIterator[tuple[int, str]]:
        path = self.log_path(run_id)
        offset, index, tail = 0, 0, b""
        while True:
            async with watch.changed:
                await watch.changed.wait_for(partial(_news, watch, offset))
                size, ended = watch.size, watch.ended
            while offset < size:
                want = min(size - offset, READ_CHUNK)
                data = await asyncio.to_thread(_read_at, path, offset, want)
                if not data:
                    break
                offset += len(data)
                *lines, tail = (tail + data).split(b"\n")
                for line in lines:
                    if index >= start:
                        yield index, line.decode("utf-8", "replace")
                    index += 1
            if ended and offset >= size:
                return


def _news(watch: _Watch, offset: int) -> bool:
    """Whether a follower at `offset` has something to do."""
    return watch.size > offset or watch.ended


def _read_at(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb") as fh:
        return os.pread(fh.fileno(), size, offset)
