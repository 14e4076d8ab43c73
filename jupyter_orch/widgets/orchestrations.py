"""`OrchestrationsPanel`: uploaded code, its packaging and build log, and a button to run it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import ipywidgets as w

from ..sdk.client import Client
from ..sdk.errors import OrchClientError
from ..sdk.logs import LogLine
from ..sdk.resources import Orchestration
from . import render
from .base import Item, Panel, fail_text


class OrchestrationsPanel(Panel):
    """Orchestrations of a workspace: packaging status, build log, and Run once."""

    noun = "orchestration"
    columns = ("name", "status", "file", "requirements", "built in", "created")

    def __init__(
        self,
        workspace_id: int | None = None,
        *,
        client: Client | None = None,
        refresh_seconds: float = 3.0,
        page_size: int = 50,
    ) -> None:
        self._orch_id: str | None = None
        self._orch: Item | None = None
        self._build_log = ""
        self._all: list[Item] = []
        self.last_task_id: str | None = None
        self._title = w.HTML()
        self._log_title = w.HTML()
        self._log_box = w.HTML()
        self._task_name = w.Text(description="Task name", placeholder="the orchestration's name")
        self._args = w.Text(description="Arguments", value="{}", placeholder='{"key": "value"}')
        super().__init__(client, workspace_id, refresh_seconds, page_size)

    def _layout(self) -> list[w.Widget]:
        run = self.button(
            "run_once", "Run once", "play", "select an orchestration first", self._run_once
        )
        run.disabled = True
        for widget in (self._title, self._log_title, self._log_box, self._task_name, self._args):
            self.own(widget)
        self._title.value = render.muted("Select an orchestration to see its build log.")
        form = self.own(w.HBox([self._task_name, self._args, run]))
        return [*super()._layout(), self._title, form, self._log_title, self._log_box]

    # -- what a user (or a test) does ----------------------------------------------------------

    @property
    def selected_orchestration(self) -> str | None:
        """The id of the selected orchestration."""
        return self._orch_id

    @property
    def build_log_text(self) -> str:
        """The selected orchestration's build log, as shown."""
        return self._build_log

    def select_orchestration(self, orch_id: str) -> None:
        """Show an orchestration's packaging and build log."""
        self._worker.call(lambda: self._load(orch_id))

    def set_run(self, name: str | None = None, args: Mapping[str, Any] | str | None = None) -> None:
        """Fill in the Run once form: the task's name and its JSON arguments."""
        if name is not None:
            self._task_name.value = name
        if args is not None:
            self._args.value = args if isinstance(args, str) else json.dumps(dict(args))

    # -- the worker's side ---------------------------------------------------------------------

    def _run_once(self) -> None:
        if self._orch_id is None:
            self._say("Select an orchestration first.", ok=False)
        else:
            self._start_task(self._orch_id, self._task_name.value, self._args.value)

    def _fetch(self) -> list[Item]:
        orchs: list[Item] = self.client._post(
            "orchestration/list", {"workspace_id": self._workspace_id}
        )
        orchs.sort(key=lambda o: str(o.get("created_at") or ""), reverse=True)
        self._all = orchs
        return orchs

    def _fingerprint_of(self, items: Any) -> object:
        return (self._workspace_id, super()._fingerprint_of(items))

    def _empty_text(self) -> str:
        return (
            "No orchestrations in this workspace yet. Upload one with "
            "Client().upload_orchestration(path=...) or %%orchestrate NAME in a cell."
        )

    def _cells(self, item: Mapping[str, Any], at: datetime) -> list[str]:
        texts = self._texts(item, at)
        name = f"<b>{render.esc(texts[0])}</b> {render.muted(str(item['id'])[:8])}"
        created = render.when(item.get("created_at"), at)
        return [name, render.badge(item.get("status")), *map(render.esc, texts[2:5]), created]

    def _texts(self, item: Mapping[str, Any], at: datetime) -> list[str]:
        built = item.get("build_seconds")
        return [
            str(item.get("name") or ""),
            render.words(item.get("status")),
            f"{item.get('file_name', '')} ({item.get('file_size', '?'):,} bytes)",
            "yes" if item.get("requirements") else "no",
            "" if built is None else render.span(float(built)),
            render.relative(item.get("created_at"), at),
        ]

    def _selected_id(self) -> str | None:
        return self._orch_id

    def _pick_item(self, item_id: str) -> None:
        if item_id != self._orch_id:
            self.select_orchestration(item_id)

    def _load(self, orch_id: str) -> None:
        before = str((self._orch or {}).get("name") or "")
        self._orch_id = orch_id
        self._orch = self.client._post("orchestration/get_by_id", {"id": orch_id})
        if self._task_name.value in ("", before):  # the name typed in the form is kept
            self._task_name.value = str(self._orch.get("name") or "")
        self._render_page()
        self._render_detail()

    def _after_refresh(self, changed: bool) -> None:
        if self._orch_id is None or not changed:
            return
        fresh = next((o for o in self._all if o["id"] == self._orch_id), None)
        known = self._orch
        if (
            fresh is not None
            and known is not None
            and self._item_key(fresh) != self._item_key(known)
        ):
            self._orch = fresh
            self._render_detail()

    def _render_detail(self) -> None:
        orch = self._orch
        if orch is None:
            return
        parts = [
            f"<b>{render.esc(orch.get('name') or '(no name)')}</b>",
            render.badge(orch.get("status")),
            f"entrypoint <code>{render.esc(orch.get('entrypoint'))}</code>",
            render.muted(f"sha {str(orch.get('sha', ''))[:12]} · id {orch['id']}"),
        ]
        title = " · ".join(parts)
        if orch.get("error"):
            title += f"<br>{render.message(str(orch['error']), ok=False)}"
        self._title.value = title
        failed = orch.get("status") == "error"
        run = self._actions["run_once"]
        run.disabled = failed
        run.tooltip = "its packaging failed" if failed else "Run the orchestration once"
        self._render_build_log(orch)

    def _render_build_log(self, orch: Mapping[str, Any]) -> None:
        self._build_log = Orchestration(self.client, orch).build_log()
        status = str(orch.get("status"))
        self._log_title.value = f"<b>Build log</b> · {render.badge(status)}"
        if orch.get("requirements"):
            empty = "The build has printed nothing yet."
        else:
            empty = "Nothing to build: no requirements.txt, it runs on the server's Python."
        lines = [LogLine.of_text(text) for text in self._build_log.splitlines()]
        self._log_box.value = render.log_box(lines, empty)

    def _start_task(self, orch_id: str, name: str, args_text: str) -> None:
        try:
            args = json.loads(args_text or "{}")
        except ValueError as exc:
            self._say(f"Arguments are not JSON: {exc}", ok=False)
            return
        if not isinstance(args, dict):
            self._say('Arguments must be a JSON object, like {"key": "value"}.', ok=False)
            return
        orch = Orchestration(self.client, self._orch or {"id": orch_id})
        task_name = name or orch.name() or orch_id[:8]
        try:
            task = orch.run_once(task_name, args)
        except OrchClientError as exc:
            self._say(f"Run once failed: {fail_text(exc)}", ok=False)
            return
        self.last_task_id = task.id()
        self._say(
            f"Started task {task_name} ({task.id()}): {render.words(task.known_status())}. "
            "TasksPanel() shows its runs and log."
        )
