"""Run logs on the server: read whole or by their last lines, and followed as they are written.

Following keeps one file watcher per run however many follow.

A watcher checks the log's size every `interval` seconds while anyone follows the run and wakes
its followers when the file grows or the run ends; each follower reads the new bytes from its
own offset (the page cache makes that cheap), so a slow follower never holds up the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO

from .._proc import runlog

READ_CHUNK = 1 << 20
_BLOCK = 1 << 16
#: The marker a capped log holds where output was dropped (`_proc.runlog`): its two numbers.
_MARKER = re.compile(
    rb"^\S+ "
    + rb"(\d+)".join(
        re.escape(part.encode())
        for part in runlog.MARKER.replace("{lines}", "{dropped}").split("{dropped}")
    )
)


def read_lines(path: Path, last: int | None = None) -> Generator[list[str], None, None]:
    """The log's lines (without newlines) in pieces of about `READ_CHUNK` bytes; only the last
    `last` when given. Blocking, and bounded in memory whatever the log's size."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, after the last piece
    except FileNotFoundError:
        return
    with fh:
        fd = fh.fileno()
        if last == 0:
            return
        pos = 0 if last is None else _start_of_last(fd, last)
        rest = b""
        while data := os.pread(fd, READ_CHUNK, pos):
            pos += len(data)
            *lines, rest = (rest + data).split(b"\n")
            yield [_text(line) for line in lines]
        if rest:
            yield [_text(rest)]


def _text(line: bytes) -> str:
    # Split on "\n" only: a printed "\r" or U+2028 belongs to its line, not a new one.
    return line.decode("utf-8", "replace")


def _start_of_last(fd: int, count: int) -> int:
    """The offset where a file's last `count` lines start (one newline ends the last)."""
    pos = os.fstat(fd).st_size
    newlines = 0
    if pos and os.pread(fd, 1, pos - 1) == b"\n":
        newlines = -1  # the file's final newline ends its last line, it starts none
    while pos > 0:
        size = min(_BLOCK, pos)
        block = os.pread(fd, size, pos - size)
        found = block.count(b"\n")
        if newlines + found < count:
            newlines += found
            pos -= size
            continue
        cut = len(block)
        for _ in range(count - newlines):
            cut = block.rindex(b"\n", 0, cut)
        return pos - size + cut + 1
    return 0


@dataclass(frozen=True)
class _Cut:
    """How a capped log's file maps to the run's output: its head, the marker after it."""

    head_bytes: int
    head_lines: int
    marker: bytes  # the marker line, newline included
    dropped_bytes: int
    dropped_lines: int


def _read_cut(path: Path, fd: int) -> _Cut | None:
    """The layout of the open log file `fd`, if it has been cut (its marker at the head's
    end: the head's end is recorded beside it, never changed once written)."""
    try:
        record = json.loads(Path(f"{path}{runlog.CUT_SUFFIX}").read_bytes())
        head_bytes, head_lines = int(record["head_bytes"]), int(record["head_lines"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    line = os.pread(fd, _BLOCK, head_bytes).partition(b"\n")[0]
    match = _MARKER.match(line)
    if match is None:
        return None  # the file from before its first cut
    return _Cut(head_bytes, head_lines, line + b"\n", int(match[1]), int(match[2]))


class Cursor:
    """Reads a run's log as it is written, by lines whose indices stay those of the run's
    output however often a capped log is cut: line N is the run's Nth line, and the marker
    where lines were dropped takes the index of the first of them (`read` says how many it
    stands for). Blocking."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh: BinaryIO | None = None
        self.ino = -1
        self.cut: _Cut | None = None
        self.pos = 0  # in the open file
        self.output = 0  # the offset in the run's output at `pos`
        self.index = 0  # the index of the line starting at `pos` - len(partial)
        self.partial = b""

    def close(self) -> None:
        """Close the open file."""
        if self.fh is not None:
            self.fh.close()
            self.fh = None

    def read(self, size: int = READ_CHUNK) -> list[tuple[int, int, str]]:
        """The next whole lines, as (index, how many lines it stands for, text); [] when
        nothing new is there."""
        self._reopen()
        while self.fh is not None:
            cut = self.cut
            if cut is not None and self.pos == cut.head_bytes:
                return [self._pass_marker(cut)]
            want = size if cut is None or self.pos > cut.head_bytes else cut.head_bytes - self.pos
            data = os.pread(self.fh.fileno(), min(size, want), self.pos)
            if not data:
                break
            self.pos += len(data)
            self.output += len(data)
            *lines, self.partial = (self.partial + data).split(b"\n")
            if lines:
                out = [(self.index + n, 1, _text(line)) for n, line in enumerate(lines)]
                self.index += len(lines)
                return out
        return []

    def _pass_marker(self, cut: _Cut) -> tuple[int, int, str]:
        """The marker, standing for every line dropped between the head and the tail."""
        line = (self.index, cut.head_lines + cut.dropped_lines - self.index, _text(cut.marker[:-1]))
        self.pos = cut.head_bytes + len(cut.marker)
        self.output = cut.head_bytes + cut.dropped_bytes
        self.index = cut.head_lines + cut.dropped_lines
        return line

    def _reopen(self) -> None:
        """Move to the file now at the log's path if it is another one (a cut replaced it),
        to the same place in the run's output."""
        try:
            ino = os.stat(self.path).st_ino
        except FileNotFoundError:
            return
        if ino == self.ino:
            return
        fh = open(self.path, "rb")  # noqa: SIM115 - kept open until the next file or close
        self.close()
        self.fh, self.ino = fh, os.fstat(fh.fileno()).st_ino
        self.cut = cut = _read_cut(self.path, fh.fileno())
        # Go on from the start of the unfinished line (it is read again whole).
        self.output -= len(self.partial)
        self.pos -= len(self.partial)
        self.partial = b""
        if cut is None or self.output <= cut.head_bytes:
            self.pos = self.output  # the head is the same in every file
        elif self.output >= cut.head_bytes + cut.dropped_bytes:
            self.pos = (
                cut.head_bytes + len(cut.marker) + self.output - cut.head_bytes - cut.dropped_bytes
            )
        else:
            self.pos = cut.head_bytes  # what came next was dropped: the marker says so
            self.index = min(self.index, cut.head_lines + cut.dropped_lines - 1)

    def at_end(self) -> bool:
        """Whether everything in the file at the log's path has been read."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return True
        return st.st_ino == self.ino and st.st_size <= self.pos


class _Watch:
    """The shared state of everyone following one run."""

    def __init__(self) -> None:
        self.changed = asyncio.Condition()
        self.seen = (-1, -1)  # the log file's inode and size, last looked at
        self.version = 0  # counts the changes of `seen`
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
        """(index, line) from line `start` on, until the run has ended and all is sent. A
        capped log's marker comes with the index of the first line it stands for (and comes
        if any of them is at or after `start`)."""
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
                stat = os.stat(path)
                seen = (stat.st_ino, stat.st_size)
                if seen != watch.seen or finished:
                    async with watch.changed:
                        watch.seen, watch.ended = seen, finished
                        watch.version += 1
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
        cursor = Cursor(self.log_path(run_id))
        version = -1
        try:
            while True:
                async with watch.changed:
                    await watch.changed.wait_for(partial(_news, watch, version))
                    version, ended = watch.version, watch.ended
                while lines := await asyncio.to_thread(cursor.read):
                    for index, span, text in lines:
                        if index + span > start:
                            yield index, text
                if ended and await asyncio.to_thread(cursor.at_end):
                    return
        finally:
            cursor.close()


def _news(watch: _Watch, version: int) -> bool:
    """Whether a follower that has seen `version` has something to do."""
    return watch.version != version or watch.ended
