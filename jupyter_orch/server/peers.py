"""The servers sharing one data directory: which one schedules, and what the others wrote.

Of the servers on one data directory, the one holding the scheduler lock (`lock.py`) makes
timed runs: it re-attaches runs, resumes packaging, plans timers, collects idle environments
and applies retention. Another serves the API and starts the runs it is asked for, and takes
over when the holder stops (it tries the lock every `LOCK_RETRY` seconds). Every server looks
every `sync_interval` seconds whether another one wrote to the database, and follows it.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack

from .background import Background
from .datadir import DataDir
from .intake import Intake
from .lock import SchedulerLock
from .packaging import Packager
from .retention import Retention
from .store import Store
from .tasks import TaskManager

log = logging.getLogger(__name__)
LOCK_RETRY = 5.0  # seconds between two tries of a lock another server holds


class Peers:
    """This server among the others of its data directory."""

    def __init__(
        self,
        data: DataDir,
        store: Store,
        tasks: TaskManager,
        intake: Intake,
        retention: Retention,
        packager: Packager,
        *,
        sync_interval: float = 2.0,
        retention_interval: float = 3600.0,
    ) -> None:
        self.data = data
        self.store = store
        self.tasks = tasks
        self.runner = tasks.runner
        self.intake = intake
        self.retention = retention
        self.packager = packager
        self.sync_interval = sync_interval
        self.retention_interval = retention_interval
        self.lock = SchedulerLock(data.scheduler_lock)
        self._background = Background("following the other servers")
        self._seen_version = -1

    async def start(self, stack: AsyncExitStack) -> None:
        """Register the lock's release and the end of this work (when `stack` closes, after
        what starts later: the lock goes once runs and timers have stopped here)."""
        stack.callback(self.lock.release)
        stack.push_async_callback(self._background.stop)

    async def join(self) -> None:
        """Follow the other servers; schedule now if no other one does, else once it stops."""
        self._background.every(self.sync_interval, self.sync)
        if self.lock.try_acquire():
            await self.take_over()
            return
        log.info(
            "jupyter_orch: the server with pid %s holds the scheduler of %s; this server "
            "serves the API and runs what it is asked to run, and takes over if that one stops",
            self.lock.holder(),
            self.data.root,
        )
        self._background.spawn(self._wait_for_lock())

    async def take_over(self) -> None:
        """This server holds the scheduler lock: re-attach runs, resume work, plan timers."""
        await self.runner.reattach()
        await self.intake.resume()
        await self.tasks.take_scheduling()
        self._background.spawn(self.packager.collect_forever(self._env_keys_in_use))
        self.retention.keep_pruning(self.retention_interval)

    async def _wait_for_lock(self) -> None:
        # Another process holds the lock: nothing here can signal its release, so look again.
        while not self.lock.try_acquire():  # noqa: ASYNC110
            await asyncio.sleep(LOCK_RETRY)
        log.info("jupyter_orch: this server now holds the scheduler of %s", self.data.root)
        await self.take_over()

    async def _env_keys_in_use(self) -> set[str]:
        """Environments of the orchestrations behind active runs (never collected)."""
        keys = set()
        for task_id in set(self.runner.active.values()):
            task = await self.store.call(self.store.get_task, task_id, 0)
            orch = (
                await self.store.call(self.store.get_orchestration, task.orch_id) if task else None
            )
            if orch is not None and orch.env_key:
                keys.add(orch.env_key)
        return keys

    async def sync(self) -> None:
        """Follow what another server of this data directory wrote: end the runs here of
        tasks it killed; the scheduler holder also adopts the runs and tasks it started."""
        version = await self.store.call(self.store.data_version)
        if version == self._seen_version:
            return  # nobody else wrote: nothing to adopt (our own writes are known already)
        self._seen_version = version
        active = sorted(set(self.runner.active.values()))
        for task_id in await self.store.call(self.store.killed_among, active):
            self.runner.kill(task_id)
        if self.tasks.scheduling:
            await self.runner.reattach()
            await self.tasks.sync()
