"""Notebook panels for the orchestration API: `TasksPanel()` and `OrchestrationsPanel()`.

They need ipywidgets 8, loaded only when a panel is first used, so that `import jupyter_orch`
stays cheap. A panel does its HTTP calls and refreshes on a thread of its own: it never blocks
the kernel, and stops when closed or when the kernel shuts down.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .orchestrations import OrchestrationsPanel
    from .tasks import TasksPanel

_LAZY = {"TasksPanel": "tasks", "OrchestrationsPanel": "orchestrations"}
__all__ = ["OrchestrationsPanel", "TasksPanel"]


def __getattr__(name: str) -> Any:
    """Load a panel, and ipywidgets with it, on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jupyter_orch.widgets' has no attribute {name!r}")
    try:
        value = getattr(import_module(f".{module}", __name__), name)
    except ModuleNotFoundError as exc:
        if exc.name not in ("ipywidgets", "anywidget"):
            raise
        raise ModuleNotFoundError(
            f"jupyter_orch.widgets.{name} needs ipywidgets 8 and anywidget: "
            "pip install 'ipywidgets>=8' anywidget",
            name=exc.name,
        ) from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
