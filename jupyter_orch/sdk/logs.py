"""A run's log on the client side: parsed lines, their display, and following them live."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable, Iterator
from typing import NamedTuple, TextIO

from . import display
from .errors import ServerUnreachable
from .transport import Transport

#: A log stream cut this many times in a row without a new line is given up.
MAX_RECONNECTS = 5


class LogLine(NamedTuple):
    """One line of a run's log: time (UTC, nanoseconds), stream, text, cut-up piece or not."""

    time: str
    stream: str
    text: str
    partial: bool = False

    @classmethod
    def parse(cls, raw: str) -> LogLine:
        """A log line from the container runtime's format: `time stream F|P text`."""
        parts = raw.split(" ", 3)
        if len(parts) < 3 or parts[2] not in ("F", "P"):
            return cls("", "", raw)
        return cls(parts[0], parts[1], parts[3] if len(parts) > 3 else "", parts[2] == "P")

    @property
    def raw(self) -> str:
        """The line in the container runtime's format, as the server sent it."""
        return f"{self.time} {self.stream} {'P' if self.partial else 'F'} {self.text}"

    def __str__(self) -> str:
        return self.text


class LogLines(list[LogLine]):
    """A run's log; `str()` is its output as printed, the display adds times and streams."""

    columns = ("time", "stream", "output")

    def __str__(self) -> str:
        return "".join(line.text if line.partial else f"{line.text}\n" for line in self)

    def __repr__(self) -> str:
        rows = [[line.time, line.stream, line.text] for line in self]
        return display.text_table(self.columns, rows, "(no log lines)")

    def _repr_html_(self) -> str:
        rows = [[line.time, line.stream, line.text] for line in self]
        return display.html_table(self.columns, rows, "(no log lines)")


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
