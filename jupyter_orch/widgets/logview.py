"""The log part of the tasks panel: a run's newest lines, followed live while the run runs."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

import ipywidgets as w

from ..sdk.client import Client
from ..sdk.logs import LogLine, printed
from ..sdk.resources import RUN_ENDED
from . import render
from .threads import LiveLog, Worker

#: Lines of a log kept and shown (the newest).
LOG_LINES = 1000
#: Seconds between two paintings of a live log: a chatty run costs a few updates a second.
PAINT_SECONDS = 0.25


class LogView:
    """A run's log in two widgets (a heading and a box); lines arrive on a follower thread."""

    def __init__(
        self, worker: Worker, client: Client, ended: Callable[[str, Exception | None], None]
    ) -> None:
        self.heading = w.HTML()
        self.box = w.HTML()
        self.run_id: str | None = None
        self.status: str | None = None
        self._worker = worker
        self._client = client
        self._ended = ended
        self._lines: deque[LogLine] = deque(maxlen=LOG_LINES)
        self._count = 0
        self._lock = threading.Lock()  # lines come from the follower, paintings from the worker
        self._live: LiveLog | None = None
        self._painting = False
        self._painted_at = 0.0
        self._hint = ""

    @property
    def text(self) -> str:
        """The output as shown (its newest `LOG_LINES` lines)."""
        with self._lock:
            return printed(self._lines)

    @property
    def following(self) -> bool:
        """Whether the run's log is being followed live."""
        return self._live is not None and self._live.alive

    def show(self, run_id: str, status: str) -> None:
        """Show a run's log: read at once when it has ended, else followed (worker thread)."""
        self.stop()
        self._reset(run_id, status)
        if status in RUN_ENDED:
            lines = self._client.run_logs(run_id, LOG_LINES)
            with self._lock:
                self._lines.extend(lines)
                self._count = len(lines)
        else:
            self._follow(run_id)
        self.paint()

    def clear(self, hint: str) -> None:
        """Show no run, only `hint`."""
        self.stop()
        self._hint = hint
        self._reset(None, None)
        self.paint()

    def resume(self) -> None:
        """Follow again a running run that `stop()` left (a view is shown again)."""
        if self.run_id is not None and self._live is None and self.status not in RUN_ENDED:
            self.show(self.run_id, "running")

    def stop(self) -> None:
        """Stop following."""
        live, self._live = self._live, None
        if live is not None:
            live.stop()

    def _reset(self, run_id: str | None, status: str | None) -> None:
        with self._lock:
            self.run_id, self.status = run_id, status
            self._lines.clear()
            self._count = 0

    def _follow(self, run_id: str) -> None:
        server = self._client.server
        self._live = LiveLog(
            server.api_url,
            server.token,
            run_id,
            lambda line: self._line(run_id, line),
            lambda status, problem: self._worker.call(lambda: self._end(run_id, status, problem)),
        )

    def _line(self, run_id: str, line: LogLine) -> None:
        """A line of the followed log (follower thread): keep it, and have it painted soon."""
        with self._lock:
            if run_id != self.run_id:
                return
            self._lines.append(line)
            self._count += 1
            if self._painting:
                return
            self._painting = True
        wait = max(0.0, self._painted_at + PAINT_SECONDS - time.monotonic())
        self._worker.call(self.paint, wait)

    def _end(self, run_id: str, status: str | None, problem: Exception | None) -> None:
        if run_id != self.run_id:
            return
        self._live = None
        self.status = status or self.status
        self.paint()
        self._ended(run_id, problem)

    def paint(self) -> None:
        """Render the heading and the lines (worker thread)."""
        with self._lock:
            self._painting = False
            lines, total, status = list(self._lines), self._count, self.status
        self._painted_at = time.monotonic()
        self.heading.value = self._heading(total, status)
        html = ""
        if self.run_id is not None:
            empty = "This run printed nothing." if status in RUN_ENDED else "Nothing printed yet."
            html = render.log_box(lines, empty)
        if html != self.box.value:
            self.box.value = html

    def _heading(self, total: int, status: str | None) -> str:
        if self.run_id is None:
            return render.muted(self._hint) if self._hint else ""
        parts = [f"<b>Log of run {render.esc(self.run_id[:8])}</b>", render.badge(status)]
        if self._live is not None and status not in RUN_ENDED:
            parts.append("following live")
        # An ended run's log is fetched as its last LOG_LINES lines: as many means maybe more.
        cut = total > LOG_LINES or (total == LOG_LINES and status in RUN_ENDED)
        parts.append(f"the last {LOG_LINES:,} lines" if cut else render.count(total, "line"))
        return " · ".join(parts)
