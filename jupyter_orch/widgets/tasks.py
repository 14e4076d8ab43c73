"""`TasksPanel`: tasks, their runs, and the selected run's log, followed live while it runs.

Tasks come from the server a page at a time (`task/list` with `limit` and `after`): a refresh
asks for the page shown and one task more (which says whether a next page exists), whatever
the number of tasks. The next page starts after the last task shown, so it stays the same
while newer tasks are made.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar

import ipywidgets as w

from ..sdk.base import given, task_query
from ..sdk.client import Client
from ..sdk.errors import NotFoundError, OrchClientError
from ..sdk.resources import Task
from . import render, rows
from .base import Item, Panel, fail_text
from .logview import LogView
from .output import OutputOpener

#: Runs listed for the selected task, newest first.
RUN_LIMIT = 20
#: What JupyterLab renders as a link to a task's main-area view, which it opens at once.
OPEN_MIME = "application/vnd.jupyter-orch.open+json"
TASK_STATUSES = (
    "started",
    "pending",
    "success",
    "failed",
    "timed_out",
    "crash_loop",
    "paused",
    "pending_pause",
    "pending_resume",
    "pending_kill",
    "killed",
)


class TasksPanel(Panel):
    """Tasks of a workspace, a task's runs, and a run's log; kill, pause, resume or run now."""

    noun = "task"
    columns = rows.TASK_COLUMNS
    run_columns = rows.RUN_COLUMNS
    #: The server cannot filter by status: with a status chosen, a refresh looks through at
    #: most this many tasks for a page of matches (`scan_chunk` per request); "Next" looks on.
    scan_limit: ClassVar[int] = 1000
    scan_chunk: ClassVar[int] = 250

    def __init__(
        self,
        workspace_id: int | None = None,
        *,
        client: Client | None = None,
        status: str | None = None,
        include_killed: bool = False,
        refresh_seconds: float = 3.0,
        page_size: int = 50,
    ) -> None:
        self._task_id: str | None = None
        self._task: Item | None = None
        self._runs: list[Item] = []
        self._run_rows: list[list[str]] = []
        self._newest = True  # follow the newest run as new ones start
        self._confirming: str | None = None
        self._all: list[Item] = []  # every task the last refresh looked at
        self._starts: list[str | None] = [None]  # each page starts after this task
        self._offsets = [0]  # how many tasks the pages before each one showed
        self._has_more = False  # whether tasks follow the page shown
        self._next_start: str | None = None  # where the next page starts
        self._looked_on = False  # the page is short because the look stopped at scan_limit
        self._notebook = False  # whether the selected task's runs are notebook runs
        self._build_filters(status, include_killed)
        super().__init__(client, workspace_id, refresh_seconds, page_size)

    def _build_filters(self, status: str | None, include_killed: bool) -> None:
        if status and status not in TASK_STATUSES:
            raise ValueError(f"status: one of {', '.join(TASK_STATUSES)}; not {status!r}")
        options = [("any status", "")] + [(render.words(s), s) for s in TASK_STATUSES]
        self._status = w.Dropdown(description="Status", options=options, value=status or "")
        self._killed = w.Checkbox(description="include killed", value=include_killed, indent=False)
        self._status.observe(self._on_filter, "value")
        self._killed.observe(self._on_filter, "value")

    def _filters(self) -> list[w.Widget]:
        return [self._workspace, self.own(self._status), self.own(self._killed)]

    def _layout(self) -> list[w.Widget]:
        self._log = LogView(self._worker, self.client, self._run_ended)
        self._title = self.own(w.HTML(render.muted("Select a task to see its runs and logs.")))
        self._runs_table = self.own(w.HTML())
        self._run_pick = self.own(w.Dropdown(description="Run", options=[("", None)], value=None))
        self._run_pick.observe(self._on_run_pick, "value")
        return [
            *super()._layout(),
            self._title,
            self._action_bar(),
            self._confirm_box(),
            self._runs_table,
            self._run_pick,
            self._output_bar(),
            self.own(self._log.heading),
            self.own(self._log.box),
        ]

    def _output_bar(self) -> w.HBox:
        """Open output: shown for a notebook run (see `output.py`)."""
        self._output = OutputOpener(self.client)
        tip = "save this run's executed notebook beside this notebook, and link it"
        button = self.button("open_output", "Open output", "external-link", tip, self._open)
        self._output_note = self.own(w.HTML())
        self._output_box = self.own(w.HBox([button, self._output_note]))
        self._output_box.layout.display = "none"
        return self._output_box

    def _action_bar(self) -> w.HBox:
        buttons = [
            ("kill", "Kill", "stop", self._ask),
            ("pause", "Pause", "pause", lambda: self._act_on_selected("pause")),
            ("resume", "Resume", "play", lambda: self._act_on_selected("resume")),
            ("run_now", "Run now", "forward", lambda: self._act_on_selected("run_now")),
            ("open_view", "Open in JupyterLab", "external-link", self._open_view),
        ]
        made = [self.button(*spec[:3], "select a task first", spec[3]) for spec in buttons]
        for button in made:
            button.disabled = True
        # where the open link is displayed: JupyterLab's orchestrations extension opens it
        self._open_link = self.own(w.Output())
        return self.own(w.HBox([*made, self._open_link]))

    def _open_view(self) -> None:
        """Display the selected task's open link (each press opens its view again)."""
        if self._task_id is None:
            self._say("Select a task first.", ok=False)
            return
        name = (self._task or {}).get("name") or self._task_id[:8]
        bundle = {
            OPEN_MIME: {"task_id": self._task_id, "name": name, "request": uuid.uuid4().hex},
            "text/plain": f"Task {name}: open it from the orchestrations sidebar",
        }
        self._open_link.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)
        self._say(f"Opening {name} in JupyterLab.")

    @property
    def open_link(self) -> dict[str, Any] | None:
        """The open link last displayed (its MIME bundle), if any."""
        outputs = self._open_link.outputs
        return dict(outputs[-1]["data"]) if outputs else None

    def _confirm_box(self) -> w.HBox:
        self._question = self.own(w.HTML())
        yes = self.button("confirm", "Kill task", "stop", "Kill it", self._confirm)
        yes.button_style = "danger"
        no = self.button("cancel", "Cancel", "times", "Keep the task", self._cancel)
        self._confirmation = self.own(w.HBox([self._question, yes, no]))
        self._confirmation.layout.display = "none"
        return self._confirmation

    # -- what a user (or a test) does ----------------------------------------------------------

    @property
    def selected_task(self) -> str | None:
        """The id of the selected task."""
        return self._task_id

    @property
    def selected_run(self) -> str | None:
        """The id of the selected run (the newest, unless another was chosen)."""
        return self._log.run_id

    @property
    def task_status(self) -> str | None:
        """The selected task's status as last fetched."""
        return None if self._task is None else str(self._task.get("status"))

    @property
    def runs(self) -> list[list[str]]:
        """The selected task's runs as plain text (see `run_columns`), newest first."""
        return [list(row) for row in self._run_rows]

    @property
    def log_text(self) -> str:
        """The selected run's output as shown (its newest lines)."""
        return self._log.text

    @property
    def output_html(self) -> str:
        """What Open output said last: the saved copy's name and link."""
        return str(self._output_note.value)

    @property
    def following(self) -> bool:
        """Whether the selected run's log is being followed live."""
        return self._log.following

    @property
    def confirming(self) -> bool:
        """Whether the panel asks to confirm a kill."""
        return self._confirming is not None

    @property
    def threads_alive(self) -> bool:
        """Whether any thread of this panel still runs."""
        return super().threads_alive or self.following

    def select_task(self, task_id: str) -> None:
        """Show a task's runs, and its newest run's log."""
        self._worker.call(lambda: self._load_task(task_id))

    def select_run(self, run_id: str) -> None:
        """Show a run's log (followed live while the run runs)."""
        self._worker.call(lambda: self._load_run(run_id, newest=False))

    def set_filters(self, status: str | None = None, include_killed: bool | None = None) -> None:
        """Filter the table by status (`""` for any) and whether killed tasks are listed."""
        if status is not None:
            self._status.value = status
        if include_killed is not None:
            self._killed.value = include_killed

    def confirm(self) -> None:
        """Confirm the kill asked for."""
        self.click("confirm")

    def cancel(self) -> None:
        """Do not kill after all."""
        self.click("cancel")

    # -- the worker's side: actions ------------------------------------------------------------

    def _ask(self) -> None:
        if self._task is None:
            self._say("Select a task first.", ok=False)
            return
        self._confirming = str(self._task["id"])
        name = render.esc(self._task.get("name") or self._confirming)
        self._question.value = (
            f"<b>Kill task {name}?</b> No new run starts and running ones are ended; "
            "their logs are kept."
        )
        self._confirmation.layout.display = ""

    def _confirm(self) -> None:
        task_id = self._confirming
        self._hide_question()
        if task_id is None:
            self._say("Nothing to confirm: press Kill first.", ok=False)
        else:
            self._act("kill", task_id)

    def _cancel(self) -> None:
        if self._confirming is not None:
            self._say("Kill cancelled.")
        self._hide_question()

    def _hide_question(self) -> None:
        self._confirming = None
        self._confirmation.layout.display = "none"

    def _act_on_selected(self, action: str) -> None:
        if self._task_id is None:
            self._say("Select a task first.", ok=False)
        else:
            self._act(action, self._task_id)

    def _act(self, action: str, task_id: str) -> None:
        """Do an action and say how it went (or what the server answered)."""
        known = self._task if self._task_id == task_id and self._task else {}
        task = Task(self.client, {**known, "id": task_id})
        name = task.name() or task_id[:8]
        done: dict[str, Callable[[], str]] = {
            "kill": lambda: f"Kill requested for {name}: {render.words(task.kill())}.",
            "pause": lambda: f"Paused {name}: {render.words(task.pause())}.",
            "resume": lambda: f"Resumed {name}: {render.words(task.resume())}.",
            "run_now": lambda: f"Started run {task.run_now().id()[:8]} of {name}.",
        }
        try:
            text = done[action]()
        except OrchClientError as exc:
            self._say(f"{self._actions[action].description} failed: {fail_text(exc)}", ok=False)
            return
        self._say(text)
        if self._task_id == task_id:
            if action == "run_now":
                self._newest = True  # show the run just started
            else:
                self._task = task.to_dict()
            self._render_task()
            self._load_runs()
        self._refresh_now(force=True)

    def _open(self) -> None:
        """Save the selected run's executed notebook beside the user's, and link it."""
        run_id = self._log.run_id
        if self._task is None or run_id is None or not self._notebook:
            self._say("Select a run of a notebook first.", ok=False)
            return
        try:
            self._output_note.value = self._output.save(self._task, run_id)
        except OrchClientError as exc:
            self._say(f"Open output failed: {fail_text(exc)}", ok=False)
        except OSError as exc:
            self._say(f"Open output failed: the copy cannot be written ({exc})", ok=False)
        else:
            self._say(f"Saved the output of run {run_id[:8]}: open it with the link.")

    # -- the worker's side: the list -----------------------------------------------------------

    def _on_filter(self, change: Mapping[str, Any]) -> None:
        if not self._on_worker():
            self._worker.call(self._filter_changed)

    def _filter_changed(self) -> None:
        self._reset_pages()
        self._refresh_now(force=True)

    def _include_killed(self) -> bool:
        return bool(self._killed.value) or self._status.value in ("killed", "pending_kill")

    def _reset_pages(self) -> None:
        super()._reset_pages()
        self._starts, self._offsets = [None], [0]

    def _fetch(self) -> list[Item]:
        try:
            return self._fetch_page(self._starts[self._page])
        except NotFoundError:
            if self._page == 0:
                raise
            # the task this page started after is gone: back to the first page
            self._reset_pages()
            return self._fetch_page(None)

    def _fetch_page(self, after: str | None) -> list[Item]:
        """The page of tasks after task `after` (the newest without), filtered by status."""
        body = task_query({"workspace_id": self._workspace_id}, self._include_killed(), 1)
        size, by_status = self.page_size, bool(self._status.value)
        wanted = size + 1  # one more than shown: whether a next page exists
        matched: list[Item] = []
        looked: list[Item] = []
        cursor, ended = after, False
        while len(matched) < wanted:
            limit = max(wanted, self.scan_chunk) if by_status else wanted - len(matched)
            page: list[Item] = self.client._post(
                "task/list", given({**body, "limit": limit}, after=cursor)
            )
            looked.extend(page)
            matched.extend(task for task in page if self._keep(task))
            if len(page) < limit:
                ended = True
                break
            cursor = str(page[-1]["id"])
            if len(looked) >= self.scan_limit:
                break
        self._all = looked
        self._looked_on = False
        if len(matched) > size:
            self._has_more, self._next_start = True, str(matched[size - 1]["id"])
        elif ended:
            self._has_more, self._next_start = False, None
        else:  # a short page: the next one looks on after the last task looked at
            self._has_more, self._next_start, self._looked_on = True, cursor, True
        return matched[:size]

    def _turn(self, step: int) -> None:
        """Another page: the next starts after the last task shown, found again by keyset."""
        if step > 0 and self._has_more:
            shown = self._offsets[self._page] + len(self._items)
            self._starts = [*self._starts[: self._page + 1], self._next_start]
            self._offsets = [*self._offsets[: self._page + 1], shown]
            self._page += 1
        elif step < 0 and self._page > 0:
            self._page -= 1
        else:
            return
        self._refresh_now(force=False)

    def _page_items(self) -> list[Item]:
        return self._items

    def _pager(self, items: list[Item]) -> tuple[str, bool, bool]:
        first = self._offsets[self._page]
        shown = f"{first + 1:,}-{first + len(items):,}"
        if self._looked_on:
            looked = render.count(len(self._all), self.noun)
            found = f"{shown} matching" if items else "none matching"
            label = f"{found} among {looked} looked at; Next looks further"
        elif not items:
            label = "no more tasks" if self._page > 0 else render.count(0, self.noun)
        else:
            label = f"{shown} of {self._total_text()}"
        return label, self._page > 0, self._has_more

    def _total_text(self) -> str:
        known = render.count(self._offsets[self._page] + len(self._items), self.noun)
        return f"more than {known}" if self._has_more else known

    def _summary(self, total: int) -> str:
        page = f"page {self._page + 1} · " if self._page > 0 else ""
        return f"{page}refreshed every {self.refresh_seconds:g} s"

    def _item_key(self, item: Mapping[str, Any]) -> object:
        runs = item.get("last_runs") or [{}]
        newest = (runs[0].get("run_id"), runs[0].get("status"), runs[0].get("updated_at"))
        status, updated, next_run = (
            item.get("status"),
            item.get("updated_at"),
            item.get("next_run_at"),
        )
        return (item["id"], updated, status, newest, next_run)

    def _fingerprint_of(self, items: Any) -> object:
        filters = (self._status.value, self._include_killed(), self._workspace_id)
        page = (self._page, self._starts[self._page], self._has_more, len(self._all))
        return (filters, page, super()._fingerprint_of(items))

    def _keep(self, item: Mapping[str, Any]) -> bool:
        wanted = self._status.value
        return not wanted or item.get("status") == wanted

    def _empty_text(self) -> str:
        if self._page > 0 and not self._all:
            return "No more tasks."
        if not self._all:
            return (
                "No tasks in this workspace yet. Start one with %%orchestrate NAME --once "
                "in a cell, or with Orchestration.run_once()."
            )
        if self._looked_on:
            return "No task matches these filters so far: Next looks further."
        return "No task matches these filters."

    def _cells(self, item: Mapping[str, Any], at: datetime) -> list[str]:
        return rows.task_cells(item, at)

    def _texts(self, item: Mapping[str, Any], at: datetime) -> list[str]:
        return rows.task_texts(item, at)

    def _selected_id(self) -> str | None:
        return self._task_id

    def _pick_item(self, item_id: str) -> None:
        if item_id != self._task_id:
            self.select_task(item_id)

    # -- the worker's side: the selected task and its runs -------------------------------------

    def _load_task(self, task_id: str) -> None:
        self._hide_question()
        self._task_id, self._task, self._notebook = task_id, None, False
        self._runs, self._newest = [], True
        self._log.clear("Select a run to see its log.")
        self._render_page()
        try:
            self._task = self.client._post("task/get_by_id", {"id": task_id, "run_limit": 1})
        except OrchClientError as exc:
            self._title.value = render.message(f"Task {task_id}: {fail_text(exc)}", ok=False)
            raise
        self._notebook = self._output.has_output(self._task)
        self._render_task()
        self._load_runs()

    def _after_refresh(self, changed: bool) -> None:
        if self._task_id is None:
            return
        fresh = next((t for t in self._all if t["id"] == self._task_id), None)
        if fresh is None:  # filtered out (killed, say): ask for it alone
            fresh = self.client._post("task/get_by_id", {"id": self._task_id, "run_limit": 1})
        moved = self._task is None or self._item_key(fresh) != self._item_key(self._task)
        self._task = fresh
        if moved:
            self._render_task()
        if moved or any(run.get("status") == "running" for run in self._runs):
            self._load_runs()

    def _render_task(self) -> None:
        if self._task is None:
            return
        self._title.value = rows.task_title(self._task, render.now())
        for name, (off, why) in rows.availability(self._task).items():
            button = self._actions[name]
            button.disabled, button.tooltip = off, why
        opener = self._actions["open_view"]
        opener.disabled, opener.tooltip = False, "show this task in JupyterLab's main area"

    def _load_runs(self) -> None:
        if self._task_id is None:
            return
        body = {"task_id": self._task_id, "limit": RUN_LIMIT}
        runs: list[Item] = self.client._post("task/list_task_runs", body)
        self._runs = runs
        if runs and self._newest and runs[0]["run_id"] != self._log.run_id:
            self._load_run(str(runs[0]["run_id"]), newest=True)
        else:
            self._render_runs()

    def _render_runs(self) -> None:
        at, chosen_id = render.now(), self._log.run_id
        chosen = next((i for i, r in enumerate(self._runs) if r["run_id"] == chosen_id), None)
        empty = "No runs yet."
        if self._task and self._task.get("next_run_at"):
            empty += f" The next one is due {render.relative(self._task['next_run_at'], at)}."
        cells = [rows.run_cells(run, at) for run in self._runs]
        html = render.table(self.run_columns, cells, chosen, empty)
        if html != self._runs_table.value:
            self._runs_table.value = html
        self._run_rows = [rows.run_texts(run, at) for run in self._runs]
        options = [("", None)] + [(rows.run_label(r), str(r["run_id"])) for r in self._runs]
        value = chosen_id if chosen is not None else None
        if list(self._run_pick.options) != options or self._run_pick.value != value:
            with self._run_pick.hold_sync():
                self._run_pick.options = options
                self._run_pick.value = value
        shown = self._notebook and chosen_id is not None
        self._output_box.layout.display = "" if shown else "none"

    def _on_run_pick(self, change: Mapping[str, Any]) -> None:
        if not self._on_worker() and change["new"] not in (None, self._log.run_id):
            self.select_run(str(change["new"]))

    def _load_run(self, run_id: str, newest: bool) -> None:
        run = next((r for r in self._runs if r["run_id"] == run_id), None)
        if run is None:
            body = {"task": self._task_id or "", "pod_id": run_id}
            run = self.client._post("task/get_run_details", body)
        self._newest = newest or bool(self._runs and self._runs[0]["run_id"] == run_id)
        if run_id != self._log.run_id:
            self._output_note.value = ""  # it named another run's copy
        self._log.show(run_id, str(run.get("status")))
        self._render_runs()

    def _run_ended(self, run_id: str, problem: Exception | None) -> None:
        """The followed run has ended (or the stream was lost): its row and status change."""
        if problem is not None:
            self._say(f"Stopped following run {run_id[:8]}: {fail_text(problem)}", ok=False)
        self._load_runs()

    def _stop_threads(self) -> None:
        super()._stop_threads()
        self._log.stop()

    def _shown(self) -> None:
        super()._shown()
        self._log.resume()

    def _unshown(self) -> None:
        self._log.stop()
