"""A run's log as its supervisor writes it: CRI lines, and a bound on the file's size.

Each line is ``<RFC 3339 ns>Z <stream> F|P <text>`` (`P`: a piece of a line longer than
`max_line`). With a cap (``max_bytes``), the log keeps its start and always its end: when the
file grows past the cap it is rewritten (a new file renamed over it) as

    the head:   its first lines, up to a quarter of the cap (never changed again);
    a marker:   ``<time> stderr F jupyter_orch: D bytes (K lines) of output dropped here ...``
                (D and K count everything dropped so far);
    the tail:   its last lines, a quarter of the cap or more;

and so stays between a half and the whole cap, at the cost of copying about one byte per byte
written once the cap is reached. ``log.cut`` (`CUT_SUFFIX`) records where the head ends
(``head_bytes``, ``head_lines``), written once before the first cut: a reader that knows it
finds the marker at that offset, and with it how the file's lines map to the run's output
(`server.logfiles`).

Standard library only, and only built-in or already loaded modules (see `supervise`).
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # see `supervise`: `typing` is never imported at run time
if TYPE_CHECKING or __package__:
    from . import runfiles
else:
    import runfiles

STREAMS = ("stdout", "stderr")
CUT_SUFFIX = ".cut"  # the log's name and this: where its head ends
#: The words of the marker line after its time stamp, up to the numbers a reader parses.
MARKER = "stderr F jupyter_orch: {dropped} bytes ({lines} lines) of output dropped here"
_COPY = 1 << 20


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
    """Turns raw output of the run's streams into CRI log lines, appended to one file that
    stays under `max_bytes` (None: unbounded) as the module says."""

    def __init__(self, path: str, max_line: int, max_bytes: int | None = None) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self.max_line = max_line
        self.clock = Clock()
        self.pending: dict[str, bytes] = {name: b"" for name in STREAMS}
        self.out: list[bytes] = []
        # A cap below a few lines' worth would cut for ever: the head and tail hold some.
        self.max_bytes = None if max_bytes is None else max(max_bytes, 8 * (max_line + 64))
        self.size = os.fstat(self.fd).st_size  # the file's size (a note may precede us)
        self.lines = 0  # lines in the file
        self.head: tuple[int, int] | None = None  # (bytes, lines) of the head, once cut
        self.marker = 0  # the marker line's length in the file (0: never cut)
        self.dropped = (0, 0)  # (bytes, lines) dropped so far
        self.lost = 0  # bytes of output that could not be written (a full disk) ...
        self.lost_why = ""  # ... and why
        self.mid_line = False  # whether a failed write left the file in the middle of a line

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
        """Append everything gathered since the last flush in one write; cut the file if it
        has grown past its cap.

        Output that cannot be written (a full disk) is dropped, never held: the run goes on,
        and the first write that succeeds again begins with a line saying how much was lost.
        """
        if not self.out:
            return
        data = b"".join(self.out)
        self.out.clear()
        note = b""
        if self.lost:
            text = f"jupyter_orch: {self.lost} bytes of output lost: {self.lost_why}"
            # A line cut by a failed write is ended first, so that every line is whole.
            start = "\n" if self.mid_line else ""
            note = f"{start}{self.clock.stamp(time.time_ns())} stderr F {text}\n".encode()
        full = note + data
        written = self._write(full)
        self.size += written
        self.lines += full.count(b"\n", 0, written)
        if written:
            self.mid_line = full[written - 1] != 0x0A
        if written < len(note):  # the note did not make it: it is written next time
            self.lost += len(data)
        elif note:
            self.lost = len(full) - written
        else:
            self.lost += len(full) - written
        if written < len(full):
            return
        if self.max_bytes is not None and self.size > self.max_bytes:
            try:  # noqa: SIM105 - contextlib costs ~1 ms of start-up
                self.cut()
            except OSError:
                pass  # no room for the new file now: the next flush tries again

    def _write(self, data: bytes) -> int:
        """Append `data`; how much of it was written (all, unless the disk refused)."""
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError as exc:
            self.lost_why = exc.strerror or str(exc)
        return len(data) - len(view)

    # -- the cap -------------------------------------------------------------------------------

    def cut(self) -> None:
        """Rewrite the file as head, marker and tail (see the module), then append to that."""
        assert self.max_bytes is not None
        quarter = self.max_bytes // 4
        if self.head is None:
            head_bytes = _line_start(self.fd, quarter, backwards=True)
            head = (head_bytes, _count_lines(self.fd, 0, head_bytes))
            cut_record: runfiles.Record = {"head_bytes": head[0], "head_lines": head[1]}
            runfiles.write_json(self.path + CUT_SUFFIX, cut_record)
            self.head = head
        head_bytes, head_lines = self.head
        tail = _line_start(self.fd, self.size - quarter, backwards=False)
        kept_lines = _count_lines(self.fd, tail, self.size)
        gone = tail - head_bytes - self.marker
        gone_lines = self.lines - head_lines - (1 if self.marker else 0) - kept_lines
        self.dropped = (self.dropped[0] + gone, self.dropped[1] + gone_lines)
        text = MARKER.format(dropped=self.dropped[0], lines=self.dropped[1])
        marker = (
            f"{self.clock.stamp(time.time_ns())} {text}: the log keeps its first "
            f"{head_bytes} bytes and its last, {self.max_bytes} bytes at most\n"
        ).encode()
        tmp = self.path + ".tmp"
        new = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _copy(self.fd, new, 0, head_bytes)
            runfiles.write_all(new, marker)
            _copy(self.fd, new, tail, self.size)
        except BaseException:
            os.close(new)
            os.unlink(tmp)
            raise
        os.close(new)
        os.replace(tmp, self.path)
        os.close(self.fd)
        self.fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
        self.marker = len(marker)
        self.size = head_bytes + self.marker + (self.size - tail)
        self.lines = head_lines + 1 + kept_lines


def _line_start(fd: int, offset: int, backwards: bool) -> int:
    """The start of a line near `offset`: the last at or before it (`backwards`), else the
    first at or after it. A line is at most `max_line` bytes and a stamp, so one is near."""
    if backwards:
        start = max(0, offset - _COPY)
        block = os.pread(fd, offset - start, start)
        return start + block.rfind(b"\n") + 1 if b"\n" in block else start
    block = os.pread(fd, _COPY, offset)
    newline = block.find(b"\n")
    return offset if newline < 0 else offset + newline + 1


def _count_lines(fd: int, start: int, end: int) -> int:
    count = 0
    while start < end:
        block = os.pread(fd, min(_COPY, end - start), start)
        if not block:
            break
        count += block.count(b"\n")
        start += len(block)
    return count


def _copy(fd_in: int, fd_out: int, start: int, end: int) -> None:
    """Append bytes [start, end) of one file to another."""
    while start < end:
        block = os.pread(fd_in, min(_COPY, end - start), start)
        if not block:
            break
        runfiles.write_all(fd_out, block)
        start += len(block)
