"""HTTP to the orchestration API with `requests`: JSON calls, uploads and streamed lines."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import requests

from .errors import ApiError, NotFoundError, ServerUnreachable, api_error

PREFIX = "v1/api"
#: Seconds to wait for a connection, and for any byte of an answer.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 120.0


class Transport:
    """One authenticated HTTP session with the API; refusals become ApiError subclasses."""

    def __init__(self, api_url: str, token: str, timeout: float = READ_TIMEOUT) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = (min(CONNECT_TIMEOUT, timeout), timeout)
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"token {token}"

    def url(self, path: str) -> str:
        """The full URL of an endpoint (`task/run_once` ...)."""
        return f"{self.api_url}/{PREFIX}/{path}"

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """POST a JSON body; the decoded JSON answer."""
        return _json(self._send("POST", path, json=dict(body or {})))

    def get(self, path: str, params: Mapping[str, Any]) -> Any:
        """GET with query parameters; the decoded JSON answer."""
        return _json(self._send("GET", path, params=dict(params)))

    def upload(self, data: bytes, file_name: str, metadata: Mapping[str, Any]) -> Any:
        """Upload a zip (or a notebook) as the contract's two multipart parts, `file` and
        `metadata`."""
        files = [
            ("file", (file_name, data, "application/octet-stream")),
            ("metadata", ("metadata", json.dumps(dict(metadata)), "application/json")),
        ]
        return _json(self._send("POST", "orchestration/upload", files=files))

    def stream(self, path: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """GET an `application/x-ndjson` answer; each object as soon as its line arrives."""
        response = self._send("GET", path, params=dict(params), stream=True)
        with response:
            try:
                # chunk_size=None hands over each chunk as it arrives: no waiting for a full buffer.
                for line in split_lines(response.iter_content(chunk_size=None)):
                    if line.strip():
                        yield json.loads(line)
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise ServerUnreachable(self.url(path), exc) from None

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = self.url(path)
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ServerUnreachable(url, exc) from None
        if response.status_code >= 400:
            raise _error(response)
        return response

    def close(self) -> None:
        """Close the session's connections."""
        self.session.close()


def split_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Whole lines from a sequence of byte chunks that may cut lines anywhere."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from lines
    if pending:
        yield pending


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ApiError(
            response.status_code,
            f"{response.url} answered something that is not JSON (a login page? check the token)",
        ) from None


def _error(response: requests.Response) -> ApiError:
    """The server's `{"message", "reason"}`, or a message saying what answered instead."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        message, reason = str(body["message"]), str(body.get("reason") or "")
        if response.status_code == 403 and "_xsrf" in message:
            # Jupyter checks XSRF only for requests it did not authenticate: the token was refused.
            message = f"the token is missing or wrong (the server said: {message})"
        return api_error(response.status_code, message, reason or response.reason)
    if response.status_code == 404:
        return NotFoundError(
            404,
            f"no orchestration API at {response.url} (is the jupyter_orch extension enabled?)",
            "Not Found",
        )
    text = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
    return api_error(response.status_code, text or response.reason, response.reason)
