"""A run's log on the client side: its lines, their display, and following them live."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable, Iterator
from datetime import datetime
from typing import TextIO

from . import display
from .errors import ServerUnreachable
from .transport import Transport

#: A log stream cut this many times in a row without a new line is given up.
MAX_RECONNECTS = 5


class LogLine(str):
    """One line of a run's log: the line itself, as the server sent it, with its parts.

    A `str` holding the container runtime's line (`<time> <stream> F|P <text>`), as Wallaroo's
    `TaskRun.logs()` gives, so every string operation works on it: `"done" in line`,
    `line.split()`, `line.startswith(...)`, `json.dumps(...)`. `str(line)` is that whole line.
    Its parts: `time` (RFC 3339, UTC, nanoseconds; empty when the line has none), `stream`
    (`stdout` or `stderr`), `text` (what the run printed) and `partial` (True for a piece of a
    line cut at the size limit, which the next piece continues).
    """

    time: str
    stream: str
    text: str
    partial: bool

    def __new__(cls, raw: str) -> LogLine:
        line = super().__new__(cls, raw)
        parts = raw.split(" ", 3)
        if len(parts) < 3 or parts[2] not in ("F", "P"):
            line.time, line.stream, line.text, line.partial = "", "", raw, False
        else:
            line.time, line.stream, line.partial = parts[0], parts[1], parts[2] == "P"
            line.text = parts[3] if len(parts) > 3 else ""
        return line

    @classmethod
    def parse(cls, raw: str) -> LogLine:
        """A log line from the container runtime's format: `time stream F|P text`."""
        return cls(raw)

    @classmethod
    def of_text(cls, text: str) -> LogLine:
        """A line of text with no time or stream (a build log's line, say)."""
        line = super().__new__(cls, text)
        line.time, line.stream, line.text, line.partial = "", "", text, False
        return line

    @property
    def raw(self) -> str:
        """The line in the container runtime's format, as the server sent it (`str(line)`)."""
        return str(self)


def printed(lines: Iterable[LogLine]) -> str:
    """The lines' text as the run printed it: a cut-up long line is joined again."""
    return "".join(line.text if line.partial else f"{line.text}\n" for line in lines)


def short_time(stamp: str) -> str:
    """A log line's time to the second, in UTC: `2026-01-01 00:00:00`."""
    try:
        moment = datetime.fromisoformat(stamp[:19])
    except ValueError:
        return stamp
    return moment.isoformat(sep=" ")


class LogLines(list[LogLine]):
    """A run's log: a list of its lines, each a `str` (see `LogLine`), oldest first.

    `str()` is the output as the run printed it; the display (`repr`, and a table in a
    notebook) shows each line's time (UTC, to the second), stream and text.
    """

    columns = ("time (UTC)", "stream", "output")
    empty = "(no log lines)"

    def __str__(self) -> str:
        return printed(self)

    def _rows(self) -> list[list[str]]:
        return [[short_time(line.time), line.stream, line.text] for line in self]

    def __repr__(self) -> str:
        return display.text_table(self.columns, self._rows(), self.empty)

    def _repr_html_(self) -> str:
        return display.html_table(self.columns, self._rows(), self.empty)


def write_lines(lines: Iterable[LogLine], out: TextIO) -> None:
    """Print log lines' text as the run printed it (a cut-up long line is joined again)."""
    for line in lines:
        out.write(line.text if line.partial else f"{line.text}\n")
        out.flush()


class LogFollower:
    """Iterates a run's log lines as they are written; `status` is the run's once it has ended.

    A cut stream (a proxy's timeout, a server restart) is picked up again from the next line.
    """

    def __init__(self, transport: Transport, run_id: str, start: int = 0) -> None:
        self._transport = transport
        self.run_id = run_id
        self.next = start
        self.status: str | None = None

    def __iter__(self) -> Iterator[LogLine]:
        failures = 0
        while True:
            before = self.next
            try:
                if (yield from self._stream()):
                    return
                problem = ServerUnreachable(self._transport.url("task/follow_logs"), "stream cut")
            except ServerUnreachable as exc:
                problem = exc
            failures = 0 if self.next > before else failures + 1
            if failures > MAX_RECONNECTS:
                raise problem
            time.sleep(0.5 * failures)

    def _stream(self) -> Generator[LogLine, None, bool]:
        """One request's lines; True once the server says the run has ended."""
        params = {"id": self.run_id, "from": self.next}
        for item in self._transport.stream("task/follow_logs", params):
            if "line" in item:
                self.next = int(item["n"]) + 1
                yield LogLine.parse(str(item["line"]))
            elif item.get("end"):
                self.status = str(item.get("status") or "unknown")
                return True
        return False
