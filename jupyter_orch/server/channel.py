"""What the remote side of a run reports, with the run's own token: its claim, log and end."""

from __future__ import annotations

import logging
from typing import Any

from .errors import InvalidRequest, RunGone, WrongState
from .executors.dask import DaskExecutor
from .executors.registry import Executors
from .models import RunStatus
from .store import Store

log = logging.getLogger(__name__)

_RECORD_TYPES: dict[str, tuple[type, ...]] = {
    "exit_code": (int, type(None)),
    "reason": (str,),
    "started_ns": (int, type(None)),
    "ended_ns": (int, type(None)),
}


class RunChannel:
    """Claims, log bytes and ends sent by the workers of remote executors."""

    def __init__(self, store: Store, executors: Executors) -> None:
        self.store = store
        self.executors = executors

    def _executor(self, run_id: str) -> DaskExecutor:
        """The executor following the run; RunGone when none does (the run is over)."""
        for name in self.executors.names:
            executor = self.executors.known(name)
            if isinstance(executor, DaskExecutor) and executor.follows(run_id):
                return executor
        raise RunGone(f"run {run_id} is not running on this server; stop it")

    async def claim(self, run_id: str, worker: str) -> int:
        """Let `worker` start the run, once: how many log bytes the server already has;
        WrongState when the run started elsewhere (the refusal is counted on the run)."""
        executor = self._executor(run_id)
        if not executor.may_claim(run_id):
            raise RunGone(f"run {run_id} was killed before it started; not starting it")
        await self.claim_once(run_id, worker)
        received = await executor.claimed(run_id, worker)
        if received is None:
            raise RunGone(f"run {run_id} was killed before it started; not starting it")
        return received

    async def claim_once(self, run_id: str, worker: str) -> None:
        """Claim the run for `worker`: nothing when the claim wins; WrongState when the run
        started elsewhere or is over (the refused claim is counted on the run)."""
        holder = await self.store.call(self.store.claim_run, run_id, worker)
        if holder is not None:
            log.warning(
                "run %s: refused to start it again on %s (%s has it)", run_id, worker, holder
            )
            raise WrongState(f"run {run_id} already started on {holder}; not starting it again")

    async def log(self, run_id: str, offset: int, data: bytes) -> dict[str, Any]:
        """Log bytes from `offset`: what the server has now, and whether to kill the run."""
        received, kill = await self._executor(run_id).receive_log(run_id, offset, data)
        return {"received": received, "kill": kill}

    async def end(self, run_id: str, record: dict[str, Any], files: dict[str, str]) -> None:
        """The run's exit record (checked), and the files it leaves (a notebook's output)."""
        statuses = {s.value for s in RunStatus} - {RunStatus.RUNNING.value}
        if record.get("status") not in statuses:
            raise InvalidRequest("exit.status", f"must be one of {sorted(statuses)}")
        for name, kinds in _RECORD_TYPES.items():
            if not isinstance(record.get(name), kinds) or isinstance(record.get(name), bool):
                raise InvalidRequest(f"exit.{name}", "has the wrong type")
        if not all(isinstance(text, str) for text in files.values()):
            raise InvalidRequest("files", "must map names to text")
        await self._executor(run_id).receive_end(run_id, record, files)
