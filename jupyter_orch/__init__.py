"""jupyter_orch: run notebook code once, on a schedule, or continuously, from Jupyter.

Importing the package stays cheap and free of third-party imports (a run's code imports it):
the server extension, the SDK (`Client` ...) and the magics are loaded when first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .runtime import in_task, task_args

if TYPE_CHECKING:
    from .sdk.client import Client
    from .sdk.connections import Connection
    from .sdk.errors import (
        ApiError,
        AuthorizationError,
        BadRequestError,
        ConflictError,
        NotFoundError,
        OrchClientError,
        OrchestrationFailed,
        PayloadTooLargeError,
        ServerNotFound,
        ServerUnreachable,
        WaitTimeout,
    )
    from .sdk.logs import LogLine
    from .sdk.resources import Orchestration, Task, TaskRun
    from .sdk.workspace import Workspace

#: Names served on first use, and the module each lives in.
_LAZY = {
    "Client": "sdk.client",
    "Orchestration": "sdk.resources",
    "Task": "sdk.resources",
    "TaskRun": "sdk.resources",
    "Workspace": "sdk.workspace",
    "Connection": "sdk.connections",
    "LogLine": "sdk.logs",
    "OrchClientError": "sdk.errors",
    "ServerNotFound": "sdk.errors",
    "ServerUnreachable": "sdk.errors",
    "ApiError": "sdk.errors",
    "BadRequestError": "sdk.errors",
    "AuthorizationError": "sdk.errors",
    "NotFoundError": "sdk.errors",
    "ConflictError": "sdk.errors",
    "PayloadTooLargeError": "sdk.errors",
    "OrchestrationFailed": "sdk.errors",
    "WaitTimeout": "sdk.errors",
}

__all__ = [
    "ApiError",
    "AuthorizationError",
    "BadRequestError",
    "Client",
    "ConflictError",
    "Connection",
    "LogLine",
    "NotFoundError",
    "OrchClientError",
    "Orchestration",
    "OrchestrationFailed",
    "PayloadTooLargeError",
    "ServerNotFound",
    "ServerUnreachable",
    "Task",
    "TaskRun",
    "WaitTimeout",
    "Workspace",
    "__version__",
    "in_task",
    "load_ipython_extension",
    "task_args",
]


def __getattr__(name: str) -> Any:
    """Import the SDK's classes on first use, so `import jupyter_orch` needs no `requests`."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jupyter_orch' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext jupyter_orch`: register the `%%orchestrate` and `%orch_*` magics."""
    from .magics import load_ipython_extension as load

    load(ipython)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """Tell Jupyter Server where the extension application lives."""
    from .server.app import OrchApp

    return [{"module": "jupyter_orch.server.app", "app": OrchApp}]
