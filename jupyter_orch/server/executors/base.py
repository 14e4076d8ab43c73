"""The executor interface: start a run's supervisor, learn how the run ended, stop it."""

from __future__ import annotations

import asyncio
import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..._proc import runfiles
from ..._proc.runlog import Clock
from ..models import RunStatus

#: Variables of the server's own that a run must not inherit (it gets a token of its own).
SECRET_VARS = ("JUPYTER_TOKEN", "JPY_API_TOKEN", "JUPYTERHUB_API_TOKEN", "JPY_COOKIE_SECRET")


#: The folder of our `wallaroo` module (`import wallaroo` in orchestrations written for
#: Wallaroo): last on every run's path, never installed, so a real `wallaroo` wins.
WALLAROO_PATH = str(Path(__file__).resolve().parents[2] / "_wallaroo")


def base_env() -> dict[str, str]:
    """The environment every run starts from: the server's, without its secrets, with our
    `wallaroo` module's folder last on `PYTHONPATH`."""
    return with_run_path({k: v for k, v in os.environ.items() if k not in SECRET_VARS})


def with_run_path(env: dict[str, str]) -> dict[str, str]:
    """`env` with `WALLAROO_PATH` last on its `PYTHONPATH` (once)."""
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != WALLAROO_PATH]
    return {**env, "PYTHONPATH": os.pathsep.join([*parts, WALLAROO_PATH])}


def append_note(run_dir: Path, text: str) -> None:
    """Append a line of our own to a run's log, in the log's format (blocking)."""
    runfiles.make_run_dir(str(run_dir))
    stamp = Clock().stamp(time.time_ns())
    fd = os.open(run_dir / runfiles.LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with open(fd, "a", encoding="utf-8") as fh:
        fh.write(f"{stamp} stderr F {text}\n")


@dataclass
class RunSpec:
    """Everything a supervisor needs to run one task run."""

    run_id: str
    run_dir: Path
    argv: list[str]
    env: dict[str, str]
    source: Path
    cwd: str
    timeout: float | None = None
    grace: float = 10.0
    max_line: int = 16384
    max_log_bytes: int | None = None
    niceness: int = 0
    files: dict[str, str] = field(default_factory=dict)  # written into run_dir before start
    user: str | None = None  # the Unix account to run as (None: the server's own)
    owner_files: list[str] = field(default_factory=list)  # files in run_dir the run writes
    # What an executor that prepares runs elsewhere needs (see Executor.builds_environments):
    orch_id: str = ""
    orch_sha: str = ""  # the archive's content hash: its files, wherever the run executes
    requirements: list[str] | None = None  # normalised lines; None: no environment of its own
    notebook: bool = False
    #: Variables added to the run's environment that are never written to disk (its token).
    secrets: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """The spec the supervisor reads (written as `spec.bin`, and `spec.json` for people)."""
        return {
            "argv": self.argv,
            "env": self.env,
            "source": str(self.source),
            "cwd": self.cwd,
            "timeout": self.timeout,
            "grace": self.grace,
            "max_line": self.max_line,
            "max_log_bytes": self.max_log_bytes,
            "niceness": self.niceness,
            "files": self.files,
            "user": self.user,
            "owner_files": self.owner_files,
            runfiles.SECRETS: self.secrets,
        }


@dataclass
class ExitRecord:
    """How a run ended: a failure is data, not an exception."""

    status: RunStatus
    exit_code: int | None
    reason: str
    ended_at: datetime
    started_at: datetime | None = None
    extra: dict[str, object] = field(default_factory=dict)


class Executor(ABC):
    """Starts and stops runs; each launch returns a future resolved with the run's end.

    Whatever the executor, a run's folder (its log, records and working directory) is on the
    server's side, under the data directory.
    """

    #: Whether runs get their files and environment where they execute (`RunSpec.orch_sha`,
    #: `requirements`), rather than from the server's data directory and environments.
    builds_environments = False

    def run_env(self) -> dict[str, str]:
        """The variables a run's own are laid over: the server's, without its secrets."""
        return base_env()

    async def check(self) -> None:  # noqa: B027 - optional hook
        """Raise OSError saying why, when runs cannot be started now (unreachable)."""

    def interpreter(self) -> str:
        """The Python of runs that need no environment of their own, as named where runs
        execute."""
        return "python3"

    async def note(self, run_dir: Path, text: str) -> None:
        """Append a line of the server's own to a run's log (why it could not start)."""
        await asyncio.to_thread(append_note, run_dir, text)

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Prepare to launch runs."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Stop watching runs (the runs themselves go on)."""

    @abstractmethod
    async def launch(self, spec: RunSpec) -> asyncio.Future[ExitRecord]:
        """Start a run; the future resolves when it has ended."""

    @abstractmethod
    async def reattach(self, run_id: str, run_dir: Path) -> asyncio.Future[ExitRecord]:
        """Follow a run started before this server did; resolves when it has ended."""

    @abstractmethod
    def kill(self, run_id: str) -> bool:
        """Ask a run to stop (SIGTERM, grace, SIGKILL); False when it is not known here."""
