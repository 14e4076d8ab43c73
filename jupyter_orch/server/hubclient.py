"""A user's server under JupyterHub, when the Hub runs the engine as a service: pass every
request of the orchestration API on to the hub service, as the user.

The extension then serves no engine of its own. Its `/orch/…` routes stay where every client
already looks (the sidebar, the SDK's `Client()` found from a kernel, the magics, the widgets,
`jupyter orch` in the server's terminals), and each request, once this server has
authenticated it as it authenticates everything, goes on to the service with this server's
own JupyterHub token, which is the user's: the service sees the user, as the user's own
browser would be seen. Bodies and answers are streamed both ways (uploads, `follow_logs`).

`orchestration/create_from_path` names a file of this server's root, which the service cannot
read: it is zipped here by the one bundle builder and sent on as an upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jupyter_server.base.handlers import APIHandler
from tornado import httputil, web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.iostream import StreamClosedError

from ..bundle import DEFAULT_LIMITS
from .errors import InvalidRequest, OrchError
from .fields import Fields, parse_json_object
from .handlers import authorize
from .upload import bundle_path, resolve_inside

log = logging.getLogger(__name__)
#: Headers of a request passed on to the service, and of its answer passed back.
REQUEST_HEADERS = ("Content-Type", "Content-Length", "Accept")
ANSWER_HEADERS = ("Content-Type", "Content-Disposition", "Allow", "Cache-Control")
CONNECT_TIMEOUT = 20.0
CHUNK = 256 * 1024


def find_hub_service(environ: Mapping[str, str], setting: str, name: str) -> str | None:
    """The base URL (ending in `/`) of the hub service this server should use, or None.

    `setting` (`OrchApp.hub_service_url`) wins; otherwise, inside a JupyterHub user's server,
    the Hub's API is asked for the service `name` (the server's token needs
    `read:services!service=NAME`). No Hub, or no such service: None (the engine is local)."""
    if setting:
        return setting.rstrip("/") + "/"
    api, token = environ.get("JUPYTERHUB_API_URL"), environ.get("JUPYTERHUB_API_TOKEN")
    if not (name and api and token and environ.get("JUPYTERHUB_USER")):
        return None
    import requests

    try:
        answer = requests.get(
            f"{api.rstrip('/')}/services/{name}",
            headers={"Authorization": f"token {token}"},
            timeout=CONNECT_TIMEOUT,
        )
    except requests.RequestException as exc:
        log.warning("could not ask the Hub for the service %r (%s): the engine is local", name, exc)
        return None
    if answer.status_code != 200:
        log.info(
            "the Hub has no service %r this server may see (HTTP %s): the engine is local",
            name,
            answer.status_code,
        )
        return None
    model = answer.json()
    if not model.get("url"):
        log.info("the Hub's service %r has no url: the engine is local", name)
        return None
    prefix = str(model.get("prefix") or f"/services/{name}/")
    return f"{str(model['url']).rstrip('/')}/{prefix.strip('/')}/"


@web.stream_request_body
class HubProxyHandler(APIHandler):
    """`/orch/…`: authenticated here, then passed on to the hub service as this server's user."""

    auth_resource = "orch"
    upstream: asyncio.Future[None] | None = None

    @property
    def service_url(self) -> str:
        """The hub service's base URL."""
        url: str = self.settings["jupyter_orch.hub_service_url"]
        return url

    async def prepare(self) -> None:  # type: ignore[override]
        """Authenticate and authorize as the server does, then open the way to the service."""
        await super().prepare()
        await authorize(self)
        self.chunks: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=8)
        self.status_set = False
        if self.path_args and self.path_args[0] == "v1/api/orchestration/create_from_path":
            limit = 64 * 1024  # a small JSON body, read whole below
            self.request.connection.set_max_body_size(limit)  # type: ignore[union-attr]
            return
        has_body = self.request.method in ("POST", "PUT", "PATCH")
        headers = {k: v for k in REQUEST_HEADERS if (v := self.request.headers.get(k))}
        self.upstream = asyncio.ensure_future(
            self.forward(self.request.uri or "", headers, self.read_body if has_body else None)
        )

    async def data_received(self, chunk: bytes) -> None:
        """A piece of the request's body: on to the service (waits while the service is slow)."""
        if self.upstream is None:
            self.body_pieces = [*getattr(self, "body_pieces", []), chunk]
            return
        await self.chunks.put(chunk)

    async def read_body(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        """The request's body as it arrives, for the upstream request."""
        while (chunk := await self.chunks.get()) is not None:
            await write(chunk)

    async def forward(
        self,
        uri: str,
        headers: dict[str, str],
        body: Callable[[Callable[[bytes], Awaitable[None]]], Awaitable[None]] | None,
    ) -> None:
        """Send the request to the service with this server's token; stream its answer back."""
        base = urlsplit(self.service_url)
        local_base = self.base_url.rstrip("/")
        path = uri[len(local_base) :] if uri.startswith(local_base) else uri
        target = f"{base.scheme}://{base.netloc}{base.path.rstrip('/')}{path}"
        token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
        request = HTTPRequest(
            target,
            method=self.request.method or "GET",
            headers={**headers, "Authorization": f"token {token}"},
            body_producer=body,  # type: ignore[arg-type] # a write that may be awaited
            allow_nonstandard_methods=True,
            follow_redirects=False,
            connect_timeout=CONNECT_TIMEOUT,
            request_timeout=0,  # a followed log lasts as long as its run
            header_callback=self.upstream_header,
            streaming_callback=self.upstream_chunk,
            decompress_response=False,
        )
        try:
            await AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as exc:
            if not self.status_set:
                raise ServiceUnreachable(str(exc)) from exc

    def upstream_header(self, line: str) -> None:
        """One header line of the service's answer."""
        if line.startswith("HTTP/"):
            self.upstream_status = httputil.parse_response_start_line(line.strip())
            self.upstream_headers = httputil.HTTPHeaders()
        elif line.strip():
            self.upstream_headers.parse_line(line)
        else:  # the end of the headers
            start = self.upstream_status
            if start.code == 100:
                return
            self.set_status(start.code, start.reason or None)
            self.clear_header("Content-Type")
            for name in ANSWER_HEADERS:
                if name in self.upstream_headers:
                    self.set_header(name, self.upstream_headers[name])
            self.status_set = True

    def upstream_chunk(self, chunk: bytes) -> None:
        """A piece of the service's answer: on to the client at once."""
        if self.request.connection is None or self.request.connection.stream.closed():  # type: ignore[attr-defined]
            raise StreamClosedError()  # the client left: stop reading the service
        self.write(chunk)
        self.flush()

    async def _finish_forward(self) -> None:
        await self.chunks.put(None)
        assert self.upstream is not None
        await self.upstream
        if not self._finished:
            self.finish()

    async def get(self, path: str) -> None:
        """GET: follow_logs, download, run output, the OpenAPI document."""
        await self._finish_forward()

    async def post(self, path: str) -> None:
        """POST: every endpoint; `create_from_path` becomes an upload."""
        if self.upstream is None:
            await self.create_from_path()
            return
        await self._finish_forward()

    async def create_from_path(self) -> None:
        """Zip a file or folder of this server's root and upload it to the service."""
        fields = Fields(parse_json_object(b"".join(getattr(self, "body_pieces", []))))
        relative = fields.string("path")
        assert relative is not None
        workspace_id = fields.integer("workspace_id", required=False, minimum=1) or 1
        name = fields.string("name", required=False)
        root = str(self.settings["server_root_dir"])
        tmp, file_name, label = await asyncio.to_thread(zip_from_root, root, relative)
        try:
            metadata = {"workspace_id": workspace_id, "name": name or label}
            boundary = uuid.uuid4().hex
            head, tail = multipart_frame(boundary, file_name, metadata)
            size = len(head) + tmp.stat().st_size + len(tail)

            async def body(write: Callable[[bytes], Awaitable[None]]) -> None:
                await write(head)
                with tmp.open("rb") as fh:
                    while chunk := await asyncio.to_thread(fh.read, CHUNK):
                        await write(chunk)
                await write(tail)

            headers = {
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(size),
            }
            uri = self.request.uri or ""
            upload_uri = uri.replace("orchestration/create_from_path", "orchestration/upload")
            await self.forward(upload_uri, headers, body)
        finally:
            await asyncio.to_thread(tmp.unlink, True)
        if not self._finished:
            self.finish()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Our errors as the engine sends them: `{"message", "reason"}`."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, OrchError):
            self.set_status(exc.status, exc.reason)
            self.finish(json.dumps({"message": exc.message, "reason": exc.reason}))
            return
        super().write_error(status_code, **kwargs)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """An error we answer is one line in the log, not a traceback."""
        if isinstance(value, OrchError):
            self.log.info("%s %s: %s", self.request.method, self.request.path, value.message)
            return
        super().log_exception(typ, value, tb)

    def on_connection_close(self) -> None:
        """The client left: let the upstream request end."""
        with contextlib.suppress(asyncio.QueueFull):
            self.chunks.put_nowait(None)


class ServiceUnreachable(OrchError):
    """The hub service did not answer."""

    status = 502
    reason = "Bad Gateway"

    def __init__(self, detail: str) -> None:
        super().__init__(f"the JupyterHub service of jupyter_orch did not answer: {detail}")


def zip_from_root(root: str, relative: str) -> tuple[Path, str, str]:
    """Zip a folder, `.py` or `.ipynb` under the server's root into a new temporary file (the
    bundle builder's rules and limits); the file, the archive's name and the target's name."""
    target = resolve_inside(Path(root).expanduser(), relative)
    fd, name = tempfile.mkstemp(prefix="jupyter-orch-", suffix=".zip")
    os.close(fd)
    tmp = Path(name)
    try:
        file_name = bundle_path(target, tmp, DEFAULT_LIMITS)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, file_name, target.name


def multipart_frame(boundary: str, file_name: str, metadata: dict[str, Any]) -> tuple[bytes, bytes]:
    """What goes before and after a zip's bytes in an upload's multipart body."""
    if '"' in file_name or "\r" in file_name or "\n" in file_name:
        raise InvalidRequest("path", "names a file whose name cannot be sent")
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="metadata"; filename="metadata"\r\n'
        "Content-Type: application/json\r\n\r\n"
        f"{json.dumps(metadata)}\r\n"
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head, f"\r\n--{boundary}--\r\n".encode()


def routes() -> list[tuple[str, type[web.RequestHandler]]]:
    """The URL table of a server whose engine is the hub service."""
    return [(r"/orch/(.*)", HubProxyHandler)]
