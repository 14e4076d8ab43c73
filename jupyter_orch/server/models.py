"""Records of the orchestration API: workspaces, orchestrations, tasks and task runs."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from .cron import describe


def now() -> datetime:
    """The current time, timezone-aware UTC (the one clock tests patch)."""
    return datetime.now(timezone.utc)


def new_id() -> str:
    """A fresh UUID string for an orchestration, task or run."""
    return str(uuid.uuid4())


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with the timezone, as the wire contract writes times."""
    return value.isoformat() if value is not None else None


class OrchestrationStatus(str, Enum):
    """Where an orchestration's packaging stands."""

    PENDING_PACKAGING = "pending_packaging"
    PACKAGING = "packaging"
    READY = "ready"
    ERROR = "error"


class TaskStatus(str, Enum):
    """A task's status word, as the contract spells it."""

    PENDING = "pending"
    STARTED = "started"
    SUCCESS = "success"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    PENDING_KILL = "pending_kill"
    KILLED = "killed"
    PENDING_PAUSE = "pending_pause"
    PAUSED = "paused"
    PENDING_RESUME = "pending_resume"
    CRASH_LOOP = "crash_loop"


class RunStatus(str, Enum):
    """A task run's status word."""

    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    TIMED_OUT = "timed_out"
    KILLED = "killed"
    UNKNOWN = "unknown"


class ConcurrencyPolicy(str, Enum):
    """What a scheduled run does when an earlier run of its task is still running."""

    ALLOW = "allow"  # start anyway (Wallaroo's rule)
    FORBID = "forbid"  # skip this instant, and record the skip
    REPLACE = "replace"  # end the running one, then start


class RunType(str, Enum):
    """How a task makes runs; the values are the contract's `run_type` words."""

    ONCE = "Oneshot"
    SCHEDULED = "CronJob"
    CONTINUOUS = "NetworkService"

    @property
    def flavor(self) -> str:
        """The contract's `flavor` word for this kind of task."""
        return {
            RunType.ONCE: "exec_orch_oneshot",
            RunType.SCHEDULED: "exec_orch_cron",
            RunType.CONTINUOUS: "exec_orch_service",
        }[self]


class Trigger(str, Enum):
    """What started a run; the values are the contract's `trigger` words."""

    ONCE = "once"  # a run-once task's run (or a run that could not start at all)
    SCHEDULE = "schedule"  # a cron instant, on time
    CATCH_UP = "catch_up"  # the latest instant missed while no scheduler ran
    MANUAL = "manual"  # `run_now`
    CONTINUOUS = "continuous"  # a continuous task's next run


class SkipReason(str, Enum):
    """Why a scheduled instant did not run."""

    MISSED = "missed"  # no scheduler ran in time (downtime, a suspended machine)
    STILL_RUNNING = "skipped: a run was still running"  # `concurrency_policy` forbid


#: Task statuses after which nothing more happens.
FINAL_TASK_STATUSES = frozenset(
    {TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.TIMED_OUT, TaskStatus.KILLED}
)

#: How a finished run-once run maps onto its task's final status.
TASK_STATUS_FOR_RUN = {
    RunStatus.SUCCESS: TaskStatus.SUCCESS,
    RunStatus.FAILURE: TaskStatus.FAILED,
    RunStatus.TIMED_OUT: TaskStatus.TIMED_OUT,
    RunStatus.KILLED: TaskStatus.KILLED,
    RunStatus.UNKNOWN: TaskStatus.FAILED,
}


class UserType(str, Enum):
    """A workspace member's part (Wallaroo's words): owners also manage the members."""

    OWNER = "Owner"
    COLLABORATOR = "Collaborator"


@dataclass
class Workspace:
    """A named group of orchestrations and tasks, and of the users who share them."""

    id: int
    name: str
    created_at: datetime
    created_by: str = ""

    def to_json(self, default: bool = False) -> dict[str, Any]:
        """The wire shape (Wallaroo's: there are no models or pipelines here, and no
        workspace is archived); `default`: whether it is the caller's default workspace."""
        return {
            "id": self.id,
            "name": self.name,
            "created_at": iso(self.created_at),
            "created_by": self.created_by,
            "archived": False,
            "models": [],
            "pipelines": [],
            "default": default,
        }


@dataclass
class WorkspaceUser:
    """A user's membership of a workspace."""

    workspace_id: int
    user_id: str
    user_type: UserType

    def to_json(self) -> dict[str, Any]:
        """The wire shape of `workspaces/list_users`."""
        return {"user_id": self.user_id, "user_type": self.user_type.value}


@dataclass
class Orchestration:
    """An uploaded archive of code, and the environment it runs in."""

    id: str
    name: str
    file_name: str
    file_size: int
    sha: str
    status: OrchestrationStatus
    owner_id: str
    workspace_id: int
    entrypoint: str
    requirements: str | None
    created_at: datetime
    updated_at: datetime
    image_path: str = ""
    error: str | None = None
    env_key: str | None = None
    build_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The wire shape; every field the contract calls required is present."""
        return {
            "id": self.id,
            "name": self.name,
            "file_name": self.file_name,
            "file_size": self.file_size,
            "sha": self.sha,
            "status": self.status.value,
            "owner_id": self.owner_id,
            "workspace_id": self.workspace_id,
            "image_path": self.image_path,
            "task_id": None,
            "entrypoint": self.entrypoint,
            "requirements": self.requirements is not None,
            "error": self.error,
            "build_seconds": self.build_seconds,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass
class TaskRun:
    """One execution of a task: its status, exit code and times."""

    id: str
    task_id: str
    status: RunStatus
    created_at: datetime
    updated_at: datetime
    trigger: Trigger = Trigger.ONCE
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exit_code: int | None = None
    reason: str | None = None
    scheduled_for: datetime | None = None
    executor: str | None = None  # the executor's name (None: runs recorded before names)
    worker: str | None = None  # where it started, when its executor says (a Dask worker)
    refused_claims: int = 0  # later attempts to start it that were refused
    input_data: dict[str, Any] | None = None  # the arguments it ran with (null: its task's)

    @property
    def active(self) -> bool:
        """Whether the run has not ended yet."""
        return self.status is RunStatus.RUNNING

    def summary(self) -> dict[str, Any]:
        """The short form carried in a task's `last_runs`."""
        return {
            "run_id": self.id,
            "status": self.status.value,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }

    def to_json(self) -> dict[str, Any]:
        """The wire shape of a task run."""
        return {
            "task": self.task_id,
            "run_id": self.id,
            "pod_id": self.id,
            "status": self.status.value,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "exit_code": self.exit_code,
            "reason": self.reason,
            "trigger": self.trigger.value,
            "scheduled_for": iso(self.scheduled_for),
            "executor": self.executor or "local",
            "worker": self.worker,
            "refused_claims": self.refused_claims,
        }


# Run statuses that ended badly: the ones people are told about.
FAILED_STATUSES = (RunStatus.FAILURE, RunStatus.TIMED_OUT)


@dataclass
class Activity:
    """What a status bar needs of every task: how many have a run going, and the runs that
    failed lately (each with its task's name), as of a moment of the server's clock."""

    running: int
    failed: list[tuple[TaskRun, str | None]]
    as_of: datetime

    def to_json(self) -> dict[str, Any]:
        """The wire shape of `task/activity`."""
        return {
            "running": self.running,
            "failed": [{**run.to_json(), "task_name": name} for run, name in self.failed],
            "as_of": iso(self.as_of),
        }


@dataclass
class Skip:
    """A scheduled instant that did not run: missed while down, or skipped by policy."""

    task_id: str
    scheduled_for: datetime
    reason: SkipReason
    recorded_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The wire shape."""
        return {
            "task": self.task_id,
            "scheduled_for": iso(self.scheduled_for),
            "reason": self.reason.value,
            "recorded_at": iso(self.recorded_at),
        }


@dataclass(kw_only=True)
class TaskOptions:
    """The settings a client gives a task when it creates it, which the task keeps."""

    timeout: int | None = None
    schedule: str | None = None
    timezone: str | None = None
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.ALLOW
    starting_deadline_seconds: int | None = None
    keep_runs: int | None = None
    keep_days: float | None = None
    executor: str | None = None  # where its runs execute (None: the server's default)
    max_log_bytes: int | None = None  # the cap on each run's log (None: the server's)


@dataclass
class Task(TaskOptions):
    """An order to run an orchestration: once, on a schedule, or continuously."""

    id: str
    name: str | None
    workspace_id: int
    orch_id: str
    orch_sha: str
    owner_id: str
    status: TaskStatus
    run_type: RunType
    input_data: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    killed: bool = False
    last_fire_at: datetime | None = None  # scheduled instants up to here are accounted for
    last_runs: list[TaskRun] = field(default_factory=list)
    next_run_at: datetime | None = None  # derived by the scheduler, never stored
    next_fires: list[datetime] = field(default_factory=list)  # derived, in the task's zone
    skipped: list[Skip] = field(default_factory=list)

    @property
    def live(self) -> bool:
        """Whether the task may still make runs."""
        return not self.killed and self.status not in FINAL_TASK_STATUSES

    def env_vars(self) -> dict[str, str]:
        """The variables every run of this task sees (the contract's `extra_env_vars`)."""
        return {
            "ORCH_OWNER_ID": self.owner_id,
            "ORCH_SHA": self.orch_sha,
            "ORCH_ID": self.orch_id,
            "TASK_ID": self.id,
        }

    def to_json(self) -> dict[str, Any]:
        """The wire shape of a task."""
        return {
            "id": self.id,
            "name": self.name,
            "workspace_id": self.workspace_id,
            "orch_id": self.orch_id,
            "orch_sha": self.orch_sha,
            "owner_id": self.owner_id,
            "status": self.status.value,
            "killed": self.killed,
            "input_data": self.input_data,
            "run_type": self.run_type.value,
            "flavor": self.run_type.flavor,
            "schedule": self.schedule,
            "timezone": self.timezone,
            "next_run_at": iso(self.next_run_at),
            "next_fires": [iso(fire) for fire in self.next_fires],
            "schedule_description": describe(self.schedule) if self.schedule else None,
            "concurrency_policy": self.concurrency_policy.value,
            "starting_deadline_seconds": self.starting_deadline_seconds,
            "keep_runs": self.keep_runs,
            "keep_days": self.keep_days,
            "max_log_bytes": self.max_log_bytes,
            "last_skipped": [skip.to_json() for skip in self.skipped],
            "timeout": self.timeout,
            "reap_threshold_secs": self.timeout,
            "executor": self.executor,
            "extra_env_vars": self.env_vars(),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "last_runs": [run.summary() for run in self.last_runs],
        }


#: A listing's ownership condition (`access.Scope.visible`): a caller's name and the workspaces
#: they are a member of; rows they own or of those workspaces are listed.
Visible = tuple[str, tuple[int, ...]]


@dataclass
class TaskQuery:
    """Filters and paging of a task listing (every filter given must hold)."""

    workspace_ids: Sequence[int] = ()
    orch_ids: Sequence[str] = ()
    orch_sha: str | None = None
    killed: bool | None = None
    created_range: tuple[datetime, datetime] | None = None
    run_limit: int = 5
    limit: int | None = None
    # Keyset paging, newest first: only tasks older than this (created_at, id), the key of
    # the last task of the previous page. A page costs the same however deep it is.
    before: tuple[datetime, str] | None = None
    # Only tasks a caller sees (`access.Scope.visible`): their own, or of these workspaces.
    visible: Visible | None = None
