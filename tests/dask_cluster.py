"""A real Dask cluster on 127.0.0.1: `dask scheduler` and `dask worker` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from distributed import Client

from .servers import free_port, wait_for

REPO = Path(__file__).resolve().parents[1]


class DaskCluster:
    """A scheduler and workers, each a process of its own (no nanny: killing a worker's
    process kills the worker). Every worker has its own cache folder."""

    def __init__(self, workdir: Path, resources: str = "orch_runs=2") -> None:
        self.workdir = workdir
        self.resources = resources
        self.port = free_port()
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.env = dict(os.environ, PYTHONPATH=str(REPO), DASK_DISTRIBUTED__WORKER__DAEMON="0")

    @property
    def address(self) -> str:
        """The scheduler's address."""
        return f"tcp://127.0.0.1:{self.port}"

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - the process keeps it
        dask = [sys.executable, "-m", "distributed.cli.dask_" + argv[0]]
        return subprocess.Popen(dask + argv[1:], stdout=log, stderr=log, env=env)

    def start_scheduler(self) -> None:
        """Start the scheduler (again, on the same port) and wait until it answers."""
        self.scheduler = self._spawn(
            "scheduler",
            ["scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"],
            self.env,
        )
        wait_for(lambda: self.ask(lambda c: True) is True, "the Dask scheduler", 60)

    def start_worker(self, name: str, **env: str) -> None:
        """Start a worker and wait until the scheduler knows it."""
        cache = self.workdir / f"cache-{name}"
        worker_env = dict(self.env, JUPYTER_ORCH_WORKER_DIR=str(cache), **env)
        argv = ["worker", self.address, "--name", name, "--host", "127.0.0.1"]
        argv += ["--nthreads", "4", "--no-nanny", "--no-dashboard", "--resources", self.resources]
        argv += ["--local-directory", str(self.workdir / f"dask-{name}")]
        self.workers[name] = self._spawn(f"worker-{name}", argv, worker_env)
        wait_for(lambda: name in self.worker_names(), f"Dask worker {name}", 60)

    def worker_names(self) -> dict[str, str]:
        """Name -> address of the workers the scheduler knows."""
        info = self.ask(lambda c: c.scheduler_info(n_workers=-1)) or {}
        return {w["name"]: addr for addr, w in info.get("workers", {}).items()}

    def ask(self, question: Any) -> Any:
        """`question(client)` with a short-lived client; None if the scheduler is away."""
        try:
            with Client(self.address, timeout=2, set_as_default=False) as client:
                return question(client)
        except (OSError, TimeoutError):
            return None

    def kill(self, name: str) -> None:
        """SIGKILL a worker (or "scheduler") and wait for its end."""
        proc = self.scheduler if name == "scheduler" else self.workers[name]
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)

    def log(self, name: str) -> str:
        """What one process printed."""
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        """Stop every process (SIGKILL after a short wait)."""
        procs = [*self.workers.values(), *([self.scheduler] if self.scheduler else [])]
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 10
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
