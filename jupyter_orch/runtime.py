"""What a run's own code imports: `in_task()` and `task_args()`.

Cheap to import and free of third-party imports, so it works in every task environment.
"""

from __future__ import annotations

import json
import os
from typing import Any

RUN_ID_VAR = "JUPYTER_ORCH_RUN_ID"
ARGS_FILE_VAR = "JUPYTER_ORCH_ARGS_FILE"
URL_VAR = "JUPYTER_ORCH_URL"
TOKEN_VAR = "JUPYTER_ORCH_TOKEN"


def in_task() -> bool:
    """True when this code runs as a task run of an orchestration."""
    return bool(os.environ.get(RUN_ID_VAR))


def task_args() -> dict[str, Any]:
    """The task's `json` arguments inside a run; `{}` anywhere else."""
    path = os.environ.get(ARGS_FILE_VAR)
    if not in_task() or not path:
        return {}
    with open(path, encoding="utf-8") as fh:
        args = json.load(fh)
    return args if isinstance(args, dict) else {}


def run_id() -> str | None:
    """The id of the current task run, or None outside a run."""
    return os.environ.get(RUN_ID_VAR) or None
