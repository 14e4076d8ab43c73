"""HTTP handlers of the orchestration API: request shapes in, answer shapes out, errors -> 4xx.

Every route lives under `{base_url}orch/v1/api/`. Each POST endpoint is a small function that
reads its fields and calls the service; one handler class serves them all.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jupyter_core.utils import ensure_async
from jupyter_server.auth.identity import User
from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.iostream import StreamClosedError

from .access import Scope
from .connection_endpoints import CONNECTION_ENDPOINTS
from .edit_handlers import schedule_preview, task_history, task_rerun, task_update
from .errors import (
    Forbidden,
    InvalidRequest,
    Missing,
    OrchError,
    ServiceUnavailable,
    TooLarge,
    core_error,
)
from .fields import (
    Fields,
    as_uuid,
    parse_json_object,
    query_integer,
)
from .identity import caller_of
from .intake import Upload
from .models import RunStatus, Task, TaskQuery
from .orch_endpoints import (
    orch_build_log,
    orch_create_from_path,
    orch_delete,
    orch_get,
    orch_list,
    orch_list_all,
)
from .service import OrchService
from .task_endpoints import TASK_ENDPOINTS
from .upload import MultipartReceiver
from .workspace_endpoints import WORKSPACE_ENDPOINTS

PREFIX = "/orch/v1/api"
# `task/activity`: failed runs in one answer, by default and at most
ACTIVITY_DEFAULT, ACTIVITY_LIMIT = 20, 100

Answer = tuple[int, Any]
#: Every answer is strict JSON: a NaN or an infinity is a bug to raise, never text to send.
dumps = functools.partial(json.dumps, allow_nan=False)


@dataclass
class JsonArray:
    """An answer that is a JSON array, given as pieces (lists of items) to send one by one;
    with `key`, the array is the one member of a JSON object (`{"key": [...]}`)."""

    pieces: AsyncIterator[list[Any]]
    key: str | None = None


Endpoint = Callable[["OrchHandler", Fields], Awaitable[Answer]]


async def authorize(handler: APIHandler) -> None:
    """Refuse a request the server's authentication (already done) did not let in, or that
    its authorizer does not allow on this API (GET and HEAD read, the rest write)."""
    if not handler.current_user:
        raise Forbidden("authentication required: a Jupyter token or session")
    action = "read" if handler.request.method in ("GET", "HEAD") else "write"
    allowed = handler.authorizer.is_authorized(handler, handler.current_user, action, "orch")
    if not await ensure_async(allowed):
        raise Forbidden(f"not authorized to {action} orchestrations")


class OrchHandler(APIHandler):
    """Base of our handlers: authentication (server identity or a run's token), the caller's
    scope, and errors."""

    auth_resource = "orch"
    run_id: str | None = None
    scope: Scope

    @property
    def service(self) -> OrchService:
        """The service the extension built at start."""
        service: OrchService = self.settings["jupyter_orch.service"]
        return service

    @property
    def author(self) -> str:
        """Who makes a change, as a task's history says: the caller, or a run."""
        return f"run:{self.run_id}" if self.run_id is not None else self.scope.user

    def _bearer(self) -> str | None:
        header = self.request.headers.get("Authorization", "")
        kind, _, token = header.partition(" ")
        if kind.lower() in ("token", "bearer") and token.strip():
            return token.strip()
        return None

    async def prepare(self) -> None:  # type: ignore[override]
        """Accept a run's own token for this API (the run acts as its owner); otherwise the
        server's authentication, whose user is the caller (`identity.py`). Without a database
        (it could not be opened), 503 saying why, once authenticated."""
        broken = self.settings.get("jupyter_orch.broken")
        if broken is not None:
            await super().prepare()
            if not self.current_user:
                raise Forbidden("authentication required: a Jupyter token or session")
            raise ServiceUnavailable(broken)
        token = self._bearer()
        run_id = self.service.run_for_token(token) if token else None
        caller = await self.service.caller_for_run(run_id) if run_id is not None else None
        if run_id is not None and caller is not None:
            if not self.check_host():
                raise Forbidden(f"host {self.request.host!r} is not allowed")
            self.run_id = run_id
            self.current_user = self._jupyter_current_user = User(username=f"run:{run_id}")
        else:
            await super().prepare()
            await authorize(self)
            config = self.service.config
            caller = caller_of(
                self.current_user,
                multi_user=config.multi_user,
                owner=config.owner,
                admin_users=config.admin_users,
            )
        await self.service.ensure_started()
        self.scope = await self.service.scope(caller)

    def check_xsrf_cookie(self) -> None:
        """A run's token is a token: no XSRF cookie needed."""
        if self.run_id is not None:
            return None
        return super().check_xsrf_cookie()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Core errors become `{"message", "reason"}` with their own status code; a method
        this handler lacks is a 405 naming the methods it has, also in `Allow`."""
        exc = self._core_error(kwargs.get("exc_info", (None, None, None))[1])
        if isinstance(exc, OrchError):
            self.set_status(exc.status, exc.reason)
            if isinstance(exc, ServiceUnavailable) and exc.retry_after is not None:
                self.set_header("Retry-After", str(exc.retry_after))
            self.finish(dumps({"message": exc.message, "reason": exc.reason}))
            return
        if status_code == 405:
            allowed = ", ".join(self.allowed_methods())
            self.set_header("Allow", allowed)
            message = f"{self.request.method} is not allowed here (allowed: {allowed})"
            self.finish(dumps({"message": message, "reason": "Method Not Allowed"}))
            return
        super().write_error(status_code, **kwargs)

    @classmethod
    def allowed_methods(cls) -> list[str]:
        """The HTTP methods this handler answers (Tornado's placeholder marks the others)."""
        return sorted(
            method
            for method in cls.SUPPORTED_METHODS
            if getattr(cls, method.lower(), None) is not web.RequestHandler._unimplemented_method
        )

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """A core error is an answer, not a crash: one line in the log, no traceback; so is
        trouble of the machine's the answer explains (a full disk)."""
        if isinstance(value, OrchError):
            self.log.info("%s %s: %s", self.request.method, self.request.path, value.message)
            return
        core = self._core_error(value)
        if core is not None:
            self.log.warning("%s %s: %s", self.request.method, self.request.path, core.message)
            return
        super().log_exception(typ, value, tb)

    def _core_error(self, exc: BaseException | None) -> OrchError | None:
        what = self.request.path.rpartition(PREFIX + "/")[2]
        return core_error(exc, what, self.settings["jupyter_orch.database"])

    async def reply(self, status: int, data: Any) -> None:
        """Send a JSON answer; a `JsonArray` is sent a piece at a time, the event loop free
        in between."""
        self.set_status(status)
        if not isinstance(data, JsonArray):
            self.finish(dumps(data))
            return
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        start = "[" if data.key is None else "{" + dumps(data.key) + ": ["
        end = "]" if data.key is None else "]}"
        opening = start
        async for items in data.pieces:
            if items:
                self.write(opening + ", ".join(dumps(item) for item in items))
                opening = ", "
                await self.flush()  # the answer's memory stays one piece, however long
        self.finish(start + end if opening == start else end)


class ActionHandler(OrchHandler):
    """A POST endpoint taking a JSON body, served by one endpoint function."""

    def initialize(self, endpoint: Endpoint) -> None:
        """Bind the endpoint function of this route."""
        self.endpoint = endpoint

    async def post(self) -> None:
        """Parse the body, call the endpoint, answer."""
        fields = Fields(parse_json_object(self.request.body))
        status, data = await self.endpoint(self, fields)
        await self.reply(status, data)


@web.stream_request_body
class UploadHandler(OrchHandler):
    """`upload`: a multipart body streamed to disk, checked, then handed to the service."""

    receiver: MultipartReceiver | None = None

    @property
    def max_upload(self) -> int:
        """The upload size limit in bytes."""
        limit: int = self.settings["jupyter_orch.max_upload_bytes"]
        return limit

    async def prepare(self) -> None:  # type: ignore[override]
        """Authenticate, then refuse a declared body over the limit before reading it."""
        await super().prepare()
        declared = self.request.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_upload:
            raise TooLarge(f"upload of {declared} bytes is over the limit of {self.max_upload}")
        # Our own count answers 413 for a chunked body somewhat over the limit; far past it,
        # Tornado's limit drops the connection rather than read on.
        slack = min(self.max_upload, 64 << 20)
        self.request.connection.set_max_body_size(self.max_upload + slack)  # type: ignore[union-attr]
        self.receiver = MultipartReceiver(
            self.request.headers.get("Content-Type", ""),
            self.service.data.tmp,
            self.max_upload,
        )

    def data_received(self, chunk: bytes) -> None:
        """Feed each piece of the body to the multipart parser as it arrives."""
        if self.receiver is not None:
            self.receiver.feed(chunk)

    async def post(self) -> None:
        """Check the parts and create the orchestration (202: packaging goes on)."""
        receiver = self.receiver
        assert receiver is not None
        receiver.finish()
        assert receiver.file_path is not None
        if receiver.file_size == 0:
            raise InvalidRequest("file", "the uploaded file is empty, not a zip archive")
        meta = Fields(parse_json_object(bytes(receiver.metadata or b"{}"), "metadata"))
        upload = Upload(
            receiver.file_path,
            receiver.file_name or "orchestration.zip",
            receiver.sha.hexdigest(),
            receiver.file_size,
            meta.req_integer("workspace_id", 1),
            meta.string("name", required=False),
            self.scope.user,
        )
        orch = await self.service.upload(self.scope, upload)
        await self.reply(202, {"id": orch.id})

    def on_finish(self) -> None:
        """The temporary upload goes, whatever happened."""
        if self.receiver is not None:
            self.receiver.cleanup()

    def on_connection_close(self) -> None:
        """A client that hangs up mid-upload leaves nothing behind."""
        if self.receiver is not None:
            self.receiver.cleanup()


class DownloadHandler(OrchHandler):
    """`download?id=`: the zip bytes exactly as uploaded, streamed."""

    async def get(self) -> None:
        """Stream the stored archive."""
        orch_id = as_uuid("id", self.get_query_argument("id", "") or "")
        orch, path = await self.service.archive_file(self.scope, orch_id)
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Disposition", content_disposition(orch.file_name))
        fh = await asyncio.to_thread(path.open, "rb")
        try:
            self.set_header("Content-Length", str(os.fstat(fh.fileno()).st_size))
            while chunk := await asyncio.to_thread(fh.read, 1 << 20):  # a thread hop per MiB
                self.write(chunk)
                await self.flush()
        finally:
            fh.close()
        self.finish(set_content_type="application/octet-stream")


def content_disposition(file_name: str) -> str:
    """`attachment` naming a file by RFC 6266: an ASCII fallback for old clients (no control
    characters, quotes or backslashes; `_` for each other character), then the exact name."""
    fallback = "".join(
        ("_" if ord(c) > 0x7E else c) for c in file_name if c.isprintable() and c not in '"\\'
    )
    exact = quote(file_name.encode("utf-8", "replace"), safe="!#$&+-.^_`|~")
    return f"attachment; filename=\"{fallback or 'orchestration.zip'}\"; filename*=UTF-8''{exact}"


class RunOutputHandler(OrchHandler):
    """`task/get_run_output?id=` (ours): a notebook run's executed notebook, the copy so far
    while the run goes on; 404 saying why for a run without one."""

    async def get(self) -> None:
        """Stream the executed notebook (nbformat 4 JSON)."""
        run_id = as_uuid("id", self.get_query_argument("id", "") or "")
        fh = await self.service.open_run_output(self.scope, run_id)
        try:
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self.set_header("Cache-Control", "no-store")  # it changes while the run goes on
            while chunk := await asyncio.to_thread(fh.read, 1 << 20):
                self.write(chunk)
                await self.flush()
        finally:
            fh.close()
        self.finish()


class FollowLogsHandler(OrchHandler):
    """`task/follow_logs?id=&from=`: log lines as they are written, as JSON lines, until the
    run has ended; `{"heartbeat": true}` while nothing happens, `{"end": true, ...}` last."""

    heartbeat = 15.0

    async def get(self) -> None:
        """Stream the run's lines from index `from`."""
        run_id = as_uuid("id", self.get_query_argument("id", "") or "")
        start = query_integer("from", self.get_query_argument("from", "0") or "0", 0)
        lines = await self.service.follow_logs(self.scope, run_id, start)
        self.set_header("Content-Type", "application/x-ndjson")
        self.set_header("Cache-Control", "no-cache")
        queue: asyncio.Queue[tuple[int, str] | None] = asyncio.Queue(maxsize=1000)
        pump = asyncio.ensure_future(_pump(lines, queue))
        following = start
        try:
            while (item := await self._next(queue)) is not None:
                if isinstance(item, tuple):
                    following = item[0] + 1
                    self.write(dumps({"n": item[0], "line": item[1]}) + "\n")
                else:
                    self.write('{"heartbeat": true}\n')
                if queue.empty():
                    await self.flush()
        except StreamClosedError:
            return  # the client went away
        finally:
            pump.cancel()
        status = await self.service.run_status(self.scope, run_id)
        end = {"end": True, "status": status.value, "next": following}
        self.finish(dumps(end) + "\n", set_content_type="application/x-ndjson")

    async def _next(self, queue: asyncio.Queue[tuple[int, str] | None]) -> Any:
        try:
            return await asyncio.wait_for(queue.get(), self.heartbeat)
        except asyncio.TimeoutError:
            return "heartbeat"


async def _pump(
    lines: AsyncIterator[tuple[int, str]], queue: asyncio.Queue[tuple[int, str] | None]
) -> None:
    """Move lines from the follower to the answer, so heartbeats never cancel the follower."""
    try:
        async for item in lines:
            await queue.put(item)
    finally:
        await queue.put(None)


class OpenAPIHandler(OrchHandler):
    """The OpenAPI 3 document of this API."""

    async def get(self) -> None:
        """Serve the document shipped in the package."""
        document = files("jupyter_orch").joinpath("openapi.json").read_text(encoding="utf-8")
        self.finish(document)


class UnknownHandler(OrchHandler):
    """Anything else under the API's prefix: a JSON 404 naming the path."""

    async def prepare(self) -> None:  # type: ignore[override]
        """Authenticate first, so unknown paths reveal nothing to strangers."""
        await super().prepare()
        raise Missing("endpoint", self.request.path)


# -- endpoint functions ----------------------------------------------------------------------


async def executors_list(h: OrchHandler, f: Fields) -> Answer:
    """`executors/list` (ours): the executors tasks may name, the default first."""
    executors = h.service.runner.executors
    return 200, {"executors": executors.names, "default": executors.default}


async def task_get(h: OrchHandler, f: Fields) -> Answer:
    """`task/get_by_id {"id", "run_limit"?}`."""
    limit = f.integer("run_limit", required=False, minimum=0)
    task = await h.service.get_task(h.scope, f.uuid("id"), 5 if limit is None else limit)
    return 200, task.to_json()


async def task_list(h: OrchHandler, f: Fields) -> Answer:
    """`task/list` with optional workspace, orchestration, sha and killed filters."""
    run_limit = f.integer("run_limit", required=False, minimum=0)
    workspace_id = f.integer("workspace_id", required=False, minimum=1)
    orch_id = f.opt_uuid("orch_id")
    query = TaskQuery(
        workspace_ids=[workspace_id] if workspace_id is not None else [],
        orch_ids=[orch_id] if orch_id is not None else [],
        orch_sha=f.string("orch_sha", required=False),
        killed=f.boolean("killed"),
        run_limit=5 if run_limit is None else run_limit,
        limit=f.integer("limit", required=False, minimum=1),
    )
    after = f.opt_uuid("after")
    if query.limit is None and after is None:  # every task: sent a page at a time
        return 200, JsonArray(_task_pieces(h.service.stream_tasks(h.scope, query)))
    return 200, [t.to_json() for t in await h.service.list_tasks(h.scope, query, after)]


async def _task_pieces(pages: AsyncIterator[list[Task]]) -> AsyncIterator[list[Any]]:
    async for page in pages:
        yield [task.to_json() for task in page]


async def task_by_sha(h: OrchHandler, f: Fields) -> Answer:
    """`task/get_tasks_by_orch_sha {"sha"}`."""
    sha = f.string("sha")
    assert sha is not None
    return 200, {"ids": await h.service.task_ids_by_sha(h.scope, sha)}


async def task_runs(h: OrchHandler, f: Fields) -> Answer:
    """`task/list_task_runs {"task_id", "limit"?, "status"?, "time_range"?}`."""
    word = f.string("status", required=False)
    status = None if word in (None, "all") else f.enum("status", RunStatus, word)
    runs = await h.service.list_task_runs(
        h.scope,
        f.uuid("task_id"),
        f.integer("limit", required=False, minimum=1),
        status,
        f.time_range(),
        after=f.opt_uuid("after"),
    )
    return 200, [r.to_json() for r in runs]


async def task_activity(h: OrchHandler, f: Fields) -> Answer:
    """`task/activity {"since"?, "limit"?}` (ours): how many tasks have a run going, and the
    newest runs that failed or timed out (after `since`, if given)."""
    limit = f.integer("limit", required=False, minimum=1, maximum=ACTIVITY_LIMIT)
    activity = await h.service.activity(
        h.scope, f.time("since"), ACTIVITY_DEFAULT if limit is None else limit
    )
    return 200, activity.to_json()


async def task_run_details(h: OrchHandler, f: Fields) -> Answer:
    """`task/get_run_details {"task", "pod_id"}`."""
    return 200, (await h.service.get_run(h.scope, f.uuid("task"), f.uuid("pod_id"))).to_json()


async def task_logs(h: OrchHandler, f: Fields) -> Answer:
    """`task/get_logs_for_run {"id", "lines"?}`."""
    lines = f.integer("lines", required=False, minimum=0)
    return 200, JsonArray(await h.service.run_logs(h.scope, f.uuid("id"), lines), key="logs")


async def engine_info(h: OrchHandler, f: Fields) -> Answer:
    """`engine/info`: which engine answers (this server's own, or a JupyterHub service)."""
    info: dict[str, Any] = h.settings["jupyter_orch.engine"]
    return 200, {**info, "user": h.scope.user}


ENDPOINTS: dict[str, Endpoint] = {
    "engine/info": engine_info,
    **WORKSPACE_ENDPOINTS,
    "executors/list": executors_list,
    "orchestration/list": orch_list,
    "orchestration/list_all": orch_list_all,
    "orchestration/get_by_id": orch_get,
    "orchestration/get_build_log": orch_build_log,
    "orchestration/create_from_path": orch_create_from_path,
    "orchestration/delete_orchestrations": orch_delete,
    **TASK_ENDPOINTS,
    "task/update": task_update,
    "task/history": task_history,
    "task/rerun": task_rerun,
    "schedule/preview": schedule_preview,
    "task/get_by_id": task_get,
    "task/list": task_list,
    "task/get_tasks_by_orch_sha": task_by_sha,
    "task/list_task_runs": task_runs,
    "task/activity": task_activity,
    "task/get_run_details": task_run_details,
    "task/get_logs_for_run": task_logs,
    **CONNECTION_ENDPOINTS,
}


def routes() -> list[tuple[str, type[web.RequestHandler], dict[str, Any]] | tuple[Any, ...]]:
    """The URL table of the extension (Jupyter prefixes it with the server's base_url)."""
    table: list[Any] = [
        (f"{PREFIX}/orchestration/upload", UploadHandler),
        (f"{PREFIX}/orchestration/download", DownloadHandler),
        (f"{PREFIX}/task/follow_logs", FollowLogsHandler),
        (f"{PREFIX}/task/get_run_output", RunOutputHandler),
        (f"{PREFIX}/openapi.json", OpenAPIHandler),
    ]
    table += [
        (f"{PREFIX}/{path}", ActionHandler, {"endpoint": fn}) for path, fn in ENDPOINTS.items()
    ]
    from .channel_handlers import channel_routes  # its handler is built on OrchHandler

    table += channel_routes()
    table.append((r"/orch/(.*)", UnknownHandler))
    return table


def openapi_path() -> Path:
    """Where the shipped OpenAPI document lies."""
    return Path(str(files("jupyter_orch").joinpath("openapi.json")))
