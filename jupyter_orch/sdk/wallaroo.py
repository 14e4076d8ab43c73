"""Wallaroo's `wallaroo` module as a run sees it, for orchestrations written for Wallaroo.

`import wallaroo` inside a run gives this module (through `jupyter_orch/_wallaroo/`, a folder
on the path of runs only) unless the run's environment installs Wallaroo's own package.
`wallaroo.Client()` is this SDK's client bound to the run's own token and workspace: it has
`in_task()`, `task_args()`, workspaces, orchestrations, tasks and connections. What Wallaroo has
beyond those (pipelines, models, deployments, assays …) raises an error naming the feature.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

from .. import runtime
from .client import Client as _Client

#: Words of Wallaroo's names, and the feature each belongs to (first match wins).
FEATURES = (
    ("pipeline", "pipelines"),
    ("deploy", "deployments"),
    ("model", "models"),
    ("registr", "model registries"),
    ("assay", "assays"),
    ("tag", "tags"),
    ("user", "users"),
    ("explain", "explainability"),
    ("infer", "inference"),
    ("schema", "data schemas"),
    ("engine", "inference engines"),
    ("metric", "metrics"),
)
OURS = "it has Wallaroo's orchestrations, tasks, workspaces and connections"


def feature_of(name: str) -> str | None:
    """The Wallaroo feature a name belongs to, as words (None when no word says)."""
    lowered = name.rsplit(".", 1)[-1].lower()
    for word, feature in FEATURES:
        if word in lowered:
            return f"Wallaroo {feature}"
    return None


def missing_message(name: str) -> str:
    """Why `name` is not here, naming its feature."""
    feature = feature_of(name)
    what = f"{feature} are" if feature else "it is"
    return f"{name}: {what} not part of jupyter_orch ({OURS})"


class MissingWallarooFeature(AttributeError):
    """A Wallaroo feature that is not an orchestration's (pipelines, models …)."""


class Client(_Client):
    """Wallaroo's `wallaroo.Client()`: inside a run, jupyter_orch's client bound to the run's
    own token, its current workspace the run's; Wallaroo's endpoint and authentication
    arguments name Wallaroo's cluster and are ignored there."""

    def __init__(
        self,
        api_endpoint: str | None = None,
        request_timeout: float | None = None,
        auth_type: str | None = None,
        **kwargs: Any,
    ) -> None:
        if runtime.in_task():
            for name in ("url", "token", "auth_endpoint", "interactive"):
                kwargs.pop(name, None)
            super().__init__(None, request_timeout, None, **kwargs)
            task_id = os.environ.get("TASK_ID")
            if task_id and kwargs.get("workspace") is None:
                self._workspace = self.get_task_by_id(task_id).workspace_id()
        else:
            super().__init__(api_endpoint, request_timeout, auth_type, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise MissingWallarooFeature(missing_message(f"wallaroo.Client.{name}"))


class _Submodules:
    """`import wallaroo.pipeline` and the like: a ModuleNotFoundError naming the feature."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname.startswith("wallaroo.") and sys.modules.get("wallaroo") is _this():
            raise ModuleNotFoundError(missing_message(fullname), name=fullname)
        return None


def _this() -> ModuleType:
    return sys.modules[__name__]


def __getattr__(name: str) -> Any:
    if name.startswith("_"):
        raise AttributeError(name)
    raise MissingWallarooFeature(missing_message(f"wallaroo.{name}"))


#: A package, so that `import wallaroo.x` asks the finders (and `_Submodules` answers).
__path__: list[str] = []
if not any(isinstance(finder, _Submodules) for finder in sys.meta_path):
    sys.meta_path.insert(0, _Submodules())
