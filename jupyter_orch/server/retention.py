"""Retention: runs (and their folders) a task no longer keeps are removed.

A run's end puts its task in a pending set and, unless a pass is already scheduled, schedules
one `delay` seconds later: a burst of runs ending together costs one pass. Every task also goes
through a pass periodically (`prune_all`, `chunk` tasks per store call). A pass is one store
call (`retention_queries.prune_due` through `Store.query`); the runs' folders are then
removed off the event loop. Tasks left with runs to remove (a limit was hit) wait for the next.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

from . import retention_queries
from .background import Background
from .datadir import DataDir
from .models import TaskRun, now
from .removal import remove_or_log
from .store import Store


class Retention:
    """Applies each task's retention (its own, else the server's `keep_runs` and `keep_days`)."""

    #: Seconds from the first run end that makes a task pending to the pass over every
    #: pending task; runs one pass removes of one task, and in all; tasks per store call when
    #: every task is looked at.
    delay = 1.0
    task_limit = 500
    pass_limit = 2000
    chunk = 500

    def __init__(self, store: Store, data: DataDir, keep_runs: int, keep_days: float) -> None:
        self.store = store
        self.data = data
        self.keep_runs = keep_runs
        self.keep_days = keep_days
        self._background = Background("retention")
        self._pending: set[str] = set()  # tasks whose runs ended since the last pass
        self._pass: asyncio.Future[Any] | None = None  # the pass scheduled, if any

    async def start(self, stack: AsyncExitStack) -> None:
        """Passes stop when `stack` closes."""
        stack.push_async_callback(self._background.stop)

    def keep_pruning(self, interval: float) -> None:
        """Apply retention to every task every `interval` seconds (the scheduler holder)."""
        self._background.every(interval, self.prune_all)

    def run_ended(self, run: TaskRun) -> None:
        """A run ended: its task is pruned by the next pass."""
        self.later([run.task_id])

    def later(self, task_ids: list[str]) -> None:
        """Add tasks to the pending set; schedule a pass unless one is scheduled already."""
        self._pending.update(task_ids)
        if self._pending and self._pass is None:
            self._pass = self._background.spawn(self._soon())

    async def wait(self) -> None:
        """The pause between the first run end that makes a task pending and its pass."""
        await asyncio.sleep(self.delay)

    async def _soon(self) -> None:
        try:
            await self.wait()  # one pass for a burst of runs ending together
        finally:
            self._pass = None
        task_ids, self._pending = sorted(self._pending), set()
        await self.prune_tasks(task_ids)

    async def prune_all(self) -> None:
        """One pass over every task, `chunk` tasks at a time."""
        task_ids = await self.store.call(self.store.task_ids)
        for start in range(0, len(task_ids), self.chunk):
            await self.prune_tasks(task_ids[start : start + self.chunk])

    async def prune_tasks(
        self, task_ids: list[str], limit: int | None = None, total: int | None = None
    ) -> list[str]:
        """One retention pass over some tasks: one store call, then the runs' folders go;
        the ids of the runs removed."""
        pruned = await self.store.query(
            retention_queries.prune_due,
            task_ids,
            self.keep_runs,
            self.keep_days,
            now(),
            self.task_limit if limit is None else limit,
            self.pass_limit if total is None else total,
        )
        if pruned.run_ids:
            await asyncio.to_thread(self._remove_runs, pruned.run_ids)
        if pruned.unfinished:
            self.later(pruned.unfinished)
        return pruned.run_ids

    def _remove_runs(self, run_ids: list[str]) -> None:
        for run_id in run_ids:
            remove_or_log(self.data.run(run_id), "run folder")
