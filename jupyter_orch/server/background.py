"""Background coroutines that are kept referenced, logged when they fail, and cancelled at stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


class Background:
    """A set of background tasks owned by one component."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._tasks: set[asyncio.Future[Any]] = set()

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Future[Any]:
        """Run a coroutine in the background; its failure is logged, never lost."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def every(self, seconds: float, work: Callable[[], Awaitable[None]]) -> asyncio.Future[Any]:
        """Run `work` every `seconds` in the background, the first time `seconds` from now; a
        failed round is logged and the next one tries again."""
        return self.spawn(self._every(seconds, work))

    async def _every(self, seconds: float, work: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await work()
            except Exception:  # the next round tries again; one failure stops nothing
                log.exception("jupyter_orch: %s failed (it runs again later)", self.what)

    async def idle(self) -> None:
        """Wait until no task is left, including those spawned meanwhile (so never while an
        `every` loop runs)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("jupyter_orch: %s failed", self.what, exc_info=task.exception())

    async def stop(self) -> None:
        """Cancel every task still running and wait for them to finish."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
