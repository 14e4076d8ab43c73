"""The tasks panel's **Open output**: a notebook run's executed notebook, saved beside the
notebook the panel is shown in, and a link that opens it in JupyterLab.

Saving a copy rather than linking the API's JSON: JupyterLab shows a notebook file as a
notebook (outputs, images, tables) and not as JSON, and the copy stays when retention removes
the run. The file is `<task name>-<run id's first 8 characters>.ipynb` in the kernel's working
folder (the notebook's own, in JupyterLab). It never overwrites anything else: a file of that
name is replaced only when it is an earlier copy of the same run's output (a refresh of a
running run's); otherwise the next free name is taken (`-2`, `-3` …). It is written atomically.
JupyterLab does not trust outputs it did not produce itself, so scripts in the copy's HTML
outputs do not run until the user trusts the notebook.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from ..sdk.client import Client
from ..sdk.discovery import server_root

SUFFIX = ".ipynb"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_stem(task_name: str | None, run_id: str) -> str:
    """`<task name>-<run id prefix>`, with only letters, digits, `.`, `_` and `-`."""
    name = _UNSAFE.sub("-", task_name or "").strip("-.") or "run"
    return f"{name[:80]}-{run_id[:8]}"


def save_output(
    document: Mapping[str, Any], folder: Path, task_name: str | None, run_id: str
) -> Path:
    """Write a run's executed notebook into `folder` (see the module's docstring); its path."""
    stem = file_stem(task_name, run_id)
    path = folder / f"{stem}{SUFFIX}"
    number = 1
    while path.exists() and not _copy_of(path, run_id):
        number += 1
        path = folder / f"{stem}-{number}{SUFFIX}"
    text = json.dumps(document, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    temporary = path.with_name(f".~{path.name}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return path


def _copy_of(path: Path, run_id: str) -> bool:
    """Whether the file at `path` is an executed copy written by run `run_id`."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    meta = document.get("metadata") if isinstance(document, dict) else None
    orch = meta.get("jupyter_orch") if isinstance(meta, dict) else None
    return isinstance(orch, dict) and orch.get("run_id") == run_id


def lab_href(path: Path, api_url: str, root: Path | None) -> str | None:
    """The URL path that opens `path` in JupyterLab (`{base_url}lab/tree/...`), on the page's
    own origin; None when the file is not under the Jupyter root (or it is not known)."""
    if root is None:
        return None
    try:
        relative = path.resolve().relative_to(root.resolve())
    except ValueError:
        return None
    base = urlsplit(api_url).path.removesuffix("/orch")
    return f"{base}/lab/tree/{quote(relative.as_posix())}"


class OutputOpener:
    """Which runs have a notebook output (their orchestration's entrypoint), and saving one."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._entrypoints: dict[str, str] = {}  # orchestration id -> entrypoint

    def has_output(self, task: Mapping[str, Any] | None) -> bool:
        """Whether the task's runs are notebook runs (asked once per orchestration)."""
        orch_id = str((task or {}).get("orch_id") or "")
        if not orch_id:
            return False
        if orch_id not in self._entrypoints:
            orch = self._client._post("orchestration/get_by_id", {"id": orch_id})
            self._entrypoints[orch_id] = str(orch.get("entrypoint") or "")
        return self._entrypoints[orch_id].endswith(SUFFIX)

    def save(self, task: Mapping[str, Any], run_id: str, folder: Path | None = None) -> str:
        """Fetch and save the run's executed notebook; HTML saying where, with a link."""
        document = self._client.run_output(run_id)
        path = save_output(document, folder or Path.cwd(), task.get("name"), run_id)
        status = (document.get("metadata") or {}).get("jupyter_orch", {}).get("status", "")
        api_url = self._client.server.api_url
        href = lab_href(path, api_url, server_root(api_url))
        shown = escape(path.name)
        link = (
            f'<a href="{escape(href)}" target="_blank" rel="noopener">{shown}</a>'
            if href
            else f"<code>{escape(str(path))}</code>"
        )
        state = f" (the copy so far: the run is {escape(status)})" if status == "running" else ""
        return f"Output of run {escape(run_id[:8])} saved as {link}{state}."
