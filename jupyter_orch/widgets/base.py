"""What both panels share: a paged table with a picker, filters, messages, and a worker thread.

The kernel's main thread only queues work on the panel's worker (a user's click, a page turn);
HTTP calls and widget updates happen there, so a panel never blocks a cell. The worker also
refreshes the panel every `refresh_seconds`, and re-renders only when the server's answer
changed (or relative times need it).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

import ipywidgets as w

from ..sdk.client import Client
from ..sdk.errors import ApiError, OrchClientError
from . import render
from .table import RowTable
from .threads import Job, Worker

Item = dict[str, Any]
#: Seconds after which relative times ("3 min ago") are rendered again without any change.
RERENDER_SECONDS = 15.0
#: Seconds an HTTP call of a panel may wait for an answer.
PANEL_TIMEOUT = 30.0


def own_client(client: Client | None) -> Client:
    """A client of its own for the panel's worker thread (a `requests` session is per thread)."""
    if client is None:
        return Client(timeout=PANEL_TIMEOUT)
    return Client(url=client.server.api_url, token=client.server.token, timeout=PANEL_TIMEOUT)


def fail_text(exc: Exception) -> str:
    """The server's message for a refusal; the error's words otherwise."""
    if isinstance(exc, ApiError):
        return exc.message
    if isinstance(exc, OrchClientError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def weakly(method: Callable[[Exception], None]) -> Callable[[Exception], None]:
    """A method called through a weak reference, so that the worker does not keep the panel."""
    ref = weakref.WeakMethod(method)

    def call(exc: Exception) -> None:
        bound = ref()
        if bound is not None:
            bound(exc)

    return call


def ticker(ref: weakref.ref[Panel]) -> Job:
    """The periodic refresh, holding the panel weakly so that it can be collected."""

    def tick() -> None:
        panel = ref()
        if panel is not None:
            panel._tick()

    return tick


class Panel(w.VBox):
    """A paged table of server objects that refreshes itself in the background."""

    noun: ClassVar[str] = "item"
    columns: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        client: Client | None,
        workspace_id: int | None,
        refresh_seconds: float,
        page_size: int,
    ) -> None:
        self.client = own_client(client)
        self.refresh_seconds = refresh_seconds
        self.page_size = max(1, page_size)
        self._workspace_id = workspace_id
        self._owned: list[w.Widget] = []
        self._items: list[Item] = []
        self._fingerprint: object = None
        self._page = 0
        self._rows: list[list[str]] = []
        self._rendered_at = 0.0
        self._message_text = ""
        self._closed = False
        self._workspaces_loaded = False
        self._hidden = False
        self._seen = False
        self._worker = Worker(self.noun, weakly(self._show_error))
        weakref.finalize(self, self._worker.stop)
        try:
            self._build_common()
            super().__init__(children=self._layout())
        except BaseException:
            self._worker.stop()
            raise
        self._view_count = 0  # the frontend counts views: refreshes stop while none is shown
        self.observe(self._on_views, "_view_count")
        if self.comm is not None:
            self.comm.on_close(lambda _msg: self._stop_threads())
        self._worker.call(self._start)

    # -- widgets -------------------------------------------------------------------------------

    def own(self, widget: w.Widget) -> Any:
        """Keep a child widget to close with the panel."""
        self._owned.append(widget)
        return widget

    def button(
        self, name: str, label: str, icon: str, tip: str, action: Callable[[], None]
    ) -> w.Button:
        """A button `click(name)` presses too; `action` runs on the worker thread."""
        button = self.own(w.Button(description=label, icon=icon, tooltip=tip))
        button.on_click(lambda _button: self._worker.call(lambda: self._press(name)))
        self._actions[name] = button
        self._handlers[name] = action
        return button

    def _build_common(self) -> None:
        self._workspace = self.own(
            w.Dropdown(description="Workspace", options=[("…", None)], value=None)
        )
        self._workspace.observe(self._on_workspace, "value")
        self._actions: dict[str, w.Button] = {}
        self._handlers: dict[str, Callable[[], None]] = {}
        self._refresh = self.button(
            "refresh", "Refresh", "refresh", "Refresh now", lambda: self._refresh_now(force=True)
        )
        self._note = self.own(w.HTML())
        self._message = self.own(w.HTML())
        self._table = self.own(RowTable(render.table((), [], None, "Loading…")))
        self._table.on_select(self._on_row)
        self._prev = self.button(
            "prev", "Prev", "chevron-left", "Previous page", lambda: self._turn(-1)
        )
        self._next = self.button(
            "next", "Next", "chevron-right", "Next page", lambda: self._turn(1)
        )
        self._page_label = self.own(w.Label(""))
        self._pick = self.own(w.Dropdown(description=self.noun.capitalize(), options=[]))
        self._pick.observe(self._on_pick, "value")

    def _filters(self) -> list[w.Widget]:
        """Widgets of the toolbar that filter the table."""
        return [self._workspace]

    def _layout(self) -> list[w.Widget]:
        """The panel's children, top to bottom."""
        toolbar = self.own(w.HBox([*self._filters(), self._refresh, self._note]))
        pager = self.own(w.HBox([self._prev, self._page_label, self._next, self._pick]))
        return [toolbar, self._table, pager, self._message]

    def __repr__(self) -> str:
        name = type(self).__name__
        if not getattr(self, "_workspaces_loaded", False):
            return f"<{name}: loading>"
        return f"<{name}: workspace {self._workspace_id}, {self._total_text()}>"

    # -- what a user (or a test) does ----------------------------------------------------------

    @property
    def rows(self) -> list[list[str]]:
        """The current page as plain text, one list of cells per row (see `columns`)."""
        return [list(row) for row in self._rows]

    @property
    def page_text(self) -> str:
        """Where the page stands, as shown: `1-50 of 1,000 tasks`."""
        text: str = self._page_label.value
        return text

    @property
    def status_text(self) -> str:
        """The result of the last action, or the server's error message."""
        return self._message_text

    def refresh(self) -> None:
        """Fetch everything again now (in the background)."""
        self._worker.call(lambda: self._refresh_now(force=True))

    def next_page(self) -> None:
        """Show the next page."""
        self._worker.call(lambda: self._turn(1))

    def prev_page(self) -> None:
        """Show the previous page."""
        self._worker.call(lambda: self._turn(-1))

    def click(self, action: str) -> None:
        """Press a button by name (see `actions`), as a user would, once queued work is done."""
        if action not in self._actions:
            raise ValueError(f"action: one of {', '.join(self._actions)}; not {action!r}")
        self._worker.call(lambda: self._press(action))

    @property
    def actions(self) -> list[str]:
        """The names `click()` takes."""
        return list(self._actions)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until the work queued so far is done (for scripts and tests); False on timeout."""
        return self._worker.wait_idle(timeout)

    def close(self) -> None:
        """Stop refreshing and following logs, and close every widget of the panel."""
        if self._closed:
            return
        self._closed = True
        self._stop_threads()
        for widget in reversed(self._owned):
            widget.close()
        super().close()
        self.client.close()

    @property
    def threads_alive(self) -> bool:
        """Whether any thread of this panel still runs."""
        return self._worker.alive

    def _stop_threads(self) -> None:
        self._worker.stop()

    # -- the worker's side ---------------------------------------------------------------------

    def _on_worker(self) -> bool:
        """Whether this runs on the worker: widget changes made there are not a user's."""
        return threading.current_thread().name.startswith("jupyter_orch-")

    def _press(self, action: str) -> None:
        """A button pressed: its action, or why it is not available."""
        button = self._actions[action]
        if button.disabled:
            self._say(f"{button.description} is not available: {button.tooltip}", ok=False)
        else:
            self._handlers[action]()

    def _start(self) -> None:
        try:
            self._refresh_now(force=True)
        finally:  # a server that is down now may answer at the next tick
            self._worker.call(ticker(weakref.ref(self)), self.refresh_seconds)

    def _tick(self) -> None:
        try:
            if not self._hidden:
                self._refresh_now(force=False)
        finally:
            self._worker.call(ticker(weakref.ref(self)), self.refresh_seconds)

    def _load_workspaces(self) -> None:
        spaces = self.client.list_workspaces()
        if self._workspace_id is None:
            self._workspace_id = self.client.get_current_workspace().id()
        options = [(space.name(), space.id()) for space in spaces]
        if self._workspace_id not in {space.id() for space in spaces}:
            raise OrchClientError(f"workspace {self._workspace_id} not found")
        with self._workspace.hold_sync():
            self._workspace.options = options
            self._workspace.value = self._workspace_id
        self._workspaces_loaded = True

    def _refresh_now(self, force: bool) -> None:
        """Fetch the items; render the page if they changed, or when relative times aged."""
        try:
            if force or not self._workspaces_loaded:
                self._load_workspaces()
            items = self._fetch()
        except OrchClientError as exc:
            self._note.value = render.message(f"refresh failed: {fail_text(exc)}", ok=False)
            return
        mark = self._fingerprint_of(items)
        changed = force or mark != self._fingerprint
        self._fingerprint = mark
        if changed:
            self._items = [item for item in items if self._keep(item)]
            self._note.value = render.muted(self._summary(len(items)))
        if changed or time.monotonic() - self._rendered_at > RERENDER_SECONDS:
            self._render_page()
        self._after_refresh(changed)

    def _fingerprint_of(self, items: Sequence[Mapping[str, Any]]) -> object:
        """A cheap value that changes whenever anything shown changes."""
        return hash(tuple(self._item_key(item) for item in items))

    def _turn(self, step: int) -> None:
        self._page = max(0, min(self._page + step, self._page_count() - 1))
        self._render_page()

    def _reset_pages(self) -> None:
        """Back to the first page (the workspace or a filter changed)."""
        self._page = 0

    def _page_count(self) -> int:
        return max(1, -(-len(self._items) // self.page_size))

    def _page_items(self) -> list[Item]:
        self._page = min(self._page, self._page_count() - 1)
        start = self._page * self.page_size
        return self._items[start : start + self.page_size]

    def _render_page(self) -> None:
        """Render the current page only: O(page size), whatever the number of items."""
        at = render.now()
        items = self._page_items()
        chosen = self._selected_id()
        selected = next((i for i, item in enumerate(items) if item["id"] == chosen), None)
        rows = [self._cells(item, at) for item in items]
        ids = [str(item["id"]) for item in items]
        html = render.table(self.columns, rows, selected, self._empty_text(), ids)
        if html != self._table.value:
            self._table.value = html
        self._rows = [self._texts(item, at) for item in items]
        self._rendered_at = time.monotonic()
        self._render_pager(items)

    def _pager(self, items: list[Item]) -> tuple[str, bool, bool]:
        """What the pager says of the page shown, and whether a previous and a next exist."""
        first = self._page * self.page_size
        total = len(self._items)
        label = f"{first + 1:,}-{first + len(items):,} of {render.count(total, self.noun)}"
        has_next = self._page < self._page_count() - 1
        return (label if items else render.count(0, self.noun)), self._page > 0, has_next

    def _render_pager(self, items: list[Item]) -> None:
        label, has_prev, has_next = self._pager(items)
        self._page_label.value = label
        first_page, last_page = not has_prev, not has_next
        self._prev.disabled, self._next.disabled = first_page, last_page
        self._prev.tooltip = "this is the first page" if first_page else "Previous page"
        self._next.tooltip = "this is the last page" if last_page else "Next page"
        options = [("", None)] + [(self._label(item), item["id"]) for item in items]
        chosen = self._selected_id()
        value = chosen if any(item["id"] == chosen for item in items) else None
        if list(self._pick.options) != options or self._pick.value != value:
            with self._pick.hold_sync():
                self._pick.options = options
                self._pick.value = value

    def _say(self, text: str, ok: bool = True) -> None:
        """Show the result of an action."""
        self._message_text = text
        self._message.value = render.message(text, ok)

    def _show_error(self, exc: Exception) -> None:
        self._say(fail_text(exc), ok=False)

    def _on_workspace(self, change: Mapping[str, Any]) -> None:
        if self._on_worker() or change["new"] is None:
            return
        new = int(change["new"])
        self._worker.call(lambda: self._set_workspace(new))

    def _set_workspace(self, workspace_id: int) -> None:
        if workspace_id != self._workspace_id:
            self._workspace_id = workspace_id
            self._reset_pages()
            self._refresh_now(force=True)

    def _on_pick(self, change: Mapping[str, Any]) -> None:
        if not self._on_worker() and change["new"] is not None:
            self._pick_item(str(change["new"]))

    def _on_row(self, item_id: str) -> None:
        """A row of the table was clicked: select it, as the picker would."""
        if any(item["id"] == item_id for item in self._page_items()):
            self._pick_item(item_id)

    def _on_views(self, change: Mapping[str, Any]) -> None:
        """Pause while no view is shown (the output was cleared, the notebook closed)."""
        views = change["new"] or 0
        if views > 0:
            self._seen = True
            if self._hidden:
                self._hidden = False
                self._worker.call(self._shown)
        elif self._seen and not self._hidden:
            self._hidden = True
            self._worker.call(self._unshown)

    # -- what each panel says ------------------------------------------------------------------

    def _fetch(self) -> list[Item]:
        """The items, from the server."""
        raise NotImplementedError

    def _item_key(self, item: Mapping[str, Any]) -> object:
        """What of an item the fingerprint covers."""
        return (item["id"], item.get("updated_at"), item.get("status"))

    def _keep(self, item: Mapping[str, Any]) -> bool:
        """Whether an item passes the filters that are applied on this side."""
        return True

    def _summary(self, total: int) -> str:
        """The note beside the toolbar."""
        return f"{render.count(total, self.noun)} · refreshed every {self.refresh_seconds:g} s"

    def _total_text(self) -> str:
        """How many items there are, as known: `2 tasks`."""
        return render.count(len(self._items), self.noun)

    def _cells(self, item: Mapping[str, Any], at: datetime) -> list[str]:
        """A row's cells, as HTML."""
        raise NotImplementedError

    def _texts(self, item: Mapping[str, Any], at: datetime) -> list[str]:
        """A row's cells, as plain text."""
        raise NotImplementedError

    def _label(self, item: Mapping[str, Any]) -> str:
        """An item as the picker lists it: its name, status and short id."""
        name = item.get("name") or "(no name)"
        return f"{name} · {render.words(item.get('status'))} · {str(item['id'])[:8]}"

    def _empty_text(self) -> str:
        """What the table says when it has no row."""
        return f"No {self.noun}s."

    def _selected_id(self) -> str | None:
        """The id of the selected item."""
        return None

    def _pick_item(self, item_id: str) -> None:
        """The user picked an item (main thread)."""

    def _after_refresh(self, changed: bool) -> None:
        """Refresh what depends on the items (the selected one's details)."""

    def _shown(self) -> None:
        """A view is shown again: catch up."""
        self._refresh_now(force=True)

    def _unshown(self) -> None:
        """No view is shown any more."""
