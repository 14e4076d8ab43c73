"""What the service is set up with, and what a client asks of it to make a task."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .archive import ArchiveLimits
from .models import TaskOptions
from .tasks import TaskSettings


def default_owner() -> str:
    """The server's user: the JupyterHub user name, or the account the server runs as."""
    return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()


@dataclass
class ServiceConfig:
    """The settings the service needs (the app fills them from its traitlets)."""

    data_dir: Path
    archive_limits: ArchiveLimits = field(default_factory=ArchiveLimits)
    kill_grace: float = 10.0
    max_line: int = 16384
    max_log_bytes: int = 64 << 20
    callback_url: str = ""
    allow_requirement_options: bool = False
    owner: str = field(default_factory=default_owner)
    multi_user: bool = False  # ownership checked per user (OrchApp.multi_user)
    admin_users: frozenset[str] = frozenset()  # admins by name, in multi-user mode
    task_settings: TaskSettings = field(default_factory=TaskSettings)
    keep_runs: int = 100
    keep_days: float = 30.0
    retention_interval: float = 3600.0
    sync_interval: float = 2.0
    stop_runs_on_shutdown: bool = False
    run_niceness: int = 0
    run_as_owner: bool = False  # runs execute as their owner's Unix account (OrchApp's docs)
    freeze_startup_objects: bool = False  # gc.freeze() a second after start (OrchApp's docs)
    root_dir: Path | None = None  # the Jupyter root, for orchestrations made from its files


@dataclass
class TaskRequest(TaskOptions):
    """What a client asks for when it creates a task (fields already type-checked), with the
    settings the task will keep (`TaskOptions`)."""

    orch_id: str
    workspace_id: int
    args: dict[str, Any]
    name: str | None = None
