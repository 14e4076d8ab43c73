"""One asyncio loop that sleeps until the next timer is due, or until a timer changes.

No polling interval: the loop computes how long to sleep from the earliest timer and wakes
early when `set` is called. Timers are keyed (by task id); setting a key replaces its timer.
What a due timer means is the owner's business (`on_due`), called on the loop, never blocking.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections.abc import Callable
from datetime import datetime

from .models import now

log = logging.getLogger(__name__)

OnDue = Callable[[str, datetime], None]


class Scheduler:
    """Keyed timers over one sleeping loop."""

    def __init__(self, on_due: OnDue, clock: Callable[[], datetime] = now) -> None:
        self.on_due = on_due
        self.clock = clock
        self._due: dict[str, datetime] = {}
        self._heap: list[tuple[datetime, str]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def get(self, key: str) -> datetime | None:
        """When a key's timer is due, if it has one."""
        return self._due.get(key)

    def set(self, key: str, at: datetime | None) -> None:
        """Set (or, with None, cancel) a key's timer."""
        if at is None:
            self._due.pop(key, None)
            return  # the stale heap entry is skipped when it comes up
        self._due[key] = at
        heapq.heappush(self._heap, (at, key))
        if self._heap[0][1] == key:
            self._wake.set()

    def __len__(self) -> int:
        return len(self._due)

    def start(self) -> None:
        """Start the loop."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stop the loop (timers are kept in memory only)."""
        if self._task is not None:
            # The flag too: a cancellation that arrives as the loop is woken (a timer set just
            # before) is swallowed by asyncio.wait_for on Python < 3.12; the loop then ends at
            # its next turn instead of sleeping on.
            self._stopping = True
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
            self._stopping = False

    def _pop_due(self, moment: datetime) -> list[tuple[str, datetime]]:
        due = []
        while self._heap and self._heap[0][0] <= moment:
            at, key = heapq.heappop(self._heap)
            if self._due.get(key) == at:
                del self._due[key]
                due.append((key, at))
        return due

    def _sleep_seconds(self, moment: datetime) -> float | None:
        while self._heap and self._due.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)  # cancelled or replaced
        if not self._heap:
            return None
        return max(0.0, (self._heap[0][0] - moment).total_seconds())

    def run_due(self) -> None:
        """Act on every timer due by the clock's time now: what the loop does each time it
        wakes (and a test that moves its clock by hand, instead of waiting)."""
        for key, at in self._pop_due(self.clock()):
            try:
                self.on_due(key, at)
            except Exception:  # one bad timer must not stop every other schedule
                log.exception("jupyter_orch: timer %s failed", key)

    async def _run(self) -> None:
        while not self._stopping:
            self.run_due()
            self._wake.clear()
            delay = self._sleep_seconds(self.clock())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
