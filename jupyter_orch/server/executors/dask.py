"""Runs on a Dask distributed cluster: each run is one Dask task running `run_on_worker`.

The run's folder stays on the server: the worker sends its log bytes and its end back over the
run's own token (`RunChannel`, the `run/claim`, `run/log` and `run/end` endpoints), so logs,
retention and every reader work as for local runs. Dask itself is used to place runs (with
worker `resources` bounding how many a worker takes) and to learn of lost workers; tasks are
submitted with `fire_and_forget`, so they go on while the server restarts.

A run ends here when its worker reports its end, when the worker that claimed it leaves the
cluster (`failure`, naming the worker: a run is never started a second time), when Dask gives
up on it before it started, or when the scheduler has been unreachable for `scheduler_grace`
seconds (`failure`, with the reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ... import runtime
from ..._proc import runfiles
from ..models import RunStatus, now
from .base import Executor, ExitRecord, RunSpec, append_note
from .dask_worker import RUN_DIR_MARK, run_on_worker
from .local import _read_json, read_exit

log = logging.getLogger(__name__)

KEY_PREFIX = "jupyter_orch-run-"
RETRY_CONNECT = 2.0  # seconds after a failed connection before the next try
REMOTE = "remote.json"  # in the server's run folder: the worker that claimed the run


@dataclass
class DaskSettings:
    """Where the cluster is and how runs use it."""

    address: str = ""  # the scheduler's address
    cluster: Callable[[], Any] | None = None  # else: makes the cluster (dask-gateway ...)
    resources: dict[str, float] = field(default_factory=dict)
    callback_url: str = ""  # the server's API as workers reach it (default: the runs' own)
    scheduler_grace: float = 10.0
    connect_timeout: float = 5.0
    monitor_interval: float = 0.5


@dataclass
class _Remote:
    run_id: str
    run_dir: Path
    future: asyncio.Future[ExitRecord]
    task: Any = None  # the distributed.Future, when this client holds one
    worker: str | None = None
    kill_requested: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class DaskExecutor(Executor):
    """Submits runs to a Dask scheduler; follows them through their workers' reports."""

    builds_environments = True

    def __init__(self, settings: DaskSettings) -> None:
        self.settings = settings
        self._client: Any = None
        self._connecting: asyncio.Lock | None = None
        self._runs: dict[str, _Remote] = {}
        self._monitor: asyncio.Task[None] | None = None
        self._unreachable_since: float | None = None
        self._last_problem = ""
        self._retry_at = 0.0
        self._pending: set[asyncio.Future[None]] = set()

    @property
    def where(self) -> str:
        """The scheduler, as people name it."""
        return self.settings.address or "the configured Dask cluster"

    def run_env(self) -> dict[str, str]:
        """Nothing of the server's: a run's variables are laid over the worker's own."""
        return {}

    # -- the connection ---------------------------------------------------------------------

    async def client(self) -> Any:
        """The connected client (OSError naming the scheduler when it cannot be reached)."""
        from distributed import Client

        if self._client is not None and self._client.status == "running":
            return self._client
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._client is not None and self._client.status == "running":
                return self._client
            if time.monotonic() < self._retry_at:  # failed a moment ago: say so at once
                raise OSError(self._last_problem)
            if self._client is not None:
                with contextlib.suppress(Exception):
                    await self._client.close()
                self._client = None
            target: Any = self.settings.address
            if self.settings.cluster is not None:
                target = await asyncio.to_thread(self.settings.cluster)
            try:
                self._client = await Client(  # type: ignore[no-untyped-call]
                    target,
                    asynchronous=True,
                    timeout=self.settings.connect_timeout,
                    set_as_default=False,
                    name="jupyter_orch",
                )
            except Exception as exc:
                self._last_problem = f"cannot reach the Dask scheduler at {self.where}: {exc}"
                self._retry_at = time.monotonic() + RETRY_CONNECT
                raise OSError(self._last_problem) from exc
            return self._client

    async def check(self) -> None:
        """OSError when the scheduler cannot be reached."""
        await self.client()

    async def start(self) -> None:
        """Follow runs (the cluster is connected to when first needed)."""
        self._monitor = asyncio.ensure_future(self._watch())

    async def stop(self) -> None:
        """Stop following runs; they go on (fire and forget) and the next server re-attaches."""
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        for remote in self._runs.values():
            remote.future.cancel()
        self._runs.clear()
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
            self._client = None

    # -- runs -------------------------------------------------------------------------------

    async def launch(self, spec: RunSpec) -> asyncio.Future[ExitRecord]:
        """Submit the run to the cluster (OSError when it cannot be reached)."""
        from distributed import fire_and_forget

        client = await self.client()
        await asyncio.to_thread(self._prepare_dir, spec)
        remote = self._follow(spec.run_id, spec.run_dir)
        remote.task = client.submit(
            run_on_worker,
            self._payload(spec),
            key=KEY_PREFIX + spec.run_id,
            pure=False,
            resources=self.settings.resources or None,
        )
        fire_and_forget(remote.task)  # type: ignore[no-untyped-call]
        return remote.future

    @staticmethod
    def _prepare_dir(spec: RunSpec) -> None:
        """The run's folder here, the server's alone (0700, its files 0600) as a local run's:
        its log (empty until the worker reports) and its spec, for people."""
        runfiles.make_run_dir(str(spec.run_dir))
        runfiles.write_files(str(spec.run_dir), {runfiles.LOG: ""})
        runfiles.write_spec(str(spec.run_dir), spec.to_json(), binary=False)

    def _payload(self, spec: RunSpec) -> dict[str, Any]:
        """What the worker needs; the server's paths become the worker's run folder."""
        here = str(spec.run_dir)
        env = {k: v.replace(here, RUN_DIR_MARK) for k, v in spec.env.items()}
        url = self.settings.callback_url or env.get(runtime.URL_VAR, "")
        env[runtime.URL_VAR] = url
        task = {k: v for k, v in spec.to_json().items() if k not in ("env", "source")}
        task["argv"] = [a.replace(here, RUN_DIR_MARK) for a in spec.argv]
        return {
            "run_id": spec.run_id,
            "url": url,
            "token": spec.secrets[runtime.TOKEN_VAR],
            "orch_id": spec.orch_id,
            "orch_sha": spec.orch_sha,
            "requirements": spec.requirements,
            "notebook": spec.notebook,
            "env": env,
            "spec": task,
        }

    def _follow(self, run_id: str, run_dir: Path) -> _Remote:
        remote = _Remote(run_id, run_dir, asyncio.get_running_loop().create_future())
        self._runs[run_id] = remote
        return remote

    async def reattach(self, run_id: str, run_dir: Path) -> asyncio.Future[ExitRecord]:
        """Follow a run submitted by an earlier server: ended already, or still reporting."""
        remote = self._follow(run_id, run_dir)
        if (run_dir / runfiles.EXIT).exists():
            self._end(remote, await asyncio.to_thread(read_exit, run_dir, False))
            return remote.future
        claimed = await asyncio.to_thread(_read_json, run_dir / REMOTE)
        remote.worker = claimed.get("worker") if claimed else None
        with contextlib.suppress(OSError):
            client = await self.client()
            states = await client.scheduler.get_task_status(keys=[KEY_PREFIX + run_id])
            if states.get(KEY_PREFIX + run_id) is not None:
                from distributed import Future

                remote.task = Future(KEY_PREFIX + run_id, client)
        return remote.future

    def kill(self, run_id: str) -> bool:
        """Relayed to the worker at its next report; a run not started yet ends at once."""
        remote = self._runs.get(run_id)
        if remote is None:
            return False
        remote.kill_requested = True
        if remote.worker is None:
            if remote.task is not None:
                self._pending.add(asyncio.ensure_future(_cancel(remote.task)))
                self._pending = {t for t in self._pending if not t.done()}
            self._end_soon(remote, RunStatus.KILLED, "killed on request before it started")
        return True

    # -- what workers report ----------------------------------------------------------------

    def follows(self, run_id: str) -> bool:
        """Whether this executor follows the run."""
        return run_id in self._runs

    def may_claim(self, run_id: str) -> bool:
        """Whether the run may still start (not killed, not over)."""
        remote = self._runs.get(run_id)
        return remote is not None and not remote.kill_requested and not remote.future.done()

    async def claimed(self, run_id: str, worker: str) -> int | None:
        """The run started on `worker`; how many of its log bytes the server has (None: it
        ended meanwhile, killed before the claim landed)."""
        remote = self._runs.get(run_id)
        if remote is None:
            return None
        remote.worker = worker
        await asyncio.to_thread(
            runfiles.write_json, str(remote.run_dir / REMOTE), {"worker": worker}
        )
        return await asyncio.to_thread(_size, remote.run_dir / runfiles.LOG)

    async def receive_log(self, run_id: str, offset: int, data: bytes) -> tuple[int, bool]:
        """Append what the server lacks of the bytes at `offset`; its size, and whether to kill."""
        remote = self._runs[run_id]
        async with remote.lock:
            size = await asyncio.to_thread(_append_at, remote.run_dir / runfiles.LOG, offset, data)
        return size, remote.kill_requested

    async def receive_end(self, run_id: str, record: dict[str, Any], files: dict[str, str]) -> None:
        """The worker's exit record: kept in the run's folder as a local run's is, then the end."""
        remote = self._runs[run_id]
        await asyncio.to_thread(_keep_end, remote.run_dir, record, files)
        self._end(remote, await asyncio.to_thread(read_exit, remote.run_dir, False))

    # -- watching the cluster ---------------------------------------------------------------

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.monitor_interval)
            if self._runs:
                try:
                    await self._look()
                except Exception:  # the loop must go on; say what went wrong
                    log.exception("jupyter_orch: could not check the Dask runs")

    async def _look(self) -> None:
        try:
            client = await self.client()
            info = await asyncio.wait_for(client.scheduler.identity(), 5.0)
        except (OSError, asyncio.TimeoutError) as exc:
            self._unreachable(str(exc) or "no answer")
            return
        self._unreachable_since = None
        workers = set(info.get("workers", {}))
        for remote in list(self._runs.values()):
            if remote.future.done():
                continue
            if remote.worker is not None and remote.worker.split(" ")[0] not in workers:
                self._lost_worker(remote)
            elif remote.task is not None and remote.task.done():
                await self._task_done(remote)

    def _unreachable(self, problem: str) -> None:
        if self._unreachable_since is None:
            self._unreachable_since = time.monotonic()
            log.warning("jupyter_orch: the Dask scheduler at %s is unreachable", self.where)
        if time.monotonic() - self._unreachable_since < self.settings.scheduler_grace:
            return
        why = problem.split(": ", 1)[-1] if problem.startswith("cannot reach") else problem
        reason = f"the Dask scheduler at {self.where} was lost ({why})"
        for remote in list(self._runs.values()):
            self._end_soon(remote, RunStatus.FAILURE, reason)

    def _lost_worker(self, remote: _Remote) -> None:
        reason = f"the Dask worker {remote.worker} running it was lost; not started again"
        self._end_soon(remote, RunStatus.FAILURE, reason)

    async def _task_done(self, remote: _Remote) -> None:
        """Dask finished the task without the worker's report reaching us."""
        task = remote.task
        if task.status == "error":
            exc = await task.exception()
            why = f"Dask gave up on it: {type(exc).__name__}: {exc}"
            self._end_soon(remote, RunStatus.FAILURE, why)
            return
        if task.status != "finished":  # cancelled, or lost with its scheduler
            self._end_soon(remote, RunStatus.FAILURE, f"its Dask task was {task.status}")
            return
        result = await task.result()
        if result.get("started") is False and remote.worker is not None:
            self._lost_worker(remote)
        elif result.get("exit"):
            await self.receive_end(remote.run_id, result["exit"], {})
        elif not result.get("started"):
            why = f"could not start on {result.get('worker')}: {result.get('reason')}"
            self._end_soon(remote, RunStatus.FAILURE, why)

    def _end_soon(self, remote: _Remote, status: RunStatus, reason: str) -> None:
        """End a run from the server's side, its log saying why."""
        if remote.future.done():
            return
        record = ExitRecord(status=status, exit_code=None, reason=reason, ended_at=now())
        append_note(remote.run_dir, f"jupyter_orch: {reason}")  # one small write
        self._end(remote, record)

    def _end(self, remote: _Remote, record: ExitRecord) -> None:
        if self._runs.get(remote.run_id) is remote:
            del self._runs[remote.run_id]
        if not remote.future.done():
            remote.future.set_result(record)


async def _cancel(task: Any) -> None:
    with contextlib.suppress(Exception):
        await task.cancel()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _append_at(path: Path, offset: int, data: bytes) -> int:
    """Append the part of `data` (the log's bytes from `offset`) the file lacks; its size.
    Bytes already there are not written again; a gap is not filled (the sender resends from
    the size it is told)."""
    size = _size(path)
    if offset <= size < offset + len(data):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            runfiles.write_all(fd, data[size - offset :])
        finally:
            os.close(fd)
        size = offset + len(data)
    return size


def _keep_end(run_dir: Path, record: dict[str, Any], files: dict[str, str]) -> None:
    for name, text in files.items():
        if name == runfiles.OUTPUT_NOTEBOOK:  # private (0600), written whole, then renamed
            runfiles.write_files(str(run_dir), {f".~{name}": text})
            os.replace(run_dir / f".~{name}", run_dir / name)
    keep = {k: record.get(k) for k in ("status", "exit_code", "reason", "started_ns", "ended_ns")}
    runfiles.write_json(str(run_dir / runfiles.EXIT), keep)
