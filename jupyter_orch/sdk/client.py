"""The Python SDK: `Client()` finds its server and hands out orchestrations, tasks and runs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from .. import runtime
from ..bundle import read_upload
from . import refs
from .base import given, moment, paged, task_query
from .connections import Connection, ConnectionList, connections_of
from .discovery import ServerInfo, api_url_of, find_server
from .errors import NotFoundError
from .logs import LogFollower, LogLine, LogLines
from .resources import (
    PAGE_SIZE,
    Orchestration,
    OrchestrationList,
    Task,
    TaskList,
    TaskRun,
    TaskRunList,
)
from .transport import READ_TIMEOUT, Transport
from .workspace import Workspace, WorkspaceList

DEFAULT_WORKSPACE = 1
#: The `auth_type` values of Wallaroo's SDK (in any case). Each is accepted and changes
#: nothing: the Jupyter server's token authenticates every request.
AUTH_TYPES = ("none", "sso", "user_password", "test_auth", "token", "orch")


class Auth:
    """Wallaroo's `wl.auth`: the header that authenticates a REST call made by hand."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_header(self) -> dict[str, str]:
        """`{"Authorization": "token …"}`, for `requests.post(url, headers=..., json=...)`;
        `{}` for a server that asks for no token."""
        return {"Authorization": f"token {self._token}"} if self._token else {}

    def __repr__(self) -> str:
        return "<jupyter_orch Auth: the Jupyter server's token>"


def check_auth_type(auth_type: object) -> None:
    """Accept Wallaroo's `auth_type` values (and None); a ValueError names them otherwise."""
    if auth_type is None or (isinstance(auth_type, str) and auth_type.lower() in AUTH_TYPES):
        return
    accepted = ", ".join(repr(word) for word in AUTH_TYPES)
    raise ValueError(
        f"auth_type: one of {accepted} or None, as in Wallaroo's SDK; not {auth_type!r} "
        "(it changes nothing here: the Jupyter server's token authenticates)"
    )


def read_timeout(request_timeout: object, timeout: object) -> float:
    """The seconds an HTTP request may wait, from Wallaroo's `request_timeout` or ours."""
    if isinstance(request_timeout, str):
        raise TypeError(
            "Client's second argument is request_timeout (seconds), as in Wallaroo's SDK: "
            "give the server's URL and token by name, Client(url=..., token=...)"
        )
    if request_timeout is not None and timeout is not None and request_timeout != timeout:
        raise ValueError("give request_timeout or timeout, not two different values")
    seconds = request_timeout if request_timeout is not None else timeout
    if seconds is None:
        return READ_TIMEOUT
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
        raise ValueError(f"request_timeout: a number of seconds above 0, not {seconds!r}")
    return float(seconds)


class Client:
    """A connection to the orchestration API of a Jupyter server.

    With no arguments it finds the server: inside a run the run's own URL and token, then
    `JUPYTER_ORCH_URL`/`JUPYTER_ORCH_TOKEN`, the Jupyter server that started this kernel,
    JupyterHub's variables, and the newest running server of this user.

    Wallaroo's arguments come first: `api_endpoint` is the server's URL (or the API's, ending
    in `/orch`), `request_timeout` the seconds an HTTP request may wait, and `auth_type`
    (`auth_endpoint`, `interactive`) are accepted and ignored, the Jupyter token being the
    authentication. Ours are given by name: `url` (the same as `api_endpoint`), `token`,
    `workspace` and `timeout` (the same as `request_timeout`).
    """

    def __init__(
        self,
        api_endpoint: str | None = None,
        request_timeout: float | None = None,
        auth_type: str | None = None,
        *,
        url: str | None = None,
        token: str | None = None,
        workspace: int | str | None = None,
        timeout: float | None = None,
        auth_endpoint: str | None = None,
        interactive: bool | None = None,
    ) -> None:
        check_auth_type(auth_type)
        seconds = read_timeout(request_timeout, timeout)
        if api_endpoint and url and api_url_of(api_endpoint) != api_url_of(url):
            raise ValueError(f"api_endpoint {api_endpoint} and url {url} name different servers")
        self.server: ServerInfo = find_server(url or api_endpoint, token)
        #: The API's base URL (`…/orch`): `f"{wl.api_endpoint}/v1/api/task/run_once"`.
        self.api_endpoint = self.server.api_url
        #: The seconds an HTTP request may wait for an answer.
        self.request_timeout = seconds
        #: `wl.auth.auth_header()` gives the header of a REST call made by hand.
        self.auth = Auth(self.server.token)
        self._transport = Transport(self.server.api_url, self.server.token, seconds)
        self._workspace: int | str = DEFAULT_WORKSPACE if workspace is None else workspace

    @property
    def api_url(self) -> str:
        """The API's base URL (`…/orch`), as `api_endpoint`."""
        return self.server.api_url

    def __repr__(self) -> str:
        return f"<jupyter_orch.Client {self.api_url} (found through {self.server.source})>"

    def auth_header(self) -> dict[str, str]:
        """The header that authenticates a request made by hand, as `auth.auth_header()`."""
        return self.auth.auth_header()

    @staticmethod
    def in_task() -> bool:
        """True when this code runs as a task run of an orchestration."""
        return runtime.in_task()

    @staticmethod
    def task_args() -> dict[str, Any]:
        """The task's `json` arguments inside a run; `{}` anywhere else."""
        return runtime.task_args()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._transport.post(path, body)

    # -- workspaces ----------------------------------------------------------------------------

    def list_workspaces(self) -> WorkspaceList:
        """The workspaces this user sees (every one on a single-user server)."""
        answer = self._post("workspaces/list")
        return WorkspaceList(Workspace(self, w) for w in answer["workspaces"])

    def create_workspace(self, name: str) -> Workspace:
        """A new workspace (ConflictError when the name is taken)."""
        answer = self._post("workspaces/create", {"workspace_name": name})
        return Workspace(self, answer)

    def get_workspace(self, name: str, create_if_not_exist: bool = False) -> Workspace | None:
        """The workspace of this name; None (or a new one) when there is none."""
        for workspace in self.list_workspaces():
            if workspace.name() == name:
                return workspace
        return self.create_workspace(name) if create_if_not_exist else None

    def get_current_workspace(self) -> Workspace:
        """The workspace uploads and listings use by default: at first the caller's default
        workspace (`default`, id 1, on a single-user server; the user's own on a multi-user
        one, which id 1 names there)."""
        wanted = self._workspace
        workspaces = list(self.list_workspaces())
        if wanted == DEFAULT_WORKSPACE:  # an admin sees `default` (id 1) and their own
            workspaces.sort(key=lambda workspace: not workspace.is_default())
        for workspace in workspaces:
            if wanted in (workspace.id(), workspace.name()) or (
                wanted == DEFAULT_WORKSPACE and workspace.is_default()
            ):
                return workspace
        raise NotFoundError(404, f"workspace {wanted} not found", "Not Found")

    def set_current_workspace(self, workspace: Workspace | int | str) -> Workspace:
        """Make a workspace (object, id or name) the default one."""
        self._workspace = workspace.id() if isinstance(workspace, Workspace) else workspace
        current = self.get_current_workspace()
        self._workspace = current.id()
        return current

    def _workspace_id(self, workspace_id: int | None = None, name: str | None = None) -> int:
        if workspace_id is not None:
            return workspace_id
        if name is not None:
            found = self.get_workspace(name)
            if found is None:
                raise NotFoundError(404, f"workspace {name!r} not found", "Not Found")
            return found.id()
        if isinstance(self._workspace, int):
            return self._workspace
        return self.set_current_workspace(self._workspace).id()

    # -- connections ---------------------------------------------------------------------------

    def create_connection(
        self, name: str, connection_type: str, details: dict[str, Any] | None = None
    ) -> Connection:
        """A new connection (ConflictError when the name is taken)."""
        body = {"name": name, "type": connection_type, "details": details or {}}
        conn_id = self._post("connections/create", body)["id"]
        return Connection(self, self._post("connections/get_by_id", {"id": conn_id}))

    def get_connection(self, name: str) -> Connection:
        """The connection of this name (NotFoundError when none; inside a run, only those of
        the run's workspace exist)."""
        return Connection(self, self._post("connections/get", {"name": name}))

    def list_connections(self) -> ConnectionList:
        """Every connection (inside a run: those of the run's workspace)."""
        return connections_of(self, None)

    # -- orchestrations ------------------------------------------------------------------------

    def upload_orchestration(
        self,
        bytes_buffer: bytes | IO[bytes] | None = None,
        path: str | Path | None = None,
        name: str | None = None,
        file_name: str | None = None,
    ) -> Orchestration:
        """Upload code as an orchestration: zip bytes, or by `path` a zip, a folder, a script
        (its `main.py`) or a notebook (its `main.ipynb`).

        The arguments come in the order of Wallaroo's SDK; a path given first (a `str` or a
        `Path` where the bytes go) is taken as the path.
        """
        first: object = bytes_buffer  # typed for bytes; a path given positionally is taken too
        if isinstance(first, (str, Path)) and path is None:
            bytes_buffer, path = None, first
        if path is not None and bytes_buffer is None:
            data, default_file = read_upload(Path(path).expanduser())
        elif bytes_buffer is not None and path is None:
            data = bytes_buffer if isinstance(bytes_buffer, bytes) else bytes_buffer.read()
            default_file = "orchestration.zip"
        else:
            raise ValueError("give exactly one of path and bytes_buffer")
        file_name = file_name or default_file
        metadata: dict[str, Any] = {"workspace_id": self._workspace_id()}
        metadata["name"] = name or Path(file_name).stem
        orch_id = self._transport.upload(data, file_name, metadata)["id"]
        return self.get_orchestration_by_id(orch_id)

    def list_orchestrations(
        self, workspace_id: int | None = None, workspace_name: str | None = None
    ) -> OrchestrationList:
        """The orchestrations of a workspace (the current one unless given)."""
        body = {"workspace_id": self._workspace_id(workspace_id, workspace_name)}
        return OrchestrationList(
            Orchestration(self, o) for o in self._post("orchestration/list", body)
        )

    def get_orchestration_by_id(self, id: str) -> Orchestration:
        """One orchestration."""
        return Orchestration(self, self._post("orchestration/get_by_id", {"id": id}))

    # -- tasks and runs ------------------------------------------------------------------------

    def list_tasks(
        self,
        killed: bool = False,
        workspace_id: int | None = None,
        workspace_name: str | None = None,
        limit: int | None = None,
        after: str | Task | None = None,
        run_limit: int = 1,
    ) -> TaskList:
        """The tasks of a workspace (the current one unless given), newest first; killed ones
        too if `killed`.

        Every one by default; `limit` gives the newest N, and `after` (the last task of the
        previous page, or its id) the page after it: `list_tasks(limit=50, after=page[-1])`.
        Each task comes with its newest `run_limit` runs.
        """
        workspace = {"workspace_id": self._workspace_id(workspace_id, workspace_name)}
        body = task_query(workspace, killed, run_limit, limit, after)
        return TaskList(Task(self, t) for t in self._post("task/list", body))

    def iter_tasks(
        self,
        killed: bool = False,
        workspace_id: int | None = None,
        workspace_name: str | None = None,
        page_size: int = PAGE_SIZE,
        run_limit: int = 1,
    ) -> Iterator[Task]:
        """Each task of a workspace, newest first, fetched `page_size` at a time: a loop that
        stops early costs only the pages it read."""
        workspace = {"workspace_id": self._workspace_id(workspace_id, workspace_name)}
        body = task_query(workspace, killed, run_limit)
        for data in paged(self, "task/list", body, page_size):
            yield Task(self, data)

    def get_task_by_id(self, task_id: str) -> Task:
        """One task."""
        return Task(self, self._post("task/get_by_id", {"id": task_id}))

    def delete_tasks(
        self, tasks: Iterable[Task | str], confirm_delete: bool = False
    ) -> dict[str, Any]:
        """Delete tasks (objects or ids) with their runs, their logs and outputs; runs going
        are killed first. Without `confirm_delete`, only what would go. The server's answer:
        `{"tasks", "task_runs", "running" (tasks with a run going), "deleted"}`."""
        ids = [task.id() if isinstance(task, Task) else task for task in tasks]
        return dict(self._post("task/delete", {"tasks": ids, "confirm_delete": confirm_delete}))

    def find_task(self, ref: str) -> Task:
        """A task by its id, the short id the UI shows (when unique) or its name (when one
        task that is not killed has it); an error listing the candidates when several fit."""
        return self.get_task_by_id(refs.task_id(self, ref, by_name=True))

    def find_run_id(self, ref: str) -> str:
        """A run's id from its id or the short id the UI shows (when unique)."""
        return refs.run_id(self, ref)

    def preview_schedule(
        self, schedule: str, timezone: str | None = None, count: int = 3
    ) -> dict[str, Any]:
        """The next `count` fire times of a cron schedule in a time zone (`"fires"`, as
        datetimes) and the schedule in words (`"description"`), without making a task."""
        body = given({"schedule": schedule, "count": count}, timezone=timezone)
        answer = self._post("schedule/preview", body)
        return {"fires": [moment(t) for t in answer["fires"]], "description": answer["description"]}

    def get_task_run(self, task_id: str, run_id: str) -> TaskRun:
        """One run of a task."""
        return TaskRun(
            self, self._post("task/get_run_details", {"task": task_id, "pod_id": run_id})
        )

    def failed_runs(self, since: datetime | str | None = None, limit: int = 20) -> TaskRunList:
        """The newest runs of any task (of every workspace) that failed or timed out, newest
        first: at most `limit` (100 at most), only those that ended after `since` if given (a
        timezone-aware `datetime` or an ISO 8601 text with its timezone)."""
        body: dict[str, Any] = {"limit": limit}
        if since is not None:
            body["since"] = since.isoformat() if isinstance(since, datetime) else since
        answer = self._post("task/activity", body)
        return TaskRunList(TaskRun(self, run) for run in answer["failed"])

    def running_tasks(self) -> int:
        """How many tasks (of every workspace) have a run going."""
        return int(self._post("task/activity", {"limit": 1})["running"])

    def run_logs(self, run_id: str, limit: int | None = None) -> LogLines:
        """A run's log lines; only the last `limit` when given."""
        body: dict[str, Any] = {"id": run_id}
        if limit is not None:
            body["lines"] = limit
        return LogLines(
            LogLine.parse(raw) for raw in self._post("task/get_logs_for_run", body)["logs"]
        )

    def run_output(self, run_id: str) -> Any:
        """A notebook run's executed notebook (the copy so far while it runs), as an
        `nbformat.NotebookNode` (a dict when nbformat is not installed); NotFoundError with the
        server's reason when the run has none (a script's run, or one not written yet)."""
        return as_notebook(self._transport.get("task/get_run_output", {"id": run_id}))

    def follow_logs(self, run_id: str, start: int = 0) -> LogFollower:
        """A run's log lines as they are written, from line `start`, until the run has ended."""
        return LogFollower(self._transport, run_id, start)


def as_notebook(document: dict[str, Any]) -> Any:
    """A notebook document as nbformat's `NotebookNode` (attribute access, `nbformat.write`),
    or the plain dict where nbformat is not installed (imported only now: it is slow to load)."""
    try:
        import nbformat
    except ImportError:
        return document
    return nbformat.from_dict(document)  # type: ignore[no-untyped-call]
