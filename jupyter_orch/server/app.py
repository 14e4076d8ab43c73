"""The Jupyter Server extension: settings as traitlets, a service built at start, stopped at end."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from typing import Any, cast

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.auth.identity import IdentityProvider
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from traitlets import Bool, Callable, Dict, Float, Int, Set, Type, Unicode, default, validate

from .._version import __version__
from . import hubclient
from .archive import ArchiveLimits
from .datadir import DataDir
from .errors import damaged_database, database_trouble
from .executors import Executor
from .executors.local import LocalExecutor
from .executors.registry import LOCAL, Executors
from .fields import MAX_LOG_BYTES, MIN_LOG_BYTES
from .handlers import routes
from .hubclient import find_hub_service
from .packaging import Packager
from .service import OrchService
from .service_config import ServiceConfig
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

    isolated_environments = Bool(
        False,
        help="Build each orchestration's environment fully isolated: it sees only what its "
        "requirements.txt installs (and the SDK). Off: the server's packages come after the "
        "environment's own, so what a kernel can import a task can import, and the "
        "requirements' pins win.",
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
        help="A continuous task's run that ends (failed or succeeded) within this many seconds "
        "counts as a fast end: the next run waits (1 s, doubling to 60 s) and the task shows "
        "crash_loop.",
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

    run_as_owner = Bool(
        False,
        help="Run each task as its owner's Unix account (a server started as root for many "
        "users, as `jupyter orch hub-service` is on hubs whose users have Unix accounts): the "
        "run's process drops to the owner's uid, gid and groups before the code starts, and "
        "its files are the owner's alone. A run whose owner has no account fails, never runs "
        "as root. The data directory is then closed to others, environments read-only to "
        "them.",
    ).tag(config=True)

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

    multi_user = Bool(
        False,
        help="Check ownership per user: each user sees and acts on their own orchestrations, "
        "tasks and runs and on the workspaces they are a member of; admins on everything; "
        "anything else answers 404. Users are the server's identity provider's users (use "
        "one that names them, such as JupyterHub's); each has a default workspace of their "
        "own, which workspace id 1 names for them. Off: the server's one user owns and sees "
        "everything.",
    ).tag(config=True)

    admin_users = Set(
        Unicode(),
        help="User names that are admins of the engine when multi_user is on (see everything), "
        "besides users the identity provider marks as admins (a true `admin` attribute, or "
        "JupyterHub's admin flag or the custom:jupyter_orch:admin scope).",
    ).tag(config=True)

    executor_class = Type(
        default_value=LocalExecutor,
        klass=Executor,
        help="Where runs execute (the local machine by default).",
    ).tag(config=True)

    default_executor = Unicode(
        LOCAL,
        help="The executor of tasks that name none: 'local' (this machine) or 'dask' (when "
        "dask_scheduler_address or dask_cluster is set).",
    ).tag(config=True)

    dask_scheduler_address = Unicode(
        "",
        help="The Dask scheduler runs go to when a task chooses the 'dask' executor, e.g. "
        "'tcp://10.0.0.5:8786'. Empty (and no dask_cluster): no 'dask' executor. Workers need "
        "jupyter_orch installed (pip install 'jupyter_orch[dask]').",
    ).tag(config=True)

    dask_cluster = Callable(
        None,
        allow_none=True,
        help="Instead of dask_scheduler_address: a function returning the cluster to connect "
        "to (anything distributed.Client accepts, e.g. a dask-gateway cluster), called when "
        "the executor first connects.",
    ).tag(config=True)

    dask_run_resources = Dict(
        value_trait=Float(),
        default_value={},
        help="Dask worker resources each run holds while it runs, e.g. {'orch_runs': 1} with "
        "workers started with --resources orch_runs=4 to run at most 4 runs per worker.",
    ).tag(config=True)

    dask_callback_url = Unicode(
        "",
        help="The API's URL as Dask workers reach it (they claim runs and send logs there), "
        "e.g. 'http://jupyter.internal:8888/orch'. Default: the server's own connection URL.",
    ).tag(config=True)

    dask_scheduler_grace_seconds = Float(
        10.0,
        help="How long the Dask scheduler may be unreachable before its runs end as failures.",
    ).tag(config=True)

    @validate("max_upload_bytes", "max_archive_files", "max_archive_bytes", "max_log_line_bytes")
    def _positive(self, proposal: Any) -> int:
        value: int = proposal["value"]
        if value < 1:
            raise ValueError(f"{proposal['trait'].name} must be at least 1, not {value}")
        return value

    hub_service_name = Unicode(
        "",
        help="Set by `jupyter orch hub-service`: the name of the JupyterHub service this "
        "server is (empty: the engine is this server's own).",
    ).tag(config=True)

    hub_service_url = Unicode(
        help="In a user's server under JupyterHub: the base URL of the jupyter_orch hub service "
        "(e.g. http://127.0.0.1:10101/services/orch/) to pass every request on to, as the "
        "user, instead of running an engine here. Default: $JUPYTER_ORCH_HUB_SERVICE_URL, "
        "else asked of the Hub (see hub_service).",
    ).tag(config=True)

    @default("hub_service_url")
    def _default_hub_service_url(self) -> str:
        return os.environ.get("JUPYTER_ORCH_HUB_SERVICE_URL", "")

    hub_service = Unicode(
        "orch",
        help="In a user's server under JupyterHub, with no hub_service_url: the name of the "
        "hub service to ask the Hub's API for (the server's token needs "
        "read:services!service=NAME); when the Hub has it, this server runs no engine of its "
        "own. Empty: never ask (the engine is this server's).",
    ).tag(config=True)

    service: OrchService | None = None
    #: The hub service this server passes requests on to (None: the engine is here).
    hub_client_url: str | None = None

    def engine_info(self) -> dict[str, str]:
        """Which engine this is, as `engine/info` says."""
        if self.hub_service_name:
            name = self.hub_service_name
            return {"kind": "hub-service", "name": name, "label": f"JupyterHub service {name}"}
        return {"kind": "server", "name": "", "label": "this Jupyter server"}

    def initialize_settings(self) -> None:
        """Build the service and open its database (quick; runs are re-attached at start)."""
        # Our modules log to "jupyter_orch.*": send that wherever the server's log goes, as
        # jupyter_server does for tornado's loggers.
        package_log = logging.getLogger("jupyter_orch")
        package_log.parent = self.log
        package_log.setLevel(self.log.level)
        if not self.hub_service_name:
            self.hub_client_url = find_hub_service(
                os.environ, self.hub_service_url, self.hub_service
            )
        if self.hub_client_url is not None:
            self.settings["jupyter_orch.hub_service_url"] = self.hub_client_url
            self.log.info(
                "jupyter_orch %s: the engine is the JupyterHub service at %s",
                __version__,
                self.hub_client_url,
            )
            return
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
            run_as_owner=self.run_as_owner,
            freeze_startup_objects=self.freeze_startup_objects,
            root_dir=Path(self.serverapp.root_dir).expanduser(),
            multi_user=self.multi_user,
            admin_users=frozenset(self.admin_users),
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
                isolated=self.isolated_environments,
            ),
        )
        self.settings.update(
            {
                "jupyter_orch.service": self.service,
                "jupyter_orch.max_upload_bytes": self.max_upload_bytes,
                "jupyter_orch.engine": {**self.engine_info(), "version": __version__},
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
        if self.run_as_owner:
            data.close_to_others()
        self.log.info("jupyter_orch %s: data in %s", __version__, data.root)
        if self.multi_user and type(self.serverapp.identity_provider) is IdentityProvider:
            self.log.warning(
                "jupyter_orch: multi_user is on, but the server's identity provider names no "
                "users (each token login is a new anonymous user): configure one that does"
            )

    def _executor(self) -> Executors:
        kind: Any = self.executor_class  # a concrete subclass: traitlets checked it
        if issubclass(kind, LocalExecutor):
            local = cast(Executor, kind(fork_server=self.fork_server))
        else:
            local = cast(Executor, kind())
        named = {LOCAL: local}
        if self.dask_scheduler_address or self.dask_cluster is not None:
            from .executors.dask import DaskExecutor, DaskSettings

            named["dask"] = DaskExecutor(
                DaskSettings(
                    address=self.dask_scheduler_address,
                    cluster=self.dask_cluster,
                    resources=dict(self.dask_run_resources),
                    callback_url=self.dask_callback_url,
                    scheduler_grace=self.dask_scheduler_grace_seconds,
                )
            )
        return Executors(named, default=self.default_executor)

    def initialize_handlers(self) -> None:
        """Register the API routes (or, with a hub service, the way to it)."""
        if self.hub_client_url is not None:
            self.handlers.extend(hubclient.routes())
            return
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
