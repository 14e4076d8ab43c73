"""Deleting orchestrations and tasks with everything that belongs to them.

Without confirmation a deletion is a preview: what would go, and which tasks have a run going.
With it, runs still going are stopped first, as `task/kill` stops them (the task takes no new
run; SIGTERM, then SIGKILL after the kill grace), and waited for, the kill grace and
`WAIT_SLACK` seconds at most; if one is still going then, nothing is deleted (409 naming the
tasks). Then the rows go in one transaction (the tasks' locks held, so no run starts
meanwhile) and the files after: run folders (logs, outputs, records), orchestration folders,
build logs, and an archive no orchestration uses any more."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from .datadir import DataDir
from .errors import WrongState
from .models import Orchestration, Task, TaskQuery
from .removal import remove_or_log
from .store import Store
from .tasks import TaskManager

#: Seconds waited for killed runs past the kill grace: a supervisor that does not end by
#: then is killed 5 s past the grace (`executors/local.py`), and its end recorded meanwhile.
WAIT_SLACK = 10.0
#: How often the database is asked whether runs another server follows have ended, seconds.
POLL = 0.25


class Deletion:
    """Deletes orchestrations and tasks of one data directory."""

    def __init__(self, data: DataDir, store: Store, tasks: TaskManager, kill_grace: float) -> None:
        self.data = data
        self.store = store
        self.tasks = tasks
        self.kill_grace = kill_grace

    async def delete_orchestrations(
        self, orchs: list[Orchestration], confirm: bool
    ) -> dict[str, Any]:
        """Delete orchestrations with their tasks, runs and files; without confirm, a preview.
        A run from one of them of a task that now runs other code is stopped too (the task
        stays)."""
        ids = [o.id for o in orchs]
        tasks = await self.store.call(self.store.list_tasks, TaskQuery(orch_ids=ids, run_limit=0))
        task_ids = [t.id for t in tasks]
        answer = {
            "orchestrations": ids,
            "tasks": task_ids,
            "task_runs": await self.store.call(self.store.count_runs, task_ids),
            "deleted": False,
        }
        if not confirm:
            return answer
        async with self._stopped(tasks, ids):
            run_ids = await self.store.call(self.store.run_ids, task_ids)
            await self.store.call(self.store.delete_orchestrations, ids)
            self.tasks.forget(task_ids)
        # An archive goes with its last orchestration (two uploads of one zip share it).
        unused = [
            sha
            for sha in dict.fromkeys(o.sha for o in orchs)
            if await self.store.call(self.store.count_sha_users, sha) == 0
        ]
        await asyncio.to_thread(self._remove_files, orchs, unused, run_ids)
        return {**answer, "task_runs": len(run_ids), "deleted": True}

    async def delete_tasks(self, tasks: list[Task], confirm: bool) -> dict[str, Any]:
        """Delete tasks with their runs, skips, changes and run folders; without confirm, a
        preview naming the tasks that have a run going (they would be killed)."""
        task_ids = [t.id for t in tasks]
        answer = {
            "tasks": task_ids,
            "task_runs": await self.store.call(self.store.count_runs, task_ids),
            "running": await self._going(task_ids),
            "deleted": False,
        }
        if not confirm:
            return answer
        async with self._stopped(tasks):
            run_ids = await self.store.call(self.store.run_ids, task_ids)
            await self.store.call(self.store.delete_tasks, task_ids)
            self.tasks.forget(task_ids)
        await asyncio.to_thread(self._remove_files, [], [], run_ids)
        return {**answer, "task_runs": len(run_ids), "deleted": True}

    # -- stopping runs ----------------------------------------------------------------------

    async def _going(self, task_ids: list[str], orch_ids: Sequence[str] = ()) -> list[str]:
        """Those of the tasks with a run going (here, or by the database anywhere), and the
        tasks with a run going here from one of the orchestrations; sorted."""
        recorded = await self.store.call(self.store.running_tasks, task_ids) if task_ids else []
        here = self.tasks.busy(task_ids) + self.tasks.running_from(list(orch_ids))
        return sorted({*recorded, *here})

    def _runs_from(self, orch_ids: Sequence[str], task_ids: list[str]) -> list[str]:
        """The runs going here from these orchestrations of tasks not among `task_ids`."""
        runner, deleted, wanted = self.tasks.runner, set(task_ids), set(orch_ids)
        return [
            run_id
            for run_id, orch_id in runner.sources.items()
            if orch_id in wanted and runner.active.get(run_id) not in deleted
        ]

    @contextlib.asynccontextmanager
    async def _stopped(
        self, tasks: list[Task], orch_ids: Sequence[str] = ()
    ) -> AsyncIterator[None]:
        """Stop the runs going of these tasks (and from these orchestrations), wait for their
        ends, then hold the tasks' locks with none going; WrongState if runs are still going
        after the wait."""
        task_ids = [t.id for t in tasks]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.kill_grace + WAIT_SLACK
        going = await self._going(task_ids, orch_ids)
        await self._kill([t for t in tasks if t.id in going and not t.killed], task_ids, orch_ids)
        while True:
            while going:
                if loop.time() >= deadline:
                    raise WrongState(
                        f"tasks {', '.join(going)} still have runs going "
                        f"{self.kill_grace + WAIT_SLACK:g} s after being stopped; "
                        "nothing was deleted"
                    )
                await self._wait_ends(task_ids, orch_ids, min(POLL, deadline - loop.time()))
                going = await self._going(task_ids, orch_ids)
            async with contextlib.AsyncExitStack() as locks:
                for task_id in sorted(task_ids):
                    await locks.enter_async_context(self.tasks.lock(task_id))
                going = await self._going(task_ids, orch_ids)
                if not going:  # no run started while the locks were taken
                    yield
                    return
            await self._kill([t for t in tasks if t.id in going], task_ids, orch_ids)

    async def _kill(self, tasks: list[Task], task_ids: list[str], orch_ids: Sequence[str]) -> None:
        """Kill tasks (no new runs; their runs end), and stop the runs from the
        orchestrations of tasks not deleted (`task_ids`: those deleted)."""
        for task in tasks:
            with contextlib.suppress(WrongState):  # killed meanwhile: its runs are ending
                await self.tasks.kill(task.id)
        for run_id in self._runs_from(orch_ids, task_ids):
            self.tasks.runner.executors.kill(run_id)

    async def _wait_ends(
        self, task_ids: list[str], orch_ids: Sequence[str], timeout: float
    ) -> None:
        """Until one of the runs followed here of these tasks or orchestrations ends, or
        `timeout` seconds (runs another server follows are seen ending in the database)."""
        runner, tasks, orchs = self.tasks.runner, set(task_ids), set(orch_ids)
        ends = [
            asyncio.ensure_future(runner.ended_event(run_id).wait())
            for run_id, task_id in list(runner.active.items())
            if task_id in tasks or runner.sources.get(run_id) in orchs
        ]
        if not ends:
            await asyncio.sleep(timeout)
            return
        try:
            await asyncio.wait(ends, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for end in ends:
                end.cancel()

    # -- files ------------------------------------------------------------------------------

    def _remove_files(
        self, orchs: list[Orchestration], unused_shas: list[str], run_ids: list[str]
    ) -> None:
        for orch in orchs:
            remove_or_log(self.data.orchestration(orch.id), "orchestration folder")
            self.data.build_log(orch.id).unlink(missing_ok=True)
        for sha in unused_shas:
            self.data.archive(sha).unlink(missing_ok=True)
        for run_id in run_ids:
            remove_or_log(self.data.run(run_id), "run folder")
