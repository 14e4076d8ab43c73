"""The Jupyter Server extension: settings as traitlets, a service built at start, stopped at end."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from typing import Any, cast

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from traitlets import Bool, Float, Int, Type, Unicode, default, validate

from .._version import __version__
from .archive import ArchiveLimits
from .datadir import DataDir
from .errors import damaged_database, database_trouble
from .executors import Executor
from .executors.local import LocalExecutor
from .fields import MAX_LOG_BYTES, MIN_LOG_BYTES
from .handlers import routes
from .packaging import Packager
from .service import OrchService, ServiceConfig
from .store import Store
from .tasks import TaskSettings


class OrchApp(ExtensionApp):
    """Workload automation for Jupyter: orchestrations, tasks and runs behind a REST API."""

    name = "jupyter_orch"
    version = __version__
    description = __doc__
    load_other_extensions = True

    data_dir = Unicode(
        help="Where the database, archives, environments and run logs live.",
    ).tag(config=True)

    @default("data_dir")
    def _default_data_dir(self) -> str:
        return os.path.join(jupyter_data_dir(), "orch")

    max_upload_bytes = Int(
        512 * 1024 * 1024,
        help="Largest upload body accepted, in bytes (413 above it).",
    ).tag(config=True)

    max_archive_files = Int(10_000, help="Most files an orchestration archive may hold.").tag(
        config=True
    )

    max_archive_bytes = Int(
        1024 * 1024 * 1024,
        help="Most uncompressed bytes an orchestration archive may hold (zip bombs stop here).",
    ).tag(config=True)

    kill_grace_seconds = Float(
        10.0,
        help="Seconds between SIGTERM and SIGKILL when a run is killed or times out.",
    ).tag(config=True)

    max_log_line_bytes = Int(
        16 * 1024,
        help="Longest log line kept whole; longer output is split into partial (P) lines.",
    ).tag(config=True)

    max_log_bytes = Int(
        64 * 1024 * 1024,
        help="Largest size of a run's log on disk, in bytes; tasks may set their own. A log "
        "over it keeps its start (a quarter of this) and always its end, with a line saying how "
        "much output was dropped between them.",
    ).tag(config=True)

    @validate("max_log_bytes")
    def _log_cap(self, proposal: Any) -> int:
        value: int = proposal["value"]
        if not MIN_LOG_BYTES <= value <= MAX_LOG_BYTES:
            raise ValueError(
                f"max_log_bytes must be between {MIN_LOG_BYTES} and {MAX_LOG_BYTES}, not {value}"
            )
        return value

    allow_requirement_options = Bool(
        False,
        help="Allow requirements.txt lines that choose indexes, editable installs, nested "
        "files or direct URLs (off: the server's own pip configuration decides).",
    ).tag(config=True)

    max_parallel_builds = Int(2, help="How many environments may be built at the same time.").tag(
        config=True
    )

    env_installer = Unicode(
        "auto",
        help="What builds environments: 'uv', 'pip' (python -m venv + pip), or 'auto' (uv "
        "when its binary is found, else pip).",
    ).tag(config=True)

    env_max_idle_days = Float(
        30.0,
        help="Environments no run or upload has used for this many days are removed in the "
        "background (never one in use; rebuilt when needed again). 0 keeps them forever.",
    ).tag(config=True)

    env_collect_interval_seconds = Float(
        3600.0,
        help="How often idle environments are looked for, in seconds (0: never).",
    ).tag(config=True)

    starting_deadline_seconds = Int(
        600,
        help="A scheduled instant missed while no server ran still runs at start-up if it is "
        "at most this many seconds old (the latest one only; older ones are recorded as "
        "missed). Tasks may set their own.",
    ).tag(config=True)

    crash_loop_seconds = Float(
        10.0,
        help="A continuous task's run that fails within this many seconds counts as a fast "
        "failure: the next run waits (1 s, doubling to 60 s) and the task shows crash_loop.",
    ).tag(config=True)

    keep_runs = Int(
        100, help="Runs (with their logs) kept per task, newest first; tasks may set their own."
    ).tag(config=True)

    keep_days = Float(
        30.0,
        help="Days a run (with its log) is kept; tasks may set their own. The latest failed "
        "run of a task is always kept.",
    ).tag(config=True)

    retention_interval_seconds = Float(
        3600.0, help="How often retention is applied to every task (it also runs after runs)."
    ).tag(config=True)

    stop_runs_on_shutdown = Bool(
        False,
        help="End active runs when the server shuts down cleanly (by default they keep going "
        "and a restarted server follows them again).",
    ).tag(config=True)

    run_niceness = Int(
        10,
        help="Niceness added to every run's processes (0-19; 0 keeps the server's priority). "
        "Under CPU contention the Jupyter server and its kernels then stay responsive while "
        "runs take what is left; on an idle machine runs are as fast as ever.",
    ).tag(config=True)

    @validate("run_niceness")
    def _niceness(self, proposal: Any) -> int:
        value: int = proposal["value"]
        if not 0 <= value <= 19:
            raise ValueError(f"run_niceness must be between 0 and 19, not {value}")
        return value

    fork_server = Bool(
        True,
        help="Start runs from a pre-started Python (a fork server): each run's supervisor is "
        "forked from it, and so is the run's own process when it runs with the server's "
        "interpreter and start-up settings, which saves starting an interpreter per run. "
        "False starts both as new processes.",
    ).tag(config=True)

    freeze_startup_objects = Bool(
        True,
        help="Once the server has started, move the objects it made while starting (a Jupyter "
        "server holds a few hundred thousand) to the garbage collector's permanent generation "
        "(gc.freeze), so that full collections only look at what came later. A full collection "
        "of them stalls the event loop 100 ms or more, which would make scheduled runs late.",
    ).tag(config=True)

    executor_class = Type(
        default_value=LocalExecutor,
        klass=Executor,
        help="Where runs execute (the local machine by default).",
    ).tag(config=True)

    @validate("max_upload_bytes", "max_archive_files", "max_archive_bytes", "max_log_line_bytes")
    def _positive(self, proposal: Any) -> int:
        value: int = proposal["value"]
        if value < 1:
            raise ValueError(f"{proposal['trait'].name} must be at least 1, not {value}")
        return value

    service: OrchService | None = None

    def initialize_settings(self) -> None:
        """Build the service and open its database (quick; runs are re-attached at start)."""
        # Our modules log to "jupyter_orch.*": send that wherever the server's log goes, as
        # jupyter_server does for tornado's loggers.
        package_log = logging.getLogger("jupyter_orch")
        package_log.parent = self.log
        package_log.setLevel(self.log.level)
        data = DataDir(Path(self.data_dir).expanduser().resolve())
        assert self.serverapp is not None
        config = ServiceConfig(
            data_dir=data.root,
            archive_limits=ArchiveLimits(self.max_archive_files, self.max_archive_bytes),
            kill_grace=self.kill_grace_seconds,
            max_line=self.max_log_line_bytes,
            max_log_bytes=self.max_log_bytes,
            callback_url=url_path_join(self.serverapp.connection_url, "orch"),
            allow_requirement_options=self.allow_requirement_options,
            task_settings=TaskSettings(
                starting_deadline_seconds=self.starting_deadline_seconds,
                crash_loop_seconds=self.crash_loop_seconds,
            ),
            keep_runs=self.keep_runs,
            keep_days=self.keep_days,
            retention_interval=self.retention_interval_seconds,
            stop_runs_on_shutdown=self.stop_runs_on_shutdown,
            run_niceness=self.run_niceness,
            freeze_startup_objects=self.freeze_startup_objects,
            root_dir=Path(self.serverapp.root_dir).expanduser(),
        )
        self.service = OrchService(
            config,
            Store(data.database),
            self._executor(),
            Packager(
                data.envs,
                self.max_parallel_builds,
                installer=self.env_installer,
                max_idle_seconds=self.env_max_idle_days * 86400,
                collect_interval=self.env_collect_interval_seconds,
            ),
        )
        self.settings.update(
            {
                "jupyter_orch.service": self.service,
                "jupyter_orch.max_upload_bytes": self.max_upload_bytes,
                "jupyter_orch.database": data.database,
            }
        )
        try:
            self.service.open()
        except sqlite3.DatabaseError as exc:
            # The API stays registered and answers 503 saying why, instead of every route
            # being Jupyter's HTML 404 of an extension that failed to load.
            trouble = database_trouble(exc, data.database)
            message = trouble.message if trouble else damaged_database(data.database, str(exc))
            self.log.error("jupyter_orch: %s", message)
            self.settings["jupyter_orch.broken"] = message
            self.service = None
            return
        self.log.info("jupyter_orch %s: data in %s", __version__, data.root)

    def _executor(self) -> Executor:
        kind: Any = self.executor_class  # a concrete subclass: traitlets checked it
        if issubclass(kind, LocalExecutor):
            return cast(Executor, kind(fork_server=self.fork_server))
        return cast(Executor, kind())

    def initialize_handlers(self) -> None:
        """Register the API routes."""
        self.handlers.extend(routes())

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        """Re-attach runs left by an earlier server and resume packaging."""
        if self.service is not None:
            await self.service.ensure_started()

    async def stop_extension(self) -> None:
        """Stop watching runs (they keep going) and close the database."""
        if self.service is not None:
            await self.service.stop()
            self.service = None


main = launch_new_instance = OrchApp.launch_instance
