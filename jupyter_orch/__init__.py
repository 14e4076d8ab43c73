"""jupyter_orch: run notebook code once, on a schedule, or continuously, from Jupyter.

Importing the package stays cheap (a run's code imports it): the server extension is loaded
only when Jupyter asks for it.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__
from .runtime import in_task, task_args

__all__ = ["__version__", "in_task", "task_args"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """Tell Jupyter Server where the extension application lives."""
    from .app import OrchApp

    return [{"module": "jupyter_orch.app", "app": OrchApp}]
