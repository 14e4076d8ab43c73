"""Errors the SDK (client, magics, command line) raises; the server's refusals carry its message.

Distinct from `errors.py`, which holds the server core's errors: these live on the client side.
"""

from __future__ import annotations


class OrchClientError(Exception):
    """Base of every error the SDK raises on purpose."""


class ServerNotFound(OrchClientError):
    """No server was given and none was found; `attempts` says where the SDK looked."""

    def __init__(self, attempts: list[str]) -> None:
        self.attempts = attempts
        lines = "\n".join(f"  - {attempt}" for attempt in attempts)
        super().__init__(
            f"no Jupyter server with jupyter_orch found; tried:\n{lines}\n"
            "Pass Client(url=..., token=...) or set JUPYTER_ORCH_URL and JUPYTER_ORCH_TOKEN."
        )


class ServerUnreachable(OrchClientError):
    """The server could not be reached at all (refused, reset, timed out)."""

    def __init__(self, url: str, cause: object) -> None:
        self.url = url
        super().__init__(f"cannot reach {url}: {cause}")


class ApiError(OrchClientError):
    """The server refused a request: `status` is the HTTP code, `message` the server's words."""

    status = 0

    def __init__(self, status: int, message: str, reason: str = "") -> None:
        self.status = status
        self.message = message
        self.reason = reason
        super().__init__(f"{message} ({status} {reason})" if reason else f"{message} ({status})")


class BadRequestError(ApiError):
    """400: a missing or ill-typed field, a bad archive, an unknown cron or time zone."""


class AuthorizationError(ApiError):
    """403: no token, a wrong token, or a run's token that has expired."""


class NotFoundError(ApiError):
    """404: an unknown id or workspace, or no orchestration API at that URL."""


class ConflictError(ApiError):
    """409: the object's state forbids it (killing a killed task, a workspace name taken)."""


class PayloadTooLargeError(ApiError):
    """413: an upload over the server's limit."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    403: AuthorizationError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
}


def api_error(status: int, message: str, reason: str = "") -> ApiError:
    """The specific error for an HTTP status (ApiError itself for the others)."""
    return _BY_STATUS.get(status, ApiError)(status, message, reason)


class OrchestrationFailed(OrchClientError):
    """An orchestration's packaging ended in `error`; the message says why."""


class WaitTimeout(OrchClientError, TimeoutError):
    """A wait reached its deadline before the awaited state."""
